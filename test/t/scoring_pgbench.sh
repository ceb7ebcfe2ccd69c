#!/usr/bin/env bash
# TAP: 8 pgbench clients insert activities for the same 40 contacts at once
# (single rows and two-contact statements in random order): no client fails
# or deadlocks, and the final scores equal a full crm.rescore().
set -uo pipefail
db=crm_pgbench$$
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
echo "1..4"
createdb "$db"
q -c 'CREATE EXTENSION crm' >/dev/null
q <<'SQL'
UPDATE crm.score_group SET half_life = '3 days' WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (name, activity_kind, condition, points, once, "window") VALUES
 ('pricing', 'page_view', '$.url == "/pricing"', 10, false, NULL),
 ('page', 'page_view', NULL, 1, false, NULL),
 ('demo once', 'form_submit', NULL, 40, true, NULL),
 ('recent click', 'email_click', NULL, 5, false, '7 days');
INSERT INTO crm.contact (email) SELECT 'bench' || i || '@pgbench.example' FROM generate_series(1, 40) i;
SQL
script=$(mktemp)
cat > "$script" <<'PGB'
\set a random(1, 40)
\set b random(1, 40)
\set k random(1, 4)
\set d random(0, 20000)
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
SELECT c, (ARRAY['page_view','form_submit','email_click','page_view'])[:k],
	   timestamptz '2026-06-01' - :d * interval '1 minute', '{"url": "/pricing"}'
  FROM unnest(ARRAY[:a, :b]) c;
PGB
out=$(pgbench -n -c 8 -j 2 -t 150 -f "$script" "$db" 2>&1)
if echo "$out" | grep -q 'number of transactions actually processed: 1200/1200'; then
	echo "ok 1 - 8 clients x 150 transactions all committed (no deadlock, no error)"
else
	echo "not ok 1 - 8 clients x 150 transactions all committed"; echo "$out" | sed 's/^/# /'
fi
n=$(q -c "SELECT count(*) FROM crm.activity")
[ "$n" = "2400" ] && echo "ok 2 - 2400 activities stored" || echo "not ok 2 - 2400 activities stored (got $n)"
q -c "CREATE TABLE before AS SELECT * FROM crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), 'engagement', '2026-06-02')"
q -c "SELECT crm.rescore()" >/dev/null
diff=$(q -c "SELECT max(abs(b.score - a.score) / greatest(abs(a.score), 1e-300)) FROM before b
			 JOIN crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), 'engagement', '2026-06-02') a USING (contact_id)")
if awk "BEGIN {exit !($diff < 1e-9)}"; then
	echo "ok 3 - scores after concurrent inserts equal crm.rescore() (max relative difference $diff)"
else
	echo "not ok 3 - scores after concurrent inserts equal crm.rescore() (max relative difference $diff)"
fi
twice=$(q -c "SELECT count(*) FROM crm.contact c, crm.explain_score(c.contact_id, '2026-06-02') e
			  WHERE e.rule = 'demo once' AND e.raw_points <> 40")
[ "$twice" = "0" ] && echo "ok 4 - the once rule counted at most once per contact" || echo "not ok 4 - the once rule counted at most once per contact ($twice contacts over)"
rm -f "$script"
dropdb "$db"
