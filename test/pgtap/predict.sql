-- pgTAP: logistic regression (crm.logit_fit), predictions with reasons
-- (crm.predict, crm.explain_prediction) and the measures of a score
-- (crm.auc, crm.log_loss, crm.brier), against base R 4.2.2 on the data of
-- test/data/scoring (README.md there): wa_churn's train split, with the
-- collinear columns present, must give glm's log-likelihood and test AUC;
-- two_class_example yardstick's AUC.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(39);
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS SETOF text LANGUAGE plpgsql AS
$$ DECLARE l text; BEGIN FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP RETURN NEXT l; END LOOP; END $$;

CREATE TEMP TABLE wa (customer_id int, churn text, female int, senior_citizen int, partner int, dependents int,
	tenure int, phone_service int, multiple_lines text, internet_service text, online_security text,
	online_backup text, device_protection text, tech_support text, streaming_tv text, streaming_movies text,
	contract text, paperless_billing int, payment_method text, monthly_charges float8, total_charges float8);
\copy wa FROM 'test/data/scoring/wa_churn.csv' (FORMAT csv, HEADER)
-- a plain table (rolled back), so that a parallel plan may scan it
CREATE TABLE public.predict_f AS
SELECT customer_id, churn = 'Yes' AS y, customer_id % 4 = 0 AS test,
	   jsonb_build_object('female', female, 'senior_citizen', senior_citizen, 'partner', partner,
						  'dependents', dependents, 'tenure', tenure, 'phone_service', phone_service,
						  'multiple_lines', multiple_lines, 'internet_service', internet_service,
						  'online_security', online_security, 'online_backup', online_backup,
						  'device_protection', device_protection, 'tech_support', tech_support,
						  'streaming_tv', streaming_tv, 'streaming_movies', streaming_movies, 'contract', contract,
						  'paperless_billing', paperless_billing, 'payment_method', payment_method,
						  'monthly_charges', monthly_charges) AS x
  FROM wa;
CREATE TEMP VIEW f AS SELECT * FROM public.predict_f;
ANALYZE public.predict_f;
CREATE TEMP TABLE m AS SELECT crm.logit_fit(y, x) AS model FROM f WHERE NOT test;

-- the reference figures
SELECT ok(abs((model).log_likelihood - (-2209.76645)) < 1e-4,
		  format('wa_churn train log-likelihood %s = glm''s -2209.76645', (model).log_likelihood)) FROM m;
SELECT ok((model).converged AND (model).iterations <= 10, format('converged in %s iterations (glm: 6)', (model).iterations)) FROM m;
SELECT is((SELECT round(crm.auc(crm.predict(m.model, f.x), f.y)::numeric, 8) FROM f, m WHERE f.test),
		  0.85561237, 'test AUC 0.8556123721 (glm)');
SELECT is((SELECT round(crm.auc(crm.predict(m.model, f.x), f.y)::numeric, 8) FROM f, m WHERE NOT f.test),
		  0.84265095, 'train AUC 0.8426509469 (glm)');
SELECT is(cardinality((model).dropped), 7, 'the 7 aliased columns are dropped, not fitted: ' || (model).dropped::text) FROM m;
SELECT is(((model).n, (model).positives)::text, (5283::float8, 1395::float8)::text, 'rows and positives of the train split') FROM m;
SELECT ok((model).vectors < 5283, format('%s distinct feature vectors kept for 5,283 rows', (model).vectors)) FROM m;
SELECT ok((SELECT bool_and(s > 0) FROM unnest((model).std_error) s), 'every kept column has a standard error') FROM m;

-- the same fit whatever the row order and plan
SELECT is((SELECT crm.logit_fit(y, x)::text FROM (SELECT * FROM f WHERE NOT test ORDER BY md5(customer_id::text)) s),
		  (SELECT model::text FROM m), 'row order does not change the model');
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT ok((SELECT string_agg(l, ' ') FROM (SELECT * FROM pg_temp.plan_of('SELECT crm.logit_fit(y, x) FROM public.predict_f WHERE NOT test')) p(l))
		  LIKE '%Partial Aggregate%', 'the fit runs as partial aggregates in parallel workers');
SELECT is((SELECT crm.logit_fit(y, x)::text FROM public.predict_f WHERE NOT test), (SELECT model::text FROM m),
		  'a parallel plan (partial states combined) gives the same model');
