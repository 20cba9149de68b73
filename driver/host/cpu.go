package host

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

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

// cpuSeconds are one CPU's times in seconds, in the order of cpuModes.
type cpuSeconds [len(cpuModes)]float64

// cpuSlot is one CPU's times in a snapshot; ok when it was listed.
type cpuSlot struct {
	t  cpuSeconds
	ok bool
}

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on every
// architecture Linux exposes to user space.
const userHZ = 100

// maxCPUID bounds the CPU numbers the driver keeps a slot for.
const maxCPUID = 1 << 16

type cpuDriver struct {
	file      *procFile
	totalOnly bool

	havePrev  bool
	prevTotal cpuSeconds
	prev, cur []cpuSlot // by CPU number: the previous snapshot and this one

	ids    []int    // reused: sorted CPU numbers of one collection
	names  []string // "cpu0", "cpu1", ... made once per CPU number
	fields [][]byte // reused
	out    []meter.Measurement
}

func newCPU(cfg driver.Config) (driver.Driver, error) {
	var c CPUConfig
	if err := decodeConfig("cpu", cfg, &c); err != nil {
		return nil, err
	}
	root := orDefault(c.ProcRoot, DefaultProcRoot)
	if _, err := openProc("cpu", root); err != nil {
		return nil, err
	}
	return &cpuDriver{file: newProcFile(procPath(root, "stat")), totalOnly: c.TotalOnly}, nil
}

// Collect reads /proc/stat. cpu.util needs the previous collection's
// counters, so the first collection reports cpu.time only.
func (d *cpuDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := d.file.read()
	if err != nil {
		return nil, readErr("cpu", d.file.path, err)
	}
	total, err := d.parse(b)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := d.out[:0]
	if d.havePrev {
		out = appendCPUUtil(out, now, "total", &d.prevTotal, &total)
	}
	out = appendCPUTime(out, now, "total", &total)
	if !d.totalOnly {
		for _, id := range d.ids {
			cur := &d.cur[id].t
			name := d.cpuName(id)
			if id < len(d.prev) && d.prev[id].ok && d.havePrev {
				out = appendCPUUtil(out, now, name, &d.prev[id].t, cur)
			}
			out = appendCPUTime(out, now, name, cur)
		}
	}
	d.havePrev, d.prevTotal = true, total
	d.prev, d.cur = d.cur, d.prev
	d.out = out
	return out, nil
}

// parse reads the cpu lines of /proc/stat: the total, returned, and each
// CPU's into d.cur, their numbers sorted in d.ids.
func (d *cpuDriver) parse(b []byte) (total cpuSeconds, err error) {
	for i := range d.cur {
		d.cur[i].ok = false
	}
	d.ids = d.ids[:0]
	haveTotal := false
	for line := range bytes.Lines(b) {
		if !bytes.HasPrefix(line, []byte("cpu")) {
			if haveTotal {
				break // the cpu lines come first
			}
			continue
		}
		d.fields = fields(d.fields, line)
		if len(d.fields) < 1+len(cpuModes) {
			return total, fmt.Errorf("host: cpu: %s: too few fields in %q", d.file.path, bytes.TrimSpace(line))
		}
		var t cpuSeconds
		for i := range t {
			v, ok := parseUint(d.fields[1+i])
			if !ok {
				return total, fmt.Errorf("host: cpu: %s: cannot parse %q", d.file.path, bytes.TrimSpace(line))
			}
			t[i] = float64(v) / userHZ
		}
		key := d.fields[0]
		if len(key) == 3 {
			total, haveTotal = t, true
			continue
		}
		n, ok := parseUint(key[3:])
		if !ok || n > maxCPUID {
			continue
		}
		id := int(n)
		for len(d.cur) <= id {
			d.cur = append(d.cur, cpuSlot{})
		}
		d.cur[id] = cpuSlot{t: t, ok: true}
		d.ids = append(d.ids, id)
	}
	if !haveTotal {
		return total, fmt.Errorf("host: cpu: %s: no cpu line", d.file.path)
	}
	slices.Sort(d.ids)
	return total, nil
}

func (d *cpuDriver) cpuName(id int) string {
	for len(d.names) <= id {
		d.names = append(d.names, "cpu"+strconv.Itoa(len(d.names)))
	}
	return d.names[id]
}

func appendCPUTime(out []meter.Measurement, now time.Time, res string, t *cpuSeconds) []meter.Measurement {
	for i, v := range t {
		out = append(out, cpuTime.m(now, res, v, cpuModeLabels[i]))
	}
	return out
}

// appendCPUUtil appends the busy percentage between two snapshots: the
// share of time not spent idle or waiting for I/O. It appends nothing when
// no time passed or the counters went backwards (a reset or a CPU that went
// offline and came back).
func appendCPUUtil(out []meter.Measurement, now time.Time, res string, prev, cur *cpuSeconds) []meter.Measurement {
	var total, idle float64
	p, c := prev, cur
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
