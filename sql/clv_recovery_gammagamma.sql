-- Recovery: simulate spend from known Gamma-Gamma parameters with the
-- deterministic simulator, fit, and check every parameter comes back within
-- three standard errors (from the Hessian); a fit to spend simulated from
-- other parameters must not pass the same check.
SET search_path = crm, public;
-- near the published CDNOW fit; other: q halved
CREATE TEMP TABLE truth AS
SELECT 'gammagamma(p=6.25,q=3.74,gamma=15.44)'::crm.gammagamma AS m,
	   'gammagamma(p=6.25,q=1.87,gamma=15.44)'::crm.gammagamma AS other;
-- 1 to 8 repeat purchases a customer
CREATE TEMP TABLE sim AS
SELECT 1 + i % 8 AS frequency, crm.gammagamma_simulate(m, 1 + i % 8, i) AS monetary_value
  FROM truth, generate_series(1, 20000) i;
SELECT count(*) AS customers, round(avg(monetary_value)::numeric, 1) AS mean_value,
	   count(*) FILTER (WHERE NOT monetary_value > 0 OR monetary_value = 'Infinity') AS invalid_rows
  FROM sim;
CREATE TEMP TABLE est AS SELECT crm.gammagamma_fit(frequency, monetary_value) AS m FROM sim;
SELECT key AS param, (crm.params(t.m)->>key)::float8 AS true_value,
	   round((crm.params(e.m)->>key)::numeric, 3) AS estimate,
	   round((crm.params(e.m)->'se'->>key)::numeric, 3) AS se,
	   abs((crm.params(e.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
		   < 3 * (crm.params(e.m)->'se'->>key)::float8 AS within_3se
  FROM truth t, est e, unnest(ARRAY['p', 'q', 'gamma']) key;
SELECT (crm.gammagamma_params(m)).converged FROM est;
-- the same seeds give the same spend and the same fit
SELECT crm.gammagamma_params(e.m) = crm.gammagamma_params(again.m) AS deterministic
  FROM est e,
	   (SELECT crm.gammagamma_fit(1 + i % 8, crm.gammagamma_simulate(m, 1 + i % 8, i)) AS m
		  FROM truth, generate_series(1, 20000) i) again;
-- the check can fail
SELECT bool_and(abs((crm.params(o.m)->>key)::float8 - (crm.params(t.m)->>key)::float8)
				< 3 * (crm.params(o.m)->'se'->>key)::float8) AS other_within_3se
  FROM truth t,
	   (SELECT crm.gammagamma_fit(1 + i % 8, crm.gammagamma_simulate(other, 1 + i % 8, i)) AS m
		  FROM truth, generate_series(1, 20000) i) o,
	   unnest(ARRAY['p', 'q', 'gamma']) key;
-- bad simulator input
SELECT crm.gammagamma_simulate(m, 0, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_simulate(m, 1.5, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_simulate(m, -2, 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_simulate(m, 'NaN', 1) FROM truth;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_simulate('gammagamma(p=1,q=-3,gamma=1)', 2, 1);
\echo :LAST_ERROR_SQLSTATE
