#!/bin/sh
# The Riemann path of meterkit (examples/agent with the synthetic driver ->
# examples/publisher -> riemann://) against Telegraf (line protocol over TCP
# -> inputs.socket_listener -> outputs.riemann), into one counting Riemann
# server (sink/riemann/riemanntest), alternating, several runs; prints
# events/s, CPU and RSS of each, the medians and the ratios (see main.go).
#
#   scripts/riemann-vs-telegraf/run.sh                          # 3 runs of 30 s
#   RUNS=1 DURATION=10s scripts/riemann-vs-telegraf/run.sh      # a quick look
#   scripts/riemann-vs-telegraf/run.sh -keep-logs -rate 200000  # any flag of main.go
#
# Telegraf v1.37.2 is built once from the Go module proxy with custom build
# tags into $CACHE (default /var/tmp/meterkit-rvt), outside the repository.
# Everything is built with CGO_ENABLED=0, as Telegraf builds its releases.
# The three Go files here are programs built from their file (go:build
# ignore), not packages of the module.
set -eu

TELEGRAF_VERSION=${TELEGRAF_VERSION:-v1.37.2}
TAGS=custom,inputs.socket_listener,outputs.riemann,parsers.influx
CACHE=${CACHE:-/var/tmp/meterkit-rvt}
RUNS=${RUNS:-3}
DURATION=${DURATION:-30s}

repo=$(cd "$(dirname "$0")/../.." && pwd)
export CGO_ENABLED=0
bin=$CACHE/telegraf-$TELEGRAF_VERSION
if [ ! -x "$bin/telegraf" ]; then
	echo "building telegraf $TELEGRAF_VERSION into $bin (once; takes minutes)" >&2
	mkdir -p "$bin"
	# go install pkg@version ignores this module's go.mod.
	(cd "$CACHE" && GOBIN=$bin GOFLAGS="-mod=mod -buildvcs=false" go install -tags "$TAGS" \
		github.com/influxdata/telegraf/cmd/telegraf@"$TELEGRAF_VERSION")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && go build -o "$work/agent" ./examples/agent &&
	go build -o "$work/publisher" ./examples/publisher &&
	go build -o "$work/lpgen" scripts/riemann-vs-telegraf/lpgen/main.go &&
	go build -o "$work/riemanncount" scripts/riemann-vs-telegraf/riemanncount/main.go &&
	go build -o "$work/rvt" scripts/riemann-vs-telegraf/main.go)

echo "telegraf: $TELEGRAF_VERSION ($bin/telegraf, tags $TAGS)"
echo "meterkit: $(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown), $(go version)"
echo "$(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/rvt" -telegraf "$bin/telegraf" -agent "$work/agent" -publisher "$work/publisher" \
	-lpgen "$work/lpgen" -riemanncount "$work/riemanncount" -runs "$RUNS" -duration "$DURATION" "$@"
