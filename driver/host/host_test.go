package host

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
)

const fixtureProc = "testdata/proc"

func config(t testing.TB, v any) driver.Config {
	t.Helper()
	cfg, err := driver.ConfigFrom(v)
	require.NoError(t, err)
	return cfg
}

func open(t testing.TB, name string, v any) driver.Driver {
	t.Helper()
	d, err := driver.Open(name, config(t, v))
	require.NoError(t, err)
	return d
}

// fixtureConfig points a driver at the fixture trees.
func fixtureConfig(name string) map[string]any {
	cfg := map[string]any{"proc_root": fixtureProc}
	if name == "disk" {
		cfg["sys_root"] = "testdata/sys"
	}
	return cfg
}

func collect(t testing.TB, d driver.Driver) []meter.Measurement {
	t.Helper()
	ms, err := d.Collect(context.Background())
	require.NoError(t, err)
	for i := range ms {
		require.False(t, ms[i].Time.IsZero(), "%s: Time is set", ms[i].Name)
		require.Empty(t, ms[i].Host, "%s: Host is left to the agent", ms[i].Name)
		require.NoError(t, ms[i].Validate())
	}
	return slices.Clone(ms) // the driver reuses its slice
}

// point is the part of a measurement the fixture tests compare.
type point struct {
	Name, Res string
	Value     float64
	Labels    string
}

func points(ms []meter.Measurement) []point {
	out := make([]point, len(ms))
	for i, m := range ms {
		var ls []string
		for _, l := range m.Labels {
			ls = append(ls, l.Key+"="+l.Value)
		}
		out[i] = point{m.Name, m.ResourceID, m.Value, strings.Join(ls, ",")}
	}
	return out
}

func requirePoints(t *testing.T, want []point, ms []meter.Measurement) {
	t.Helper()
	got := points(ms)
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Name, got[i].Name, "measurement %d", i)
		require.Equal(t, want[i].Res, got[i].Res, "measurement %d (%s)", i, want[i].Name)
		require.Equal(t, want[i].Labels, got[i].Labels, "measurement %d (%s)", i, want[i].Name)
		require.InDelta(t, want[i].Value, got[i].Value, 1e-9, "measurement %d (%s %s %s)", i, want[i].Name, want[i].Res, want[i].Labels)
	}
}

func cpuTimes(res string, v ...float64) []point {
	out := make([]point, len(v))
	for i := range v {
		out[i] = point{"cpu.time", res, v[i], "mode=" + cpuModes[i]}
	}
	return out
}

func TestCPU(t *testing.T) {
	d := open(t, "cpu", fixtureConfig("cpu"))

	// First collection: no previous counters, so cumulative times only.
	want := slices.Concat(
		cpuTimes("total", 10, 1, 5, 80, 2, 0.5, 0.5, 1),
		cpuTimes("cpu0", 5, 0.5, 2.5, 40, 1, 0.25, 0.25, 0.5),
		cpuTimes("cpu1", 5, 0.5, 2.5, 40, 1, 0.25, 0.25, 0.5),
	)
	requirePoints(t, want, collect(t, d))

	// Second snapshot: total 4 s passed, 2.2 s idle or iowait → 45 % busy;
	// cpu0 1.5 s busy of 2 s → 75 %; cpu1 0.3 s busy of 2 s → 15 %.
	d.(*cpuDriver).file = newProcFile("testdata/proc-later/stat")
	want = slices.Concat(
		[]point{{"cpu.util", "total", 45, ""}},
		cpuTimes("total", 11, 1, 5.5, 82, 2.2, 0.6, 0.6, 1.1),
		[]point{{"cpu.util", "cpu0", 75, ""}},
		cpuTimes("cpu0", 6, 0.5, 3, 40.4, 1.1, 0.25, 0.25, 0.5),
		[]point{{"cpu.util", "cpu1", 15, ""}},
		cpuTimes("cpu1", 5, 0.5, 2.5, 41.6, 1.1, 0.35, 0.35, 0.6),
	)
	requirePoints(t, want, collect(t, d))

	// Counters that did not move (or went back) give no utilisation.
	d.(*cpuDriver).file = newProcFile(fixtureProc + "/stat")
	for _, m := range collect(t, d) {
		require.NotEqual(t, "cpu.util", m.Name, "counters went backwards")
	}
	for _, m := range collect(t, d) {
		require.NotEqual(t, "cpu.util", m.Name, "no time passed")
	}

	ms := collect(t, open(t, "cpu", map[string]any{"proc_root": fixtureProc, "total_only": true}))
	requirePoints(t, cpuTimes("total", 10, 1, 5, 80, 2, 0.5, 0.5, 1), ms)
}

