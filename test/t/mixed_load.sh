#!/usr/bin/env bash
# TAP: one mixed workload at once, 8 pgbench clients, bounded in transactions
# (not time): activities on 24 hot contacts, orders and refunds, consent
# changes, profile and company updates, segment refreshes (some in a
# transaction that also writes), merges and erasures.  Deadlocks and
# serialization failures are retried (--max-tries); any other error aborts
# a client.  Afterwards the invariants the triggers promise must hold:
# activities stored = activities committed, every score equals a full
# crm.rescore(), every contact's stage is its last history row, every
# segment's membership is a fresh evaluation of its predicate (and its log
# replays to it), no row anywhere points at a contact that no longer exists.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=crm_mixed$$
work=$(mktemp -d)
clients=8 per_client=200
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# ok N DESCRIPTION STATUS [DIAGNOSTICS]: STATUS is the condition's $?, so
# DESCRIPTION must not run a command of its own ($(...) would reset $?)
ok() {
	if [ "$3" -eq 0 ]; then echo "ok $1 - $2"; else echo "not ok $1 - $2"; [ -n "${4:-}" ] && echo "$4" | sed 's/^/# /'; fi
}
echo "1..9"
createdb "$db"
q -c 'CREATE EXTENSION crm' -f "$here/../demo/rules.sql" \
	-v seed=11 -v contacts=400 -v activities=4000 -f "$here/../demo/generate.sql" >/dev/null \
	|| { echo "Bail out! could not load the demo data"; exit 1; }

# Hot contacts are 1..24: 1..16 form 8 merge pairs, 17..24 may be erased.
# Orders, consent and profile updates go to 1..60.  92 more pairs among
# 101..284 keep the merge queue from running dry; 301..400 may be erased
# too.  The pairs are disjoint, so every merge finds both of its contacts;
# rows aimed at a merged-away id are redirected to the kept one.
q <<'SQL' >/dev/null
CREATE SCHEMA mixed;
-- one row per committed transaction that inserted activities, written in
-- that transaction (a retried or failed one leaves none)
CREATE TABLE mixed.committed (activities integer NOT NULL);
CREATE TABLE mixed.baseline AS SELECT count(*) AS activities FROM crm.activity;
CREATE TABLE mixed.merge_queue (pair_id integer PRIMARY KEY, keep_id bigint NOT NULL, drop_id bigint NOT NULL);
-- the hot pairs come about every 6th, so hot contacts are merged
-- throughout the run; in half the pairs the kept contact has the higher id
INSERT INTO mixed.merge_queue
SELECT row_number() OVER (ORDER BY CASE WHEN p <= 8 THEN p * 6 ELSE (p - 8) * 10 / 9.0 + 0.5 END),
	   CASE WHEN p % 2 = 0 THEN a ELSE a + 1 END, CASE WHEN p % 2 = 0 THEN a + 1 ELSE a END
  FROM generate_series(1, 100) p
 CROSS JOIN LATERAL (SELECT CASE WHEN p <= 8 THEN 2 * p - 1 ELSE 101 + 2 * (p - 9) END AS a) x;

SELECT crm.create_segment('germany', $$country = 'DE'$$);
SELECT crm.create_segment('repeat buyers', $$order_count >= 2$$);
SELECT crm.create_segment('big spenders', $$lifetime_value > 200$$);
SELECT crm.create_segment('readers', $$crm.activity_count(contact_id, 'page_view') >= 8$$);
SELECT crm.create_segment('pipeline', $$stage IN ('mql', 'sql', 'opportunity')$$);
SELECT crm.create_segment('deciders', $$job_title IN ('CEO', 'CTO') AND company_employees > 50$$);
SELECT crm.create_segment('top value', $$value_rank >= 0.8$$);
SELECT crm.create_segment('mailable', $$consent_email AND do_not_contact IS NULL$$);
SELECT crm.create_segment('german buyers', $$crm.in_segment(contact_id, 'germany') AND crm.in_segment(contact_id, 'repeat buyers')$$);
SELECT count(*) FROM crm.refresh_segments();
SQL
[ $? -eq 0 ] || { echo "Bail out! could not set up the workload"; exit 1; }

