package libvirt

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meterkit/meter/driver"
)

// Procedures and wire constants of libvirt's remote protocol
// (src/remote/remote_protocol.x, src/rpc/virnetprotocol.x).
const (
	procConnectOpen              = 1
	procConnectClose             = 2
	procDomainGetXMLDesc         = 14
	procAuthList                 = 66
	procConnectListAllDomains    = 273
	procConnectGetAllDomainStats = 344

	remoteProgram = 0x20008086
	typeReply     = 1
	statusOK      = 0
	statusError   = 1
)

// xdr writes XDR (RFC 4506) the way libvirt's replies are encoded.
type xdr struct{ b []byte }

func (x *xdr) u32(v uint32) { x.b = binary.BigEndian.AppendUint32(x.b, v) }
func (x *xdr) u64(v uint64) { x.b = binary.BigEndian.AppendUint64(x.b, v) }
func (x *xdr) str(s string) {
	x.u32(uint32(len(s)))
	x.b = append(x.b, s...)
	for len(x.b)%4 != 0 {
		x.b = append(x.b, 0)
	}
}

// param is a remote_typed_param: its type is the union's discriminant.
type param struct {
	field string
	typ   uint32 // 1 int, 2 uint, 3 llong, 4 ullong, 5 double, 6 boolean, 7 string
	v     uint64
	s     string
}

func (x *xdr) param(p param) {
	x.str(p.field)
	x.u32(p.typ)
	switch p.typ {
	case 1, 2, 6:
		x.u32(uint32(p.v))
	case 3, 4, 5:
		x.u64(p.v)
	case 7:
		x.str(p.s)
	}
}

// record is a remote_domain_stats_record.
type record struct {
	name   string
	uuid   [16]byte
	id     int32
	params []param
}

func statsReply(recs []record) []byte {
	var x xdr
	x.u32(uint32(len(recs)))
	for _, r := range recs {
		x.str(r.name)
		x.b = append(x.b, r.uuid[:]...)
		x.u32(uint32(r.id))
		x.u32(uint32(len(r.params)))
		for _, p := range r.params {
			x.param(p)
		}
	}
	return x.b
}

func errorReply(code uint32, msg string) []byte {
	var x xdr
	x.u32(code)
	x.u32(10) // VIR_FROM_DOM
	x.u32(1)  // the message is present
	x.str(msg)
	x.u32(2) // VIR_ERR_ERROR
	return x.b
}

func uuidOf(last byte) [16]byte {
	return [16]byte{0x6f, 0x1b, 0x2c, 0x3d, 0x0a, 0x1b, 0x4c, 0x5d, 0x8e, 0x9f, 0, 0, 0, 0, 0, last}
}

func u(field string, v uint64) param  { return param{field: field, typ: 4, v: v} }
func i32(field string, v int32) param { return param{field: field, typ: 1, v: uint64(uint32(v))} }
func ui(field string, v uint32) param { return param{field: field, typ: 2, v: uint64(v)} }
func s(field, v string) param         { return param{field: field, typ: 7, s: v} }

