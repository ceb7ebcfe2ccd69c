-- pgTAP: the analyst's analytics (src/analyst.sql).  On a small demo (2,000
-- contacts) plus the real CDNOW orders (so that the CLV models converge), as
-- crm_analyst after crm.setup_roles(): every analyst view reads (no 42501),
-- its figures equal those of the admin's functions on the same data (run
-- with TimeZone = 'UTC', the views' days) where no cell is suppressed, and
-- a cell of fewer than 5 contacts does not appear.
-- The data is loaded into a database of its own, dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT current_database() AS home_db \gset
DROP DATABASE IF EXISTS crm_analyst_test;
CREATE DATABASE crm_analyst_test;
\c crm_analyst_test
\o /dev/null
SET client_min_messages = error;
CREATE EXTENSION pgtap;
CREATE EXTENSION crm;
\ir ../demo/rules.sql
\set seed 7
\set contacts 2000
\set activities 10000
\ir ../demo/generate.sql
\ir ../demo/load_cdnow.sql
SELECT * FROM crm.setup_roles();
DROP ROLE IF EXISTS crm_analyst_t;
CREATE ROLE crm_analyst_t NOLOGIN IN ROLE crm_analyst;
-- a campaign with targets (and a hold-out group), one of 3 targets only
SELECT crm.create_segment('analyst granted', $$country IN ('DE', 'FR', 'ES', 'US')$$);
SELECT crm.refresh_segment('analyst granted');
SELECT crm.create_campaign('analyst big', 'analyst granted', holdout_share => 0.2, cost => 100);
SELECT crm.campaign_targets(crm.create_campaign('analyst small', 'analyst granted'));
DELETE FROM crm.campaign_target t USING crm.campaign k
 WHERE k.campaign_id = t.campaign_id AND k.name = 'analyst small'
   AND t.contact_id NOT IN (SELECT t2.contact_id FROM crm.campaign_target t2 WHERE t2.campaign_id = k.campaign_id
							 ORDER BY t2.contact_id LIMIT 3);
SELECT crm.campaign_targets(k.campaign_id) FROM crm.campaign k WHERE k.name = 'analyst big';
-- 3 contacts alone in January 1990: their first orders, a stage change,
-- an open deal in a pipeline stage of their own
CREATE TEMP TABLE lonely AS
SELECT c.contact_id FROM crm.contact c ORDER BY c.contact_id DESC LIMIT 3;
INSERT INTO crm."order" (contact_id, ordered_at, status, total)
SELECT l.contact_id, timestamptz '1990-01-15 12:00+00', 'paid', 10 FROM lonely l;
INSERT INTO crm.stage_history (contact_id, from_stage, to_stage, changed_at)
SELECT l.contact_id, NULL, 'subscriber', timestamptz '1990-01-15 12:00+00' FROM lonely l;
INSERT INTO crm.deal (contact_id, title, pipeline_stage, amount, probability, status)
SELECT l.contact_id, 'lonely deal', 'lonely stage', 10, 0.5, 'open' FROM lonely l;
\o

BEGIN;
SELECT plan(26);

-- what the analyst reads, kept for the comparisons below
SET ROLE crm_analyst_t;
SELECT lives_ok(format('CREATE TEMP TABLE a_%s AS SELECT * FROM crm.analyst_%s', v, v),
				format('crm_analyst reads crm.analyst_%s', v))
  FROM unnest(ARRAY['funnel', 'stage_conversion', 'retention', 'churn', 'rfm', 'clv_model', 'clv', 'campaign',
					'pipeline']) v;
SELECT throws_ok('SELECT * FROM crm.funnel()', '42501', NULL, 'crm_analyst still cannot run crm.funnel on the tables');
RESET ROLE;
SET TimeZone = 'UTC';
SET client_min_messages = error;

