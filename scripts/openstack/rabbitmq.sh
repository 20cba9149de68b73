#!/bin/bash
# Start or stop a throw-away RabbitMQ for meterkit's integration tests.
#
#   rabbitmq.sh start DIR AMQP_PORT [TLS_PORT CA CERT KEY]
#                                     start a node whose state lives in DIR, wait for the AMQP port;
#                                     with TLS_PORT also an amqps listener with that CA, cert and key
#   rabbitmq.sh stop DIR              stop it (SIGTERM to its process group), and its epmd
#   rabbitmq.sh ctl DIR ARGS...       run rabbitmqctl against it
#
# Everything listens on 127.0.0.1: AMQP on AMQP_PORT, Erlang distribution on
# AMQP_PORT+20000 and a private epmd on AMQP_PORT+10000, under the node name
# mk<AMQP_PORT>@localhost, so that several nodes (and other users' nodes) can
# run side by side. DIR must be traversable by the rabbitmq user. The server
# is wrapped in `timeout ${MK_SERVER_TIMEOUT:-1800}`.
set -euo pipefail

cmd=${1:?usage: rabbitmq.sh start|stop|ctl DIR [PORT]}
dir=${2:?DIR missing}
bin=/usr/lib/rabbitmq/bin

node_env() {
	local port
	port=$(cat "$dir/port")
	export HOME=$dir RABBITMQ_NODENAME=mk$port@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((port + 20000)) \
		ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=$((port + 10000)) \
		RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log \
		RABBITMQ_CONFIG_FILE=$dir/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
}

case $cmd in
start)
	port=${3:?AMQP_PORT missing}
	[ -x $bin/rabbitmq-server ] || { echo "rabbitmq-server is not installed (apt-get install rabbitmq-server)" >&2; exit 3; }
	mkdir -p "$dir"
	echo "$port" > "$dir/port"
	echo '[].' > "$dir/enabled_plugins"
	: > "$dir/rabbitmq.conf"
	if [ -n "${4:-}" ]; then
		cp "${5:?CA missing}" "$dir/ca.pem"
		cp "${6:?CERT missing}" "$dir/cert.pem"
		cp "${7:?KEY missing}" "$dir/key.pem"
		cat > "$dir/rabbitmq.conf" <<CONF
listeners.ssl.1 = 127.0.0.1:$4
ssl_options.cacertfile = $dir/ca.pem
ssl_options.certfile = $dir/cert.pem
ssl_options.keyfile = $dir/key.pem
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
	fi
	chown -R rabbitmq: "$dir"
	chmod 755 "$dir"
	node_env
	setsid timeout "${MK_SERVER_TIMEOUT:-1800}" runuser -u rabbitmq -- env HOME="$HOME" \
		RABBITMQ_NODENAME="$RABBITMQ_NODENAME" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" \
		RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT" ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT="$ERL_EPMD_PORT" \
		RABBITMQ_MNESIA_BASE="$RABBITMQ_MNESIA_BASE" RABBITMQ_LOG_BASE="$RABBITMQ_LOG_BASE" \
		RABBITMQ_CONFIG_FILE="$RABBITMQ_CONFIG_FILE" RABBITMQ_ENABLED_PLUGINS_FILE="$RABBITMQ_ENABLED_PLUGINS_FILE" \
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS" \
		$bin/rabbitmq-server > "$dir/server.out" 2>&1 < /dev/null &
	echo $! > "$dir/rabbitmq.pid"
	for _ in $(seq 1 600); do
		if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then exit 0; fi
		if ! kill -0 "$(cat "$dir/rabbitmq.pid")" 2>/dev/null; then
			echo "rabbitmq-server exited; tail of $dir/server.out:" >&2; tail -20 "$dir/server.out" >&2; exit 1
		fi
		sleep 0.1
	done
	echo "rabbitmq-server did not open 127.0.0.1:$port within 60 s" >&2
	exit 1
	;;
stop)
	[ -f "$dir/rabbitmq.pid" ] || exit 0
	pid=$(cat "$dir/rabbitmq.pid")
	# setsid made the server a process group leader: signal the group.
	kill -TERM -- -"$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- -"$pid" 2>/dev/null || true
	rm -f "$dir/rabbitmq.pid"
	# epmd was started by the node as a daemon outside the group.
	port=$(cat "$dir/port")
	ERL_EPMD_PORT=$((port + 10000)) epmd -kill > /dev/null 2>&1 || true
	;;
ctl)
	shift 2
	node_env
	exec runuser -u rabbitmq -- env HOME="$HOME" ERL_EPMD_PORT="$ERL_EPMD_PORT" \
		$bin/rabbitmqctl -n "$RABBITMQ_NODENAME" "$@"
	;;
*)
	echo "rabbitmq.sh: unknown command $cmd" >&2
	exit 2
	;;
esac
