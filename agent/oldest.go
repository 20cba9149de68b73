package agent

import "time"

// OldestBatch returns when the oldest batch not yet acknowledged by a
// publisher (queued, or being sent) was made, or, for a batch left in the
// spool by an earlier run, when the spool was opened; the zero Time when no
// batch waits. Its age tells a stuck delivery from a busy one: /readyz
// (agent/agenthttp) compares it with three times the batch age plus the
// send timeout.
func (a *Agent) OldestBatch() time.Time { return a.q.oldest() }
