#!/usr/bin/env bash
# TAP: crm on a Citus 13.2 cluster gives the answers of one node.  Three
# throwaway clusters of the installed PostgreSQL 15 (a coordinator and two
# workers, 127.0.0.1 and a private socket directory only) get citus and crm;
# test/citus/load.sql loads rows, crm.distribute() runs on the coordinator
# (copying them to the shards); then test/citus/workload.sql runs
# case by case in a one-node database (no citus in it: the cluster of
# test.sh, or a fourth throwaway one) and on the coordinator, and each
# case's output is compared.  A case that CITUS.md lists as failing today is
# marked "# todo: ..." in the workload and reported as a TAP TODO with the
# error Citus gave; every other case must match.
#
# Citus is installed from ../shared/vendor/citus (as root; a no-op when it
# is installed).  Not root and no Citus: the whole test is skipped.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
workload=${CITUS_WORKLOAD:-$root/test/citus/workload.sql}
load=$root/test/citus/load.sql
bin=/usr/lib/postgresql/15/bin
lib=$("$bin/pg_config" --pkglibdir)

have_citus() { [ -f "$lib/citus.so" ]; }
if ! have_citus; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "1..0 # SKIP citus not installed and not root"
		exit 0
	fi
	if [ ! -f "$root/../shared/vendor/citus/build.sh" ]; then
		echo "1..0 # SKIP citus not installed and ../shared/vendor/citus not available"
		exit 0
	fi
	bash "$root/../shared/vendor/citus/build.sh" 2>&1 | sed 's/^/# /'
	have_citus || { echo "1..1"; echo "not ok 1 - citus builds and installs from ../shared/vendor/citus"; exit 1; }
fi

