#!/bin/bash
# Start or stop a throw-away Keystone (SQLite) and Gnocchi (PostgreSQL,
# auth_mode keystone) for meterkit's integration tests.
#
#   keystone-gnocchi.sh start DIR KS_PORT GN_PORT PG_PORT [TOKEN_EXPIRATION_SECONDS]
#   keystone-gnocchi.sh stop DIR
#
# Everything listens on 127.0.0.1. After start:
#   DIR/clouds.yaml      cloud "meterkit": user meterkit (role member on project demo),
#                        cloud "meterkit-admin": admin/s3cret on project admin
#   catalogue            identity http://127.0.0.1:KS_PORT/v3/, metric http://127.0.0.1:GN_PORT
#   archive policy       "meterkit-1s": mean, 1 s granularity, 1 day
# PostgreSQL is a private cluster in DIR/pg (not Debian's main cluster). Each
# server runs under `timeout ${MK_SERVER_TIMEOUT:-1800}` in its own process
# group; stop signals the groups by PID. Logs: DIR/*.log.
set -euo pipefail

cmd=${1:?usage: keystone-gnocchi.sh start|stop DIR ...}
dir=${2:?DIR missing}
limit=${MK_SERVER_TIMEOUT:-1800}

stop_group() {
	local f=$1 pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill -TERM -- -"$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do kill -0 -- -"$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- -"$pid" 2>/dev/null || true
	rm -f "$f"
}

wait_http() { # URL STATUS SECONDS NAME
	for _ in $(seq 1 $(($3 * 10))); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true)
		[ "$code" = "$2" ] && return 0
		sleep 0.1
	done
	echo "$4 did not answer $2 at $1 within $3 s (last: $code); see $dir/*.log" >&2
	return 1
}

case $cmd in
start)
	ks_port=${3:?KS_PORT missing}
	gn_port=${4:?GN_PORT missing}
	pg_port=${5:?PG_PORT missing}
	expiration=${6:-3600}
	for b in /usr/bin/keystone-manage /usr/bin/gnocchi-upgrade /usr/bin/gnocchi-metricd /usr/bin/uwsgi /usr/lib/postgresql/15/bin/initdb; do
		[ -x "$b" ] || { echo "$b is not installed (apt-get install keystone gnocchi-api gnocchi-metricd postgresql)" >&2; exit 3; }
	done
	mkdir -p "$dir/ks" "$dir/gn/storage" "$dir/pg"
	chmod 755 "$dir"
	ks=$dir/ks gn=$dir/gn

	# --- Keystone on SQLite ---
	cat > "$ks/keystone.conf" <<CONF
[DEFAULT]
log_file = $dir/keystone.log
[database]
connection = sqlite:///$ks/keystone.db
[token]
provider = fernet
expiration = $expiration
[fernet_tokens]
key_repository = $ks/fernet-keys
[fernet_receipts]
key_repository = $ks/fernet-keys
[credential]
key_repository = $ks/credential-keys
[oslo_policy]
policy_dirs = /etc/keystone/policy.d
CONF
	km="keystone-manage --config-file $ks/keystone.conf"
	timeout 120 $km db_sync > "$dir/keystone-manage.log" 2>&1
	/usr/bin/python3 -c "import sqlite3;sqlite3.connect('$ks/keystone.db').execute('pragma journal_mode=WAL')"
	timeout 60 $km fernet_setup --keystone-user root --keystone-group root >> "$dir/keystone-manage.log" 2>&1
	timeout 60 $km credential_setup --keystone-user root --keystone-group root >> "$dir/keystone-manage.log" 2>&1
	url=http://127.0.0.1:$ks_port/v3/
	timeout 120 $km bootstrap --bootstrap-password s3cret --bootstrap-region-id RegionOne \
		--bootstrap-public-url "$url" --bootstrap-internal-url "$url" --bootstrap-admin-url "$url" >> "$dir/keystone-manage.log" 2>&1
	setsid timeout "$limit" /usr/bin/uwsgi --plugins http,python3 --http 127.0.0.1:"$ks_port" --http-keepalive \
		--master --die-on-term --processes 2 --threads 1 --wsgi-file /usr/bin/keystone-wsgi-public \
		--env OS_KEYSTONE_CONFIG_DIR="$ks" > "$dir/keystone-uwsgi.log" 2>&1 < /dev/null &
	echo $! > "$dir/keystone.pid"

	# --- PostgreSQL, a private cluster ---
	chown postgres: "$dir/pg"
	runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$dir/pg" -A trust -U postgres > "$dir/initdb.log" 2>&1
	setsid timeout "$limit" runuser -u postgres -- /usr/lib/postgresql/15/bin/postgres -D "$dir/pg" -p "$pg_port" \
		-c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir/pg" -c fsync=off \
		> "$dir/postgres.log" 2>&1 < /dev/null &
	echo $! > "$dir/postgres.pid"
	for _ in $(seq 1 300); do
		runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_isready -q -h 127.0.0.1 -p "$pg_port" && break
		sleep 0.1
	done
	runuser -u postgres -- psql -q -h 127.0.0.1 -p "$pg_port" -U postgres \
		-c "CREATE ROLE gnocchi LOGIN PASSWORD 'gnocchi'" -c "CREATE DATABASE gnocchi OWNER gnocchi" > /dev/null

	# --- Keystone users, projects, roles, the metric service ---
	wait_http "$url" 200 60 Keystone
	/usr/bin/python3 - "$url" "$gn_port" <<'PY'
