#!/usr/bin/env bash
# TAP: a backfill gives the history of live traffic.  The demo generator's
# year of activities, deals and orders (with its scoring rules and policy)
# is loaded three ways into databases that start from the same contacts:
#   live:   every event its own INSERT, all tables merged in time order;
#   import: one sorted COPY per table (activities, then deals, then orders);
#   rebuilt: the generator's own unsorted statements, then
#           crm.rebuild_stage_history().
# The stage histories (ids and recorded_at aside) and the stages must be
# equal, and the import must be dated like live traffic (no batch artefact:
# times in stage that are not all zero, a funnel in the past that is not
# all leads).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=crm_backfill$$
dir=$(mktemp -d)
chmod a+rwx "$dir"
q() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
ok() {
	if [ "$3" = "$4" ]; then echo "ok $1 - $2"; else echo "not ok $1 - $2"; echo "# expected: $3"; echo "# got: $4"; fi
}
echo "1..6"

# moves dated by the clock (events in the future) differ by it: compared as "clock"
t0=$(psql -X -At -c "SELECT now()")
# the source: the generator, as the demo runs it
createdb "${base}_src"
PGOPTIONS='-c client_min_messages=warning' q "${base}_src" -c 'CREATE EXTENSION crm' -f "$here/../demo/rules.sql" \
	-v seed=16 -v contacts=800 -v activities=6000 -f "$here/../demo/generate.sql" >/dev/null
q "${base}_src" <<SQL
COPY crm.company TO '$dir/company.csv' (FORMAT csv);
COPY (SELECT contact_id, email, first_name, last_name, phone, city, region, country, birth_date, income_band,
			 company_id, job_title, lead_source, owner, attrs, created_at, updated_at FROM crm.contact ORDER BY contact_id)
  TO '$dir/contact.csv' (FORMAT csv);
COPY (SELECT contact_id, kind, occurred_at, properties FROM crm.activity ORDER BY occurred_at, activity_id)
  TO '$dir/activity.csv' (FORMAT csv);
COPY (SELECT contact_id, company_id, title, pipeline_stage, amount, probability, expected_close, status, created_at, closed_at
		FROM crm.deal ORDER BY created_at, deal_id) TO '$dir/deal.csv' (FORMAT csv);
COPY (SELECT contact_id, ordered_at, status, total, items FROM crm."order" ORDER BY ordered_at, order_id)
  TO '$dir/order.csv' (FORMAT csv);
-- live traffic: one statement per event, in time order across the tables
COPY (SELECT s FROM (
	SELECT a.occurred_at AS t, 1 AS k, a.activity_id AS i,
		   format('INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES (%s, %L, %L, %L);',
				  a.contact_id, a.kind, a.occurred_at, a.properties) AS s FROM crm.activity a
	UNION ALL
	SELECT d.created_at, 2, d.deal_id,
		   format('INSERT INTO crm.deal (contact_id, company_id, title, pipeline_stage, amount, probability, expected_close, status, created_at, closed_at) VALUES (%s, %L, %L, %L, %s, %s, %L, %L, %L, %L);',
				  d.contact_id, d.company_id, d.title, d.pipeline_stage, d.amount, d.probability, d.expected_close,
				  d.status, d.created_at, d.closed_at) FROM crm.deal d
	UNION ALL
	SELECT o.ordered_at, 3, o.order_id,
		   format('INSERT INTO crm."order" (contact_id, ordered_at, status, total, items) VALUES (%s, %L, %L, %s, %s);',
				  o.contact_id, o.ordered_at, o.status, o.total, o.items) FROM crm."order" o) e
	ORDER BY t, k, i) TO '$dir/live.sql';
SQL

# a database with the rules and the contacts, no events
start() {
	createdb "$1"
	PGOPTIONS='-c client_min_messages=warning' q "$1" -c 'CREATE EXTENSION crm' -f "$here/../demo/rules.sql" >/dev/null
	q "$1" -c "COPY crm.company FROM '$dir/company.csv' (FORMAT csv)" \
		-c "COPY crm.contact (contact_id, email, first_name, last_name, phone, city, region, country, birth_date, income_band,
			 company_id, job_title, lead_source, owner, attrs, created_at, updated_at) FROM '$dir/contact.csv' (FORMAT csv)"
}
start "${base}_live"
q "${base}_live" -f "$dir/live.sql" >/dev/null
start "${base}_import"
q "${base}_import" \
	-c "COPY crm.activity (contact_id, kind, occurred_at, properties) FROM '$dir/activity.csv' (FORMAT csv)" \
	-c "COPY crm.deal (contact_id, company_id, title, pipeline_stage, amount, probability, expected_close, status, created_at, closed_at) FROM '$dir/deal.csv' (FORMAT csv)" \
	-c "COPY crm.\"order\" (contact_id, ordered_at, status, total, items) FROM '$dir/order.csv' (FORMAT csv)"
q "${base}_src" -c "SELECT crm.rebuild_stage_history()" >/dev/null

history() {
	q "$1" -c "COPY (SELECT contact_id, from_stage, to_stage,
						    CASE WHEN changed_at >= '$t0' THEN 'clock' ELSE changed_at::text END, reason, automatic, forced
					  FROM crm.stage_history ORDER BY contact_id, changed_at, history_id) TO STDOUT"
}
stages() { q "$1" -c "COPY (SELECT contact_id, stage FROM crm.contact ORDER BY contact_id) TO STDOUT"; }
history "${base}_live" > "$dir/live.h"
moves=$(q "${base}_live" -c "SELECT count(*) FROM crm.stage_history WHERE automatic")
echo "# live traffic: $(wc -l < "$dir/live.sql") statements, $moves automatic transitions"
for db in import src; do
	history "${base}_$db" > "$dir/$db.h"
done
d=$(diff "$dir/live.h" "$dir/import.h" | grep -c '^[<>]')
ok 1 "one sorted COPY per table gives the history of one event at a time" 0 "$d"
[ "$d" = 0 ] || diff "$dir/live.h" "$dir/import.h" | head -20 | sed 's/^/# /'
d=$(diff <(stages "${base}_live") <(stages "${base}_import") | grep -c '^[<>]')
ok 2 "and the same stages" 0 "$d"
d=$(diff "$dir/live.h" "$dir/src.h" | grep -c '^[<>]')
ok 3 "the generator's unsorted statements, then rebuild_stage_history(): the same history" 0 "$d"
[ "$d" = 0 ] || diff "$dir/live.h" "$dir/src.h" | head -20 | sed 's/^/# /'
ok 4 "the scenario moves contacts" t "$(q "${base}_live" -c "SELECT $moves > 200")"
# dated like live traffic: MQL and SQL are stages contacts spend time in,
# and 90 days ago the funnel already had them
ok 5 "times in stage are not a batch artefact: median days in mql above 0" t \
	"$(q "${base}_import" -c "SELECT median_days > 0 FROM crm.stage_conversion(now() - interval '2 years', now()) WHERE stage = 'mql'")"
ok 6 "the funnel 90 days ago has MQLs, SQLs and customers" t \
	"$(q "${base}_import" -c "SELECT count(DISTINCT stage) = 3 FROM crm.stages_at(now() - interval '90 days') WHERE stage IN ('mql', 'sql', 'customer')")"

for db in src live import; do dropdb "${base}_$db"; done
rm -rf "$dir"
