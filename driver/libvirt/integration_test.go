//go:build integration

package libvirt

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/driver/drivertest"
)

// daemon is a libvirtd serving the test driver, started and stopped by
// scripts/libvirt/libvirtd.sh.
type daemon struct {
	script, dir, socket string
}

func libvirtdScript(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "scripts", "libvirt", "libvirtd.sh")
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test")
		dir = parent
	}
}

func startDaemon(t testing.TB) *daemon {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/libvirtd"); err != nil {
		t.Skip("libvirtd is missing: apt-get install -y --no-install-recommends libvirt-daemon libvirt-clients")
	}
	d := &daemon{script: libvirtdScript(t), dir: t.TempDir()}
	d.socket = filepath.Join(d.dir, "run", "libvirt-sock")
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *daemon) start(t testing.TB) {
	t.Helper()
	out, err := exec.Command(d.script, "start", d.dir).CombinedOutput()
	require.NoError(t, err, "libvirtd.sh start: %s", out)
}

func (d *daemon) stop(t testing.TB) {
	t.Helper()
	out, err := exec.Command(d.script, "stop", d.dir).CombinedOutput()
	require.NoError(t, err, "libvirtd.sh stop: %s", out)
}

// uri is the test driver's URI for a node file, as virsh takes it.
func (d *daemon) uri(node string) string { return "test+unix://" + node + "?socket=" + d.socket }

func nodeFile(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("testdata/node.xml")
	require.NoError(t, err)
	return p
}

// config is the driver's configuration for the daemon and node file: the
// URI without the socket, and the socket as its own field.
func (d *daemon) config(t testing.TB, node string, extra map[string]any) driver.Config {
	t.Helper()
	m := map[string]any{"uri": "test://" + node, "socket": d.socket}
	for k, v := range extra {
		m[k] = v
	}
	cfg, err := driver.ConfigFrom(m)
	require.NoError(t, err)
	return cfg
}

func openDriver(t testing.TB, cfg driver.Config) *Driver {
	t.Helper()
	dr, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = dr.(*Driver).Close() })
	return dr.(*Driver)
}

// virsh runs virsh against the daemon and returns its "key value" or
// "Key: value" lines as a map.
func virsh(t testing.TB, uri string, args ...string) map[string]string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-q", "-c", uri}, args...)...).CombinedOutput()
	require.NoError(t, err, "virsh %v: %s", args, out)
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, ":"); ok { // dominfo
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			kv[f[len(f)-2]] = f[len(f)-1] // domblkstat and domifstat repeat the device first
		}
	}
	return kv
}

func num(t testing.TB, s string) float64 {
	t.Helper()
	s = strings.TrimSuffix(strings.TrimSuffix(s, " KiB"), "s")
	v, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, "not a number: %q", s)
	return v
}

func collect(t testing.TB, d *Driver) []meter.Measurement {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := d.Collect(ctx)
	require.NoError(t, err)
	for i := range ms {
		m := ms[i]
		if m.Host == "" {
			m.Host = "test"
		}
		require.NoError(t, m.Validate(), "%+v", m)
	}
	return append([]meter.Measurement(nil), ms...)
}

func find(t testing.TB, ms []meter.Measurement, name, res string) meter.Measurement {
	t.Helper()
	for _, m := range ms {
		if m.Name == name && m.ResourceID == res {
			return m
		}
	}
	t.Fatalf("no %s for %s among %d measurements", name, res, len(ms))
	return meter.Measurement{}
}

func labels(m meter.Measurement) map[string]string {
	out := map[string]string{}
	for _, l := range m.Labels {
		out[l.Key] = l.Value
	}
	return out
}

// instance is what the node file says of one domain.
type instance struct {
	name, uuid, display, flavor, user, project string
	image                                      string // <nova:root type="image" uuid=…>
	state                                      string
	disks                                      []string
	nics                                       map[string]string // target dev -> MAC
}

