package snmp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/driver"
	"github.com/meterkit/meter/internal/service"
)

func init() { driver.Register("snmp", New) }

// Defaults of Config.
const (
	DefaultPort           = 161
	DefaultCommunity      = "public"
	DefaultTimeout        = 2 * time.Second
	DefaultRetries        = 1
	DefaultMaxRepetitions = 10
)

// sysUpTime is read along with the objects when one of them is a delta or
// a rate, to tell an agent restart from a counter wrap.
const sysUpTime = ".1.3.6.1.2.1.1.3.0"

// Config is the configuration of the snmp driver.
type Config struct {
	// Target is the agent's host or host:port (port 161 by default). Required.
	Target string `json:"target"`
	// Version is "1", "2c" (the default) or "3".
	Version string `json:"version,omitempty"`
	// Community for versions 1 and 2c; default "public".
	Community string `json:"community,omitempty"`
	// CommunityFile, AuthPasswordFile and PrivPasswordFile name files
	// holding the community, auth_password and priv_password (one line),
	// so that the secret stays out of the config file. Like tenant key
	// files, a file that its group or others may read is refused. Read
	// when the driver is made; give the value or its file, not both.
	CommunityFile    string `json:"community_file,omitempty"`
	AuthPasswordFile string `json:"auth_password_file,omitempty"`
	PrivPasswordFile string `json:"priv_password_file,omitempty"`
	// User and the rest configure version 3 (USM). The security level
	// follows from the passwords given: both authPriv, auth only
	// authNoPriv, none noAuthNoPriv.
	User         string `json:"user,omitempty"`
	AuthProtocol string `json:"auth_protocol,omitempty"` // MD5, SHA (default), SHA224, SHA256, SHA384, SHA512
	AuthPassword string `json:"auth_password,omitempty"`
	PrivProtocol string `json:"priv_protocol,omitempty"` // DES, AES (default), AES192, AES256, AES192C, AES256C
	PrivPassword string `json:"priv_password,omitempty"`
	ContextName  string `json:"context_name,omitempty"`
	// Timeout of one request (default 2s) and how often it is retried
	// (default 1). The collection's ctx bounds them all.
	Timeout driver.Duration `json:"timeout,omitempty"`
	Retries *int            `json:"retries,omitempty"`
	// MaxRepetitions of the GETBULK requests of a walk; default 10.
	MaxRepetitions int `json:"max_repetitions,omitempty"`
	// Prefix starts every measurement name, followed by a dot.
	Prefix string `json:"prefix,omitempty"`
	// ResourceID of the measurements whose object does not set one;
	// default the target's host.
	ResourceID string `json:"resource_id,omitempty"`
	// Objects to read. At least one.
	Objects []Object `json:"objects"`
}

// Object is one OID to read, or with Walk, one table column.
type Object struct {
	// OID in numeric dotted form, like "1.3.6.1.2.1.1.3.0". Required.
	OID string `json:"oid"`
	// Name of the measurement (after the prefix). Required.
	Name string `json:"name"`
	// Unit of the value after Scale.
	Unit string `json:"unit,omitempty"`
	// Kind is "gauge" or "counter" ("cumulative" is a synonym); by
	// default it follows the SNMP type: Counter32 and Counter64 are
	// counters, everything else gauges.
	Kind string `json:"kind,omitempty"`
	// Scale multiplies the value (and a delta or rate); 0 means 1.
	Scale float64 `json:"scale,omitempty"`
	// Mode of a counter: "" (its value, cumulative), "delta" (its
	// increase since the previous collection) or "rate" (that increase
	// per second, a gauge in Unit/s).
	Mode string `json:"mode,omitempty"`
	// ResourceID of this object's measurements (default Config.ResourceID);
	// for a walk, the prefix of each row's resource id, "prefix/row".
	ResourceID string `json:"resource_id,omitempty"`
	// Walk reads every row of the table column OID, one measurement per
	// index.
	Walk bool `json:"walk,omitempty"`
	// NameOID is the column, in the same table, whose value at each index
	// names the row (ifDescr for the interfaces table); without it the
	// index names the row.
	NameOID string `json:"name_oid,omitempty"`
}

// Driver polls one SNMP agent. It opens a socket per collection.
type Driver struct {
	cfg  Config
	host string
	port uint16
	// What a collection's client is made of.
	version  gosnmp.SnmpVersion
	retries  int
	msgFlags gosnmp.SnmpV3MsgFlags
	auth     gosnmp.SnmpV3AuthProtocol
	priv     gosnmp.SnmpV3PrivProtocol
	deltas   bool // some object needs the previous reading
	prev     map[string]sample
}

