package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
)

func init() { driver.Register("libvirt", New) }

// Defaults of Config.
const (
	DefaultURI             = "qemu:///system"
	DefaultSocket          = "/var/run/libvirt/libvirt-sock"
	DefaultDialTimeout     = 5 * time.Second
	DefaultMetadataRefresh = 10 * time.Minute
)

// Stats modes of Config.Stats.
const (
	StatsAuto   = "auto"   // bulk when the daemon reports stats groups, else per domain
	StatsBulk   = "bulk"   // always ConnectGetAllDomainStats
	StatsDomain = "domain" // always the per-domain calls
)

// Config is the configuration of the libvirt driver. Its zero value meters
// the local QEMU/KVM hypervisor through /var/run/libvirt/libvirt-sock.
type Config struct {
	// URI is the libvirt connection URI, "qemu:///system" by default. Its
	// transport is unix (the default, "qemu+unix://") or tcp
	// ("qemu+tcp://host:16509/system"); the daemon opens the hypervisor
	// driver the URI names, e.g. "test+unix:///default?socket=/tmp/sock"
	// for libvirt's built-in test driver.
	URI string `json:"uri,omitempty"`
	// Socket is the daemon's unix socket; it overrides the URI's "socket"
	// parameter. Default: that parameter, else /var/run/libvirt/libvirt-sock.
	// The read-only socket (libvirt-sock-ro) is enough.
	Socket string `json:"socket,omitempty"`
	// DialTimeout bounds a dial and the opening of the connection; the
	// collection's ctx bounds it too. Default 5s.
	DialTimeout driver.Duration `json:"dial_timeout,omitempty"`
	// MetadataRefresh is how long a domain's parsed XML (disks, vNICs, Nova
	// metadata) is kept before it is read again; it is also read again when
	// the domain's id changes (it was restarted). Default 10m.
	MetadataRefresh driver.Duration `json:"metadata_refresh,omitempty"`
	// Stats is "auto" (default), "bulk" or "domain"; see the package doc.
	Stats string `json:"stats,omitempty"`
}

// Driver meters the domains of one libvirt daemon through one connection,
// dialled on the first collection and again after it was lost.
type Driver struct {
	uri       golibvirt.ConnectURI // what the daemon opens
	network   string               // "unix" or "tcp"
	address   string
	timeout   time.Duration
	refresh   time.Duration
	statsMode string
	bulk      int8 // auto mode: 0 not probed yet, 1 bulk, -1 per domain

	mu   sync.Mutex // guards nc against Close racing a cancelled collection
	lv   *golibvirt.Libvirt
	nc   net.Conn
	dead bool // closed by Close

	cacheMu sync.Mutex // guards cache while the per-domain path reads in parallel
	cache   map[golibvirt.UUID]*domainMeta
	gen     uint64
	out     []meter.Measurement
	stats   domStats    // reused per domain by the bulk path
	jobs    []domainJob // reused by the per-domain path
}

// New is the libvirt driver's factory.
func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{
		URI:             DefaultURI,
		DialTimeout:     driver.Duration(DefaultDialTimeout),
		MetadataRefresh: driver.Duration(DefaultMetadataRefresh),
		Stats:           StatsAuto,
	}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	d, err := newDriver(c)
	if err != nil {
		return nil, fmt.Errorf("libvirt: config: %w", err)
	}
	return d, nil
}

