-- The fitting aggregates' state: the sampled start of large fits, states
-- shared by two aggregates, and window aggregates that finalise the state
-- and then add rows to it.
SET search_path = crm, public;
CREATE TABLE clv_state_cdnow (id int, frequency float8, recency float8, t float8);
\copy clv_state_cdnow FROM 'test/data/cdnow_customers_summary.csv' (FORMAT csv, HEADER)

-- two aggregates over the same arguments share one transition state: each
-- final function leaves it as it found it
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t)::text FROM clv_state_cdnow) = b::text AS bgnbd_same,
	   (SELECT crm.mbgnbd_fit(frequency, recency, t)::text FROM clv_state_cdnow) = m::text AS mbgnbd_same,
	   (SELECT crm.paretonbd_fit(frequency, recency, t)::text FROM clv_state_cdnow) = p::text AS paretonbd_same
  FROM (SELECT crm.bgnbd_fit(frequency, recency, t) b, crm.mbgnbd_fit(frequency, recency, t) m,
			   crm.paretonbd_fit(frequency, recency, t) p
		  FROM clv_state_cdnow) s;

-- a running fit finalises the state after every row, and rows keep coming
-- (the first frames hold too few customers to converge: their warnings are muted)
SET client_min_messages = error;
CREATE TEMP TABLE running AS
SELECT id, crm.bgnbd_fit(frequency, recency, t) OVER (ORDER BY id) AS m FROM clv_state_cdnow WHERE id <= 1000;
RESET client_min_messages;
SELECT (SELECT m::text FROM running WHERE id = 1000)
		 = (SELECT crm.bgnbd_fit(frequency, recency, t)::text FROM clv_state_cdnow WHERE id <= 1000) AS last_same,
	   (SELECT m::text FROM running WHERE id = 500)
		 = (SELECT crm.bgnbd_fit(frequency, recency, t)::text FROM clv_state_cdnow WHERE id <= 500) AS middle_same;

-- 90,000 simulated customers in continuous time: more than 32,768 distinct
-- rows, so the fit starts from a fit on a sample and finishes on all rows.
-- It must land on the maximum: moving any parameter by 0.01% either way
-- lowers the log-likelihood (summed row by row).
CREATE TABLE clv_state_big AS
SELECT (crm.bgnbd_simulate('bgnbd(r=0.25,alpha=4,a=0.8,b=2.5)', 39 - (i % 84) / 7.0, i)).*
  FROM generate_series(1, 90000) i;
CREATE TEMP TABLE big_rows AS SELECT frequency, recency, t, count(*) AS w FROM clv_state_big GROUP BY 1, 2, 3;
ANALYZE clv_state_big;
SELECT sum(w) AS customers, count(*) AS distinct_rows FROM big_rows;
CREATE TEMP TABLE big_fit AS SELECT crm.bgnbd_fit(frequency, recency, t) AS m FROM clv_state_big;
SELECT (crm.bgnbd_params(m)).converged, round((crm.bgnbd_params(m)).r::numeric, 3) AS r,
	   round((crm.bgnbd_params(m)).alpha::numeric, 2) AS alpha FROM big_fit;
SELECT k AS param, bool_and(ll_moved < ll_fit) AS maximum
  FROM (SELECT k, (crm.bgnbd_params(m)).ll AS ll_fit,
			   (SELECT sum(w * crm.log_likelihood(format('bgnbd(r=%s,alpha=%s,a=%s,b=%s)',
						p.r * CASE WHEN k = 'r' THEN f ELSE 1 END, p.alpha * CASE WHEN k = 'alpha' THEN f ELSE 1 END,
						p.a * CASE WHEN k = 'a' THEN f ELSE 1 END, p.b * CASE WHEN k = 'b' THEN f ELSE 1 END)::crm.bgnbd,
						frequency, recency, t)) FROM big_rows) AS ll_moved
		  FROM big_fit, crm.bgnbd_params(m) p, unnest(ARRAY['r', 'alpha', 'a', 'b']) k, unnest(ARRAY[0.9999, 1.0001]) f) s
 GROUP BY k ORDER BY k;
