-- pgTAP: schema crm_bi (src/bi_views.sql), the views BI tools read.  On a
-- small demo (2,000 contacts of five reps) plus the real CDNOW orders (so
-- that the CLV models converge), after crm.setup_roles():
--   every view has plain column types only, is security_invoker and says
--   its row grain in its COMMENT;
--   a sales rep reads its own contacts' rows only (and all of them),
--   marketing and admin every row; the analyst is refused (42501) on every
--   person view and reads every aggregate view;
--   the values agree with the crm tables and functions;
--   the README's dashboard queries ("BI tools") run as the roles it names.
-- The data is loaded into a database of its own, dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT current_database() AS home_db \gset
DROP DATABASE IF EXISTS crm_bi_test;
CREATE DATABASE crm_bi_test;
\c crm_bi_test
\o /dev/null
SET client_min_messages = error;
CREATE EXTENSION pgtap;
CREATE EXTENSION crm;
\ir ../demo/rules.sql
\set seed 11
\set contacts 2000
\set activities 10000
\ir ../demo/generate.sql
\ir ../demo/load_cdnow.sql
\o

BEGIN;
SELECT plan(52);

\o /dev/null
SELECT * FROM crm.setup_roles();
CREATE ROLE sales_1 NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_bi_mkt NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_bi_ana NOLOGIN IN ROLE crm_analyst;
CREATE ROLE crm_bi_admin NOLOGIN IN ROLE crm_admin;
-- a segment with members and a campaign with targets and a hold-out group
SELECT crm.create_segment('bi europe', $$country IN ('DE', 'FR', 'ES', 'GB')$$);
SELECT crm.refresh_segment('bi europe');
SELECT crm.campaign_targets(crm.create_campaign('bi spring', 'bi europe', holdout_share => 0.2, cost => 100));
\o

-- the views, by family: each view of crm_bi is classified here
CREATE TEMP TABLE bi_view (name text PRIMARY KEY, family text NOT NULL, sales boolean NOT NULL);
INSERT INTO bi_view VALUES
	('contacts', 'person', true), ('activity_daily', 'person', true), ('orders', 'person', true),
	('deals', 'person', true), ('stage_transitions', 'person', true), ('customer_clv', 'person', true),
	('scores', 'person', true),
	('segment_membership', 'person', false), ('campaign_results', 'person', false),
	('funnel_monthly', 'aggregate', true), ('stage_conversion_monthly', 'aggregate', true),
	('cohort_retention', 'aggregate', true), ('churn_monthly', 'aggregate', true),
	('rfm_segments', 'aggregate', true), ('clv_model', 'aggregate', true), ('clv_distribution', 'aggregate', true),
	('campaign_lift', 'aggregate', true), ('pipeline', 'aggregate', true),
	('activity_totals_daily', 'aggregate', true), ('order_totals_monthly', 'aggregate', true),
	('deal_totals_monthly', 'aggregate', true);
GRANT SELECT ON bi_view TO PUBLIC;

SELECT has_schema('crm_bi', 'schema crm_bi exists');
SELECT ok(EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
				   WHERE d.classid = 'pg_namespace'::regclass AND d.objid = 'crm_bi'::regnamespace
					 AND d.deptype = 'e' AND e.extname = 'crm'),
		  'schema crm_bi is a member of the extension (DROP EXTENSION removes it)');
SELECT set_eq($$SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = 'crm_bi'::regnamespace$$,
			  'SELECT name FROM bi_view', 'crm_bi holds exactly the views classified here, nothing else');

-- plain types: what every driver maps to a standard type
SELECT is_empty($$
	SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	  JOIN pg_type t ON t.oid = a.atttypid
	 WHERE c.relnamespace = 'crm_bi'::regnamespace
	   AND (t.typnamespace <> 'pg_catalog'::regnamespace
			OR format_type(a.atttypid, NULL) NOT IN ('boolean', 'smallint', 'integer', 'bigint', 'real',
				'double precision', 'numeric', 'text', 'character varying', 'date',
				'timestamp with time zone', 'timestamp without time zone'))$$,
	'every crm_bi column has a plain type: no crm type, jsonb, interval, array, record or reg* type');
SELECT is_empty($$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'crm_bi'::regnamespace
				   AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)$$,
				'every crm_bi view is security_invoker');
SELECT is_empty($$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'crm_bi'::regnamespace
				   AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE 'one row%'$$,
				'every crm_bi view says its row grain first in its COMMENT (one row per ...)');
