package host

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/procfs"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// CPUConfig configures the "cpu" driver. Its zero value reads /proc and
// reports every CPU as well as the total.
type CPUConfig struct {
	// ProcRoot is where the proc filesystem is mounted; default "/proc".
	ProcRoot string `json:"proc_root,omitempty"`
	// TotalOnly drops the per-CPU series and keeps resource "total" only.
	TotalOnly bool `json:"total_only,omitempty"`
}

var (
	cpuUtil = desc{"cpu", "cpu.util", meter.Gauge, "%"}
	cpuTime = desc{"cpu", "cpu.time", meter.Cumulative, "s"}
)

// cpuModes are the modes of cpu.time, in the order of /proc/stat. Guest
// time is left out: the kernel already counts it in user and nice.
var cpuModes = [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

// cpuModeLabels holds one immutable label slice per mode, shared by every
// measurement so that a collection allocates no labels.
var cpuModeLabels = func() (ls [len(cpuModes)][]meter.Label) {
	for i, m := range cpuModes {
		ls[i] = []meter.Label{{Key: "mode", Value: m}}
	}
	return ls
}()

func cpuModeValues(s *procfs.CPUStat) [len(cpuModes)]float64 {
	return [...]float64{s.User, s.Nice, s.System, s.Idle, s.Iowait, s.IRQ, s.SoftIRQ, s.Steal}
}

type cpuDriver struct {
	fs        procfs.FS
	path      string
	totalOnly bool

	havePrev  bool
	prevTotal procfs.CPUStat
	prev      map[int64]procfs.CPUStat

	ids   []int64  // reused: sorted CPU numbers of one collection
	names []string // "cpu0", "cpu1", ... made once per CPU number
	out   []meter.Measurement
}

func newCPU(cfg driver.Config) (driver.Driver, error) {
	var c CPUConfig
	if err := decodeConfig("cpu", cfg, &c); err != nil {
		return nil, err
	}
	root := orDefault(c.ProcRoot, DefaultProcRoot)
	fsys, err := openProc("cpu", root)
	if err != nil {
		return nil, err
	}
	return &cpuDriver{fs: fsys, path: procPath(root, "stat"), totalOnly: c.TotalOnly}, nil
}

// Collect reads /proc/stat. cpu.util needs the previous collection's
// counters, so the first collection reports cpu.time only.
func (d *cpuDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := d.fs.Stat()
	if err != nil {
		return nil, readErr("cpu", d.path, err)
	}
	now := time.Now()
	out := d.out[:0]
	if d.havePrev {
		out = appendCPUUtil(out, now, "total", &d.prevTotal, &st.CPUTotal)
	}
	out = appendCPUTime(out, now, "total", &st.CPUTotal)
	if !d.totalOnly {
		d.ids = d.ids[:0]
		for id := range st.CPU {
			d.ids = append(d.ids, id)
		}
		slices.Sort(d.ids)
		for _, id := range d.ids {
			cur := st.CPU[id]
			name := d.cpuName(id)
			if prev, ok := d.prev[id]; ok && d.havePrev {
				out = appendCPUUtil(out, now, name, &prev, &cur)
			}
			out = appendCPUTime(out, now, name, &cur)
		}
	}
	d.havePrev, d.prevTotal, d.prev = true, st.CPUTotal, st.CPU
	d.out = out
	return out, nil
}

func (d *cpuDriver) cpuName(id int64) string {
	if id < 0 || id > 1<<16 {
		return "cpu" + strconv.FormatInt(id, 10)
	}
	for int64(len(d.names)) <= id {
		d.names = append(d.names, "cpu"+strconv.Itoa(len(d.names)))
	}
	return d.names[id]
}

func appendCPUTime(out []meter.Measurement, now time.Time, res string, s *procfs.CPUStat) []meter.Measurement {
	for i, v := range cpuModeValues(s) {
		out = append(out, cpuTime.m(now, res, v, cpuModeLabels[i]))
	}
	return out
}

// appendCPUUtil appends the busy percentage between two snapshots: the
// share of time not spent idle or waiting for I/O. It appends nothing when
// no time passed or the counters went backwards (a reset or a CPU that went
// offline and came back).
func appendCPUUtil(out []meter.Measurement, now time.Time, res string, prev, cur *procfs.CPUStat) []meter.Measurement {
	var total, idle float64
	p, c := cpuModeValues(prev), cpuModeValues(cur)
	for i := range c {
		delta := c[i] - p[i]
		if delta < 0 {
			return out
		}
		total += delta
	}
	idle = (c[3] - p[3]) + (c[4] - p[4])
	if total <= 0 {
		return out
	}
	util := 100 * (total - idle) / total
	util = min(max(util, 0), 100)
	return append(out, cpuUtil.m(now, res, util, nil))
}
