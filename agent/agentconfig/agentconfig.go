package agentconfig

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/service"
	"github.com/meterkit/meter/internal/yamlfile"
	"github.com/meterkit/meter/stage"
)

// DefaultDrivers are the drivers run when neither the file nor -drivers
// names any.
var DefaultDrivers = []string{"cpu", "memory", "swap", "load", "disk", "filesystem", "network", "uptime", "processes"}

// Config is the agent's configuration: the file's values over the
// defaults, and over them the flags given (Override).
type Config struct {
	File       string // the file it was read from; "" for none
	Deprecated bool   // the file was the older per-driver settings map

	Connect     []string      // publisher addresses (publishers.connect)
	Tenant      string        // publishers.tenant
	KeyFile     string        // publishers.key_file: seal with Tenant's key
	TLS         TLS           // publishers.tls
	ID          string        // id (default: the host name)
	Spool       string        // spool: directory of the durable spool
	Batch       int           // batch.size
	BatchAge    time.Duration // batch.age
	Queue       int           // queue: batches waiting in memory
	StatsEvery  time.Duration // stats_every (0: never)
	HTTP        string        // http: host:port of /metrics, /healthz and /readyz ("": none)
	SelfMetrics time.Duration // self_metrics: send the agent's own counters this often (0: never)
	Interval    time.Duration // interval: of instances that give none
	Drivers     []Instance    // drivers
	StagesFile  string        // stages_file: a YAML stage list (stage/stagefile)
	Log         Log           // log: level and format (-log-level, -log-format)

	f      *yamlfile.File
	stages []yamlfile.Stage
	legacy map[string]legacyEntry
}

