-- crm.prob_purchases for every transaction model: P(X(t) = n) of a new
-- customer (BG/BB: P(X(n) = x) in n opportunities).  A distribution: it sums
-- to 1 and its mean is crm.expected_purchases(model, t), computed by a
-- different formula; Pareto/NBD also against numerical integration of its
-- definition (mpmath, 30 digits).
SET search_path = crm, public;
CREATE TEMP TABLE models AS
SELECT 'bgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.bgnbd AS bg,
	   'mbgnbd(r=0.525,alpha=6.183,a=0.891,b=1.614)'::crm.mbgnbd AS mbg,
	   'paretonbd(r=0.55315,alpha=10.57633,s=0.60625,beta=11.67150)'::crm.paretonbd AS pnbd,
	   'paretonbd(r=0.5,alpha=12,s=0.7,beta=4)'::crm.paretonbd AS pnbd_ab,	-- alpha > beta: the other 2F1 form
	   'bgbb(alpha=1.204,beta=0.750,gamma=0.657,delta=2.783)'::crm.bgbb AS bb;

-- sums to 1 and mean = expected purchases, at several horizons
SELECT t, round(sum(p_bg)::numeric, 9) AS bg_total, abs(sum(n * p_bg) - max(e_bg)) < 1e-9 AS bg_mean_ok,
	   round(sum(p_mbg)::numeric, 9) AS mbg_total, abs(sum(n * p_mbg) - max(e_mbg)) < 1e-9 AS mbg_mean_ok
  FROM (SELECT t, n, crm.prob_purchases(bg, n, t) AS p_bg, crm.expected_purchases(bg, t) AS e_bg,
			   crm.prob_purchases(mbg, n, t) AS p_mbg, crm.expected_purchases(mbg, t) AS e_mbg
		  FROM models, (VALUES (0.5), (2), (39), (78)) h(t), generate_series(0, 600) n) s
 GROUP BY t ORDER BY t;
SELECT t, round(sum(p)::numeric, 9) AS pnbd_total, abs(sum(n * p) - max(e)) < 1e-9 AS pnbd_mean_ok,
	   round(sum(p_ab)::numeric, 9) AS pnbd_ab_total, abs(sum(n * p_ab) - max(e_ab)) < 1e-9 AS pnbd_ab_mean_ok
  FROM (SELECT t, n, crm.prob_purchases(pnbd, n, t) AS p, crm.expected_purchases(pnbd, t) AS e,
			   crm.prob_purchases(pnbd_ab, n, t) AS p_ab, crm.expected_purchases(pnbd_ab, t) AS e_ab
		  FROM models, (VALUES (0.5), (2), (39), (78)) h(t), generate_series(0, 250) n) s
 GROUP BY t ORDER BY t;
SELECT n_opp, round(sum(p)::numeric, 12) AS bb_total, abs(sum(x * p) - max(e)) < 1e-12 AS bb_mean_ok
  FROM (SELECT n_opp, x, crm.prob_purchases(bb, x, n_opp) AS p, crm.expected_purchases(bb, n_opp) AS e
		  FROM models, (VALUES (1), (6), (30)) o(n_opp), generate_series(0, 30) x) s
 GROUP BY n_opp ORDER BY n_opp;

-- Pareto/NBD against the definition integrated numerically (mpmath):
-- NB(x; t) (beta/(beta+t))^s + int_0^t s beta^s (beta+u)^-(s+1) NB(x; u) du
SELECT m, x, t, abs(crm.prob_purchases(CASE m WHEN 'cdnow' THEN pnbd ELSE pnbd_ab END, x, t) / ref - 1) < 1e-9 AS matches
  FROM models, (VALUES ('cdnow', 0, 39, 0.59355659566126), ('cdnow', 1, 39, 0.16557532223527),
			 ('cdnow', 10, 2, 1.89383210599985e-9), ('cdnow', 5, 78, 0.0252536333762413),
			 ('cdnow', 0, 0.5, 0.975089106217681),
			 ('alpha>beta', 0, 39, 0.756518053369654), ('alpha>beta', 1, 39, 0.124707258849268),
			 ('alpha>beta', 10, 2, 4.45938188193225e-10), ('alpha>beta', 5, 78, 0.0113466735873962),
			 -- tiny probabilities keep their digits (no cancellation to rounding noise)
			 ('cdnow', 10, 0.1, 1.13022207310448e-21), ('cdnow', 20, 2, 1.4397660254931e-17),
			 ('alpha>beta', 20, 2, 1.10968101595429e-18), ('alpha>beta', 3, 0.01, 1.80082210102423e-10)) v(m, x, t, ref);
