package host

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/procfs"

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
	fs      procfs.FS
	path    string
	exclude []string

	ifaces []string // reused: sorted interface names of one collection
	out    []meter.Measurement
}

func newNetwork(cfg driver.Config) (driver.Driver, error) {
	var c NetworkConfig
	if err := decodeConfig("network", cfg, &c); err != nil {
		return nil, err
	}
	root := orDefault(c.ProcRoot, DefaultProcRoot)
	fsys, err := openProc("network", root)
	if err != nil {
		return nil, err
	}
	return &networkDriver{fs: fsys, path: procPath(root, "net/dev"), exclude: c.Exclude}, nil
}

// Collect reads /proc/net/dev and reports interfaces sorted by name.
func (d *networkDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nd, err := d.fs.NetDev()
	if err != nil {
		return nil, readErr("network", d.path, err)
	}
	d.ifaces = d.ifaces[:0]
	for name := range nd {
		if !slices.Contains(d.exclude, name) && len(name) <= meter.MaxIDLen {
			d.ifaces = append(d.ifaces, name)
		}
	}
	slices.Sort(d.ifaces)
	now := time.Now()
	out := d.out[:0]
	for _, name := range d.ifaces {
		l := nd[name]
		out = append(out,
			netRxBytes.m(now, name, float64(l.RxBytes), nil),
			netRxPackets.m(now, name, float64(l.RxPackets), nil),
			netRxErrors.m(now, name, float64(l.RxErrors), nil),
			netRxDrops.m(now, name, float64(l.RxDropped), nil),
			netTxBytes.m(now, name, float64(l.TxBytes), nil),
			netTxPackets.m(now, name, float64(l.TxPackets), nil),
			netTxErrors.m(now, name, float64(l.TxErrors), nil),
			netTxDrops.m(now, name, float64(l.TxDropped), nil),
		)
	}
	d.out = out
	return out, nil
}