-- 20,000 customers on a day grid (times in sevenths of a week): an x with
-- more rows than there are distinct times takes the powers of (alpha + t)
-- once a time instead of an exp a row.  The fitted log-likelihood is the
-- sum of crm.log_likelihood row by row, and it is the maximum.
CREATE TEMP TABLE grid AS
SELECT (crm.bgnbd_simulate('bgnbd(r=0.25,alpha=4,a=0.8,b=2.5)', 39 - (i % 84) / 7.0, i, 1 / 7.0)).*
  FROM generate_series(1, 20000) i;
SELECT (SELECT count(*) FROM (SELECT t FROM grid UNION SELECT recency FROM grid) u) AS distinct_times,
	   (SELECT max(n) FROM (SELECT frequency, count(*) AS n FROM (SELECT DISTINCT frequency, recency, t FROM grid) d
							 WHERE frequency > 0 GROUP BY 1) g) AS most_rows_of_one_x;
CREATE TEMP TABLE grid_fit AS
SELECT crm.bgnbd_fit(frequency, recency, t) AS m, crm.mbgnbd_fit(frequency, recency, t) AS mm FROM grid;
SELECT abs((SELECT sum(crm.log_likelihood(m, frequency, recency, t)) FROM grid) / (crm.bgnbd_params(m)).ll - 1) < 1e-12 AS bgnbd_ll_matches,
	   abs((SELECT sum(crm.log_likelihood(mm, frequency, recency, t)) FROM grid) / (crm.mbgnbd_params(mm)).ll - 1) < 1e-12 AS mbgnbd_ll_matches
  FROM grid_fit;
SELECT k AS param, bool_and(ll_moved < ll_fit) AS maximum
  FROM (SELECT k, (crm.bgnbd_params(m)).ll AS ll_fit,
			   (SELECT sum(crm.log_likelihood(format('bgnbd(r=%s,alpha=%s,a=%s,b=%s)',
						p.r * CASE WHEN k = 'r' THEN f ELSE 1 END, p.alpha * CASE WHEN k = 'alpha' THEN f ELSE 1 END,
						p.a * CASE WHEN k = 'a' THEN f ELSE 1 END, p.b * CASE WHEN k = 'b' THEN f ELSE 1 END)::crm.bgnbd,
						frequency, recency, t)) FROM grid) AS ll_moved
		  FROM grid_fit, crm.bgnbd_params(m) p, unnest(ARRAY['r', 'alpha', 'a', 'b']) k, unnest(ARRAY[0.9999, 1.0001]) f) s
 GROUP BY k ORDER BY k;
-- Pareto/NBD above 32,768 distinct rows also starts from a fit on a sample
-- (and from its curvature); on the same 90,000 customers its log-likelihood
-- is the row-by-row sum, and it is the maximum
CREATE TEMP TABLE pnbd_rows AS SELECT frequency, recency, t FROM clv_state_big;
SELECT count(*) AS distinct_rows FROM (SELECT DISTINCT frequency, recency, t FROM pnbd_rows) s;
CREATE TEMP TABLE pnbd_fit AS SELECT crm.paretonbd_fit(frequency, recency, t) AS m FROM pnbd_rows;
SELECT (crm.paretonbd_params(m)).converged,
	   abs((SELECT sum(crm.log_likelihood(m, frequency, recency, t)) FROM pnbd_rows) / (crm.paretonbd_params(m)).ll - 1) < 1e-12 AS ll_matches
  FROM pnbd_fit;
SELECT k AS param, bool_and(ll_moved < ll_fit) AS maximum
  FROM (SELECT k, (crm.paretonbd_params(m)).ll AS ll_fit,
			   (SELECT sum(crm.log_likelihood(format('paretonbd(r=%s,alpha=%s,s=%s,beta=%s)',
						p.r * CASE WHEN k = 'r' THEN f ELSE 1 END, p.alpha * CASE WHEN k = 'alpha' THEN f ELSE 1 END,
						p.s * CASE WHEN k = 's' THEN f ELSE 1 END, p.beta * CASE WHEN k = 'beta' THEN f ELSE 1 END)::crm.paretonbd,
						frequency, recency, t)) FROM pnbd_rows) AS ll_moved
		  FROM pnbd_fit, crm.paretonbd_params(m) p, unnest(ARRAY['r', 'alpha', 's', 'beta']) k, unnest(ARRAY[0.9999, 1.0001]) f) s
 GROUP BY k ORDER BY k;
