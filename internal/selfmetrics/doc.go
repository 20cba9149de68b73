// Package selfmetrics is the machinery behind agent/agenthttp and
// publisher/publisherhttp: a Prometheus collector that reads a Stats struct
// at scrape time and names its metrics from the struct's `log:"key"` tags
// (see internal/statslog), the HTTP handler serving /metrics, /healthz and
// /readyz, and the systemd readiness notification.
//
// A tagged field becomes PREFIX_KEY_total, a counter, or PREFIX_KEY, a
// gauge, when its tag has the gauge option (`log:"pending,gauge"`). The
// names therefore follow the stats line's keys, which keep their names.
package selfmetrics
