#!/bin/bash
# Start or stop a throw-away libvirtd serving libvirt's built-in test driver, for driver/libvirt's
# integration tests. The test driver is compiled into libvirt0: no hypervisor, no cgroups, no systemd.
#
#   libvirtd.sh start DIR      start a daemon whose socket is DIR/run/libvirt-sock and wait until it
#                              answers an RPC; clients open test+unix:///default?socket=DIR/run/libvirt-sock
#                              or test+unix:///ABSOLUTE/node.xml?socket=DIR/run/libvirt-sock
#   libvirtd.sh stop DIR       stop it (SIGTERM, then SIGKILL after 5 s)
#
# DIR/drivers stays empty: with the QEMU driver loaded, libvirtd would die on a machine without the
# libvirt-qemu group. The daemon is wrapped in `timeout ${MK_SERVER_TIMEOUT:-1800}`.
set -euo pipefail

cmd=${1:?usage: libvirtd.sh start|stop DIR}
dir=${2:?DIR missing}

case $cmd in
start)
	command -v libvirtd > /dev/null || [ -x /usr/sbin/libvirtd ] || {
		echo "libvirtd is not installed (apt-get install --no-install-recommends libvirt-daemon libvirt-clients)" >&2
		exit 3
	}
	mkdir -p "$dir/run" "$dir/drivers"
	cat > "$dir/libvirtd.conf" <<CONF
unix_sock_dir = "$dir/run"
unix_sock_rw_perms = "0777"
unix_sock_ro_perms = "0777"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$dir/run/libvirtd.log"
CONF
	rm -f "$dir/run/libvirtd.pid"
	# Foreground under setsid and timeout rather than -d: `libvirtd -d` exits 0 even when the daemon
	# dies right after, and a process group is easy to stop.
	LIBVIRT_DRIVER_DIR=$dir/drivers setsid timeout "${MK_SERVER_TIMEOUT:-1800}" \
		env PATH="$PATH:/usr/sbin" libvirtd -f "$dir/libvirtd.conf" -p "$dir/run/libvirtd.pid" \
		> "$dir/libvirtd.out" 2>&1 < /dev/null &
	echo $! > "$dir/group.pid"
	for _ in $(seq 1 100); do
		if virsh -q -c "test+unix:///default?socket=$dir/run/libvirt-sock" version > /dev/null 2>&1; then
			exit 0
		fi
		if ! kill -0 "$(cat "$dir/group.pid")" 2>/dev/null; then
			echo "libvirtd exited; tail of $dir/libvirtd.out and the log:" >&2
			tail -20 "$dir/libvirtd.out" "$dir/run/libvirtd.log" >&2 || true
			exit 1
		fi
		sleep 0.1
	done
	echo "libvirtd did not answer on $dir/run/libvirt-sock within 10 s" >&2
	exit 1
	;;
stop)
	[ -f "$dir/group.pid" ] || exit 0
	pid=$(cat "$dir/group.pid")
	kill -TERM -- -"$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- -"$pid" 2>/dev/null || true
	rm -f "$dir/group.pid" "$dir/run/libvirtd.pid"
	;;
*)
	echo "libvirtd.sh: unknown command $cmd" >&2
	exit 2
	;;
esac