// New is the snmp driver's factory.
func New(cfg driver.Config) (driver.Driver, error) {
	c := Config{Version: "2c", Timeout: driver.Duration(DefaultTimeout), MaxRepetitions: DefaultMaxRepetitions}
	if err := cfg.Decode(&c); err != nil {
		return nil, fmt.Errorf("snmp: %w", err)
	}
	if err := readSecrets(&c); err != nil {
		return nil, fmt.Errorf("snmp: config: %w", err)
	}
	if c.Community == "" {
		c.Community = DefaultCommunity
	}
	d := &Driver{cfg: c, prev: map[string]sample{}}
	if err := d.configure(); err != nil {
		return nil, fmt.Errorf("snmp: config: %w", err)
	}
	return d, nil
}

// readSecrets sets the community and passwords from the files named.
func readSecrets(c *Config) error {
	for _, s := range []struct {
		key  string
		file string
		v    *string
	}{{"community", c.CommunityFile, &c.Community}, {"auth_password", c.AuthPasswordFile, &c.AuthPassword},
		{"priv_password", c.PrivPasswordFile, &c.PrivPassword}} {
		if s.file == "" {
			continue
		}
		if *s.v != "" {
			return fmt.Errorf("%s and %s_file both given: keep one", s.key, s.key)
		}
		v, err := service.ReadSecret(s.file)
		if err != nil {
			return fmt.Errorf("%s_file: %w", s.key, err)
		}
		*s.v = v
	}
	return nil
}

func (d *Driver) configure() error {
	c := &d.cfg
	if c.Target == "" {
		return errors.New("target is empty")
	}
	host, port := c.Target, DefaultPort
	if h, p, err := net.SplitHostPort(c.Target); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("target %q: bad port %q", c.Target, p)
		}
		host, port = h, int(n)
	}
	if host == "" {
		return fmt.Errorf("target %q has no host", c.Target)
	}
	d.host, d.port = host, uint16(port)
	if c.Timeout <= 0 {
		return fmt.Errorf("timeout %v must be positive", time.Duration(c.Timeout))
	}
	retries := DefaultRetries
	if c.Retries != nil {
		if *c.Retries < 0 {
			return fmt.Errorf("retries %d is negative", *c.Retries)
		}
		retries = *c.Retries
	}
	if c.MaxRepetitions <= 0 || c.MaxRepetitions > 1000 {
		return fmt.Errorf("max_repetitions %d: want 1 to 1000", c.MaxRepetitions)
	}
	if c.ResourceID == "" {
		c.ResourceID = host
	}
	d.retries = retries
	if err := d.configureVersion(); err != nil {
		return err
	}
	if len(c.Objects) == 0 {
		return errors.New("objects is empty: configure at least one OID to read")
	}
	seen := map[string]int{}
	for i := range c.Objects {
		o := &c.Objects[i]
		if err := checkObject(o); err != nil {
			return fmt.Errorf("objects[%d] (%s): %w", i, o.Name, err)
		}
		key := o.Name + "\x00" + o.ResourceID
		if j, dup := seen[key]; dup && !o.Walk {
			return fmt.Errorf("objects[%d] and objects[%d] are both named %q with the same resource id", j, i, o.Name)
		}
		seen[key] = i
		if o.Mode != "" {
			d.deltas = true
		}
	}
	return nil
}

