package agentconfig_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/agent/agentconfig"
	_ "github.com/meterkit/meter/driver/host"
	_ "github.com/meterkit/meter/driver/snmp"
	_ "github.com/meterkit/meter/driver/synthetic"
	_ "github.com/meterkit/meter/stage/selectstage"
	_ "github.com/meterkit/meter/stage/unit"
)

func write(t *testing.T, name, text string) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

const good = `
publishers:
  connect: [tcp://10.0.0.5:7711, tcp://10.0.0.6:7711]
  tenant: acme
spool: /var/lib/meterkit/agent
batch: {size: 500, age: 2s}
queue: 64
stats_every: 0s
interval: 15s
drivers:
  - type: cpu
  - name: seq-a
    type: synthetic
    interval: 1s
    timeout: 500ms
    settings: {name: a, per_collection: 3}
  - name: seq-b
    type: synthetic
    settings: {name: b, per_collection: 5}
stages:
  - type: select
    meters: ["cpu.*", "synthetic.*"]
`

func TestLoad(t *testing.T) {
	c, err := agentconfig.Load(write(t, "agent.yaml", good))
	require.NoError(t, err)
	require.False(t, c.Deprecated)
	require.Equal(t, []string{"tcp://10.0.0.5:7711", "tcp://10.0.0.6:7711"}, c.Connect)
	require.Equal(t, "acme", c.Tenant)
	require.Equal(t, 500, c.Batch)
	require.Equal(t, 2*time.Second, c.BatchAge)
	require.Equal(t, 64, c.Queue)
	require.Equal(t, time.Duration(0), c.StatsEvery)
	require.Len(t, c.Drivers, 3)
	require.Equal(t, "seq-a", c.Drivers[1].Name)
	require.Equal(t, 12, c.Drivers[1].Line)

	p, err := c.Open()
	require.NoError(t, err)
	defer p.Close()
	require.Len(t, p.Drivers, 3)
	require.Equal(t, 15*time.Second, p.Drivers[0].Interval, "the default interval")
	require.Equal(t, time.Second, p.Drivers[1].Interval)
	require.Equal(t, 500*time.Millisecond, p.Drivers[1].Timeout)
	require.NotNil(t, p.Stage)
	require.NotEmpty(t, c.Options(p))
}

func TestErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"top-level key", "spool: /x\nspoll: /y\n", ":2: spoll: unknown key"},
		{"nested key", "publishers:\n  conect: [tcp://x:1]\n", ":2: publishers.conect: unknown key"},
		{"instance key", "drivers:\n  - type: cpu\n  - type: load\n    intervall: 5s\n", ":4: drivers[1].intervall: unknown key"},
		{"bad duration", "interval: 10x\n", ":1: interval: bad duration `10x`"},
		{"duration without unit", "drivers:\n  - type: cpu\n    interval: 10\n", ":3: drivers[0].interval: bad duration `10`"},
		{"wrong type", "batch:\n  size: lots\n", ":2: batch.size: want a whole number, got `lots`"},
		{"list for a scalar", "spool: [a, b]\n", ":1: spool: want a string, got a list"},
		{"missing type", "drivers:\n  - name: x\n", ":2: drivers[0].type: required"},
		{"two with one name", "drivers:\n  - type: cpu\n  - type: cpu\n", `:3: drivers[1].name: an instance named "cpu" is already at line 2`},
		{"empty address", "publishers:\n  connect: [tcp://a:1, '']\n", ":2: publishers.connect[1]: empty address"},
		{"not a mapping", "- cpu\n", ":1: want a mapping"},
		{"yaml syntax", "drivers: [\n", ":1: did not find expected node content"},
		{"stage key", "stages:\n  - type: select\n    meters: [x]\n  - name: y\n", ":4: stages[1]: stage: type: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "agent.yaml", tc.text)
			_, err := agentconfig.Load(p)
			require.ErrorContains(t, err, p+tc.want)
		})
	}
}

