-- BG/NBD: fit on CDNOW (Fader, Hardie & Lee 2005) and predictions, against REFERENCE.md
SET search_path = crm, public;
CREATE TABLE clv_cdnow (id int, frequency float8, recency float8, t float8);
\copy clv_cdnow FROM 'test/data/cdnow_customers_summary.csv' (FORMAT csv, HEADER)
ANALYZE clv_cdnow;
CREATE TEMP TABLE fit AS SELECT crm.bgnbd_fit(frequency, recency, t) AS m FROM clv_cdnow;
-- published: r = 0.2425945, alpha = 4.4136019, a = 0.7929199, b = 2.4258881, LL = -9582.429
SELECT round(r::numeric, 3) AS r, round(alpha::numeric, 2) AS alpha, round(a::numeric, 3) AS a,
	   round(b::numeric, 2) AS b, abs(ll - -9582.429) < 0.1 AS ll_ok, n, converged
  FROM fit, crm.bgnbd_params(m);
-- standard errors from the Hessian (published: 0.0125, 0.3780, 0.1857, 0.7053)
SELECT round((crm.params(m)->'se'->>'r')::numeric, 4) AS se_r, round((crm.params(m)->'se'->>'alpha')::numeric, 3) AS se_alpha,
	   round((crm.params(m)->'se'->>'a')::numeric, 3) AS se_a, round((crm.params(m)->'se'->>'b')::numeric, 3) AS se_b
  FROM fit;
-- deterministic: the same bits whatever the row order, and with weights
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t ORDER BY id DESC) FROM clv_cdnow)::text = m::text AS reversed_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t ORDER BY md5(id::text)) FROM clv_cdnow)::text = m::text AS shuffled_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t, w) FROM (SELECT frequency, recency, t, count(*)::float8 w
		  FROM clv_cdnow GROUP BY 1, 2, 3) g)::text = m::text AS weighted_same
  FROM fit;
-- a parallel plan (partial aggregates combined from workers) gives the same model
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_cdnow;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_cdnow)::text = m::text AS parallel_same FROM fit;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;

-- predictions with the published parameters (0.243, 4.414, 0.793, 2.426)
CREATE TEMP TABLE pub AS SELECT 'bgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.bgnbd AS m,
	'bgnbd(r=0.2425945,alpha=4.4136019,a=0.7929199,b=2.4258881)'::crm.bgnbd AS full_m;
-- E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226 (Hardie's spreadsheet)
SELECT round(crm.expected_purchases(m, 39, 2, 30.43, 38.86)::numeric, 3) AS e_y39 FROM pub;
-- P(X(2) = 10) = 1.07869e-07, P(X(39) = 0) = 0.5737864 (R BTYD)
SELECT round((crm.prob_purchases(m, 10, 2) * 1e12)::numeric) / 1e5 AS p10_e7,
	   round(crm.prob_purchases(m, 0, 39)::numeric, 7) AS p0_39 FROM pub;
-- probabilities over n add up to one
SELECT round(sum(crm.prob_purchases(m, n, 39))::numeric, 9) AS total FROM pub, generate_series(0, 400) n;
-- unconditional E[X(t)]: 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576 (Hardie's spreadsheet,
-- with the unrounded parameters).  The exact 2F1 (mpmath agrees to 12 digits) gives 1.85796
-- at t = 78, 4e-4 above the spreadsheet, whose truncated series is short at z = 0.95.
SELECT t, round(crm.expected_purchases(full_m, t)::numeric, 4) AS e_x,
	   abs(crm.expected_purchases(full_m, t) - ref) < 5e-4 AS within_5e4
  FROM pub, (VALUES (0.1429, 0.0078), (1, 0.0532), (3, 0.1506), (31.8571, 1.0405), (32, 1.0437), (78, 1.8576)) v(t, ref);
-- single-customer log-likelihood at r = 0.25, alpha = 4, a = 0.8, b = 2.5, T = 40:
-- (0, 0) -> -0.59947382, (200, 38) -> 100.7957 (large x, log space)
SELECT round(crm.log_likelihood('bgnbd(r=0.25,alpha=4,a=0.8,b=2.5)'::crm.bgnbd, 0, 0, 40)::numeric, 8) AS ll_0,
	   round(crm.log_likelihood('bgnbd(r=0.25,alpha=4,a=0.8,b=2.5)'::crm.bgnbd, 200, 38, 40)::numeric, 4) AS ll_200;
-- the sum of single-customer log-likelihoods is the model's
SELECT abs((SELECT sum(crm.log_likelihood(m, frequency, recency, t)) FROM clv_cdnow) - (crm.bgnbd_params(m)).ll) < 1e-6
	   AS ll_consistent
  FROM fit;
-- P(alive): 1 without repeat purchases, lower the longer since the last one
SELECT round(crm.p_alive(m, 0, 0, 38.86)::numeric, 4) AS p0, round(crm.p_alive(m, 2, 30.43, 38.86)::numeric, 4) AS p_recent,
	   round(crm.p_alive(m, 2, 5, 38.86)::numeric, 4) AS p_old, round(crm.p_alive(m, 200, 38, 40)::numeric, 4) AS p_big FROM pub;
-- large x does not overflow
SELECT round(crm.expected_purchases(m, 10, 500, 40, 40)::numeric, 2) AS e_big,
	   round(crm.expected_purchases(m, 10, 5000, 40, 40)::numeric, 1) AS e_huge FROM pub;
-- horizon 0 means no purchases
SELECT crm.expected_purchases(m, 0, 2, 30.43, 38.86) AS e0, crm.expected_purchases(m, 0) AS u0 FROM pub;

-- text form: round trip, optional fields, converged flag
SELECT 'bgnbd(r=0.2426,alpha=4.4136,a=0.7929,b=2.4259,ll=-9582.43,n=2357)'::crm.bgnbd;
SELECT ' bgnbd ( r = 1 , alpha = 2, a = 3, b = 4, se_r = 0.5, converged = false ) '::crm.bgnbd;
SELECT crm.params('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd);
SELECT m::text::crm.bgnbd::text = m::text AS text_round_trip FROM fit;
SELECT crm.bgnbd_params('bgnbd(r=1,alpha=2,a=3,b=4,ll=-5,n=10,converged=false)');
-- binary round trip
CREATE TEMP TABLE bin (m crm.bgnbd);
COPY (SELECT m FROM fit) TO '/tmp/crm_clv_bgnbd.bin' (FORMAT binary);
COPY bin FROM '/tmp/crm_clv_bgnbd.bin' (FORMAT binary);
SELECT bin.m::text = fit.m::text AS binary_round_trip FROM bin, fit;
-- a model stored in a table, used per customer
CREATE TEMP TABLE top AS
SELECT id, round(crm.expected_purchases(m, 39, frequency, recency, t)::numeric, 3) AS e39,
	   round(crm.p_alive(m, frequency, recency, t)::numeric, 3) AS p_alive
  FROM fit, clv_cdnow ORDER BY crm.expected_purchases(m, 39, frequency, recency, t) DESC, id LIMIT 5;
SELECT * FROM top;
DROP TABLE clv_cdnow;