SELECT is_empty($$SELECT c.relname || '.' || a.attname FROM pg_class c
				   JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
				  WHERE c.relnamespace = 'crm_bi'::regnamespace
					AND coalesce(btrim(col_description(c.oid, a.attnum)), '') = ''$$,
				'every crm_bi column has a COMMENT');

-- privileges: SELECT only, to the roles that may read what is under it
SELECT is_empty($$
	SELECT v.name || ' ' || r.r FROM bi_view v
	 CROSS JOIN (VALUES ('crm_admin'), ('crm_marketing'), ('crm_sales'), ('crm_analyst')) r(r)
	 WHERE has_table_privilege(r.r, 'crm_bi.' || v.name, 'SELECT')
		   IS DISTINCT FROM (r.r IN ('crm_admin', 'crm_marketing')
							 OR (r.r = 'crm_sales' AND v.sales)
							 OR (r.r = 'crm_analyst' AND v.family = 'aggregate'))
		OR has_table_privilege(r.r, 'crm_bi.' || v.name, 'INSERT, UPDATE, DELETE')$$,
	'SELECT and nothing else: person views to admin, marketing and sales (segments and campaigns not sales), aggregate views to every role');

-- Each role reads what it is granted; a rep's person views hold exactly the
-- rows of its own contacts.  One line per problem.
CREATE FUNCTION pg_temp.bi_problems(member name) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	v record;
	seen bigint;
	expected bigint;
	foreign_rows bigint;
BEGIN
	-- a rep: the contacts whose owner is a role it belongs to; marketing and
	-- admin: all of them
	CREATE TEMP TABLE IF NOT EXISTS may_see (id bigint PRIMARY KEY);
	TRUNCATE may_see;
	INSERT INTO may_see
	SELECT c.contact_id FROM crm.contact c
	 WHERE pg_has_role(member, 'crm_marketing', 'MEMBER') OR pg_has_role(member, 'crm_admin', 'MEMBER')
		OR c.owner IN (SELECT r.rolname FROM pg_roles r WHERE pg_has_role(member, r.oid, 'MEMBER'));
	FOR v IN SELECT b.name, b.family, has_table_privilege(member, 'crm_bi.' || b.name, 'SELECT') AS granted,
					EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = ('crm_bi.' || b.name)::regclass
							   AND a.attname = 'contact_id') AS per_contact
			   FROM bi_view b ORDER BY b.name LOOP
		CONTINUE WHEN NOT v.granted;
		BEGIN
			EXECUTE format('SET LOCAL ROLE %I', member);
			IF v.per_contact THEN
				EXECUTE format('CREATE TEMP TABLE seen_ids AS SELECT contact_id FROM crm_bi.%I', v.name);
			ELSE
				EXECUTE format('SELECT count(*) FROM (SELECT * FROM crm_bi.%I LIMIT 10) x', v.name) INTO seen;
			END IF;
			RESET ROLE;
		EXCEPTION WHEN OTHERS THEN
			RESET ROLE;
			RETURN NEXT format('%s: %s (%s)', v.name, SQLERRM, SQLSTATE);
			CONTINUE;
		END;
		CONTINUE WHEN NOT v.per_contact;
		-- the rows of the contacts the role may see
		EXECUTE format('SELECT count(*) FROM crm_bi.%I x WHERE x.contact_id IN (SELECT id FROM may_see)', v.name)
		   INTO expected;
		SELECT count(*), count(*) FILTER (WHERE s.contact_id NOT IN (SELECT id FROM may_see))
		  INTO seen, foreign_rows FROM seen_ids s;
		DROP TABLE seen_ids;
		IF foreign_rows > 0 THEN
			RETURN NEXT format('%s: %s rows of contacts %s may not see', v.name, foreign_rows, member);
		ELSIF seen <> expected THEN
			RETURN NEXT format('%s: %s rows seen, %s expected', v.name, seen, expected);
		ELSIF seen = 0 THEN
			RETURN NEXT format('%s: no rows seen', v.name);
		END IF;
	END LOOP;
END $$;
SELECT is(ARRAY(SELECT pg_temp.bi_problems('sales_1')), '{}'::text[],
		  'sales_1 (crm_sales) reads every view granted to it, the person views with exactly its own contacts'' rows');
SELECT is(ARRAY(SELECT pg_temp.bi_problems('crm_bi_mkt')), '{}'::text[],
		  'crm_marketing reads every crm_bi view, every row');
SELECT is(ARRAY(SELECT pg_temp.bi_problems('crm_bi_admin')), '{}'::text[],
		  'crm_admin reads every crm_bi view, every row');