func TestOpenErrorsNameFileLineAndKey(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"misspelt driver", "drivers:\n  - type: cpu\n  - name: x\n    type: cpuu\n", `:4: drivers[1].type: unknown driver "cpuu" (registered: `},
		{"driver setting", "drivers:\n  - type: filesystem\n    settings:\n      exclude_fstypes: [tmpfs]\n      ignore_fstypes: [tmpfs]\n", `:5: drivers[0].settings.ignore_fstypes: driver "filesystem": host: filesystem: config: json: unknown field "ignore_fstypes"`},
		{"bad duration in settings", "drivers:\n  - name: switch\n    type: snmp\n    settings:\n      target: 10.0.0.1\n      timeout: 2 sec\n", `:6: drivers[0].settings.timeout: driver "snmp": snmp: config: `},
		{"nested unknown setting", "drivers:\n  - type: snmp\n    settings:\n      target: 10.0.0.1\n      objects:\n        - oid: .1.3.6.1.2.1.1.3.0\n          nmae: uptime\n", `:7: drivers[0].settings.objects[0].nmae: driver "snmp": `},
		{"misspelt stage", "stages:\n  - type: selectt\n", `:2: stages[0].type: unknown stage "selectt" (registered: `},
		{"stage setting", "stages:\n  - type: unit\n    to: MiB\n    form: B\n", `:4: stages[0].form: stage unit: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, "agent.yaml", tc.text)
			c, err := agentconfig.Load(p)
			require.NoError(t, err)
			_, err = c.Open()
			require.ErrorContains(t, err, p+tc.want)
		})
	}
	// The message lists the registered ones.
	p := write(t, "agent.yaml", "drivers:\n  - type: cpuu\n")
	c, err := agentconfig.Load(p)
	require.NoError(t, err)
	_, err = c.Open()
	require.ErrorContains(t, err, "cpu, ")
	require.ErrorContains(t, err, "synthetic")

	// Every error is reported, not only the first.
	p = write(t, "agent.yaml", "spoll: x\ninterval: 1y\n")
	_, err = agentconfig.Load(p)
	require.ErrorContains(t, err, p+":1: spoll: unknown key")
	require.ErrorContains(t, err, p+":2: interval: bad duration")
}

func TestOlderPerDriverMap(t *testing.T) {
	p := write(t, "agent.json", `{"filesystem": {"exclude_fstypes": ["tmpfs"]}, "disk": {}}`)
	c, err := agentconfig.Load(p)
	require.NoError(t, err)
	require.True(t, c.Deprecated)
	require.Len(t, c.Warnings(), 1)
	require.Contains(t, c.Warnings()[0], "deprecated")
	require.Len(t, c.Drivers, len(agentconfig.DefaultDrivers), "the drivers still come from -drivers")
	for _, d := range c.Drivers {
		require.Equal(t, d.Type == "filesystem", !d.Settings.IsZero(), d.Name)
	}
	parts, err := c.Open()
	require.NoError(t, err)
	parts.Close()

	// Settings for a driver that -drivers does not run are reported.
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("drivers", "", "")
	require.NoError(t, fs.Parse([]string{"-drivers", "disk,load"}))
	c, err = agentconfig.Load(write(t, "agent.json", "{\"disk\": {},\n \"filesystem\": {}}"))
	require.NoError(t, err)
	require.NoError(t, c.Override(fs))
	require.Len(t, c.Warnings(), 2)
	require.Contains(t, c.Warnings()[1], ":2: filesystem: settings for a driver that does not run")

	// A misspelt setting inside names its line.
	p = write(t, "agent.json", "{\n \"filesystem\": {\n  \"ignore_fstypes\": [\"tmpfs\"]}}\n")
	c, err = agentconfig.Load(p)
	require.NoError(t, err)
	_, err = c.Open()
	require.ErrorContains(t, err, p+`:3: filesystem.ignore_fstypes: `)

	// A key that is no driver makes it the new layout, where it is unknown.
	p = write(t, "agent.json", `{"filesystem": {}, "fylesystem": {}}`)
	_, err = agentconfig.Load(p)
	require.ErrorContains(t, err, p+":1: filesystem: unknown key")
}

func TestFlagsOverrideTheFile(t *testing.T) {
	c, err := agentconfig.Load(write(t, "agent.yaml", good))
	require.NoError(t, err)
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("connect", "tcp://127.0.0.1:7711", "")
	fs.String("drivers", "cpu", "")
	fs.Duration("interval", 10*time.Second, "")
	fs.String("tenant", "", "")
	fs.Int("batch", 1000, "")
	fs.String("config", "", "")
	require.NoError(t, fs.Parse([]string{"-connect", "tcp://h:1", "-drivers", "load,uptime", "-batch", "7", "-config", "x"}))
	require.NoError(t, c.Override(fs))
	require.Equal(t, []string{"tcp://h:1"}, c.Connect, "a list replaces, it does not merge")
	require.Equal(t, []string{"load", "uptime"}, []string{c.Drivers[0].Name, c.Drivers[1].Name})
	require.Len(t, c.Drivers, 2)
	require.Equal(t, 7, c.Batch)
	require.Equal(t, "acme", c.Tenant, "a flag not given keeps the file's value")
	require.Equal(t, 15*time.Second, c.Interval, "a flag not given keeps the file's value, not the flag's default")

	fs = flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("connect", "", "")
	require.NoError(t, fs.Parse([]string{"-connect", "tcp://a:1,,tcp://b:1"}))
	require.ErrorContains(t, c.Override(fs), "-connect: empty address")

	// Without a file: the defaults, then the flags.
	d := agentconfig.Default()
	require.Equal(t, agentconfig.DefaultDrivers, names(d))
}

func names(c *agentconfig.Config) []string {
	var out []string
	for _, d := range c.Drivers {
		out = append(out, d.Name)
	}
	return out
}

func TestEmptyFileIsTheDefaults(t *testing.T) {
	c, err := agentconfig.Load(write(t, "agent.yaml", "# nothing yet\n"))
	require.NoError(t, err)
	require.Equal(t, strings.Join(agentconfig.DefaultDrivers, ","), strings.Join(names(c), ","))
}

func TestTwoInstancesOfOneType(t *testing.T) {
	p := write(t, "agent.yaml", `drivers:
  - name: core-switch
    type: snmp
    interval: 30s
    settings:
      target: 10.0.0.1
      timeout: 5s
      objects: [{oid: .1.3.6.1.2.1.1.3.0, name: uptime}]
  - name: edge-router
    type: snmp
    settings:
      target: 10.0.0.2:1161
      community: private
      objects: [{oid: .1.3.6.1.2.1.1.3.0, name: uptime}]
`)
	c, err := agentconfig.Load(p)
	require.NoError(t, err)
	parts, err := c.Open()
	require.NoError(t, err)
	defer parts.Close()
	require.Len(t, parts.Drivers, 2)
	require.Equal(t, "core-switch", parts.Drivers[0].Name)
	require.Equal(t, 30*time.Second, parts.Drivers[0].Interval)
	require.Equal(t, "edge-router", parts.Drivers[1].Name)
	require.Equal(t, 10*time.Second, parts.Drivers[1].Interval)
	require.NotSame(t, parts.Drivers[0].Driver, parts.Drivers[1].Driver)
}

func TestRelativePathsAreTheFilesDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stages.yaml"), []byte("- type: select\n  meters: [cpu.*]\n- type: unit\n  to: MiB\n  form: B\n"), 0o600))
	p := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(p, []byte("stages_file: stages.yaml\nspool: spool\npublishers:\n  key_file: /etc/k\n"), 0o600))
	c, err := agentconfig.Load(p)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "stages.yaml"), c.StagesFile)
	require.Equal(t, filepath.Join(dir, "spool"), c.Spool)
	require.Equal(t, "/etc/k", c.KeyFile)
	_, err = c.Open()
	require.ErrorContains(t, err, filepath.Join(dir, "stages.yaml")+":5: stages[1].form: stage unit: ")
}

func TestHTTP(t *testing.T) {
	c, err := agentconfig.Load(write(t, "agent.yaml", "http: 127.0.0.1:9712\n"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9712", c.HTTP)
	require.Empty(t, agentconfig.Default().HTTP, "off by default")
	p := write(t, "agent.yaml", "interval: 5s\nhttp: 9712\n")
	_, err = agentconfig.Load(p)
	require.ErrorContains(t, err, p+`:2: http: want host:port (such as 127.0.0.1:9712), got "9712"`)

	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.String("http", "", "")
	require.NoError(t, fs.Parse([]string{"-http", ":9000"}))
	require.NoError(t, c.Override(fs))
	require.Equal(t, ":9000", c.HTTP)
	require.NoError(t, fs.Parse([]string{"-http", "nocolon"}))
	require.ErrorContains(t, c.Override(fs), "-http: want host:port")
}
