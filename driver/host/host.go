package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/procfs"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// Defaults for the root directories in the drivers' configurations.
const (
	DefaultProcRoot = "/proc"
	DefaultSysRoot  = "/sys"
	DefaultRoot     = "/"
)

// names lists the host drivers in the order Names returns them.
var names = []string{"cpu", "memory", "swap", "load", "disk", "filesystem", "network", "uptime", "processes"}

// Names returns the names under which this package registers its drivers,
// in a fixed order: cpu, memory, swap, load, disk, filesystem, network,
// uptime, processes.
func Names() []string { return append([]string(nil), names...) }

func init() {
	driver.Register("cpu", newCPU)
	driver.Register("memory", newMemory)
	driver.Register("swap", newSwap)
	driver.Register("load", newLoad)
	driver.Register("disk", newDisk)
	driver.Register("filesystem", newFilesystem)
	driver.Register("network", newNetwork)
	driver.Register("uptime", newUptime)
	driver.Register("processes", newProcesses)
}

// ProcConfig configures the drivers that read only the proc filesystem:
// memory, swap, load, uptime and processes. Its zero value reads /proc.
type ProcConfig struct {
	// ProcRoot is where the proc filesystem is mounted; default "/proc".
	// Point it at the host's /proc when the agent runs in a container.
	ProcRoot string `json:"proc_root,omitempty"`
}

// desc describes one series a driver emits. The catalog of all of them is
// the table in doc.go; a test keeps the two in step.
type desc struct {
	driver string
	name   string
	kind   meter.Kind
	unit   string
}

// m makes a measurement of d.
func (d *desc) m(now time.Time, resource string, v float64, labels []meter.Label) meter.Measurement {
	return meter.Measurement{
		Name:       d.name,
		Kind:       d.kind,
		Unit:       d.unit,
		Value:      v,
		Time:       now,
		ResourceID: resource,
		Labels:     labels,
	}
}

// decodeConfig decodes cfg into v, naming the driver in the error.
func decodeConfig(name string, cfg driver.Config, v any) error {
	if err := cfg.Decode(v); err != nil {
		return fmt.Errorf("host: %s: %w", name, err)
	}
	return nil
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// openProc opens the proc filesystem at root for the named driver.
func openProc(name, root string) (procfs.FS, error) {
	fsys, err := procfs.NewFS(root)
	if err != nil {
		return procfs.FS{}, fmt.Errorf("host: %s: proc_root %q: %w", name, root, unwrapPath(err))
	}
	return fsys, nil
}

// readErr says which driver failed to read which file. The path is in the
// message once, even when err is an *fs.PathError that names it too.
func readErr(name, path string, err error) error {
	return fmt.Errorf("host: %s: read %s: %w", name, path, unwrapPath(err))
}

// unwrapPath strips an *fs.PathError down to its cause (still matching
// fs.ErrNotExist and friends with errors.Is) so that a path does not appear
// twice in our messages.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err
	}
	return err
}

// readFile reads a small file into *buf, reusing its memory across calls.
func readFile(path string, buf *[]byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := (*buf)[:0]
	if cap(b) == 0 {
		b = make([]byte, 0, 512)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			return nil, err
		}
	}
	*buf = b
	return b, nil
}

// procPath joins a proc root and a file name for error messages and reads.
func procPath(root, name string) string { return filepath.Join(root, name) }

// errorfPath reports a bad root directory in a driver's configuration.
func errorfPath(name, field, path string, err error) error {
	return fmt.Errorf("host: %s: %s %q: %w", name, field, path, unwrapPath(err))
}
