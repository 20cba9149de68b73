// Package web is a sink that keeps the recent history of every series in
// memory and serves it as a live view: a page of charts, a JSON API, an Atom
// feed of state changes and a stream of Server-Sent Events.
//
// Open it with a URL, or with New:
//
//	s, err := sink.Open(ctx, "web://127.0.0.1:7070")
//
// Opening does no I/O, so a configuration check can validate the URL. The
// server starts with Start (the Sink is a sink.Starter: a publisher's Run
// starts it before it receives, and fails when the port is taken), or else
// on the first Write, and Close stops it, event streams included.
//
// # Memory
//
// The history is bounded in bytes (WithMaxBytes, max_bytes=; default
// DefaultMaxBytes, 32 MiB), series and points counted together: a point
// costs 24 bytes, a series its strings and about 300 bytes more, and the
// newest 500 state changes, kept for the feed, count too. Beyond the
// bound, the oldest points go first, a chunk of 1024 at a time; when points
// alone cannot make room (many series with few points), the series written
// least recently go, with what points they still have. Stats counts both.
//
// A series is a name, kind, unit, host, resource, project, user and the
// labels in any order ({a=1,b=2} and {b=2,a=1} are one series; it shows
// them in the order first written), except labels whose key starts with
// meter.ReservedPrefix (meterkit.state, written by the levels stage): those
// do not split a series, and the series shows the ones it was last written
// with.
//
// # HTTP
//
//   - GET / : the page (hosts, then one dashboard per host).
//   - GET /api/hosts : {"hosts":[{"host", "series", "last"}]}, every host
//     with its number of series and the time of its newest point.
//   - GET /api/series?host=&prefix=&limit= : {"series":[{"id", "name",
//     "host", "resource_id", "labels", "unit", "kind", "points", "last":
//     {"time", "value"}}], "position"}, sorted by host, name and resource;
//     limit defaults to 1000. prefix matches the start of the name.
//   - GET /api/series/{id}?from=&to= : {"series": {...}, "points": [{"time",
//     "value"}]}, times in RFC 3339, both bounds included and optional.
//   - GET /feed.atom : an Atom feed of the newest 500 meterkit.state.change
//     measurements (meter.StateChange), newest first, each entry's id a tag
//     URI made of the change itself, so the same change keeps its id.
//   - GET /events?host=&from= : Server-Sent Events, of one host's series
//     with host=, of all otherwise. A "series" event (a series
//     as /api/series shows it) comes before the first point of each series
//     on the stream; a "points" event holds [[series id, Unix ms, value],
//     ...] and its id is its place in the store's log, so a browser that
//     reconnects (sending Last-Event-ID) resumes after it; without
//     Last-Event-ID the stream starts at from= (the "position" of
//     /api/series) or with the next point. A "reset" event ({"missed": N})
//     says the stream fell so far behind that N points it had not sent were
//     evicted: it goes on from the oldest point held (Stats.StreamsDropped).
//
// A stream copies a bounded number of points under the store's lock and
// writes them without it, so a slow or stalled browser never holds up
// Write; a browser that has not read for 15 seconds is disconnected, and
// its EventSource reconnects and resumes.
//
// The view is read-only. Every name, label and unit is user data: the page
// sets it as text, never as HTML, JSON escapes <, > and &, the feed is
// written by encoding/xml, and the Content-Security-Policy allows scripts
// from the server itself only.
//
// # Who sees what
//
// The view shows everything that passed through this sink, for every tenant
// alike: a token or a user grants the whole view, and a tenant that must see
// only its own needs a publisher of its own. A publisher's view holds what
// its own agents sent: with one publisher, the whole fleet; with several,
// each view holds the share of the agents that sent to it (after a failover,
// a host's history is split between two). For one picture of a fleet served
// by several publishers, write to a store they share (riemann, gnocchi);
// docs/operating.md says more.
//
// The server listens on loopback unless told otherwise. An address that is
// not loopback needs credentials, or an explicit insecure=1:
//
//   - a token (token_file=, WithTokenFile), sent as "Authorization: Bearer
//     TOKEN", or as the password of basic auth so that a browser can ask
//     for it;
//   - users (users_file=, WithUsersFile), for basic auth: a line
//     "user:bcrypt-hash" each, as `htpasswd -B -c FILE USER` writes them.
//
// Both files must be regular files that only their owner may read or write
// (chmod 600), as key files. They are read by Start, which fails on a
// missing or invalid one, and again whenever they change, so that a token
// or password rotated in the file takes effect without a restart (an event
// stream opened with the old one ends at its next event or ping, a second
// or more later); a file that becomes unreadable or invalid refuses every
// request until it is fixed. Secrets are compared in constant time, and a password that bcrypt
// verified is remembered (as a keyed digest, until the file changes) so
// that the page's many requests do not each pay bcrypt's cost. A token in
// the URL itself is refused: URLs are logged.
package web
