package snmp

import "time"

// wrap32 is the modulus of a Counter32.
const wrap32 = 1 << 32

// sample is the previous reading of a counter, kept for delta and rate.
type sample struct {
	raw    uint64
	bits   int // 32 or 64
	at     time.Time
	uptime uint32 // the agent's sysUpTime with the reading; 0 if unknown
}

// counterIncrease returns how much a counter grew from prev to cur, by this
// rule:
//
//   - the agent restarted (its sysUpTime went down) or the counter's width
//     changed: the counter started again from zero, so it grew by cur;
//   - cur >= prev: it grew by cur - prev;
//   - a Counter32 that went down wrapped at 2^32 exactly once (every
//     decrease of a 32-bit counter is less than one wrap): it grew by
//     cur + 2^32 - prev;
//   - a Counter64 that went down was reset (it cannot wrap in practice):
//     it grew by cur.
//
// The second result says which case applied, for tests and errors.
func counterIncrease(prev, cur sample) (uint64, string) {
	switch {
	case prev.uptime != 0 && cur.uptime != 0 && cur.uptime < prev.uptime:
		return cur.raw, "restart"
	case prev.bits != cur.bits:
		return cur.raw, "restart"
	case cur.raw >= prev.raw:
		return cur.raw - prev.raw, "grew"
	case cur.bits == 32:
		return cur.raw + wrap32 - prev.raw, "wrap"
	default:
		return cur.raw, "reset"
	}
}
