// Command agent is the reference meterkit agent: it runs host drivers and
// sends what they measure to one or more publishers over nanomsg.
//
//	go run ./examples/agent -connect tcp://127.0.0.1:7711 -interval 10s -drivers cpu,memory,load
//
// With several -connect addresses (comma-separated) batches go to whichever
// publisher is up. -config names a YAML file (see agent.yaml next to this
// file and go doc ./agent/agentconfig) with the publishers, the spool, the
// batching, a list of driver instances and the stages; a flag given on the
// command line replaces the file's value:
//
//	go run ./examples/agent -config examples/agent/agent.yaml -check
//	go run ./examples/agent -config examples/agent/agent.yaml -connect tcp://10.0.0.5:7711
//
// -check reads the file and the files it names, builds every driver and
// stage, prints "FILE: ok" and exits 0, or prints each error and exits 2 (as
// do bad flags); it connects to nothing and creates no file or spool.
// -print-config prints the configuration in effect (file and flags) as
// YAML with secrets redacted (the stages a stage file holds included),
// -version the build, -list-drivers the drivers this binary has;
// -log-level and -log-format json (log: in the file) choose the logs. The older -config file, a JSON map of per-driver
// settings ({"filesystem": {"exclude_fstypes": ["tmpfs"]}}), still works,
// with a deprecation warning.
//
// SIGHUP re-reads the -key-file (a rotated key) and the -config file, and
// applies its drivers and stages without a restart (see docs/operating.md
// for the keys that reload).
//
// -http ADDR (http: in the file) serves /metrics (meterkit_agent_…,
// meterkit_transport_… and the Go runtime's), /healthz and /readyz (see go
// doc ./agent/agenthttp). Run by systemd as a Type=notify unit
// (meter-agent.service next to this file), the agent sends READY=1 once it
// runs. Exit codes: 0 stopped with everything acknowledged or kept in the
// spool, 1 could not start (a port or the spool in use), 2 bad flags or
// config, 3 stopped with measurements discarded. See docs/operating.md.
//
// Idle cost: the agent runs on one processor unless the GOMAXPROCS
// environment variable is set. Five seconds after it starts, it gives back
// the pages of its executable that only start-up touched (trim_linux.go):
// the init functions of every linked library, flag and config parsing.
// What it runs from then on is mapped again as it runs. Build it with
// CGO_ENABLED=0 (no libc mapped). The Go garbage collector keeps its
// default: an idle agent allocates so little that no collection ran in 30 s
// of host drivers every second. scripts/compare-telegraf measures the
// agent against Telegraf.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/agent/agentconfig"
	"github.com/meterkit/meter/agent/agenthttp"
	"github.com/meterkit/meter/driver"
	_ "github.com/meterkit/meter/driver/exec"         // programs: JSON lines, Nagios plugins
	_ "github.com/meterkit/meter/driver/host"         // cpu, memory, load, ...
	_ "github.com/meterkit/meter/driver/libvirt"      // instances through libvirtd
	_ "github.com/meterkit/meter/driver/notification" // OpenStack notifications from RabbitMQ
	_ "github.com/meterkit/meter/driver/prometheus"   // Prometheus endpoints
	_ "github.com/meterkit/meter/driver/snmp"         // SNMP OIDs
	_ "github.com/meterkit/meter/driver/synthetic"    // numbered test load
	_ "github.com/meterkit/meter/stage/aggregate"     // stages by name, for -stages
	_ "github.com/meterkit/meter/stage/arithmetic"
	_ "github.com/meterkit/meter/stage/delta"
	_ "github.com/meterkit/meter/stage/levels"
	_ "github.com/meterkit/meter/stage/rate"
	_ "github.com/meterkit/meter/stage/selectstage"
	_ "github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

// Exit codes: 0 stopped with everything acknowledged or kept in the spool,
// 1 could not start (a port or the spool in use), 2 bad flags or config,
// 3 stopped with measurements discarded.
const (
	exitOK        = 0
	exitStart     = 1
	exitConfig    = 2
	exitDiscarded = 3
)

// startupOver is when, after Run starts, the pages of the executable that
// only start-up used are given back (releaseStartupPages).
const startupOver = 5 * time.Second

func main() {
	// One processor unless GOMAXPROCS says otherwise: an agent's work is a
	// few small collections and one batch in flight, and a second
	// processor only adds wake-ups (measured: 13% less CPU per cycle and
	// a third fewer context switches with the host drivers every second).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// The init functions of the linked libraries are done: their pages go
	// before the agent's start-up maps its own (a lower high-water mark),
	// and the rest of start-up's go once it is over (startupOver).
	_, _ = releaseStartupPages()
	os.Exit(run())
}