tmp=$(mktemp -d /tmp/crm-citus.XXXXXX)
chmod 755 "$tmp"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chown postgres "$tmp"; fi
nodes="coord w1 w2"
stop_all() {
	[ -z "${CITUS_KEEP:-}" ] || { echo "# kept: $tmp" >&2; return; }
	for n in $nodes one; do
		[ -f "$tmp/$n/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$tmp/$n" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap stop_all EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# start NAME PRELOAD: a cluster in $tmp/NAME on a free port; prints the port
start() {
	local n=$1 preload=$2 port
	port=$(free_port)
	as_pg "$bin/initdb" -D "$tmp/$n" -A trust -U postgres --no-sync >"$tmp/$n.initdb.log" 2>&1 || return 1
	cat >>"$tmp/$n/postgresql.conf" <<-EOF
		port = $port
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$tmp'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 100
		max_worker_processes = 16
		shared_buffers = 64MB
		${preload:+shared_preload_libraries = '$preload'}
		citus.shard_count = 8
	EOF
	[ -n "$preload" ] || sed -i '/^citus\./d' "$tmp/$n/postgresql.conf"
	echo "host all all 127.0.0.1/32 trust" >>"$tmp/$n/pg_hba.conf"
	as_pg "$bin/pg_ctl" -D "$tmp/$n" -l "$tmp/$n.log" -w start >/dev/null || { cat "$tmp/$n.log" >&2; return 1; }
	echo "$port"
}
db=crm_citus
# psql on a node: q PORT [psql args]
q() { local p=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$p" -U postgres -d "$db" "$@"; }

n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; return "$1"; }

cases=$(grep -c '^-- case: ' "$workload")
echo "1..$((8 + cases))"

# the cluster
setup=0
for node in $nodes; do
	port=$(start "$node" citus) || { setup=1; break; }
	eval "port_$node=$port"
done
if [ "$setup" = 0 ]; then
	for node in $nodes; do
		eval "p=\$port_$node"
		psql -X -q -h 127.0.0.1 -p "$p" -U postgres -d postgres -c "CREATE DATABASE $db" &&
			q "$p" -c 'CREATE EXTENSION citus' -c 'CREATE EXTENSION crm' || setup=1
	done
fi
if [ "$setup" = 0 ]; then
	q "$port_coord" -c "SELECT pg_catalog.citus_set_coordinator_host('127.0.0.1', $port_coord)" \
		-c "SELECT pg_catalog.citus_add_node('127.0.0.1', $port_w1)" \
		-c "SELECT pg_catalog.citus_add_node('127.0.0.1', $port_w2)" >/dev/null || setup=1
fi
ok $setup "a coordinator and two workers with citus and crm"
if [ "$setup" != 0 ]; then
	for f in "$tmp"/*.log; do sed "s|^|# $(basename "$f"): |" "$f" | tail -5; done
	echo "Bail out! the cluster did not start"
	exit 1
fi

# the one-node reference: the cluster of test.sh when there is one
if [ -n "${PGPORT:-}" ] && psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null 2>&1; then
	one() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
	dropone() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; }
else
	port_one=$(start one "")
	psql -X -q -h 127.0.0.1 -p "$port_one" -U postgres -d postgres -c "CREATE DATABASE $db"
	one() { q "$port_one" "$@"; }
	dropone() { :; }
fi
trap 'dropone; stop_all' EXIT
one -c 'CREATE EXTENSION crm' -f "$load" >/dev/null

# rows written before the distribution are copied to the shards
q "$port_coord" -f "$load" >/dev/null || { echo "Bail out! $load does not load on the coordinator"; exit 1; }

# refusals, before anything changes: UNIQUE (email) without the opt-in; a worker
sqlstate() { q "$@" -v VERBOSITY=verbose 2>&1 | sed -n 's/^.*ERROR:  \([0-9A-Z]\{5\}\): .*/\1/p' | head -1; }
st=$(sqlstate "$port_coord" -c "SELECT * FROM crm.distribute()")
echo "# without drop_email_uniqueness: $st: $(q "$port_coord" -c 'SELECT * FROM crm.distribute()' 2>&1 | grep -m1 ERROR)"
[ "$st" = 0A000 ] && [ "$(q "$port_coord" -c 'SELECT count(*) FROM pg_dist_partition')" = 0 ]
ok $? "crm.distribute() refuses UNIQUE (email) across shards without drop_email_uniqueness (0A000), distributing nothing"
as_pg "$bin/pg_ctl" -D "$tmp/w2" -m fast -w stop >/dev/null
st=$(sqlstate "$port_coord" -c "SELECT * FROM crm.distribute(drop_email_uniqueness => true)")
msg=$(q "$port_coord" -c "SELECT * FROM crm.distribute(drop_email_uniqueness => true)" 2>&1 | grep -m1 ERROR)
echo "# a worker down: $st: $msg"
[ "$st" = 55000 ] && case $msg in *":$port_w2 (unreachable"*) true;; *) false;; esac &&
	[ "$(q "$port_coord" -c 'SELECT count(*) FROM pg_dist_partition')" = 0 ]
ok $? "crm.distribute() refuses when a worker cannot say it has crm (55000 naming it), distributing nothing"
as_pg "$bin/pg_ctl" -D "$tmp/w2" -l "$tmp/w2.log" -w start >/dev/null
st=$(sqlstate "$port_w1" -c "SELECT * FROM crm.distribute(drop_email_uniqueness => true)")
[ "$st" = 55000 ]
ok $? "crm.distribute() on a worker: 55000 (got $st)"

# the distribution: one row per crm table; a second call changes nothing
# (Citus's NOTICEs about copying each table's rows left out)
PGOPTIONS="-c client_min_messages=warning" \
	q "$port_coord" -F ' | ' -c "SELECT * FROM crm.distribute(drop_email_uniqueness => true)" >"$tmp/dist1.txt" 2>&1
rc=$?
sed 's/^/# /' "$tmp/dist1.txt"
[ "$rc" = 0 ] && [ "$(q "$port_coord" -c "SELECT count(*) FROM pg_class c LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
	WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'r' AND (p.logicalrelid IS NULL OR p.partmethod = 'n' AND p.repmodel <> 't')
	  AND c.relname NOT IN ('_dump_begin', 'zz_dump_end')")" = 0 ]
ok $? "crm.distribute() distributes every crm table but the dump markers (hash by contact_id or reference)" ||
	{ echo "Bail out! crm.distribute() failed: nothing to compare"; exit 1; }
