-- Recovery: simulate 20,000 customers from known BG/NBD parameters with the
-- deterministic simulator, fit, and check every parameter comes back within
-- two standard errors (the standard errors come from the Hessian).
SET search_path = crm, public;
CREATE TEMP TABLE truth AS SELECT 'bgnbd(r=0.25,alpha=4,a=0.8,b=2.5)'::crm.bgnbd AS m;
-- customers join over 12 weeks and are observed to week 39; times in whole days
CREATE TEMP TABLE sim AS
SELECT (crm.bgnbd_simulate(m, 39 - (i % 84) / 7.0, i, 1 / 7.0)).* FROM truth, generate_series(1, 20000) i;
-- the same seeds give the same customers
SELECT count(*) AS customers, sum(frequency) AS purchases, count(*) FILTER (WHERE frequency = 0) AS x_zero,
	   (SELECT sum(frequency) FROM (SELECT (crm.bgnbd_simulate(m, 39 - (i % 84) / 7.0, i, 1 / 7.0)).* FROM truth,
		  generate_series(1, 20000) i) again) = sum(frequency) AS deterministic
  FROM sim;
SELECT count(*) FILTER (WHERE recency > t OR (frequency = 0 AND recency <> 0)) AS invalid_rows FROM sim;
CREATE TEMP TABLE est AS SELECT crm.bgnbd_fit(frequency, recency, t) AS m FROM sim;
SELECT key AS param, (crm.params(t.m)->>key)::float8 AS true_value,
	   round((crm.params(e.m)->>key)::numeric, 3) AS estimate,
	   round((crm.params(e.m)->'se'->>key)::numeric, 3) AS se,
	   abs((crm.params(e.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
		   < 2 * (crm.params(e.m)->'se'->>key)::float8 AS within_2se
  FROM truth t, est e, unnest(ARRAY['r', 'alpha', 'a', 'b']) key;
SELECT (crm.bgnbd_params(m)).converged FROM est;
-- the same seeds give the same fit
SELECT crm.bgnbd_params(e.m) = crm.bgnbd_params(again.m) AS deterministic_fit
  FROM est e,
	   (SELECT crm.bgnbd_fit(frequency, recency, t) AS m
		  FROM (SELECT (crm.bgnbd_simulate(m, 39 - (i % 84) / 7.0, i, 1 / 7.0)).*
				  FROM truth, generate_series(1, 20000) i) s) again;
-- the check can fail: customers from other parameters (r doubled) are not
-- within three standard errors of the first truth
SELECT bool_and(abs((crm.params(o.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
				< 3 * (crm.params(o.m)->'se'->>key)::float8) AS other_within_3se
  FROM truth t,
	   (SELECT crm.bgnbd_fit(frequency, recency, t) AS m
		  FROM (SELECT (crm.bgnbd_simulate('bgnbd(r=0.5,alpha=4,a=0.8,b=2.5)', 39 - (i % 84) / 7.0, i, 1 / 7.0)).*
				  FROM generate_series(1, 20000) i) s) o,
	   unnest(ARRAY['r', 'alpha', 'a', 'b']) key;
-- bad simulator input
SELECT crm.bgnbd_simulate(m, -1, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_simulate(m, 39, 1, -1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_simulate(m, 'NaN', 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
-- a time 0 on the grid is +0, not -0
SELECT crm.bgnbd_simulate(m, 0, 1, 1) FROM truth;