func TestMemoryAndSwap(t *testing.T) {
	const kB = 1024
	requirePoints(t, []point{
		{"memory.total", "", 16000000 * kB, ""},
		{"memory.used", "", 6000000 * kB, ""},
		{"memory.available", "", 10000000 * kB, ""},
		{"memory.free", "", 4000000 * kB, ""},
		{"memory.buffers", "", 500000 * kB, ""},
		{"memory.cached", "", 5000000 * kB, ""},
	}, collect(t, open(t, "memory", fixtureConfig("memory"))))
	requirePoints(t, []point{
		{"swap.total", "", 2000000 * kB, ""},
		{"swap.used", "", 500000 * kB, ""},
		{"swap.free", "", 1500000 * kB, ""},
	}, collect(t, open(t, "swap", fixtureConfig("swap"))))
}

func TestMemoryWithoutMemAvailable(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/meminfo", []byte("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"), 0o644))
	ms := collect(t, open(t, "memory", map[string]any{"proc_root": dir}))
	require.Equal(t, "memory.used", ms[1].Name)
	require.Equal(t, float64(600*1024), ms[1].Value, "total - (free + buffers + cached)")

	_, err := open(t, "swap", map[string]any{"proc_root": dir}).Collect(context.Background())
	require.ErrorContains(t, err, "host: swap: "+dir+"/meminfo: no SwapTotal or SwapFree line")
}

func TestLoadUptimeProcesses(t *testing.T) {
	requirePoints(t, []point{
		{"load.1", "", 0.5, ""},
		{"load.5", "", 1.25, ""},
		{"load.15", "", 2, ""},
	}, collect(t, open(t, "load", fixtureConfig("load"))))
	requirePoints(t, []point{
		{"uptime", "", 12345.67, ""},
	}, collect(t, open(t, "uptime", fixtureConfig("uptime"))))
	requirePoints(t, []point{
		{"processes.running", "", 3, ""},
		{"processes.blocked", "", 1, ""},
		{"processes.total", "", 3, ""}, // directories 1, 42 and 1234
		{"processes.threads", "", 456, ""},
		{"processes.created", "", 4321, ""},
	}, collect(t, open(t, "processes", fixtureConfig("processes"))))
}

func disk(res string, rb, wb, ro, wo, busy float64) []point {
	return []point{
		{"disk.read.bytes", res, rb, ""},
		{"disk.write.bytes", res, wb, ""},
		{"disk.read.ops", res, ro, ""},
		{"disk.write.ops", res, wo, ""},
		{"disk.io.time", res, busy, ""},
	}
}

func TestDisk(t *testing.T) {
	sda := disk("sda", 20000*512, 8000*512, 1000, 500, 1.5)
	sda1 := disk("sda1", 18000*512, 6000*512, 900, 400, 1.2)
	loop0 := disk("loop0", 100*512, 0, 10, 0, 0.005)
	ram0 := disk("ram0", 0, 0, 0, 0, 0)
	nvme := disk("nvme0n1", 40000*512, 60000*512, 2000, 3000, 2.5)
	nvmep1 := disk("nvme0n1p1", 39000*512, 59000*512, 1990, 2900, 2.4)

	d := open(t, "disk", fixtureConfig("disk"))
	requirePoints(t, slices.Concat(sda, nvme), collect(t, d))
	requirePoints(t, slices.Concat(sda, nvme), collect(t, d)) // from the cache of /sys/block

	cfg := fixtureConfig("disk")
	cfg["partitions"] = true
	requirePoints(t, slices.Concat(sda, sda1, nvme, nvmep1), collect(t, open(t, "disk", cfg)))

	cfg["exclude_prefixes"] = []string{}
	requirePoints(t, slices.Concat(sda, sda1, loop0, ram0, nvme, nvmep1), collect(t, open(t, "disk", cfg)))

	cfg["exclude_prefixes"] = []string{"sd", "nvme"}
	cfg["partitions"] = false
	requirePoints(t, slices.Concat(loop0, ram0), collect(t, open(t, "disk", cfg)))
}

