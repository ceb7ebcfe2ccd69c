-- Pareto/NBD, MBG/NBD, Gamma-Gamma, BG/BB and discounted CLV against REFERENCE.md
SET search_path = crm, public;
CREATE TEMP TABLE cd (id int, x float8, t_x float8, t float8, zbar float8);
\copy cd FROM 'test/data/cdnow_customers_summary_with_transactions.csv' (FORMAT csv, HEADER)
-- unrounded mean repeat spend, from the transactions
CREATE TEMP TABLE cdnow_raw (line text);
\copy cdnow_raw FROM 'test/data/CDNOW_sample.txt'
CREATE TEMP TABLE cs AS
SELECT id, (crm.btyd_summary(day, amount, '1997-09-30', '7 days')).*
  FROM (SELECT f[2]::int AS id, to_date(f[3], 'YYYYMMDD')::timestamptz AS day, f[5]::numeric AS amount
		  FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') f FROM cdnow_raw) s) tx
 GROUP BY id;

-- Pareto/NBD on CDNOW: r = 0.55315, alpha = 10.57633, s = 0.60625, beta = 11.67150, LL = -9594.976
CREATE TEMP TABLE pnbd AS SELECT crm.paretonbd_fit(x, t_x, t) AS m FROM cd;
SELECT round(r::numeric, 3) AS r, round(alpha::numeric, 1) AS alpha, round(s::numeric, 3) AS s,
	   round(beta::numeric, 1) AS beta, abs(ll - -9594.976) < 0.1 AS ll_ok, n, converged
  FROM pnbd, crm.paretonbd_params(m);
-- P(alive | 26, 30.86, 31) = 0.9979 and E[Y(52) | same] = 25.46 with (0.5534, 10.5802, 0.6061, 11.6562);
-- the exact value (mpmath agrees to 15 digits) is 25.4549: 25.5 to 3 significant figures
SELECT round(crm.p_alive(m, 26, 30.86, 31)::numeric, 4) AS p_alive,
	   round(crm.expected_purchases(m, 52, 26, 30.86, 31)::numeric, 4) AS e52,
	   round(crm.expected_purchases(m, 52, 26, 30.86, 31)::numeric, 1) AS e52_3sf
  FROM (SELECT 'paretonbd(r=0.5534,alpha=10.5802,s=0.6061,beta=11.6562)'::crm.paretonbd m) p;
-- stress case: t_x = T makes the second likelihood term zero; large x must not overflow
-- E[Y(10) | 132, 200, 200] = 6.2061, E[Y(10) | 133, 200, 200] = 6.2529
SELECT round(crm.expected_purchases(m, 10, 132, 200, 200)::numeric, 4) AS e132,
	   round(crm.expected_purchases(m, 10, 133, 200, 200)::numeric, 4) AS e133,
	   round(crm.expected_purchases(m, 10, 1000, 199, 200)::numeric, 2) AS e1000,
	   crm.p_alive(m, 1000, 150, 200) < 1e-10 AS gone, crm.p_alive(m, 133, 200, 200) AS alive
  FROM (SELECT 'paretonbd(r=0.55,alpha=10.58,s=0.61,beta=11.67)'::crm.paretonbd m) p;
-- unconditional expectation, and the model's log-likelihood is the sum over customers
SELECT round(crm.expected_purchases(m, 39)::numeric, 4) AS e39,
	   abs((SELECT sum(crm.log_likelihood(m, x, t_x, t)) FROM cd) - (crm.paretonbd_params(m)).ll) < 1e-6 AS ll_consistent
  FROM pnbd;
-- s = 1 is a removable singularity
SELECT round(crm.expected_purchases('paretonbd(r=0.5,alpha=10,s=1,beta=10)'::crm.paretonbd, 10)::numeric, 6) AS s_one,
	   round(crm.expected_purchases('paretonbd(r=0.5,alpha=10,s=1.000000001,beta=10)'::crm.paretonbd, 10)::numeric, 6) AS s_near_one;

-- MBG/NBD on CDNOW (BTYDplus): r = 0.525, alpha = 6.183, a = 0.891, b = 1.614
CREATE TEMP TABLE mbg AS SELECT crm.mbgnbd_fit(x, t_x, t) AS m FROM cd;
SELECT round(r::numeric, 3) AS r, round(alpha::numeric, 2) AS alpha, round(a::numeric, 3) AS a,
	   round(b::numeric, 2) AS b, n, converged
  FROM mbg, crm.mbgnbd_params(m);
SELECT round(crm.p_alive(m, 0, 0, 38.86)::numeric, 4) AS p_alive_x0, round(crm.p_alive(m, 2, 30.43, 38.86)::numeric, 4) AS p_alive,
	   round(crm.expected_purchases(m, 39, 2, 30.43, 38.86)::numeric, 4) AS e39,
	   round(crm.expected_purchases(m, 39)::numeric, 4) AS e39_new
  FROM mbg;
-- predicted repeat purchases in the 39-week holdout (actual: 1,882), MBG/NBD against BG/NBD
SELECT round(sum(crm.expected_purchases(m, 39, x, t_x, t))) AS mbgnbd_holdout,
	   round(sum(crm.expected_purchases('bgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.bgnbd, 39, x, t_x, t))) AS bgnbd_holdout
  FROM mbg, cd;

-- Gamma-Gamma on the 946 customers with x > 0: p = 6.25, q = 3.74, gamma = 15.44,
-- LL = -4055.9177 with unrounded spend, -4055.9232 with the cents-rounded zbar column
CREATE TEMP TABLE gg AS SELECT crm.gammagamma_fit(frequency, monetary_value) AS m FROM cs;
SELECT round(p::numeric, 2) AS p, round(q::numeric, 2) AS q, round(gamma::numeric, 2) AS gamma,
	   round(ll::numeric, 4) AS ll, n, converged
  FROM gg, crm.gammagamma_params(m);
SELECT round(ll::numeric, 4) AS ll_rounded_zbar, n FROM crm.gammagamma_params((SELECT crm.gammagamma_fit(x, zbar) FROM cd));
-- mean conditional expected spend over all 2,357 customers = 35.2529588 (x = 0: population mean)
SELECT abs(avg(crm.expected_spend(m, frequency, monetary_value)) - 35.2529588) < 1e-3 AS mean_ok,
	   round(avg(crm.expected_spend(m, frequency, monetary_value))::numeric, 3) AS mean_spend
  FROM gg, cs;
SELECT round(crm.expected_spend(m, 0, 0)::numeric, 4) AS population_mean,
	   round(crm.expected_spend(m, 2, 22.345)::numeric, 4) AS customer_1 FROM gg;

-- BG/BB on the donations data (weights): alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783
CREATE TEMP TABLE don (x float8, t_x float8, n float8, w float8);
\copy don FROM 'test/data/donations.csv' (FORMAT csv, HEADER)
CREATE TEMP TABLE bb AS SELECT crm.bgbb_fit(x, t_x, n, w) AS m FROM don;
SELECT round(alpha::numeric, 3) AS alpha, round(beta::numeric, 3) AS beta, round(gamma::numeric, 3) AS gamma,
	   round(delta::numeric, 3) AS delta, n, converged
  FROM bb, crm.bgbb_params(m);
-- P(alive next period): (0, 0) 0.11, (2, 4) 0.59, (6, 6) 0.93
SELECT round(crm.p_alive(m, 0, 0, 6)::numeric, 2) AS p00, round(crm.p_alive(m, 2, 4, 6)::numeric, 2) AS p24,
	   round(crm.p_alive(m, 6, 6, 6)::numeric, 2) AS p66 FROM bb;
-- expected repeat donations over the next 5 periods, summed over all donors: 12884.2
SELECT round(sum(w * crm.expected_purchases(m, 5, x, t_x, n))::numeric, 1) AS next5 FROM bb, don;
-- the same fit from the 11,104 unweighted rows
SELECT crm.bgbb_fit(x, t_x, n)::text = (SELECT m::text FROM bb) AS unweighted_same
  FROM don, generate_series(1, w::int);
SELECT round(crm.expected_purchases(m, 6)::numeric, 4) AS e6_new, crm.expected_purchases(m, 0) AS e0 FROM bb;

-- Discounted CLV: 12 months (4.345 weeks each), 1% a month
SELECT id, round(crm.clv(b.m, gg.m, frequency, recency, t, monetary_value, 12, 0.01, 4.345)::numeric, 2) AS clv_bgnbd,
	   round(crm.clv(p.m, gg.m, frequency, recency, t, monetary_value, 12, 0.01, 4.345)::numeric, 2) AS clv_pnbd,
	   round(crm.clv(mb.m, gg.m, frequency, recency, t, monetary_value, 12, 0.01, 4.345)::numeric, 2) AS clv_mbgnbd
  FROM cs, gg, pnbd p, mbg mb, (SELECT crm.bgnbd_fit(x, t_x, t) m FROM cd) b
 WHERE id IN (1, 2, 3, 509, 1516) ORDER BY id;
-- without discount, the value is spend x expected purchases over the whole horizon
SELECT abs(crm.clv(b, g, 2, 30.43, 38.86, 22.345, 12, 0, 4.345)
		   - crm.expected_spend(g, 2, 22.345) * crm.expected_purchases(b, 12 * 4.345, 2, 30.43, 38.86)) < 1e-9 AS undiscounted_ok,
	   crm.clv(b, g, 2, 30.43, 38.86, 22.345, 0, 0.01, 4.345) AS zero_horizon
  FROM (SELECT 'bgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.bgnbd b, m g FROM gg) s;