-- funnel: the months since 2025 and one of CDNOW's, against crm.funnel at
-- each month end (now for the current month)
SELECT is((SELECT count(*) FROM
			(SELECT month, stage, contacts, share FROM a_funnel WHERE month >= '2025-01-01' OR month = '1997-06-01') v
			FULL JOIN (SELECT m::date AS month, f.stage, f.contacts, f.share
						 FROM generate_series(timestamp '2025-01-01', date_trunc('month', now() AT TIME ZONE 'UTC'),
											  interval '1 month') m
						CROSS JOIN LATERAL crm.funnel(least((m + interval '1 month') AT TIME ZONE 'UTC', now())) f
						WHERE f.contacts >= 5
					   UNION ALL
					   SELECT '1997-06-01', f.stage, f.contacts, f.share FROM crm.funnel('1997-07-01 00:00+00') f
						WHERE f.contacts >= 5) x
			  ON x.month = v.month AND x.stage = v.stage
		   WHERE (v.contacts, v.share) IS DISTINCT FROM (x.contacts, x.share)),
		  0::bigint, 'analyst_funnel: every stage of 5 contacts or more at each month end equals crm.funnel');
SELECT is((SELECT sum(contacts) FROM a_funnel WHERE month = date_trunc('month', now() AT TIME ZONE 'UTC')::date),
		  (SELECT sum(contacts) FROM crm.funnel(now()))::numeric,
		  'analyst_funnel: this month''s contacts add up to crm.funnel(now())');

