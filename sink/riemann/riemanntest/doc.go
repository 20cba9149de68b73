// Package riemanntest is a Riemann server for tests, in process, speaking the
// real protocol, so that a test exercises the bytes a real server would see:
// our sink/riemann, riemann-go-client, or the riemann-c-client command line.
//
// Over TCP (and TLS with WithTLS) every message is a 4-byte big-endian
// length followed by a protobuf Msg (riemann-go-client's proto package); the
// server answers each one with a Msg of its own: ok=true, or ok=false and an
// error text while Reject is in force. With WithUDP it also reads one Msg per
// datagram, and answers none, as Riemann does.
//
// The server records every event it accepts (Events, Count, MsgSizes,
// WaitFor) and answers queries (Msg.query) with the latest event of each
// host and service that matches, as Riemann's index does. The query language
// is a subset of Riemann's: true, false, field = "value" (also !=, <, <=, >,
// >=, =~ with % wildcards, ~= with a regular expression, = nil), tagged "t",
// not, and, or and parentheses; unknown fields name attributes.
//
// Start one with NewServer in a test (closed by t.Cleanup) or Listen
// elsewhere (examples, benchmarks); options add UDP, TLS or a fixed address.
// An event without a time gets the arrival time, as in Riemann
// (Event.ServerTime says so).
//
// WithExpiry makes the index forget events past their time plus ttl, as a
// server with periodically-expire does.
//
// Controls for failure tests: Reject refuses events with an error text
// (RejectNext only the next few Msgs);
// Stall holds messages unanswered until Release or a timeout; DropConnections
// closes the current connections; Stop, Start and Restart take the server
// down and bring it back on the same port, keeping what it recorded; Crash
// records the held messages without answering them and stops, as a store
// that died between taking a write and answering it.
//
//	srv := riemanntest.NewServer(t)            // closed when the test ends
//	s, _ := riemann.New(srv.Addr())
//	_ = s.Write(ctx, batch)
//	require.NoError(t, srv.WaitFor(len(batch), time.Second))
//	ev := srv.Events()[0]                      // ev.Service, ev.Metric, ev.Attributes["unit"], ...
package riemanntest
