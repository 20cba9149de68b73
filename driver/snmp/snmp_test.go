package snmp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

func config(t *testing.T, v any) driver.Config {
	t.Helper()
	c, err := driver.ConfigFrom(v)
	require.NoError(t, err)
	return c
}

func open(t *testing.T, v any) *Driver {
	t.Helper()
	d, err := New(config(t, v))
	require.NoError(t, err)
	return d.(*Driver)
}

func TestRegistered(t *testing.T) {
	_, err := driver.Lookup("snmp")
	require.NoError(t, err)
}

func TestCounterIncrease(t *testing.T) {
	const max32 = 1<<32 - 1
	for _, tc := range []struct {
		name       string
		prev, cur  sample
		want       uint64
		wantReason string
	}{
		{"grew", sample{raw: 100, bits: 32}, sample{raw: 250, bits: 32}, 150, "grew"},
		{"unchanged", sample{raw: 7, bits: 64}, sample{raw: 7, bits: 64}, 0, "grew"},
		{"32-bit wrap", sample{raw: max32 - 9, bits: 32}, sample{raw: 20, bits: 32}, 30, "wrap"},
		{"32-bit wrap to zero", sample{raw: max32, bits: 32}, sample{raw: 0, bits: 32}, 1, "wrap"},
		// Any decrease of a Counter32 is less than a wrap: still a wrap.
		{"32-bit small decrease is a wrap", sample{raw: 1000, bits: 32}, sample{raw: 999, bits: 32}, max32, "wrap"},
		{"32-bit restart by uptime", sample{raw: 5000, bits: 32, uptime: 90000}, sample{raw: 40, bits: 32, uptime: 300}, 40, "restart"},
		{"uptime unknown: wrap", sample{raw: 5000, bits: 32, uptime: 0}, sample{raw: 40, bits: 32, uptime: 300}, max32 - 4959, "wrap"},
		{"64-bit decrease is a reset", sample{raw: 1 << 40, bits: 64}, sample{raw: 12, bits: 64}, 12, "reset"},
		{"width changed", sample{raw: 1 << 40, bits: 64}, sample{raw: 12, bits: 32}, 12, "restart"},
		{"uptime grew, counter grew", sample{raw: 1, bits: 32, uptime: 10}, sample{raw: 3, bits: 32, uptime: 20}, 2, "grew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := counterIncrease(tc.prev, tc.cur)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.wantReason, reason)
		})
	}
}

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		pdu  gosnmp.SnmpPDU
		v    float64
		bits int
		err  string
	}{
		{gosnmp.SnmpPDU{Type: gosnmp.Counter32, Value: uint(4000000000)}, 4e9, 32, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.Counter64, Value: uint64(1 << 40)}, 1 << 40, 64, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.Gauge32, Value: uint(81)}, 81, 0, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.Integer, Value: -5}, -5, 0, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.TimeTicks, Value: uint32(12345)}, 12345, 0, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.OpaqueFloat, Value: float32(1.5)}, 1.5, 0, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.OpaqueDouble, Value: 2.25}, 2.25, 0, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: []byte(" 230.5 ")}, 230.5, 0, ""},
		{gosnmp.SnmpPDU{Type: gosnmp.OctetString, Value: []byte("eth0")}, 0, 0, `OctetString "eth0" is not a number`},
		{gosnmp.SnmpPDU{Type: gosnmp.NoSuchInstance}, 0, 0, "the agent has no such object (NoSuchInstance)"},
		{gosnmp.SnmpPDU{Type: gosnmp.IPAddress, Value: "10.0.0.1"}, 0, 0, "type IPAddress is not a number"},
	} {
		v, _, bits, err := value(tc.pdu)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.v, v)
		require.Equal(t, tc.bits, bits)
	}
}