func (d *Driver) configureVersion() error {
	c := &d.cfg
	switch c.Version {
	case "1":
		d.version = gosnmp.Version1
	case "2c":
		d.version = gosnmp.Version2c
	case "3":
		d.version = gosnmp.Version3
		if c.User == "" {
			return errors.New("version 3 needs a user")
		}
		auth, ok := map[string]gosnmp.SnmpV3AuthProtocol{
			"": gosnmp.SHA, "MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
			"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
		}[strings.ToUpper(c.AuthProtocol)]
		if !ok {
			return fmt.Errorf("auth_protocol %q: want MD5, SHA, SHA224, SHA256, SHA384 or SHA512", c.AuthProtocol)
		}
		priv, ok := map[string]gosnmp.SnmpV3PrivProtocol{
			"": gosnmp.AES, "DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
			"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
		}[strings.ToUpper(c.PrivProtocol)]
		if !ok {
			return fmt.Errorf("priv_protocol %q: want DES, AES, AES192, AES256, AES192C or AES256C", c.PrivProtocol)
		}
		switch {
		case c.PrivPassword != "" && c.AuthPassword == "":
			return errors.New("priv_password needs auth_password too (there is no privacy without authentication)")
		case c.PrivPassword != "":
			d.msgFlags, d.auth, d.priv = gosnmp.AuthPriv, auth, priv
		case c.AuthPassword != "":
			d.msgFlags, d.auth, d.priv = gosnmp.AuthNoPriv, auth, gosnmp.NoPriv
		default:
			d.msgFlags, d.auth, d.priv = gosnmp.NoAuthNoPriv, gosnmp.NoAuth, gosnmp.NoPriv
		}
		if (c.AuthPassword != "" && len(c.AuthPassword) < 8) || (c.PrivPassword != "" && len(c.PrivPassword) < 8) {
			return errors.New("auth_password and priv_password need at least 8 characters (RFC 3414)")
		}
	default:
		return fmt.Errorf("version %q: want \"1\", \"2c\" or \"3\"", c.Version)
	}
	if c.Version != "3" && (c.User != "" || c.AuthPassword != "" || c.PrivPassword != "") {
		return fmt.Errorf("user, auth_password and priv_password are for version 3, not %q", c.Version)
	}
	return nil
}

// normOID checks a numeric OID and returns it with a leading dot, the way
// gosnmp writes the names in responses.
func normOID(s string) (string, error) {
	t := strings.TrimPrefix(s, ".")
	if t == "" {
		return "", errors.New("empty")
	}
	parts := strings.Split(t, ".")
	if len(parts) < 2 {
		return "", fmt.Errorf("%q has fewer than two arcs", s)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return "", fmt.Errorf("%q is not a numeric OID (MIB names are not supported)", s)
		}
	}
	return "." + t, nil
}

func checkObject(o *Object) error {
	var err error
	if o.Name == "" {
		return errors.New("name is empty")
	}
	if o.OID, err = normOID(o.OID); err != nil {
		return fmt.Errorf("oid: %w", err)
	}
	if o.NameOID != "" {
		if !o.Walk {
			return errors.New("name_oid is only for walk")
		}
		if o.NameOID, err = normOID(o.NameOID); err != nil {
			return fmt.Errorf("name_oid: %w", err)
		}
	}
	switch o.Kind {
	case "", "gauge", "counter":
	case "cumulative":
		o.Kind = "counter"
	default:
		return fmt.Errorf("kind %q: want gauge or counter", o.Kind)
	}
	switch o.Mode {
	case "":
	case "delta", "rate":
		if o.Kind == "gauge" {
			return fmt.Errorf("mode %q is for counters, and kind is gauge", o.Mode)
		}
	default:
		return fmt.Errorf("mode %q: want delta, rate or none", o.Mode)
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if math.IsNaN(o.Scale) || math.IsInf(o.Scale, 0) {
		return fmt.Errorf("scale %v is not finite", o.Scale)
	}
	if len(o.Unit) > meter.MaxUnitLen-2 {
		return fmt.Errorf("unit is %d bytes, over the limit of %d", len(o.Unit), meter.MaxUnitLen-2)
	}
	return nil
}

// Collect reads every object once, over a socket opened for the purpose.
// What could be read is returned with an error naming what could not.
func (d *Driver) Collect(ctx context.Context) ([]meter.Measurement, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("snmp: %s: %w", d.cfg.Target, err)
	}
	g := d.client(ctx)
	if err := g.Connect(); err != nil {
		return nil, fmt.Errorf("snmp: connect to %s: %w", d.cfg.Target, err)
	}
	defer g.Close()
	// gosnmp checks ctx only between retries: wake a blocked read when
	// ctx ends.
	conn := g.Conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	c := collection{d: d, now: time.Now()}
	c.get(g)
	for i := range d.cfg.Objects {
		if o := &d.cfg.Objects[i]; o.Walk {
			if err := ctx.Err(); err != nil {
				c.fail("walk %s and the columns after it: %w", o.OID, err)
				break
			}
			c.walk(g, o)
		}
	}
	return c.ms, errors.Join(c.errs...)
}

