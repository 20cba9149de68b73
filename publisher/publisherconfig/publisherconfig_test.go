package publisherconfig_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/publisher/publisherconfig"
	_ "github.com/meterkit/meter/sink/console"
	_ "github.com/meterkit/meter/stage/selectstage"
	_ "github.com/meterkit/meter/stage/unit"
)

func write(t *testing.T, name, text string) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

const good = `listen: tcp://0.0.0.0:7711
workers: 8
replay_window: 2m
spool: /var/lib/meterkit/publisher
stats_every: 30s
sinks:
  - console://stderr
  - name: load-test
    url: discard://
stages:
  - type: select
    meters: ["cpu.*"]
`

func TestLoad(t *testing.T) {
	c, err := publisherconfig.Load(write(t, "publisher.yaml", good))
	require.NoError(t, err)
	require.Equal(t, "tcp://0.0.0.0:7711", c.Listen)
	require.Equal(t, 8, c.Workers)
	require.Equal(t, 2*time.Minute, c.ReplayWindow)
	require.Equal(t, 30*time.Second, c.StatsEvery)
	require.Len(t, c.Sinks, 2)
	require.Equal(t, "console://stderr", c.Sinks[0].Name, "a URL names itself")
	require.Equal(t, "load-test", c.Sinks[1].Name, "a block's name: keys its lane")
	require.Equal(t, 8, c.Sinks[1].Line)

	ctx := context.Background()
	p, err := c.Open(ctx)
	require.NoError(t, err)
	defer p.Close(ctx)
	require.Len(t, p.Sinks, 2)
	require.NotNil(t, p.Stage)
	require.NotEmpty(t, c.Options(p, c.ReplayWindow))
}

func TestRedactedDefaultName(t *testing.T) {
	c, err := publisherconfig.Load(write(t, "publisher.yaml", "sinks:\n  - console://user:secret@stderr\n"))
	require.NoError(t, err)
	require.NotContains(t, c.Sinks[0].Name, "secret")
}

func TestErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"top-level key", "listen: tcp://x:1\nlisen: tcp://y:1\n", ":2: lisen: unknown key"},
		{"nested key", "tls:\n  certificate: x.pem\n", ":2: tls.certificate: unknown key"},
		{"sink block key", "sinks:\n  - name: a\n    uri: console://\n", ":3: sinks[0].uri: unknown key"},
		{"sink without url", "sinks:\n  - name: a\n", ":2: sinks[0].url: required"},
		{"sink list", "sinks:\n  - [console://]\n", ":2: sinks[0]: want a sink URL or a block"},
		{"two sinks one name", "sinks:\n  - {name: a, url: console://}\n  - {name: a, url: discard://}\n", `:3: sinks[1]: a sink named "a" is already at line 2`},
		{"bad duration", "replay_window: 5 minutes\n", ":1: replay_window: bad duration `5 minutes`"},
		{"wrong type", "workers: many\n", ":1: workers: want a whole number, got `many`"},
		{"stage item", "stages:\n  - select\n", ":2: stages[0]: want a stage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "publisher.yaml", tc.text)
			_, err := publisherconfig.Load(p)
			require.ErrorContains(t, err, p+tc.want)
		})
	}
}

func TestOpenErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"misspelt scheme", "sinks:\n  - console://\n  - consol://\n", `:3: sinks[1]: unknown sink scheme "consol" (registered: console, discard)`},
		{"scheme in a block", "sinks:\n  - name: x\n    url: riemman://h:1\n", `:3: sinks[0].url: unknown sink scheme "riemman"`},
		{"no scheme", "sinks:\n  - 127.0.0.1:5555\n", `:2: sinks[0]: "127.0.0.1:5555" has no scheme`},
		{"misspelt stage", "stages:\n  - type: selekt\n", `:2: stages[0].type: unknown stage "selekt" (registered: `},
		{"stage setting", "stages:\n  - type: select\n    meterz: [x]\n", `:3: stages[0].meterz: stage select: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "publisher.yaml", tc.text)
			c, err := publisherconfig.Load(p)
			require.NoError(t, err)
			_, err = c.Open(context.Background())
			require.ErrorContains(t, err, p+tc.want)
		})
	}
}

func TestStagesFile(t *testing.T) {
	sf := write(t, "stages.yaml", "- type: select\n  meters: [x]\n- type: unit\n  to: MiB\n  form: B\n")
	p := write(t, "publisher.yaml", "stages_file: "+sf+"\n")
	c, err := publisherconfig.Load(p)
	require.NoError(t, err)
	_, err = c.Open(context.Background())
	require.ErrorContains(t, err, sf+":5: stages[1].form: stage unit: ")

	p = write(t, "publisher.yaml", "stages_file: x.yaml\nstages:\n  - type: select\n")
	_, err = publisherconfig.Load(p)
	require.ErrorContains(t, err, p+":3: stages: give stages or stages_file, not both")
}

type sinkFlags []string

func (s *sinkFlags) String() string     { return strings.Join(*s, " ") }
func (s *sinkFlags) Set(v string) error { *s = append(*s, v); return nil }
func (s *sinkFlags) Get() any           { return []string(*s) }

func TestFlagsOverrideTheFile(t *testing.T) {
	c, err := publisherconfig.Load(write(t, "publisher.yaml", good))
	require.NoError(t, err)
	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	fs.String("listen", "tcp://127.0.0.1:7711", "")
	fs.Int("workers", 4, "")
	fs.Duration("stats-every", time.Minute, "")
	var sinks sinkFlags
	fs.Var(&sinks, "sink", "")
	require.NoError(t, fs.Parse([]string{"-sink", "discard://", "-sink", "console://?format=json", "-workers", "2"}))
	require.NoError(t, c.Override(fs))
	require.Equal(t, 2, c.Workers)
	require.Equal(t, "tcp://0.0.0.0:7711", c.Listen, "a flag not given keeps the file's value")
	require.Equal(t, 30*time.Second, c.StatsEvery, "not the flag's default either")
	require.Len(t, c.Sinks, 2, "-sink replaces the file's sinks")
	require.Equal(t, "discard://", c.Sinks[0].URL)
	require.Equal(t, "console://?format=json", c.Sinks[1].URL)

	// Without a file: the defaults.
	d := publisherconfig.Default()
	require.Equal(t, "console://", d.Sinks[0].URL)
}

func TestHTTP(t *testing.T) {
	c, err := publisherconfig.Load(write(t, "publisher.yaml", "http: 127.0.0.1:9711\n"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9711", c.HTTP)
	require.Empty(t, publisherconfig.Default().HTTP, "off by default")
	p := write(t, "publisher.yaml", "workers: 2\nhttp: localhost\n")
	_, err = publisherconfig.Load(p)
	require.ErrorContains(t, err, p+`:2: http: want host:port (such as 127.0.0.1:9711), got "localhost"`)

	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	fs.String("http", "", "")
	require.NoError(t, fs.Parse([]string{"-http", "[::1]:9000"}))
	require.NoError(t, c.Override(fs))
	require.Equal(t, "[::1]:9000", c.HTTP)
	require.NoError(t, fs.Parse([]string{"-http", "x"}))
	require.ErrorContains(t, c.Override(fs), "-http: want host:port")
}