const (
	userA    = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	projectA = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

var instances = []instance{
	{"instance-00000001", "6f1b2c3d-0a1b-4c5d-8e9f-000000000001", "web-1", "m1.small", userA, projectA, "9d1f2c3a-0000-4000-8000-000000000001", "running",
		[]string{"vda", "vdb", "vdc"}, map[string]string{"tap0a1b2c3d-01": "fa:16:3e:00:00:01", "tap0a1b2c3d-02": "fa:16:3e:00:00:02"}},
	{"instance-00000002", "6f1b2c3d-0a1b-4c5d-8e9f-000000000002", "db-1", "m1.medium", "b1b2c3d4e5f60718293a4b5c6d7e8f90", "1f1e2d3c4b5a69788796a5b4c3d2e1f0",
		"9d1f2c3a-0000-4000-8000-000000000002", "running",
		[]string{"vda", "vdb"}, map[string]string{"tap0a1b2c3d-03": "fa:16:3e:00:00:03"}},
	{"instance-00000003", "6f1b2c3d-0a1b-4c5d-8e9f-000000000003", "paused-1", "m1.tiny", userA, projectA, "9d1f2c3a-0000-4000-8000-000000000001", "paused",
		[]string{"vda"}, map[string]string{"tap0a1b2c3d-04": "fa:16:3e:00:00:04"}},
}

const shutOffUUID = "6f1b2c3d-0a1b-4c5d-8e9f-000000000004"

// TestLibvirtMeters collects from a real libvirtd and compares every
// measurement with virsh: gauges equal virsh's reading, cumulatives lie
// between virsh's readings just before and just after the collection.
func TestLibvirtMeters(t *testing.T) {
	lv := startDaemon(t)
	node := nodeFile(t)
	uri := lv.uri(node)
	d := openDriver(t, lv.config(t, node, nil))

	type reading struct {
		info, mem map[string]string
		blk, nic  map[string]map[string]string
	}
	read := func() map[string]reading {
		r := map[string]reading{}
		for _, in := range instances {
			x := reading{info: virsh(t, uri, "dominfo", in.name), mem: virsh(t, uri, "dommemstat", in.name),
				blk: map[string]map[string]string{}, nic: map[string]map[string]string{}}
			for _, dk := range in.disks {
				x.blk[dk] = virsh(t, uri, "domblkstat", in.name, dk)
			}
			for nic := range in.nics {
				x.nic[nic] = virsh(t, uri, "domifstat", in.name, nic)
			}
			r[in.name] = x
		}
		return r
	}
	before := read()
	ms := collect(t, d)
	after := read()

	between := func(m meter.Measurement, lo, hi float64) {
		t.Helper()
		require.GreaterOrEqual(t, m.Value, lo, "%s of %s", m.Name, m.ResourceID)
		require.LessOrEqual(t, m.Value, hi, "%s of %s", m.Name, m.ResourceID)
		require.Equal(t, meter.Cumulative, m.Kind)
	}
	want := 0
	for _, in := range instances {
		b, a := before[in.name], after[in.name]
		require.Equal(t, in.state, a.info["State"])
		owner := func(m meter.Measurement) {
			t.Helper()
			require.Equal(t, in.project, m.ProjectID, m.Name)
			require.Equal(t, in.user, m.UserID, m.Name)
			l := labels(m)
			require.Equal(t, in.name, l["instance_name"], m.Name)
			require.Equal(t, in.display, l["display_name"], m.Name)
			require.Equal(t, in.flavor, l["flavor"], m.Name)
			require.Equal(t, in.image, l["image_ref"], m.Name)
		}
		// cpu: virsh prints seconds with one decimal.
		cpu := find(t, ms, "cpu", in.uuid)
		owner(cpu)
		require.Equal(t, "ns", cpu.Unit)
		require.Equal(t, "1", labels(cpu)["vcpus"])
		between(cpu, (num(t, b.info["CPU time"])-0.1)*1e9, (num(t, a.info["CPU time"])+0.1)*1e9)
		vcpus := find(t, ms, "vcpus", in.uuid)
		owner(vcpus)
		require.Equal(t, num(t, a.info["CPU(s)"]), vcpus.Value)
		require.Equal(t, meter.Gauge, vcpus.Kind)
		mem := find(t, ms, "memory", in.uuid)
		owner(mem)
		require.Equal(t, num(t, a.info["Max memory"])/1024, mem.Value)
		require.Equal(t, "MB", mem.Unit)
		usage := find(t, ms, "memory.usage", in.uuid)
		require.Equal(t, (num(t, a.mem["available"])-num(t, a.mem["unused"]))/1024, usage.Value)
		res := find(t, ms, "memory.resident", in.uuid)
		owner(res)
		require.Equal(t, num(t, a.mem["rss"])/1024, res.Value)
		want += 5
		for _, dk := range in.disks {
			id := in.uuid + "-" + dk
			for name, key := range map[string]string{"disk.device.read.bytes": "rd_bytes", "disk.device.read.requests": "rd_req",
				"disk.device.write.bytes": "wr_bytes", "disk.device.write.requests": "wr_req"} {
				m := find(t, ms, name, id)
				owner(m)
				require.Equal(t, dk, labels(m)["disk_name"])
				require.Equal(t, in.uuid, labels(m)["instance_id"])
				between(m, num(t, b.blk[dk][key]), num(t, a.blk[dk][key]))
				want++
			}
		}
		for nic, mac := range in.nics {
			id := in.name + "-" + in.uuid + "-" + nic
			for name, key := range map[string]string{
				"network.incoming.bytes": "rx_bytes", "network.incoming.packets": "rx_packets",
				"network.incoming.packets.drop": "rx_drop", "network.incoming.packets.error": "rx_errs",
				"network.outgoing.bytes": "tx_bytes", "network.outgoing.packets": "tx_packets",
				"network.outgoing.packets.drop": "tx_drop", "network.outgoing.packets.error": "tx_errs"} {
				m := find(t, ms, name, id)
				owner(m)
				l := labels(m)
				require.Equal(t, nic, l["vnic_name"])
				require.Equal(t, mac, l["mac"])
				between(m, num(t, b.nic[nic][key]), num(t, a.nic[nic][key]))
				want++
			}
		}
	}
	// The shut-off domain has no measurements at all.
	for _, m := range ms {
		require.False(t, strings.Contains(m.ResourceID, shutOffUUID), "shut-off domain metered: %+v", m)
	}
	require.Len(t, ms, want)
	require.Equal(t, int8(-1), d.bulk, "the test driver reports no stats groups: auto mode must fall back to per-domain calls")

	// The XML is cached: a second collection reads no XML (same entries).
	metas := map[[16]byte]*domainMeta{}
	for k, v := range d.cache {
		metas[k] = v
	}
	require.Len(t, metas, 3)
	collect(t, d)
	for k, v := range d.cache {
		require.Same(t, metas[k], v, "domain XML read again for %s", k)
	}
}

// TestLibvirtRedial stops the daemon under a driver and starts it again:
// the collection in between fails, the one after succeeds on a new
// connection.
func TestLibvirtRedial(t *testing.T) {
	lv := startDaemon(t)
	node := nodeFile(t)
	d := openDriver(t, lv.config(t, node, map[string]any{"stats": "domain"}))
	first := collect(t, d)
	require.NotEmpty(t, first)

	lv.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := d.Collect(ctx)
	cancel()
	require.Error(t, err)
	require.Contains(t, err.Error(), "libvirt: connect to test:///")

	lv.start(t)
	again := collect(t, d)
	require.Len(t, again, len(first))

	// Restart while connected, without a failed collection in between.
	lv.stop(t)
	lv.start(t)
	require.Len(t, collect(t, d), len(first))
}

// TestLibvirtDriverTest runs the conformance kit against the daemon.
func TestLibvirtDriverTest(t *testing.T) {
	lv := startDaemon(t)
	node := nodeFile(t)
	drivertest.Run(t, New, lv.config(t, node, nil))
}

// TestLibvirtOpenByName opens the driver through the registry, as the agent
// does from its config file.
func TestLibvirtOpenByName(t *testing.T) {
	lv := startDaemon(t)
	node := nodeFile(t)
	dr, err := driver.Open("libvirt", lv.config(t, node, nil))
	require.NoError(t, err)
	defer dr.(*Driver).Close()
	ms, err := dr.Collect(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, ms)
}

// writeNode writes a node file of n running domains shaped like those of
// testdata/node.xml (Nova metadata, 2 disks, 2 vNICs, a balloon).
func writeNode(t testing.TB, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("<node>\n")
	for i := range n {
		fmt.Fprintf(&b, `<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
<name>instance-%08x</name><uuid>7a000000-0000-4000-8000-%012x</uuid>
<metadata><nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
<nova:name>bench-%d</nova:name><nova:flavor name="m1.small"><nova:vcpus>1</nova:vcpus></nova:flavor>
<nova:owner><nova:user uuid="%s">u</nova:user><nova:project uuid="%s">p</nova:project></nova:owner>
</nova:instance></metadata>
<memory unit='MiB'>2048</memory><vcpu>1</vcpu><os><type>hvm</type></os>
<devices>
<disk type='file' device='disk'><source file='/d/%d-0'/><target dev='vda'/></disk>
<disk type='file' device='disk'><source file='/d/%d-1'/><target dev='vdb'/></disk>
<interface type='ethernet'><mac address='fa:16:3e:01:%02x:%02x'/><target dev='tap%d-a'/></interface>
<interface type='ethernet'><mac address='fa:16:3e:02:%02x:%02x'/><target dev='tap%d-b'/></interface>
<memballoon model='virtio'/>
</devices><test:runstate>1</test:runstate></domain>
`, i+1, i+1, i, userA, projectA, i, i, i/256, i%256, i, i/256, i%256, i)
	}
	b.WriteString("</node>\n")
	p := filepath.Join(t.TempDir(), "node.xml")
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o644))
	return p
}