cat > "$work/activity.sql" <<'PGB'
\set a random(1, 24)
\set b random(1, 24)
\set k random(1, 8)
\set p random(1, 6)
\set d random(0, 100000)
BEGIN;
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
SELECT c, (ARRAY['page_view', 'page_view', 'email_open', 'email_click', 'form_submit', 'download', 'webinar', 'meeting_booked'])[:k],
	   now() - :d * interval '1 minute',
	   (ARRAY['{"url": "/pricing"}', '{"url": "/demo"}', '{"form": "demo_request"}', '{"asset": "whitepaper"}',
			  '{"minutes": 45}', '{"campaign": "spring_sale"}'])[:p]::jsonb
  FROM unnest(ARRAY[:a, :b]::bigint[]) c;
INSERT INTO mixed.committed VALUES (2);
COMMIT;
PGB
cat > "$work/order.sql" <<'PGB'
\set c random(1, 60)
\set t random(500, 30000)
INSERT INTO crm."order" (contact_id, total, items) VALUES (:c, :t / 100.0, 1);
PGB
cat > "$work/refund.sql" <<'PGB'
\set c random(1, 60)
UPDATE crm."order" SET status = 'refunded'
 WHERE (contact_id, order_id) IN (SELECT contact_id, order_id FROM crm."order"
								   WHERE contact_id = :c AND status <> 'refunded' ORDER BY order_id LIMIT 1);
PGB
cat > "$work/consent.sql" <<'PGB'
\set c random(1, 60)
\set s random(1, 3)
\set ch random(1, 3)
INSERT INTO crm.consent (contact_id, channel, status, source)
VALUES (:c, (ARRAY['email', 'sms', 'profiling'])[:ch], (ARRAY['granted', 'denied', 'revoked'])[:s], 'pgbench');
PGB
cat > "$work/profile.sql" <<'PGB'
\set c random(1, 60)
\set k random(1, 4)
\set j random(1, 4)
UPDATE crm.contact SET country = (ARRAY['DE', 'FR', 'ES', 'US'])[:k],
	   job_title = (ARRAY['CEO', 'Student', 'Engineer', 'CTO'])[:j]
 WHERE contact_id = :c;
PGB
cat > "$work/company.sql" <<'PGB'
\set co random(1, 10)
\set e random(5, 2000)
UPDATE crm.company SET employees = :e WHERE company_id = :co;
PGB
cat > "$work/refresh.sql" <<'PGB'
SELECT count(*) FROM crm.refresh_segments();
PGB
# an application that writes, refreshes and writes again in one
# transaction; on contacts 61..100, which no other script updates, so the
# last such transaction on a contact decides what the segment must say
cat > "$work/refresh_in_txn.sql" <<'PGB'
\set c random(61, 100)
\set k random(1, 4)
\set m random(1, 4)
BEGIN;
UPDATE crm.contact SET country = (ARRAY['DE', 'FR', 'ES', 'US'])[:k] WHERE contact_id = :c;
SELECT entered, exited FROM crm.refresh_segment('germany');
UPDATE crm.contact SET country = (ARRAY['DE', 'FR', 'ES', 'US'])[:m] WHERE contact_id = :c;
COMMIT;
PGB
cat > "$work/merge.sql" <<'PGB'
BEGIN;
WITH q AS (DELETE FROM mixed.merge_queue
			WHERE pair_id = (SELECT pair_id FROM mixed.merge_queue ORDER BY pair_id LIMIT 1 FOR UPDATE SKIP LOCKED)
		   RETURNING keep_id, drop_id)
SELECT count(*) FROM q CROSS JOIN LATERAL crm.merge_contacts(q.keep_id, q.drop_id) m;
COMMIT;
PGB
cat > "$work/forget.sql" <<'PGB'
\set c random(17, 24)
\if random(0, 1) = 1
\set c random(301, 400)
\endif
SELECT crm.forget_contact(:c, 'erasure request (mixed load test)');
PGB

total=$((clients * per_client))
pgbench -n -c $clients -j 2 -t $per_client --max-tries=20 \
	-f "$work/activity.sql@40" -f "$work/order.sql@10" -f "$work/refund.sql@3" \
	-f "$work/consent.sql@10" -f "$work/profile.sql@10" -f "$work/company.sql@2" \
	-f "$work/refresh.sql@4" -f "$work/refresh_in_txn.sql@2" -f "$work/merge.sql@3" \
	-f "$work/forget.sql@1" "$db" > "$work/pgbench.out" 2>&1
