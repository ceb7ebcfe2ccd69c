-- Customer lifetime value on the real CDNOW data: Hardie's 2,357-customer
-- cohort, 39-week calibration to 1997-09-30, times in weeks.
\set ON_ERROR_STOP 1
SET search_path = crm, public;
CREATE TEMP TABLE clv_cal AS
SELECT o.contact_id, c.attrs->>'cdnow_sample' AS sample_id,
	   crm.btyd_summary(o.ordered_at, o.total, '1997-09-30', '7 days') AS s
  FROM crm."order" o JOIN crm.contact c USING (contact_id)
 WHERE c.attrs ? 'cdnow_sample' AND o.status <> ALL (ARRAY['cancelled', 'refunded'])
 GROUP BY o.contact_id, c.attrs->>'cdnow_sample';
CREATE TEMP TABLE clv_models AS
SELECT crm.bgnbd_fit((s).frequency, (s).recency, (s).t) AS bgnbd,
	   crm.paretonbd_fit((s).frequency, (s).recency, (s).t) AS paretonbd,
	   crm.mbgnbd_fit((s).frequency, (s).recency, (s).t) AS mbgnbd,
	   crm.gammagamma_fit((s).frequency, (s).monetary_value) FILTER (WHERE (s).monetary_value > 0) AS gammagamma
  FROM clv_cal;

\echo '== CLV: models fitted on the CDNOW cohort (2,357 customers, 39 weeks) inside the database'
SELECT 'BG/NBD' AS model, round(r::numeric, 4) AS r, round(alpha::numeric, 4) AS alpha, round(a::numeric, 4) AS "a / s",
	   round(b::numeric, 4) AS "b / beta", round(ll::numeric, 2) AS ll, converged FROM clv_models, crm.bgnbd_params(bgnbd)
UNION ALL
SELECT 'Pareto/NBD', round(r::numeric, 4), round(alpha::numeric, 4), round(s::numeric, 4), round(beta::numeric, 4),
	   round(ll::numeric, 2), converged FROM clv_models, crm.paretonbd_params(paretonbd)
UNION ALL
SELECT 'MBG/NBD', round(r::numeric, 4), round(alpha::numeric, 4), round(a::numeric, 4), round(b::numeric, 4),
	   round(ll::numeric, 2), converged FROM clv_models, crm.mbgnbd_params(mbgnbd);
SELECT 'Gamma-Gamma' AS model, round(p::numeric, 4) AS p, round(q::numeric, 4) AS q, round(gamma::numeric, 4) AS gamma,
	   round(ll::numeric, 2) AS ll, n AS customers, converged FROM clv_models, crm.gammagamma_params(gammagamma);

\echo '== CLV: top 10 customers by predicted 1-year CLV (BG/NBD x Gamma-Gamma, 12 months, 1% a month)'
SELECT sample_id, (s).frequency AS x, (s).recency AS t_x, (s).t AS "T", round((s).monetary_value, 2) AS avg_spend,
	   round(crm.p_alive(bgnbd, (s).frequency, (s).recency, (s).t)::numeric, 3) AS p_alive,
	   round(crm.expected_purchases(bgnbd, 52, (s).frequency, (s).recency, (s).t)::numeric, 2) AS purchases_52w,
	   round(crm.clv(bgnbd, gammagamma, (s).frequency, (s).recency, (s).t, (s).monetary_value, 12, 0.01, 52 / 12.0)::numeric, 2) AS clv_1y
  FROM clv_cal, clv_models
 ORDER BY crm.clv(bgnbd, gammagamma, (s).frequency, (s).recency, (s).t, (s).monetary_value, 12, 0.01, 52 / 12.0) DESC
 LIMIT 10;

\echo '== CLV: predicted against actual repeat purchases in the 39-week holdout (1997-10-01 to 1998-06-30)'
SELECT round(sum(crm.expected_purchases(bgnbd, 39, (s).frequency, (s).recency, (s).t))) AS bgnbd,
	   round(sum(crm.expected_purchases(paretonbd, 39, (s).frequency, (s).recency, (s).t))) AS paretonbd,
	   round(sum(crm.expected_purchases(mbgnbd, 39, (s).frequency, (s).recency, (s).t))) AS mbgnbd,
	   (SELECT count(DISTINCT (o.contact_id, o.ordered_at::date)) FROM crm."order" o JOIN crm.contact c USING (contact_id)
		 WHERE c.attrs ? 'cdnow_sample' AND o.ordered_at >= '1997-10-01' AND o.ordered_at < '1998-07-01') AS actual
  FROM clv_cal, clv_models;

\echo '== CLV: quarterly churn rate of all CDNOW customers (bought in a quarter, not in the next)'
SELECT to_char(period_start, 'YYYY-"Q"Q') AS quarter, active, churned, churn_rate
  FROM crm.churn_rate('3 months', '1997-01-01', '1998-07-01');

\echo '== CLV: monthly retention cohorts (share of the first-purchase cohort buying in month k)'
SELECT to_char(cohort, 'YYYY-MM') AS cohort, max(customers) AS customers,
	   max(retention) FILTER (WHERE periods_since = 1) AS m1, max(retention) FILTER (WHERE periods_since = 2) AS m2,
	   max(retention) FILTER (WHERE periods_since = 3) AS m3, max(retention) FILTER (WHERE periods_since = 6) AS m6,
	   max(retention) FILTER (WHERE periods_since = 9) AS m9, max(retention) FILTER (WHERE periods_since = 12) AS m12,
	   max(retention) FILTER (WHERE periods_since = 15) AS m15
  FROM crm.retention_cohorts('1 month')
 WHERE cohort >= '1997-01-01' AND cohort < '1997-04-01'
 GROUP BY cohort ORDER BY cohort;

\echo '== CLV: simple CLV of a customer with a margin of 50 a year, 80% retention, 10% discount'
SELECT crm.simple_clv(50, 0.8, 0.1) AS simple_clv;
