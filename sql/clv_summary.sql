-- crm.btyd_summary: transactions to (frequency, recency, T, monetary_value)
SET search_path = crm, public;
SET timezone = 'UTC';
CREATE TEMP TABLE cdnow_raw (line text);
\copy cdnow_raw FROM 'test/data/CDNOW_sample.txt'
CREATE TEMP TABLE cdnow_tx AS
SELECT f[2]::int AS id, to_date(f[3], 'YYYYMMDD')::timestamptz AS day, f[5]::numeric AS amount
  FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') f FROM cdnow_raw) s;
CREATE TEMP TABLE cdnow_pub (id int, frequency int, recency float8, t float8);
\copy cdnow_pub FROM 'test/data/cdnow_customers_summary.csv' (FORMAT csv, HEADER)
CREATE TEMP TABLE cdnow_pub_spend (id int, x int, t_x float8, t float8, zbar numeric);
\copy cdnow_pub_spend FROM 'test/data/cdnow_customers_summary_with_transactions.csv' (FORMAT csv, HEADER)
-- 39-week calibration: observation end 1997-09-30, weeks of 7 days
CREATE TEMP TABLE cdnow_summary AS
SELECT id, (crm.btyd_summary(day, amount, '1997-09-30', '7 days')).* FROM cdnow_tx GROUP BY id;
-- every one of the 2,357 rows equals the published file exactly
SELECT count(*) AS customers,
	   count(*) FILTER (WHERE p.frequency = s.frequency AND p.recency = s.recency AND p.t = s.t) AS identical,
	   sum(s.frequency) AS sum_x, count(*) FILTER (WHERE s.frequency = 0) AS x_zero,
	   min(s.t) AS min_t, max(s.t) AS max_t
  FROM cdnow_pub p FULL JOIN cdnow_summary s USING (id);
-- mean repeat spend equals zbar once rounded to cents
SELECT count(*) FILTER (WHERE round(s.monetary_value, 2) = p.zbar) AS same_zbar, count(*) AS customers
  FROM cdnow_pub_spend p JOIN cdnow_summary s USING (id);
SELECT * FROM cdnow_summary WHERE id IN (1, 2, 3, 4) ORDER BY id;
-- example_transactions (synthetic), daily units, observation end 2014-12-31
CREATE TEMP TABLE example_tx (day timestamptz, id int);
\copy example_tx FROM 'test/data/example_transactions.csv' (FORMAT csv, HEADER)
SELECT id, (crm.btyd_summary(day, 1, '2014-12-31')).* FROM example_tx WHERE id IN (0, 2, 4) GROUP BY id ORDER BY id;
-- same-day purchases merge, purchases after the observation end are ignored,
-- monetary value is the mean of the repeat days
SELECT (crm.btyd_summary(ts, amt, '2024-01-31', '1 day')).*
  FROM (VALUES ('2024-01-01 09:00+00'::timestamptz, 10.00), ('2024-01-01 18:00+00', 5.00),
			   ('2024-01-05 10:00+00', 20.00), ('2024-01-05 11:00+00', 10.00),
			   ('2024-01-11 10:00+00', 40.00), ('2024-02-11 10:00+00', 1000.00)) v(ts, amt);
-- a unit shorter than a day merges purchases within one unit of local time
-- (counted from local midnight) and counts recency and T in whole units:
-- hourly, 10:05 and 10:40 merge; 12:10 and 09:00 next day repeat; the end
-- at 18:30 next day is hour 32 after the first
SELECT (crm.btyd_summary(ts, amt, '2024-01-02 18:30+00', '1 hour')).*
  FROM (VALUES ('2024-01-01 10:05+00'::timestamptz, 10.00), ('2024-01-01 10:40+00', 5.00),
			   ('2024-01-01 12:10+00', 20.00), ('2024-01-02 09:00+00', 30.00),
			   ('2024-01-02 19:00+00', 1000.00)) v(ts, amt);
-- half-hours: 10:05 and 10:40 fall in two of them
SELECT (crm.btyd_summary(ts, 1, '2024-01-01 12:00+00', '30 minutes')).*
  FROM (VALUES ('2024-01-01 10:05+00'::timestamptz), ('2024-01-01 10:40+00')) v(ts);
-- local time: in Berlin (UTC+1 in winter) 23:30 UTC is already the next day
SET timezone = 'Europe/Berlin';
SELECT (crm.btyd_summary(ts, 1, '2024-01-03 12:00+00', '1 day')).*
  FROM (VALUES ('2024-01-01 22:30+00'::timestamptz), ('2024-01-01 23:30+00')) v(ts);
SET timezone = 'UTC';
SELECT (crm.btyd_summary(ts, 1, '2024-01-03 12:00+00', '1 day')).*
  FROM (VALUES ('2024-01-01 22:30+00'::timestamptz), ('2024-01-01 23:30+00')) v(ts);
-- a NULL amount makes the spend unknown; a NULL time is skipped
SELECT (crm.btyd_summary(ts, amt, '2024-01-31')).*
  FROM (VALUES ('2024-01-01'::timestamptz, 10.00), ('2024-01-03', NULL), (NULL, 5.00)) v(ts, amt);
-- no purchase up to the observation end: NULL (not yet a customer)
SELECT crm.btyd_summary(ts, 1, '2024-01-31') IS NULL AS not_acquired
  FROM (VALUES ('2024-03-01'::timestamptz)) v(ts);
-- bad input
SELECT crm.btyd_summary(ts, -1, '2024-01-31') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 'NaN', '2024-01-31') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, '2024-01-31', '1 month') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, '2024-01-31', '7 hours') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, '2024-01-31', '36 hours') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, '2024-01-31', '0.5 seconds') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, '2024-01-31', '-7 days') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, 'infinity') FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, NULL) FROM (VALUES ('2024-01-01'::timestamptz)) v(ts);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.btyd_summary(ts, 1, e) FROM (VALUES ('2024-01-01'::timestamptz, '2024-01-31'::timestamptz),
	('2024-01-02', '2024-02-28')) v(ts, e);
\echo :LAST_ERROR_SQLSTATE
-- the parallel (partial) plan gives the same summaries
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
ANALYZE cdnow_tx;
CREATE TABLE clv_summary_tx AS SELECT * FROM cdnow_tx;
ANALYZE clv_summary_tx;
SELECT count(*) AS differing FROM (
	SELECT id, crm.btyd_summary(day, amount, '1997-09-30', '7 days') s FROM clv_summary_tx GROUP BY id) a
  JOIN cdnow_summary b USING (id)
 WHERE (a.s).frequency <> b.frequency OR (a.s).recency <> b.recency OR (a.s).t <> b.t
	OR (a.s).monetary_value <> b.monetary_value;
-- and hourly summaries in the parallel plan: 24 hours to a day (CDNOW times
-- are midnights)
SELECT count(*) AS customers,
	   count(*) FILTER (WHERE (h).frequency = (d).frequency AND (h).recency = (d).recency * 24
						AND (h).t = (d).t * 24 AND (h).monetary_value = (d).monetary_value) AS agreeing
  FROM (SELECT id, crm.btyd_summary(day, amount, '1997-09-30', '1 hour') h,
			   crm.btyd_summary(day, amount, '1997-09-30', '1 day') d
		  FROM clv_summary_tx GROUP BY id) s;
DROP TABLE clv_summary_tx;
RESET ALL;
