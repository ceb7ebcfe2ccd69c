
-- ---------------------------------------------------------------------------
-- Schema crm_bi: what a BI tool reads (see README, "BI tools").  Views with
-- plain types only, so that a driver maps every column to a standard type:
-- e-mails and stages as text (the stage with its rank in the lifecycle
-- order), RFM cells as text with r, f, m as integers, model parameters as
-- float8, durations as days (float8), and a date in UTC beside a timestamp
-- where a chart wants a day (as the analyst views take their days).  Each
-- view has one row grain, said first in its COMMENT.
--
-- Every view is security_invoker: it reads with the reader's privileges and
-- row-level security, so a sales rep sees only its own contacts' rows.  Two
-- families, granted by crm.setup_roles (src/roles.sql):
--   person views      a row per contact, order, deal, ...; granted to the
--                     roles that may read the tables under them (never to
--                     crm_analyst)
--   aggregate views   over the k-anonymous crm.analyst_* views (owner's
--                     rights); granted to every crm role
-- After src/analyst.sql (the views it wraps) and before src/bi.sql: no view
-- here may bind to the stage = text operator defined there.
-- ---------------------------------------------------------------------------
CREATE SCHEMA crm_bi;
COMMENT ON SCHEMA crm_bi IS
	'views for BI tools over the crm extension: plain column types, one row grain per view, security_invoker';

-- Person views ---------------------------------------------------------------

-- crm.contact_profile computes each column only when it is read.
CREATE VIEW crm_bi.contacts WITH (security_invoker = true) AS
SELECT p.contact_id, p.email::text AS email, crm.email_domain(p.email) AS email_domain,
	   p.first_name, p.last_name, p.phone, p.city, p.region, p.country, p.birth_date, p.age,
	   p.income_band, p.job_title, p.lead_source, p.owner,
	   p.stage::text AS stage, array_position(enum_range(NULL::crm.stage), p.stage) AS stage_rank,
	   p.do_not_contact, p.created_at, (p.created_at AT TIME ZONE 'UTC')::date AS created_on, p.updated_at,
	   p.company_id, p.company_name, p.company_domain, p.company_industry, p.company_employees,
	   p.company_annual_revenue, p.company_country,
	   p.order_count, p.lifetime_value,
	   p.first_order_at, (p.first_order_at AT TIME ZONE 'UTC')::date AS first_order_on,
	   p.last_order_at, (p.last_order_at AT TIME ZONE 'UTC')::date AS last_order_on,
	   p.recency_days,
	   p.rfm::text AS rfm, crm.r(p.rfm) AS rfm_r, crm.f(p.rfm) AS rfm_f, crm.m(p.rfm) AS rfm_m,
	   p.rfm_segment, p.value_rank,
	   p.activity_count, p.last_activity_at,
	   p.consent_email, p.consent_phone, p.consent_sms, p.consent_post, p.consent_profiling,
	   p.engagement_score, p.fit_score, p.grade,
	   p.points_balance, p.loyalty_tier, p.points_expiring_30d
  FROM crm.contact_profile p;
COMMENT ON VIEW crm_bi.contacts IS
	'one row per contact: who, company, stage and its rank, orders, lifetime value, RFM cell (text and r, f, m), activity, consent now, scores and grade, loyalty points and tier; plain types';

CREATE VIEW crm_bi.activity_daily WITH (security_invoker = true) AS
SELECT a.contact_id, (a.occurred_at AT TIME ZONE 'UTC')::date AS activity_on, a.kind,
	   count(*) AS activities, min(a.occurred_at) AS first_at, max(a.occurred_at) AS last_at
  FROM crm.activity a
 GROUP BY a.contact_id, (a.occurred_at AT TIME ZONE 'UTC')::date, a.kind;
COMMENT ON VIEW crm_bi.activity_daily IS
	'one row per contact, day (UTC) and activity kind: the number of activities, the first and the last';

