// Package publisherhttp serves a publisher's self-metrics and health over
// HTTP, for an operator running the publisher as a service:
//
//   - /metrics, in Prometheus' text format (github.com/prometheus/client_golang,
//     a registry of its own, not the global one): every counter of
//     publisher.Stats as meterkit_publisher_KEY_total and its levels
//     (pending) as gauges meterkit_publisher_KEY, KEY being the key of the
//     "publisher stats" log line; per sink (publisher.SinkStats, label
//     sink="NAME") meterkit_sink_written_total, _rejected_total,
//     _errors_total, meterkit_sink_pending, _pending_batches,
//     meterkit_sink_last_success_timestamp_seconds, meterkit_sink_failing
//     and meterkit_sink_detached (1 for the spool lane of a sink no longer
//     configured, kept: its pending figures say what waits for it);
//     per stage (publisher.Stats.Stages, label stage="NAME")
//     meterkit_stage_in_total, _out_total, _filtered_total,
//     _dropped_total, _missing_total, _resets_total, _late_total and the
//     gauge meterkit_stage_series;
//     the stats given with WithStats (the transport's, as
//     meterkit_transport_…); and the Go runtime's and the process's
//     metrics. The figures are read at each scrape.
//   - /healthz: 200 while the process serves.
//   - /readyz: 200 when the publisher receives (Run runs) and every sink's
//     last write succeeded, or, with a spool, its lane is empty; 503 with
//     the reason otherwise.
//
// Notify tells systemd (Type=notify) that the service is ready.
//
// The package imports no sink or transport backend.
package publisherhttp
