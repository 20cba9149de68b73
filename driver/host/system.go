package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

// This file holds the drivers that read one or two files of /proc each:
// memory, swap, load, uptime and processes.

var (
	memTotal     = desc{"memory", "memory.total", meter.Gauge, "B"}
	memUsed      = desc{"memory", "memory.used", meter.Gauge, "B"}
	memAvailable = desc{"memory", "memory.available", meter.Gauge, "B"}
	memFree      = desc{"memory", "memory.free", meter.Gauge, "B"}
	memBuffers   = desc{"memory", "memory.buffers", meter.Gauge, "B"}
	memCached    = desc{"memory", "memory.cached", meter.Gauge, "B"}

	swapTotal = desc{"swap", "swap.total", meter.Gauge, "B"}
	swapUsed  = desc{"swap", "swap.used", meter.Gauge, "B"}
	swapFree  = desc{"swap", "swap.free", meter.Gauge, "B"}

	load1  = desc{"load", "load.1", meter.Gauge, ""}
	load5  = desc{"load", "load.5", meter.Gauge, ""}
	load15 = desc{"load", "load.15", meter.Gauge, ""}

	uptimeSeconds = desc{"uptime", "uptime", meter.Gauge, "s"}

	procsRunning = desc{"processes", "processes.running", meter.Gauge, ""}
	procsBlocked = desc{"processes", "processes.blocked", meter.Gauge, ""}
	procsTotal   = desc{"processes", "processes.total", meter.Gauge, ""}
	procsThreads = desc{"processes", "processes.threads", meter.Gauge, ""}
	procsCreated = desc{"processes", "processes.created", meter.Cumulative, ""}
)

// procDriver is the part the proc-only drivers share.
type procDriver struct {
	name string
	root string
	fs   procfs.FS
	out  []meter.Measurement
}

func newProcDriver(name string, cfg driver.Config) (procDriver, error) {
	var c ProcConfig
	if err := decodeConfig(name, cfg, &c); err != nil {
		return procDriver{}, err
	}
	root := orDefault(c.ProcRoot, DefaultProcRoot)
	fsys, err := openProc(name, root)
	if err != nil {
		return procDriver{}, err
	}
	return procDriver{name: name, root: root, fs: fsys}, nil
}

// ---- memory

type memoryDriver struct {
	procDriver
	file *procFile
}

func newMemory(cfg driver.Config) (driver.Driver, error) {
	p, err := newProcDriver("memory", cfg)
	if err != nil {
		return nil, err
	}
	return &memoryDriver{p, newProcFile(procPath(p.root, "meminfo"))}, nil
}

// readMeminfo reads and parses /proc/meminfo through f for the named driver.
func readMeminfo(name string, f *procFile) (meminfo, error) {
	b, err := f.read()
	if err != nil {
		return meminfo{}, readErr(name, f.path, err)
	}
	mi, ok := parseMeminfo(b)
	if !ok {
		return meminfo{}, fmt.Errorf("host: %s: %s: cannot parse", name, f.path)
	}
	return mi, nil
}

// Collect reads /proc/meminfo. memory.used is total minus available: the
// memory the kernel cannot hand out without swapping. On kernels older than
// 3.14, which have no MemAvailable, available is free + buffers + cached.
func (d *memoryDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mi, err := readMeminfo(d.name, d.file)
	if err != nil {
		return nil, err
	}
	if mi.have&(haveTotal|haveFree) != haveTotal|haveFree {
		return nil, fmt.Errorf("host: memory: %s: no MemTotal or MemFree line", d.file.path)
	}
	total, free := mi.total, mi.free
	buffers, cached := mi.buffers, mi.cached
	avail := free + buffers + cached
	if mi.have&haveAvailable != 0 {
		avail = mi.available
	}
	now := time.Now()
	d.out = append(d.out[:0],
		memTotal.m(now, "", float64(total), nil),
		memUsed.m(now, "", float64(total-min(avail, total)), nil),
		memAvailable.m(now, "", float64(avail), nil),
		memFree.m(now, "", float64(free), nil),
		memBuffers.m(now, "", float64(buffers), nil),
		memCached.m(now, "", float64(cached), nil),
	)
	return d.out, nil
}