CREATE VIEW crm_bi.orders WITH (security_invoker = true) AS
SELECT o.contact_id, o.order_id, o.ordered_at, (o.ordered_at AT TIME ZONE 'UTC')::date AS ordered_on,
	   date_trunc('month', o.ordered_at AT TIME ZONE 'UTC')::date AS ordered_month,
	   o.status, o.status <> ALL (ARRAY['cancelled', 'refunded']) AS counts_as_purchase,
	   o.currency, o.total, o.items, o.external_ref
  FROM crm."order" o;
COMMENT ON VIEW crm_bi.orders IS
	'one row per order: contact, time and day (UTC), status, whether it counts as a purchase, currency, total, items';

CREATE VIEW crm_bi.deals WITH (security_invoker = true) AS
SELECT d.contact_id, d.deal_id, d.company_id, d.title, d.pipeline_stage, d.status,
	   d.amount, d.currency, d.probability, round(d.amount * d.probability, 2) AS weighted_amount,
	   d.expected_close, d.owner,
	   d.created_at, (d.created_at AT TIME ZONE 'UTC')::date AS created_on,
	   d.closed_at, (d.closed_at AT TIME ZONE 'UTC')::date AS closed_on,
	   (extract(epoch FROM coalesce(d.closed_at, now()) - d.created_at) / 86400)::float8 AS age_days
  FROM crm.deal d;
COMMENT ON VIEW crm_bi.deals IS
	'one row per deal: contact, company, pipeline stage, status, amount, probability, weighted amount, dates (UTC) of creation and close, age in days';

-- each record's own timeline, as crm.stage_conversion reads it: rows a merge
-- moved onto a contact follow one another (merged_from)
CREATE VIEW crm_bi.stage_transitions WITH (security_invoker = true) AS
SELECT h.contact_id, h.history_id,
	   h.from_stage::text AS from_stage, array_position(enum_range(NULL::crm.stage), h.from_stage) AS from_stage_rank,
	   h.to_stage::text AS to_stage, array_position(enum_range(NULL::crm.stage), h.to_stage) AS to_stage_rank,
	   h.changed_at, (h.changed_at AT TIME ZONE 'UTC')::date AS changed_on,
	   (extract(epoch FROM h.changed_at - lag(h.changed_at) OVER w) / 86400)::float8 AS days_since_previous,
	   h.reason, h.actor, h.automatic, h.forced, h.merged_from
  FROM crm.stage_history h
WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id);
COMMENT ON VIEW crm_bi.stage_transitions IS
	'one row per lifecycle transition (crm.stage_history): from and to stage with their ranks, time and day (UTC), days since the previous transition, reason, actor, automatic, forced';

-- spells from the log: each entry and the change that follows it
CREATE VIEW crm_bi.segment_membership WITH (security_invoker = true) AS
WITH l AS (
	SELECT l.contact_id, l.segment_id, l.change, l.at,
		   lead(l.at) OVER (PARTITION BY l.contact_id, l.segment_id ORDER BY l.at, l.log_id) AS left_at
	  FROM crm.segment_log l)
SELECT l.contact_id, l.segment_id, s.name AS segment, s.kind AS segment_kind,
	   l.at AS entered_at, (l.at AT TIME ZONE 'UTC')::date AS entered_on,
	   l.left_at AS exited_at, (l.left_at AT TIME ZONE 'UTC')::date AS exited_on,
	   l.left_at IS NULL AS is_current,
	   (extract(epoch FROM coalesce(l.left_at, now()) - l.at) / 86400)::float8 AS days_member
  FROM l JOIN crm.segment s ON s.segment_id = l.segment_id
 WHERE l.change = 'enter';
COMMENT ON VIEW crm_bi.segment_membership IS
	'one row per membership spell of a contact in a segment (crm.segment_log): entered and exited (NULL while a member) as times and days (UTC), days a member; members on a day D are the spells with entered_on <= D and (exited_on IS NULL or exited_on > D)';

