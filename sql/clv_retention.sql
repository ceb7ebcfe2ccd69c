-- Simple CLV, historic CLV, churn rate and retention cohorts over crm."order"
SET search_path = crm, public;
SET timezone = 'UTC';
-- simple_clv = margin * r / (1 + d - r)
SELECT crm.simple_clv(100, 0.8, 0.1) AS clv_80, crm.simple_clv(100, 0, 0.1) AS clv_0, crm.simple_clv(100, 1, 0.1) AS clv_100;
SELECT crm.simple_clv(100, 1.2, 0.1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.simple_clv(100, 0.8, -0.1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.simple_clv(100, 1, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.simple_clv('NaN', 0.5, 0.1);
\echo :LAST_ERROR_SQLSTATE
-- a small shop: four customers over four months (explicit ids: other tests' sequences stay untouched)
INSERT INTO crm.contact (contact_id, email) VALUES (910001, 'clv-a@example.com'), (910002, 'clv-b@example.com'),
	(910003, 'clv-c@example.com'), (910004, 'clv-d@example.com');
CREATE TEMP TABLE k AS SELECT contact_id, split_part(email::text, '@', 1) AS who FROM crm.contact WHERE email::text LIKE 'clv-_@example.com';
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
SELECT k.contact_id, 910000 + row_number() OVER (), v.at::timestamptz, v.status, v.total
  FROM k JOIN (VALUES
	('clv-a', '2031-01-05', 'paid', 10.00), ('clv-a', '2031-02-07', 'paid', 20.00), ('clv-a', '2031-03-09', 'shipped', 30.00),
	('clv-b', '2031-01-15', 'paid', 50.00), ('clv-b', '2031-01-20', 'refunded', 50.00),
	('clv-c', '2031-02-02', 'paid', 5.00), ('clv-c', '2031-04-02', 'paid', 5.00), ('clv-c', '2031-03-02', 'cancelled', 99.00),
	('clv-d', '2031-02-10', 'placed', 12.50)) v(who, at, status, total) ON v.who = k.who;
-- value to date, cancelled and refunded orders left out
SELECT k.who, crm.historic_clv(k.contact_id) FROM k ORDER BY k.who;
SELECT crm.historic_clv(-1) AS no_orders;
-- monthly churn: January a, b active; b does not come back.  February a, c, d; c and d do not buy in March
SELECT * FROM crm.churn_rate('1 month', '2031-01-01', '2031-05-01');
SELECT * FROM crm.churn_rate('1 month', '2031-05-01', '2031-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.churn_rate('1 month 3 days', '2031-01-01', '2031-05-01');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.churn_rate('-7 days', '2031-01-01', '2031-05-01');
\echo :LAST_ERROR_SQLSTATE
-- cohorts by month of first purchase (only this test's customers are in 2031)
SELECT * FROM crm.retention_cohorts('1 month') WHERE cohort >= '2031-01-01' AND cohort < '2032-01-01';
-- fixed-length buckets are counted from Monday 2000-01-03
SELECT * FROM crm.retention_cohorts('30 days') WHERE cohort >= '2030-12-01' AND cohort < '2032-01-01';
DELETE FROM crm.contact WHERE contact_id IN (SELECT contact_id FROM k);
