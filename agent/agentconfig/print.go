package agentconfig

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/internal/service"
	"github.com/meterkit/meter/internal/yamlfile"
)

// Log holds the log settings: log: {level, format} in the file, -log-level
// and -log-format on the command line.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (the default), warn or error
	Format string `yaml:"format"` // text (the default) or json: one JSON object a line
}

// over returns l with the values o gives.
func (l Log) over(o Log) Log { return Log(service.LogSettings(l).Over(service.LogSettings(o))) }

// check returns the errors of l, each made by at from its key.
func (l Log) check(at func(key string, err error) error) []error {
	return service.LogSettings(l).Check(at)
}

func checkLevel(s string) error { _, err := service.ParseLevel(s); return err }

// Logger returns the logger the configuration asks for, writing to w
// (the reference agent gives os.Stderr).
func (c *Config) Logger(w io.Writer) *slog.Logger {
	return service.Logger(w, c.Log.Level, c.Log.Format)
}

// printed is the layout of WriteYAML: the file's keys with their values in
// effect.
type printed struct {
	Publishers struct {
		Connect []string `yaml:"connect"`
		Tenant  string   `yaml:"tenant,omitempty"`
		KeyFile string   `yaml:"key_file,omitempty"`
		TLS     *TLS     `yaml:"tls,omitempty"`
	} `yaml:"publishers"`
	ID    string `yaml:"id,omitempty"`
	Spool string `yaml:"spool,omitempty"`
	Batch struct {
		Size int    `yaml:"size"`
		Age  string `yaml:"age"`
	} `yaml:"batch"`
	Queue       int           `yaml:"queue,omitempty"`
	StatsEvery  string        `yaml:"stats_every"`
	HTTP        string        `yaml:"http,omitempty"`
	SelfMetrics string        `yaml:"self_metrics,omitempty"`
	Interval    string        `yaml:"interval"`
	Log         Log           `yaml:"log"`
	Drivers     []printedInst `yaml:"drivers"`
}

type printedInst struct {
	Name     string `yaml:"name"`
	Type     string `yaml:"type"`
	Interval string `yaml:"interval,omitempty"`
	Timeout  string `yaml:"timeout,omitempty"`
	Settings any    `yaml:"settings,omitempty"`
}

// WriteYAML writes the configuration in effect (the file's values over the
// defaults, the flags given over them) to w as the YAML of a config file,
// for -print-config. Secrets are replaced by REDACTED: settings whose name
// says password, secret, token, community or credential (but not the
// *_file settings that name a file holding one) and the password of any
// URL. Paths are absolute where the file resolved them. The stages of a stage file (stages_file:, -stages) are read
// and printed as stages:, under a comment naming the file, so that the
// output saved as a config file runs the same stages; an unreadable stage
// file is an error.
func (c *Config) WriteYAML(w io.Writer) error {
	var p printed
	p.Publishers.Connect = make([]string, len(c.Connect))
	for i, a := range c.Connect {
		p.Publishers.Connect[i] = service.RedactURL(a)
	}
	p.Publishers.Tenant, p.Publishers.KeyFile = c.Tenant, c.KeyFile
	if c.TLS != (TLS{}) {
		t := c.TLS
		p.Publishers.TLS = &t
	}
	p.ID, p.Spool, p.Queue, p.HTTP, p.Log = c.ID, c.Spool, c.Queue, c.HTTP, c.Log
	p.Batch.Size, p.Batch.Age = c.Batch, c.BatchAge.String()
	p.StatsEvery, p.Interval, p.SelfMetrics = c.StatsEvery.String(), c.Interval.String(), durationOrEmpty(c.SelfMetrics)
	for _, in := range c.Drivers {
		pi := printedInst{Name: in.Name, Type: in.Type, Interval: durationOrEmpty(in.Interval), Timeout: durationOrEmpty(in.Timeout)}
		s, err := settingsValue(in.Settings)
		if err != nil {
			return fmt.Errorf("agentconfig: driver %s: %w", in.Name, err)
		}
		pi.Settings = s
		p.Drivers = append(p.Drivers, pi)
	}
	// Then the stages in effect, those of the stage file included: the
	// output, saved as a config file, runs the same stages.
	if err := yamlfile.WriteConfig(w, &p, c.f, c.stages, c.StagesFile); err != nil {
		return fmt.Errorf("agentconfig: %w", err)
	}
	return nil
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// settingsValue is a driver's settings as plain values, secrets redacted.
func settingsValue(cfg meter.Config) (any, error) {
	if cfg.IsZero() {
		return nil, nil
	}
	raw, err := cfg.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return service.Redact(v), nil
}

// Version describes the running binary in one line, for -version: program,
// the main module's path and version ("(devel)" when built from a
// checkout), the VCS revision and time it was built from ("+dirty" for
// uncommitted changes) and the Go version.
func Version(program string) string { return service.Version(program) }
