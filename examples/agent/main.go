// Command agent is the reference meterkit agent: it runs host drivers and
// sends what they measure to one or more publishers over nanomsg.
//
//	go run ./examples/agent -connect tcp://127.0.0.1:7711 -interval 10s -drivers cpu,memory,load
//
// With several -connect addresses (comma-separated) batches go to whichever
// publisher is up. -config names a JSON file of per-driver settings:
//
//	{"filesystem": {"ignore_fstypes": ["tmpfs"]}, "disk": {}}
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meterkit/meter/agent"
	"github.com/meterkit/meter/driver"
	_ "github.com/meterkit/meter/driver/host"      // cpu, memory, load, ...
	_ "github.com/meterkit/meter/driver/libvirt"   // instances through libvirtd
	_ "github.com/meterkit/meter/driver/synthetic" // numbered test load
	_ "github.com/meterkit/meter/stage/arithmetic" // stages by name, for -stages
	_ "github.com/meterkit/meter/stage/levels"
	_ "github.com/meterkit/meter/stage/selectstage"
	"github.com/meterkit/meter/stage/stagefile"
	_ "github.com/meterkit/meter/stage/unit"
	"github.com/meterkit/meter/transport"
	"github.com/meterkit/meter/transport/nanomsg"
	"github.com/meterkit/meter/transport/seal"
)

func main() {
	connect := flag.String("connect", "tcp://127.0.0.1:7711", "publisher addresses, comma-separated")
	interval := flag.Duration("interval", 10*time.Second, "collection interval of every driver")
	drivers := flag.String("drivers", "cpu,memory,swap,load,disk,filesystem,network,uptime,processes", "drivers to run, comma-separated; known: "+strings.Join(driver.Drivers(), ","))
	configFile := flag.String("config", "", "JSON file mapping driver names to their settings")
	tenant := flag.String("tenant", "", "tenant id written into every envelope")
	id := flag.String("id", "", "agent id (default: host name)")
	spool := flag.String("spool", "", "directory of the durable spool (default: keep batches in memory)")
	batch := flag.Int("batch", agent.DefaultBatchSize, "measurements per batch")
	batchAge := flag.Duration("batch-age", agent.DefaultBatchAge, "send a partial batch once it is this old")
	statsEvery := flag.Duration("stats-every", time.Minute, "log the counters this often (0: never)")
	tlsCA := flag.String("tls-ca", "", "CA (PEM) the publisher's certificate must chain to, for tls+tcp:// (default: system roots)")
	tlsCert := flag.String("tls-cert", "", "client certificate (PEM) for mutual TLS")
	tlsKey := flag.String("tls-key", "", "private key (PEM) of -tls-cert")
	tlsName := flag.String("tls-server-name", "", "the publisher's name in its certificate (default: the host of -connect)")
	stagesFile := flag.String("stages", "", "YAML file listing the stages run on every collection before batching (see go doc ./stage/stagefile)")
	keyFile := flag.String("key-file", "", "tenant key file (meterctl key export, mode 0600): seal every envelope with -tenant's key")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	configs := map[string]driver.Config{}
	if *configFile != "" {
		b, err := os.ReadFile(*configFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(b, &configs); err != nil {
			log.Fatalf("%s: %v", *configFile, err)
		}
	}
	dialOpts := []nanomsg.DialOption{nanomsg.WithLogger(logger)}
	if strings.Contains(*connect, "tls+tcp://") {
		cfg, err := nanomsg.ClientTLS(*tlsCA, *tlsCert, *tlsKey, *tlsName)
		if err != nil {
			log.Fatal(err)
		}
		dialOpts = append(dialOpts, nanomsg.WithTLS(cfg))
	}
	ns, err := nanomsg.Dial(strings.Split(*connect, ","), dialOpts...)
	if err != nil {
		log.Fatal(err)
	}
	var s transport.Sender = ns
	if *keyFile != "" {
		sl, err := seal.SealerFor(*keyFile, *tenant)
		if err != nil {
			log.Fatal(err)
		}
		s = seal.NewSender(ns, sl) // sealed anew at each send
	}
	opts := []agent.Option{agent.WithLogger(logger), agent.WithTenant(*tenant), agent.WithID(*id),
		agent.WithBatch(*batch, *batchAge), agent.WithStatsInterval(statsInterval(*statsEvery))}
	if *spool != "" {
		opts = append(opts, agent.WithSpool(*spool))
	}
	if *stagesFile != "" {
		st, err := stagefile.Load(*stagesFile)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, agent.WithStage(st))
	}
	for _, name := range strings.Split(*drivers, ",") {
		opts = append(opts, agent.WithNamedDriver(name, configs[name], agent.Interval(*interval)))
	}
	a, err := agent.New(s, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close(context.Background()) // closes s
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Print(err)
	}
	logger.Info("stopped", "stats", fmt.Sprintf("%+v", a.Stats()))
}

// statsInterval keeps the flag's meaning: -stats-every 0 is never.
func statsInterval(d time.Duration) time.Duration {
	if d == 0 {
		return agent.NoStats
	}
	return d
}
