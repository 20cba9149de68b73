#!/bin/sh
# The stages' throughput target of the agent-to-publisher benchmark
# (BenchmarkAgentToPublisherTCP in publisher): the variants without stages
# (sealed=false), with select + unit + levels in the agent and select + unit
# in the publisher (stages), and with the agent's chain only (stages=agent),
# at 1 and 4 batches in flight, run alternately several rounds; prints each
# variant's median measurements/s and the ratios to the variant without
# stages, same binary, same rounds (see main.go).
#
#   scripts/stages-throughput/run.sh                    # 7 rounds of 3M measurements
#   ROUNDS=3 scripts/stages-throughput/run.sh           # a quick look
#   BASE=562129a scripts/stages-throughput/run.sh       # also the code at BASE, alternated with HEAD
#
# Run it on an otherwise idle machine: the benchmark keeps both cores busy.
set -eu

ROUNDS=${ROUNDS:-7}
N=${N:-3000000}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$repo" && go test -c -o "$work/HEAD.test" ./publisher)
bins="$work/HEAD.test"
if [ -n "${BASE:-}" ]; then
	mkdir "$work/base"
	git -C "$repo" archive "$BASE" | tar -x -C "$work/base"
	(cd "$work/base" && go test -c -o "$work/$BASE.test" ./publisher)
	bins="$work/$BASE.test $bins"
fi
cd "$repo/publisher" # the benchmark's working directory
go run "$repo/scripts/stages-throughput/main.go" -rounds "$ROUNDS" -n "$N" $bins
