-- pgTAP: lifecycle history in event time.  Each transition is dated by the
-- event that caused it (changed_at), the wall clock of the write kept in
-- recorded_at; times never in the future, never before the previous one.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(26);

DELETE FROM crm.lifecycle_policy;
INSERT INTO crm.lifecycle_policy (mql_min_engagement, mql_min_fit, sql_min_engagement, sql_min_fit, churn_after)
VALUES (50, NULL, 100, NULL, '180 days');
UPDATE crm.score_group SET half_life = NULL WHERE score_group = 'engagement';
INSERT INTO crm.scoring_rule (name, activity_kind, points) VALUES ('et visit', 'et_visit', 30);

CREATE TEMP VIEW h AS
SELECT contact_id, to_stage::text AS stage, changed_at, recorded_at, reason
  FROM crm.stage_history ORDER BY contact_id, changed_at, history_id;

-- a contact and its activities, one statement each, in time order (as live traffic)
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7301, 'et1@et.example', '2025-01-01 09:00+00');
SELECT is((SELECT h.changed_at FROM crm.stage_history h WHERE h.contact_id = 7301 AND h.from_stage IS NULL), '2025-01-01 09:00+00'::timestamptz,
	'a new contact''s first stage at its created_at');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7301, 'et_visit', '2025-02-01 10:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7301, 'et_visit', '2025-02-03 10:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7301, 'et_visit', '2025-02-05 10:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7301, 'et_visit', '2025-02-07 10:00+00');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7301 AND stage = 'mql'), '2025-02-03 10:00+00'::timestamptz,
	'MQL at the activity that took the score over the MQL threshold');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7301 AND stage = 'sql'), '2025-02-07 10:00+00'::timestamptz,
	'SQL at the activity that took the score over the SQL threshold');
SELECT ok((SELECT bool_and(recorded_at >= now() - interval '1 hour' AND recorded_at <= clock_timestamp()) FROM h WHERE contact_id = 7301),
	'recorded_at is the wall clock of the write');

-- with decay, an old history loaded today is scored as of its own time
UPDATE crm.score_group SET half_life = '30 days' WHERE score_group = 'engagement';
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7302, 'et2@et.example', '2024-03-01 00:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7302, 'et_visit', '2024-03-10 10:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7302, 'et_visit', '2024-03-10 11:00+00');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7302 AND stage = 'mql'), '2024-03-10 11:00+00'::timestamptz,
	'with a half-life: promoted as of the activity''s time, although today''s decayed score is below the threshold');
UPDATE crm.score_group SET half_life = NULL WHERE score_group = 'engagement';

-- sales acceptance, orders, deals
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7303, 'et3@et.example', '2025-01-01 00:00+00'),
	(7304, 'et4@et.example', '2025-01-01 00:00+00'), (7305, 'et5@et.example', '2025-01-01 00:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES
	(7303, 'page_view', '2025-03-02 08:00+00'), (7303, 'meeting_booked', '2025-03-01 08:00+00');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7303 AND stage = 'sql'), '2025-03-01 08:00+00'::timestamptz,
	'SQL by sales acceptance at the accepting activity''s time');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES
	(7304, '2025-04-20 12:00+00', 30), (7304, '2025-04-10 12:00+00', 20);
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7304 AND stage = 'customer'), '2025-04-10 12:00+00'::timestamptz,
	'customer at the first order''s ordered_at');
INSERT INTO crm.deal (contact_id, title, created_at) VALUES (7305, 'et deal', '2025-05-01 00:00+00');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7305 AND stage = 'opportunity'), '2025-05-01 00:00+00'::timestamptz,
	'opportunity at the deal''s created_at');
INSERT INTO crm.deal (contact_id, title, status, created_at, closed_at)
VALUES (7305, 'et deal 2', 'won', '2025-05-02 00:00+00', '2025-06-15 00:00+00');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7305 AND stage = 'customer'), '2025-06-15 00:00+00'::timestamptz,
	'customer at the won deal''s closed_at');

-- churn at the end of the inactivity window, not when detect_churn ran
SELECT ok(crm.detect_churn('2026-01-01 00:00+00') >= 2, 'detect_churn churns the customers without a purchase in 180 days');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7304 AND stage = 'churned'), '2025-04-20 12:00+00'::timestamptz + interval '180 days',
	'churned at the last order + churn_after');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7305 AND stage = 'churned'), '2025-06-15 00:00+00'::timestamptz + interval '180 days',
	'churned at the last won deal + churn_after');
-- a revival by a later order
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (7304, '2026-02-01 00:00+00', 5);
SELECT is((SELECT max(changed_at) FROM h WHERE contact_id = 7304 AND stage = 'customer'), '2026-02-01 00:00+00'::timestamptz,
	'revived at the order''s time');

-- never before the previous transition, never in the future
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7306, 'et6@et.example', '2025-06-01 00:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7306, 'meeting_booked', '2025-06-10 00:00+00');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (7306, '2025-06-05 00:00+00', 10);
SELECT results_eq($$SELECT stage, changed_at FROM h WHERE contact_id = 7306$$,
	$$VALUES ('lead', '2025-06-01 00:00+00'::timestamptz), ('customer', '2025-06-05 00:00+00')$$,
	'an order dated before the previous transition: the history rebuilt as if in time order (customer at the order, the later acceptance no move)');