-- stage conversion: the last three months against crm.stage_conversion
SELECT is((SELECT count(*) FROM
			(SELECT * FROM a_stage_conversion WHERE month >= (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months')::date) v
			FULL JOIN (SELECT m::date AS month, f.*
						 FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months',
											  date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m
						CROSS JOIN LATERAL crm.stage_conversion(m AT TIME ZONE 'UTC',
																least((m + interval '1 month') AT TIME ZONE 'UTC', now())) f
						WHERE f.entered >= 5) x
			  ON x.month = v.month AND x.stage = v.stage
		   WHERE (v.entered, v.moved_on, v.conversion, v.median_time_in_stage, v.p90_time_in_stage)
				 IS DISTINCT FROM (x.entered, x.moved_on, x.conversion, x.median_time_in_stage, x.p90_time_in_stage)),
		  0::bigint, 'analyst_stage_conversion: the last three months equal crm.stage_conversion per month');
SELECT cmp_ok((SELECT count(*) FROM a_stage_conversion), '>', 0::bigint, 'analyst_stage_conversion has rows');

-- retention and churn, monthly
SELECT set_eq('SELECT cohort_month, months_since, customers, active, retention FROM a_retention',
			  $$SELECT (cohort AT TIME ZONE 'UTC')::date, periods_since, customers, active, retention
				  FROM crm.retention_cohorts('1 month') WHERE active >= 5$$,
			  'analyst_retention equals crm.retention_cohorts(''1 month'') for 5 active customers or more');
SELECT set_eq('SELECT month, active, churned, churn_rate FROM a_churn',
			  $$SELECT (period_start AT TIME ZONE 'UTC')::date, active, churned, churn_rate
				  FROM crm.churn_rate('1 month', '1990-01-01 00:00+00', date_trunc('month', now())) WHERE active >= 5$$,
			  'analyst_churn equals crm.churn_rate(''1 month'', ...) for 5 customers or more');
SELECT cmp_ok((SELECT count(*) FROM a_churn WHERE month >= '1997-01-01' AND month < '1998-06-01'), '=', 17::bigint,
			  'analyst_churn: every CDNOW month with a next month');

-- RFM segments
SELECT set_eq('SELECT segment, contacts, monetary FROM a_rfm',
			  'SELECT segment, count(*), sum(monetary) FROM crm.rfm_scores() GROUP BY segment HAVING count(*) >= 5',
			  'analyst_rfm: segment sizes and spend equal crm.rfm_scores()');

-- CLV: the model the admin fits on the same summary, and its predictions
CREATE TEMP TABLE s AS
SELECT (x.s).* FROM (SELECT crm.btyd_summary(o.ordered_at, o.total, now()) AS s FROM crm."order" o
					  WHERE o.status <> ALL (ARRAY['cancelled', 'refunded']) GROUP BY o.contact_id) x;
CREATE TEMP TABLE m AS
SELECT crm.bgnbd_fit(frequency, recency, t) AS bgnbd,
	   crm.gammagamma_fit(frequency, monetary_value) FILTER (WHERE monetary_value > 0) AS gammagamma,
	   count(*) AS customers
  FROM s;
SELECT is((SELECT (contacts, bgnbd::text, gammagamma::text, r, q) FROM a_clv_model),
		  (SELECT (customers, bgnbd::text, gammagamma::text, (crm.bgnbd_params(bgnbd)).r, (crm.gammagamma_params(gammagamma)).q) FROM m),
		  'analyst_clv_model: the admin''s BG/NBD and Gamma-Gamma fits, parameters as float8');
SELECT ok((SELECT bgnbd_converged AND gammagamma_converged FROM a_clv_model), 'analyst_clv_model: both fits converged');
SELECT is((SELECT sum(contacts) FROM a_clv), (SELECT customers FROM m)::numeric, 'analyst_clv: the deciles hold every customer');
SELECT is((SELECT round(sum(total_clv)::numeric, 2) FROM a_clv),
		  (SELECT round(sum(CASE WHEN s.frequency > 0 AND s.monetary_value = 0 THEN 0
								 ELSE crm.clv(m.bgnbd, m.gammagamma, s.frequency, s.recency, s.t, s.monetary_value,
											  12, 0.01, 365 / 12.0) END)::numeric, 2) FROM s, m),
		  'analyst_clv: the deciles'' CLV adds up to crm.clv over every customer');

-- campaigns
SELECT set_eq('SELECT campaign, targeted, held_out, responded, response_rate, holdout_response_rate, cost FROM a_campaign',
			  $$SELECT r.campaign, r.targeted, r.held_out, r.responded, r.response_rate, r.holdout_response_rate, r.cost
				  FROM crm.campaign k, crm.campaign_report(k.campaign_id) r WHERE k.name = 'analyst big'$$,
			  'analyst_campaign: the big campaign equals crm.campaign_report');

-- pipeline
SELECT set_eq('SELECT pipeline_stage, deals, amount, weighted_amount FROM a_pipeline',
			  $$SELECT pipeline_stage, deals, amount, weighted_amount FROM crm.pipeline WHERE pipeline_stage <> 'lonely stage'$$,
			  'analyst_pipeline equals crm.pipeline');

-- the 3 contacts of January 1990 appear nowhere
SELECT is((SELECT count(*) FROM a_funnel WHERE month < '1990-06-01')
		  + (SELECT count(*) FROM a_stage_conversion WHERE month < '1990-06-01')
		  + (SELECT count(*) FROM a_retention WHERE cohort_month < '1990-06-01')
		  + (SELECT count(*) FROM a_churn WHERE month < '1990-06-01')
		  + (SELECT count(*) FROM a_pipeline WHERE pipeline_stage = 'lonely stage')
		  + (SELECT count(*) FROM a_campaign WHERE campaign = 'analyst small'),
		  0::bigint, 'a month, cohort, pipeline stage or campaign of 3 contacts does not appear');
SELECT is((SELECT count(*) FROM crm.funnel('1990-02-01 00:00+00') WHERE contacts > 0), 1::bigint,
		  '(while the admin''s funnel of January 1990 shows them)');
RESET TimeZone;
SELECT * FROM finish();
ROLLBACK;

\c :home_db
SET client_min_messages = warning;
DROP DATABASE crm_analyst_test;
DROP ROLE crm_analyst_t;