-- the 45,000 customers of that table without a repeat purchase: no interior
-- maximum, though the Pareto/NBD optimiser stops on a flat spot with a
-- positive definite Hessian there; converged = false all the same
SET client_min_messages = error;
CREATE TEMP TABLE no_repeat AS SELECT * FROM clv_state_big ORDER BY frequency, recency, t LIMIT 45000;
SELECT max(frequency) AS most_repeats, count(DISTINCT t) AS ages,
	   (crm.paretonbd_params(crm.paretonbd_fit(frequency, recency, t))).converged AS paretonbd_converged,
	   (crm.bgnbd_params(crm.bgnbd_fit(frequency, recency, t))).converged AS bgnbd_converged
  FROM no_repeat;
RESET client_min_messages;
-- weights far beyond customer counts (10^9 each) scale the log-likelihood
-- past what an absolute tolerance can resolve: the fit still converges, on
-- the same parameters to five digits (a and b differ in the sixth: the
-- log-likelihood is that flat along them, 10^-4 standard errors)
SELECT p.converged, abs(p.r / q.r - 1) < 1e-5 AND abs(p.alpha / q.alpha - 1) < 1e-5
		AND abs(p.a / q.a - 1) < 1e-5 AND abs(p.b / q.b - 1) < 1e-5 AS same_parameters
  FROM big_fit, crm.bgnbd_params(m) q,
	   crm.bgnbd_params((SELECT crm.bgnbd_fit(frequency, recency, t, 1e9) FROM clv_state_big)) p;
-- and the same model whatever the row order or plan (here the leader's
-- partial state is merged with the workers')
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t ORDER BY random()) FROM clv_state_big)::text = m::text AS shuffled_same
  FROM big_fit;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_state_big;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_state_big)::text = m::text AS parallel_same
  FROM big_fit;
-- weights that are not whole numbers up to 2^53 cross from the workers as
-- float8 rather than as small integers: the parallel plan gives the serial
-- plan's model (each key's weights add up exactly, in any order)
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE weighted_fit AS
SELECT crm.bgnbd_fit(frequency, recency, t, CASE WHEN frequency::int % 2 = 0 THEN 0.75 ELSE 2.0 ^ 60 END) AS m
  FROM clv_state_big;
SET max_parallel_workers_per_gather = 2;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t, CASE WHEN frequency::int % 2 = 0 THEN 0.75 ELSE 2.0 ^ 60 END)
		  FROM clv_state_big)::text = m::text AS parallel_weighted_same,
	   abs((crm.bgnbd_params(m)).n / (SELECT sum(CASE WHEN frequency::int % 2 = 0 THEN 0.75 ELSE 2.0 ^ 60 END)
										FROM clv_state_big) - 1) < 1e-12 AS weights_kept
  FROM weighted_fit;
-- a key column with more than 65,536 distinct values (here recency) moves
-- the state from packed to wide rows midway (in the serial plans; each
-- parallel worker sees fewer): same model in any row order and plan, and
-- the same as from the rows merged beforehand.  The made-up rows have no
-- interior maximum: the warnings that say so are muted.
SET client_min_messages = error;
CREATE TABLE clv_state_wide AS
SELECT i % 5 + 1 AS frequency, (i % 70001) / 70001.0 * 30 AS recency, 30 + i % 3 AS t, i FROM generate_series(1, 140002) i;
ANALYZE clv_state_wide;
SELECT count(DISTINCT recency) AS distinct_recency FROM clv_state_wide;
CREATE TEMP TABLE wide_fit AS SELECT crm.bgnbd_fit(frequency, recency, t) AS m FROM clv_state_wide;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t ORDER BY i DESC) FROM clv_state_wide)::text = m::text AS reversed_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t, w) FROM (SELECT frequency, recency, t, count(*)::float8 w
		  FROM clv_state_wide GROUP BY 1, 2, 3) g)::text = m::text AS weighted_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_state_wide)::text = m::text AS parallel_same
  FROM wide_fit;
