//go:build integration

package nanomsg_test

// Interoperability with libnanomsg's command-line tool nanocat (Debian
// package nanomsg-utils): run with
//
//	go test -tags integration -run Nanocat ./transport/nanomsg

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meterkit/meter"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/transporttest"
)

func nanocat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nanocat")
	if err != nil {
		t.Skip("nanocat not found (apt-get install -y nanomsg-utils):", err)
	}
	return p
}

// interopAddrs are the addresses of both tests: tcp and ipc.
func interopAddrs(t *testing.T) map[string]string {
	return map[string]string{
		"tcp": freeAddr(t),
		"ipc": "ipc://" + filepath.Join(t.TempDir(), "nanocat.sock"),
	}
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

// TestNanocatReqToReceiver: nanocat --req sends an envelope encoded by
// AppendEnvelope to our Receiver and prints the ack it gets back; then a
// frame that is not an envelope, which the Receiver rejects.
func TestNanocatReqToReceiver(t *testing.T) {
	bin := nanocat(t)
	for name, addr := range interopAddrs(t) {
		t.Run(name, func(t *testing.T) {
			r, err := nanomsg.Listen(addr, nanomsg.WithLogger(quiet))
			require.NoError(t, err)
			defer r.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			want := transporttest.Envelope(42)
			frame, err := transport.AppendEnvelope(nil, want)
			require.NoError(t, err)
			got := make(chan transport.Envelope, 1)
			go func() {
				d, err := r.Receive(ctx)
				if err != nil {
					close(got)
					return
				}
				env := d.Envelope
				env.Measurements = append([]meter.Measurement(nil), d.Envelope.Measurements...)
				_ = d.Ack(transport.Ack{Status: transport.StatusOK})
				got <- env
			}()

			out, err := exec.CommandContext(ctx, bin, "--req", "--connect", addr,
				"--file", writeFile(t, "envelope.bin", frame), "--raw").Output()
			require.NoError(t, err, "nanocat: %s", exitStderr(err))
			ack, err := transport.DecodeAck(out)
			require.NoError(t, err, "nanocat printed %q", out)
			require.Equal(t, transport.Ack{Seq: 42, Status: transport.StatusOK, Version: transport.MaxVersion}, ack)

			env, ok := <-got
			require.True(t, ok, "the Receiver got nothing")
			require.Equal(t, want.Seq, env.Seq)
			require.Equal(t, want.Tenant, env.Tenant)
			require.Equal(t, want.Agent, env.Agent)
			require.True(t, want.SentAt.Equal(env.SentAt))
			require.Len(t, env.Measurements, len(want.Measurements))
			for i, m := range want.Measurements {
				require.Equal(t, m.Name, env.Measurements[i].Name)
				require.Equal(t, m.Value, env.Measurements[i].Value)
				require.Equal(t, m.Labels, env.Measurements[i].Labels)
			}

			// Garbage is answered, rejected, by the Receiver itself.
			out, err = exec.CommandContext(ctx, bin, "--req", "--connect", addr,
				"--data", "this is not an envelope", "--raw").Output()
			require.NoError(t, err, "nanocat: %s", exitStderr(err))
			ack, err = transport.DecodeAck(out)
			require.NoError(t, err, "nanocat printed %q", out)
			require.Equal(t, transport.StatusRejected, ack.Status)
			require.Contains(t, ack.Message, "malformed")
			require.Equal(t, uint64(1), r.Stats().Malformed)
		})
	}
}

// TestNanocatRepFromSender: our Sender sends to nanocat --rep, which prints
// the request and answers every one with the same pre-encoded ack for
// seq 7: the first Send succeeds, the second sees an ack for another seq.
func TestNanocatRepFromSender(t *testing.T) {
	bin := nanocat(t)
	for name, addr := range interopAddrs(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			ackFile := writeFile(t, "ack.bin", transport.AppendAck(nil, transport.Ack{Seq: 7, Status: transport.StatusOK}))
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, "--rep", "--bind", addr, "--file", ackFile, "--raw")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Start())
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
			}
			defer stop()

			// nanocat may not be bound yet: the Sender redials until it is.
			s, err := nanomsg.Dial([]string{addr}, nanomsg.WithReconnect(20*time.Millisecond, 200*time.Millisecond))
			require.NoError(t, err)
			defer s.Close()
			want := transporttest.Envelope(7)
			require.NoError(t, s.Send(ctx, want), "nanocat stderr: %s", &stderr)

			err = s.Send(ctx, transporttest.Envelope(8))
			require.ErrorIs(t, err, transport.ErrMalformed, "an ack for seq 7 answers seq 8")
			require.Contains(t, err.Error(), "answers seq 7, sent seq 8")

			stop()
			// nanocat printed both requests, raw, one after the other.
			frame, err := transport.AppendEnvelope(nil, want)
			require.NoError(t, err)
			require.GreaterOrEqual(t, stdout.Len(), len(frame), "nanocat printed %d bytes; stderr: %s", stdout.Len(), &stderr)
			var dec transport.Decoder
			var got transport.Envelope
			require.NoError(t, dec.Decode(stdout.Bytes()[:len(frame)], &got))
			require.Equal(t, want.Seq, got.Seq)
			require.Equal(t, want.Agent, got.Agent)
			require.Len(t, got.Measurements, len(want.Measurements))
			require.Equal(t, frame, stdout.Bytes()[:len(frame)], "nanocat received the frame unchanged")
		})
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