func newDriver(c Config) (*Driver, error) {
	u, err := url.Parse(c.URI)
	if err != nil {
		return nil, fmt.Errorf("uri %q: %w", c.URI, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("uri %q has no scheme (want e.g. qemu:///system)", c.URI)
	}
	d := &Driver{
		uri:       golibvirt.RemoteURI(u),
		timeout:   time.Duration(c.DialTimeout),
		refresh:   time.Duration(c.MetadataRefresh),
		statsMode: c.Stats,
		cache:     map[golibvirt.UUID]*domainMeta{},
	}
	transport := "unix"
	if s := strings.SplitN(u.Scheme, "+", 2); len(s) == 2 {
		transport = s[1]
	} else if u.Host != "" {
		transport = "tcp"
	}
	switch transport {
	case "unix":
		d.network, d.address = "unix", DefaultSocket
		if s := u.Query().Get("socket"); s != "" {
			d.address = s
		}
		if c.Socket != "" {
			d.address = c.Socket
		}
	case "tcp":
		if c.Socket != "" {
			return nil, fmt.Errorf("socket %q is for the unix transport, not tcp", c.Socket)
		}
		port := u.Port()
		if port == "" {
			port = "16509"
		}
		d.network, d.address = "tcp", net.JoinHostPort(u.Hostname(), port)
	default:
		return nil, fmt.Errorf("uri %q: transport %q is not supported (want unix or tcp)", c.URI, transport)
	}
	if d.timeout <= 0 {
		return nil, fmt.Errorf("dial_timeout %v must be positive", d.timeout)
	}
	if d.refresh <= 0 {
		return nil, fmt.Errorf("metadata_refresh %v must be positive", d.refresh)
	}
	switch c.Stats {
	case StatsAuto:
	case StatsBulk:
		d.bulk = 1
	case StatsDomain:
		d.bulk = -1
	default:
		return nil, fmt.Errorf("stats %q: want auto, bulk or domain", c.Stats)
	}
	return d, nil
}

// ErrClosed is returned by Collect after Close.
var ErrClosed = errors.New("libvirt: driver closed")

// connDialer hands go-libvirt a connection dialled with the collection's
// ctx and keeps it, so that a cancelled collection can close it: go-libvirt's
// calls take no ctx and would otherwise wait for the daemon forever.
type connDialer struct {
	ctx     context.Context
	network string
	address string
	timeout time.Duration

	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (c *connDialer) Dial() (net.Conn, error) {
	var nd net.Dialer
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	conn, err := nd.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = conn.Close()
		return nil, errors.New("timed out")
	}
	c.conn = conn
	return conn, nil
}

// close closes the connection dialled, and any dialled later.
func (c *connDialer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// connect returns the connection, dialling it if there is none or the one
// there was lost (the daemon restarted).
func (d *Driver) connect(ctx context.Context) (*golibvirt.Libvirt, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, ErrClosed
	}
	if d.lv != nil && d.lv.IsConnected() {
		return d.lv, nil
	}
	d.dropLocked()
	dialer := &connDialer{ctx: ctx, network: d.network, address: d.address, timeout: d.timeout}
	lv := golibvirt.NewWithDialer(dialer)
	// Opening the connection is two RPCs: bound them like the dial.
	t := time.AfterFunc(d.timeout, dialer.close)
	stop := context.AfterFunc(ctx, func() { t.Reset(0) })
	err := lv.ConnectToURI(d.uri)
	stop()
	if !t.Stop() || ctx.Err() != nil {
		if err == nil {
			err = errors.New("timed out")
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		dialer.close()
		return nil, fmt.Errorf("libvirt: connect to %s at %s %s: %w", d.uri, d.network, d.address, err)
	}
	d.lv, d.nc = lv, dialer.conn
	if d.statsMode == StatsAuto {
		d.bulk = 0 // another daemon may have come back: probe again
	}
	return lv, nil
}

// dropLocked forgets the connection, closing its socket. go-libvirt's
// reader goroutine ends when the socket is closed.
func (d *Driver) dropLocked() {
	if d.nc != nil {
		_ = d.nc.Close()
	}
	d.lv, d.nc = nil, nil
}

// drop closes lv's connection if it is still the driver's.
func (d *Driver) drop(lv *golibvirt.Libvirt) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lv == lv {
		d.dropLocked()
	}
}

// Close closes the connection to the daemon. It is idempotent; Collect
// fails with ErrClosed afterwards.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil
	}
	d.dead = true
	if d.lv == nil {
		return nil
	}
	// A polite goodbye, bounded: a hung daemon must not hang Close.
	nc := d.nc
	t := time.AfterFunc(time.Second, func() { _ = nc.Close() })
	_ = d.lv.Disconnect()
	t.Stop()
	d.dropLocked()
	return nil
}

// isServerError reports whether err was answered by the daemon (a libvirt
// error such as "domain is not running", or "unknown procedure" from an
// older daemon), as opposed to a lost or broken
// connection.
func isServerError(err error) bool {
	var le golibvirt.Error
	return errors.As(err, &le) || errors.Is(err, golibvirt.ErrUnsupported)
}

// isNotRunning reports whether the daemon said the domain is gone or no
// longer running: it shut off or was undefined since it was listed.
func isNotRunning(err error) bool {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	return le.Code == uint32(golibvirt.ErrOperationInvalid) || le.Code == uint32(golibvirt.ErrNoDomain)
}

// Collect reads every active domain's statistics. When the connection was
// lost it dials again first; when the connection breaks during the
// collection, it dials once more and starts over.
func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		lv, err := d.connect(ctx)
		if err != nil {
			return nil, err
		}
		ms, err := d.collectOn(ctx, lv)
		var ce *connError
		if attempt == 0 && errors.As(err, &ce) && ctx.Err() == nil {
			continue // the connection broke: once more on a new one
		}
		return ms, err
	}
}

// connError is a failure of the connection rather than an answer of the
// daemon: the connection is dropped and dialled again.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() + " (connection lost)" }
func (e *connError) Unwrap() error { return e.err }

// collectOn runs one collection on lv; a done ctx closes the connection so
// that the call in flight returns.
func (d *Driver) collectOn(ctx context.Context, lv *golibvirt.Libvirt) ([]meter.Measurement, error) {
	stop := context.AfterFunc(ctx, func() { d.drop(lv) })
	defer stop()
	ms, err := d.collect(lv)
	if cerr := ctx.Err(); cerr != nil {
		return ms, fmt.Errorf("libvirt: collect: %w", cerr)
	}
	var ce *connError
	if errors.As(err, &ce) {
		d.drop(lv)
	}
	return ms, err
}