RESET max_parallel_workers_per_gather;
-- weights: every row twice is the same fit with twice the log-likelihood
SELECT ok((SELECT abs((w).log_likelihood - 2 * (m.model).log_likelihood) < 1e-6
				  AND abs((w).coefficient[2] - (m.model).coefficient[2]) < 1e-9
			 FROM (SELECT crm.logit_fit(y, x, 2.0) AS w FROM f WHERE NOT test) s, m),
		  'weight 2 on every row: the same coefficients, twice the log-likelihood');
-- an L2 penalty shrinks the coefficients
SELECT ok((SELECT (SELECT sum(c * c) FROM unnest((p).coefficient[2:]) c) < (SELECT sum(c * c) FROM unnest((m.model).coefficient[2:]) c)
				  AND (p).l2 = 10 AND (p).log_likelihood < (m.model).log_likelihood
			 FROM (SELECT crm.logit_fit(y, x, 1.0, 10) AS p FROM f WHERE NOT test) s, m),
		  'l2 => 10 shrinks the coefficients and lowers the log-likelihood');

-- predictions with reasons that add up
SELECT is((SELECT sum(e.contribution) FROM f, m, crm.explain_prediction(m.model, f.x) e WHERE f.customer_id = 8),
		  (SELECT crm.predict_log_odds(m.model, f.x) FROM f, m WHERE f.customer_id = 8),
		  'the contributions add up exactly to the log-odds');
SELECT ok((SELECT abs(crm.predict(m.model, f.x) - 1 / (1 + exp(-crm.predict_log_odds(m.model, f.x)))) < 1e-15
			 FROM f, m WHERE f.customer_id = 8), 'crm.predict is the logistic of the log-odds');
SELECT is((SELECT e.contribution FROM m, crm.explain_prediction(m.model, '{"contract": "Two year"}') e WHERE e.feature = 'contract'),
		  (SELECT (m.model).coefficient[array_position((m.model).level, 'Two year')] FROM m),
		  'a level contributes its coefficient');
SELECT is((SELECT crm.predict(m.model, '{"contract": "Three year"}') FROM m), (SELECT crm.predict(m.model, '{}') FROM m),
		  'an unseen level adds nothing (as the baseline)');
SELECT is((SELECT crm.predict(m.model, '{"phone_service": 1}') FROM m), (SELECT crm.predict(m.model, '{}') FROM m),
		  'a numeric feature dropped as aliased adds nothing');
SELECT throws_ok($$SELECT crm.predict(m.model, '{"shoe_size": 44}') FROM m$$, '22023',
				 'the model has no numeric feature "shoe_size"', 'an unknown numeric feature is refused');
SELECT throws_ok($$SELECT crm.predict(m.model, '{"tenure": "long"}') FROM m$$, '22023', NULL,
				 'a string for a numeric feature is refused');

