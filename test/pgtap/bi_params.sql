-- pgTAP: functions take their arguments as drivers bind them (issue 14,
-- point 3).  JDBC's setString binds character varying, setLong bigint,
-- setDouble double precision; a literal comes as unknown.  Each PREPARE
-- below declares its parameters with those types, as the driver does; the
-- calls that worked before still work and mean the same, none ambiguous.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public;
SET LOCAL TimeZone = 'UTC';
SELECT plan(37);

INSERT INTO crm.contact (contact_id, email, stage) VALUES
	(980001, 'p1@params.test', 'customer'), (980002, 'p2@params.test', 'customer');
INSERT INTO crm."order" (contact_id, ordered_at, total, status) VALUES
	(980001, '2026-01-05', 10, 'paid'), (980001, '2026-02-07', 20, 'paid'), (980001, '2026-03-09', 5, 'paid'),
	(980002, '2026-01-10', 40, 'paid'), (980002, '2026-03-01', 15, 'paid');
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES
	(980001, 'page_view', now() - interval '2 days'), (980001, 'page_view', now() - interval '40 days');
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
		plan := plan || line || ' ';
	END LOOP;
	RETURN plan;
END $$;

-- integers as setLong binds them
PREPARE rfm_long(bigint, bigint, bigint) AS SELECT crm.rfm($1, $2, $3)::text;
PREPARE weekday_long(bigint, bigint, bigint, bigint) AS SELECT crm.nth_weekday($1, $2, $3, $4);
PREPARE dup_long(float8, bigint) AS SELECT count(*)::int FROM crm.find_duplicates($1, $2);
SELECT results_eq($$EXECUTE rfm_long(5, 4, 3)$$, ARRAY['5-4-3'], 'crm.rfm with bigint parameters');
SELECT throws_ok($$EXECUTE rfm_long(6, 1, 1)$$, '22023', 'rfm scores must be between 1 and 5', 'crm.rfm out of range: 22023, as before');
SELECT throws_ok($$EXECUTE rfm_long(4294967297, 1, 1)$$, '22023', 'rfm scores must be between 1 and 5', 'crm.rfm beyond 32 bits: 22023, not a wrapped value');
SELECT is(crm.rfm(5, 4, 3)::text, '5-4-3', 'crm.rfm with integer literals');
SELECT is(crm.rfm('2', '3', '4')::text, '2-3-4', 'crm.rfm with unknown literals: not ambiguous');
SELECT is(crm.rfm(1::smallint, 2::smallint, 3::smallint)::text, '1-2-3', 'crm.rfm with smallint');
SELECT results_eq($$EXECUTE weekday_long(2026, 5, 0, 2)$$, ARRAY['2026-05-10'::date], 'crm.nth_weekday with bigint parameters');
SELECT is(crm.nth_weekday(2026, 5, 0, 2), '2026-05-10'::date, 'crm.nth_weekday with integers');
SELECT throws_ok($$EXECUTE weekday_long(2026, 13, 0, 2)$$, '22023', NULL, 'crm.nth_weekday out of range: 22023');
SELECT throws_ok($$EXECUTE weekday_long(4294967297, 5, 0, 2)$$, '22003', NULL, 'crm.nth_weekday with a year beyond 32 bits: 22003');
SELECT lives_ok($$EXECUTE dup_long(0.95, 50)$$, 'crm.find_duplicates with double and bigint parameters');

-- rates and amounts as setDouble binds them
PREPARE clv_double(float8, float8, float8) AS SELECT crm.simple_clv($1, $2, $3);
SELECT results_eq($$EXECUTE clv_double(100, 0.8, 0.1)$$, ARRAY[crm.simple_clv(100, 0.8, 0.1)], 'crm.simple_clv with double parameters: as with numeric ones');
SELECT is(crm.simple_clv(100, 0.8, 0.1), 266.6666666666666667::numeric, 'crm.simple_clv: numeric arithmetic, as before');
SELECT is(crm.simple_clv(100::numeric, 0.8::numeric, 0.1::numeric), 266.6666666666666667::numeric, 'crm.simple_clv with numeric arguments');
SELECT throws_ok($$EXECUTE clv_double(100, 'NaN', 0.1)$$, '22023', NULL, 'crm.simple_clv NaN: 22023');
SELECT throws_ok($$EXECUTE clv_double(100, 1.5, 0.1)$$, '22023', NULL, 'crm.simple_clv retention above 1: 22023');
PREPARE holdout_double(bigint, bigint, float8) AS SELECT crm.campaign_holdout($1, $2, $3);
SELECT is((SELECT count(*)::int FROM generate_series(1, 2000) i
			WHERE crm.campaign_holdout(i, 7, 0.25) IS DISTINCT FROM crm.campaign_holdout(i, 7, 0.25::numeric)), 0,
	'crm.campaign_holdout: a numeric share and a double share give the same groups');
