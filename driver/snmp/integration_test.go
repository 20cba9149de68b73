//go:build integration

package snmp

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver/drivertest"
)

// OIDs read from the real agent.
const (
	oidSysUpTime   = "1.3.6.1.2.1.1.3.0"
	oidHrProcesses = "1.3.6.1.2.1.25.1.6.0"
	oidIfInOctets  = "1.3.6.1.2.1.2.2.1.10"
	oidIfDescr     = "1.3.6.1.2.1.2.2.1.2"
	oidHCInOctets  = "1.3.6.1.2.1.31.1.1.1.6"
)

// startSnmpd runs Debian's snmpd on a free loopback UDP port with a
// generated configuration (v2c community "public", v3 user "meterkit"
// with SHA/AES) and returns "127.0.0.1:PORT". It stops it when the test ends.
func startSnmpd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("snmpd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/snmpd"); serr != nil {
			t.Skip("snmpd is not installed (Debian: apt-get install -y snmpd)")
		}
		bin = "/usr/sbin/snmpd"
	}
	// A free UDP port: take one and give it back.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())

	dir := t.TempDir()
	conf := filepath.Join(dir, "snmpd.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`rocommunity public 127.0.0.1
createUser meterkit SHA authpass123 AES privpass123
rouser meterkit priv
`), 0o600))
	logf, err := os.Create(filepath.Join(dir, "snmpd.log"))
	require.NoError(t, err)
	defer logf.Close()
	// -f: stay in the foreground; -Lo: log to stdout; -C: no default
	// config files; -m '': load no MIB files (snmpd needs none).
	cmd := exec.Command(bin, "-f", "-Lo", "-C", "-c", conf, "-m", "", "udp:"+addr)
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+filepath.Join(dir, "persist"), "MIBS=")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})

	// Ready when it answers.
	d := open(t, map[string]any{"target": addr, "timeout": "200ms", "retries": 0,
		"objects": []map[string]any{{"oid": oidSysUpTime, "name": "up"}}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ms, err := d.Collect(ctx)
		cancel()
		if err == nil && len(ms) == 1 {
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "snmpd.log"))
			t.Fatalf("snmpd on %s did not answer within 10s: %v\nlog:\n%s", addr, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func collectOK(t *testing.T, d *Driver) []meter.Measurement {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := d.Collect(ctx)
	require.NoError(t, err)
	for _, m := range ms {
		require.NoError(t, m.Validate())
	}
	return ms
}

func find(t *testing.T, ms []meter.Measurement, name, resource string) meter.Measurement {
	t.Helper()
	for _, m := range ms {
		if m.Name == name && m.ResourceID == resource {
			return m
		}
	}
	t.Fatalf("no measurement %s for %q in %+v", name, resource, ms)
	return meter.Measurement{}
}

func v2cConfig(addr string) map[string]any {
	return map[string]any{
		"target": addr, "prefix": "host",
		"objects": []map[string]any{
			{"oid": oidSysUpTime, "name": "uptime", "unit": "s", "scale": 0.01},
			{"oid": oidHrProcesses, "name": "processes"},
			{"oid": oidIfInOctets + ".1", "name": "lo.in", "unit": "B", "resource_id": "lo"},
			{"oid": oidIfInOctets, "name": "if.in", "unit": "B", "walk": true, "name_oid": oidIfDescr},
			{"oid": oidHCInOctets, "name": "if.in.rate", "unit": "B", "walk": true, "name_oid": oidIfDescr, "mode": "rate"},
			{"oid": oidHCInOctets, "name": "if.in.delta", "unit": "B", "walk": true, "name_oid": oidIfDescr, "mode": "delta"},
		},
	}
}

func TestIntegrationV2c(t *testing.T) {
	addr := startSnmpd(t)
	host, _, _ := net.SplitHostPort(addr)
	d := open(t, v2cConfig(addr))

	ms := collectOK(t, d)
	up := find(t, ms, "host.uptime", host)
	require.Equal(t, meter.Gauge, up.Kind)
	require.Equal(t, "s", up.Unit)
	require.Greater(t, up.Value, 0.0)
	require.Less(t, up.Value, 60.0, "snmpd was started by this test")

	procs := find(t, ms, "host.processes", host)
	require.Equal(t, meter.Gauge, procs.Kind)
	require.GreaterOrEqual(t, procs.Value, 1.0)

	lo := find(t, ms, "host.lo.in", "lo")
	require.Equal(t, meter.Cumulative, lo.Kind)
	require.Equal(t, "B", lo.Unit)
	require.Greater(t, lo.Value, 0.0, "our own SNMP traffic crosses lo")
	require.Less(t, lo.Value, float64(1<<32))

	row := find(t, ms, "host.if.in", host+"/lo")
	require.Equal(t, meter.Cumulative, row.Kind)
	idx, _ := row.Label("index")
	require.Equal(t, "1", idx)
	for _, m := range ms {
		require.NotContains(t, m.Name, "delta", "the first collection only sets the baseline")
		require.NotContains(t, m.Name, "rate")
	}

	// snmpd caches the interface table for a few seconds: collect until
	// the delta shows the traffic of the earlier collections.
	var delta, rate meter.Measurement
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		ms2 := collectOK(t, d)
		lo2 := find(t, ms2, "host.lo.in", "lo")
		require.GreaterOrEqual(t, lo2.Value, lo.Value)
		delta = find(t, ms2, "host.if.in.delta", host+"/lo")
		rate = find(t, ms2, "host.if.in.rate", host+"/lo")
		require.Equal(t, meter.Delta, delta.Kind)
		require.Equal(t, meter.Gauge, rate.Kind)
		require.Equal(t, "B/s", rate.Unit)
		require.GreaterOrEqual(t, delta.Value, 0.0)
		if delta.Value > 0 {
			break
		}
	}
	require.Greater(t, delta.Value, 0.0, "the collections' packets crossed lo")
	require.Greater(t, rate.Value, 0.0)
	require.Less(t, rate.Value, 1e9)
}

func TestIntegrationV3(t *testing.T) {
	addr := startSnmpd(t)
	d := open(t, map[string]any{
		"target": addr, "version": "3", "user": "meterkit",
		"auth_protocol": "SHA", "auth_password": "authpass123", "priv_protocol": "AES", "priv_password": "privpass123",
		"objects": []map[string]any{{"oid": oidSysUpTime, "name": "uptime"}},
	})
	ms := collectOK(t, d)
	require.Len(t, ms, 1)
	require.Greater(t, ms[0].Value, 0.0)

	bad := open(t, map[string]any{
		"target": addr, "version": "3", "user": "meterkit", "timeout": "300ms", "retries": 0,
		"auth_password": "wrongpass123", "priv_password": "privpass123",
		"objects": []map[string]any{{"oid": oidSysUpTime, "name": "uptime"}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ms, err := bad.Collect(ctx)
	require.Empty(t, ms)
	require.ErrorContains(t, err, "snmp: "+addr+": get .1.3.6.1.2.1.1.3.0: ")
	require.NotContains(t, err.Error(), "wrongpass123")
}

func TestIntegrationErrors(t *testing.T) {
	addr := startSnmpd(t)
	d := open(t, map[string]any{"target": addr, "objects": []map[string]any{
		{"oid": oidSysUpTime, "name": "uptime"},
		{"oid": "1.3.6.1.4.1.99999.1.0", "name": "missing"},
		{"oid": "1.3.6.1.2.1.1.5.0", "name": "sysname"},
		{"oid": "1.3.6.1.4.1.99999.2", "name": "nowalk", "walk": true},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := d.Collect(ctx)
	require.Len(t, ms, 1, "the readable object is returned with the error")
	require.Equal(t, "uptime", ms[0].Name)
	msg := err.Error()
	for _, want := range []string{
		".1.3.6.1.4.1.99999.1.0 (missing): the agent has no such object (NoSuchObject)",
		".1.3.6.1.2.1.1.5.0 (sysname): OctetString",
		"walk .1.3.6.1.4.1.99999.2: no rows",
	} {
		require.Contains(t, msg, want)
	}

	// A wrong community gets no answer at all.
	wrong := open(t, map[string]any{"target": addr, "community": "private", "timeout": "200ms", "retries": 0,
		"objects": []map[string]any{{"oid": oidSysUpTime, "name": "uptime"}}})
	_, err = wrong.Collect(ctx)
	require.ErrorContains(t, err, "request timeout")
}

func TestIntegrationConformance(t *testing.T) {
	addr := startSnmpd(t)
	drivertest.Run(t, New, config(t, v2cConfig(addr)))
}

func TestIntegrationWalkMany(t *testing.T) {
	addr := startSnmpd(t)
	d := open(t, map[string]any{"target": addr, "max_repetitions": 2, "objects": []map[string]any{
		{"oid": oidIfDescr[:len(oidIfDescr)-2] + ".3", "name": "if.type", "walk": true, "resource_id": "sw"},
	}})
	ms := collectOK(t, d)
	ifaces, err := net.Interfaces()
	require.NoError(t, err)
	require.Len(t, ms, len(ifaces), "one row per interface")
	for _, m := range ms {
		require.True(t, strings.HasPrefix(m.ResourceID, "sw/"), m.ResourceID)
		idx, _ := m.Label("index")
		require.Equal(t, "sw/"+idx, m.ResourceID)
		require.Equal(t, meter.Gauge, m.Kind, fmt.Sprint(m))
	}
}