// ---- swap

type swapDriver struct {
	procDriver
	file *procFile
}

func newSwap(cfg driver.Config) (driver.Driver, error) {
	p, err := newProcDriver("swap", cfg)
	if err != nil {
		return nil, err
	}
	return &swapDriver{p, newProcFile(procPath(p.root, "meminfo"))}, nil
}

// Collect reads SwapTotal and SwapFree from /proc/meminfo. A host without
// swap reports zeros.
func (d *swapDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mi, err := readMeminfo(d.name, d.file)
	if err != nil {
		return nil, err
	}
	if mi.have&(haveSwapTotal|haveSwapFree) != haveSwapTotal|haveSwapFree {
		return nil, fmt.Errorf("host: swap: %s: no SwapTotal or SwapFree line", d.file.path)
	}
	total, free := mi.swapTotal, mi.swapFree
	now := time.Now()
	d.out = append(d.out[:0],
		swapTotal.m(now, "", float64(total), nil),
		swapUsed.m(now, "", float64(total-min(free, total)), nil),
		swapFree.m(now, "", float64(free), nil),
	)
	return d.out, nil
}

// ---- load

type loadDriver struct {
	procDriver
	file   *procFile
	fields [][]byte
}

func newLoad(cfg driver.Config) (driver.Driver, error) {
	p, err := newProcDriver("load", cfg)
	if err != nil {
		return nil, err
	}
	return &loadDriver{procDriver: p, file: newProcFile(procPath(p.root, "loadavg"))}, nil
}

// Collect reads the 1, 5 and 15 minute load averages from /proc/loadavg.
func (d *loadDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := d.file.read()
	if err != nil {
		return nil, readErr(d.name, d.file.path, err)
	}
	d.fields = fields(d.fields, b)
	var la [3]float64
	for i := range la {
		ok := i < len(d.fields)
		if ok {
			la[i], ok = parseDecimal(d.fields[i])
		}
		if !ok {
			return nil, fmt.Errorf("host: load: %s: cannot parse %q", d.file.path, bytes.TrimSpace(b))
		}
	}
	now := time.Now()
	d.out = append(d.out[:0],
		load1.m(now, "", la[0], nil),
		load5.m(now, "", la[1], nil),
		load15.m(now, "", la[2], nil),
	)
	return d.out, nil
}

// ---- uptime

type uptimeDriver struct {
	procDriver
	file *procFile
}

func newUptime(cfg driver.Config) (driver.Driver, error) {
	p, err := newProcDriver("uptime", cfg)
	if err != nil {
		return nil, err
	}
	return &uptimeDriver{procDriver: p, file: newProcFile(procPath(p.root, "uptime"))}, nil
}

// Collect reads the first field of /proc/uptime: seconds since boot.
func (d *uptimeDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := d.file.read()
	if err != nil {
		return nil, readErr(d.name, d.file.path, err)
	}
	field, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte(" "))
	v, ok := parseDecimal(field)
	if !ok {
		return nil, fmt.Errorf("host: uptime: %s: cannot parse %q as seconds", d.file.path, field)
	}
	d.out = append(d.out[:0], uptimeSeconds.m(time.Now(), "", v, nil))
	return d.out, nil
}

// ---- processes

type processesDriver struct {
	procDriver
	statPath, loadPath string
	buf                []byte
	dents              []byte
}

func newProcesses(cfg driver.Config) (driver.Driver, error) {
	p, err := newProcDriver("processes", cfg)
	if err != nil {
		return nil, err
	}
	return &processesDriver{
		procDriver: p,
		statPath:   procPath(p.root, "stat"),
		loadPath:   procPath(p.root, "loadavg"),
	}, nil
}

