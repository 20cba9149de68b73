// Package driver defines what a driver author implements: the [Driver]
// interface, its [Factory] and [Config], and the registry that makes drivers
// available by name.
//
// Most programs do not use this package directly: they import the drivers
// they want (for example driver/host, for its side effect of registering
// "cpu", "memory" and the rest) and name them in configuration. Authors of new
// drivers start with docs/writing-a-driver.md and check their work with
// driver/drivertest.
//
// A Driver has one method, Collect(ctx). Everything else a collector needs —
// the interval, jitter, the timeout (as ctx's deadline), recovery from panics
// and restarts — is the agent's job. Optional extras are separate interfaces
// found by type assertion: a driver that holds resources implements
// io.Closer, and a source that pushes (a message bus) implements [Pusher]:
// the agent then runs its Push in a goroutine instead of polling Collect,
// and tells it through an ack callback when what it delivered is durable.
//
// Register panics on a malformed or duplicate name or a nil factory: these
// are programming errors. Looking up a name nobody registered fails with
// `driver: unknown driver "x" (forgotten import?)`.
package driver