SELECT is(ARRAY(SELECT pg_temp.bi_problems('crm_bi_ana')), '{}'::text[],
		  'crm_analyst reads every aggregate view');
SELECT cmp_ok((SELECT count(*) FROM crm.contact WHERE owner = 'sales_1'), '<',
			  (SELECT count(*) FROM crm.contact) / 4, '(sales_1 owns a small part of the contacts)');

-- the analyst is refused on every person view, the rep on segments and campaigns
SET ROLE crm_bi_ana;
SELECT throws_ok(format('SELECT * FROM crm_bi.%I LIMIT 1', name), '42501', NULL,
				 format('crm_analyst is refused on crm_bi.%s (42501)', name))
  FROM bi_view WHERE family = 'person' ORDER BY name;
RESET ROLE;
SET ROLE sales_1;
SELECT throws_ok(format('SELECT * FROM crm_bi.%I LIMIT 1', name), '42501', NULL,
				 format('crm_sales is refused on crm_bi.%s (42501)', name))
  FROM bi_view WHERE NOT sales ORDER BY name;
RESET ROLE;

-- the values agree with the tables and functions
SELECT is(ARRAY(SELECT DISTINCT ON (to_stage_rank) to_stage FROM crm_bi.stage_transitions ORDER BY to_stage_rank),
		  ARRAY(SELECT x.s::text FROM (SELECT DISTINCT to_stage FROM crm.stage_history) x(s) ORDER BY x.s),
		  'stage_rank sorts the stages in the lifecycle order of crm.stage');
SELECT is_empty($$SELECT t.stage, t.rank FROM
					(SELECT to_stage, to_stage_rank FROM crm_bi.stage_transitions
					 UNION SELECT from_stage, from_stage_rank FROM crm_bi.stage_transitions WHERE from_stage IS NOT NULL
					 UNION SELECT stage, stage_rank FROM crm_bi.contacts) t(stage, rank)
				   LEFT JOIN (VALUES ('subscriber', 1), ('lead', 2), ('mql', 3), ('sql', 4), ('opportunity', 5),
									 ('customer', 6), ('evangelist', 7), ('disqualified', 8), ('churned', 9)) x(stage, rank)
					 USING (stage, rank)
				  WHERE x.rank IS NULL$$,
				'stage ranks: subscriber 1, lead 2, mql 3, sql 4, opportunity 5, customer 6, evangelist 7, disqualified 8, churned 9');
SELECT is_empty($$SELECT b.contact_id FROM crm_bi.contacts b FULL JOIN crm.contact c USING (contact_id)
				   WHERE b.email IS DISTINCT FROM c.email::text
					  OR b.email_domain IS DISTINCT FROM split_part(c.email::text, '@', 2)
					  OR b.stage IS DISTINCT FROM c.stage::text OR b.owner IS DISTINCT FROM c.owner$$,
				'contacts: one row per contact, e-mail as text, its domain, stage as text');
SELECT is_empty($$SELECT b.contact_id FROM crm_bi.contacts b FULL JOIN crm.rfm_scores() s USING (contact_id)
				   WHERE (b.rfm IS NOT NULL OR s.contact_id IS NOT NULL)
				   AND (b.rfm IS DISTINCT FROM s.rfm::text OR b.rfm_r IS DISTINCT FROM crm.r(s.rfm)
						OR b.rfm_f IS DISTINCT FROM crm.f(s.rfm) OR b.rfm_m IS DISTINCT FROM crm.m(s.rfm)
						OR b.rfm <> b.rfm_r || '-' || b.rfm_f || '-' || b.rfm_m
						OR b.rfm_segment IS DISTINCT FROM s.segment)$$,
				'contacts: the RFM cell of crm.rfm_scores() as text and r, f, m integers, for exactly its customers');
SELECT is((SELECT (count(*), sum(activities), min(first_at), max(last_at)) FROM crm_bi.activity_daily),
		  (SELECT (count(DISTINCT (contact_id, (occurred_at AT TIME ZONE 'UTC')::date, kind)), count(*)::numeric,
				   min(occurred_at), max(occurred_at)) FROM crm.activity),
		  'activity_daily: one row per contact, UTC day and kind; the counts add up to the activities');
SELECT is((SELECT (count(*), sum(total), sum(total) FILTER (WHERE counts_as_purchase)) FROM crm_bi.orders),
		  (SELECT (count(*), sum(total), sum(total) FILTER (WHERE status NOT IN ('cancelled', 'refunded')))
			 FROM crm."order"),
		  'orders: every order, totals and purchases as in crm.order');
