#!/usr/bin/env bash
# Bulk load floor (issue 2): 1M activities into a database with 100k
# contacts, with COPY and with multi-row INSERT (1,000 rows per statement),
# first with crm's triggers disabled (foreign-key checks stay on), then with
# every crm trigger on (scoring with no rules, lifecycle with the default policy).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${BENCH_ACTIVITIES:-1000000}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
q -v seed=11 -v contacts=100000 -v activities=0 -f test/demo/generate.sql >/dev/null
q -c "COPY (SELECT 1 + (hashint4(g) & 2147483647) % 100000, (ARRAY['page_view','email_open','email_click','download'])[1 + g % 4],
	now() - ((hashint4(g * 13) & 2147483647) % 31536000) * interval '1 second', jsonb_build_object('url', '/p' || g % 50)
	FROM generate_series(1, $N) g) TO '/tmp/crm_load.csv' (FORMAT csv)"
chmod a+r /tmp/crm_load.csv
inserts=/tmp/crm_load_inserts.sql
q -c "CREATE TEMP TABLE src (contact_id bigint, kind text, occurred_at timestamptz, properties jsonb)" \
  -c "COPY src FROM '/tmp/crm_load.csv' (FORMAT csv)" \
  -c "COPY (SELECT format('INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES %s;',
		string_agg(format('(%s,%L,%L,%L)', contact_id, kind, occurred_at, properties), ','))
	  FROM (SELECT *, (row_number() OVER () - 1) / 1000 AS batch FROM src) s GROUP BY batch) TO '$inserts'"
chmod a+r "$inserts"
reset_tables() { q -c "TRUNCATE crm.activity, crm.score_ledger, crm.score_event" -c "CHECKPOINT"; }
copy_ms() { ms "COPY crm.activity (contact_id, kind, occurred_at, properties) FROM '/tmp/crm_load.csv' (FORMAT csv)"; }
insert_ms() {
	local t0 t1
	t0=$(date +%s%N); psql -X -q -v ON_ERROR_STOP=1 -f "$inserts" >/dev/null; t1=$(date +%s%N)
	awk "BEGIN {printf \"%.1f\", ($t1 - $t0) / 1e6}"
}
q -c "ALTER TABLE crm.activity DISABLE TRIGGER USER"
reset_tables; copy_off=$(copy_ms)
reset_tables; insert_off=$(insert_ms)
q -c "ALTER TABLE crm.activity ENABLE TRIGGER USER"
reset_tables; copy_on=$(copy_ms)
reset_tables; insert_on=$(insert_ms)
cat <<MD
$N activities into a table with 100,000 contacts (foreign key checked), tables
truncated and checkpointed before each run. Multi-row INSERT: 1,000 rows per
statement, one psql session, autocommit.

| load | crm triggers off (floor) ms | crm triggers on, no rules ms | on / off |
|---|---:|---:|---:|
| COPY (one statement) | $copy_off | $copy_on | $(ratio "$copy_on" "$copy_off") |
| multi-row INSERT (1,000 statements) | $insert_off | $insert_on | $(ratio "$insert_on" "$insert_off") |

With no scoring rules the scoring trigger returns at once; the lifecycle
trigger still reads the transition table once per statement.
MD