-- fractional weights are summed exactly (fixed point) and turned into a
-- double once: the same bits whatever the row order or plan; ten weights of
-- 0.1 on one row are exactly 1 (a float8 sum gives 0.9999999999999999)
CREATE TABLE clv_state_frac AS
SELECT s.*, (0.1 + (i % 7) * 0.13)::float8 AS w, i
  FROM generate_series(1, 60000) i,
	   LATERAL crm.bgnbd_simulate('bgnbd(r=0.25,alpha=4,a=0.8,b=2.5)', 39 - (i % 84) / 7.0, i, 1 / 7.0) s;
ANALYZE clv_state_frac;
CREATE TEMP TABLE frac_fit AS SELECT crm.bgnbd_fit(frequency, recency, t, w ORDER BY i) AS m FROM clv_state_frac;
EXPLAIN (COSTS OFF) SELECT crm.bgnbd_fit(frequency, recency, t, w) FROM clv_state_frac;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t, w ORDER BY i DESC) FROM clv_state_frac)::text = m::text AS reversed_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t, w ORDER BY md5(i::text)) FROM clv_state_frac)::text = m::text AS shuffled_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t, w) FROM clv_state_frac)::text = m::text AS parallel_same,
	   (crm.bgnbd_params(m)).converged,
	   (SELECT (crm.bgnbd_params(crm.bgnbd_fit(1, 1, 2, 0.1))).n FROM generate_series(1, 10)) AS ten_tenths
  FROM frac_fit;
-- a worker whose rows hold more than 65,536 values of one column keeps wide
-- rows and sends them compact through keys numbered afresh (the others send
-- their packed table as it is): with 300,000 distinct recencies at least one
-- of the two workers does; the parallel plan gives the serial model
CREATE TABLE clv_state_wide2 AS
SELECT 1 + i % 3 AS frequency, i / 300000.0 * 30 AS recency, 31.0 AS t FROM generate_series(1, 300000) i;
ANALYZE clv_state_wide2;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE wide2_fit AS SELECT crm.bgnbd_fit(frequency, recency, t) AS m FROM clv_state_wide2;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_state_wide2;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_state_wide2)::text = m::text AS parallel_same
  FROM wide2_fit;
RESET parallel_leader_participation;
-- customers without a repeat purchase, (0, 0, T), skip the hash table for an
-- array by T; when T has more than 65,536 distinct values that array moves to
-- the wide rows midway too: the same model as from the rows merged beforehand
CREATE TABLE clv_state_zero AS
SELECT CASE WHEN i % 2 = 0 THEN 0 ELSE i % 5 + 1 END AS frequency,
	   CASE WHEN i % 2 = 0 THEN 0 ELSE (i % 97) / 97.0 * 20 END AS recency,
	   30 + (i % 70001) / 70001.0 * 10 AS t, i FROM generate_series(1, 140002) i;
ANALYZE clv_state_zero;
SELECT count(DISTINCT t) FILTER (WHERE frequency = 0) AS distinct_t_of_zero_rows FROM clv_state_zero;
CREATE TEMP TABLE zero_fit AS SELECT crm.bgnbd_fit(frequency, recency, t) AS m FROM clv_state_zero;
SELECT (SELECT crm.bgnbd_fit(frequency, recency, t ORDER BY i DESC) FROM clv_state_zero)::text = m::text AS reversed_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t, w) FROM (SELECT frequency, recency, t, count(*)::float8 w
		  FROM clv_state_zero GROUP BY 1, 2, 3) g)::text = m::text AS weighted_same,
	   (SELECT crm.bgnbd_fit(frequency, recency, t) FROM clv_state_zero)::text = m::text AS parallel_same,
	   (crm.bgnbd_params(m)).n AS customers
  FROM zero_fit;
RESET client_min_messages;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE clv_state_cdnow, clv_state_big, clv_state_wide, clv_state_zero, clv_state_frac, clv_state_wide2;