func TestNetwork(t *testing.T) {
	eth0 := []point{
		{"network.rx.bytes", "eth0", 123456, ""},
		{"network.rx.packets", "eth0", 789, ""},
		{"network.rx.errors", "eth0", 1, ""},
		{"network.rx.drops", "eth0", 2, ""},
		{"network.tx.bytes", "eth0", 65432, ""},
		{"network.tx.packets", "eth0", 321, ""},
		{"network.tx.errors", "eth0", 3, ""},
		{"network.tx.drops", "eth0", 4, ""},
	}
	lo := []point{
		{"network.rx.bytes", "lo", 1000, ""},
		{"network.rx.packets", "lo", 10, ""},
		{"network.rx.errors", "lo", 0, ""},
		{"network.rx.drops", "lo", 0, ""},
		{"network.tx.bytes", "lo", 1000, ""},
		{"network.tx.packets", "lo", 10, ""},
		{"network.tx.errors", "lo", 0, ""},
		{"network.tx.drops", "lo", 0, ""},
	}
	requirePoints(t, slices.Concat(eth0, lo), collect(t, open(t, "network", fixtureConfig("network"))))
	requirePoints(t, eth0, collect(t, open(t, "network", map[string]any{"proc_root": fixtureProc, "exclude": []string{"lo"}})))
}

// fakeStatfs answers statfs from a table, as if the fixture's mounts existed.
func fakeStatfs(table map[string]unix.Statfs_t, calls *[]string) func(string, *unix.Statfs_t) error {
	return func(path string, st *unix.Statfs_t) error {
		*calls = append(*calls, path)
		s, ok := table[path]
		if !ok {
			return unix.ENOENT
		}
		*st = s
		return nil
	}
}

func fsPoints(res, labels string, size, used, avail, itotal, iused, ifree float64) []point {
	return []point{
		{"filesystem.size", res, size, labels},
		{"filesystem.used", res, used, labels},
		{"filesystem.available", res, avail, labels},
		{"filesystem.inodes.total", res, itotal, labels},
		{"filesystem.inodes.used", res, iused, labels},
		{"filesystem.inodes.free", res, ifree, labels},
	}
}

func TestFilesystem(t *testing.T) {
	table := map[string]unix.Statfs_t{
		"/host":             {Bsize: 4096, Frsize: 4096, Blocks: 1000, Bfree: 400, Bavail: 300, Files: 500, Ffree: 100},
		"/host/data":        {Bsize: 4096, Frsize: 1024, Blocks: 2000, Bfree: 2000, Bavail: 1900, Files: 10, Ffree: 10},
		"/host/mnt/my disk": {Bsize: 512, Blocks: 8, Bfree: 2, Bavail: 2, Files: 4, Ffree: 1},
		"/host/dev/shm":     {Bsize: 4096, Frsize: 4096, Blocks: 256, Bfree: 256, Bavail: 256, Files: 99, Ffree: 98},
		"/host/var/lib/docker/overlay2/abc/merged": {Bsize: 4096, Frsize: 4096, Blocks: 0},
	}
	var calls []string
	d := open(t, "filesystem", map[string]any{"proc_root": fixtureProc, "root": "/host"})
	d.(*fsDriver).statfs = fakeStatfs(table, &calls)

	root := fsPoints("/", "fstype=ext4,device=/dev/vda", 1000*4096, 600*4096, 300*4096, 500, 400, 100)
	mnt := fsPoints("/mnt/my disk", "fstype=ext4,device=/dev/vdc", 8*512, 6*512, 2*512, 4, 3, 1)
	data := fsPoints("/data", "fstype=ext4,device=/dev/vdd", 2000*1024, 0, 1900*1024, 10, 0, 10) // the later mount of /data
	requirePoints(t, slices.Concat(root, mnt, data), collect(t, d))
	require.Equal(t, []string{"/host", "/host/mnt/my disk", "/host/data", "/host/var/lib/docker/overlay2/abc/merged"}, calls,
		"no statfs for proc, tmpfs, cgroup2 or the hidden /data mount; overlay is tried")

	// Labels are made once per mount and kept while it stays mounted.
	l1 := d.(*fsDriver).labels["/"].labels
	ms := collect(t, d)
	require.Same(t, &l1[0], &ms[0].Labels[0])

	calls = nil
	d = open(t, "filesystem", map[string]any{"proc_root": fixtureProc, "root": "/host", "include_tmpfs": true, "exclude_fstypes": []string{"ext4"}})
	d.(*fsDriver).statfs = fakeStatfs(table, &calls)
	shm := fsPoints("/dev/shm", "fstype=tmpfs,device=tmpfs", 256*4096, 0, 256*4096, 99, 1, 98)
	requirePoints(t, shm, collect(t, d))
	require.Equal(t, []string{"/host/dev/shm", "/host/var/lib/docker/overlay2/abc/merged"}, calls)
}