// BenchmarkLibvirtCollect100 collects 100 running domains (2 disks, 2 vNICs
// each: 33 measurements a domain) from libvirtd's test driver through the
// per-domain calls, with the domain XML cached as in steady state.
func BenchmarkLibvirtCollect100(b *testing.B) {
	lv := startDaemon(b)
	node := writeNode(b, 100)
	d := openDriver(b, lv.config(b, node, nil))
	ctx := context.Background()
	ms, err := d.Collect(ctx)
	require.NoError(b, err)
	require.Len(b, ms, 100*(5+2*4+2*8))
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		if _, err := d.Collect(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/collection")
	// The driver's own CPU (user and system time of this process) per
	// collection; the rest of the wall time is the daemon and round trips.
	b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/collection")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLibvirtCPURate does by hand what the agent's rate stage (rate of cpu
// with percent_of: vcpus, see the package doc; run through the reference
// agent in examples/e2e) does: the test driver's
// CPU time follows the wall clock, so each 1-vCPU domain reads about 100%.
func TestLibvirtCPURate(t *testing.T) {
	lv := startDaemon(t)
	node := nodeFile(t)
	d := openDriver(t, lv.config(t, node, nil))
	first := collect(t, d)
	time.Sleep(time.Second)
	second := collect(t, d)
	for _, in := range instances {
		a, b := find(t, first, "cpu", in.uuid), find(t, second, "cpu", in.uuid)
		vcpus, err := strconv.ParseFloat(labels(b)["vcpus"], 64)
		require.NoError(t, err)
		util := 100 * (b.Value - a.Value) / 1e9 / b.Time.Sub(a.Time).Seconds() / vcpus
		t.Logf("%s: cpu_util %.1f%%", in.name, util)
		require.InDelta(t, 100, util, 5, in.name)
	}
}
