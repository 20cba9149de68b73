// Package riemann is a sink.Sink that sends measurements to a Riemann server
// (https://riemann.io) as events, over TCP, TLS or UDP.
//
// Most programs name it by URL and never call this package directly:
//
//	import _ "github.com/meterkit/meter/sink/riemann"
//	s, err := sink.Open(ctx, "riemann://riemann.example:5555?ttl=120&tag=meterkit")
//
// Others call New with options:
//
//	s, err := riemann.New("riemann.example:5555", riemann.WithTTL(2*time.Minute), riemann.WithTags("meterkit"))
//
// # Mapping
//
// Each measurement becomes one event:
//
//	Riemann event         from the measurement
//	-------------         --------------------
//	service               Name
//	metric_d              Value (a double, always)
//	host                  Host; else WithDefaultHost / host=; else os.Hostname()
//	time_micros, time     Time, to the microsecond, and in whole seconds
//	ttl                   label riemann.ttl (float seconds "2.5", or a duration "90s");
//	                      else WithTTL / ttl= (default 60 s; WithTTL(NoTTL) or ttl=0
//	                      leaves the field out).
//	                      Sent as a float: fractions of a second survive.
//	state                 label riemann.state; else label meterkit.state (meter.StateLabel,
//	                      set by the levels stage); else WithState / state= (default "ok")
//	description           label riemann.description (left out when absent)
//	tags                  WithTags / tag= (the same on every event)
//	attributes            the other labels (but meterkit.*), in order, then unit, resource_id,
//	                      project_id, user_id (each when not empty) and kind
//	                      ("gauge", "cumulative", "delta")
//
// Labels whose key starts with "riemann." (ControlPrefix) steer the event and
// never become attributes, including ones this version does not know. Nor do
// labels whose key starts with "meterkit." (meter.ReservedPrefix): the state
// is the event's state, and the others are meterkit's own bookkeeping. A
// label named like a field attribute ("unit", "resource_id", ...) is dropped
// when that field is set, so no event carries a key twice.
//
// # Levels
//
// The levels stage (stage/levels, "levels" in a -stages file) checks the
// meters it is given against warning, alert and critical thresholds, above or
// below, with hysteresis, and labels each measurement it checks with its
// series' level: meterkit.state = ok, warning, alert or critical. The sink
// sends that label as the event's state, so Riemann's streams see the levels
// as they see any client's states ((changed-state ...), (where (state
// "critical") ...)); a measurement that also has riemann.state keeps that
// one, and a measurement without either gets the default state. On each
// change of a series' level the stage adds a measurement of its own, which
// becomes the event
//
//	service      "meterkit.state.change" (meter.StateChange)
//	metric_d     the new level: 0 ok, 1 warning, 2 alert, 3 critical
//	host, time   those of the measurement that changed the level
//	attributes   meter (its name), from and to (level names), kind "gauge",
//	             resource_id, project_id, user_id of that measurement
//	state        the sink's default state: the change carries no level label
//
// Riemann's index keeps the latest event per host and service, so it holds
// the last change of each host only; the streams see every one. The stage
// runs in the agent (in the publisher too, with the caveat stage/levels
// gives), upstream of this sink; the measurements stay free of Riemann
// concepts.
//
// # Sending
//
// A Write sends its batch as Msgs of at most 1,000 events (WithBatchSize,
// batch=), one after another on one connection, and waits for the server's
// reply to each before the next. Over UDP there are no replies, and Msgs are
// also cut so that no datagram exceeds MaxDatagram (16 KiB).
//
// New does no I/O. The sink connects on the first Write, and after a
// connection failure it closes the connection and connects again on the next
// Write: a server that is down at start-up, restarts, or drops idle
// connections costs the publisher a retry, never a new Sink. Dialling (TLS
// handshake included) is bounded by WithDialTimeout (5 s), each Msg's write
// and reply by WithTimeout (10 s), and both by the ctx given to Write.
//
// # Failures
//
//	what happened                              Write returns
//	-------------                              -------------
//	server answered ok=false                   *RefusedError with the server's text, in sink.Permanent
//	some measurements refused or unencodable   *sink.PartialError with their indexes
//	  (a Msg refused, a bad riemann.ttl,
//	  an event over 16 KiB for UDP)
//	dial, TLS handshake, write or read failed,  a plain (retryable) error; the connection is
//	  timeout, EOF, ctx ended                    closed and the publisher resends the whole batch
//	Write after Close                          an error wrapping sink.ErrClosed
//
// Errors name the operation and the server: "riemann: send 1000 events to
// 10.0.0.5:5555: read reply: EOF". Resending a batch after a failure may
// deliver some events twice; Riemann keeps the latest event per host and
// service, so a repeat is harmless.
//
// # Receipts
//
// Riemann cannot drop a repeated event, and a publisher that crashed after
// the server took a batch but before it recorded that, or whose write timed
// out while the server was busy, cannot know whether to send the batch
// again. WithReceipts (receipts= in a URL) answers that question. The sink
// then keeps receipts (sink.ReceiptKeeper, next to its sink.NamedWriter):
// every Msg it sends for a named batch ends
// with a receipt event
//
//	service      "meterkit.receipt/" + tenant/agent/seq (sink.BatchID.String)
//	host         the sink's default host (the publisher's)
//	tags         "meterkit.receipt"
//	metric_d     how far the server holds the batch (a position in it)
//	time, ttl    now, and the receipts ttl
//
// Riemann handles a Msg's events in order and answers only after the last,
// so a receipt in the index vouches for every event before it. Stored asks
// the index (a query on the same connection) and returns the furthest
// position among the receipts of the batch, from any publisher; the
// publisher then sends only the rest. This needs a server that indexes the
// receipt events and keeps them for their ttl, as the default riemann.config
// does for every event: (index) in the streams, with periodically-expire.
// Choose a ttl longer than a publisher can stay down (ten minutes, say). A
// server whose streams must not see receipts can route them away with
// (tagged "meterkit.receipt" (index)) before its other streams. Without
// receipts in the index Stored finds none and the batch is sent again: at
// least once, never lost. Receipts add one small event per Msg (about 1% of
// a Msg of 100 events) and no allocation.
//
// # URLs
//
//	riemann://HOST[:PORT]?PARAMS          TCP (port 5555 by default)
//	riemann+tls://HOST[:PORT]?PARAMS      TLS over TCP
//	riemann+udp://HOST[:PORT]?PARAMS      UDP
//
// Parameters, all optional: ttl= (seconds or a duration; 0 leaves it out),
// tag= (repeat it for several tags), host= (default host), state= (default
// state), batch= (events per Msg), timeout= and dial_timeout= (durations
// such as 5s), receipts= (the receipts' ttl, a duration such as 10m; TCP
// and TLS only). For riemann+tls also: ca= (PEM file of the CAs to trust;
// the system's otherwise), cert= and key= (client certificate and key, PEM,
// both or neither) and server_name= (to verify, when it differs from HOST).
// An unknown parameter, a repeated one (except tag) or a bad value is an
// error that names it.
//
// # Why the sink does not use riemann-go-client's Client
//
// The sink encodes events itself, with google.golang.org/protobuf's protowire,
// into buffers it reuses (no allocation per measurement), and frames them on
// its own net.Conn. riemann-go-client's Client would cost control it cannot
// give back: it truncates TTLs to whole seconds, fills an empty host or time
// by mutating the caller's event, hands back an ok=false reply with a nil
// error, never reconnects after a failure, panics on Close after a failed
// Connect, and converts every event through reflection and an attribute
// map, allocating dozens of times per event. The sink uses
// riemann-go-client for what it does well: its generated proto types (Msg,
// Event) decode the server's replies, and the tests check that the encoder's
// bytes are exactly what the protobuf library makes of the same riemannpb.Msg.
// The package riemanntest holds a server for tests.
package riemann