-- BG/NBD and MBG/NBD (both with the BG/NBD parameters) far in the tail, against the
-- formula in 50-digit arithmetic (mpmath)
SELECT n, t, abs(crm.prob_purchases(bg, n, t) / ref_bg - 1) < 1e-9 AS bg_matches,
	   abs(crm.prob_purchases('mbgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.mbgnbd, n, t) / ref_mbg - 1) < 1e-9 AS mbg_matches
  FROM models, (VALUES (30, 2, 1.56768110609918e-18, 1.528605789654e-18), (3, 0.01, 7.97884546232203e-10, 6.76619777972993e-10),
			 (200, 39, 4.0708535525557e-14, 4.0542438389399e-14), (3000, 1e6, 6.61047042934913e-7, 6.60687398331612e-7))
	   v(n, t, ref_bg, ref_mbg);

-- published (R BTYD), BG/NBD: P(X(2) = 10) = 1.07869e-07, P(X(39) = 0) = 0.5737864
SELECT round((crm.prob_purchases(bg, 10, 2) * 1e12)::numeric) / 1e5 AS p10_e7,
	   round(crm.prob_purchases(bg, 0, 39)::numeric, 7) AS p0_39 FROM models;
-- MBG/NBD: a share a/(a+b) drops out at time 0, so P(X(t) = 0) stays above it
SELECT round((crm.prob_purchases(mbg, 0, 39))::numeric, 6) AS mbg_p0_39,
	   crm.prob_purchases(mbg, 0, 1e6) > 0.891 / (0.891 + 1.614) AS above_dropout_share,
	   round(crm.prob_purchases(mbg, 0, 1e6)::numeric, 4) AS mbg_p0_forever FROM models;
-- no time, no purchase; BG/BB: no more transactions than opportunities
SELECT crm.prob_purchases(bg, 0, 0) AS bg0, crm.prob_purchases(mbg, 3, 0) AS mbg3,
	   crm.prob_purchases(pnbd, 0, 0) AS pnbd0, crm.prob_purchases(pnbd, 2, 0) AS pnbd2,
	   crm.prob_purchases(bb, 0, 0) AS bb0, crm.prob_purchases(bb, 7, 6) AS bb_7_of_6 FROM models;
-- BG/BB on the donations data: the share of donors with x repeat donations in
-- the 6 opportunities, predicted and observed
CREATE TEMP TABLE don (x float8, t_x float8, n float8, w float8);
\copy don FROM 'test/data/donations.csv' (FORMAT csv, HEADER)
SELECT d.x, round(crm.prob_purchases(bb, d.x, 6)::numeric, 4) AS predicted,
	   round((sum(w) / (SELECT sum(w) FROM don))::numeric, 4) AS observed
  FROM models, don d GROUP BY d.x, crm.prob_purchases(bb, d.x, 6) ORDER BY d.x;

-- bad input: negative, fractional or non-finite counts and horizons, 22023
SELECT crm.prob_purchases(pnbd, -1, 10) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(pnbd, 1.5, 10) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(pnbd, 1, -10) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(mbg, 'NaN', 10) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(mbg, 2, 'Infinity') FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(bg, -2, 10) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(bb, 2.5, 6) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(bb, 2, -6) FROM models;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases(bb, 2, 6.5) FROM models;
\echo :LAST_ERROR_SQLSTATE
