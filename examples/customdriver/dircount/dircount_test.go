package dircount_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
	"github.com/meterkit/meter/examples/customdriver/dircount"
)

func fixture(t *testing.T) string {
	dir := t.TempDir()
	for name, size := range map[string]int{"a.log": 10, "b.log": 20, "c.txt": 5} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The one line a driver author writes to check the contract.
func TestConformance(t *testing.T) {
	cfg, err := driver.ConfigFrom(dircount.Config{Dir: fixture(t)})
	if err != nil {
		t.Fatal(err)
	}
	drivertest.Run(t, dircount.New, cfg)
}

func TestValues(t *testing.T) {
	dir := fixture(t)
	for _, c := range []struct {
		pattern      string
		files, bytes float64
	}{{"", 3, 35}, {"*.log", 2, 30}, {"*.none", 0, 0}} {
		cfg, _ := driver.ConfigFrom(dircount.Config{Dir: dir, Pattern: c.pattern})
		d, err := dircount.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := d.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ms[0].Value != c.files || ms[1].Value != c.bytes {
			t.Errorf("pattern %q: got %v files, %v bytes; want %v, %v", c.pattern, ms[0].Value, ms[1].Value, c.files, c.bytes)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, js := range []string{`{"dir": "/no/such/dir"}`, `{"pattern": "["}`, `{"dri": "/tmp"}`} {
		if _, err := dircount.New(driver.ConfigFromJSON([]byte(js))); err == nil {
			t.Errorf("%s: want an error", js)
		}
	}
}