// TLS holds the files for tls+tcp:// publishers.
type TLS struct {
	CA         string `yaml:"ca"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ServerName string `yaml:"server_name"`
}

// Instance is one driver the agent runs: its own name (default: its type),
// the registered driver type, its schedule and its settings.
type Instance struct {
	Name     string
	Type     string
	Interval time.Duration // 0: Config.Interval
	Timeout  time.Duration // 0: the agent's default (the interval)
	Settings meter.Config
	Line     int // where it is in the file; 0 if from a flag

	key      string     // drivers[2]
	node     *yaml.Node // the item
	settings *yaml.Node // its settings mapping
	secrets  string     // digest of the files its settings name (*_file), when read
}

type legacyEntry struct {
	cfg        meter.Config
	key, value *yaml.Node
}

// file is the layout of the YAML file.
type file struct {
	Publishers struct {
		Connect []string `yaml:"connect"`
		Tenant  string   `yaml:"tenant"`
		KeyFile string   `yaml:"key_file"`
		TLS     TLS      `yaml:"tls"`
	} `yaml:"publishers"`
	ID    string `yaml:"id"`
	Spool string `yaml:"spool"`
	Batch struct {
		Size int           `yaml:"size"`
		Age  time.Duration `yaml:"age"`
	} `yaml:"batch"`
	Queue       int            `yaml:"queue"`
	StatsEvery  *time.Duration `yaml:"stats_every"`
	HTTP        string         `yaml:"http"`
	SelfMetrics time.Duration  `yaml:"self_metrics"`
	Interval    time.Duration  `yaml:"interval"`
	Drivers     []struct {
		Name     string        `yaml:"name"`
		Type     string        `yaml:"type"`
		Interval time.Duration `yaml:"interval"`
		Timeout  time.Duration `yaml:"timeout"`
		Settings yaml.Node     `yaml:"settings"`
	} `yaml:"drivers"`
	Stages     yaml.Node `yaml:"stages"`
	StagesFile string    `yaml:"stages_file"`
	Log        Log       `yaml:"log"`
}

// Default returns the configuration used when no file is given: the flags'
// defaults of the reference agent.
func Default() *Config {
	c := &Config{
		Connect:    []string{"tcp://127.0.0.1:7711"},
		Batch:      agent.DefaultBatchSize,
		BatchAge:   agent.DefaultBatchAge,
		StatsEvery: agent.DefaultStatsInterval,
		Interval:   agent.DefaultInterval,
		Log:        Log{Level: "info", Format: "text"},
	}
	c.setDrivers(DefaultDrivers)
	return c
}

func (c *Config) setDrivers(names []string) {
	c.Drivers = make([]Instance, 0, len(names))
	for _, n := range names {
		c.Drivers = append(c.Drivers, Instance{Name: n, Type: n})
	}
}

// Load reads the named file over Default. Its errors are FILE:LINE: KEY:
// message, one per problem, joined.
func Load(path string) (*Config, error) { return yamlfile.ReadWith(path, decode) }

// Parse is Load for a file's content b, name naming it in errors.
func Parse(name string, b []byte) (*Config, error) { return yamlfile.ParseWith(name, b, decode) }

func decode(f *yamlfile.File) (*Config, error) {
	c := Default()
	c.File, c.f = f.Name, f
	root := f.Root
	if root == nil {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, f.Errorf(root, "", "want a mapping of settings (publishers:, drivers: ...), got %s", yamlfile.Describe(root))
	}
	if isLegacy(root) {
		return c, c.decodeLegacy(root)
	}
	var v file
	if err := f.Decode(root, "", &v); err != nil {
		return nil, err
	}
	var errs []error
	if _, n := yamlfile.Get(root, "publishers"); n != nil {
		if _, cn := yamlfile.Get(n, "connect"); cn != nil {
			c.Connect = v.Publishers.Connect
			for i, a := range c.Connect {
				if strings.TrimSpace(a) == "" {
					errs = append(errs, f.Errorf(cn.Content[i], fmt.Sprintf("publishers.connect[%d]", i), "empty address"))
				} else if err := checkConnect(a); err != nil {
					errs = append(errs, f.Errorf(cn.Content[i], fmt.Sprintf("publishers.connect[%d]", i), "%v", err))
				}
			}
		}
		c.Tenant, c.KeyFile, c.TLS = v.Publishers.Tenant, f.Path(v.Publishers.KeyFile), v.Publishers.TLS
		c.TLS.CA, c.TLS.Cert, c.TLS.Key = f.Path(c.TLS.CA), f.Path(c.TLS.Cert), f.Path(c.TLS.Key)
	}
	c.ID, c.Spool, c.Queue, c.StagesFile, c.HTTP = v.ID, f.Path(v.Spool), v.Queue, f.Path(v.StagesFile), v.HTTP
	if err := checkHTTP(c.HTTP); err != nil {
		errs = append(errs, c.errorAt(root, "http", "%v", err))
	}
	c.Log = c.Log.over(v.Log)
	errs = append(errs, c.Log.check(func(key string, err error) error { return c.errorAt(root, key, "%v", err) })...)
	if v.Batch.Size != 0 {
		c.Batch = v.Batch.Size
	}
	if v.Batch.Age != 0 {
		c.BatchAge = v.Batch.Age
	}
	if v.StatsEvery != nil {
		c.StatsEvery = *v.StatsEvery
	}
	if v.Interval != 0 {
		c.Interval = v.Interval
	}
	c.SelfMetrics = v.SelfMetrics
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"batch.age", v.Batch.Age}, {"stats_every", c.StatsEvery}, {"interval", v.Interval}, {"self_metrics", v.SelfMetrics}} {
		if d.v < 0 {
			errs = append(errs, c.errorAt(root, d.key, "want a positive duration, got %v", d.v))
		}
	}
	if _, dn := yamlfile.Get(root, "drivers"); dn != nil {
		c.Drivers = c.Drivers[:0]
		seen := map[string]int{}
		for i, d := range v.Drivers {
			item := dn.Content[i]
			key := fmt.Sprintf("drivers[%d]", i)
			in := Instance{Name: d.Name, Type: d.Type, Interval: d.Interval, Timeout: d.Timeout, Line: item.Line, key: key, node: item}
			if in.Type == "" {
				errs = append(errs, f.Errorf(item, key+".type", "required: one of the registered drivers (%s)", strings.Join(driver.Drivers(), ", ")))
				continue
			}
			if in.Name == "" {
				in.Name = in.Type
			}
			if in.Name == SelfMetricsName {
				errs = append(errs, f.Errorf(item, key+".name", "%q is the name of the instance that self_metrics: adds: give this one another name", in.Name))
				continue
			}
			if line, dup := seen[in.Name]; dup {
				errs = append(errs, f.Errorf(item, key+".name", "an instance named %q is already at line %d: give each a name of its own", in.Name, line))
				continue
			}
			seen[in.Name] = item.Line
			if in.Interval < 0 || in.Timeout < 0 {
				errs = append(errs, f.Errorf(item, key, "interval and timeout must not be negative"))
				continue
			}
			if _, sn := yamlfile.Get(item, "settings"); sn != nil {
				cfg, err := f.Config(sn, key+".settings")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				in.Settings, in.settings = cfg, sn
			}
			c.Drivers = append(c.Drivers, in)
		}
	}
	if _, sn := yamlfile.Get(root, "stages"); sn != nil {
		if c.StagesFile != "" {
			errs = append(errs, f.Errorf(sn, "stages", "give stages or stages_file, not both"))
		}
		st, err := f.Stages(sn, "stages")
		if err != nil {
			errs = append(errs, err)
		}
		c.stages = st
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.stampSecrets()
	return c, nil
}

// stampSecrets notes, for each instance, the contents of the secret files
// its settings name, as they are now: Reload rebuilds an instance whose
// files changed since (a rotated community or password).
func (c *Config) stampSecrets() {
	for i := range c.Drivers {
		c.Drivers[i].secrets = yamlfile.SecretsDigest(c.Drivers[i].Settings)
	}
}

func (c *Config) errorAt(root *yaml.Node, path, format string, args ...any) error {
	n := root
	for p := range strings.SplitSeq(path, ".") {
		_, v := yamlfile.Get(n, p)
		if v == nil {
			break
		}
		n = v
	}
	return c.f.Errorf(n, path, format, args...)
}

// isLegacy reports whether every top-level key is a registered driver.
func isLegacy(root *yaml.Node) bool {
	keys := yamlfile.Keys(root)
	if len(keys) == 0 {
		return false
	}
	known := driver.Drivers()
	for _, k := range keys {
		if !slices.Contains(known, k.Value) {
			return false
		}
	}
	return true
}

func (c *Config) decodeLegacy(root *yaml.Node) error {
	c.Deprecated = true
	c.legacy = map[string]legacyEntry{}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		cfg, err := c.f.Config(v, k.Value)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.legacy[k.Value] = legacyEntry{cfg: cfg, key: k, value: v}
	}
	c.applyLegacy()
	return errors.Join(errs...)
}

// applyLegacy gives each instance its settings from the older map.
func (c *Config) applyLegacy() {
	for i := range c.Drivers {
		if e, ok := c.legacy[c.Drivers[i].Type]; ok {
			d := &c.Drivers[i]
			d.Settings, d.settings, d.node, d.Line, d.key = e.cfg, e.value, e.key, e.key.Line, e.key.Value
		}
	}
}

// Warnings returns what the operator should change in the file, such as the
// older per-driver settings map.
func (c *Config) Warnings() []string {
	if !c.Deprecated {
		return nil
	}
	ws := []string{fmt.Sprintf("%s: a map of per-driver settings is deprecated: write drivers: as a list (- type: NAME, settings: {...}), see examples/agent/agent.yaml", c.File)}
	for name, e := range c.legacy {
		if !slices.ContainsFunc(c.Drivers, func(in Instance) bool { return in.Type == name }) {
			ws = append(ws, fmt.Sprintf("%s:%d: %s: settings for a driver that does not run (not in -drivers)", c.File, e.key.Line, name))
		}
	}
	slices.Sort(ws[1:])
	return ws
}

// Override sets the values of the flags given on fs's command line (after
// fs.Parse), each replacing the file's value for its key: -connect
// (comma-separated, replaces the list), -drivers (replaces the instances
// with one of each type, default settings or those of the older map),
// -interval (the default interval), -tenant, -id, -spool, -batch,
// -batch-age, -stats-every, -http, -tls-ca, -tls-cert, -tls-key,
// -tls-server-name, -stages (the stage file: replaces the file's stages),
// -key-file, -log-level and -log-format. Other flags are left to the program.
func (c *Config) Override(fs *flag.FlagSet) error {
	var errs []error
	fs.Visit(func(fl *flag.Flag) {
		if err := c.set(fl.Name, fl.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("-%s: %w", fl.Name, err))
		}
	})
	c.stampSecrets()
	return errors.Join(errs...)
}

func (c *Config) set(name, v string) error {
	var err error
	switch name {
	case "connect":
		c.Connect = strings.Split(v, ",")
		for i, a := range c.Connect {
			if strings.TrimSpace(a) == "" {
				return fmt.Errorf("empty address in %q (entry %d of %d): separate addresses by one comma", v, i+1, len(c.Connect))
			}
			if err := checkConnect(a); err != nil {
				return err
			}
		}
	case "drivers":
		var names []string
		for n := range strings.SplitSeq(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		c.setDrivers(names)
		c.applyLegacy()
	case "interval":
		c.Interval, err = time.ParseDuration(v)
	case "tenant":
		c.Tenant = v
	case "id":
		c.ID = v
	case "spool":
		c.Spool = v
	case "batch":
		c.Batch, err = strconv.Atoi(v)
	case "batch-age":
		c.BatchAge, err = time.ParseDuration(v)
	case "stats-every":
		c.StatsEvery, err = time.ParseDuration(v)
	case "http":
		c.HTTP, err = v, checkHTTP(v)
	case "tls-ca":
		c.TLS.CA = v
	case "tls-cert":
		c.TLS.Cert = v
	case "tls-key":
		c.TLS.Key = v
	case "tls-server-name":
		c.TLS.ServerName = v
	case "stages":
		c.StagesFile, c.stages = v, nil
	case "key-file":
		c.KeyFile = v
	case "log-level":
		c.Log.Level, err = v, checkLevel(v)
	case "log-format":
		c.Log.Format, err = v, service.CheckFormat(v)
	}
	return err
}

// Parts are the drivers and stages a Config names, opened.
type Parts struct {
	Drivers []Driver
	Stage   stage.Stage  // nil: no stages
	Self    *SelfMetrics // self_metrics:, to Bind once the agent is made; nil: off
}

// Driver is one opened instance.
type Driver struct {
	Name     string
	Driver   driver.Driver
	Interval time.Duration
	Timeout  time.Duration
}

// Open opens every driver instance and stage the configuration names, in
// the default registries, and reads the stage file it names. It does no
// network I/O and opens no spool (as far as the drivers' factories keep to
// that). Errors name the file, line and key; all are reported, joined.
func (c *Config) Open() (*Parts, error) {
	p := &Parts{}
	var errs []error
	f := c.f
	if f == nil {
		f = &yamlfile.File{Name: "-drivers"}
	}
	for _, in := range c.Drivers {
		key := in.key
		if key == "" {
			key = in.Name
		}
		if _, err := driver.Lookup(in.Type); err != nil {
			at := in.node
			if k, _ := yamlfile.Get(in.node, "type"); k != nil {
				at, key = k, key+".type"
			}
			errs = append(errs, f.Errorf(at, key, "unknown driver %q (registered: %s)", in.Type, strings.Join(driver.Drivers(), ", ")))
			continue
		}
		d, err := driver.Open(in.Type, in.Settings)
		if err != nil {
			sk := key + ".settings"
			if c.Deprecated {
				sk = key
			}
			errs = append(errs, f.SettingsError(in.node, in.settings, key, sk, err))
			continue
		}
		if r, ok := d.(driver.SpoolRequirer); ok && c.Spool == "" && r.RequiresSpool() {
			if cl, ok := d.(io.Closer); ok {
				_ = cl.Close()
			}
			errs = append(errs, f.Errorf(in.node, key, "driver %q (type %s) requires a spool, which makes what it receives durable before its source forgets it: set spool: (or -spool)", in.Name, in.Type))
			continue
		}
		iv := in.Interval
		if iv == 0 {
			iv = c.Interval
		}
		p.Drivers = append(p.Drivers, Driver{Name: in.Name, Driver: d, Interval: iv, Timeout: in.Timeout})
	}
	st, err := yamlfile.OpenStageList(f, c.stages, c.StagesFile)
	if err != nil {
		errs = append(errs, err)
	}
	p.Stage = st
	if c.SelfMetrics > 0 {
		p.Self = &SelfMetrics{Every: c.SelfMetrics}
	}
	if err := errors.Join(errs...); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Options returns the agent options for the configuration and the opened
// parts: everything but the logger and the transport, which the program
// adds.
func (c *Config) Options(p *Parts) []agent.Option {
	stats := c.StatsEvery
	if stats == 0 {
		stats = agent.NoStats
	}
	opts := []agent.Option{agent.WithTenant(c.Tenant), agent.WithID(c.ID),
		agent.WithBatch(c.Batch, c.BatchAge), agent.WithStatsInterval(stats)}
	if c.Queue > 0 {
		opts = append(opts, agent.WithQueue(c.Queue))
	}
	if c.Spool != "" {
		opts = append(opts, agent.WithSpool(c.Spool))
	}
	if p.Stage != nil {
		opts = append(opts, agent.WithStage(p.Stage))
	}
	return append(opts, driverOptions(p)...)
}

// Close closes the opened drivers and stages that hold resources; for a
// check, or when the agent could not be made.
func (p *Parts) Close() {
	for _, d := range p.Drivers {
		if cl, ok := d.Driver.(io.Closer); ok {
			_ = cl.Close()
		}
	}
	if p.Stage != nil {
		yamlfile.CloseStage(p.Stage)
	}
}

// checkHTTP checks the self-metrics address: empty (none) or host:port.
func checkHTTP(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("want host:port (such as 127.0.0.1:9712), got %q", addr)
	}
	return nil
}

// checkConnect refuses an inproc:// address: it reaches only a publisher in
// the same process, and the reference agent runs none.
func checkConnect(addr string) error {
	if strings.HasPrefix(strings.TrimSpace(addr), "inproc://") {
		return fmt.Errorf("%q: inproc:// reaches only a publisher in the same process, and this agent runs none: connect over tcp://, tls+tcp:// or ipc://", addr)
	}
	return nil
}
