package publisherconfig

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meterkit/meter/internal/service"
	"github.com/meterkit/meter/internal/yamlfile"
	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	"github.com/meterkit/meter/stage"
)

// Config is the publisher's configuration: the file's values over the
// defaults, and over them the flags given (Override).
type Config struct {
	File string // the file it was read from; "" for none

	Listen       string        // listen (-listen)
	ID           string        // id: the publisher's id, of its own batches (-id; "": the host name)
	Workers      int           // workers (-workers)
	TLS          TLS           // tls (-tls-ca, -tls-cert, -tls-key)
	Keys         string        // keys: the tenant key file (-keys)
	ReplayWindow time.Duration // replay_window (0: the sealing's default)
	Spool        string        // spool (-spool)
	StatsEvery   time.Duration // stats_every (0: never)
	HTTP         string        // http: host:port of /metrics, /healthz and /readyz (-http; "": none)
	Sinks        []Sink        // sinks (-sink, repeatable)
	StagesFile   string        // stages_file (-stages)
	Log          Log           // log: level and format (-log-level, -log-format)

	f      *yamlfile.File
	stages []yamlfile.Stage
}

// TLS holds the files for a tls+tcp:// listener.
type TLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Sink is one sink: its name, which keys its spool lane and appears in logs
// (default: the URL without its password), and its URL.
type Sink struct {
	Name string
	URL  string
	Line int // where it is in the file; 0 if from a flag

	key     string
	node    *yaml.Node
	secrets string // digest of the files its URL names (password_file=, ...), when read
}

type file struct {
	Listen       string         `yaml:"listen"`
	ID           string         `yaml:"id"`
	Workers      int            `yaml:"workers"`
	TLS          TLS            `yaml:"tls"`
	Keys         string         `yaml:"keys"`
	ReplayWindow time.Duration  `yaml:"replay_window"`
	Spool        string         `yaml:"spool"`
	StatsEvery   *time.Duration `yaml:"stats_every"`
	HTTP         string         `yaml:"http"`
	Sinks        []yaml.Node    `yaml:"sinks"`
	Stages       yaml.Node      `yaml:"stages"`
	StagesFile   string         `yaml:"stages_file"`
	Log          Log            `yaml:"log"`
}

type sinkBlock struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
}

