-- pgTAP: crm.rebuild_stage_history.  The same events loaded one at a time
-- in time order (live traffic) and in a random order in batches (a late,
-- unordered import): after the rebuild the second history is the first,
-- and a rebuild of the first changes nothing.  Manual, forced and first rows
-- are kept; a churn a late order contradicts is dropped.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(14);

DELETE FROM crm.lifecycle_policy;
INSERT INTO crm.lifecycle_policy (mql_min_engagement, mql_min_fit, sql_min_engagement, sql_min_fit, churn_after)
VALUES (50, NULL, 100, NULL, '120 days');
-- decay, so a score can pass a threshold and fall back below it
UPDATE crm.score_group SET half_life = '20 days' WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (name, activity_kind, points) VALUES ('rb visit', 'rb_visit', 30), ('rb demo', 'rb_demo', 45);
INSERT INTO crm.scoring_rule (name, activity_kind, points, "window") VALUES ('rb webinar', 'rb_webinar', 40, '10 days');

-- the events of 40 contacts over 2025, deterministic
SELECT setseed(0.16);
CREATE TEMP TABLE ev AS
WITH c AS (SELECT g AS n FROM generate_series(1, 40) g),
e AS (
	SELECT c.n, 'activity' AS tbl,
		   (ARRAY['rb_visit', 'rb_visit', 'rb_demo', 'rb_webinar', 'page_view', 'meeting_booked'])[1 + floor(random() * 5.3)::int] AS kind,
		   timestamptz '2025-01-15 00:00+00' + random() * interval '300 days' AS at, NULL::text AS status, NULL::timestamptz AS closed
	  FROM c, generate_series(1, 3 + (c.n % 6)) k
	UNION ALL
	SELECT c.n, 'deal', NULL, timestamptz '2025-02-01 00:00+00' + random() * interval '250 days',
		   CASE WHEN c.n % 3 = 0 THEN 'won' WHEN c.n % 3 = 1 THEN 'open' ELSE 'lost' END, NULL
	  FROM c WHERE c.n % 4 = 0 OR c.n % 7 = 0
	UNION ALL
	SELECT c.n, 'order', NULL, timestamptz '2025-02-01 00:00+00' + random() * interval '320 days', NULL, NULL
	  FROM c, generate_series(1, c.n % 3) k WHERE c.n % 5 <> 0)
SELECT row_number() OVER (ORDER BY at, n, tbl) AS seq, n, tbl, kind, at, status,
	   CASE WHEN status IN ('won', 'lost') THEN at + interval '20 days' END AS closed
  FROM e;