CREATE VIEW crm_bi.campaign_results WITH (security_invoker = true) AS
SELECT k.campaign_id, k.name AS campaign, k.channel, g.name AS segment,
	   k.starts_at, (k.starts_at AT TIME ZONE 'UTC')::date AS starts_on,
	   k.ends_at, (k.ends_at AT TIME ZONE 'UTC')::date AS ends_on, k.holdout_share,
	   r.targeted, r.held_out, r.responded, r.response_rate, r.holdout_responded, r.holdout_response_rate,
	   r.revenue, r.holdout_revenue, r.cost, r.return_on_cost, r.lift
  FROM crm.campaign k
  JOIN crm.segment g ON g.segment_id = k.segment_id
 CROSS JOIN LATERAL crm.campaign_report(k.campaign_id) r;
COMMENT ON VIEW crm_bi.campaign_results IS
	'one row per campaign, as crm.campaign_report over the targets the reader can see: targeted, held out, responders, response rates, revenue, cost, return on cost, lift over the hold-out group';

-- The BG/NBD and Gamma-Gamma models are fitted when the view is read, to
-- the customers the reader can see (as crm.analyst_clv_model: days in UTC,
-- each fit only on 5 customers or more), and predict as crm.analyst_clv.
CREATE VIEW crm_bi.customer_clv WITH (security_invoker = true) AS
WITH o AS (
	SELECT o.contact_id, count(*) AS orders, sum(o.total) AS historic_value,
		   min(o.ordered_at) AS first_order_at, max(o.ordered_at) AS last_order_at,
		   crm.btyd_summary((o.ordered_at AT TIME ZONE 'UTC')::timestamptz, o.total,
							(now() AT TIME ZONE 'UTC')::timestamptz) AS s
	  FROM crm."order" o
	 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
	 GROUP BY o.contact_id),
n AS (
	SELECT count(*) AS customers, count(*) FILTER (WHERE (o.s).monetary_value > 0) AS repeat_customers FROM o),
m AS MATERIALIZED (
	SELECT CASE WHEN n.customers >= 5 THEN
				(SELECT crm.bgnbd_fit((o.s).frequency, (o.s).recency, (o.s).t) FROM o) END AS tx,
		   CASE WHEN n.repeat_customers >= 5 THEN
				(SELECT crm.gammagamma_fit((o.s).frequency, (o.s).monetary_value)
						FILTER (WHERE (o.s).monetary_value > 0) FROM o) END AS spend
	  FROM n),
p AS (
	SELECT m.tx, m.spend,
		   coalesce((crm.bgnbd_params(m.tx)).converged AND (crm.bgnbd_params(m.tx)).a < 1000
					AND (crm.bgnbd_params(m.tx)).b < 1000, false) AS usable,
		   coalesce((crm.gammagamma_params(m.spend)).converged AND (crm.gammagamma_params(m.spend)).q > 1, false)
			 AS spend_usable
	  FROM m)
SELECT o.contact_id, o.orders, o.historic_value,
	   o.first_order_at, (o.first_order_at AT TIME ZONE 'UTC')::date AS first_order_on,
	   date_trunc('month', o.first_order_at AT TIME ZONE 'UTC')::date AS cohort_month,
	   o.last_order_at, (o.last_order_at AT TIME ZONE 'UTC')::date AS last_order_on,
	   (o.s).frequency AS repeat_purchases, (o.s).recency AS recency_days, (o.s).t AS age_days,
	   (o.s).monetary_value AS mean_repeat_value,
	   CASE WHEN p.usable THEN crm.expected_purchases(p.tx, 365, (o.s).frequency, (o.s).recency, (o.s).t) END
		 AS expected_purchases_365d,
	   CASE WHEN p.usable THEN crm.p_alive(p.tx, (o.s).frequency, (o.s).recency, (o.s).t) END AS p_alive,
	   CASE WHEN NOT (p.usable AND p.spend_usable) THEN NULL
			WHEN (o.s).frequency > 0 AND (o.s).monetary_value = 0 THEN 0	-- repeat purchases of nothing
			ELSE crm.clv(p.tx, p.spend, (o.s).frequency, (o.s).recency, (o.s).t, (o.s).monetary_value,
						 12, 0.01, 365 / 12.0)
	   END AS clv_1y
  FROM o CROSS JOIN p;