-- naive Bayes over the 16 categorical and 0-1 columns, alpha 1 (R's reference)
CREATE TEMP TABLE nbf AS
SELECT customer_id, y, test, x - 'tenure' - 'monthly_charges' AS x FROM f;
CREATE TEMP TABLE nbm AS SELECT crm.nb_fit(y, x) AS model FROM nbf WHERE NOT test;
SELECT is((SELECT round(crm.auc(crm.predict(nbm.model, nbf.x), nbf.y)::numeric, 8) FROM nbf, nbm WHERE nbf.test),
		  0.83199467, 'naive Bayes (alpha 1): test AUC 0.8319946716 (R)');
SELECT is(((model).class_positives, (model).class_negatives, (model).alpha)::text, (1395::float8, 3888::float8, 1::float8)::text,
		  'the prior from the class frequencies; alpha 1 by default') FROM nbm;
SELECT is((SELECT sum(e.contribution) FROM nbf, nbm, crm.explain_prediction(nbm.model, nbf.x) e WHERE nbf.customer_id = 8),
		  (SELECT crm.predict_log_odds(nbm.model, nbf.x) FROM nbf, nbm WHERE nbf.customer_id = 8),
		  'naive Bayes: the contributions add up exactly to the log-odds');
-- by hand: contract "Two year" in class yes and no, smoothed over the feature's 3 values
SELECT ok((SELECT abs(e.contribution - (ln((cy + 1) / (ny + 3)) - ln((cn + 1) / (nn + 3)))) < 1e-12
			 FROM nbm, crm.explain_prediction(nbm.model, '{"contract": "Two year"}') e,
				  (SELECT count(*) FILTER (WHERE y AND x->>'contract' = 'Two year')::float8 AS cy,
						  count(*) FILTER (WHERE y)::float8 AS ny,
						  count(*) FILTER (WHERE NOT y AND x->>'contract' = 'Two year')::float8 AS cn,
						  count(*) FILTER (WHERE NOT y)::float8 AS nn FROM nbf WHERE NOT test) c
			WHERE e.feature = 'contract'),
		  'a value''s contribution is its Laplace-smoothed likelihood ratio');
SELECT is((SELECT crm.predict(nbm.model, '{"shoe_size": 44}') FROM nbm), (SELECT crm.predict(nbm.model, '{}') FROM nbm),
		  'a feature the model never saw adds nothing');
SELECT isnt((SELECT crm.nb_fit(y, x, 0.5)::text FROM nbf WHERE NOT test), (SELECT model::text FROM nbm), 'alpha is settable');
SELECT is((SELECT crm.nb_fit(y, x)::text FROM (SELECT * FROM nbf WHERE NOT test ORDER BY md5(customer_id::text)) s),
		  (SELECT model::text FROM nbm), 'naive Bayes: row order does not change the model');
SELECT throws_ok($$SELECT crm.nb_fit(y, x, 0) FROM nbf$$, '22023', NULL, 'alpha 0 is refused');

-- the measures: yardstick's two_class_example, and hand examples with ties
CREATE TEMP TABLE tc (row_id int, truth text, class1 float8, class2 float8, predicted text);
\copy tc FROM 'test/data/scoring/two_class_example.csv' (FORMAT csv, HEADER)
SELECT is((SELECT round(crm.auc(class1, truth = 'Class1')::numeric, 10) FROM tc), 0.9393138574,
		  'two_class_example: AUC 0.9393138574 (R)');
SELECT is((SELECT crm.auc(s, l) FROM (VALUES (1.0, false), (1.0, true), (2.0, false), (3.0, true)) v(s, l)), 0.625::float8,
		  'ties are ranked at their average: 0.625');
SELECT is((SELECT crm.auc(s, l) FROM (VALUES (1.0, true), (2.0, true)) v(s, l)), NULL::float8, 'one class only: NULL');
SELECT ok((SELECT abs(crm.log_loss(p, l) - (-ln(0.8) - ln(0.7)) / 2) < 1e-15 FROM (VALUES (0.8, true), (0.3, false)) v(p, l)),
		  'log loss: the mean of -ln p (true) and -ln (1 - p) (false)');
SELECT ok((SELECT abs(crm.brier(p, l) - (0.04 + 0.09) / 2) < 1e-15 FROM (VALUES (0.8, true), (0.3, false)) v(p, l)),
		  'Brier score: the mean squared error');

-- bad input
SELECT throws_ok($$SELECT crm.logit_fit(true, x) FROM f$$, '22023', NULL, 'an outcome that is always true is refused');
SELECT throws_ok($$SELECT crm.logit_fit(y, '[1, 2]') FROM f$$, '22023',
				 'features must be a JSON object of feature names and values', 'features that are not an object');
SELECT throws_like($$SELECT crm.logit_fit(v.y, v.x) FROM (VALUES (true, '{"a": 1}'::jsonb), (false, '{"a": "x"}')) v(y, x)$$,
				   'feature "a" is a % in some rows and a % in others', 'a feature whose type changes is refused, named');
SELECT throws_ok($$SELECT crm.logit_fit(v.y, v.x) FROM (VALUES (true, '{"a": {"b": 1}}'::jsonb), (false, '{"a": {"b": 2}}')) v(y, x)$$,
				 '22023', NULL, 'a nested value');
SELECT throws_ok($$SELECT crm.logit_fit(y, x, -1.0) FROM f$$, '22023', NULL, 'a negative weight');
SELECT throws_ok($$SELECT crm.auc(s, true) FROM (VALUES ('NaN'::float8)) v(s)$$, '22023', NULL, 'a NaN score');

SELECT * FROM finish();
ROLLBACK;