q "$port_coord" -F ' | ' -c "SELECT action, count(*) FROM crm.distribute(drop_email_uniqueness => true) GROUP BY 1 ORDER BY 1" >"$tmp/dist2.txt" 2>&1
rc=$?
sed 's/^/# second call: /' "$tmp/dist2.txt"
[ "$rc" = 0 ] && grep -q 'already distributed: nothing to do' "$tmp/dist2.txt" && ! grep -qE '^(distributed|made)' "$tmp/dist2.txt"
ok $? "a second crm.distribute() changes nothing and says so"

# the workload, case by case: "-- case: NAME" starts one, "# todo: WHY"
# after the name marks a case that fails on Citus today
awk -v dir="$tmp/case" 'BEGIN { system("mkdir -p " dir) }
	/^-- case: / { i++; f = sprintf("%s/%03d.sql", dir, i); sub(/^-- case: /, ""); print > (f ".name"); close(f ".name"); next }
	i { print > f }' "$workload"
for f in "$tmp"/case/*.sql; do
	name=$(cat "$f.name")
	todo=
	case $name in *"# todo: "*) todo=${name#*# todo: }; name=${name%% # todo: *};; esac
	one -v cdnow="$root/test/data/CDNOW_sample.txt" -f "$f" >"$f.one" 2>&1; rc_one=$?
	q "$port_coord" -v cdnow="$root/test/data/CDNOW_sample.txt" -f "$f" >"$f.citus" 2>&1; rc_citus=$?
	sed -i 's/^psql:[^ ]*: //' "$f.one" "$f.citus"
	if [ "$rc_one" = 0 ] && [ "$rc_citus" = 0 ] && cmp -s "$f.one" "$f.citus"; then
		n=$((n + 1)); echo "ok $n - $name${todo:+ # TODO $todo}"
		continue
	fi
	err=$(grep -m1 -E '^(ERROR|FATAL|WARNING)' "$f.citus" || true)
	[ -n "$err" ] || err="different output"
	n=$((n + 1))
	if [ -n "$todo" ] && [ "$rc_one" = 0 ]; then
		echo "not ok $n - $name # TODO $todo"
	else
		echo "not ok $n - $name"
	fi
	echo "#   citus: $err"
	if [ "$rc_one" != 0 ]; then echo "#   one node failed: $(grep -m1 -E '^(ERROR|FATAL)' "$f.one")"; fi
	diff "$f.one" "$f.citus" | head -20 | sed 's/^/#   /'
done

# the merge case moves rows between nodes: its two contacts are on different ones
[ "$(q "$port_coord" -c "SELECT count(DISTINCT p.nodeport) FROM unnest(ARRAY[1, 5]) id,
	pg_dist_shard_placement p WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column('crm.contact', id)")" = 2 ]
ok $? "contacts 1 and 5 (the merge case) are on different workers"

# the CLV fits combine partial states computed on the workers: the worker
# query calls worker_partial_agg, the coordinator coord_combine_agg
fit_query="SELECT crm.bgnbd_fit((s).frequency, (s).recency, (s).t), crm.gammagamma_fit((s).frequency, (s).monetary_value)
  FROM (SELECT crm.btyd_summary(ordered_at, total, '1998-07-01 00:00+00', '7 days') AS s FROM crm.\"order\" GROUP BY contact_id) c"
q "$port_coord" -c "EXPLAIN (VERBOSE, COSTS OFF) $fit_query" >"$tmp/fit_plan.txt" 2>&1
grep -q "worker_partial_agg('crm\.bgnbd_fit(" "$tmp/fit_plan.txt" && grep -q "worker_partial_agg('crm\.gammagamma_fit(" "$tmp/fit_plan.txt" &&
	grep -q 'coord_combine_agg' "$tmp/fit_plan.txt"
ok $? "crm.bgnbd_fit and crm.gammagamma_fit over btyd_summary ... GROUP BY contact_id: partial aggregates on the workers (EXPLAIN)" ||
	sed 's/^/#   /' "$tmp/fit_plan.txt" | head -40
# a case's failure is in its TAP line; prove counts it
exit 0
