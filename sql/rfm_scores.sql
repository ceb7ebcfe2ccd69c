-- crm.rfm_scores: recency, frequency, monetary and quintile cells per customer.
-- Orders are placed in 2090 so that the window [since, as_of] holds this
-- file's customers only, whatever other tests put in the database.
SET search_path = crm, public;
-- explicit ids: the identity sequence is left alone for the tests that follow
INSERT INTO crm.contact (contact_id, email) SELECT 910000 + i, format('rfm%s@rfm.test', i) FROM generate_series(1, 12) i;
CREATE TEMP TABLE rc AS SELECT contact_id, split_part(email::text, '@', 1) AS who FROM crm.contact WHERE email::text LIKE '%@rfm.test';
-- customer i: i orders of 10 * i each, the last one i days before 2090-12-31 ...
INSERT INTO crm."order" (contact_id, ordered_at, total)
SELECT rc.contact_id, timestamptz '2090-12-31 12:00+00' - make_interval(days => n * 30 + substr(who, 4)::int), 10 * substr(who, 4)::int
  FROM rc, generate_series(0, substr(who, 4)::int - 1) n
 WHERE substr(who, 4)::int <= 10;
-- ... customer 11 and 12 tie with customer 10 on frequency and spend, and
-- only cancelled / refunded orders or orders before the window don't count
INSERT INTO crm."order" (contact_id, ordered_at, total, status)
SELECT contact_id, timestamptz '2090-12-01 12:00+00' - make_interval(days => n * 30), 10 * 10, 'paid'
  FROM rc, generate_series(0, 9) n WHERE who IN ('rfm11', 'rfm12');
INSERT INTO crm."order" (contact_id, ordered_at, total, status)
SELECT contact_id, timestamptz '2090-12-30 12:00+00', 1000, s
  FROM rc, unnest('{cancelled,refunded}'::text[]) s WHERE who = 'rfm1';
INSERT INTO crm."order" (contact_id, ordered_at, total)
SELECT contact_id, timestamptz '2089-06-01 12:00+00', 5000 FROM rc WHERE who = 'rfm2';
SELECT rc.who, s.recency_days, s.frequency, s.monetary, s.rfm, s.segment
  FROM crm.rfm_scores(timestamptz '2091-01-01 00:00+00', timestamptz '2090-01-01 00:00+00') s
  JOIN rc USING (contact_id) ORDER BY s.rfm DESC, rc.who;
-- the cells follow the rank formula 1 + floor(5 (rank - 1) / n): compare with window functions
SELECT count(*) AS customers,
	   count(*) FILTER (WHERE crm.r(rfm) = 1 + 5 * (rank_r - 1) / n
						  AND crm.f(rfm) = 1 + 5 * (rank_f - 1) / n
						  AND crm.m(rfm) = 1 + 5 * (rank_m - 1) / n) AS agree
  FROM (SELECT rfm, count(*) OVER () n,
			   rank() OVER (ORDER BY recency_days DESC) rank_r,
			   rank() OVER (ORDER BY frequency) rank_f,
			   rank() OVER (ORDER BY monetary) rank_m
		  FROM crm.rfm_scores('2091-01-01', '2090-01-01')) s;
-- as_of cuts later orders off; no customer in the window gives no rows
SELECT count(*) AS customers_by_mid_2090 FROM crm.rfm_scores('2090-07-01', '2090-01-01');
SELECT count(*) AS none_before FROM crm.rfm_scores('2090-01-01', '2089-12-31');