SELECT results_eq($$EXECUTE holdout_double(1, 7, 1.0)$$, ARRAY[true], 'crm.campaign_holdout with a double share');
SELECT ok(crm.create_segment('params seg', $$email LIKE '%@params.test'$$) > 0, 'a segment for the campaign');
PREPARE campaign_double(text, text, float8, float8) AS SELECT crm.create_campaign($1, $2, cost => $3, holdout_share => $4);
SELECT lives_ok($$EXECUTE campaign_double('params camp', 'params seg', 1234.56, 0.1)$$, 'crm.create_campaign with double cost and share');
SELECT is((SELECT cost::text || ' ' || holdout_share::text FROM crm.campaign WHERE name = 'params camp'), '1234.56 0.100',
	'crm.create_campaign: cost and share stored as given');

-- intervals as setString binds them
PREPARE churn_str(varchar, timestamptz, timestamptz) AS
	SELECT array_agg(active ORDER BY period_start)::int[] FROM crm.churn_rate($1, $2, $3);
PREPARE cohorts_str(varchar) AS SELECT count(*)::int FROM crm.retention_cohorts($1);
PREPARE count_str(bigint, varchar, varchar) AS SELECT crm.activity_count($1, $2, $3)::int;
PREPARE summary_str(timestamptz, varchar) AS
	SELECT crm.btyd_summary(o.ordered_at, o.total, $1, $2)::text FROM crm."order" o WHERE o.contact_id = 980001;
PREPARE period_str(timestamptz, varchar) AS SELECT crm.period_start(crm.period_index($1, $2), $2);
SELECT results_eq($$EXECUTE churn_str('1 month', '2026-01-01', '2026-04-01')$$,
	$$SELECT array_agg(active ORDER BY period_start)::int[] FROM crm.churn_rate(interval '1 month', '2026-01-01', '2026-04-01')$$,
	'crm.churn_rate with the period as a string parameter: as with an interval');
SELECT is((SELECT array_agg(active ORDER BY period_start)::int[] FROM crm.churn_rate('1 month'::varchar, '2026-01-01', '2026-04-01')),
	ARRAY[2, 1], 'crm.churn_rate by string: the counts (2 customers in January, 1 of them in February)');
SELECT results_eq($$EXECUTE cohorts_str('1 month')$$,
	$$SELECT count(*)::int FROM crm.retention_cohorts(interval '1 month')$$,
	'crm.retention_cohorts with a string parameter: as with an interval');
SELECT results_eq($$EXECUTE count_str(980001, 'page_view', '7 days')$$, ARRAY[1], 'crm.activity_count with the window as a string parameter');
SELECT is(crm.activity_count(980001, 'page_view', interval '7 days')::int, 1, 'crm.activity_count with an interval window');
SELECT is(crm.activity_count(980001, 'page_view', '60 days')::int, 2, 'crm.activity_count with a literal window');
SELECT is(crm.activity_count(980001, 'page_view')::int, 2, 'crm.activity_count with two arguments: not ambiguous');
SELECT is(crm.activity_count(980001, NULL, NULL)::int, 2, 'crm.activity_count with NULL kind and window: no filter');
SELECT results_eq($$EXECUTE summary_str('2026-04-01', '7 days')$$,
	$$SELECT crm.btyd_summary(o.ordered_at, o.total, '2026-04-01', interval '7 days')::text FROM crm."order" o WHERE o.contact_id = 980001$$,
	'crm.btyd_summary with the unit as a string parameter: as with an interval');
SELECT results_eq($$EXECUTE period_str('2026-02-15', '1 month')$$, ARRAY['2026-02-01 00:00+00'::timestamptz],
	'crm.period_index and crm.period_start with the period as a string parameter');
SELECT throws_ok($$EXECUTE churn_str('1 fortnight', '2026-01-01', '2026-04-01')$$, '22007', NULL,
	'a string that is not an interval: 22007');
SELECT throws_ok($$EXECUTE churn_str('1 month 3 days', '2026-01-01', '2026-04-01')$$, '22023', NULL,
	'a period neither whole months nor fixed: 22023, as with an interval');
SELECT throws_ok($$EXECUTE summary_str('2026-04-01', '1 month')$$, '22023', 'unit must not contain months',
	'crm.btyd_summary by string: the interval checks hold');
-- the text forms are inlined: no call of their own, so no extra frame in errors
SELECT is((SELECT count(*)::int FROM pg_proc p
			WHERE p.pronamespace = 'crm'::regnamespace AND p.prosqlbody IS NOT NULL
			  AND p.proname IN ('churn_rate', 'retention_cohorts', 'activity_count', 'period_index', 'period_start')
			  AND p.proconfig IS NULL AND NOT p.proisstrict AND NOT p.prosecdef), 5,
	'the five text forms have SQL-standard bodies, no SET, not strict: inlinable');
SELECT matches(pg_temp.plan_of($$SELECT * FROM crm.churn_rate('1 month', '2026-01-01', '2026-04-01')$$),
	'Function Call: crm\.churn_rate\(\(''1 month''::cstring\)::interval',
	'crm.churn_rate(text, ...) is inlined into a call of crm.churn_rate(interval, ...)');
SELECT matches(pg_temp.plan_of($$SELECT crm.activity_count(980001, 'page_view', '7 days')$$),
	'Output: crm\.activity_count\(''980001''::bigint, ''page_view''::text, \(''7 days''::cstring\)::interval\)',
	'crm.activity_count(bigint, text, text) is inlined');

SELECT * FROM finish();
ROLLBACK;
