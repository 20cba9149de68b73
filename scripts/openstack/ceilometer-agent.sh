#!/bin/bash
# Start or stop a throw-away Ceilometer notification agent for meterkit's
# integration tests, with one pipeline: every sample to a JSON-lines file.
#
#   ceilometer-agent.sh start DIR AMQP_PORT [durable]
#                                             write DIR/ceilometer.conf and DIR/pipeline.yaml, start the agent
#                                             ("durable": amqp_durable_queues = true, durable exchange and queues)
#   ceilometer-agent.sh stop DIR              SIGTERM its process group, then SIGKILL
#
# Samples land in DIR/samples.log, one JSON object per line. The agent logs
# nothing about its listeners: it is ready when queue notifications.sample
# has a consumer (the tests check that over AMQP). The agent is wrapped in
# `timeout ${MK_SERVER_TIMEOUT:-1800}`.
set -euo pipefail

cmd=${1:?usage: ceilometer-agent.sh start|stop DIR [AMQP_PORT]}
dir=${2:?DIR missing}

case $cmd in
start)
	port=${3:?AMQP_PORT missing}
	durable=false
	[ "${4:-}" = durable ] && durable=true
	[ -x /usr/bin/ceilometer-agent-notification ] || {
		echo "ceilometer-agent-notification is not installed (apt-get install ceilometer-agent-notification)" >&2; exit 3; }
	mkdir -p "$dir"
	cat > "$dir/pipeline.yaml" <<YAML
---
sources:
    - name: meter_source
      meters:
          - "*"
      sinks:
          - file_sink
sinks:
    - name: file_sink
      publishers:
          - file://$dir/samples.log?json
YAML
	cat > "$dir/ceilometer.conf" <<CONF
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:$port/
pipeline_cfg_file = $dir/pipeline.yaml
log_file = $dir/agent.log
[notification]
pipelines = meter
workers = 1
[oslo_messaging_rabbit]
rabbit_retry_interval = 1
rabbit_retry_backoff = 1
rabbit_interval_max = 2
amqp_durable_queues = $durable
CONF
	: > "$dir/samples.log"
	setsid timeout "${MK_SERVER_TIMEOUT:-1800}" /usr/bin/ceilometer-agent-notification \
		--config-file "$dir/ceilometer.conf" > "$dir/agent.out" 2>&1 < /dev/null &
	echo $! > "$dir/agent.pid"
	;;
stop)
	[ -f "$dir/agent.pid" ] || exit 0
	pid=$(cat "$dir/agent.pid")
	kill -TERM -- -"$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- -"$pid" 2>/dev/null || true
	rm -f "$dir/agent.pid"
	;;
*)
	echo "ceilometer-agent.sh: unknown command $cmd" >&2
	exit 2
	;;
esac