// qemuRecords are ConnectGetAllDomainStats records in the shape QEMU's
// driver sends for the groups the driver asks (state, cpu-total, balloon,
// vcpu, interface, block): the field names and types of libvirt's
// virConnectGetAllDomainStats documentation, the values written here. The
// devices are those of the recorded XML in testdata; block.3 is a CD-ROM
// drive the XML does not list as a disk with a source.
func qemuRecords() []record {
	return []record{
		{"instance-00000001", uuidOf(1), 1, []param{
			i32("state.state", 1), i32("state.reason", 1),
			u("cpu.time", 123456789012), u("cpu.user", 100000000000), u("cpu.system", 23456789012),
			u("balloon.current", 2097152), u("balloon.maximum", 2097152), u("balloon.swap_in", 0),
			u("balloon.available", 2040000), u("balloon.unused", 1500000), u("balloon.usable", 1600000),
			u("balloon.rss", 700000), u("balloon.last-update", 1764496800),
			ui("vcpu.current", 1), ui("vcpu.maximum", 1), i32("vcpu.0.state", 1), u("vcpu.0.time", 120000000000),
			ui("net.count", 2),
			s("net.0.name", "tap0a1b2c3d-01"), u("net.0.rx.bytes", 1000), u("net.0.rx.pkts", 10), u("net.0.rx.errs", 1), u("net.0.rx.drop", 2),
			u("net.0.tx.bytes", 2000), u("net.0.tx.pkts", 20), u("net.0.tx.errs", 3), u("net.0.tx.drop", 4),
			s("net.1.name", "tap0a1b2c3d-02"), u("net.1.rx.bytes", 5000), u("net.1.rx.pkts", 50), u("net.1.rx.errs", 0), u("net.1.rx.drop", 0),
			u("net.1.tx.bytes", 6000), u("net.1.tx.pkts", 60), u("net.1.tx.errs", 0), u("net.1.tx.drop", 0),
			ui("block.count", 4),
			s("block.0.name", "vda"), s("block.0.path", "/var/lib/nova/instances/x/disk0"),
			u("block.0.rd.reqs", 100), u("block.0.rd.bytes", 409600), u("block.0.rd.times", 5),
			u("block.0.wr.reqs", 50), u("block.0.wr.bytes", 204800), u("block.0.wr.times", 5),
			u("block.0.fl.reqs", 3), u("block.0.allocation", 1), u("block.0.capacity", 2), u("block.0.physical", 3),
			s("block.1.name", "vdb"), u("block.1.rd.reqs", 7), u("block.1.rd.bytes", 7168), u("block.1.wr.reqs", 8), u("block.1.wr.bytes", 8192),
			s("block.2.name", "vdc"), u("block.2.rd.reqs", 0), u("block.2.rd.bytes", 0), u("block.2.wr.reqs", 0), u("block.2.wr.bytes", 0),
			s("block.3.name", "hdc"), u("block.3.rd.reqs", 1), u("block.3.rd.bytes", 2048),
		}},
		// Paused: QEMU still reports every group.
		{"instance-00000003", uuidOf(3), 3, []param{
			i32("state.state", 3), i32("state.reason", 1),
			u("cpu.time", 5000000000),
			u("balloon.current", 524288), u("balloon.maximum", 524288),
			ui("vcpu.current", 1), ui("vcpu.maximum", 1),
			ui("net.count", 1),
			s("net.0.name", "tap0a1b2c3d-04"), u("net.0.rx.bytes", 1), u("net.0.rx.pkts", 1), u("net.0.rx.errs", 0), u("net.0.rx.drop", 0),
			u("net.0.tx.bytes", 1), u("net.0.tx.pkts", 1), u("net.0.tx.errs", 0), u("net.0.tx.drop", 0),
			ui("block.count", 1),
			s("block.0.name", "vda"), u("block.0.rd.reqs", 9), u("block.0.rd.bytes", 9216), u("block.0.wr.reqs", 0), u("block.0.wr.bytes", 0),
		}},
	}
}

// fakeDaemon answers libvirt's RPC protocol on a unix socket with the
// replies handle gives: a stand-in for a QEMU host's libvirtd, which this
// machine cannot run. handle returning ok=false leaves the call unanswered;
// close=true drops the connection instead of answering.
type fakeDaemon struct {
	socket string
	ln     net.Listener
	handle func(conn int, proc uint32, payload []byte) (status uint32, reply []byte, ok, close bool)

	dials atomic.Int32
	mu    sync.Mutex
	conns []net.Conn
	calls map[uint32]int
	wg    sync.WaitGroup
}

func startFake(t *testing.T, handle func(conn int, proc uint32, payload []byte) (uint32, []byte, bool, bool)) *fakeDaemon {
	t.Helper()
	f, err := newFake(filepath.Join(t.TempDir(), "libvirt-sock"), handle)
	require.NoError(t, err)
	t.Cleanup(f.close)
	return f
}

// newFake listens on socket; close stops it.
func newFake(socket string, handle func(conn int, proc uint32, payload []byte) (uint32, []byte, bool, bool)) (*fakeDaemon, error) {
	f := &fakeDaemon{socket: socket, handle: handle, calls: map[uint32]int{}}
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		return nil, err
	}
	f.ln = ln
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(f.dials.Add(1))
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(n, c) })
		}
	})
	return f, nil
}

// qemuHost answers like a QEMU host's libvirtd with qemuRecords and the
// recorded XML.
func qemuHost(_ int, proc uint32, payload []byte) (uint32, []byte, bool, bool) {
	switch proc {
	case procConnectGetAllDomainStats:
		return statusOK, statsReply(qemuRecords()), true, false
	case procDomainGetXMLDesc:
		return statusOK, xmlReply(payload), true, false
	}
	return statusError, errorReply(1, "unexpected procedure"), true, false
}

func (f *fakeDaemon) serve(n int, c net.Conn) {
	defer c.Close()
	var hdr [28]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[0:])
		proc := binary.BigEndian.Uint32(hdr[12:])
		serial := binary.BigEndian.Uint32(hdr[20:])
		payload := make([]byte, size-28)
		if _, err := io.ReadFull(c, payload); err != nil {
			return
		}
		f.mu.Lock()
		f.calls[proc]++
		f.mu.Unlock()
		var status uint32
		var reply []byte
		ok, drop := true, false
		switch proc {
		case procAuthList:
			var x xdr
			x.u32(1)
			x.u32(0) // REMOTE_AUTH_NONE
			reply = x.b
		case procConnectOpen, procConnectClose:
		default:
			status, reply, ok, drop = f.handle(n, proc, payload)
		}
		if drop {
			return
		}
		if !ok {
			continue
		}
		var out xdr
		out.u32(uint32(28 + len(reply)))
		out.u32(remoteProgram)
		out.u32(1)
		out.u32(proc)
		out.u32(typeReply)
		out.u32(serial)
		out.u32(status)
		if _, err := c.Write(append(out.b, reply...)); err != nil {
			return
		}
	}
}