SELECT is_empty($$SELECT o.order_id FROM crm_bi.orders o JOIN crm."order" x USING (contact_id, order_id)
				   WHERE o.ordered_on <> (x.ordered_at AT TIME ZONE 'UTC')::date
					  OR o.ordered_month <> date_trunc('month', x.ordered_at AT TIME ZONE 'UTC')::date$$,
				'orders: ordered_on and ordered_month are UTC days');
SELECT is((SELECT (count(*), sum(weighted_amount), count(*) FILTER (WHERE closed_on IS NULL)) FROM crm_bi.deals),
		  (SELECT (count(*), sum(round(amount * probability, 2)), count(*) FILTER (WHERE status = 'open')) FROM crm.deal),
		  'deals: every deal, weighted amounts, open deals without a close day');
SELECT is((SELECT count(*) FROM crm_bi.stage_transitions), (SELECT count(*) FROM crm.stage_history),
		  'stage_transitions: one row per crm.stage_history row');
SELECT is_empty($$SELECT 1 FROM crm_bi.stage_transitions t
				   WHERE t.days_since_previous < 0
					  OR (t.days_since_previous IS NULL) <> (NOT EXISTS (
							SELECT 1 FROM crm.stage_history h WHERE h.contact_id = t.contact_id
							   AND h.merged_from IS NOT DISTINCT FROM t.merged_from
							   AND (h.changed_at, h.history_id) < (t.changed_at, t.history_id)))$$,
				'stage_transitions: days since the previous transition of the same record, NULL for the first');
SELECT is((SELECT count(*) FROM crm_bi.segment_membership WHERE is_current),
		  (SELECT count(*) FROM crm.segment_member), 'segment_membership: the current spells are the current members');
SELECT set_eq($$SELECT campaign, targeted, held_out, responded, response_rate, revenue, cost, lift FROM crm_bi.campaign_results$$,
			  $$SELECT r.campaign, r.targeted, r.held_out, r.responded, r.response_rate, r.revenue, r.cost, r.lift
				  FROM crm.campaign k, crm.campaign_report(k.campaign_id) r$$,
			  'campaign_results: crm.campaign_report of every campaign');
SELECT is_empty($$SELECT b.contact_id FROM crm_bi.customer_clv b
				   FULL JOIN (SELECT DISTINCT contact_id FROM crm."order"
							   WHERE status NOT IN ('cancelled', 'refunded')) o USING (contact_id)
				   WHERE b.contact_id IS NULL OR o.contact_id IS NULL
					  OR b.historic_value <> crm.historic_clv(b.contact_id)$$,
				'customer_clv: one row per customer, historic value as crm.historic_clv');
SELECT is((SELECT round(sum(clv_1y)::numeric, 2) FROM crm_bi.customer_clv),
		  (SELECT round(sum(total_clv)::numeric, 2) FROM crm_bi.clv_distribution),
		  'customer_clv: the one-year CLV per customer adds up to the deciles of clv_distribution (the same model)');
SELECT is((SELECT (r, alpha, a, b, p, q, gamma) FROM crm_bi.clv_model),
		  (SELECT ((crm.bgnbd_params(bgnbd)).r, (crm.bgnbd_params(bgnbd)).alpha, (crm.bgnbd_params(bgnbd)).a,
				   (crm.bgnbd_params(bgnbd)).b, (crm.gammagamma_params(gammagamma)).p,
				   (crm.gammagamma_params(gammagamma)).q, (crm.gammagamma_params(gammagamma)).gamma)
			 FROM crm.analyst_clv_model),
		  'clv_model: the parameters of the fitted models as float8 columns');
SELECT is_empty($$SELECT s.contact_id FROM crm_bi.scores s WHERE s.contact_id % 50 = 0
				   AND (s.score IS DISTINCT FROM crm.score(s.contact_id, s.score_group)
						OR s.grade IS DISTINCT FROM crm.grade_of(s.score_group, s.score))$$,
				'scores: crm.score and its grade, per contact and group');
SELECT is((SELECT count(*) FROM crm_bi.scores),
		  (SELECT count(*) FROM crm.contact) * (SELECT count(*) FROM crm.score_group),
		  'scores: one row per contact and score group');
SELECT set_eq($$SELECT month, stage, contacts, share FROM crm_bi.funnel_monthly$$,
			  $$SELECT month, stage::text, contacts, share FROM crm.analyst_funnel$$,
			  'funnel_monthly: crm.analyst_funnel with the stage as text');