// client makes the client of one collection: gosnmp keeps per-connection
// state (request ids, the v3 engine) in it.
func (d *Driver) client(ctx context.Context) *gosnmp.GoSNMP {
	g := &gosnmp.GoSNMP{
		Target:         d.host,
		Port:           d.port,
		Transport:      "udp",
		Community:      d.cfg.Community,
		Version:        d.version,
		Context:        ctx,
		Timeout:        time.Duration(d.cfg.Timeout),
		Retries:        d.retries,
		MaxRepetitions: uint32(d.cfg.MaxRepetitions),
		MaxOids:        gosnmp.MaxOids,
	}
	if d.version == gosnmp.Version3 {
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = d.msgFlags
		g.ContextName = d.cfg.ContextName
		usm := &gosnmp.UsmSecurityParameters{
			UserName:               d.cfg.User,
			AuthenticationProtocol: d.auth,
			PrivacyProtocol:        d.priv,
		}
		if d.auth != gosnmp.NoAuth {
			usm.AuthenticationPassphrase = d.cfg.AuthPassword
		}
		if d.priv != gosnmp.NoPriv {
			usm.PrivacyPassphrase = d.cfg.PrivPassword
		}
		g.SecurityParameters = usm
	}
	return g
}

// collection is the state of one Collect call.
type collection struct {
	d      *Driver
	now    time.Time
	uptime uint32
	ms     []meter.Measurement
	errs   []error
}

func (c *collection) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("snmp: %s: %w", c.d.cfg.Target, fmt.Errorf(format, args...)))
}

// get reads the scalar objects, at most MaxOids per request.
func (c *collection) get(g *gosnmp.GoSNMP) {
	var (
		oids []string
		objs []*Object
	)
	if c.d.deltas {
		oids = append(oids, sysUpTime)
		objs = append(objs, nil)
	}
	for i := range c.d.cfg.Objects {
		if o := &c.d.cfg.Objects[i]; !o.Walk {
			oids = append(oids, o.OID)
			objs = append(objs, o)
		}
	}
	type result struct {
		obj *Object
		pdu gosnmp.SnmpPDU
	}
	var results []result
	for start := 0; start < len(oids); start += g.MaxOids {
		end := min(start+g.MaxOids, len(oids))
		resp, err := g.Get(oids[start:end])
		if err != nil {
			c.fail("get %s: %w", strings.Join(oids[start:end], " "), err)
			continue
		}
		if resp.Error != gosnmp.NoError {
			c.fail("get %s: agent answered %v (error index %d)", strings.Join(oids[start:end], " "), resp.Error, resp.ErrorIndex)
			continue
		}
		for i, pdu := range resp.Variables {
			if start+i >= end {
				break
			}
			results = append(results, result{objs[start+i], pdu})
		}
	}
	// sysUpTime first: add needs it for the counters.
	for _, r := range results {
		if v, ok := r.pdu.Value.(uint32); ok && r.obj == nil && r.pdu.Type == gosnmp.TimeTicks {
			c.uptime = v
		}
	}
	for _, r := range results {
		if r.obj != nil {
			c.add(r.obj, r.pdu, r.obj.resourceID(c.d.cfg.ResourceID), nil)
		}
	}
}

func (o *Object) resourceID(def string) string {
	if o.ResourceID != "" {
		return o.ResourceID
	}
	return def
}

// walk reads one table column, and the column naming its rows.
func (c *collection) walk(g *gosnmp.GoSNMP, o *Object) {
	walkAll := g.BulkWalkAll
	if g.Version == gosnmp.Version1 {
		walkAll = g.WalkAll
	}
	rows, err := walkAll(o.OID)
	if err != nil {
		c.fail("walk %s: %w", o.OID, err)
		if len(rows) == 0 {
			return
		}
	}
	if len(rows) == 0 {
		c.fail("walk %s: no rows (is it a table column the agent has?)", o.OID)
		return
	}
	var names map[string]string
	if o.NameOID != "" {
		nameRows, err := walkAll(o.NameOID)
		if err != nil {
			c.fail("walk %s (name_oid): %v; rows are named by index", o.NameOID, err)
		}
		names = map[string]string{}
		for _, p := range nameRows {
			idx, ok := strings.CutPrefix(p.Name, o.NameOID+".")
			if !ok {
				continue
			}
			if s, ok := pduString(p); ok && s != "" {
				names[idx] = s
			}
		}
	}
	base := o.resourceID(c.d.cfg.ResourceID)
	for _, p := range rows {
		idx, ok := strings.CutPrefix(p.Name, o.OID+".")
		if !ok {
			continue
		}
		row := idx
		if n, ok := names[idx]; ok {
			row = n
		}
		res := row
		if base != "" {
			res = base + "/" + row
		}
		c.add(o, p, res, []meter.Label{{Key: "index", Value: idx}})
	}
}

