// Command publisher is the reference meterkit publisher: it receives
// batches from agents over nanomsg and writes them to one or more sinks.
//
//	go run ./examples/publisher -listen tcp://127.0.0.1:7711 -sink console://
//	go run ./examples/publisher -sink 'console:///var/log/meter.jsonl?format=json' -sink riemann://127.0.0.1:5555
//	go run ./examples/publisher -sink 'ceilometer+amqp://guest:guest@127.0.0.1:5672/' -sink 'gnocchi://?cloud=mycloud'
//	go run ./examples/publisher -spool /var/lib/meter/publisher -sink 'riemann://127.0.0.1:5555?receipts=10m'
//
// The last one spools what it acknowledges and leaves receipts in Riemann's
// index, so that a publisher killed mid-write does not write a batch twice.
//
// -stages names a YAML list of stages run on every batch after validation and
// de-duplication, before the spool and the sinks (see go doc ./stage/stagefile):
//
//	go run ./examples/publisher -stages publisher-stages.yaml -sink console://
//
// With -keys, SIGHUP reloads the key file (after meterctl key rotate or revoke).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/sink"
	_ "github.com/meterkit/meter/sink/ceilometer"  // ceilometer+amqp(s)://, ceilometer(+http(s))://
	_ "github.com/meterkit/meter/sink/console"     // console://
	_ "github.com/meterkit/meter/sink/gnocchi"     // gnocchi://, gnocchi+http(s)://
	_ "github.com/meterkit/meter/sink/riemann"     // riemann://, riemann+tls://, riemann+udp://
	_ "github.com/meterkit/meter/stage/arithmetic" // stages by name, for -stages
	_ "github.com/meterkit/meter/stage/levels"
	_ "github.com/meterkit/meter/stage/selectstage"
	"github.com/meterkit/meter/stage/stagefile"
	_ "github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

type sinkFlags []string

func (s *sinkFlags) String() string     { return strings.Join(*s, " ") }
func (s *sinkFlags) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	listen := flag.String("listen", "tcp://127.0.0.1:7711", "address to listen on (tcp://, tls+tcp://, ipc://)")
	workers := flag.Int("workers", publisher.DefaultWorkers, "envelopes worked on at once")
	spool := flag.String("spool", "", "directory of the durable spool: acknowledge agents once a batch is stored, deliver to each sink with retries (default: acknowledge after the sinks accepted)")
	var sinks sinkFlags
	flag.Var(&sinks, "sink", "sink URL, repeatable (default console://); schemes: "+strings.Join(sink.Schemes(), ", "))
	tlsCA := flag.String("tls-ca", "", "CA (PEM) agents' client certificates must chain to, for tls+tcp://")
	tlsCert := flag.String("tls-cert", "", "the publisher's certificate (PEM), for tls+tcp://")
	tlsKey := flag.String("tls-key", "", "private key (PEM) of -tls-cert")
	keys := flag.String("keys", "", "tenant key file (meterctl, mode 0600): accept only envelopes sealed with their tenant's key")
	replayWindow := flag.Duration("replay-window", seal.DefaultWindow, "how far an envelope's sealing time may be from this clock, either way")
	statsEvery := flag.Duration("stats-every", time.Minute, "log the counters this often (0: never)")
	stagesFile := flag.String("stages", "", "YAML file listing the stages run on every batch before the spool and the sinks (see go doc ./stage/stagefile)")
	flag.Parse()
	if len(sinks) == 0 {
		sinks = sinkFlags{"console://"}
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	listenOpts := []nanomsg.ListenOption{nanomsg.WithConcurrency(*workers), nanomsg.WithLogger(logger)}
	if strings.HasPrefix(*listen, "tls+tcp://") {
		cfg, err := nanomsg.ServerTLS(*tlsCert, *tlsKey, *tlsCA)
		if err != nil {
			log.Fatal(err)
		}
		listenOpts = append(listenOpts, nanomsg.WithTLS(cfg))
	}
	nr, err := nanomsg.Listen(*listen, listenOpts...)
	if err != nil {
		log.Fatal(err)
	}
	var r transport.Receiver = nr
	if *keys != "" {
		kr, err := seal.OpenKeyring(*keys)
		if err != nil {
			log.Fatal(err)
		}
		o, err := seal.NewOpener(kr, seal.WithWindow(*replayWindow))
		if err != nil {
			log.Fatal(err)
		}
		r = seal.NewReceiver(nr, o, seal.WithLogger(logger))
		// SIGHUP reloads the key file: rotated and revoked keys take effect without a restart.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				if err := kr.Reload(); err != nil {
					logger.Error("key file not reloaded; the keys in use stay", "file", *keys, "err", err)
					continue
				}
				logger.Info("key file reloaded", "file", *keys)
			}
		}()
	}
	opts := []publisher.Option{publisher.WithLogger(logger), publisher.WithWorkers(*workers),
		publisher.WithStatsInterval(statsInterval(*statsEvery)),
		// Replays within the window reach the de-duplication: it must cover them.
		publisher.WithDedupWindow(0, max(publisher.DefaultDedupAge, 2**replayWindow))}
	if *spool != "" {
		opts = append(opts, publisher.WithSpool(*spool))
	}
	if *stagesFile != "" {
		st, err := stagefile.Load(*stagesFile)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, publisher.WithStage(st))
	}
	names := make([]string, 0, len(sinks))
	for _, u := range sinks {
		s, err := sink.Open(ctx, u)
		if err != nil {
			log.Fatal(err)
		}
		// The sink's name appears in logs, errors and the spool: never with its password.
		name := u
		if pu, err := url.Parse(u); err == nil {
			name = pu.Redacted()
		}
		names = append(names, name)
		opts = append(opts, publisher.WithSink(name, s))
	}
	p, err := publisher.New(r, opts...)
	if err != nil {
		log.Fatal(err)
	}
	logger.Info("publishing", "listen", *listen, "sinks", strings.Join(names, " "))
	if err := p.Run(ctx); err != nil {
		log.Print(err)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		log.Print(err)
	}
	if st, ok := transport.As[interface{ Stats() nanomsg.ReceiverStats }](r); ok {
		logger.Info("transport", "frames", st.Stats())
	}
	if sr, ok := r.(*seal.Receiver); ok {
		logger.Info("sealing", "envelopes", sr.Stats())
	}
	logger.Info("stopped", "stats", fmt.Sprintf("%+v", p.Stats()))
}

// statsInterval keeps the flag's meaning: -stats-every 0 is never.
func statsInterval(d time.Duration) time.Duration {
	if d == 0 {
		return publisher.NoStats
	}
	return d
}