SELECT is_empty($$SELECT 1 FROM crm_bi.stage_conversion_monthly b JOIN crm.analyst_stage_conversion a
					 ON a.month = b.month AND a.stage::text = b.stage
				  WHERE b.median_days_in_stage IS DISTINCT FROM (extract(epoch FROM a.median_time_in_stage) / 86400)::float8
					 OR b.p90_days_in_stage IS DISTINCT FROM (extract(epoch FROM a.p90_time_in_stage) / 86400)::float8$$,
				'stage_conversion_monthly: the times in stage as days');

-- The README's dashboard ("BI tools"), query for query: each runs as the
-- role it is shown for and returns rows.
SET ROLE crm_bi_ana;
SELECT isnt_empty($$
SELECT month, stage, contacts, share
  FROM crm_bi.funnel_monthly
 WHERE month >= current_date - 365
 ORDER BY month, stage_rank
$$, 'dashboard, as crm_analyst: funnel over time');
SELECT isnt_empty($$
SELECT cohort_month, months_since, customers, active, retention
  FROM crm_bi.cohort_retention
 WHERE months_since <= 12
 ORDER BY cohort_month, months_since
$$, 'dashboard, as crm_analyst: cohort retention');
SELECT isnt_empty($$
SELECT segment, contacts, share, avg_recency_days, avg_monetary
  FROM crm_bi.rfm_segments
 ORDER BY contacts DESC
$$, 'dashboard, as crm_analyst: RFM segments');
SELECT isnt_empty($$
SELECT decile, customers, clv_from, clv_to, round(avg_clv::numeric, 2) AS avg_clv
  FROM crm_bi.clv_distribution
 ORDER BY decile
$$, 'dashboard, as crm_analyst: CLV distribution');
SELECT isnt_empty($$
SELECT campaign, starts_on, targeted, held_out, response_rate, holdout_response_rate, lift, return_on_cost
  FROM crm_bi.campaign_lift
 ORDER BY starts_on DESC
$$, 'dashboard, as crm_analyst: campaign lift');
RESET ROLE;
SET ROLE sales_1;
SELECT isnt_empty($$
SELECT rfm_r, rfm_f, count(*) AS customers, round(avg(lifetime_value), 2) AS avg_value
  FROM crm_bi.contacts
 WHERE rfm IS NOT NULL
 GROUP BY rfm_r, rfm_f
 ORDER BY rfm_r DESC, rfm_f DESC
$$, 'dashboard, as a sales rep: RFM grid of its own customers');
SELECT isnt_empty($$
SELECT activity_on, kind, sum(activities) AS activities, count(DISTINCT contact_id) AS contacts
  FROM crm_bi.activity_daily
 WHERE activity_on >= current_date - 30
 GROUP BY activity_on, kind
 ORDER BY activity_on, kind
$$, 'dashboard, as a sales rep: activity per day and kind');
RESET ROLE;
SET ROLE crm_bi_mkt;
SELECT isnt_empty($$
SELECT width_bucket(clv_1y, 0, 500, 10) AS bucket, count(*) AS customers, round(avg(clv_1y)::numeric, 2) AS avg_clv
  FROM crm_bi.customer_clv
 WHERE clv_1y IS NOT NULL
 GROUP BY 1
 ORDER BY 1
$$, 'dashboard, as marketing: CLV histogram of the customers');
RESET ROLE;

-- one view whatever the session's time zone: the days are UTC days
CREATE FUNCTION pg_temp.bi_days() RETURNS text LANGUAGE sql STABLE AS $$
	SELECT md5((SELECT string_agg(x::text, ',' ORDER BY x::text)
				  FROM (SELECT contact_id, activity_on, kind, activities FROM crm_bi.activity_daily) x)
			   || (SELECT string_agg(x::text, ',' ORDER BY x::text)
					 FROM (SELECT order_id, ordered_on, ordered_month FROM crm_bi.orders) x)
			   || (SELECT string_agg(x::text, ',' ORDER BY x::text)
					 FROM (SELECT history_id, changed_on FROM crm_bi.stage_transitions) x))
$$;
SET TimeZone = 'Pacific/Kiritimati';
CREATE TEMP TABLE east AS SELECT pg_temp.bi_days() AS d;
SET TimeZone = 'Pacific/Pago_Pago';
SELECT is(pg_temp.bi_days(), (SELECT d FROM east),
		  'activity_daily, orders, stage_transitions: the same days at UTC+14 and at UTC-11');
RESET TimeZone;

SELECT * FROM finish();
ROLLBACK;

\c :home_db
SET client_min_messages = warning;
DROP DATABASE crm_bi_test;