INSERT INTO crm.contact (contact_id, email) VALUES (7307, 'et7@et.example');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7307, 'meeting_booked', now() + interval '30 days');
SELECT ok((SELECT changed_at <= clock_timestamp() FROM h WHERE contact_id = 7307 AND stage = 'sql'),
	'an event in the future: the move at the clock, not in the future');

-- manual moves
SELECT is(crm.set_stage(7306, 'evangelist', 'et referral', at => '2025-07-01 00:00+00')::text, 'evangelist', 'set_stage with at');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7306 AND stage = 'evangelist'), '2025-07-01 00:00+00'::timestamptz,
	'set_stage(..., at => ...) dates the move');
SELECT throws_ok($$SELECT crm.set_stage(7306, 'churned', 'et', at => '2025-06-20 00:00+00')$$, '22023', NULL,
	'set_stage before the last transition: 22023');
SELECT throws_ok($$SELECT crm.set_stage(7306, 'churned', 'et', at => now() + interval '1 day')$$, '22023', NULL,
	'set_stage in the future: 22023');
SELECT is(crm.set_stage(7303, 'opportunity', 'et')::text, 'opportunity', 'set_stage without at');
SELECT ok((SELECT changed_at >= now() FROM h WHERE contact_id = 7303 AND stage = 'opportunity'), 'set_stage without at: the clock');

-- a sorted batch (one multi-row INSERT, as COPY) gives the history of the same events one at a time
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7311, 'et11@et.example', '2025-01-01 00:00+00'),
	(7312, 'et12@et.example', '2025-01-01 00:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7311, 'meeting_booked', '2025-02-01 00:00+00');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (7311, '2025-03-01 00:00+00', 1);
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (7311, '2025-04-01 00:00+00', 1);
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7312, 'meeting_booked', '2025-02-01 00:00+00');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (7312, '2025-03-01 00:00+00', 1), (7312, '2025-04-01 00:00+00', 1);
SELECT results_eq($$SELECT stage, changed_at FROM h WHERE contact_id = 7311$$, $$SELECT stage, changed_at FROM h WHERE contact_id = 7312$$,
	'acceptance and orders: a batch gives the history of one event at a time');
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7313, 'et13@et.example', '2025-01-01 00:00+00');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (7313, 'et_visit', '2025-02-01 10:00+00'),
	(7313, 'et_visit', '2025-02-03 10:00+00'), (7313, 'et_visit', '2025-02-05 10:00+00');
SELECT is((SELECT changed_at FROM h WHERE contact_id = 7313 AND stage = 'mql'), '2025-02-03 10:00+00'::timestamptz,
	'score crossing inside a batch: MQL at the crossing activity');

-- funnel analytics in event time: cohorts by the month contacts became
-- leads, and times in stage in days
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (7321, 'et21@et.example', '2019-01-05 00:00+00'),
	(7322, 'et22@et.example', '2019-01-05 00:00+00'), (7323, 'et23@et.example', '2019-01-05 00:00+00');
INSERT INTO crm.contact (contact_id, email, stage, created_at) VALUES (7324, 'et24@et.example', 'subscriber', '2019-01-20 00:00+00');
DO $$ BEGIN
	PERFORM crm.set_stage(7321, 'mql', 'et', at => '2019-01-15 00:00+00');
	PERFORM crm.set_stage(7321, 'sql', 'et', at => '2019-03-06 00:00+00');
	PERFORM crm.set_stage(7321, 'customer', 'et', at => '2019-06-24 00:00+00');
	PERFORM crm.set_stage(7322, 'mql', 'et', at => '2019-02-14 00:00+00');
	PERFORM crm.set_stage(7324, 'lead', 'et', at => '2019-02-03 00:00+00');
END $$;
SELECT results_eq($$SELECT cohort, leads, mql_30d, mql_90d, mql_180d, sql_30d, sql_90d, sql_180d, customer_30d, customer_90d, customer_180d
					  FROM crm.lead_cohorts WHERE cohort < '2020-01-01' ORDER BY cohort$$,
	$$VALUES ('2019-01-01'::date, 3::bigint, 0.3333, 0.6667, 0.6667, 0.0000, 0.3333, 0.3333, 0.0000, 0.0000, 0.3333),
			 ('2019-02-01', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)$$,
	'lead_cohorts: leads by month and the share at mql, sql, customer within 30, 90, 180 days');
SELECT results_eq($$SELECT median_time_in_stage, median_days FROM crm.stage_conversion('2019-01-01', '2019-12-31') WHERE stage = 'sql'$$,
	$$VALUES ('3 mons 20 days'::interval, 110.0)$$,
	'stage_conversion: 110 days in sql, justified and as a number of days');
SELECT results_eq($$SELECT stage, entered, median_days FROM crm.stage_conversion('2019-01-01', '2019-12-31') WHERE stage IN ('lead', 'mql')$$,
	$$VALUES ('lead'::crm.stage, 4::bigint, 25.0), ('mql', 2, 50.0)$$,
	'stage_conversion: entries and median days per stage');

SELECT * FROM finish();
ROLLBACK;