// TestDeltaAndRate drives add with readings, as a collection would.
func TestDeltaAndRate(t *testing.T) {
	d := open(t, map[string]any{"target": "127.0.0.1", "prefix": "pdu", "objects": []map[string]any{
		{"oid": "1.3.6.1.4.1.1.1", "name": "energy", "unit": "Wh", "scale": 0.1, "mode": "delta"},
		{"oid": "1.3.6.1.4.1.1.2", "name": "octets", "unit": "B", "mode": "rate"},
		{"oid": "1.3.6.1.4.1.1.3", "name": "raw"},
		{"oid": "1.3.6.1.4.1.1.4", "name": "bad", "mode": "delta"},
	}})
	o := d.cfg.Objects
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	round := func(at time.Time, uptime uint32, energy, octets uint) []meter.Measurement {
		c := collection{d: d, now: at, uptime: uptime}
		c.add(&o[0], gosnmp.SnmpPDU{Name: ".1.3.6.1.4.1.1.1", Type: gosnmp.Counter32, Value: energy}, "pdu1", nil)
		c.add(&o[1], gosnmp.SnmpPDU{Name: ".1.3.6.1.4.1.1.2", Type: gosnmp.Counter32, Value: octets}, "pdu1", nil)
		c.add(&o[2], gosnmp.SnmpPDU{Name: ".1.3.6.1.4.1.1.3", Type: gosnmp.Counter32, Value: octets}, "pdu1", nil)
		c.add(&o[3], gosnmp.SnmpPDU{Name: ".1.3.6.1.4.1.1.4", Type: gosnmp.Gauge32, Value: uint(3)}, "pdu1", nil)
		require.Len(t, c.errs, 1)
		require.ErrorContains(t, c.errs[0], "snmp: 127.0.0.1: .1.3.6.1.4.1.1.4 (bad): mode delta needs a Counter32 or Counter64, the agent sent Gauge32")
		return c.ms
	}

	// The first round only sets the baselines of delta and rate.
	ms := round(t0, 1000, 4294967000, 100)
	require.Len(t, ms, 1)
	require.Equal(t, meter.Measurement{Name: "pdu.raw", Kind: meter.Cumulative, Value: 100, Time: t0, ResourceID: "pdu1"}, ms[0])

	// 10 s later: energy wrapped (296 to the wrap, 104 after it), octets grew by 5000.
	ms = round(t0.Add(10*time.Second), 2000, 104, 5100)
	require.Len(t, ms, 3)
	require.Equal(t, "pdu.energy", ms[0].Name)
	require.Equal(t, meter.Delta, ms[0].Kind)
	require.Equal(t, "Wh", ms[0].Unit)
	require.InDelta(t, 40.0, ms[0].Value, 1e-9) // (296+104) * 0.1
	require.Equal(t, "pdu.octets", ms[1].Name)
	require.Equal(t, meter.Gauge, ms[1].Kind)
	require.Equal(t, "B/s", ms[1].Unit)
	require.InDelta(t, 500.0, ms[1].Value, 1e-9)

	// The agent restarted (uptime went down): counting starts from zero.
	ms = round(t0.Add(20*time.Second), 50, 30, 7)
	require.InDelta(t, 3.0, ms[0].Value, 1e-9)
	require.InDelta(t, 0.7, ms[1].Value, 1e-9)
}

func TestWalkRowResourceIDs(t *testing.T) {
	d := open(t, map[string]any{"target": "10.0.0.5:1161", "objects": []map[string]any{
		{"oid": ".1.3.6.1.2.1.2.2.1.10", "name": "if.in", "walk": true, "name_oid": "1.3.6.1.2.1.2.2.1.2"},
	}})
	require.Equal(t, "10.0.0.5", d.host)
	require.Equal(t, uint16(1161), d.port)
	require.Equal(t, "10.0.0.5", d.cfg.ResourceID)
	require.Equal(t, ".1.3.6.1.2.1.2.2.1.2", d.cfg.Objects[0].NameOID)
}

