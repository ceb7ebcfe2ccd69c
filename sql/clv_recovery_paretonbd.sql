-- Recovery: simulate customers from known Pareto/NBD parameters with the
-- deterministic simulator, fit, and check every parameter comes back within
-- three standard errors (from the Hessian); a fit to customers simulated
-- from other parameters must not pass the same check.
SET search_path = crm, public;
CREATE TEMP TABLE truth AS
SELECT 'paretonbd(r=0.55,alpha=10.5,s=0.6,beta=12)'::crm.paretonbd AS m,
	   'paretonbd(r=1.1,alpha=10.5,s=0.6,beta=12)'::crm.paretonbd AS other;
-- customers join over 12 weeks and are observed to week 39, in continuous
-- time (rounding times to whole weeks would bias r by several standard errors)
CREATE TEMP TABLE sim AS
SELECT (crm.paretonbd_simulate(m, 39 - (i % 84) / 7.0, i)).* FROM truth, generate_series(1, 10000) i;
SELECT count(*) AS customers, sum(frequency) AS purchases, count(*) FILTER (WHERE frequency = 0) AS x_zero,
	   count(*) FILTER (WHERE recency > t OR (frequency = 0 AND recency <> 0) OR frequency <> floor(frequency)) AS invalid_rows
  FROM sim;
CREATE TEMP TABLE est AS SELECT crm.paretonbd_fit(frequency, recency, t) AS m FROM sim;
SELECT key AS param, (crm.params(t.m)->>key)::float8 AS true_value,
	   round((crm.params(e.m)->>key)::numeric, 3) AS estimate,
	   round((crm.params(e.m)->'se'->>key)::numeric, 3) AS se,
	   abs((crm.params(e.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
		   < 3 * (crm.params(e.m)->'se'->>key)::float8 AS within_3se
  FROM truth t, est e, unnest(ARRAY['r', 'alpha', 's', 'beta']) key;
SELECT (crm.paretonbd_params(m)).converged FROM est;
-- the same seeds give the same customers and the same fit
SELECT crm.paretonbd_params(e.m) = crm.paretonbd_params(again.m) AS deterministic
  FROM est e,
	   (SELECT crm.paretonbd_fit(frequency, recency, t) AS m
		  FROM (SELECT (crm.paretonbd_simulate(m, 39 - (i % 84) / 7.0, i)).*
				  FROM truth, generate_series(1, 10000) i) s) again;
-- the check can fail: customers from other parameters (r doubled) are not
-- within three standard errors of the first truth
SELECT bool_and(abs((crm.params(o.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
				< 3 * (crm.params(o.m)->'se'->>key)::float8) AS other_within_3se
  FROM truth t,
	   (SELECT crm.paretonbd_fit(frequency, recency, t) AS m
		  FROM (SELECT (crm.paretonbd_simulate(other, 39 - (i % 84) / 7.0, i)).*
				  FROM truth, generate_series(1, 10000) i) s) o,
	   unnest(ARRAY['r', 'alpha', 's', 'beta']) key;
-- bad simulator input
SELECT crm.paretonbd_simulate(m, -1, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.paretonbd_simulate(m, 'NaN', 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.paretonbd_simulate(m, 39, 1, -1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
-- parameters are checked by the type itself: negative or NaN is rejected
SELECT crm.paretonbd_simulate('paretonbd(r=-1,alpha=1,s=1,beta=1)', 39, 1);
\echo :LAST_ERROR_SQLSTATE
