#!/usr/bin/env bash
# TAP: one INSERT ... SELECT of 20,000 contacts, then one UPDATE of all of
# them, with the lifecycle and scoring triggers on.  The statement triggers
# must stay linear: a promotion query that carried the id array in every
# joined row once wrote gigabytes of temporary files for 20k contacts (and
# filled the disk at 100k).  Checked through pg_stat_database.temp_bytes.
set -uo pipefail
db=crm_bulk$$
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
echo "1..4"
createdb "$db"
q -c 'CREATE EXTENSION crm' >/dev/null
q <<'SQL' >/dev/null
INSERT INTO crm.fit_rule (name, condition, points) VALUES ('german', '$.country == "DE"', 30);
-- MQL on fit alone; SQL needs more fit than anyone has
INSERT INTO crm.lifecycle_policy (mql_min_engagement, mql_min_fit, sql_min_engagement, sql_min_fit)
VALUES (NULL, 20, NULL, 100);
SQL
temp_bytes() {
	q -c "SELECT pg_stat_force_next_flush()" >/dev/null
	sleep 1.2
	q -c "SET stats_fetch_consistency = none" -c "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"
}
before=$(temp_bytes)
q -c "INSERT INTO crm.contact (email, country, lead_source)
	  SELECT 'bulk' || i || '@bulk.example', CASE WHEN i % 2 = 0 THEN 'DE' ELSE 'FR' END, 'form'
		FROM generate_series(1, 20000) i"
q -c "UPDATE crm.contact SET country = 'DE' WHERE country = 'FR'"
after=$(temp_bytes)
n=$(q -c "SELECT count(*) FROM crm.contact")
[ "$n" = "20000" ] && echo "ok 1 - 20000 contacts inserted in one statement" \
	|| echo "not ok 1 - 20000 contacts inserted in one statement (got $n)"
mql=$(q -c "SELECT count(*) FROM crm.contact WHERE stage = 'mql'")
[ "$mql" = "20000" ] && echo "ok 2 - all promoted to mql by fit (half on insert, half on update)" \
	|| echo "not ok 2 - all promoted to mql by fit (got $mql)"
h=$(q -c "SELECT count(*) FROM crm.stage_history WHERE to_stage = 'mql' AND automatic")
[ "$h" = "20000" ] && echo "ok 3 - one automatic history row per promotion" \
	|| echo "not ok 3 - one automatic history row per promotion (got $h)"
used=$((after - before))
if [ "$used" -lt 16777216 ]; then
	echo "ok 4 - temporary files stay small ($used bytes)"
else
	echo "not ok 4 - temporary files stay small ($used bytes written)"
fi
dropdb "$db"
