package publisherconfig

import (
	"fmt"
	"io"
	"log/slog"

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
// (the reference publisher gives os.Stderr).
func (c *Config) Logger(w io.Writer) *slog.Logger {
	return service.Logger(w, c.Log.Level, c.Log.Format)
}

// Version describes the running binary in one line, for -version: program,
// the main module's path and version ("(devel)" when built from a
// checkout), the VCS revision and time it was built from ("+dirty" for
// uncommitted changes) and the Go version.
func Version(program string) string { return service.Version(program) }

// printed is the layout of WriteYAML: the file's keys with their values in
// effect.
type printed struct {
	Listen       string        `yaml:"listen"`
	Workers      int           `yaml:"workers"`
	TLS          *TLS          `yaml:"tls,omitempty"`
	Keys         string        `yaml:"keys,omitempty"`
	ReplayWindow string        `yaml:"replay_window,omitempty"`
	Spool        string        `yaml:"spool,omitempty"`
	StatsEvery   string        `yaml:"stats_every"`
	HTTP         string        `yaml:"http,omitempty"`
	Log          Log           `yaml:"log"`
	Sinks        []printedSink `yaml:"sinks"`
}

type printedSink struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
}

// WriteYAML writes the configuration in effect (the file's values over the
// defaults, the flags given over them) to w as the YAML of a config file,
// for -print-config. Secrets are replaced by REDACTED: the password of a
// sink URL, URL parameters and stage settings whose name says password,
// secret, token or credential (but not the *_file ones that name a file
// holding one). Paths are absolute where the file resolved them. The stages of a stage file (stages_file:, -stages) are read
// and printed as stages:, under a comment naming the file, so that the
// output saved as a config file runs the same stages; an unreadable stage
// file is an error.
func (c *Config) WriteYAML(w io.Writer) error {
	p := printed{Listen: service.RedactURL(c.Listen), Workers: c.Workers, Keys: c.Keys, Spool: c.Spool,
		StatsEvery: c.StatsEvery.String(), HTTP: c.HTTP, Log: c.Log}
	if c.TLS != (TLS{}) {
		t := c.TLS
		p.TLS = &t
	}
	if c.ReplayWindow != 0 {
		p.ReplayWindow = c.ReplayWindow.String()
	}
	for _, s := range c.Sinks {
		p.Sinks = append(p.Sinks, printedSink{Name: service.RedactURL(s.Name), URL: service.RedactURL(s.URL)})
	}
	// Then the stages in effect, those of the stage file included: the
	// output, saved as a config file, runs the same stages.
	if err := yamlfile.WriteConfig(w, &p, c.f, c.stages, c.StagesFile); err != nil {
		return fmt.Errorf("publisherconfig: %w", err)
	}
	return nil
}