rc=$?
out=$(grep -v 'NOTICE:  contact .* was already forgotten\|DETAIL:  Erased on' "$work/pgbench.out")
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/.*/\1/p' <<<"$out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
retried=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' <<<"$out")
aborted=$(grep -c 'aborted' <<<"$out")
[ "$rc" -eq 0 ] && [ "${processed:-0}" = "$total" ] && [ "$aborted" -eq 0 ]
ok 1 "$clients clients x $per_client transactions: no client aborted" $? \
	"$(grep -v '^ *-\|^SQL script\|^latency\|^initial\|^tps\|^transaction type\|^scaling\|^query mode\|^number of \(clients\|threads\)\|^maximum number' <<<"$out" | head -40)"
[ "${failed:-x}" = "0" ]
ok 2 "no transaction failed: every deadlock or serialization failure was retried (${retried:-?} retried)" $? \
	"$(grep -i 'deadlock\|serializ\|failed' <<<"$out" | head -20)"

stored=$(q -c "SELECT count(*) FROM crm.activity")
committed=$(q -c "SELECT (SELECT activities FROM mixed.baseline) + coalesce((SELECT sum(activities) FROM mixed.committed), 0)")
[ "$stored" = "$committed" ]
ok 3 "activities stored ($stored) = activities committed ($committed)" $?

bad=$(q -c "SELECT count(*) FROM crm.contact c
			 LEFT JOIN LATERAL (SELECT h.to_stage FROM crm.stage_history h WHERE h.contact_id = c.contact_id
								 ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1) h ON true
			WHERE h.to_stage IS DISTINCT FROM c.stage")
[ "$bad" = "0" ]
ok 4 "every contact's stage equals its last stage_history row" $? \
	"$bad contacts differ, e.g.:
$(q -c "SELECT format('contact %s: stage %s, last history row %s; merged from %s', c.contact_id, c.stage, h.to_stage,
					  (SELECT string_agg(m.dropped_id::text, ',') FROM crm.merge_log m WHERE m.kept_id = c.contact_id))
		  FROM crm.contact c
		  LEFT JOIN LATERAL (SELECT h.to_stage FROM crm.stage_history h WHERE h.contact_id = c.contact_id
							  ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1) h ON true
		 WHERE h.to_stage IS DISTINCT FROM c.stage ORDER BY 1 LIMIT 5")"

# The segments as an application's next refresh leaves them.  The fresh
# evaluation runs in the transaction of a last refresh, so now() is the same
# for the time-dependent predicate; the refresh before it is the one that
# must have caught every change of the run.
q <<'SQL' >/dev/null
SELECT count(*) FROM crm.refresh_segments();
CREATE FUNCTION mixed.segment_differences() RETURNS TABLE (segment text, missing bigint, extra bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, crm, pg_temp AS $$
DECLARE
	s record;
BEGIN
	FOR s IN SELECT * FROM crm.segment g WHERE g.kind = 'dynamic' ORDER BY g.name LOOP
		segment := s.name;
		EXECUTE format($q$
			WITH fresh AS (SELECT p.contact_id FROM crm.contact_profile p WHERE (%s)),
				 mem AS (SELECT m.contact_id FROM crm.segment_member m WHERE m.segment_id = $1)
			SELECT (SELECT count(*) FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM mem WHERE mem.contact_id = f.contact_id)),
				   (SELECT count(*) FROM mem m WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.contact_id = m.contact_id))
		$q$, s.predicate) INTO missing, extra USING s.segment_id;
		RETURN NEXT;
	END LOOP;