// pduString returns a string-valued PDU's text.
func pduString(p gosnmp.SnmpPDU) (string, bool) {
	if p.Type != gosnmp.OctetString {
		return "", false
	}
	b, ok := p.Value.([]byte)
	if !ok {
		return "", false
	}
	return strings.ToValidUTF8(string(b), "?"), true
}

// value turns a PDU into a number. counterBits is 32 or 64 for SNMP
// counters, 0 otherwise; raw is the counter's value for delta arithmetic.
func value(p gosnmp.SnmpPDU) (v float64, raw uint64, counterBits int, err error) {
	switch p.Type {
	case gosnmp.Counter32, gosnmp.Counter64:
		bits := 32
		if p.Type == gosnmp.Counter64 {
			bits = 64
		}
		b := gosnmp.ToBigInt(p.Value)
		if !b.IsUint64() {
			return 0, 0, 0, fmt.Errorf("%v value %v out of range", p.Type, p.Value)
		}
		u := b.Uint64()
		return float64(u), u, bits, nil
	case gosnmp.Gauge32, gosnmp.Integer, gosnmp.TimeTicks, gosnmp.Uinteger32:
		b := gosnmp.ToBigInt(p.Value)
		f, _ := b.Float64()
		return f, 0, 0, nil
	case gosnmp.OpaqueFloat:
		if f, ok := p.Value.(float32); ok {
			return float64(f), 0, 0, nil
		}
	case gosnmp.OpaqueDouble:
		if f, ok := p.Value.(float64); ok {
			return f, 0, 0, nil
		}
	case gosnmp.OctetString:
		// Some devices (PDUs among them) report numbers as text.
		if s, ok := pduString(p); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
				return f, 0, 0, nil
			}
			return 0, 0, 0, fmt.Errorf("OctetString %q is not a number", truncate(s, 64))
		}
	case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
		return 0, 0, 0, fmt.Errorf("the agent has no such object (%v)", p.Type)
	}
	return 0, 0, 0, fmt.Errorf("type %v is not a number", p.Type)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// add turns one PDU into a measurement of object o.
func (c *collection) add(o *Object, p gosnmp.SnmpPDU, resource string, labels []meter.Label) {
	v, raw, bits, err := value(p)
	if err != nil {
		c.fail("%s (%s%s): %v", p.Name, o.Name, rowNote(labels), err)
		return
	}
	m := meter.Measurement{
		Name:       c.d.name(o.Name),
		Unit:       o.Unit,
		Time:       c.now,
		ResourceID: resource,
		Labels:     labels,
	}
	counter := o.Kind == "counter" || (o.Kind == "" && bits != 0)
	switch {
	case o.Mode != "":
		if bits == 0 {
			c.fail("%s (%s%s): mode %s needs a Counter32 or Counter64, the agent sent %v", p.Name, o.Name, rowNote(labels), o.Mode, p.Type)
			return
		}
		cur := sample{raw: raw, bits: bits, at: c.now, uptime: c.uptime}
		key := m.Name + "\x00" + resource
		prev, ok := c.d.prev[key]
		c.d.prev[key] = cur
		if !ok {
			return // the first reading only sets the baseline
		}
		inc, _ := counterIncrease(prev, cur)
		v = float64(inc)
		if o.Mode == "rate" {
			secs := cur.at.Sub(prev.at).Seconds()
			if secs <= 0 {
				return
			}
			v /= secs
			m.Kind, m.Unit = meter.Gauge, o.Unit+"/s"
		} else {
			m.Kind = meter.Delta
		}
	case counter:
		m.Kind = meter.Cumulative
	default:
		m.Kind = meter.Gauge
	}
	m.Value = v * o.Scale
	if err := m.Validate(); err != nil {
		c.fail("%s (%s%s): %v", p.Name, o.Name, rowNote(labels), err)
		return
	}
	c.ms = append(c.ms, m)
}

func rowNote(labels []meter.Label) string {
	if len(labels) == 0 {
		return ""
	}
	return ", row " + labels[0].Value
}

func (d *Driver) name(n string) string {
	if d.cfg.Prefix == "" {
		return n
	}
	return d.cfg.Prefix + "." + n
}
