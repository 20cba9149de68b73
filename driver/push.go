package driver

import (
	"context"
	"errors"

	"github.com/meterkit/meter"
)

// Pusher is the optional capability of a driver whose source pushes: a
// message bus, a webhook, a log being followed. Where the agent finds it on a
// driver (by type assertion), it calls Push once in its own goroutine instead
// of calling Collect on a schedule; driver.Driver itself does not grow, and a
// Pusher's Collect may simply return nothing.
//
// Push runs until ctx ends, then returns nil (or ctx's error) soon after:
// within a second, as for Collect. It returns early with an error only when
// the source cannot go on (the agent logs it and calls Push again after a
// backoff). Push is never called concurrently on one driver, and never after
// Close.
//
// Push hands what it receives to deliver; see Deliver for what the agent
// promises in return. A source that must not lose what it received (a queue
// that redelivers what was not acknowledged) acknowledges to its own upstream
// only in the ack callback, which is what makes the whole path at-least-once.
type Pusher interface {
	Push(ctx context.Context, deliver Deliver) error
}

// Deliver hands a Delivery from a Pusher to the agent.
//
// It blocks while the agent has no room (back-pressure: the agent never drops
// a push source's measurements to make room for newer ones), and returns once
// the measurements are in the agent's hands or Push's ctx ends. The
// measurements, and their label slices, belong to the agent from then on: the
// source must not modify them. Deliver must not be called from Ack.
type Deliver func(Delivery)

// Delivery is what a push source hands over at once: typically one message
// of its upstream.
type Delivery struct {
	// Measurements are what the message held. Invalid ones
	// (meter.Measurement.Validate) are dropped and counted by the agent as
	// from any driver, and do not make Ack fail: delivering them again could
	// never help, so a source validates what it cannot trust first.
	Measurements []meter.Measurement

	// Key identifies the message upstream (a message id), or is empty. With
	// a spool, the agent keeps the keys of recent deliveries in the spool,
	// written in the transaction that commits the delivery's last
	// measurements; a delivery whose key is among them was already made
	// durable (before a crash, or before an upstream ack was lost) and is
	// acknowledged at once without being stored again.
	Key string

	// Ack is called exactly once, from any goroutine, possibly before
	// Deliver returns, possibly after Push returned: with nil once the
	// measurements are durable (committed to the agent's spool, or, without
	// a spool, acknowledged by the publisher), or with an error wrapping
	// ErrNotDelivered when they were not made durable (the agent stopped
	// first, or could not store them). A source that can redeliver (a
	// message queue) does so on such an error rather than treating it as
	// done. Ack must return quickly. Nil means the source does not want to
	// know. A delivery with no measurements is acknowledged with nil at once.
	Ack func(error)
}

// ErrNotDelivered is wrapped by the error a Deliver's ack gets when the
// measurements were not made durable: the agent stopped before they were, or
// they could not be stored. The source should leave them to be redelivered.
var ErrNotDelivered = errors.New("driver: measurements not delivered")

// SpoolRequirer is the optional capability of a Pusher whose upstream
// forgets what it acknowledged (a message queue): its deliveries are only
// safe once committed to the agent's disk spool, and a memory queue would
// lose what was acknowledged upstream if the agent dies before the publisher
// has it. The agent refuses, in New, to run a push source that reports true
// without a spool. A driver may report false when its configuration accepts
// that loss.
type SpoolRequirer interface {
	RequiresSpool() bool
}
