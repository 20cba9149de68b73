package agentconfig_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter/agent/agentconfig"
)

func TestLogSettings(t *testing.T) {
	c, err := agentconfig.Parse("agent.yaml", []byte("log: {level: debug, format: json}\n"))
	require.NoError(t, err)
	require.Equal(t, agentconfig.Log{Level: "debug", Format: "json"}, c.Log)
	var buf bytes.Buffer
	c.Logger(&buf).Debug("hello", "n", 1)
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	require.Equal(t, "hello", line["msg"])

	_, err = agentconfig.Parse("agent.yaml", []byte("log:\n  level: loud\n  format: xml\n"))
	require.ErrorContains(t, err, `agent.yaml:2: log.level: unknown log level "loud"`)
	require.ErrorContains(t, err, `agent.yaml:3: log.format: unknown log format "xml"`)

	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("log-level", "", "")
	fs.String("log-format", "", "")
	require.NoError(t, fs.Parse([]string{"-log-level", "warn", "-log-format", "text"}))
	require.NoError(t, c.Override(fs))
	require.Equal(t, agentconfig.Log{Level: "warn", Format: "text"}, c.Log)
	require.NoError(t, fs.Parse([]string{"-log-level", "chatty"}))
	require.ErrorContains(t, c.Override(fs), `-log-level: unknown log level "chatty"`)
}

// WriteYAML shows the values in effect, the flags' over the file's, with
// secrets redacted, as a file that loads back to the same configuration.
func TestWriteYAML(t *testing.T) {
	c, err := agentconfig.Parse("/etc/meterkit/agent.yaml", []byte(`
publishers:
  connect: [tcp://10.0.0.5:7711]
  key_file: acme.key
interval: 15s
drivers:
  - name: switch
    type: snmp
    interval: 30s
    settings:
      target: 10.0.0.9
      version: 3
      user: meter
      auth_password: very-secret
      objects: [{oid: 1.3.6.1.2.1.1.3.0, name: sys.uptime}]
  - type: cpu
stages:
  - type: select
    meters: ["*"]
`))
	require.NoError(t, err)
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("interval", "", "")
	require.NoError(t, fs.Parse([]string{"-interval", "5s"}))
	require.NoError(t, c.Override(fs))
	var out bytes.Buffer
	require.NoError(t, c.WriteYAML(&out))
	text := out.String()
	require.NotContains(t, text, "very-secret")
	var v struct {
		Publishers struct {
			Connect []string `yaml:"connect"`
			KeyFile string   `yaml:"key_file"`
		} `yaml:"publishers"`
		Interval string `yaml:"interval"`
		Drivers  []struct {
			Name     string         `yaml:"name"`
			Interval string         `yaml:"interval"`
			Settings map[string]any `yaml:"settings"`
		} `yaml:"drivers"`
		Stages []map[string]any `yaml:"stages"`
	}
	require.NoError(t, yaml.Unmarshal(out.Bytes(), &v), text)
	require.Equal(t, "5s", v.Interval, "the flag's value")
	require.Equal(t, "/etc/meterkit/acme.key", v.Publishers.KeyFile)
	require.Len(t, v.Drivers, 2)
	require.Equal(t, "switch", v.Drivers[0].Name)
	require.Equal(t, "30s", v.Drivers[0].Interval)
	require.Equal(t, "REDACTED", v.Drivers[0].Settings["auth_password"])
	require.Equal(t, "meter", v.Drivers[0].Settings["user"])
	require.Equal(t, "select", v.Stages[0]["type"])

	back, err := agentconfig.Parse("printed.yaml", out.Bytes())
	require.NoError(t, err, "the printed config loads back:\n%s", text)
	require.Equal(t, c.Interval, back.Interval)
	require.Equal(t, c.Connect, back.Connect)
}

func TestConnectInprocRefused(t *testing.T) {
	_, err := agentconfig.Parse("agent.yaml", []byte("publishers:\n  connect:\n    - tcp://a:1\n    - inproc://meter\n"))
	require.ErrorContains(t, err, `agent.yaml:4: publishers.connect[1]: "inproc://meter": inproc:// reaches only a publisher in the same process`)
}
