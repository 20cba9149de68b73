// Package dircount is the driver built in docs/writing-a-driver.md: it
// reports how many files a directory holds and their total size — a spool,
// an upload folder, a mail queue.
package dircount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// Config is the driver's configuration. Its zero value means the defaults.
type Config struct {
	// Dir is the directory to count (default: the system's temporary directory).
	Dir string `json:"dir,omitempty"`
	// Pattern, when set, counts only names matching it (filepath.Match syntax).
	Pattern string `json:"pattern,omitempty"`
}

// Driver counts the regular files of one directory.
type Driver struct{ cfg Config }

// New is the driver's factory: defaults first, then the configuration, then checks.
func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{Dir: os.TempDir()}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("dircount: %w", err)
	}
	if _, err := filepath.Match(c.Pattern, ""); err != nil {
		return nil, fmt.Errorf("dircount: config: pattern %q: %w", c.Pattern, err)
	}
	if fi, err := os.Stat(c.Dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("dircount: config: dir %q is not a readable directory", c.Dir)
	}
	return &Driver{cfg: c}, nil
}

// Collect lists the directory once.
func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	entries, err := os.ReadDir(d.cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("dircount: read %s: %w", d.cfg.Dir, err)
	}
	var files, bytes float64
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil { // a huge directory must not outlive the deadline
			return nil, err
		}
		if !e.Type().IsRegular() {
			continue
		}
		if ok, _ := filepath.Match(d.cfg.Pattern, e.Name()); d.cfg.Pattern != "" && !ok {
			continue
		}
		info, err := e.Info()
		if err != nil { // removed since ReadDir: count what we can, say what we could not
			errs = append(errs, err)
			continue
		}
		files++
		bytes += float64(info.Size())
	}
	labels := []meter.Label{{Key: "dir", Value: d.cfg.Dir}}
	return []meter.Measurement{
		{Name: "dir.files", Kind: meter.Gauge, Unit: "{file}", Value: files, ResourceID: d.cfg.Dir, Labels: labels},
		{Name: "dir.bytes", Kind: meter.Gauge, Unit: "B", Value: bytes, ResourceID: d.cfg.Dir, Labels: labels},
	}, errors.Join(errs...)
}

func init() { driver.Register("dircount", New) }
