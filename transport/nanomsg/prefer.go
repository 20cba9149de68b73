package nanomsg

import "github.com/meterkit/meter/transport"

var _ transport.FramePreferrer = (*Sender)(nil)

// pooledFrame is the largest frame mangos v3 takes from its message pools,
// on the sending side and on the receiving one (a message under 65,536
// bytes, with the protocol's header of a few bytes added on receipt), less
// some room: a larger frame is a fresh buffer on each side, for the
// garbage collector.
const pooledFrame = 64<<10 - 64

// PreferredFrameSize implements transport.FramePreferrer: the largest
// frame mangos sends and receives in pooled buffers (just under 64 KiB),
// or the frame limit when it is smaller (WithMaxFrameSize).
func (s *Sender) PreferredFrameSize() int { return min(pooledFrame, s.cfg.maxFrame) }
