#!/usr/bin/env bash
# Lead scoring and lifecycle benchmark (issues 3 and 4).  Runs inside
# test/bench/run.sh: PG* point at a fresh cluster with crm created.
#   100k contacts, 20 active rules (8 with jsonpath conditions, decay on),
#   1M activities loaded with COPY in one statement.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${BENCH_ACTIVITIES:-1000000}
NP=${BENCH_PLPGSQL_ACTIVITIES:-200000}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
minus() { awk "BEGIN {printf \"%.1f\", $1 - $2}"; }

q -v seed=7 -v contacts=100000 -v activities=0 -f test/demo/generate.sql >/dev/null
q <<'SQL'
UPDATE crm.score_group SET half_life = '30 days' WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (name, activity_kind, condition, points, once, "window") VALUES
 ('pricing page', 'page_view', '$.url == "/pricing"', 10, false, NULL),
 ('demo page', 'page_view', '$.url == "/demo"', 15, false, NULL),
 ('blog', 'page_view', '$.url starts with "/blog"', 2, false, NULL),
 ('any page', 'page_view', NULL, 1, false, NULL),
 ('open', 'email_open', NULL, 1, false, NULL),
 ('spring click', 'email_click', '$.campaign == "spring_sale"', 8, false, NULL),
 ('click', 'email_click', NULL, 3, false, NULL),
 ('demo form', 'form_submit', '$.form == "demo_request"', 40, true, NULL),
 ('form', 'form_submit', NULL, 10, false, NULL),
 ('whitepaper', 'download', '$.asset == "whitepaper"', 12, true, NULL),
 ('download', 'download', NULL, 5, false, NULL),
 ('long webinar', 'webinar', '$.minutes > 30', 20, false, NULL),
 ('webinar', 'webinar', NULL, 10, false, NULL),
 ('meeting', 'meeting_booked', NULL, 50, true, NULL),
 ('call', 'call', NULL, 8, false, NULL),
 ('recent visit', 'page_view', NULL, 2, false, '14 days'),
 ('recent click', 'email_click', NULL, 4, false, '30 days'),
 ('bounce', 'email_bounce', NULL, -10, false, NULL);
INSERT INTO crm.fit_rule (name, condition, points) VALUES
 ('big company', '$.company.employees > 200', 30),
 ('target country', '$.country == "DE" || $.country == "US"', 20);
SQL
# the activities to load, written once: same rows for every variant
q -c "COPY (SELECT 1 + (hashint4(g) & 2147483647) % 100000 AS contact_id,
	(ARRAY['page_view','page_view','page_view','page_view','email_open','email_open','email_click','form_submit','download','webinar','call','meeting_booked'])[1 + (hashint4(g * 7) & 2147483647) % 12] AS kind,
	now() - ((hashint4(g * 13) & 2147483647) % 31536000) * interval '1 second' AS occurred_at,
	jsonb_build_object('url', (ARRAY['/','/pricing','/demo','/blog/x','/docs'])[1 + g % 5],
					   'campaign', (ARRAY['spring_sale','newsletter'])[1 + g % 2],
					   'form', (ARRAY['demo_request','contact_us'])[1 + g % 2],
					   'asset', (ARRAY['whitepaper','case_study'])[1 + g % 2],
					   'minutes', g % 60) AS properties
	FROM generate_series(1, $N) g) TO '/tmp/crm_bench_activities.csv' (FORMAT csv)"
chmod a+r /tmp/crm_bench_activities.csv
reset_tables() { q -c "TRUNCATE crm.activity, crm.score_ledger, crm.score_event" -c "VACUUM ANALYZE crm.contact" -c "CHECKPOINT"; }
load() { ms "COPY crm.activity (contact_id, kind, occurred_at, properties) FROM '/tmp/crm_bench_activities.csv' (FORMAT csv)"; }
triggers() {	# triggers on|off for scoring and lifecycle on crm.activity
	q -c "ALTER TABLE crm.activity $1 TRIGGER score_activities" -c "ALTER TABLE crm.activity $2 TRIGGER stage_promote"
}