COMMENT ON VIEW crm_bi.customer_clv IS
	'one row per customer (a contact with an order that is not cancelled or refunded): orders, historic value, first and last order, BTYD summary in days (UTC), and under BG/NBD x Gamma-Gamma fitted on read to the customers the reader can see: expected purchases in 365 days, probability alive, one-year CLV';

CREATE VIEW crm_bi.scores WITH (security_invoker = true) AS
SELECT s.contact_id, s.score_group, s.score, crm.grade_of(s.score_group, s.score) AS grade
  FROM crm.contact_scores s;
COMMENT ON VIEW crm_bi.scores IS
	'one row per contact and score group: the current score and its grade in the group';

-- Aggregate views (over crm.analyst_*, every row at least 5 contacts) -------

CREATE VIEW crm_bi.funnel_monthly WITH (security_invoker = true) AS
SELECT f.month, f.stage::text AS stage, array_position(enum_range(NULL::crm.stage), f.stage) AS stage_rank,
	   f.contacts, f.share
  FROM crm.analyst_funnel f;
COMMENT ON VIEW crm_bi.funnel_monthly IS
	'one row per month (UTC) and stage, as crm.analyst_funnel: contacts in the stage at the end of the month (now for the current month) and their share; stages of fewer than 5 contacts are left out';

CREATE VIEW crm_bi.stage_conversion_monthly WITH (security_invoker = true) AS
SELECT c.month, c.stage::text AS stage, array_position(enum_range(NULL::crm.stage), c.stage) AS stage_rank,
	   c.contacts, c.entered, c.moved_on, c.conversion,
	   (extract(epoch FROM c.median_time_in_stage) / 86400)::float8 AS median_days_in_stage,
	   (extract(epoch FROM c.p90_time_in_stage) / 86400)::float8 AS p90_days_in_stage
  FROM crm.analyst_stage_conversion c;
COMMENT ON VIEW crm_bi.stage_conversion_monthly IS
	'one row per month (UTC) and stage entered, as crm.analyst_stage_conversion: contacts, entries, entries that moved on, conversion rate, median and p90 days in stage; stages entered by fewer than 5 contacts are left out';

CREATE VIEW crm_bi.cohort_retention WITH (security_invoker = true) AS
SELECT r.cohort_month, r.months_since, r.customers, r.active, r.retention
  FROM crm.analyst_retention r;
COMMENT ON VIEW crm_bi.cohort_retention IS
	'one row per cohort (month of the first purchase, UTC) and months since, as crm.analyst_retention: cohort size, customers who bought that month, retention; rows of fewer than 5 active customers are left out';

CREATE VIEW crm_bi.churn_monthly WITH (security_invoker = true) AS
SELECT c.month, c.active, c.churned, c.churn_rate
  FROM crm.analyst_churn c;
COMMENT ON VIEW crm_bi.churn_monthly IS
	'one row per month (UTC) whose next month has ended, as crm.analyst_churn: customers who bought, how many did not buy the next month, churn rate; months of fewer than 5 customers are left out';

CREATE VIEW crm_bi.rfm_segments WITH (security_invoker = true) AS
SELECT s.segment, s.contacts, s.share, s.avg_recency_days, s.avg_frequency, s.avg_monetary, s.monetary
  FROM crm.analyst_rfm s;
COMMENT ON VIEW crm_bi.rfm_segments IS
	'one row per RFM segment (Champions ... Lost), as crm.analyst_rfm: customers, share, mean recency in days, mean orders, mean and total spend; segments of fewer than 5 customers are left out';