func (f *fakeDaemon) callsOf(proc uint32) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[proc]
}

func (f *fakeDaemon) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// xmlReply answers DomainGetXMLDesc with the domain XML recorded from
// libvirtd (virsh dumpxml) in testdata.
func xmlReply(payload []byte) []byte {
	n := binary.BigEndian.Uint32(payload)
	name := string(payload[4 : 4+n])
	b, err := os.ReadFile(filepath.Join("testdata", name+".xml"))
	if err != nil {
		return errorReply(42, "Domain not found: "+name)
	}
	var x xdr
	x.str(string(b))
	return x.b
}

// noLeaks checks, after every other cleanup of t (the fake daemon's
// included), that no goroutine started by the test is left.
func noLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func openFake(t *testing.T, f *fakeDaemon, extra map[string]any) *Driver {
	t.Helper()
	m := map[string]any{"uri": "qemu:///system", "socket": f.socket}
	for k, v := range extra {
		m[k] = v
	}
	cfg, err := driver.ConfigFrom(m)
	require.NoError(t, err)
	d, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.(*Driver).Close() })
	return d.(*Driver)
}

// TestBulkStats reads QEMU-shaped ConnectGetAllDomainStats replies: one
// call per collection, plus the XML of each domain once.
func TestBulkStats(t *testing.T) {
	noLeaks(t)
	f := startFake(t, qemuHost)
	d := openFake(t, f, nil)
	ms, err := d.Collect(context.Background())
	require.NoError(t, err)
	require.Equal(t, int8(1), d.bulk, "auto mode keeps the bulk path when cpu.time is there")

	const id1, id3 = "6f1b2c3d-0a1b-4c5d-8e9f-000000000001", "6f1b2c3d-0a1b-4c5d-8e9f-000000000003"
	want := map[[2]string]float64{
		{"cpu", id1}: 123456789012, {"vcpus", id1}: 1, {"memory", id1}: 2048,
		{"memory.usage", id1}: (2040000 - 1500000) / 1024.0, {"memory.resident", id1}: 700000 / 1024.0,
		{"disk.device.read.bytes", id1 + "-vda"}: 409600, {"disk.device.read.requests", id1 + "-vda"}: 100,
		{"disk.device.write.bytes", id1 + "-vda"}: 204800, {"disk.device.write.requests", id1 + "-vda"}: 50,
		{"disk.device.read.bytes", id1 + "-vdb"}: 7168, {"disk.device.read.requests", id1 + "-vdb"}: 7,
		{"disk.device.write.bytes", id1 + "-vdb"}: 8192, {"disk.device.write.requests", id1 + "-vdb"}: 8,
		{"disk.device.read.bytes", id1 + "-vdc"}: 0, {"disk.device.read.requests", id1 + "-vdc"}: 0,
		{"disk.device.write.bytes", id1 + "-vdc"}: 0, {"disk.device.write.requests", id1 + "-vdc"}: 0,
		{"cpu", id3}: 5e9, {"vcpus", id3}: 1, {"memory", id3}: 512,
		{"disk.device.read.bytes", id3 + "-vda"}: 9216, {"disk.device.read.requests", id3 + "-vda"}: 9,
		{"disk.device.write.bytes", id3 + "-vda"}: 0, {"disk.device.write.requests", id3 + "-vda"}: 0,
	}
	nic := func(dev string, rxB, rxP, rxE, rxD, txB, txP, txE, txD float64) {
		id := "instance-00000001-" + id1 + "-" + dev
		if dev == "tap0a1b2c3d-04" {
			id = "instance-00000003-" + id3 + "-" + dev
		}
		for name, v := range map[string]float64{
			"network.incoming.bytes": rxB, "network.incoming.packets": rxP, "network.incoming.packets.error": rxE,
			"network.incoming.packets.drop": rxD, "network.outgoing.bytes": txB, "network.outgoing.packets": txP,
			"network.outgoing.packets.error": txE, "network.outgoing.packets.drop": txD} {
			want[[2]string{name, id}] = v
		}
	}
	nic("tap0a1b2c3d-01", 1000, 10, 1, 2, 2000, 20, 3, 4)
	nic("tap0a1b2c3d-02", 5000, 50, 0, 0, 6000, 60, 0, 0)
	nic("tap0a1b2c3d-04", 1, 1, 0, 0, 1, 1, 0, 0)
	got := map[[2]string]float64{}
	for _, m := range ms {
		m.Host = "h"
		require.NoError(t, m.Validate())
		require.Equal(t, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", m.ProjectID, m.Name)
		require.Equal(t, "a1b2c3d4e5f60718293a4b5c6d7e8f90", m.UserID, m.Name)
		got[[2]string{m.Name, m.ResourceID}] = m.Value
	}
	require.Equal(t, want, got, "hdc (a CD-ROM without source) is not reported")
	require.Equal(t, 2, f.callsOf(procDomainGetXMLDesc))

	// hdc was unknown to the XML: the next collection reads instance 1's
	// XML again (a hot-plugged disk would show up that way), not instance 3's.
	_, err = d.Collect(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3, f.callsOf(procDomainGetXMLDesc))
	require.Equal(t, 2, f.callsOf(procConnectGetAllDomainStats))
	require.Equal(t, int32(1), f.dials.Load())
	require.NoError(t, d.Close())
	require.NoError(t, d.Close())
	_, err = d.Collect(context.Background())
	require.ErrorIs(t, err, ErrClosed)
}

// TestBulkUnsupported: a daemon that does not know ConnectGetAllDomainStats
// ("unknown procedure") makes auto mode use the per-domain calls.
func TestBulkUnsupported(t *testing.T) {
	noLeaks(t)
	f := startFake(t, func(_ int, proc uint32, _ []byte) (uint32, []byte, bool, bool) {
		switch proc {
		case procConnectGetAllDomainStats:
			return statusError, errorReply(1, "unknown procedure: 344"), true, false
		case procConnectListAllDomains:
			var x xdr
			x.u32(0) // no domains
			x.u32(0)
			return statusOK, x.b, true, false
		}
		return statusError, errorReply(1, "unexpected procedure"), true, false
	})
	d := openFake(t, f, nil)
	ms, err := d.Collect(context.Background())
	require.NoError(t, err)
	require.Empty(t, ms)
	require.Equal(t, int8(-1), d.bulk)
	require.Equal(t, 1, f.callsOf(procConnectListAllDomains))
	require.NoError(t, d.Close())
}

// TestHungDaemon: a daemon that never answers. The collection returns when
// its ctx ends, by closing the connection; the next one dials again.
func TestHungDaemon(t *testing.T) {
	noLeaks(t)
	f := startFake(t, func(conn int, proc uint32, payload []byte) (uint32, []byte, bool, bool) {
		switch {
		case proc == procConnectGetAllDomainStats && conn == 1:
			return 0, nil, false, false // hang
		case proc == procConnectGetAllDomainStats:
			return statusOK, statsReply(qemuRecords()), true, false
		case proc == procDomainGetXMLDesc:
			return statusOK, xmlReply(payload), true, false
		}
		return statusError, errorReply(1, "unexpected procedure"), true, false
	})
	d := openFake(t, f, map[string]any{"stats": "bulk"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	_, err := d.Collect(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)

	ms, err := d.Collect(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	require.Equal(t, int32(2), f.dials.Load())
	require.NoError(t, d.Close())
}

// TestConnectionLost: the daemon drops the connection during a
// collection; the collection dials again and starts over.
func TestConnectionLost(t *testing.T) {
	noLeaks(t)
	f := startFake(t, func(conn int, proc uint32, payload []byte) (uint32, []byte, bool, bool) {
		switch {
		case proc == procConnectGetAllDomainStats && conn == 1:
			return 0, nil, false, true // drop the connection
		case proc == procConnectGetAllDomainStats:
			return statusOK, statsReply(qemuRecords()), true, false
		case proc == procDomainGetXMLDesc:
			return statusOK, xmlReply(payload), true, false
		}
		return statusError, errorReply(1, "unexpected procedure"), true, false
	})
	d := openFake(t, f, map[string]any{"stats": "bulk"})
	ms, err := d.Collect(context.Background())
	require.NoError(t, err)
	require.Len(t, ms, 5+3*4+2*8+3+4+8)
	require.Equal(t, int32(2), f.dials.Load())
	require.NoError(t, d.Close())
}

// TestDaemonDown: nothing listens on the socket.
func TestDaemonDown(t *testing.T) {
	cfg := driver.ConfigFromJSON([]byte(`{"socket": "` + filepath.Join(t.TempDir(), "none") + `"}`))
	d, err := New(cfg)
	require.NoError(t, err)
	defer d.(*Driver).Close()
	_, err = d.Collect(context.Background())
	require.ErrorContains(t, err, "libvirt: connect to qemu:///system at unix ")
}