func run() int {
	flag.String("connect", "tcp://127.0.0.1:7711", "publisher addresses, comma-separated")
	flag.Duration("interval", agent.DefaultInterval, "collection interval of every driver that gives none of its own")
	flag.String("drivers", strings.Join(agentconfig.DefaultDrivers, ","), "drivers to run, comma-separated (replaces the file's drivers); known: "+strings.Join(driver.Drivers(), ","))
	configFile := flag.String("config", "", "YAML config file (see examples/agent/agent.yaml); the older JSON map of per-driver settings still works")
	flag.String("tenant", "", "tenant id written into every envelope")
	flag.String("id", "", "agent id (default: host name)")
	flag.String("spool", "", "directory of the durable spool (default: keep batches in memory)")
	flag.Int("batch", agent.DefaultBatchSize, "measurements per batch")
	flag.Duration("batch-age", agent.DefaultBatchAge, "send a partial batch once it is this old")
	flag.Duration("stats-every", time.Minute, "log the counters this often (0: never)")
	flag.String("http", "", "serve /metrics, /healthz and /readyz at host:port, such as 127.0.0.1:9712 (default: none)")
	flag.String("tls-ca", "", "CA (PEM) the publisher's certificate must chain to, for tls+tcp:// (default: system roots)")
	flag.String("tls-cert", "", "client certificate (PEM) for mutual TLS")
	flag.String("tls-key", "", "private key (PEM) of -tls-cert")
	flag.String("tls-server-name", "", "the publisher's name in its certificate (default: the host of -connect)")
	flag.String("stages", "", "YAML file listing the stages run on every collection before batching (see go doc ./stage/stagefile)")
	flag.String("key-file", "", "tenant key file (meterctl key export, mode 0600): seal every envelope with -tenant's key")
	check := flag.Bool("check", false, "check the config and the files it names, build every driver and stage, print FILE: ok and exit")
	listDrivers := flag.Bool("list-drivers", false, "print the drivers this binary has and exit")
	flag.String("log-level", "info", "log level: debug, info, warn or error")
	flag.String("log-format", "text", "log format: text or json (one JSON object a line)")
	printConfig := flag.Bool("print-config", false, "print the config in effect (file and flags) as YAML, secrets redacted, and exit")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse() // exits 2 on a bad flag
	if *version {
		fmt.Println(agentconfig.Version("meter-agent"))
		return exitOK
	}
	if *listDrivers {
		fmt.Println(strings.Join(driver.Drivers(), "\n"))
		return exitOK
	}
	cfg, err := load(*configFile, flag.CommandLine)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	logger := cfg.Logger(os.Stderr)
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	if *printConfig {
		if err := cfg.WriteYAML(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitConfig
		}
		return exitOK
	}
	if *check {
		if err := checkConfig(cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitConfig
		}
		return exitOK
	}
	parts, err := cfg.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	if err := holdForTests(parts, logger); err != nil {
		parts.Close()
		fmt.Fprintln(os.Stderr, err)
		return exitConfig
	}
	s, ns, err := sender(cfg, logger)
	if err != nil {
		parts.Close()
		logger.Error("could not start", "err", err)
		if errors.Is(err, errConfig) {
			return exitConfig
		}
		return exitStart
	}
	opts := append(cfg.Options(parts), agent.WithLogger(logger))
	a, err := agent.New(s, opts...)
	if err != nil {
		parts.Close()
		_ = s.Close()
		logger.Error("could not start", "err", err)
		return exitStart
	}
	defer a.Close(context.Background()) // closes s
	if parts.Self != nil {
		parts.Self.Bind(a.Stats) // self_metrics: meterkit.agent.* measurements
	}
	srv := agenthttp.New(a,
		agenthttp.WithStaleAfter(3*cfg.BatchAge+agent.DefaultSendTimeout),
		agenthttp.WithStats("meterkit_transport_", nanomsg.SenderStats{}, func() any { return ns.Stats() }))
	if cfg.HTTP != "" {
		if err := srv.Listen(cfg.HTTP); err != nil {
			logger.Error("could not start", "err", err)
			return exitStart
		}
		logger.Info("serving /metrics, /healthz and /readyz", "addr", srv.Addr().String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP (systemctl reload) re-reads the config file (reload.go).
	rl := &reloader{file: *configFile, fs: flag.CommandLine, log: logger, a: a, s: s, cfg: cfg, parts: parts}
	defer onHUP(ctx, rl.reload)()
	httpCtx, stopHTTP := context.WithCancel(context.Background()) // serves until the agent stopped
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if err := srv.Run(httpCtx); err != nil {
			logger.Error("self-metrics server failed", "err", err)
		}
	}()
	if _, err := agenthttp.Notify("READY=1"); err != nil {
		logger.Warn("could not tell systemd the agent is ready", "err", err)
	}
	// Once every driver has collected (the first collections come within a
	// second), give back the pages only start-up used (trim_linux.go).
	trim := time.AfterFunc(startupOver, func() {
		if n, err := releaseStartupPages(); err != nil {
			logger.Warn("could not release the pages of start-up", "err", err)
		} else {
			logger.Debug("released the pages of start-up", "bytes", n)
		}
	})
	defer trim.Stop()
	if err := a.Run(ctx); err != nil {
		logger.Error("run", "err", err)
	}
	_, _ = agenthttp.Notify("STOPPING=1")
	if err := a.Close(context.Background()); err != nil {
		logger.Error("close", "err", err)
	}
	stopHTTP()
	<-httpDone
	st := a.Stats()
	logger.Info("stopped", "stats", fmt.Sprintf("%+v", st))
	if n := discarded(st); n > 0 {
		logger.Error("stopped with measurements discarded", "measurements", n,
			"unsent", st.Unsent, "dropped", st.DroppedMeasurements, "rejected", st.RejectedMeasurements,
			"failed", st.FailedMeasurements, "oversized", st.Oversized)
		return exitDiscarded
	}
	return exitOK
}

// discarded is how many measurements the agent took and neither delivered
// nor kept in its spool: unsent at the drain deadline without a spool,
// dropped from a full queue, rejected by the publisher, failed for good,
// or too large for any frame. (Measurements that failed validation never
// entered.)
func discarded(st agent.Stats) uint64 {
	return st.Unsent + st.DroppedMeasurements + st.RejectedMeasurements + st.FailedMeasurements + st.Oversized
}

// load reads the config file (none: the defaults) and puts the flags given
// on fs's command line over it.
func load(file string, fs *flag.FlagSet) (*agentconfig.Config, error) {
	cfg := agentconfig.Default()
	if file != "" {
		var err error
		if cfg, err = agentconfig.Load(file); err != nil {
			return nil, err
		}
	}
	return cfg, cfg.Override(fs)
}

// checkConfig builds every driver and stage cfg names and reads the TLS and
// key files, without network I/O and without opening the spool; it prints
// "FILE: ok" to w.
func checkConfig(cfg *agentconfig.Config, w io.Writer) error {
	var errs []error
	parts, err := cfg.Open()
	if err != nil {
		errs = append(errs, err)
	} else {
		parts.Close()
	}
	if usesTLS(cfg) {
		if _, err := nanomsg.ClientTLS(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ServerName); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.KeyFile != "" {
		if _, err := seal.SealerFor(cfg.KeyFile, cfg.Tenant); err != nil {
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

func usesTLS(cfg *agentconfig.Config) bool {
	for _, a := range cfg.Connect {
		if strings.HasPrefix(a, "tls+tcp://") {
			return true
		}
	}
	return false
}

// errConfig marks the errors of sender that come from the configuration's
// files (TLS, key file): exit 2 rather than 1.
var errConfig = errors.New("bad config")

// sender dials the publishers, sealing with the tenant's key if a key file
// is given. It returns the nanomsg sender too, for its stats.
func sender(cfg *agentconfig.Config, logger *slog.Logger) (transport.Sender, *nanomsg.Sender, error) {
	dialOpts := []nanomsg.DialOption{nanomsg.WithLogger(logger)}
	if usesTLS(cfg) {
		tc, err := nanomsg.ClientTLS(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, cfg.TLS.ServerName)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
		}
		dialOpts = append(dialOpts, nanomsg.WithTLS(tc))
	}
	var sl *seal.Sealer
	if cfg.KeyFile != "" {
		var err error
		if sl, err = seal.SealerFor(cfg.KeyFile, cfg.Tenant); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
		}
	}
	ns, err := nanomsg.Dial(cfg.Connect, dialOpts...)
	if err != nil {
		return nil, nil, err
	}
	if sl == nil {
		return ns, ns, nil
	}
	return seal.NewSender(ns, sl), ns, nil // sealed anew at each send
}
