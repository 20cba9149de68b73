package agentconfig_test

import (
	"fmt"

	"github.com/meterkit/meter/agent/agentconfig"
	_ "github.com/meterkit/meter/driver/host"
)

func Example() {
	c, err := agentconfig.Parse("agent.yaml", []byte(`
publishers:
  connect: [tcp://10.0.0.5:7711]
interval: 30s
drivers:
  - type: cpu
  - name: root-fs
    type: filesystem
    interval: 5m
    settings: {exclude_fstypes: [tmpfs]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	parts, err := c.Open()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer parts.Close()
	for _, d := range parts.Drivers {
		fmt.Println(d.Name, d.Interval)
	}

	// A misspelt key names its file, line and key.
	_, err = agentconfig.Parse("agent.yaml", []byte("drivers:\n  - type: cpu\n    intreval: 5s\n"))
	fmt.Println(err)
	// Output:
	// cpu 30s
	// root-fs 5m0s
	// agent.yaml:3: drivers[0].intreval: unknown key
}
