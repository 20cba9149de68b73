package host

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// NetworkConfig configures the "network" driver. Its zero value reads
// /proc/net/dev and reports every interface, loopback included.
type NetworkConfig struct {
	// ProcRoot is where the proc filesystem is mounted; default "/proc".
	ProcRoot string `json:"proc_root,omitempty"`
	// Exclude skips the interfaces with these exact names, e.g. ["lo"].
	Exclude []string `json:"exclude,omitempty"`
}

var (
	netRxBytes   = desc{"network", "network.rx.bytes", meter.Cumulative, "B"}
	netRxPackets = desc{"network", "network.rx.packets", meter.Cumulative, ""}
	netRxErrors  = desc{"network", "network.rx.errors", meter.Cumulative, ""}
	netRxDrops   = desc{"network", "network.rx.drops", meter.Cumulative, ""}
	netTxBytes   = desc{"network", "network.tx.bytes", meter.Cumulative, "B"}
	netTxPackets = desc{"network", "network.tx.packets", meter.Cumulative, ""}
	netTxErrors  = desc{"network", "network.tx.errors", meter.Cumulative, ""}
	netTxDrops   = desc{"network", "network.tx.drops", meter.Cumulative, ""}
)

type networkDriver struct {
	file    *procFile
	exclude []string

	ifaces []netIface        // reused: the interfaces of one collection, sorted by name
	names  map[string]string // interface names met, so a collection allocates none
	fields [][]byte
	out    []meter.Measurement
}

// netIface is one line of /proc/net/dev: the receive and transmit bytes,
// packets, errors and drops.
type netIface struct {
	name string
	v    [8]uint64
}

// maxNames bounds the caches of device and interface names.
const maxNames = 4096

func newNetwork(cfg driver.Config) (driver.Driver, error) {
	var c NetworkConfig
	if err := decodeConfig("network", cfg, &c); err != nil {
		return nil, err
	}
	root := orDefault(c.ProcRoot, DefaultProcRoot)
	if _, err := openProc("network", root); err != nil {
		return nil, err
	}
	return &networkDriver{file: newProcFile(procPath(root, "net/dev")), exclude: c.Exclude, names: map[string]string{}}, nil
}

// Collect reads /proc/net/dev and reports interfaces sorted by name.
func (d *networkDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := d.file.read()
	if err != nil {
		return nil, readErr("network", d.file.path, err)
	}
	if err := d.parse(b); err != nil {
		return nil, err
	}
	now := time.Now()
	out := d.out[:0]
	for i := range d.ifaces {
		name, l := d.ifaces[i].name, &d.ifaces[i].v
		out = append(out,
			netRxBytes.m(now, name, float64(l[0]), nil),
			netRxPackets.m(now, name, float64(l[1]), nil),
			netRxErrors.m(now, name, float64(l[2]), nil),
			netRxDrops.m(now, name, float64(l[3]), nil),
			netTxBytes.m(now, name, float64(l[4]), nil),
			netTxPackets.m(now, name, float64(l[5]), nil),
			netTxErrors.m(now, name, float64(l[6]), nil),
			netTxDrops.m(now, name, float64(l[7]), nil),
		)
	}
	d.out = out
	return out, nil
}

// parse reads the interface lines of /proc/net/dev ("name: rx... tx...",
// after two header lines) into d.ifaces, sorted by name.
func (d *networkDriver) parse(b []byte) error {
	d.ifaces = d.ifaces[:0]
	for line := range bytes.Lines(b) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // a header line
		}
		name = bytes.TrimSpace(name)
		d.fields = fields(d.fields, rest)
		if len(d.fields) < 16 {
			return fmt.Errorf("host: network: %s: too few fields in %q", d.file.path, bytes.TrimSpace(line))
		}
		var it netIface
		for i, f := range [...]int{0, 1, 2, 3, 8, 9, 10, 11} {
			v, ok := parseUint(d.fields[f])
			if !ok {
				return fmt.Errorf("host: network: %s: cannot parse %q", d.file.path, bytes.TrimSpace(line))
			}
			it.v[i] = v
		}
		s, ok := d.names[string(name)]
		if !ok {
			if len(d.names) >= maxNames {
				clear(d.names)
			}
			s = string(name)
			d.names[s] = s
		}
		if slices.Contains(d.exclude, s) || len(s) > meter.MaxIDLen {
			continue
		}
		it.name = s
		d.ifaces = append(d.ifaces, it)
	}
	slices.SortFunc(d.ifaces, func(a, b netIface) int { return strings.Compare(a.name, b.name) })
	return nil
}
