#!/usr/bin/env bash
# Reading scores for every contact (what a BI query over crm.contact_profile
# or a segment on scores does).  Runs inside test/bench/run.sh: PG* point at
# a fresh cluster with crm created.
#   100k contacts, 6 engagement rules (decay 30 days, one windowed), 1M
#   activities inserted with the scoring trigger on.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${BENCH_ACTIVITIES:-1000000}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q <<SQL
UPDATE crm.score_group SET half_life = '30 days' WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (name, activity_kind, condition, points, "window") VALUES
 ('pricing page', 'page_view', '\$.url == "/pricing"', 10, NULL),
 ('any page', 'page_view', NULL, 1, NULL),
 ('open', 'email_open', NULL, 1, NULL),
 ('click', 'email_click', NULL, 3, NULL),
 ('form', 'form_submit', NULL, 10, NULL),
 ('recent visit', 'page_view', NULL, 2, '14 days');
INSERT INTO crm.contact (contact_id, email) SELECT i, 's' || i || '@score-read.example' FROM generate_series(1, 100000) i;
ALTER TABLE crm.activity DISABLE TRIGGER stage_promote;
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
SELECT 1 + (hashint4(g) & 2147483647) % 100000,
	   (ARRAY['page_view','page_view','email_open','email_click','form_submit'])[1 + (hashint4(g * 7) & 2147483647) % 5],
	   now() - ((hashint4(g * 13) & 2147483647) % 31536000) * interval '1 second',
	   jsonb_build_object('url', (ARRAY['/','/pricing','/blog'])[1 + g % 3])
  FROM generate_series(1, $N) g;
VACUUM ANALYZE;
SQL
ledger=$(q -c "SELECT count(*) FROM crm.score_ledger")
events=$(q -c "SELECT count(*) FROM crm.score_event")
floor=$(best 3 "SELECT count(*) FROM (SELECT l.contact_id, sum(l.value) FROM crm.score_ledger l GROUP BY 1) x")
plain_sql="SELECT count(*) FROM (
	SELECT c.contact_id,
		   coalesce((SELECT sum(l.value * 2 ^ (-extract(epoch FROM now() - l.as_of) * 1e6 / nullif(l.half_life_us, 0)))
					   FROM crm.score_ledger l WHERE l.contact_id = c.contact_id AND l.score_group = 'engagement'), 0)
		 + coalesce((SELECT sum(e.points * 2 ^ (-extract(epoch FROM now() - e.occurred_at) / 2592000.0))
					   FROM crm.score_event e JOIN crm.scoring_rule r USING (rule_id)
					  WHERE e.contact_id = c.contact_id AND e.score_group = 'engagement'
						AND e.occurred_at > now() - r.\"window\"), 0) AS s
	  FROM crm.contact c OFFSET 0) x WHERE s > 5"
plain=$(best 3 "$plain_sql")
per_row_sql="SELECT count(*) FROM (SELECT crm.score(contact_id, 'engagement') s FROM crm.contact OFFSET 0) x WHERE s > 5"
set_sql="SELECT count(*) FROM crm.scores_of((SELECT array_agg(contact_id) FROM crm.contact), 'engagement') WHERE score > 5"
per_row=$(best 3 "$per_row_sql")
set_based=$(best 3 "$set_sql")
n_plain=$(q -c "$plain_sql"); n_per_row=$(q -c "$per_row_sql"); n_set=$(q -c "$set_sql")

cat <<MD
100,000 contacts, 6 engagement rules (half-life 30 days, one 14-day window), $N activities
($ledger ledger rows, $events windowed matches). Every query counts the contacts whose engagement
score now is above 5 (crm.score: $n_per_row, crm.scores_of: $n_set, plain SQL: $n_plain). Best of 3.

| query | ms |
|---|---:|
| floor: one pass over the ledger, \`GROUP BY contact_id\` (no decay, no windows) | $floor |
| plain SQL a user would write: two correlated subqueries per contact (decay, window) | $plain |
| \`crm.score(contact_id)\` per contact (what \`crm.contact_profile.engagement_score\` does) | $per_row |
| \`crm.scores_of(ids, 'engagement')\`, set-based | $set_based |
MD
