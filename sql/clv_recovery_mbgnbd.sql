-- Recovery: simulate customers from known MBG/NBD parameters with the
-- deterministic simulator, fit, and check every parameter comes back within
-- three standard errors (from the Hessian); a fit to customers simulated
-- from other parameters must not pass the same check.
SET search_path = crm, public;
CREATE TEMP TABLE truth AS
SELECT 'mbgnbd(r=0.25,alpha=4,a=0.8,b=2.5)'::crm.mbgnbd AS m,
	   'mbgnbd(r=0.5,alpha=4,a=0.8,b=2.5)'::crm.mbgnbd AS other;
-- customers join over 12 weeks and are observed to week 39; times in whole days
CREATE TEMP TABLE sim AS
SELECT (crm.mbgnbd_simulate(m, 39 - (i % 84) / 7.0, i, 1 / 7.0)).* FROM truth, generate_series(1, 20000) i;
SELECT count(*) AS customers, sum(frequency) AS purchases, count(*) FILTER (WHERE frequency = 0) AS x_zero,
	   count(*) FILTER (WHERE recency > t OR (frequency = 0 AND recency <> 0) OR frequency <> floor(frequency)) AS invalid_rows
  FROM sim;
CREATE TEMP TABLE est AS SELECT crm.mbgnbd_fit(frequency, recency, t) AS m FROM sim;
SELECT key AS param, (crm.params(t.m)->>key)::float8 AS true_value,
	   round((crm.params(e.m)->>key)::numeric, 3) AS estimate,
	   round((crm.params(e.m)->'se'->>key)::numeric, 3) AS se,
	   abs((crm.params(e.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
		   < 3 * (crm.params(e.m)->'se'->>key)::float8 AS within_3se
  FROM truth t, est e, unnest(ARRAY['r', 'alpha', 'a', 'b']) key;
SELECT (crm.mbgnbd_params(m)).converged FROM est;
-- the same seeds give the same customers and the same fit
SELECT crm.mbgnbd_params(e.m) = crm.mbgnbd_params(again.m) AS deterministic
  FROM est e,
	   (SELECT crm.mbgnbd_fit(frequency, recency, t) AS m
		  FROM (SELECT (crm.mbgnbd_simulate(m, 39 - (i % 84) / 7.0, i, 1 / 7.0)).*
				  FROM truth, generate_series(1, 20000) i) s) again;
-- the check can fail: customers from other parameters (r doubled) are not
-- within three standard errors of the first truth
SELECT bool_and(abs((crm.params(o.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
				< 3 * (crm.params(o.m)->'se'->>key)::float8) AS other_within_3se
  FROM truth t,
	   (SELECT crm.mbgnbd_fit(frequency, recency, t) AS m
		  FROM (SELECT (crm.mbgnbd_simulate(other, 39 - (i % 84) / 7.0, i, 1 / 7.0)).*
				  FROM truth, generate_series(1, 20000) i) s) o,
	   unnest(ARRAY['r', 'alpha', 'a', 'b']) key;
-- bad simulator input
SELECT crm.mbgnbd_simulate(m, -1, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.mbgnbd_simulate(m, 'NaN', 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.mbgnbd_simulate(m, 39, 1, -1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
-- parameters are checked by the type itself: negative or NaN is rejected
SELECT crm.mbgnbd_simulate('mbgnbd(r=-1,alpha=1,a=1,b=1)', 39, 1);
\echo :LAST_ERROR_SQLSTATE
