-- pgTAP: the CLV surface (types, aggregates that combine, labels) and a few behaviours
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(23);

SELECT has_type('crm', t, 'type crm.' || t) FROM unnest(ARRAY['bgnbd', 'paretonbd', 'mbgnbd', 'gammagamma', 'bgbb', 'btyd_rfm']) t;
SELECT is((SELECT count(*)::int FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
			 JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'crm' AND p.proname IN ('bgnbd_fit', 'paretonbd_fit', 'mbgnbd_fit', 'gammagamma_fit', 'bgbb_fit', 'btyd_summary')
			  AND a.aggcombinefn <> 0 AND p.proparallel = 's'
			  -- an internal state needs serial forms; the fits' bytea state (an
			  -- expanded object in memory) is its own, which Citus can send
			  AND CASE WHEN a.aggtranstype = 'internal'::regtype THEN a.aggserialfn <> 0 AND a.aggdeserialfn <> 0
					   ELSE a.aggtranstype = 'bytea'::regtype AND p.proname LIKE '%\_fit' END),
		  13, 'all 13 CLV aggregates combine, are parallel safe, and the fits'' state (bytea) can leave the process (serial forms for btyd_summary''s internal one)');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'crm' AND p.proname IN ('expected_purchases', 'p_alive', 'prob_purchases', 'expected_spend', 'clv', 'log_likelihood')
			  AND (p.provolatile <> 'i' OR p.proparallel <> 's' OR NOT p.proisstrict)),
		  0, 'predictions are IMMUTABLE STRICT PARALLEL SAFE');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'crm' AND (p.proname LIKE '%clv%' OR p.proname LIKE '%bgnbd%' OR p.proname LIKE '%paretonbd%'
				  OR p.proname LIKE '%gammagamma%' OR p.proname LIKE '%bgbb%' OR p.proname IN ('churn_rate', 'retention_cohorts', 'p_alive'))
			  AND obj_description(p.oid, 'pg_proc') IS NULL),
		  0, 'every CLV function has a comment');
SELECT is((SELECT array_agg(DISTINCT p.provolatile) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'crm' AND p.proname = 'btyd_summary_trans'),
		  ARRAY['s'::"char"], 'btyd_summary reads local days and hours: its transition is STABLE, not IMMUTABLE');
SELECT is(crm.simple_clv(100, 0.8, 0.1), 100 * 0.8 / 0.3, 'simple_clv = m r / (1 + d - r)');
SELECT throws_ok($$SELECT crm.simple_clv(1, 2, 0)$$, '22023', NULL, 'retention above 1 is refused');
SELECT throws_ok($$SELECT 'bgnbd(r=1)'::crm.bgnbd$$, '22P02', NULL, 'incomplete model literal: 22P02');
SELECT throws_ok($$SELECT crm.expected_spend('gammagamma(p=1,q=0.5,gamma=1)', 1, 1)$$, '22023', NULL, 'q <= 1: 22023');
SELECT throws_ok($$SELECT crm.bgnbd_fit(1, 5, 2)$$, '22023', NULL, 'recency > T: 22023');
SELECT throws_ok($$SELECT crm.bgnbd_fit(x, x, x) FROM (SELECT 1::float8 x WHERE false) s$$, '22023', NULL, 'empty input: 22023');
SELECT is(crm.p_alive('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 0, 0, 10), 1::float8, 'BG/NBD: P(alive) = 1 without repeat purchases');
SELECT cmp_ok(crm.p_alive('paretonbd(r=0.55,alpha=10.58,s=0.61,beta=11.67)'::crm.paretonbd, 1000, 150, 200), '<', 1e-10::float8,
			  'Pareto/NBD: a heavy buyer long gone is dead, without overflow');
SELECT is(crm.expected_purchases('bgbb(alpha=1,beta=2,gamma=3,delta=4)'::crm.bgbb, 0), 0::float8, 'BG/BB: nothing in zero opportunities');
SELECT is('mbgnbd(r=1,alpha=2,a=3,b=4,ll=-5,n=7)'::crm.mbgnbd::text, 'mbgnbd(r=1,alpha=2,a=3,b=4,ll=-5,n=7)', 'text form round trip');
SELECT ok(crm.params('gammagamma(p=6,q=3,gamma=15)'::crm.gammagamma) @> '{"model": "gammagamma", "p": 6}', 'params as jsonb');
SELECT is((crm.bgnbd_simulate('bgnbd(r=1,alpha=2,a=3,b=4)', 10, 42)).t, 10::float8, 'simulator observes for T');
SELECT is(crm.historic_clv(-42), 0::numeric, 'historic CLV of a contact without orders is 0');

SELECT * FROM finish();
ROLLBACK;
