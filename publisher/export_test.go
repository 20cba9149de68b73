package publisher

import "time"

// SetOrderBounds narrows the bounds of the order kept per source (order.go)
// and gives it a clock, for tests.
func SetOrderBounds(p *Publisher, forgetAfter time.Duration, maxSources int, now func() time.Time) {
	p.stageMu.Lock()
	defer p.stageMu.Unlock()
	p.st.bounds = orderBounds{forgetAfter: forgetAfter, maxSources: maxSources, now: now}
	p.st.pruneAt = 0
}
