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
//	go run ./examples/publisher -sink web://127.0.0.1:8080 -sink console://
//
// serves the live view of what passes through this publisher, every tenant
// alike, at http://127.0.0.1:8080/ from the start of the run (go doc
// ./sink/web; docs/operating.md says how to see a whole fleet).
//
// -stages names a YAML list of stages run on every batch after validation and
// de-duplication, before the spool and the sinks (see go doc ./stage/stagefile):
//
//	go run ./examples/publisher -stages publisher-stages.yaml -sink console://
//
// SIGHUP reloads the key file given with -keys (after meterctl key rotate or
// revoke) and the -config file: its sinks and stages (see docs/operating.md).
//
// -config names a YAML file (see publisher.yaml next to this file and go doc
// ./publisher/publisherconfig) with the listen address, TLS, keys, spool,
// sinks (each a URL, or a block whose name: keys its spool lane) and stages;
// a flag given on the command line replaces the file's value (-sink
// replaces the file's sinks). -check reads the file and the files it names,
// builds every sink and stage without opening the spool, checks that the
// directory of a console:///path sink's file exists and is writable,
// prints "FILE: ok" and exits 0, or prints each error and exits 2 (as do
// bad flags); it connects to nothing and creates no file. -print-config
// prints the configuration in effect as YAML with secrets redacted (the
// stages a stage file holds included), -version the
// build; -log-level and -log-format json (log: in the file) choose the
// logs:
//
//	go run ./examples/publisher -config examples/publisher/publisher.yaml -check
//
// -http ADDR (http: in the file) serves /metrics (meterkit_publisher_…,
// meterkit_sink_…{sink="NAME"}, meterkit_transport_… and the Go
// runtime's), /healthz and /readyz (see go doc ./publisher/publisherhttp).
// Run by systemd as a Type=notify unit (meter-publisher.service next to
// this file), the publisher sends READY=1 once it listens. Exit codes: 0
// stopped with everything delivered or kept in the spool, 1 could not
// start (a port or the spool in use), 2 bad flags or config, 3 stopped
// with measurements discarded. See docs/operating.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meterkit/meter/publisher"
	"github.com/meterkit/meter/publisher/publisherconfig"
	"github.com/meterkit/meter/publisher/publisherhttp"
	"github.com/meterkit/meter/sink"
	_ "github.com/meterkit/meter/sink/ceilometer" // ceilometer+amqp(s)://, ceilometer(+http(s))://
	_ "github.com/meterkit/meter/sink/console"    // console://
	_ "github.com/meterkit/meter/sink/gnocchi"    // gnocchi://, gnocchi+http(s)://
	_ "github.com/meterkit/meter/sink/riemann"    // riemann://, riemann+tls://, riemann+udp://
	_ "github.com/meterkit/meter/sink/web"        // web://HOST:PORT, the live view
	_ "github.com/meterkit/meter/stage/aggregate" // stages by name, for -stages
	_ "github.com/meterkit/meter/stage/arithmetic"
	_ "github.com/meterkit/meter/stage/levels"
	_ "github.com/meterkit/meter/stage/selectstage"
	_ "github.com/meterkit/meter/stage/stale"
	_ "github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

type sinkFlags []string

func (s *sinkFlags) String() string     { return strings.Join(*s, " ") }
func (s *sinkFlags) Set(v string) error { *s = append(*s, v); return nil }
func (s *sinkFlags) Get() any           { return []string(*s) }

// Exit codes: 0 stopped with everything delivered or kept in the spool, 1
// could not start (a port or the spool in use), 2 bad flags or config, 3
// stopped with measurements discarded.
const (
	exitOK        = 0
	exitStart     = 1
	exitConfig    = 2
	exitDiscarded = 3
)

func main() { os.Exit(run()) }

