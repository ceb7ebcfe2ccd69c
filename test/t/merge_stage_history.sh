#!/usr/bin/env bash
# TAP: a batch of merges on demo data (generate.sql + plant_duplicates.sql)
# leaves a stage history that explains every contact's stage.  The merges
# go both ways (original kept, or the duplicate kept), meet exits on either
# side (churned by crm.detect_churn, disqualified by hand), run in one
# transaction with activities and orders aimed at the merged-away ids, and
# chain (contacts that absorbed a duplicate are merged again).  Then: every
# contact's stage is its last history row and what crm.stages_at(now()) and
# crm.funnel() say; no history row is lost and every moved row names the
# contact it was written for.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=crm_merge_history$$
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
# ok N DESCRIPTION EXPECTED GOT
ok() {
	if [ "$3" = "$4" ]; then echo "ok $1 - $2"; else echo "not ok $1 - $2"; echo "# expected: $3"; echo "# got: $4"; fi
}

echo "1..7"
createdb "$db"
PGOPTIONS='-c client_min_messages=warning' q -c 'CREATE EXTENSION crm' -f "$here/../demo/rules.sql" \
	-v seed=11 -v contacts=3000 -v activities=30000 -f "$here/../demo/generate.sql" \
	-v rate=0.1 -f "$here/../demo/plant_duplicates.sql" >/dev/null

# exits on both sides, the history as it was, and who keeps whom
q <<'SQL' >/dev/null
SELECT crm.detect_churn(now());
SELECT crm.set_stage(c.contact_id, 'disqualified', 'merge test')
  FROM crm.contact c WHERE c.stage < 'customer' AND c.contact_id % 7 = 0;
CREATE TABLE public.history_before AS SELECT history_id, contact_id FROM crm.stage_history;
CREATE TABLE public.pair AS
SELECT CASE WHEN p.original % 2 = 0 THEN p.original ELSE p.duplicate END AS keep_id,
	   CASE WHEN p.original % 2 = 0 THEN p.duplicate ELSE p.original END AS drop_id
  FROM public.planted_duplicate p;
SQL

# the merges, in one transaction with writes aimed at the dropped ids before
# (a sales acceptance promotes) and after (redirected to keep) the merge
if q <<'SQL' >/dev/null
BEGIN;
INSERT INTO crm.activity (contact_id, kind) SELECT drop_id, 'meeting_booked' FROM public.pair WHERE drop_id % 3 = 0;
SELECT count(*) FROM public.pair p CROSS JOIN LATERAL crm.merge_contacts(p.keep_id, p.drop_id) m;
INSERT INTO crm.activity (contact_id, kind) SELECT drop_id, 'meeting_booked' FROM public.pair WHERE drop_id % 3 = 1;
INSERT INTO crm."order" (contact_id, total) SELECT drop_id, 25 FROM public.pair WHERE drop_id % 5 = 0;
COMMIT;
-- a chain: contacts that absorbed a duplicate absorb one another
CREATE TABLE public.chain AS
SELECT k[2 * i - 1] AS keep_id, k[2 * i] AS drop_id
  FROM (SELECT array_agg(keep_id ORDER BY keep_id) AS k FROM public.pair) a, generate_series(1, 40) i;
SELECT count(*) FROM public.chain c CROSS JOIN LATERAL crm.merge_contacts(c.keep_id, c.drop_id) m;
SQL
then
	echo "ok 1 - the merges ran (both directions, exits, a transaction with activities and orders, chains)"
else
	echo "not ok 1 - the merges ran (both directions, exits, a transaction with activities and orders, chains)"
fi

# the batch covers every path
paths=$(q -c "SELECT count(*) FILTER (WHERE kr > dr) > 0 AND count(*) FILTER (WHERE kr < dr) > 0
				 AND count(*) FILTER (WHERE kr = dr) > 0
				 AND count(*) FILTER (WHERE ks IN ('churned', 'disqualified')) > 0
				 AND count(*) FILTER (WHERE ds IN ('churned', 'disqualified')) > 0
				 AND count(*) FILTER (WHERE (kept_id, dropped_id) IN (SELECT keep_id, drop_id FROM public.chain)) = 40
			  FROM (SELECT m.kept_id, m.dropped_id, m.kept_row ->> 'stage' AS ks, m.dropped_row ->> 'stage' AS ds,
						   crm.stage_rank((m.kept_row ->> 'stage')::crm.stage) AS kr,
						   crm.stage_rank((m.dropped_row ->> 'stage')::crm.stage) AS dr
					  FROM crm.merge_log m) m")
echo "# $(q -c "SELECT count(*) || ' merges, ' || count(*) FILTER (WHERE kept_row ->> 'stage' IN ('churned', 'disqualified')
			 OR dropped_row ->> 'stage' IN ('churned', 'disqualified')) || ' with an exit' FROM crm.merge_log")"
ok 2 "the merges kept the more, the less and the equally advanced contact, with exits on both sides, and chained" t "$paths"

n=$(q -c "SELECT count(*) FROM crm.contact c
		   WHERE c.stage IS DISTINCT FROM (SELECT h.to_stage FROM crm.stage_history h WHERE h.contact_id = c.contact_id
										   ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1)")
ok 3 "every contact's stage is its last history row" 0 "$n"

n=$(q -c "SELECT count(*) FROM crm.contact c FULL JOIN crm.stages_at(now()) s USING (contact_id)
		   WHERE c.stage IS DISTINCT FROM s.stage")
ok 4 "crm.stages_at(now()) is the stage of every contact" 0 "$n"

n=$(q -c "SELECT count(*) FROM crm.funnel() f
		   LEFT JOIN (SELECT stage, count(*) AS n FROM crm.contact GROUP BY stage) c USING (stage)
		   WHERE f.contacts <> coalesce(c.n, 0)")
ok 5 "crm.funnel() counts the contacts' stages" 0 "$n"

n=$(q -c "SELECT count(*) FROM crm.stage_history_mismatches()")
ok 6 "crm.stage_history_mismatches() finds nothing" 0 "$n"

# every row from before is still there, on the contact its own went to, and
# says whose record it was; the merges added one row each that records it
got=$(q -c "SELECT (SELECT count(*) FROM public.history_before b LEFT JOIN crm.stage_history h USING (history_id)
					 WHERE h.contact_id IS DISTINCT FROM crm.merged_into(b.contact_id)
						OR coalesce(h.merged_from, h.contact_id) <> b.contact_id)
			|| ' ' || (SELECT count(*) FROM crm.stage_history WHERE reason LIKE 'merge: contact % merged into this one')
			|| ' ' || (SELECT count(*) FROM crm.merge_log)")
merges=$(q -c "SELECT count(*) FROM crm.merge_log")
ok 7 "no history row lost or unmarked; one row records each merge" "0 $merges $merges" "$got"

dropdb "$db"