END $$;
SQL
diffs=$(q -c "BEGIN" -c "SELECT count(*) FROM crm.refresh_segments()" \
		  -c "SELECT format('%s: %s missing, %s extra', segment, missing, extra) FROM mixed.segment_differences()
			   WHERE missing > 0 OR extra > 0" -c "COMMIT" | sed 1d)
nseg=$(q -c "SELECT count(*) FROM crm.segment")
[ -z "$diffs" ]
ok 5 "every segment's membership equals a fresh evaluation of its predicate ($nseg segments)" $? "$diffs"

badlog=$(q -c "WITH last AS (SELECT DISTINCT ON (l.segment_id, l.contact_id) l.segment_id, l.contact_id, l.change
							   FROM crm.segment_log l ORDER BY l.segment_id, l.contact_id, l.log_id DESC)
			   SELECT count(*) FROM (SELECT segment_id, contact_id FROM last WHERE change = 'enter') l
				 FULL JOIN crm.segment_member m USING (segment_id, contact_id)
				WHERE l.contact_id IS NULL OR m.contact_id IS NULL")
[ "$badlog" = "0" ]
ok 6 "every segment's log replays to its membership" $? "$badlog (segment, contact) pairs differ"

# Every table of schema crm with a contact_id column, from the catalog, so a
# table added later is checked too.  segment_log is history: a contact's
# entries and exits stay after the contact is merged away (check 6 covers it).
orphans=$(q <<'SQL'
CREATE FUNCTION mixed.orphans() RETURNS TABLE (table_name text, rows bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t text;
BEGIN
	FOR t IN SELECT c.table_name FROM information_schema.columns c
			   JOIN information_schema.tables x USING (table_schema, table_name)
			  WHERE c.table_schema = 'crm' AND c.column_name = 'contact_id' AND x.table_type = 'BASE TABLE'
				AND c.table_name NOT IN ('contact', 'segment_log') ORDER BY 1 LOOP
		table_name := t;
		EXECUTE format('SELECT count(*) FROM crm.%I x WHERE NOT EXISTS (SELECT 1 FROM crm.contact k WHERE k.contact_id = x.contact_id)', t)
		   INTO rows;
		RETURN NEXT;
	END LOOP;
END $$;
SELECT count(*) || ' tables' FROM mixed.orphans();
SELECT format('%s: %s rows', table_name, rows) FROM mixed.orphans() WHERE rows > 0;
SQL
)
ntables=$(head -1 <<<"$orphans")
[ "$(wc -l <<<"$orphans")" -eq 1 ] && [ "$ntables" != "0 tables" ]
ok 7 "no row points at a contact that no longer exists ($ntables with contact_id checked)" $? "$(sed 1d <<<"$orphans")"

# Scores last: crm.rescore() rewrites the ledger.
at=$(q -c "SELECT now()")
q -c "CREATE TABLE mixed.scores AS SELECT g.score_group, s.contact_id, s.score
		FROM crm.score_group g, crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), g.score_group, '$at') s" \
  -c "CREATE TABLE mixed.ledger AS SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger" \
  -c "CREATE TABLE mixed.events AS SELECT contact_id, rule_id, count(*) AS n, sum(points) AS points FROM crm.score_event GROUP BY 1, 2" \
  -c "SELECT crm.rescore()" >/dev/null
worst=$(q -c "SELECT coalesce(max(abs(b.score - a.score) / greatest(abs(a.score), 1)), 0) || ' ' || count(*)
				FROM mixed.scores b
				JOIN crm.score_group g USING (score_group)
				JOIN crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), g.score_group, '$at') a
				  USING (contact_id)")
read -r diff compared <<<"$worst"
awk "BEGIN {exit !($diff < 1e-9)}" && [ "$compared" = "$(q -c "SELECT count(*) FROM mixed.scores")" ]
ok 8 "every score equals a full crm.rescore() ($compared scores, max relative difference $diff)" $? \
	"$(q -c "SELECT format('contact %s %s: %s, after rescore %s', b.contact_id, b.score_group, b.score, crm.score(b.contact_id, b.score_group, '$at'))
			  FROM mixed.scores b WHERE abs(b.score - crm.score(b.contact_id, b.score_group, '$at')) > 1e-9 * greatest(abs(b.score), 1)
			 ORDER BY b.contact_id LIMIT 5")"
ledger=$(q -c "SELECT count(*) FROM (
				 (SELECT * FROM mixed.ledger EXCEPT SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger)
				 UNION ALL
				 (SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger EXCEPT SELECT * FROM mixed.ledger)
				 UNION ALL
				 (SELECT * FROM mixed.events EXCEPT SELECT contact_id, rule_id, count(*), sum(points) FROM crm.score_event GROUP BY 1, 2)
				 UNION ALL
				 (SELECT contact_id, rule_id, count(*), sum(points) FROM crm.score_event GROUP BY 1, 2 EXCEPT SELECT * FROM mixed.events)) d")
[ "$ledger" = "0" ]
ok 9 "the ledger (hits, raw points) and windowed events equal crm.rescore()'s" $? "$ledger rows differ"

dropdb "$db"
rm -rf "$work"