// Default returns the configuration used when no file is given: the flags'
// defaults of the reference publisher.
func Default() *Config {
	return &Config{
		Listen:     "tcp://127.0.0.1:7711",
		Workers:    publisher.DefaultWorkers,
		StatsEvery: publisher.DefaultStatsInterval,
		Sinks:      []Sink{{Name: redacted("console://"), URL: "console://"}},
		Log:        Log{Level: "info", Format: "text"},
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
		return nil, f.Errorf(root, "", "want a mapping of settings (listen:, sinks: ...), got %s", yamlfile.Describe(root))
	}
	var v file
	if err := f.Decode(root, "", &v); err != nil {
		return nil, err
	}
	var errs []error
	if v.Listen != "" {
		c.Listen = v.Listen
		if err := checkListen(v.Listen); err != nil {
			k, _ := yamlfile.Get(root, "listen")
			errs = append(errs, f.Errorf(k, "listen", "%v", err))
		}
	}
	if v.ID != "" {
		c.ID = v.ID
	}
	if v.Workers != 0 {
		c.Workers = v.Workers
	}
	if v.Workers < 0 {
		k, _ := yamlfile.Get(root, "workers")
		errs = append(errs, f.Errorf(k, "workers", "want a positive number, got %d", v.Workers))
	}
	c.TLS, c.Keys, c.ReplayWindow, c.Spool, c.StagesFile = v.TLS, f.Path(v.Keys), v.ReplayWindow, f.Path(v.Spool), f.Path(v.StagesFile)
	c.TLS.CA, c.TLS.Cert, c.TLS.Key = f.Path(c.TLS.CA), f.Path(c.TLS.Cert), f.Path(c.TLS.Key)
	if v.StatsEvery != nil {
		c.StatsEvery = *v.StatsEvery
	}
	c.HTTP = v.HTTP
	c.Log = c.Log.over(v.Log)
	errs = append(errs, c.Log.check(func(key string, err error) error {
		n := root
		for _, p := range []string{"log", key[len("log."):]} {
			if _, v := yamlfile.Get(n, p); v != nil {
				n = v
			}
		}
		return f.Errorf(n, key, "%v", err)
	})...)
	if err := checkHTTP(c.HTTP); err != nil {
		k, _ := yamlfile.Get(root, "http")
		errs = append(errs, f.Errorf(k, "http", "%v", err))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"replay_window", c.ReplayWindow}, {"stats_every", c.StatsEvery}} {
		if d.v < 0 {
			k, _ := yamlfile.Get(root, d.key)
			errs = append(errs, f.Errorf(k, d.key, "want a positive duration, got %v", d.v))
		}
	}
	if _, sn := yamlfile.Get(root, "sinks"); sn != nil {
		c.Sinks = nil
		seen := map[string]int{}
		for i := range v.Sinks {
			n := &v.Sinks[i]
			key := fmt.Sprintf("sinks[%d]", i)
			s := Sink{Line: n.Line, key: key, node: n}
			switch n.Kind {
			case yaml.ScalarNode:
				s.URL = n.Value
			case yaml.MappingNode:
				var b sinkBlock
				if err := f.Decode(n, key, &b); err != nil {
					errs = append(errs, err)
					continue
				}
				if b.URL == "" {
					errs = append(errs, f.Errorf(n, key+".url", "required: the sink's URL, such as riemann://127.0.0.1:5555"))
					continue
				}
				s.Name, s.URL = b.Name, b.URL
			default:
				errs = append(errs, f.Errorf(n, key, "want a sink URL or a block (name: and url:), got %s", yamlfile.Describe(n)))
				continue
			}
			if s.Name == "" {
				s.Name = redacted(s.URL)
			}
			if line, dup := seen[s.Name]; dup {
				errs = append(errs, f.Errorf(n, key, "a sink named %q is already at line %d: give each a name: of its own", s.Name, line))
				continue
			}
			seen[s.Name] = n.Line
			c.Sinks = append(c.Sinks, s)
		}
		if len(c.Sinks) == 0 && len(errs) == 0 {
			errs = append(errs, f.Errorf(sn, "sinks", "empty: give at least one sink URL, such as console://"))
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

// selfReloading are, by sink scheme, the secret files a sink reads again by
// itself when they change (the web sink's token and users files), which a
// reload must not rebuild it for: it would lose its history.
var selfReloading = map[string][]string{"web": {"token_file", "users_file"}}

// stampSecrets notes, for each sink, the contents of the secret files its
// URL names, as they are now: Reload rebuilds a sink whose files changed
// since (a rotated password_file= or clouds_file=).
func (c *Config) stampSecrets() {
	for i := range c.Sinks {
		scheme, _, _ := strings.Cut(c.Sinks[i].URL, "://")
		c.Sinks[i].secrets = yamlfile.URLSecretsDigest(c.Sinks[i].URL, selfReloading[scheme])
	}
}

// redacted is the URL without its password, as the sink's default name.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// Override sets the values of the flags given on fs's command line (after
// fs.Parse), each replacing the file's value for its key: -listen,
// -workers, -tls-ca, -tls-cert, -tls-key, -keys, -replay-window, -spool,
// -stats-every, -http, -stages (the stage file: replaces the file's
// stages), -log-level, -log-format and -sink (repeatable, its value the
// URLs joined by spaces: replaces the file's sinks). Other flags are left
// to the program.
func (c *Config) Override(fs *flag.FlagSet) error {
	var errs []error
	fs.Visit(func(fl *flag.Flag) {
		if err := c.set(fl.Name, fl.Value); err != nil {
			errs = append(errs, fmt.Errorf("-%s: %w", fl.Name, err))
		}
	})
	c.stampSecrets()
	return errors.Join(errs...)
}

func (c *Config) set(name string, fv flag.Value) error {
	v := fv.String()
	var err error
	switch name {
	case "listen":
		c.Listen, err = v, checkListen(v)
	case "id":
		c.ID = v
	case "workers":
		c.Workers, err = strconv.Atoi(v)
	case "tls-ca":
		c.TLS.CA = v
	case "tls-cert":
		c.TLS.Cert = v
	case "tls-key":
		c.TLS.Key = v
	case "keys":
		c.Keys = v
	case "replay-window":
		c.ReplayWindow, err = time.ParseDuration(v)
	case "spool":
		c.Spool = v
	case "stats-every":
		c.StatsEvery, err = time.ParseDuration(v)
	case "http":
		c.HTTP, err = v, checkHTTP(v)
	case "stages":
		c.StagesFile, c.stages = v, nil
	case "log-level":
		c.Log.Level, err = v, checkLevel(v)
	case "log-format":
		c.Log.Format, err = v, service.CheckFormat(v)
	case "sink":
		urls := strings.Fields(v)
		if g, ok := fv.(flag.Getter); ok {
			if l, ok := g.Get().([]string); ok {
				urls = l
			}
		}
		c.Sinks = nil
		for _, u := range urls {
			c.Sinks = append(c.Sinks, Sink{Name: redacted(u), URL: u})
		}
	}
	return err
}

// Parts are the sinks and stages a Config names, opened.
type Parts struct {
	Sinks []Opened
	Stage stage.Stage // nil: no stages
}

// Opened is one opened sink and its name.
type Opened struct {
	Name string
	Sink sink.Sink
}

// Open opens every sink (sink.Open) and stage the configuration names, and
// reads the stage file it names. Errors name the file, line and key; all are
// reported, joined. It opens no spool; whether a sink does I/O when opened
// is its opener's business (the built-in ones connect on first use). It
// checks the files a sink's URL names, and that the directory of a
// console:///path sink's file exists and is writable (a stat and an
// access(2) check: the file is not created).
func (c *Config) Open(ctx context.Context) (*Parts, error) {
	p := &Parts{}
	var errs []error
	f := c.f
	if f == nil {
		f = &yamlfile.File{Name: "-sink"}
	}
	schemes := sink.Schemes()
	for _, s := range c.Sinks {
		key := s.key
		if key == "" {
			key = s.Name
		}
		at := s.node
		if s.node != nil && s.node.Kind == yaml.MappingNode {
			if k, _ := yamlfile.Get(s.node, "url"); k != nil {
				at, key = k, key+".url"
			}
		}
		u, err := url.Parse(s.URL)
		switch {
		case !strings.Contains(s.URL, "://") || err == nil && u.Scheme == "":
			errs = append(errs, f.Errorf(at, key, "%q has no scheme: write it as SCHEME://..., one of %s", s.URL, strings.Join(schemes, ", ")))
			continue
		case err != nil:
			errs = append(errs, f.Wrap(at, key, err))
			continue
		case !slices.Contains(schemes, u.Scheme):
			errs = append(errs, f.Errorf(at, key, "unknown sink scheme %q (registered: %s)", u.Scheme, strings.Join(schemes, ", ")))
			continue
		}
		if err := checkURLFiles(u); err != nil {
			errs = append(errs, f.Wrap(at, key, err))
			continue
		}
		if err := checkConsoleDir(u); err != nil {
			if s.node != nil { // from the file: its key does not say which URL
				err = fmt.Errorf("%s: %w", redacted(s.URL), err)
			}
			errs = append(errs, f.Wrap(at, key, err))
			continue
		}
		sk, err := sink.Open(ctx, s.URL)
		if err != nil {
			errs = append(errs, f.Wrap(at, key, err))
			continue
		}
		p.Sinks = append(p.Sinks, Opened{Name: s.Name, Sink: sk})
	}
	st, err := yamlfile.OpenStageList(f, c.stages, c.StagesFile)
	if err != nil {
		errs = append(errs, err)
	}
	p.Stage = st
	if err := errors.Join(errs...); err != nil {
		p.Close(ctx)
		return nil, err
	}
	return p, nil
}

// Options returns the publisher options for the configuration and the
// opened parts: everything but the logger, which the program adds.
// replayWindow is the sealing's window in effect (0: no sealing): the
// de-duplication must cover the replays it lets through.
func (c *Config) Options(p *Parts, replayWindow time.Duration) []publisher.Option {
	stats := c.StatsEvery
	if stats == 0 {
		stats = publisher.NoStats
	}
	opts := []publisher.Option{publisher.WithWorkers(c.Workers), publisher.WithStatsInterval(stats),
		publisher.WithDedupWindow(0, max(publisher.DefaultDedupAge, 2*replayWindow))}
	if c.Spool != "" {
		opts = append(opts, publisher.WithSpool(c.Spool))
	}
	if c.ID != "" {
		opts = append(opts, publisher.WithID(c.ID))
	}
	if p.Stage != nil {
		opts = append(opts, publisher.WithStage(p.Stage))
	}
	for _, s := range p.Sinks {
		opts = append(opts, publisher.WithSink(s.Name, s.Sink))
	}
	return opts
}

// Close closes the opened sinks and stages; for a check, or when the
// publisher could not be made.
func (p *Parts) Close(ctx context.Context) {
	for _, s := range p.Sinks {
		_ = s.Sink.Close(ctx)
	}
	if p.Stage != nil {
		yamlfile.CloseStage(p.Stage)
	}
}

// checkURLFiles checks the files a sink's URL names in parameters ending in
// _file, which some sinks read only when they start (the web sink's
// token_file= and users_file=): each must be a regular file only its owner
// may read or write, as the secret files are, but for a clouds_file=
// (clouds.yaml), which only has to be a file. So -check, and the start,
// fail on them rather than the first write.
func checkURLFiles(u *url.URL) error {
	q := u.Query()
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !strings.HasSuffix(k, "_file") {
			continue
		}
		for _, p := range q[k] {
			var err error
			if k == "clouds_file" {
				var fi os.FileInfo
				if fi, err = os.Stat(p); err == nil && !fi.Mode().IsRegular() {
					err = fmt.Errorf("%s is not a regular file", p)
				}
			} else {
				err = service.CheckSecretFile(p)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=: %w", k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// checkHTTP checks the self-metrics address: empty (none) or host:port.
func checkHTTP(addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("want host:port (such as 127.0.0.1:9711), got %q", addr)
	}
	return nil
}

// checkListen refuses an inproc:// address: it reaches only agents in the
// same process, and the reference publisher runs none.
func checkListen(addr string) error {
	if strings.HasPrefix(addr, "inproc://") {
		return fmt.Errorf("%q: inproc:// reaches only agents in the same process, and this publisher runs none: listen on tcp://, tls+tcp:// or ipc://", addr)
	}
	return nil
}