-- load the events of contact n as contact base + n, one statement each
CREATE FUNCTION pg_temp.load(base bigint, ordering text, batch int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	INSERT INTO crm.contact (contact_id, email, created_at)
	SELECT base + g, format('rb%s@rb.example', base + g), '2025-01-01 00:00+00' FROM generate_series(1, 40) g;
	FOR r IN EXECUTE format('SELECT array_agg(seq) AS seqs FROM (SELECT seq, (row_number() OVER (ORDER BY %s) - 1) / %s AS b FROM ev) x GROUP BY b ORDER BY b',
							ordering, batch) LOOP
		INSERT INTO crm.activity (contact_id, kind, occurred_at)
		SELECT base + e.n, e.kind, e.at FROM ev e WHERE e.seq = ANY(r.seqs) AND e.tbl = 'activity';
		INSERT INTO crm.deal (contact_id, title, status, created_at, closed_at)
		SELECT base + e.n, 'rb deal', e.status, e.at, e.closed FROM ev e WHERE e.seq = ANY(r.seqs) AND e.tbl = 'deal';
		INSERT INTO crm."order" (contact_id, ordered_at, total)
		SELECT base + e.n, e.at, 10 FROM ev e WHERE e.seq = ANY(r.seqs) AND e.tbl = 'order';
	END LOOP;
END $$;


SELECT pg_temp.load(81000, 'seq', 1);			-- live: one event at a time, in time order
SELECT pg_temp.load(82000, 'random()', 25);		-- an unordered import in batches of 25
SELECT ok((SELECT count(*) FROM crm.stage_history WHERE contact_id BETWEEN 81001 AND 81040 AND to_stage IN ('mql', 'sql', 'opportunity', 'customer')) > 40,
	'the scenario moves contacts through the stages');

SELECT ok(EXISTS (
	(SELECT n, from_stage, to_stage, changed_at, reason FROM crm.stage_history JOIN LATERAL (SELECT contact_id - 81000 AS n) x ON true
	  WHERE contact_id BETWEEN 81001 AND 81040
	 EXCEPT
	 SELECT n, from_stage, to_stage, changed_at, reason FROM crm.stage_history JOIN LATERAL (SELECT contact_id - 82000 AS n) x ON true
	  WHERE contact_id BETWEEN 82001 AND 82040)),
	'before the rebuild, the unordered import''s history differs from live traffic''s');

SELECT is(crm.rebuild_stage_history((SELECT array_agg(g) FROM generate_series(82001, 82040) g)), 40::bigint,
	'rebuild_stage_history rebuilds the 40 contacts');
SELECT results_eq(
	$$SELECT contact_id - 81000, from_stage::text, to_stage::text, changed_at, reason, automatic, forced
		FROM crm.stage_history WHERE contact_id BETWEEN 81001 AND 81040 ORDER BY 1, changed_at, history_id$$,
	$$SELECT contact_id - 82000, from_stage::text, to_stage::text, changed_at, reason, automatic, forced
		FROM crm.stage_history WHERE contact_id BETWEEN 82001 AND 82040 ORDER BY 1, changed_at, history_id$$,
	'after the rebuild, the unordered import has the history of live traffic (stages, times, reasons)');
SELECT results_eq(
	$$SELECT contact_id - 81000, stage::text FROM crm.contact WHERE contact_id BETWEEN 81001 AND 81040 ORDER BY 1$$,
	$$SELECT contact_id - 82000, stage::text FROM crm.contact WHERE contact_id BETWEEN 82001 AND 82040 ORDER BY 1$$,
	'and the same stages');

-- live traffic's history is what the rebuild computes: rebuilding it changes nothing
CREATE TEMP TABLE before AS
SELECT contact_id, from_stage, to_stage, changed_at, reason, automatic, forced FROM crm.stage_history
 WHERE contact_id BETWEEN 81001 AND 81040;
SELECT is(crm.rebuild_stage_history((SELECT array_agg(g) FROM generate_series(81001, 81040) g)), 40::bigint,
	'rebuild of the in-order contacts');
SELECT set_eq($$SELECT * FROM before$$,
	$$SELECT contact_id, from_stage, to_stage, changed_at, reason, automatic, forced FROM crm.stage_history
		WHERE contact_id BETWEEN 81001 AND 81040$$,
	'rebuilding a history written in time order gives it back unchanged');
SELECT is_empty($$SELECT * FROM crm.stage_history_mismatches(clock_timestamp()) WHERE contact_id BETWEEN 81001 AND 82040$$,
	'every rebuilt stage is the last row of its history');

-- manual and forced moves are kept, and the rules go on from them
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (83001, 'rb-m@rb.example', '2025-01-01 00:00+00');
DO $$ BEGIN
	PERFORM crm.set_stage(83001, 'disqualified', 'rb: not a fit', at => '2025-03-01 00:00+00');
	PERFORM crm.set_stage(83001, 'lead', 'rb: back on purpose', force => true, at => '2025-05-01 00:00+00');
END $$;
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES
	(83001, 'meeting_booked', '2025-06-01 00:00+00'), (83001, 'meeting_booked', '2025-02-01 00:00+00');
DO $$ BEGIN PERFORM crm.rebuild_stage_history(ARRAY[83001::bigint]); END $$;
SELECT results_eq($$SELECT to_stage::text, changed_at, automatic, forced FROM crm.stage_history WHERE contact_id = 83001 ORDER BY changed_at, history_id$$,
	$$VALUES ('lead', '2025-01-01 00:00+00'::timestamptz, false, false),
			 ('sql', '2025-02-01 00:00+00', true, false),
			 ('disqualified', '2025-03-01 00:00+00', false, false),
			 ('lead', '2025-05-01 00:00+00', false, true),
			 ('sql', '2025-06-01 00:00+00', true, false)$$,
	'manual and forced moves kept; the acceptance before them and the one after the forced move rebuilt around them');

-- a detected churn stays, unless a late order falls in its window
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (83002, 'rb-c@rb.example', '2025-01-01 00:00+00'),
	(83003, 'rb-d@rb.example', '2025-01-01 00:00+00');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (83002, '2025-02-01 00:00+00', 5), (83003, '2025-02-01 00:00+00', 5);
DO $$ BEGIN PERFORM crm.detect_churn('2025-09-01 00:00+00'); END $$;
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (83003, '2025-05-01 00:00+00', 5);
SELECT is((SELECT stage::text FROM crm.contact WHERE contact_id = 83003), 'customer', 'the late order revived the churned customer');
DO $$ BEGIN PERFORM crm.rebuild_stage_history(ARRAY[83002, 83003]::bigint[]); END $$;
SELECT results_eq($$SELECT contact_id, to_stage::text, changed_at FROM crm.stage_history WHERE contact_id IN (83002, 83003) ORDER BY 1, changed_at, history_id$$,
	$$VALUES (83002::bigint, 'lead', '2025-01-01 00:00+00'::timestamptz), (83002, 'customer', '2025-02-01 00:00+00'),
			 (83002, 'churned', timestamptz '2025-02-01 00:00+00' + interval '120 days'),
			 (83003, 'lead', '2025-01-01 00:00+00'), (83003, 'customer', '2025-02-01 00:00+00')$$,
	'a churn still valid kept; one a late order contradicts dropped (with its revival)');
SELECT is((SELECT stage::text FROM crm.contact WHERE contact_id = 83003), 'customer', 'the contact ends at its history''s last stage');

-- every contact, by default; unknown ids are no contacts
SELECT ok(crm.rebuild_stage_history() >= 83, 'rebuild_stage_history() rebuilds every contact');
SELECT is(crm.rebuild_stage_history(ARRAY[99999999]::bigint[]), 0::bigint, 'an id that is no contact: nothing rebuilt');

SELECT * FROM finish();
ROLLBACK;
