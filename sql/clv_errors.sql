-- CLV: bad input, each error with its SQLSTATE; non-convergence is a WARNING and converged = false
SET search_path = crm, public;
-- invalid model literals: 22P02
SELECT 'bgnbd(r=1,alpha=2,a=3)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=-4)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=NaN)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=4,q=5)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,r=2,alpha=2,a=3,b=4)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'paretonbd(r=1,alpha=2,a=3,b=4)'::crm.paretonbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=4'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=4) x'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=x,alpha=2,a=3,b=4)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=4,converged=maybe)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgnbd(r=1,alpha=2,a=3,b=4,n=-1)'::crm.bgnbd;
\echo :LAST_ERROR_SQLSTATE
SELECT 'gammagamma(p=1,q=2)'::crm.gammagamma;
\echo :LAST_ERROR_SQLSTATE
SELECT 'bgbb(alpha=1,beta=1,gamma=1,delta=1e400)'::crm.bgbb;
\echo :LAST_ERROR_SQLSTATE
-- bad rows for the fits: 22023
SELECT crm.bgnbd_fit(x, tx, t) FROM (VALUES (-1::float8, 0::float8, 10::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_fit(x, tx, t) FROM (VALUES ('NaN'::float8, 0::float8, 10::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_fit(x, tx, t) FROM (VALUES (1.5::float8, 1::float8, 10::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_fit(x, tx, t) FROM (VALUES (2::float8, 11::float8, 10::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_fit(x, tx, t) FROM (VALUES (0::float8, 3::float8, 10::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.paretonbd_fit(x, tx, t) FROM (VALUES (1::float8, 'NaN'::float8, 10::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.mbgnbd_fit(x, tx, t) FROM (VALUES (1::float8, 1::float8, 'Infinity'::float8)) v(x, tx, t);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgnbd_fit(x, tx, t, w) FROM (VALUES (1::float8, 1::float8, 10::float8, -2::float8)) v(x, tx, t, w);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_fit(x, m) FROM (VALUES (2::float8, 0::float8)) v(x, m);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_fit(x, m) FROM (VALUES (2::float8, -5::float8)) v(x, m);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_fit(x, m) FROM (VALUES (0.5::float8, 5::float8)) v(x, m);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgbb_fit(x, tx, n) FROM (VALUES (3::float8, 2::float8, 6::float8)) v(x, tx, n);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgbb_fit(x, tx, n) FROM (VALUES (1::float8, 7::float8, 6::float8)) v(x, tx, n);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.bgbb_fit(x, tx, n) FROM (VALUES (1.5::float8, 2::float8, 6::float8)) v(x, tx, n);
\echo :LAST_ERROR_SQLSTATE
-- empty input: 22023
SELECT crm.bgnbd_fit(x, tx, t) FROM (VALUES (1::float8, 1::float8, 10::float8)) v(x, tx, t) WHERE false;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.gammagamma_fit(x, m) FROM (VALUES (0::float8, 0::float8)) v(x, m);
\echo :LAST_ERROR_SQLSTATE
-- NULL rows are skipped like in other aggregates (the donations data plus a row with a NULL)
CREATE TEMP TABLE don (x float8, t_x float8, n float8, w float8);
\copy don FROM 'test/data/donations.csv' (FORMAT csv, HEADER)
SELECT crm.bgbb_fit(x, t_x, n, w)::text = (SELECT crm.bgbb_fit(x, t_x, n, w)::text FROM don) AS nulls_skipped
  FROM (SELECT * FROM don UNION ALL SELECT NULL, 1, 6, 5 UNION ALL SELECT 1, 1, 6, NULL) d;
-- no repeat purchase at all: the likelihood has no interior maximum; WARNING and converged = false
\set VERBOSITY terse
SELECT (crm.bgnbd_params(m)).converged FROM (SELECT crm.bgnbd_fit(0, 0, t) m FROM generate_series(10, 40) t) s;
\set VERBOSITY default
-- predictions: bad customer rows and horizons, 22023
SELECT crm.p_alive('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 2, 11, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.expected_purchases('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, -1, 2, 5, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.expected_purchases('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 'NaN');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.prob_purchases('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 1.5, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.p_alive('paretonbd(r=1,alpha=2,s=3,beta=4)'::crm.paretonbd, 0, 1, 10);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.p_alive('bgbb(alpha=1,beta=2,gamma=3,delta=4)'::crm.bgbb, 2, 1, 6);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.expected_purchases('bgbb(alpha=1,beta=2,gamma=3,delta=4)'::crm.bgbb, 2.5, 2, 3, 6);
\echo :LAST_ERROR_SQLSTATE
-- Gamma-Gamma with q <= 1: infinite mean spend, 22023
SELECT crm.expected_spend('gammagamma(p=6,q=0.9,gamma=15)'::crm.gammagamma, 2, 30);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.expected_spend('gammagamma(p=6,q=1,gamma=15)'::crm.gammagamma, 0, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.expected_spend('gammagamma(p=6,q=3,gamma=15)'::crm.gammagamma, 2, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.clv('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 'gammagamma(p=6,q=3,gamma=15)', 2, 5, 10, 20, 2.5, 0.01, 4);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.clv('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 'gammagamma(p=6,q=3,gamma=15)', 2, 5, 10, 20, 12, -1, 4);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.clv('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 'gammagamma(p=6,q=3,gamma=15)', 2, 5, 10, 20, 12, 0.01, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.clv('bgnbd(r=1,alpha=2,a=3,b=4)'::crm.bgnbd, 'gammagamma(p=6,q=0.5,gamma=15)', 2, 5, 10, 20, 12, 0.01, 4);
\echo :LAST_ERROR_SQLSTATE