reset_tables; triggers DISABLE DISABLE; floor=$(load)
reset_tables; triggers ENABLE DISABLE; scoring=$(load)
reset_tables; triggers ENABLE ENABLE; lifecycle=$(load)
promoted=$(q -c "SELECT count(*) FROM crm.stage_history WHERE automatic")
# rescore against one GROUP BY scan of the same table
group_by=$(best 3 "SELECT contact_id, count(*) FROM crm.activity GROUP BY 1")
rescore=$(best 3 "SELECT crm.rescore()")
ledger_rows=$(q -c "SELECT count(*) FROM crm.score_ledger")
event_rows=$(q -c "SELECT count(*) FROM crm.score_event")
# what writing rescore's result alone costs: the same rows into copies of the
# two tables (same indexes), which rescore cannot go below
q -c "CREATE TABLE public.ledger_copy (LIKE crm.score_ledger INCLUDING ALL)" \
  -c "CREATE TABLE public.event_copy (LIKE crm.score_event INCLUDING ALL)"
write_floor=$(ms "WITH l AS (INSERT INTO public.ledger_copy SELECT * FROM crm.score_ledger RETURNING 1)
	INSERT INTO public.event_copy SELECT * FROM crm.score_event")

# the same scoring written as a plain PL/pgSQL row trigger, on a smaller load
q <<'SQL'
CREATE FUNCTION public.plpgsql_score() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record; hl double precision;
BEGIN
	SELECT coalesce(extract(epoch FROM half_life) * 1e6, 0) INTO hl FROM crm.score_group WHERE score_group = 'engagement';
	FOR r IN SELECT * FROM crm.scoring_rule WHERE active AND (activity_kind IS NULL OR activity_kind = NEW.kind) LOOP
		IF r.condition IS NULL OR (CASE WHEN r.condition::text ~ '==|starts with|>|<' THEN NEW.properties @@ r.condition ELSE NEW.properties @? r.condition END) THEN
			IF r."window" IS NOT NULL THEN
				INSERT INTO crm.score_event VALUES (NEW.contact_id, r.rule_id, r.score_group, NEW.occurred_at, r.points);
			ELSE
				INSERT INTO crm.score_ledger AS l VALUES (NEW.contact_id, r.rule_id, r.score_group, 1, r.points, r.points, NEW.occurred_at, r.once, hl)
				ON CONFLICT (contact_id, rule_id) DO UPDATE SET hits = l.hits + 1,
					raw_points = CASE WHEN l.once THEN l.raw_points ELSE l.raw_points + excluded.raw_points END,
					value = CASE WHEN l.once THEN l.value ELSE crm.decayed_sum(l.value, l.as_of, excluded.value, excluded.as_of, l.half_life_us) END,
					as_of = CASE WHEN l.once THEN least(l.as_of, excluded.as_of) ELSE greatest(l.as_of, excluded.as_of) END;
			END IF;
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
CREATE TRIGGER plpgsql_score AFTER INSERT ON crm.activity FOR EACH ROW EXECUTE FUNCTION public.plpgsql_score();
SQL
head -n "$NP" /tmp/crm_bench_activities.csv > /tmp/crm_bench_small.csv; chmod a+r /tmp/crm_bench_small.csv
small() { ms "COPY crm.activity (contact_id, kind, occurred_at, properties) FROM '/tmp/crm_bench_small.csv' (FORMAT csv)"; }
# only the scoring implementation under test (and the foreign key) on the
# table: the identity and segment triggers cost the same in both runs
others() { q -c "ALTER TABLE crm.activity $1 TRIGGER redirect_merged_contact" \
			 -c "ALTER TABLE crm.activity $1 TRIGGER segment_dirty_insert"; }
others DISABLE
q -c "ALTER TABLE crm.activity DISABLE TRIGGER plpgsql_score"
reset_tables; triggers DISABLE DISABLE; small_floor=$(small)
q -c "ALTER TABLE crm.activity ENABLE TRIGGER plpgsql_score"
reset_tables; triggers DISABLE DISABLE; plpgsql=$(small)
q -c "ALTER TABLE crm.activity DISABLE TRIGGER plpgsql_score"
reset_tables; triggers ENABLE DISABLE; crm_small=$(small)
others ENABLE

# funnel at a past date over 1M history rows
q -c "INSERT INTO crm.stage_history (contact_id, from_stage, to_stage, changed_at, reason)
	  SELECT 1 + g % 100000, NULL, (enum_range(NULL::crm.stage))[1 + g % 7], now() - (g % 730) * interval '1 day', 'bench'
		FROM generate_series(1, 1000000) g" -c "VACUUM ANALYZE crm.stage_history"
funnel=$(best 3 "SELECT * FROM crm.funnel(now() - interval '90 days')")
# the plan funnel's inner query really ran with (auto_explain of nested statements)
plan=$(psql -X -At -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" \
	-c "SET auto_explain.log_nested_statements = on" -c "SET client_min_messages = log" \
	-c "SELECT * FROM crm.funnel(now() - interval '90 days')" 2>&1 | grep -o -E '(Index Only Scan|Index Scan|Seq Scan|Bitmap Heap Scan) [^(]*' | sort -u | paste -sd ';' || true)

cat <<MD
Setup: 100,000 contacts, 20 active rules (18 activity rules, 8 of them with a jsonpath
condition, 2 windowed, 3 once; 2 fit rules), engagement half-life 30 days. $N activities
loaded with one \`COPY\` from a CSV file; tables truncated and checkpointed between runs.

| load of $N activities (COPY) | ms | vs floor |
|---|---:|---:|
| floor: crm triggers disabled (FK checks on) | $floor | 1.00 |
| scoring triggers (issue 3 target <= 1.5x) | $scoring | $(ratio "$scoring" "$floor") |
| scoring + lifecycle promotions (issue 4 target <= 1.15x scoring) | $lifecycle | $(ratio "$lifecycle" "$floor") (x$(ratio "$lifecycle" "$scoring") of scoring) |

Automatic promotions written during the lifecycle load: $promoted history rows.

Same scoring, $NP activities, only the scoring implementation under test and the foreign
key on \`crm.activity\` (the identity redirect and segment triggers, identical for both, are
disabled in all three runs):

| load of $NP activities (COPY) | ms | ratio to crm | trigger cost (ms above floor) |
|---|---:|---:|---:|
| floor: no scoring | $small_floor | | 0 |
| crm statement trigger (C) | $crm_small | 1.00 | $(minus "$crm_small" "$small_floor") |
| PL/pgSQL row trigger (issue 3 target: >= 3x slower) | $plpgsql | $(ratio "$plpgsql" "$crm_small") | $(minus "$plpgsql" "$small_floor") ($(ratio "$(minus "$plpgsql" "$small_floor")" "$(minus "$crm_small" "$small_floor")")x crm's) |

| rescore over 100k contacts / $N activities | ms | ratio |
|---|---:|---:|
| floor: SELECT contact_id, count(*) FROM crm.activity GROUP BY 1 (best of 3) | $group_by | 1.00 |
| SELECT crm.rescore() (best of 3; target <= 1.5x) | $rescore | $(ratio "$rescore" "$group_by") |
| writing rescore's result alone: $ledger_rows ledger + $event_rows event rows into empty copies | $write_floor | $(ratio "$write_floor" "$group_by") |

| funnel over 1,000,000 history rows | ms |
|---|---:|
| crm.funnel(now() - '90 days') (best of 3; target < 1000 ms, index plan) | $funnel |

Plan of crm.stages_at: $plan
MD
