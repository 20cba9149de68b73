package stage

import "context"

// Origin says where a batch given to Process comes from: the tenant and the
// agent that sent it and the batch's sequence number. The publisher puts it
// in the context of every Process call; a stage that keeps state per
// sending host (stale) reads it with [OriginFrom]. In the agent there is
// no origin: the stages see the agent's own collections.
type Origin struct {
	Tenant string // the tenant of the envelope; "" when the publisher has none
	Agent  string // the id of the agent that sent the batch
	Seq    uint64 // the batch's sequence number
	// Publisher is the id of the publisher staging the batch (its WithID),
	// for a stage that labels what it makes with it (aggregate).
	Publisher string
	// OutOfOrder reports that the batch's sequence is not above the last
	// one staged for its agent: a [Chain] skips its [OrderSensitive] stages
	// for it (the batch passes them unchanged).
	OutOfOrder bool
}

type originKey struct{}

// WithOrigin returns a context carrying o, for a composer to give to
// Process and Tick.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the origin a composer put in ctx, and whether there
// was one.
func OriginFrom(ctx context.Context) (Origin, bool) {
	o, ok := ctx.Value(originKey{}).(Origin)
	return o, ok
}

// OrderSensitive is a stage whose output depends on the order in which
// batches from one agent arrive (levels' hysteresis, stale). A publisher
// gives such a stage the batches of each (tenant, agent) in increasing
// sequence order: a batch with a lower sequence than the last one staged
// (several batches in flight, a resend after a failover) skips the stage,
// counted as out of order. OrderSensitive returns true when the stage needs
// that; a wrapper forwards it through [As].
type OrderSensitive interface {
	OrderSensitive() bool
}

// IsOrderSensitive reports whether s is an [OrderSensitive] stage that
// says so, or a [Chain] holding one, found through wrappers with [As]: a
// composer then tracks the order of each agent's batches and marks those
// out of order in their [Origin].
func IsOrderSensitive(s Stage) bool {
	if o, ok := As[OrderSensitive](s); ok && o.OrderSensitive() {
		return true
	}
	if c, ok := As[interface{ orderSensitive() bool }](s); ok {
		return c.orderSensitive()
	}
	return false
}
