package seal

import "github.com/meterkit/meter/transport"

var _ transport.FramePreferrer = (*Sender)(nil)

// PreferredFrameSize implements transport.FramePreferrer: the inner
// Sender's preference less the sealing overhead, or 0 (no preference) when
// the inner Sender reports none.
func (s *Sender) PreferredFrameSize() int {
	fp, ok := s.inner.(transport.FramePreferrer)
	if !ok {
		return 0
	}
	n := fp.PreferredFrameSize()
	if n <= 0 {
		return 0
	}
	return max(n-s.sealer.Load().overhead(), 1)
}
