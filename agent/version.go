package agent

import (
	"context"
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meterkit/meter/transport"
)

// Envelope versions. The agent writes the newest version the publisher says
// it reads (transport.PeerVersioner, from its acks), up to
// transport.MaxVersion: version 2 carries the levels stage's meterkit.state
// label in two bytes instead of about 22. Each batch is sized and written
// in the version of the moment it was opened. A publisher of an earlier
// release rejects a version 2 envelope (it may be behind the address since
// the batch was written: a downgrade, a failover): the batch is sent again
// as version 1, same Seq, and the acks of that publisher, which name no
// version, bring the next batches back to version 1.
//
// Version 2 is for the wire only: with a spool (WithSpool) the agent writes
// version 1, so that its spool files stay readable by an agent of an
// earlier release.

// wireVersion is the envelope version for a batch opened now.
func (a *Agent) wireVersion() uint32 {
	if a.peer == nil || a.cfg.spoolDir != "" {
		return transport.Version
	}
	return min(max(a.peer.PeerVersion(), transport.Version), transport.MaxVersion)
}

// batchVersion is the envelope version of the batch in sl: env's, or that
// of sl's stored frame when env is nil (the first field AppendEnvelope
// writes).
func batchVersion(sl *slot, env *transport.Envelope) uint32 {
	if env != nil {
		return max(env.Version, transport.Version)
	}
	num, typ, n := protowire.ConsumeTag(sl.frame)
	if n < 0 || num != 1 || typ != protowire.VarintType {
		return transport.Version
	}
	v, m := protowire.ConsumeVarint(sl.frame[n:])
	if m < 0 {
		return transport.Version
	}
	return uint32(min(v, uint64(transport.MaxVersion)+1))
}

// olderRejected tells a publisher's rejection of a batch written in a
// newer envelope version than transport.Version.
func olderRejected(err error, sl *slot, env *transport.Envelope) bool {
	var reply *transport.ReplyError
	return errors.As(err, &reply) && reply.Ack.Status == transport.StatusRejected &&
		!errors.Is(err, transport.ErrRefused) && batchVersion(sl, env) > transport.Version
}

// resendOlder sends again, as transport.Version, a batch of a newer version
// that the publisher rejected (err): what that publisher then answers
// decides. Too large in version 1 (its labels take more room), it is split.
func (a *Agent) resendOlder(ctx context.Context, sl *slot, env *transport.Envelope, seq uint64, count int, err error) outcome {
	if env == nil { // a stored frame
		if env = a.readStored(sl, seq, count, "the publisher rejected", "send it again as envelope version 1", err); env == nil {
			return delivered
		}
	}
	a.c.downgraded.Add(1)
	if a.downgradeLogged.CompareAndSwap(false, true) {
		a.log.Warn("the publisher rejected an envelope of version 2 (a publisher of an earlier release?); "+
			"sending such batches again as version 1", "seq", seq, "err", err)
	}
	older := *env
	older.Version = transport.Version
	return a.sendBatch(ctx, sl, &older, seq, count)
}
