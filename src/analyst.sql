
-- ---------------------------------------------------------------------------
-- The analyst's analytics: the aggregate analyses (funnel, stage conversion,
-- cohort retention, churn, RFM segments, CLV, campaigns, pipeline) as more
-- views of the crm.analyst_* family (src/roles.sql): owner's rights, no
-- personal column, every row standing for at least 5 distinct contacts
-- (rows of fewer are left out), months and days in UTC.  They are views,
-- not functions with arguments, so nothing an analyst passes becomes SQL;
-- a BI tool filters them with WHERE.  The admin's functions cannot be called
-- inside them (a function reads with its caller's rights, and the analyst
-- has no grant on the tables), so each repeats its function's query for
-- fixed arguments; test/pgtap/analyst.sql checks that they give the same
-- numbers (the functions run with TimeZone = 'UTC').
-- ---------------------------------------------------------------------------

-- crm.funnel at the end of every month (UTC), the current month at now().
-- Each history row counts from the first month end at or after its time
-- to the first at or after the contact's next row (+1 and -1), so a running
-- sum per stage gives the funnel of every month in one pass.
CREATE VIEW crm.analyst_funnel AS
WITH r AS (
	SELECT h.to_stage AS stage, h.changed_at,
		   lead(h.changed_at) OVER (PARTITION BY h.contact_id ORDER BY h.changed_at, h.history_id) AS next_at
	  FROM crm.stage_history h
	 WHERE h.changed_at <= now()),
d AS (
	SELECT r.stage, date_trunc('month', (r.changed_at AT TIME ZONE 'UTC') - interval '1 microsecond') AS month, 1 AS delta
	  FROM r
	UNION ALL
	SELECT r.stage, date_trunc('month', (r.next_at AT TIME ZONE 'UTC') - interval '1 microsecond'), -1
	  FROM r WHERE r.next_at IS NOT NULL),
g AS (
	SELECT d.stage, d.month, sum(d.delta) AS delta FROM d GROUP BY d.stage, d.month),
s AS (
	SELECT m.month, e.stage,
		   sum(coalesce(g.delta, 0)) OVER (PARTITION BY e.stage ORDER BY m.month) AS n
	  FROM generate_series((SELECT min(g.month) FROM g), date_trunc('month', now() AT TIME ZONE 'UTC'),
						   interval '1 month') m(month)
	 CROSS JOIN unnest(enum_range(NULL::crm.stage)) e(stage)
	  LEFT JOIN g ON g.stage = e.stage AND g.month = m.month),
f AS (
	SELECT s.month::date AS month, s.stage, s.n::bigint AS contacts,
		   round(s.n / nullif(sum(s.n) OVER (PARTITION BY s.month), 0), 4) AS share
	  FROM s)
SELECT f.month, f.stage, f.contacts, f.share FROM f WHERE f.contacts >= 5;
COMMENT ON VIEW crm.analyst_funnel IS
	'one row per month (UTC) and stage: contacts in the stage at the end of the month (now for the current month) and their share of all contacts then, as crm.funnel; stages of fewer than 5 contacts are left out';

-- crm.stage_conversion over each month (UTC): [month start, month end), the
-- current month up to now()
CREATE VIEW crm.analyst_stage_conversion AS
WITH h AS (
	SELECT h.contact_id, h.to_stage, h.changed_at,
		   lead(h.to_stage) OVER w AS next_stage, lead(h.changed_at) OVER w AS left_at
	  FROM crm.stage_history h
	 WHERE h.from_stage IS DISTINCT FROM h.to_stage
	WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id)),
m AS (
	SELECT h.*, date_trunc('month', h.changed_at AT TIME ZONE 'UTC') AS month
	  FROM h WHERE h.changed_at < now()),
e AS (
	SELECT m.*, (m.next_stage > m.to_stage AND m.next_stage NOT IN ('disqualified', 'churned')
				 AND m.left_at < m.to_date) AS converted
	  FROM (SELECT m.*, least((m.month + interval '1 month') AT TIME ZONE 'UTC', now()) AS to_date FROM m) m)
SELECT e.month::date AS month, e.to_stage AS stage, count(DISTINCT e.contact_id) AS contacts,
	   count(*) AS entered, count(*) FILTER (WHERE e.converted) AS moved_on,
	   round(count(*) FILTER (WHERE e.converted)::numeric / count(*), 4) AS conversion,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY e.left_at - e.changed_at) FILTER (WHERE e.left_at < e.to_date)
		 AS median_time_in_stage,
	   percentile_cont(0.9) WITHIN GROUP (ORDER BY e.left_at - e.changed_at) FILTER (WHERE e.left_at < e.to_date)
		 AS p90_time_in_stage
  FROM e
 GROUP BY e.month, e.to_stage
