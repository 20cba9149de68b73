package drivertest_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
)

// The driver of docs/writing-a-driver.md, section 2, kept here so that the
// guide's code compiles and passes the suite it recommends.

type Config struct {
	Path string `json:"path,omitempty"`
}

type Driver struct{ path string }

func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{Path: "/sys/class/thermal/thermal_zone0/temp"}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("thermal: %w", err)
	}
	return &Driver{path: c.Path}, nil
}

func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	b, err := os.ReadFile(d.path)
	if err != nil {
		return nil, fmt.Errorf("thermal: read %s: %w", d.path, err)
	}
	milli, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return nil, fmt.Errorf("thermal: parse %s: %w", d.path, err)
	}
	return []meter.Measurement{{
		Name: "thermal.temperature", Kind: meter.Gauge, Unit: "Cel",
		Value: milli / 1000, Time: time.Now(), ResourceID: "thermal_zone0",
	}}, nil
}

func TestGuideDriver(t *testing.T) {
	path := t.TempDir() + "/temp"
	if err := os.WriteFile(path, []byte("42500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := driver.ConfigFrom(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Run(t, New, cfg)

	_, err = New(driver.ConfigFromJSON([]byte(`{"paht": "/x"}`)))
	if err == nil || !strings.Contains(err.Error(), `unknown field "paht"`) {
		t.Fatalf("a typo in the config: got %v", err)
	}
}