func run() int {
	flag.String("listen", "tcp://127.0.0.1:7711", "address to listen on (tcp://, tls+tcp://, ipc://)")
	flag.String("id", "", "the publisher's id: its stages' own batches are sent as agent publisher/<id> (default: the host name)")
	flag.Int("workers", publisher.DefaultWorkers, "envelopes worked on at once")
	flag.String("spool", "", "directory of the durable spool: acknowledge agents once a batch is stored, deliver to each sink with retries (default: acknowledge after the sinks accepted)")
	var sinks sinkFlags
	flag.Var(&sinks, "sink", "sink URL, repeatable, replaces the file's sinks (default console://); schemes: "+strings.Join(sink.Schemes(), ", "))
	flag.String("tls-ca", "", "CA (PEM) agents' client certificates must chain to, for tls+tcp://")
	flag.String("tls-cert", "", "the publisher's certificate (PEM), for tls+tcp://")
	flag.String("tls-key", "", "private key (PEM) of -tls-cert")
	flag.String("keys", "", "tenant key file (meterctl, mode 0600): accept only envelopes sealed with their tenant's key")
	flag.Duration("replay-window", seal.DefaultWindow, "how far an envelope's sealing time may be from this clock, either way")
	flag.Duration("stats-every", time.Minute, "log the counters this often (0: never)")
	flag.String("http", "", "serve /metrics, /healthz and /readyz at host:port, such as 127.0.0.1:9711 (default: none)")
	flag.String("stages", "", "YAML file listing the stages run on every batch before the spool and the sinks (see go doc ./stage/stagefile)")
	configFile := flag.String("config", "", "YAML config file (see examples/publisher/publisher.yaml)")
	check := flag.Bool("check", false, "check the config and the files it names, build every sink and stage, print FILE: ok and exit")
	flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.String("log-format", "text", "log format: text or json (one JSON object a line)")
	printConfig := flag.Bool("print-config", false, "print the config in effect (file and flags) as YAML, secrets redacted, and exit")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse() // exits 2 on a bad flag
	if *version {
		fmt.Println(publisherconfig.Version("meter-publisher"))
		return exitOK
	}
	cfg, err := load(*configFile, flag.CommandLine)
	if err == nil && *printConfig {
		err = cfg.WriteYAML(os.Stdout)
	}
	if err == nil && *check {
		err = checkConfig(context.Background(), cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	if *check || *printConfig {
		return exitOK
	}
	logger := cfg.Logger(os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	parts, err := cfg.Open(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	closeParts := func() { parts.Close(context.Background()) }
	listenOpts := []nanomsg.ListenOption{nanomsg.WithConcurrency(cfg.Workers), nanomsg.WithLogger(logger)}
	if strings.HasPrefix(cfg.Listen, "tls+tcp://") {
		tc, err := nanomsg.ServerTLS(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.CA)
		if err != nil {
			closeParts()
			fmt.Fprintln(os.Stderr, err)
			return exitConfig
		}
		listenOpts = append(listenOpts, nanomsg.WithTLS(tc))
	}
	var kr *seal.Keyring
	if cfg.Keys != "" {
		if kr, err = seal.OpenKeyring(cfg.Keys); err != nil {
			closeParts()
			fmt.Fprintln(os.Stderr, err)
			return exitConfig
		}
	}
	nr, err := nanomsg.Listen(cfg.Listen, listenOpts...)
	if err != nil {
		closeParts()
		logger.Error("could not start", "err", err)
		return exitStart
	}
	var r transport.Receiver = nr
	var sr *seal.Receiver
	if kr != nil {
		o, err := seal.NewOpener(kr, seal.WithWindow(replayWindow(cfg)))
		if err != nil {
			closeParts()
			_ = nr.Close()
			fmt.Fprintln(os.Stderr, err)
			return exitConfig
		}
		sr = seal.NewReceiver(nr, o, seal.WithLogger(logger))
		r = sr
	}
	// Replays within the window reach the de-duplication: it must cover them.
	opts := append(cfg.Options(parts, replayWindow(cfg)), publisher.WithLogger(logger))
	names := make([]string, 0, len(parts.Sinks))
	for _, s := range parts.Sinks {
		names = append(names, s.Name)
	}
	p, err := publisher.New(r, opts...)
	if err != nil {
		closeParts()
		_ = r.Close()
		logger.Error("could not start", "err", err)
		return exitStart
	}
	// SIGHUP reloads the key file and the config file (reload.go).
	rl := &reloader{file: *configFile, fs: flag.CommandLine, log: logger, p: p, kr: kr, cfg: cfg, parts: parts}
	defer onHUP(ctx, rl.reload)()
	httpOpts := []publisherhttp.Option{
		publisherhttp.WithStats("meterkit_transport_", nanomsg.ReceiverStats{}, func() any { return nr.Stats() })}
	if sr != nil {
		httpOpts = append(httpOpts,
			publisherhttp.WithStats("meterkit_transport_seal_", seal.ReceiverStats{}, func() any { return sr.Stats() }))
	}
	srv := publisherhttp.New(p, httpOpts...)
	if cfg.HTTP != "" {
		if err := srv.Listen(cfg.HTTP); err != nil {
			_ = p.Close(context.Background())
			logger.Error("could not start", "err", err)
			return exitStart
		}
		logger.Info("serving /metrics, /healthz and /readyz", "addr", srv.Addr().String())
	}
	httpCtx, stopHTTP := context.WithCancel(context.Background()) // serves until the publisher stopped
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if err := srv.Run(httpCtx); err != nil {
			logger.Error("self-metrics server failed", "err", err)
		}
	}()
	logger.Info("publishing", "listen", cfg.Listen, "sinks", strings.Join(names, " "))
	// READY=1 once Run receives, so that a unit ordered after this one (and
	// /readyz) never sees a publisher that listens but does not yet answer.
	// Ready is never closed when Run returns without receiving (a sink that
	// cannot start): readyStop below ends the wait then.
	readyCtx, readyStop := context.WithCancel(ctx)
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		select {
		case <-readyCtx.Done():
			return
		case <-p.Ready():
		}
		if _, err := publisherhttp.Notify("READY=1"); err != nil {
			logger.Warn("could not tell systemd the publisher is ready", "err", err)
		}
	}()
	// Run starts the sinks that serve (web://, the live view) before it
	// receives: a port in use stops the start.
	runErr := p.Run(ctx)
	if runErr != nil && !errors.Is(runErr, publisher.ErrSinkStart) {
		logger.Error("run", "err", runErr)
	}
	readyStop()
	<-readyDone
	_, _ = publisherhttp.Notify("STOPPING=1")
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		logger.Error("close", "err", err)
	}
	stopHTTP()
	<-httpDone
	if errors.Is(runErr, publisher.ErrSinkStart) {
		logger.Error("could not start", "err", runErr)
		return exitStart
	}
	logger.Info("transport", "frames", nr.Stats())
	if sr != nil {
		logger.Info("sealing", "envelopes", sr.Stats())
	}
	st := p.Stats()
	logger.Info("stopped", "stats", fmt.Sprintf("%+v", st))
	if n := discarded(st); n > 0 {
		logger.Error("stopped with measurements discarded", "measurements", n,
			"spool_dropped", st.SpoolDropped, "sink_dropped", st.SinkDropped, "sink_rejected", st.SinkRejected)
		return exitDiscarded
	}
	return exitOK
}

// discarded is how many measurements the publisher acknowledged or took
// and then lost: dropped from a full spool lane, refused for good by a
// sink after spooling, or rejected by a sink in a partial failure.
// (Envelopes answered "rejected" or "retry" stay the agents' to count.)
func discarded(st publisher.Stats) uint64 {
	return st.SpoolDropped + st.SinkDropped + st.SinkRejected
}

// load reads the config file (none: the defaults) and puts the flags given
// on fs's command line over it.
func load(file string, fs *flag.FlagSet) (*publisherconfig.Config, error) {
	cfg := publisherconfig.Default()
	if file != "" {
		var err error
		if cfg, err = publisherconfig.Load(file); err != nil {
			return nil, err
		}
	}
	return cfg, cfg.Override(fs)
}

// replayWindow is the sealing's window: the file's or flag's, else seal's
// default.
func replayWindow(cfg *publisherconfig.Config) time.Duration {
	if cfg.ReplayWindow == 0 {
		return seal.DefaultWindow
	}
	return cfg.ReplayWindow
}

// checkConfig builds every sink and stage cfg names and reads the TLS and
// key files, without listening and without opening the spool; it prints
// "FILE: ok" to w.
func checkConfig(ctx context.Context, cfg *publisherconfig.Config, w io.Writer) error {
	var errs []error
	parts, err := cfg.Open(ctx)
	if err != nil {
		errs = append(errs, err)
	} else {
		parts.Close(ctx)
	}
	if strings.HasPrefix(cfg.Listen, "tls+tcp://") {
		if _, err := nanomsg.ServerTLS(cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.CA); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Keys != "" {
		if _, err := seal.OpenKeyring(cfg.Keys); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	name := cfg.File
	if name == "" {
		name = "flags"
	}
	fmt.Fprintf(w, "%s: ok\n", name)
	return nil
}
