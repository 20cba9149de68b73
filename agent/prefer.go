package agent

import "github.com/meterkit/meter/transport"

// preferredFrame is the frame size s prefers (transport.FramePreferrer,
// asserted on s itself, as the limit is), 0 when it says none.
func preferredFrame(s transport.Sender) int {
	if fp, ok := s.(transport.FramePreferrer); ok {
		return max(fp.PreferredFrameSize(), 0)
	}
	return 0
}

// cutRoom is the room for measurements batches are cut to: the frame
// limit less the envelope's header, or the sender's preferred frame size
// less the header when that is smaller and leaves room. A measurement
// larger than that room but within the limit still goes, alone in its
// batch: the preference cuts batches, it drops nothing.
func cutRoom(limit, prefer, header int) int {
	if prefer > header && prefer < limit {
		return prefer - header
	}
	return limit - header
}