// Collect reads procs_running, procs_blocked and processes from /proc/stat,
// the number of threads from the fourth field of /proc/loadavg, and counts
// the process directories of /proc.
func (d *processesDriver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := readFile(d.statPath, &d.buf)
	if err != nil {
		return nil, readErr(d.name, d.statPath, err)
	}
	var running, blocked, created uint64
	var seen int
	for line := range bytes.Lines(b) {
		key, val, _ := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		var dst *uint64
		switch string(key) {
		case "procs_running":
			dst = &running
		case "procs_blocked":
			dst = &blocked
		case "processes":
			dst = &created
		default:
			continue
		}
		v, ok := parseUint(bytes.TrimSpace(val))
		if !ok {
			return nil, fmt.Errorf("host: processes: %s: cannot parse %s %q", d.statPath, key, val)
		}
		*dst = v
		seen++
	}
	if seen < 3 {
		return nil, fmt.Errorf("host: processes: %s: missing procs_running, procs_blocked or processes", d.statPath)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err = readFile(d.loadPath, &d.buf)
	if err != nil {
		return nil, readErr(d.name, d.loadPath, err)
	}
	threads, ok := loadavgThreads(b)
	if !ok {
		return nil, fmt.Errorf("host: processes: %s: no runnable/total field in %q", d.loadPath, bytes.TrimSpace(b))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	total, err := d.countPIDs()
	if err != nil {
		return nil, readErr(d.name, d.root, err)
	}
	now := time.Now()
	d.out = append(d.out[:0],
		procsRunning.m(now, "", float64(running), nil),
		procsBlocked.m(now, "", float64(blocked), nil),
		procsTotal.m(now, "", float64(total), nil),
		procsThreads.m(now, "", float64(threads), nil),
		procsCreated.m(now, "", float64(created), nil),
	)
	return d.out, nil
}

// loadavgThreads returns the total of the "running/total" field of
// /proc/loadavg: the number of threads (kernel scheduling entities).
func loadavgThreads(b []byte) (uint64, bool) {
	for i := 0; i < 3; i++ {
		_, b, _ = bytes.Cut(bytes.TrimLeft(b, " "), []byte(" "))
	}
	field, _, _ := bytes.Cut(bytes.TrimLeft(b, " "), []byte(" "))
	_, total, ok := bytes.Cut(field, []byte("/"))
	if !ok {
		return 0, false
	}
	return parseUint(total)
}

// countPIDs counts the numeric directory entries of the proc root with
// getdents(2) into a reused buffer, so that a host with many processes
// costs no allocation per process.
func (d *processesDriver) countPIDs() (int, error) {
	fd, err := unix.Open(d.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if d.dents == nil {
		d.dents = make([]byte, 32<<10)
	}
	count := 0
	for {
		n, err := unix.Getdents(fd, d.dents)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n <= 0 {
			return count, nil
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := d.dents[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return 0, fmt.Errorf("malformed directory entry")
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if _, ok := parseUint(name); ok {
				count++
			}
			b = b[reclen:]
		}
	}
}

// parseUint parses a decimal unsigned integer without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parseDecimal parses "123.45" without allocating; it is enough for the
// fixed-point numbers of /proc/uptime.
func parseDecimal(b []byte) (float64, bool) {
	ip, fp, hasDot := bytes.Cut(b, []byte("."))
	i, ok := parseUint(ip)
	if !ok {
		return 0, false
	}
	v := float64(i)
	if hasDot {
		if len(fp) == 0 || len(fp) > 9 {
			return 0, false
		}
		f, ok := parseUint(fp)
		if !ok {
			return 0, false
		}
		scale := 1.0
		for range fp {
			scale *= 10
		}
		v += float64(f) / scale
	}
	return v, true
}
