package publisherconfig_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter/publisher/publisherconfig"
)

func TestLogSettings(t *testing.T) {
	c, err := publisherconfig.Parse("publisher.yaml", []byte("log: {level: debug, format: json}\n"))
	require.NoError(t, err)
	require.Equal(t, publisherconfig.Log{Level: "debug", Format: "json"}, c.Log)
	var buf bytes.Buffer
	c.Logger(&buf).Debug("hello")
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	require.Equal(t, "hello", line["msg"])

	_, err = publisherconfig.Parse("publisher.yaml", []byte("log:\n  level: loud\n  format: xml\n"))
	require.ErrorContains(t, err, `publisher.yaml:2: log.level: unknown log level "loud"`)
	require.ErrorContains(t, err, `publisher.yaml:3: log.format: unknown log format "xml"`)

	fs := flag.NewFlagSet("publisher", flag.ContinueOnError)
	fs.String("log-level", "", "")
	fs.String("log-format", "", "")
	require.NoError(t, fs.Parse([]string{"-log-level", "error"}))
	require.NoError(t, c.Override(fs))
	require.Equal(t, publisherconfig.Log{Level: "error", Format: "json"}, c.Log)
}

func TestWriteYAML(t *testing.T) {
	c, err := publisherconfig.Parse("/etc/meterkit/publisher.yaml", []byte(`
listen: tcp://0.0.0.0:7711
keys: keys
sinks:
  - name: bus
    url: ceilometer+amqp://meter:hunter2@rabbit:5672/
  - riemann://127.0.0.1:5555
stages:
  - type: select
    meters: ["*"]
`))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, c.WriteYAML(&out))
	require.NotContains(t, out.String(), "hunter2")
	var v struct {
		Keys  string `yaml:"keys"`
		Sinks []struct {
			Name string `yaml:"name"`
			URL  string `yaml:"url"`
		} `yaml:"sinks"`
		Log publisherconfig.Log `yaml:"log"`
	}
	require.NoError(t, yaml.Unmarshal(out.Bytes(), &v), out.String())
	require.Equal(t, "/etc/meterkit/keys", v.Keys)
	require.Equal(t, "ceilometer+amqp://meter:REDACTED@rabbit:5672/", v.Sinks[0].URL)
	require.Equal(t, "riemann://127.0.0.1:5555", v.Sinks[1].Name)
	require.Equal(t, publisherconfig.Log{Level: "info", Format: "text"}, v.Log)
	back, err := publisherconfig.Parse("printed.yaml", out.Bytes())
	require.NoError(t, err, out.String())
	require.Len(t, back.Sinks, 2)
	require.Equal(t, "bus", back.Sinks[0].Name)
}

func TestListenInprocRefused(t *testing.T) {
	_, err := publisherconfig.Parse("publisher.yaml", []byte("workers: 2\nlisten: inproc://meter\n"))
	require.ErrorContains(t, err, `publisher.yaml:2: listen: "inproc://meter": inproc:// reaches only agents in the same process`)
}