CREATE VIEW crm_bi.clv_model WITH (security_invoker = true) AS
SELECT m.contacts AS customers, m.repeat_customers, m.r, m.alpha, m.a, m.b, m.bgnbd_ll, m.bgnbd_converged,
	   m.p, m.q, m.gamma, m.gammagamma_ll, m.gammagamma_converged
  FROM crm.analyst_clv_model m;
COMMENT ON VIEW crm_bi.clv_model IS
	'one row (none below 5 customers): the BG/NBD and Gamma-Gamma parameters of crm.analyst_clv_model as float8 columns, with log-likelihoods and convergence';

CREATE VIEW crm_bi.clv_distribution WITH (security_invoker = true) AS
SELECT c.decile, c.contacts AS customers, c.clv_from, c.clv_to, c.avg_clv, c.total_clv,
	   c.avg_expected_purchases, c.avg_p_alive
  FROM crm.analyst_clv c;
COMMENT ON VIEW crm_bi.clv_distribution IS
	'one row per decile (1 = lowest) of predicted one-year CLV, as crm.analyst_clv: customers, lowest and highest CLV (not shown for the outer deciles), mean and total CLV, mean expected purchases in 365 days, mean probability alive; deciles of fewer than 5 customers are left out';

CREATE VIEW crm_bi.campaign_lift WITH (security_invoker = true) AS
SELECT c.campaign_id, c.campaign, c.channel, c.starts_on, c.ends_on, c.targeted, c.held_out, c.responded,
	   c.response_rate, c.holdout_responded, c.holdout_response_rate, c.revenue, c.holdout_revenue, c.cost,
	   c.return_on_cost, c.lift
  FROM crm.analyst_campaign c;
COMMENT ON VIEW crm_bi.campaign_lift IS
	'one row per campaign of 5 targeted contacts or more, as crm.analyst_campaign: targeted, held out, responders, response rates, revenue, cost, return on cost, lift over the hold-out group (hold-out figures NULL below 5 held out)';

CREATE VIEW crm_bi.pipeline WITH (security_invoker = true) AS
SELECT p.pipeline_stage, p.deals, p.contacts, p.amount, p.weighted_amount
  FROM crm.analyst_pipeline p;
COMMENT ON VIEW crm_bi.pipeline IS
	'one row per pipeline stage, as crm.analyst_pipeline: open deals, their contacts, amount, probability-weighted amount; stages of fewer than 5 contacts are left out';

CREATE VIEW crm_bi.activity_totals_daily WITH (security_invoker = true) AS
SELECT a.occurred_on AS activity_on, a.kind, a.activities, a.contacts
  FROM crm.analyst_activity a;
COMMENT ON VIEW crm_bi.activity_totals_daily IS
	'one row per day (UTC) and activity kind, as crm.analyst_activity: activities and distinct contacts; days of a kind with fewer than 5 contacts are left out';

CREATE VIEW crm_bi.order_totals_monthly WITH (security_invoker = true) AS
SELECT o.ordered_month, o.status, o.currency, o.orders, o.contacts, o.total, o.items
  FROM crm.analyst_order o;
COMMENT ON VIEW crm_bi.order_totals_monthly IS
	'one row per month (UTC), order status and currency, as crm.analyst_order: orders, distinct contacts, total, items; cells of fewer than 5 contacts are left out';

CREATE VIEW crm_bi.deal_totals_monthly WITH (security_invoker = true) AS
SELECT d.created_month, d.pipeline_stage, d.status, d.currency, d.deals, d.contacts, d.amount, d.weighted_amount
  FROM crm.analyst_deal d;
COMMENT ON VIEW crm_bi.deal_totals_monthly IS
	'one row per month created (UTC), pipeline stage, status and currency, as crm.analyst_deal: deals, distinct contacts, amount, weighted amount; cells of fewer than 5 contacts are left out';
