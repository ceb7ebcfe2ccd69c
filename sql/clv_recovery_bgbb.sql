-- Recovery: simulate customers from known BG/BB parameters with the
-- deterministic simulator, fit, and check every parameter comes back within
-- three standard errors (from the Hessian); a fit to customers simulated
-- from other parameters must not pass the same check.
SET search_path = crm, public;
-- near the published donations fit; other: alpha doubled
CREATE TEMP TABLE truth AS
SELECT 'bgbb(alpha=1.2,beta=0.75,gamma=0.66,delta=2.8)'::crm.bgbb AS m,
	   'bgbb(alpha=2.4,beta=0.75,gamma=0.66,delta=2.8)'::crm.bgbb AS other;
-- cohorts with 6 to 10 opportunities
CREATE TEMP TABLE sim AS
SELECT (crm.bgbb_simulate(m, 6 + i % 5, i)).* FROM truth, generate_series(1, 20000) i;
SELECT count(*) AS customers, sum(frequency) AS purchases, count(*) FILTER (WHERE frequency = 0) AS x_zero,
	   count(DISTINCT (frequency, recency, n)) AS patterns,
	   count(*) FILTER (WHERE frequency > recency OR recency > n OR (frequency = 0) <> (recency = 0)) AS invalid_rows
  FROM sim;
CREATE TEMP TABLE est AS SELECT crm.bgbb_fit(frequency, recency, n) AS m FROM sim;
SELECT key AS param, (crm.params(t.m)->>key)::float8 AS true_value,
	   round((crm.params(e.m)->>key)::numeric, 3) AS estimate,
	   round((crm.params(e.m)->'se'->>key)::numeric, 3) AS se,
	   abs((crm.params(e.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
		   < 3 * (crm.params(e.m)->'se'->>key)::float8 AS within_3se
  FROM truth t, est e, unnest(ARRAY['alpha', 'beta', 'gamma', 'delta']) key;
SELECT (crm.bgbb_params(m)).converged FROM est;
-- the same seeds give the same customers and the same fit
SELECT crm.bgbb_params(e.m) = crm.bgbb_params(again.m) AS deterministic
  FROM est e,
	   (SELECT crm.bgbb_fit(frequency, recency, n) AS m
		  FROM (SELECT (crm.bgbb_simulate(m, 6 + i % 5, i)).* FROM truth, generate_series(1, 20000) i) s) again;
-- the check can fail
SELECT bool_and(abs((crm.params(o.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
				< 3 * (crm.params(o.m)->'se'->>key)::float8) AS other_within_3se
  FROM truth t,
	   (SELECT crm.bgbb_fit(frequency, recency, n) AS m
		  FROM (SELECT (crm.bgbb_simulate(other, 6 + i % 5, i)).* FROM truth, generate_series(1, 20000) i) s) o,
	   unnest(ARRAY['alpha', 'beta', 'gamma', 'delta']) key;
-- bad simulator input
SELECT crm.bgbb_simulate(m, 0, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgbb_simulate(m, 2.5, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgbb_simulate(m, 'NaN', 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgbb_simulate('bgbb(alpha=NaN,beta=1,gamma=1,delta=1)', 6, 1);
\echo :LAST_ERROR_SQLSTATE