func TestConfigErrors(t *testing.T) {
	obj := []map[string]any{{"oid": "1.3.6.1.2.1.1.3.0", "name": "uptime"}}
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"objects": obj}, "snmp: config: target is empty"},
		{map[string]any{"target": "h:x", "objects": obj}, `snmp: config: target "h:x": bad port "x"`},
		{map[string]any{"target": ":161", "objects": obj}, `target ":161" has no host`},
		{map[string]any{"target": "h"}, "snmp: config: objects is empty"},
		{map[string]any{"target": "h", "version": "2", "objects": obj}, `snmp: config: version "2": want "1", "2c" or "3"`},
		{map[string]any{"target": "h", "version": "3", "objects": obj}, "version 3 needs a user"},
		{map[string]any{"target": "h", "version": "3", "user": "u", "auth_protocol": "SHA1", "objects": obj}, `auth_protocol "SHA1"`},
		{map[string]any{"target": "h", "version": "3", "user": "u", "priv_protocol": "3DES", "objects": obj}, `priv_protocol "3DES"`},
		{map[string]any{"target": "h", "version": "3", "user": "u", "priv_password": "12345678", "objects": obj}, "priv_password needs auth_password too"},
		{map[string]any{"target": "h", "version": "3", "user": "u", "auth_password": "short", "objects": obj}, "at least 8 characters"},
		{map[string]any{"target": "h", "user": "u", "objects": obj}, `user, auth_password and priv_password are for version 3, not "2c"`},
		{map[string]any{"target": "h", "timeout": "0s", "objects": obj}, "timeout 0s must be positive"},
		{map[string]any{"target": "h", "retries": -1, "objects": obj}, "retries -1 is negative"},
		{map[string]any{"target": "h", "max_repetitions": 5000, "objects": obj}, "max_repetitions 5000: want 1 to 1000"},
		{map[string]any{"target": "h", "community": 5, "objects": obj}, "snmp: config: json: cannot unmarshal number"},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3.6", "name": ""}}}, "objects[0] (): name is empty"},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "sysUpTime.0", "name": "u"}}}, `objects[0] (u): oid: "sysUpTime.0" is not a numeric OID (MIB names are not supported)`},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1", "name": "u"}}}, "fewer than two arcs"},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3", "name": "u", "kind": "rate"}}}, `kind "rate": want gauge or counter`},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3", "name": "u", "mode": "avg"}}}, `mode "avg": want delta, rate or none`},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3", "name": "u", "kind": "gauge", "mode": "rate"}}}, `mode "rate" is for counters, and kind is gauge`},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3", "name": "u", "name_oid": "1.3.1"}}}, "name_oid is only for walk"},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3.1", "name": "u"}, {"oid": "1.3.2", "name": "u"}}}, `objects[0] and objects[1] are both named "u"`},
		{map[string]any{"target": "h", "objects": []map[string]any{{"oid": "1.3.1", "name": "u", "table": true}}}, `unknown field "table"`},
	} {
		_, err := New(config(t, tc.cfg))
		require.ErrorContains(t, err, tc.want, "%v", tc.cfg)
	}
}

// silentAgent is a UDP socket that reads requests and never answers.
func silentAgent(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return pc.LocalAddr().String()
}

func TestCollectHonoursCtx(t *testing.T) {
	target := silentAgent(t)
	d := open(t, map[string]any{"target": target, "timeout": "10s", "retries": 3,
		"objects": []map[string]any{{"oid": "1.3.6.1.2.1.1.3.0", "name": "uptime"}}})

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		ms, err := d.Collect(ctx)
		require.Less(t, time.Since(start), time.Second)
		require.Empty(t, ms)
		require.ErrorContains(t, err, "snmp: "+target+": get .1.3.6.1.2.1.1.3.0: context deadline exceeded")
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		start := time.Now()
		_, err := d.Collect(ctx)
		require.Less(t, time.Since(start), time.Second)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := d.Collect(ctx)
		require.ErrorIs(t, err, context.Canceled)
	})
	t.Run("request timeout", func(t *testing.T) {
		d := open(t, map[string]any{"target": target, "timeout": "100ms", "retries": 1,
			"objects": []map[string]any{{"oid": "1.3.6.1.2.1.1.3.0", "name": "uptime"}}})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := d.Collect(ctx)
		require.Less(t, time.Since(start), 2*time.Second)
		require.ErrorContains(t, err, "snmp: "+target+": get .1.3.6.1.2.1.1.3.0: request timeout (after 1 retries)")
	})
}
