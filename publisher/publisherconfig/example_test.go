package publisherconfig_test

import (
	"context"
	"fmt"

	"github.com/meterkit/meter/publisher/publisherconfig"
	_ "github.com/meterkit/meter/sink/console"
)

func Example() {
	c, err := publisherconfig.Parse("publisher.yaml", []byte(`
listen: tcp://0.0.0.0:7711
sinks:
  - discard://
  - name: spare
    url: discard://?copy=2
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	parts, err := c.Open(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer parts.Close(ctx)
	for _, s := range parts.Sinks {
		fmt.Println(s.Name)
	}

	// A misspelt scheme names its file, line and key, and lists the known ones.
	c, _ = publisherconfig.Parse("publisher.yaml", []byte("sinks:\n  - dicsard://\n"))
	_, err = c.Open(ctx)
	fmt.Println(err)
	// Output:
	// discard:
	// spare
	// publisher.yaml:2: sinks[0]: unknown sink scheme "dicsard" (registered: console, discard)
}
