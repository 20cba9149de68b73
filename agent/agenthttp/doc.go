// Package agenthttp serves an agent's self-metrics and health over HTTP,
// for an operator running the agent as a service:
//
//   - /metrics, in Prometheus' text format (github.com/prometheus/client_golang,
//     a registry of its own, not the global one): every counter of
//     agent.Stats as meterkit_agent_KEY_total and its levels
//     (queued_batches, queued_bytes) as gauges meterkit_agent_KEY, KEY being
//     the key of the "agent stats" log line; meterkit_agent_refused (1 while
//     a publisher refuses the agent); meterkit_agent_oldest_batch_age_seconds
//     (the age of the oldest batch not yet acknowledged); per stage
//     (agent.Stats.Stages, label stage="NAME") meterkit_stage_in_total,
//     _out_total, _filtered_total, _dropped_total, _missing_total,
//     _resets_total, _late_total and the gauge meterkit_stage_series; the stats given with WithStats (the
//     transport's, as meterkit_transport_…); and the Go runtime's and the
//     process's metrics. The figures are read from Stats at each scrape.
//   - /healthz: 200 while the process serves.
//   - /readyz: 200 when no batch waits for a publisher's acknowledgement or
//     the oldest that does (queued or being sent, agent.Agent.OldestBatch)
//     is younger than WithStaleAfter, by default three times the batch age
//     plus the send timeout, and no publisher refuses the agent; 503 with
//     the reason otherwise.
//
// Notify tells systemd (Type=notify) that the service is ready.
//
// The package imports no driver, sink or transport backend.
package agenthttp
