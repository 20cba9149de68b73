package seal_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
)

// A key rotated while the sender runs: SetSealer makes the next Send seal
// with the new key, which the receiver (holding only the new one) opens.
func TestSetSealerRotatesTheKeyInUse(t *testing.T) {
	noLeak(t)
	f := newFixture(t)
	kr, err := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"acme": {Keys: []seal.Key{f.acme2}}}})
	require.NoError(t, err)
	s, r := transport.Pipe()
	snd := seal.NewSender(s, mustSealer(t, "acme", f.acme1))
	defer snd.Close()
	rcv := seal.NewReceiver(r, newOpener(t, kr), seal.WithLogger(quiet))
	got := serveAll(t, rcv)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.ErrorIs(t, snd.Send(ctx, acmeEnvelope(1)), transport.ErrRefused, "the old key is unknown to the receiver")
	require.Equal(t, "k1", snd.KeyID())

	require.ErrorContains(t, snd.SetSealer(mustSealer(t, "globex", f.globex)), `tenant "globex"`)
	require.Error(t, snd.SetSealer(nil))
	require.NoError(t, snd.SetSealer(mustSealer(t, "acme", f.acme2)))
	require.Equal(t, "k2", snd.KeyID())
	require.NoError(t, snd.Send(ctx, acmeEnvelope(2)))
	require.Equal(t, uint64(2), (<-got).Seq)
}
