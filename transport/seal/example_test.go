package seal_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/seal"
)

// An agent seals a batch with its tenant's key; the publisher opens it with
// a keyring, and refuses the same batch under another tenant's name.
func Example() {
	acme, _ := seal.NewKey("k1")
	globex, _ := seal.NewKey("k1")
	keyring, _ := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{
		"acme":   {Keys: []seal.Key{acme}},
		"globex": {Keys: []seal.Key{globex}},
	}})

	// Agent side.
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	env := &transport.Envelope{Tenant: "acme", Agent: "web-1", Seq: 1, SentAt: at, Host: "web-1",
		Measurements: []meter.Measurement{{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web-1"}}}
	sealer, _ := seal.NewSealer("acme", acme)
	sealed, _, _ := sealer.SealAt(nil, env, at)
	frame, _ := transport.AppendEnvelope(nil, &sealed)
	fmt.Printf("on the wire: %d measurements, %d sealed bytes\n", len(sealed.Measurements), len(sealed.Sealed))

	// Publisher side.
	opener, _ := seal.NewOpener(keyring, seal.WithClock(func() time.Time { return at.Add(time.Second) }))
	var dec transport.Decoder
	var got transport.Envelope
	_ = dec.Decode(frame, &got)
	if err := opener.Open(&got, &dec); err != nil {
		fmt.Println(err)
	}
	m := got.Measurements[0]
	fmt.Printf("opened: tenant %s, agent %s, seq %d: %s %v%s on %s\n", got.Tenant, got.Agent, got.Seq, m.Name, m.Value, m.Unit, m.Host)

	// The same measurements under globex's name, sealed with acme's key.
	env.Tenant = "globex"
	forged, _ := seal.NewSealer("globex", acme)
	sealed, _, _ = forged.SealAt(nil, env, at)
	frame, _ = transport.AppendEnvelope(nil, &sealed)
	_ = dec.Decode(frame, &got)
	err := opener.Open(&got, &dec)
	fmt.Println(errors.Is(err, seal.ErrWrongKey), err)
	// Output:
	// on the wire: 0 measurements, 51 sealed bytes
	// opened: tenant acme, agent web-1, seq 1: cpu.util 12.5% on web-1
	// true seal: wrong key: seq 1 of tenant "globex", agent "web-1", key id "k1": key check value differs: sealed with another key
}

// Sealing wraps any transport: here the in-memory Pipe; nanomsg.Dial's
// Sender and nanomsg.Listen's Receiver are wrapped the same way.
func ExampleNewReceiver() {
	key, _ := seal.NewKey("k1")
	keyring, _ := seal.NewKeyring(&seal.KeyFile{Tenants: map[string]*seal.TenantKeys{"acme": {Keys: []seal.Key{key}}}})
	sealer, _ := seal.NewSealer("acme", key)

	s, r := transport.Pipe()
	sender := seal.NewSender(s, sealer) // agent side
	opener, _ := seal.NewOpener(keyring)
	receiver := seal.NewReceiver(r, opener) // publisher side
	defer receiver.Close()
	defer sender.Close()

	at := time.Now()
	go func() {
		env := &transport.Envelope{Agent: "web-1", Seq: 1, SentAt: at,
			Measurements: []meter.Measurement{{Name: "cpu.util", Kind: meter.Gauge, Unit: "%", Value: 12.5, Time: at, Host: "web-1"}}}
		_ = sender.Send(context.Background(), env)
	}()
	d, _ := receiver.Receive(context.Background())
	m := d.Envelope.Measurements[0]
	fmt.Printf("tenant %s, seq %d: %s %v%s; sealed bytes left: %d\n", d.Envelope.Tenant, d.Envelope.Seq, m.Name, m.Value, m.Unit, len(d.Envelope.Sealed))
	_ = d.Ack(transport.Ack{Status: transport.StatusOK})
	fmt.Printf("%+v\n", receiver.Stats())
	// Output:
	// tenant acme, seq 1: cpu.util 12.5%; sealed bytes left: 0
	// {Opened:1 Passed:0 Unsealed:0 UnknownTenant:0 WrongKey:0 Tampered:0 OutOfWindow:0 Malformed:0 TooLarge:0 KeyStore:0 AckErrors:0}
}
