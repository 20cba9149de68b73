// Package console is a sink that writes measurements as text lines or JSON
// lines to stdout, stderr or a file. It is the embedded default of the
// quickstart and the reference publisher.
//
// Text lines read
//
//	2026-11-21T10:00:00Z web1 cpu.util[total] 12.5 % gauge mode=user
//
// (time, host, name[resource], value, unit, kind, then project, user and
// labels as key=value). JSON lines carry every field; empty optional fields
// are left out:
//
//	{"name":"cpu.util","kind":"gauge","unit":"%","value":12.5,"time":"2026-11-21T10:00:00Z","host":"web1","resource_id":"total","labels":{"mode":"user"}}
//
// URLs for sink.Open: "console://" (stdout), "console://stderr",
// "console:///var/log/meter.jsonl", each with "?format=text" or "?format=json".
// A file is opened (created, mode 0640, or appended to) by the first Write,
// not by Open or Create: opening a sink to check a configuration leaves no
// file behind. Writing allocates nothing per measurement.
package console