import json, sys, urllib.request
url, gn_port = sys.argv[1], sys.argv[2]
def call(method, path, body=None, token=None, want=(200, 201, 204)):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status in want, (path, r.status)
        return r.headers, (json.loads(r.read() or b"null"))
auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "s3cret"}}},
                 "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
h, _ = call("POST", "auth/tokens", auth)
tok = h["X-Subject-Token"]
def create(kind, body):
    return call("POST", kind + "s", {kind: body}, tok)[1][kind]["id"]
def role_id(name):
    return call("GET", "roles?name=" + name, token=tok)[1]["roles"][0]["id"]
service_role = create("role", {"name": "service"})
member, admin = role_id("member"), role_id("admin")
service = create("project", {"name": "service", "domain_id": "default"})
demo = create("project", {"name": "demo", "domain_id": "default"})
gnocchi = create("user", {"name": "gnocchi", "password": "gnocchi-pw", "domain_id": "default"})
client = create("user", {"name": "meterkit", "password": "meterkit-pw", "domain_id": "default"})
for p, u, r in [(service, gnocchi, admin), (service, gnocchi, service_role), (demo, client, member)]:
    call("PUT", "projects/%s/users/%s/roles/%s" % (p, u, r), token=tok)
svc = create("service", {"type": "metric", "name": "gnocchi"})
for iface in ("public", "internal", "admin"):
    create("endpoint", {"service_id": svc, "interface": iface, "region_id": "RegionOne", "url": "http://127.0.0.1:%s" % gn_port})
PY

	# --- Gnocchi ---
	sed "s|^oslo_config_project = gnocchi$|oslo_config_project = gnocchi\noslo_config_file = $gn/gnocchi.conf|" \
		/usr/share/gnocchi-common/api-paste.ini > "$gn/api-paste.ini"
	cat > "$gn/gnocchi.conf" <<CONF
[DEFAULT]
log_file = $dir/gnocchi.log
[api]
auth_mode = keystone
paste_config = $gn/api-paste.ini
[indexer]
url = postgresql://gnocchi:gnocchi@127.0.0.1:$pg_port/gnocchi
[storage]
driver = file
file_basepath = $gn/storage
[incoming]
driver = file
file_basepath = $gn/storage
[metricd]
workers = 1
metric_processing_delay = 2
[oslo_policy]
policy_file = /etc/gnocchi/policy.json
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$ks_port
auth_url = http://127.0.0.1:$ks_port
auth_type = password
username = gnocchi
password = gnocchi-pw
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
interface = public
token_cache_time = -1
CONF
	timeout 120 gnocchi-upgrade --config-file "$gn/gnocchi.conf" > "$dir/gnocchi-upgrade.log" 2>&1
	setsid timeout "$limit" /usr/bin/uwsgi --plugins http,python3 --http 127.0.0.1:"$gn_port" --http-keepalive \
		--master --enable-threads --die-on-term --processes 2 --threads 2 --lazy-apps --chdir / \
		--wsgi gnocchi.rest.wsgi --pyargv "--config-file $gn/gnocchi.conf" > "$dir/gnocchi-uwsgi.log" 2>&1 < /dev/null &
	echo $! > "$dir/gnocchi.pid"
	setsid timeout "$limit" /usr/bin/gnocchi-metricd --config-file "$gn/gnocchi.conf" > "$dir/metricd.out" 2>&1 < /dev/null &
	echo $! > "$dir/metricd.pid"
	wait_http "http://127.0.0.1:$gn_port/v1/resource/generic" 401 90 Gnocchi

	cat > "$dir/clouds.yaml" <<YAML
clouds:
  meterkit:
    auth:
      auth_url: $url
      username: meterkit
      password: meterkit-pw
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
  meterkit-admin:
    auth:
      auth_url: $url
      username: admin
      password: s3cret
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
YAML
	# An archive policy with 1 s granularity, so that every measure reads back as itself.
	/usr/bin/python3 - "$url" "$gn_port" <<'PY'
import json, sys, urllib.request
url, gn_port = sys.argv[1], sys.argv[2]
auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "s3cret"}}},
                 "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
req = urllib.request.Request(url + "auth/tokens", data=json.dumps(auth).encode(), headers={"Content-Type": "application/json"})
tok = urllib.request.urlopen(req, timeout=30).headers["X-Subject-Token"]
ap = {"name": "meterkit-1s", "aggregation_methods": ["mean"], "definition": [{"granularity": "1s", "timespan": "1 day"}]}
req = urllib.request.Request("http://127.0.0.1:%s/v1/archive_policy" % gn_port, data=json.dumps(ap).encode(),
                             headers={"Content-Type": "application/json", "X-Auth-Token": tok, "Accept": "application/json"})
urllib.request.urlopen(req, timeout=30)
PY
	;;
stop)
	for p in gnocchi metricd keystone postgres; do stop_group "$dir/$p.pid"; done
	;;
*)
	echo "keystone-gnocchi.sh: unknown command $cmd" >&2
	exit 2
	;;
esac
