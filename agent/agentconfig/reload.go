package agentconfig

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/internal/yamlfile"
)

// reloadable are the keys a running agent takes from a file read again
// (Reload); a change to any other needs a restart.
var reloadable = []string{"interval", "drivers", "stages", "stages_file", "publishers.key_file (the file's keys; its path needs a restart)", "the secret files the drivers' settings name (their contents)"}

// ErrRestart marks a Reload refused because keys that need a restart
// changed.
var ErrRestart = errors.New("agentconfig: changed keys need a restart")

// Reload prepares the change from c, the configuration an agent runs with
// the parts p, to next, the file read again (with the same flags over it):
// it returns the parts of next, in which the drivers and stages whose
// settings did not change are those of p, the same values (so that
// agent.Reconfigure keeps them running with their state; a stage whose
// name is kept with other settings starts fresh), and the others newly
// opened; and a line for each change. A secret file an instance's settings
// name (community_file, password_file, ...) whose content differs from when
// c was read counts as a change of its settings: the instance is rebuilt,
// and reads the rotated secret. It fails, opening nothing, with an
// error wrapping ErrRestart and naming the keys, when a key that needs a
// restart changed (all but interval, drivers, stages and stages_file), or
// with Open's errors.
func (c *Config) Reload(p *Parts, next *Config) (*Parts, []string, error) {
	if keys := c.restartKeys(next); len(keys) > 0 {
		return nil, nil, fmt.Errorf("%w: %s (reloadable: %s)", ErrRestart, strings.Join(keys, ", "), strings.Join(reloadable, ", "))
	}
	var changes []string
	np := &Parts{Self: p.Self} // self_metrics needs a restart: the same driver goes on
	old := map[string]int{}
	for i, in := range c.Drivers {
		old[in.Name] = i
	}
	var errs []error
	var opened Parts // what Reload opened, closed if it fails
	f := next.f
	if f == nil {
		f = &yamlfile.File{Name: "-drivers"}
	}
	for _, in := range next.Drivers {
		iv := next.interval(in)
		if i, ok := old[in.Name]; ok && sameInstance(c.Drivers[i], in) {
			d := p.Drivers[i]
			if d.Interval != iv || d.Timeout != in.Timeout {
				changes = append(changes, fmt.Sprintf("drivers: %s: interval %v, timeout %v (was %v, %v)", in.Name, iv, in.Timeout, d.Interval, d.Timeout))
			}
			d.Interval, d.Timeout = iv, in.Timeout
			np.Drivers = append(np.Drivers, d)
			continue
		}
		one := *next
		one.Drivers = []Instance{in}
		one.stages, one.StagesFile = nil, ""
		op, err := one.Open()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		opened.Drivers = append(opened.Drivers, op.Drivers...)
		np.Drivers = append(np.Drivers, op.Drivers...)
		if i, ok := old[in.Name]; ok && c.Drivers[i].Type == in.Type && yamlfile.SameConfig(c.Drivers[i].Settings, in.Settings) {
			changes = append(changes, fmt.Sprintf("drivers: %s: a secret file it names changed (rebuilt)", in.Name))
		} else if ok {
			changes = append(changes, fmt.Sprintf("drivers: %s: type or settings changed (rebuilt)", in.Name))
		} else {
			changes = append(changes, fmt.Sprintf("drivers: %s: added (%s)", in.Name, in.Type))
		}
	}
	for _, in := range c.Drivers {
		if !slices.ContainsFunc(next.Drivers, func(n Instance) bool { return n.Name == in.Name }) {
			changes = append(changes, fmt.Sprintf("drivers: %s: removed", in.Name))
		}
	}
	st, change, err := yamlfile.ReloadStages(p.Stage, c.f, c.stages, c.StagesFile, f, next.stages, next.StagesFile)
	switch {
	case err != nil:
		errs = append(errs, err)
	case change != "": // newly opened
		np.Stage, opened.Stage = st, st
		changes = append(changes, change)
	default:
		np.Stage = st // p.Stage, kept
	}
	if err := errors.Join(errs...); err != nil {
		opened.Close()
		return nil, nil, err
	}
	return np, changes, nil
}

// ReconfigureOptions returns the options agent.Reconfigure takes for the
// parts p: the drivers and stages.
func (c *Config) ReconfigureOptions(p *Parts) []agent.Option {
	var opts []agent.Option
	if p.Stage != nil {
		opts = append(opts, agent.WithStage(p.Stage))
	}
	return append(opts, driverOptions(p)...)
}

func driverOptions(p *Parts) []agent.Option {
	var opts []agent.Option
	for _, d := range p.Drivers {
		dopts := []agent.DriverOption{agent.Interval(d.Interval)}
		if d.Timeout > 0 {
			dopts = append(dopts, agent.Timeout(d.Timeout))
		}
		opts = append(opts, agent.WithDriver(d.Name, d.Driver, dopts...))
	}
	if p.Self != nil {
		opts = append(opts, agent.WithDriver(SelfMetricsName, p.Self, agent.Interval(p.Self.Every)))
	}
	return opts
}

func (c *Config) interval(in Instance) time.Duration {
	if in.Interval != 0 {
		return in.Interval
	}
	return c.Interval
}

// sameInstance reports whether two instances open the same driver: the
// same type and settings, and the same contents of the secret files the
// settings name, as they were when each config was read (the schedule may
// differ).
func sameInstance(a, b Instance) bool {
	return a.Name == b.Name && a.Type == b.Type && yamlfile.SameConfig(a.Settings, b.Settings) && a.secrets == b.secrets
}

// restartKeys lists the keys that changed from c to next and need a restart.
func (c *Config) restartKeys(next *Config) []string {
	var keys []string
	diff := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	diff("publishers.connect", !slices.Equal(c.Connect, next.Connect))
	diff("publishers.tenant", c.Tenant != next.Tenant)
	diff("publishers.key_file", c.KeyFile != next.KeyFile)
	diff("publishers.tls", c.TLS != next.TLS)
	diff("id", c.ID != next.ID)
	diff("spool", c.Spool != next.Spool)
	diff("batch.size", c.Batch != next.Batch)
	diff("batch.age", c.BatchAge != next.BatchAge)
	diff("queue", c.Queue != next.Queue)
	diff("stats_every", c.StatsEvery != next.StatsEvery)
	diff("http", c.HTTP != next.HTTP)
	diff("self_metrics", c.SelfMetrics != next.SelfMetrics)
	diff("log.level", c.Log.Level != next.Log.Level)
	diff("log.format", c.Log.Format != next.Log.Format)
	return keys
}
