package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/meterkit/meter/agent/agentconfig"
	"github.com/meterkit/meter/driver"
)

// testHoldEnv names the test hook that stages a crash of the agent at a
// chosen point of a push source's deliveries, for the SIGKILL tests of
// examples/e2e (no timing involved): METERKIT_AGENT_TEST_HOLD=POINT:N lets
// the first N deliveries of every push source through, then holds each
// later one at POINT and logs "test hold" with its key:
//
//	deliver  received from the source, never handed to the agent (not
//	         stored, not acknowledged upstream)
//	ack      stored durably by the agent, but the ack never reaches the
//	         source (not acknowledged upstream)
//
// so that a SIGKILL afterwards hits every held delivery at that point. It
// is meant for tests only: a held delivery is never acknowledged.
const testHoldEnv = "METERKIT_AGENT_TEST_HOLD"

// holdForTests wraps every push source of parts as testHoldEnv says; it
// does nothing when the variable is unset.
func holdForTests(parts *agentconfig.Parts, log *slog.Logger) error {
	v := os.Getenv(testHoldEnv)
	if v == "" {
		return nil
	}
	point, n, ok := strings.Cut(v, ":")
	after, err := strconv.Atoi(n)
	if !ok || err != nil || after < 0 || (point != "deliver" && point != "ack") {
		return fmt.Errorf("%s=%q: want deliver:N or ack:N", testHoldEnv, v)
	}
	for i := range parts.Drivers {
		if p, ok := parts.Drivers[i].Driver.(driver.Pusher); ok {
			parts.Drivers[i].Driver = &held{Driver: parts.Drivers[i].Driver, p: p, point: point, after: int64(after),
				log: log.With("driver", parts.Drivers[i].Name)}
		}
	}
	log.Warn("test hook set: push deliveries are held", "env", testHoldEnv, "point", point, "after", after)
	return nil
}

// held is a push source whose deliveries after the first few are held.
type held struct {
	driver.Driver
	p     driver.Pusher
	point string
	after int64
	n     atomic.Int64
	log   *slog.Logger
}

func (h *held) Push(ctx context.Context, deliver driver.Deliver) error {
	return h.p.Push(ctx, func(d driver.Delivery) {
		if h.n.Add(1) <= h.after {
			deliver(d)
			return
		}
		if h.point == "deliver" {
			h.log.Warn("test hold: delivery held before the agent has it", "key", d.Key, "measurements", len(d.Measurements))
			return
		}
		key, n := d.Key, len(d.Measurements)
		d.Ack = func(err error) {
			h.log.Warn("test hold: ack held after the agent stored the delivery", "key", key, "measurements", n, "err", err)
		}
		deliver(d)
	})
}

func (h *held) RequiresSpool() bool {
	r, ok := h.Driver.(driver.SpoolRequirer)
	return ok && r.RequiresSpool()
}

func (h *held) Close() error {
	if c, ok := h.Driver.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
