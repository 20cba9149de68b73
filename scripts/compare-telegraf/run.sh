#!/bin/sh
# Measures the reference agent against Telegraf side by side: CPU ms per
# 1 s cycle and RSS, with the equivalent host inputs (see main.go).
#
#   scripts/compare-telegraf/run.sh                       # 3 runs of 60 s
#   RUNS=1 DURATION=10s scripts/compare-telegraf/run.sh   # a quick look
#
# Telegraf v1.37.2 is built once from the Go module proxy with the custom
# build tags of its inputs, into $CACHE (default ~/.cache/meterkit-compare),
# outside the repository. The agent and the publisher are built from this
# checkout. All are built with CGO_ENABLED=0, as Telegraf's Makefile builds
# its releases and as docs/operating.md builds ours (a static binary maps no
# libc: about 1.5 MB less RSS each). The machine should be otherwise idle: the figures are small
# (milliseconds per second) and a busy neighbour moves them.
set -eu

TELEGRAF_VERSION=${TELEGRAF_VERSION:-v1.37.2}
TAGS=custom,inputs.cpu,inputs.mem,inputs.system,inputs.disk,inputs.diskio,inputs.net,outputs.discard
CACHE=${CACHE:-$HOME/.cache/meterkit-compare}
RUNS=${RUNS:-3}
DURATION=${DURATION:-60s}

repo=$(cd "$(dirname "$0")/../.." && pwd)
export CGO_ENABLED=0
bin=$CACHE/telegraf-$TELEGRAF_VERSION-static
if [ ! -x "$bin/telegraf" ]; then
	echo "building telegraf $TELEGRAF_VERSION into $bin (once; takes minutes)" >&2
	mkdir -p "$bin"
	# go install pkg@version ignores this module's go.mod.
	(cd "$CACHE" && GOBIN=$bin GOFLAGS=-buildvcs=false go install -tags "$TAGS" \
		github.com/influxdata/telegraf/cmd/telegraf@"$TELEGRAF_VERSION")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && go build -o "$work/agent" ./examples/agent &&
	go build -o "$work/publisher" ./examples/publisher &&
	go build -o "$work/compare" scripts/compare-telegraf/main.go)

echo "telegraf: $TELEGRAF_VERSION ($bin/telegraf)"
echo "agent: $(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown), $(go version)"
echo "$(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/compare" -telegraf "$bin/telegraf" -agent "$work/agent" -publisher "$work/publisher" \
	-runs "$RUNS" -duration "$DURATION" "$@"