func TestFilesystemStatfsErrors(t *testing.T) {
	d := open(t, "filesystem", map[string]any{"proc_root": fixtureProc})
	d.(*fsDriver).statfs = func(path string, st *unix.Statfs_t) error {
		if path == "/data" {
			return unix.EACCES
		}
		*st = unix.Statfs_t{Bsize: 1, Blocks: 1}
		return nil
	}
	ms, err := d.Collect(context.Background())
	require.ErrorIs(t, err, fs.ErrPermission)
	require.EqualError(t, err, `host: filesystem: statfs "/data": permission denied`)
	require.Len(t, ms, 3*6, "the other mounts are still reported")

	ctx, cancel := context.WithCancel(context.Background())
	d.(*fsDriver).statfs = func(path string, st *unix.Statfs_t) error {
		cancel() // the deadline passes during the first statfs
		*st = unix.Statfs_t{Bsize: 1, Blocks: 1}
		return nil
	}
	ms, err = d.Collect(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, ms, 6, "what was measured before ctx ended")
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/a\040b`:           "/a b",
		`/tab\011x\012y`:    "/tab\tx\ny",
		`/back\134slash`:    `/back\slash`,
		`/short\04`:         `/short\04`,
		`/not\999octal\040`: `/not\999octal `,
	} {
		require.Equal(t, want, unescapeMount(in), in)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, name := range names {
		_, err := driver.Open(name, config(t, map[string]any{"proc_root": fixtureProc, "procroot": "/x"}))
		require.ErrorContains(t, err, `host: `+name+`: config: json: unknown field "procroot"`, name)

		_, err = driver.Open(name, config(t, map[string]any{"proc_root": "testdata/missing"}))
		require.ErrorContains(t, err, `host: `+name+`: proc_root "testdata/missing": no such file or directory`, name)
		require.ErrorIs(t, err, fs.ErrNotExist, name)
	}
	_, err := driver.Open("disk", config(t, map[string]any{"proc_root": fixtureProc, "sys_root": "testdata/nosys"}))
	require.ErrorContains(t, err, `host: disk: sys_root "testdata/nosys"`)
}

func TestReadErrorsNameDriverAndFile(t *testing.T) {
	empty := t.TempDir()
	for name, file := range map[string]string{
		"cpu": "stat", "memory": "meminfo", "swap": "meminfo", "load": "loadavg", "disk": "diskstats",
		"filesystem": "self/mountinfo", "network": "net/dev", "uptime": "uptime", "processes": "stat",
	} {
		cfg := map[string]any{"proc_root": empty}
		if name == "disk" {
			cfg["sys_root"] = empty
		}
		_, err := open(t, name, cfg).Collect(context.Background())
		require.EqualError(t, err, "host: "+name+": read "+empty+"/"+file+": no such file or directory")
		require.ErrorIs(t, err, fs.ErrNotExist)
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, name := range names {
		ms, err := open(t, name, fixtureConfig(name)).Collect(ctx)
		require.ErrorIs(t, err, context.Canceled, name)
		require.Empty(t, ms, name)
	}
}

// TestConformanceFixtures runs the drivertest suite on the fixture trees.
func TestConformanceFixtures(t *testing.T) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f, err := driver.Lookup(name)
			require.NoError(t, err)
			drivertest.Run(t, f, config(t, fixtureConfig(name)))
		})
	}
}

// TestConformanceRealProc runs every driver with its default configuration
// on this machine's /proc, /sys and mounts.
func TestConformanceRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat here:", err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f, err := driver.Lookup(name)
			require.NoError(t, err)
			drivertest.Run(t, f, driver.Config{})
		})
	}
	t.Run("values", func(t *testing.T) {
		for _, name := range names {
			d := open(t, name, nil)
			ms := collect(t, d)
			if name == "cpu" {
				time.Sleep(20 * time.Millisecond)
				ms = collect(t, d)
				require.Equal(t, "cpu.util", ms[0].Name)
				require.InDelta(t, 50, ms[0].Value, 50)
			}
			if name != "disk" && name != "filesystem" { // a container may have neither
				require.NotEmpty(t, ms, name)
			}
		}
	})
}

func TestRegistered(t *testing.T) {
	for _, name := range Names() {
		_, err := driver.Lookup(name)
		require.NoError(t, err, name)
	}
	n := Names()
	n[0] = "changed"
	require.Equal(t, "cpu", Names()[0], "Names returns a copy")
}

// catalog lists every series the drivers emit.
var catalog = []*desc{
	&cpuUtil, &cpuTime,
	&memTotal, &memUsed, &memAvailable, &memFree, &memBuffers, &memCached,
	&swapTotal, &swapUsed, &swapFree,
	&load1, &load5, &load15,
	&diskReadBytes, &diskWriteBytes, &diskReadOps, &diskWriteOps, &diskIOTime,
	&fsSize, &fsUsed, &fsAvailable, &fsInodesTotal, &fsInodesUsed, &fsInodesFree,
	&netRxBytes, &netRxPackets, &netRxErrors, &netRxDrops, &netTxBytes, &netTxPackets, &netTxErrors, &netTxDrops,
	&uptimeSeconds,
	&procsRunning, &procsBlocked, &procsTotal, &procsThreads, &procsCreated,
}

// TestDocTable keeps the table in doc.go in step with the code: same
// series, in the same order, with the same kind, unit and driver; and every
// series shows up in a collection of the fixtures.
func TestDocTable(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	row := regexp.MustCompile(`(?m)^//\t([a-z0-9.]+) +(gauge|cumulative|delta) +(\S+) +.*?(\S+)$`)
	var rows [][]string
	for _, m := range row.FindAllStringSubmatch(string(src), -1) {
		rows = append(rows, m[1:])
	}
	require.Len(t, rows, len(catalog))
	for i, d := range catalog {
		unit := d.unit
		if unit == "" {
			unit = "-"
		}
		require.Equal(t, []string{d.name, d.kind.String(), unit, d.driver}, rows[i], "doc.go table row %d", i+1)
	}

	emitted := map[string]meter.Measurement{}
	for _, name := range names {
		d := open(t, name, fixtureConfig(name))
		if fd, ok := d.(*fsDriver); ok {
			fd.statfs = func(_ string, st *unix.Statfs_t) error { *st = unix.Statfs_t{Bsize: 1, Blocks: 1}; return nil }
		}
		for _, m := range collect(t, d) {
			emitted[m.Name] = m
		}
		if cd, ok := d.(*cpuDriver); ok { // cpu.util needs a second, later snapshot
			cd.file = newProcFile("testdata/proc-later/stat")
			for _, m := range collect(t, d) {
				emitted[m.Name] = m
			}
		}
	}
	require.Len(t, emitted, len(catalog))
	for _, d := range catalog {
		m, ok := emitted[d.name]
		require.True(t, ok, "%s is emitted", d.name)
		require.Equal(t, d.kind, m.Kind, d.name)
		require.Equal(t, d.unit, m.Unit, d.name)
	}
}

func TestParsers(t *testing.T) {
	v, ok := parseDecimal([]byte("3116.26"))
	require.True(t, ok)
	require.InDelta(t, 3116.26, v, 1e-9)
	for _, bad := range []string{"", "x", "1.", "1.2.3", "-1", "1e5"} {
		_, ok := parseDecimal([]byte(bad))
		require.False(t, ok, bad)
	}
	n, ok := loadavgThreads([]byte("0.22 0.32 0.17 2/86 8559\n"))
	require.True(t, ok)
	require.Equal(t, uint64(86), n)
	_, ok = loadavgThreads([]byte("0.22 0.32 0.17"))
	require.False(t, ok)
	_, ok = parseUint([]byte("99999999999999999999"))
	require.False(t, ok)
}

func TestReadFileGrows(t *testing.T) {
	p := t.TempDir() + "/big"
	content := strings.Repeat("0123456789", 300)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	var buf []byte
	b, err := readFile(p, &buf)
	require.NoError(t, err)
	require.Equal(t, content, string(b))
	_, err = readFile(p+"-missing", &buf)
	require.True(t, errors.Is(err, fs.ErrNotExist))
}