HAVING count(DISTINCT e.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_stage_conversion IS
	'one row per month (UTC) and stage, as crm.stage_conversion(month start, month end or now): contacts and entries into the stage in the month, entries that moved on to a later stage before the month ended, the rate, median and p90 time in stage; stages entered by fewer than 5 contacts in a month are left out';

-- crm.retention_cohorts('1 month') with months in UTC
CREATE VIEW crm.analyst_retention AS
WITH b AS (
	SELECT DISTINCT o.contact_id, date_trunc('month', o.ordered_at AT TIME ZONE 'UTC') AS month
	  FROM crm."order" o
	 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])),
f AS (
	SELECT b.contact_id, min(b.month) AS cohort FROM b GROUP BY b.contact_id),
sizes AS (
	SELECT f.cohort, count(*) AS n FROM f GROUP BY f.cohort)
SELECT f.cohort::date AS cohort_month,
	   ((extract(year FROM b.month) - extract(year FROM f.cohort)) * 12
		+ extract(month FROM b.month) - extract(month FROM f.cohort))::integer AS months_since,
	   sizes.n AS customers, count(*) AS active, round(count(*)::numeric / sizes.n, 4) AS retention
  FROM b JOIN f ON f.contact_id = b.contact_id JOIN sizes ON sizes.cohort = f.cohort
 GROUP BY f.cohort, b.month, sizes.n
HAVING count(*) >= 5;
COMMENT ON VIEW crm.analyst_retention IS
	'one row per cohort (month of the first purchase, UTC) and months since: customers of the cohort, how many of them bought in that month, and that share, as crm.retention_cohorts(''1 month''); cancelled and refunded orders do not count; rows of fewer than 5 active customers are left out';

