package publisherconfig

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meterkit/meter/internal/yamlfile"
	"github.com/meterkit/meter/publisher"
)

// reloadable are the keys a running publisher takes from a file read again
// (Reload); a change to any other needs a restart.
var reloadable = []string{"sinks", "stages", "stages_file", "keys (the file's keys; its path needs a restart)", "the secret files the sinks' URLs name (their contents)"}

// ErrRestart marks a Reload refused because keys that need a restart
// changed.
var ErrRestart = errors.New("publisherconfig: changed keys need a restart")

// Reload prepares the change from c, the configuration a publisher runs
// with the parts p, to next, the file read again (with the same flags over
// it): it returns the parts of next, in which the sinks whose name, URL and
// secret files did not change and the stages whose settings did not change are those of
// p, the same values (so that publisher.Reconfigure keeps them running; a
// stage whose name is kept with other settings starts fresh), and the
// others newly opened; and a line for each change. A secret file a sink's
// URL names (password_file=, clouds_file=) whose content differs from when
// c was read counts as a change of its URL: the sink is rebuilt, and reads
// the rotated secret (but for the web sink's token_file= and users_file=,
// which it reads again by itself). It fails, opening
// nothing, with an error wrapping ErrRestart and naming the keys, when a
// key that needs a restart changed (all but sinks, stages and stages_file),
// or with Open's errors.
func (c *Config) Reload(ctx context.Context, p *Parts, next *Config) (*Parts, []string, error) {
	if keys := c.restartKeys(next); len(keys) > 0 {
		return nil, nil, fmt.Errorf("%w: %s (reloadable: %s)", ErrRestart, strings.Join(keys, ", "), strings.Join(reloadable, ", "))
	}
	var changes []string
	np := &Parts{}
	old := map[string]int{}
	for i, s := range c.Sinks {
		old[s.Name] = i
	}
	var errs []error
	var opened Parts
	for _, s := range next.Sinks {
		i, ok := old[s.Name]
		if ok && c.Sinks[i].URL == s.URL && c.Sinks[i].secrets == s.secrets {
			np.Sinks = append(np.Sinks, p.Sinks[i])
			continue
		}
		one := *next
		one.Sinks = []Sink{s}
		one.stages, one.StagesFile = nil, ""
		op, err := one.Open(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		opened.Sinks = append(opened.Sinks, op.Sinks...)
		np.Sinks = append(np.Sinks, op.Sinks...)
		if ok && c.Sinks[i].URL == s.URL {
			changes = append(changes, fmt.Sprintf("sinks: %s: a secret file its URL names changed (rebuilt; its lane goes on)", s.Name))
		} else if ok {
			changes = append(changes, fmt.Sprintf("sinks: %s: URL changed (rebuilt; its lane goes on)", s.Name))
		} else {
			changes = append(changes, fmt.Sprintf("sinks: %s: added", s.Name))
		}
	}
	for _, s := range c.Sinks {
		if !slices.ContainsFunc(next.Sinks, func(n Sink) bool { return n.Name == s.Name }) {
			changes = append(changes, fmt.Sprintf("sinks: %s: removed (a spool lane is kept)", s.Name))
		}
	}
	f := next.f
	if f == nil {
		f = &yamlfile.File{Name: "-stages"}
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
		opened.Close(ctx)
		return nil, nil, err
	}
	return np, changes, nil
}

// ReconfigureOptions returns the options publisher.Reconfigure takes for
// the parts p: the sinks and stages.
func (c *Config) ReconfigureOptions(p *Parts) []publisher.Option {
	var opts []publisher.Option
	if p.Stage != nil {
		opts = append(opts, publisher.WithStage(p.Stage))
	}
	for _, s := range p.Sinks {
		opts = append(opts, publisher.WithSink(s.Name, s.Sink))
	}
	return opts
}

// restartKeys lists the keys that changed from c to next and need a restart.
func (c *Config) restartKeys(next *Config) []string {
	var keys []string
	diff := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	diff("listen", c.Listen != next.Listen)
	diff("workers", c.Workers != next.Workers)
	diff("tls", c.TLS != next.TLS)
	diff("keys", c.Keys != next.Keys)
	diff("replay_window", c.ReplayWindow != next.ReplayWindow)
	diff("spool", c.Spool != next.Spool)
	diff("stats_every", c.StatsEvery != next.StatsEvery)
	diff("http", c.HTTP != next.HTTP)
	diff("log.level", c.Log.Level != next.Log.Level)
	diff("log.format", c.Log.Format != next.Log.Format)
	return keys
}