-- crm.churn_rate('1 month', first order month, current month) in UTC
CREATE VIEW crm.analyst_churn AS
WITH act AS (
	SELECT DISTINCT date_trunc('month', o.ordered_at AT TIME ZONE 'UTC') AS month, o.contact_id
	  FROM crm."order" o
	 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded']))
SELECT a.month::date AS month, count(*) AS active, count(*) FILTER (WHERE n.contact_id IS NULL) AS churned,
	   round((count(*) FILTER (WHERE n.contact_id IS NULL))::numeric / count(*), 4) AS churn_rate
  FROM act a
  LEFT JOIN act n ON n.contact_id = a.contact_id AND n.month = a.month + interval '1 month'
 WHERE a.month + interval '2 months' <= date_trunc('month', now() AT TIME ZONE 'UTC')
 GROUP BY a.month
HAVING count(*) >= 5;
COMMENT ON VIEW crm.analyst_churn IS
	'one row per month (UTC) whose next month has ended: customers who bought in the month, how many of them did not buy in the next one, and that share, as crm.churn_rate(''1 month'', ...); cancelled and refunded orders do not count; months of fewer than 5 customers are left out';

-- crm.rfm_scores() (now, all orders) by segment
CREATE VIEW crm.analyst_rfm AS
WITH s AS (
	SELECT floor(extract(epoch FROM now() - max(o.ordered_at)) / 86400)::integer AS recency_days,
		   count(*) AS frequency, sum(o.total) AS monetary,
		   crm.rfm(1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER (),
				   1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER (),
				   1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ()) AS rfm
	  FROM crm."order" o
	 WHERE o.ordered_at <= now() AND o.status <> ALL ('{cancelled,refunded}'::text[])
	 GROUP BY o.contact_id),
g AS (
	SELECT crm.rfm_segment(s.rfm) AS segment, count(*) AS contacts,
		   round(count(*) / sum(count(*)) OVER (), 4) AS share,
		   round(avg(s.recency_days), 1) AS avg_recency_days, round(avg(s.frequency), 2) AS avg_frequency,
		   round(avg(s.monetary), 2) AS avg_monetary, sum(s.monetary) AS monetary
	  FROM s GROUP BY crm.rfm_segment(s.rfm))
SELECT g.segment, g.contacts, g.share, g.avg_recency_days, g.avg_frequency, g.avg_monetary, g.monetary
  FROM g WHERE g.contacts >= 5;
COMMENT ON VIEW crm.analyst_rfm IS
	'one row per RFM segment of crm.rfm_scores() (now, all orders): customers, their share, mean recency in days, mean orders, mean and total spend; segments of fewer than 5 customers are left out';

-- The CLV model: BG/NBD and Gamma-Gamma fitted to the BTYD summary (in days,
-- days in UTC) of every customer's orders up to now.  Each fit runs only on
-- 5 customers or more (an empty fit is an error).
CREATE VIEW crm.analyst_clv_model AS
WITH s AS (
	SELECT (x.s).frequency, (x.s).recency, (x.s).t, (x.s).monetary_value
	  FROM (SELECT crm.btyd_summary((o.ordered_at AT TIME ZONE 'UTC')::timestamptz, o.total,
									(now() AT TIME ZONE 'UTC')::timestamptz) AS s
			  FROM crm."order" o
			 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
			 GROUP BY o.contact_id) x),
n AS (
	SELECT count(*) AS customers, count(*) FILTER (WHERE s.monetary_value > 0) AS repeat_customers FROM s),
m AS MATERIALIZED (
	SELECT n.customers, n.repeat_customers,
		   CASE WHEN n.customers >= 5 THEN (SELECT crm.bgnbd_fit(s.frequency, s.recency, s.t) FROM s) END AS tx,
		   CASE WHEN n.repeat_customers >= 5 THEN
				(SELECT crm.gammagamma_fit(s.frequency, s.monetary_value) FILTER (WHERE s.monetary_value > 0) FROM s)
		   END AS spend
	  FROM n)
SELECT m.customers AS contacts, m.repeat_customers, (crm.bgnbd_params(m.tx)).r, (crm.bgnbd_params(m.tx)).alpha,
	   (crm.bgnbd_params(m.tx)).a, (crm.bgnbd_params(m.tx)).b, (crm.bgnbd_params(m.tx)).ll AS bgnbd_ll,
	   (crm.bgnbd_params(m.tx)).converged AS bgnbd_converged,
	   (crm.gammagamma_params(m.spend)).p, (crm.gammagamma_params(m.spend)).q,
	   (crm.gammagamma_params(m.spend)).gamma, (crm.gammagamma_params(m.spend)).ll AS gammagamma_ll,
	   (crm.gammagamma_params(m.spend)).converged AS gammagamma_converged,
	   m.tx AS bgnbd, m.spend AS gammagamma
  FROM m
 WHERE m.customers >= 5;
COMMENT ON VIEW crm.analyst_clv_model IS
	'one row: the BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma) models fitted by maximum likelihood to every customer''s BTYD summary (crm.btyd_summary in days, days in UTC, cancelled and refunded orders left out, observation end now), as float8 columns and as the model values; contacts = customers fitted, repeat_customers those the spend model is fitted to; no row below 5 customers';

-- Deciles of predicted CLV under that model: one year as 12 periods of
-- 365/12 days, 1% a period.  Predictions only from a converged BG/NBD fit
-- with a and b below 1,000: beyond that there is next to no dropout and the
-- hypergeometric series of the predictions need too many terms (22003 for
-- a whole read).  The lowest and highest values (one customer's)
-- are not shown.
CREATE VIEW crm.analyst_clv AS
WITH s AS (
	SELECT (x.s).frequency, (x.s).recency, (x.s).t, (x.s).monetary_value
	  FROM (SELECT crm.btyd_summary((o.ordered_at AT TIME ZONE 'UTC')::timestamptz, o.total,
									(now() AT TIME ZONE 'UTC')::timestamptz) AS s
			  FROM crm."order" o
			 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
			 GROUP BY o.contact_id) x),
c AS (
	SELECT CASE WHEN m.usable THEN crm.expected_purchases(m.bgnbd, 365, s.frequency, s.recency, s.t) END
			 AS purchases,
		   CASE WHEN m.usable THEN crm.p_alive(m.bgnbd, s.frequency, s.recency, s.t) END AS p_alive,
		   CASE WHEN NOT (m.usable AND m.gammagamma_converged AND m.q > 1) THEN NULL
				WHEN s.frequency > 0 AND s.monetary_value = 0 THEN 0	-- repeat purchases of nothing
				ELSE crm.clv(m.bgnbd, m.gammagamma, s.frequency, s.recency, s.t, s.monetary_value, 12, 0.01, 365 / 12.0)
		   END AS clv
	  FROM s CROSS JOIN (SELECT m.*, m.bgnbd_converged AND m.a < 1000 AND m.b < 1000 AS usable
						   FROM crm.analyst_clv_model m) m),
d AS (
	SELECT ntile(10) OVER (ORDER BY c.clv, c.purchases) AS decile, c.* FROM c)
SELECT d.decile, count(*) AS contacts,
	   CASE WHEN d.decile > 1 THEN min(d.clv) END AS clv_from,
	   CASE WHEN d.decile < 10 THEN max(d.clv) END AS clv_to,
	   avg(d.clv) AS avg_clv, sum(d.clv) AS total_clv,
	   avg(d.purchases) AS avg_expected_purchases, avg(d.p_alive) AS avg_p_alive
  FROM d
 GROUP BY d.decile
HAVING count(*) >= 5;
COMMENT ON VIEW crm.analyst_clv IS
	'one row per decile (1 = lowest) of predicted one-year CLV (crm.clv over crm.analyst_clv_model: 12 periods of 365/12 days, 1% a period; NULL unless both fits converged, a and b are below 1000 and q > 1): customers, the decile''s lowest and highest CLV (not shown for the lowest and highest decile), mean and total CLV, mean expected purchases in the next 365 days and mean probability alive; deciles of fewer than 5 customers are left out';

-- crm.campaign_report of every campaign
CREATE VIEW crm.analyst_campaign AS
WITH cam AS (
	SELECT k.campaign_id, k.name, k.channel, k.starts_at, k.ends_at, k.cost, coalesce(k.ends_at, now()) AS until
	  FROM crm.campaign k),
per_contact AS (
	SELECT cam.campaign_id, t.holdout,
		   (SELECT sum(o.total) FROM crm."order" o
			 WHERE o.contact_id = t.contact_id AND o.ordered_at >= cam.starts_at AND o.ordered_at < cam.until
			   AND o.status <> ALL ('{cancelled,refunded}'::text[])) AS spent,
		   EXISTS (SELECT 1 FROM crm.activity a
					WHERE a.contact_id = t.contact_id AND a.occurred_at >= cam.starts_at AND a.occurred_at < cam.until
					  AND a.properties @> jsonb_build_object('campaign_id', cam.campaign_id)) AS acted
	  FROM cam JOIN crm.campaign_target t ON t.campaign_id = cam.campaign_id),
agg AS (
	SELECT p.campaign_id,
		   count(*) FILTER (WHERE NOT p.holdout) AS targeted,
		   count(*) FILTER (WHERE p.holdout) AS held_out,
		   count(*) FILTER (WHERE NOT p.holdout AND (p.spent IS NOT NULL OR p.acted)) AS responded,
		   count(*) FILTER (WHERE p.holdout AND (p.spent IS NOT NULL OR p.acted)) AS holdout_responded,
		   coalesce(sum(p.spent) FILTER (WHERE NOT p.holdout), 0) AS revenue,
		   coalesce(sum(p.spent) FILTER (WHERE p.holdout), 0) AS holdout_revenue
	  FROM per_contact p GROUP BY p.campaign_id),
r AS (
	SELECT cam.campaign_id, cam.name, cam.channel, cam.starts_at, cam.ends_at, cam.cost, agg.targeted,
		   CASE WHEN agg.held_out >= 5 THEN agg.held_out END AS held_out,
		   agg.responded, round(agg.responded::numeric / agg.targeted, 4) AS response_rate,
		   CASE WHEN agg.held_out >= 5 THEN agg.holdout_responded END AS holdout_responded,
		   CASE WHEN agg.held_out >= 5 THEN round(agg.holdout_responded::numeric / agg.held_out, 4) END
			 AS holdout_response_rate,
		   CASE WHEN agg.responded >= 5 THEN agg.revenue END AS revenue,
		   CASE WHEN agg.held_out >= 5 AND agg.holdout_responded >= 5 THEN agg.holdout_revenue END AS holdout_revenue,
		   CASE WHEN agg.held_out >= 5 THEN
				round((agg.responded::numeric / agg.targeted)
					  / nullif(agg.holdout_responded::numeric / agg.held_out, 0) - 1, 4) END AS lift
	  FROM cam JOIN agg ON agg.campaign_id = cam.campaign_id
	 WHERE agg.targeted >= 5)
SELECT r.campaign_id, r.name AS campaign, r.channel, (r.starts_at AT TIME ZONE 'UTC')::date AS starts_on,
	   (r.ends_at AT TIME ZONE 'UTC')::date AS ends_on, r.targeted, r.held_out, r.responded, r.response_rate,
	   r.holdout_responded, r.holdout_response_rate, r.revenue, r.holdout_revenue, r.cost,
	   round((r.revenue - r.cost) / nullif(r.cost, 0), 4) AS return_on_cost, r.lift
  FROM r;
COMMENT ON VIEW crm.analyst_campaign IS
	'one row per campaign, as crm.campaign_report: targeted contacts, held-out contacts, responders, response rates, revenue, hold-out revenue, cost, return on cost and lift; campaigns of fewer than 5 targeted contacts are left out, hold-out figures are NULL below 5 held-out contacts, revenue (and return on cost) below 5 responders';

-- crm.pipeline with the number of contacts
CREATE VIEW crm.analyst_pipeline AS
SELECT d.pipeline_stage, count(*) AS deals, count(DISTINCT d.contact_id) AS contacts, sum(d.amount) AS amount,
	   round(sum(d.amount * d.probability), 2) AS weighted_amount
  FROM crm.deal d
 WHERE d.status = 'open'
 GROUP BY d.pipeline_stage
HAVING count(DISTINCT d.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_pipeline IS
	'one row per pipeline stage, as crm.pipeline: open deals, their contacts, amount and probability-weighted amount; stages of fewer than 5 contacts are left out';
