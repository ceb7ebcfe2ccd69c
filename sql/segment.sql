-- Segments: the contact profile, predicate validation, static lists,
-- incremental refresh, the entry/exit log.  This file's contacts carry
-- attrs {"t": "seg"} and explicit ids, so other tests' rows do not matter.
SET search_path = crm, public;
\set VERBOSITY default
INSERT INTO crm.company (company_id, name, domain, employees, country)
VALUES (920001, 'Seg Big GmbH', 'seg-big.test', 5000, 'DE'), (920002, 'Seg Small SL', 'seg-small.test', 12, 'ES');
INSERT INTO crm.contact (contact_id, email, country, birth_date, income_band, company_id, lead_source, attrs)
SELECT 920000 + i, format('s%s@seg.test', i), (ARRAY['DE', 'ES', 'FR'])[1 + i % 3],
	   date '1960-01-01' + i * 400, (ARRAY['low', 'middle', 'high'])[1 + i % 3],
	   CASE WHEN i <= 4 THEN 920001 WHEN i <= 8 THEN 920002 END,
	   CASE WHEN i % 2 = 0 THEN 'form' ELSE 'newsletter' END, '{"t": "seg"}'
  FROM generate_series(1, 12) i;
INSERT INTO crm."order" (contact_id, ordered_at, total)
SELECT 920000 + i, timestamptz '2024-05-01 10:00+00' - make_interval(days => n), 25 * i
  FROM generate_series(1, 12) i, generate_series(1, i % 4) n;
INSERT INTO crm.activity (contact_id, kind, occurred_at)
SELECT 920000 + i, 'email_open', timestamptz '2024-01-01 00:00+00' + make_interval(days => n)
  FROM generate_series(1, 6) i, generate_series(1, i) n;

-- the profile: one row per contact
SELECT contact_id - 920000 AS c, country, age > 0 AS has_age, company_name, company_employees AS emp,
	   order_count AS orders, lifetime_value AS ltv, activity_count AS acts, consent_email
  FROM crm.contact_profile WHERE attrs @> '{"t": "seg"}' ORDER BY contact_id;

-- predicates are validated at once, errors point into the predicate
SELECT crm.create_segment('seg bad', 'country = ''DE'' AND');
SELECT crm.create_segment('seg bad', 'countri = ''DE''');
SELECT crm.create_segment('seg bad', 'lifetime_value');
SELECT crm.create_segment('seg bad', 'country = 1');
SELECT crm.create_segment('seg bad', 'lifetime_value > random() * 100');
SELECT crm.create_segment('seg bad', 'country = ''DE'' AND nextval(''crm.segment_segment_id_seq'') > 0');
SELECT crm.create_segment('seg bad', 'EXISTS (WITH d AS (DELETE FROM crm.segment_log RETURNING 1) SELECT 1 FROM d)');
SELECT crm.create_segment('seg bad', 'EXISTS (SELECT 1 FROM crm.company FOR UPDATE)');
SELECT crm.create_segment('seg bad', 'true) UNION SELECT 1 --');
SELECT crm.create_segment('seg bad', 'crm.in_segment(contact_id, ''seg bad'')');
SELECT crm.create_segment('seg bad', 'crm.in_segment(contact_id, country)');
SELECT crm.create_segment('seg bad', 'crm.in_segment(contact_id, ''no such segment'')');
SELECT crm.create_segment('seg bad', NULL);
SELECT crm.create_segment('seg bad', '  ');
SELECT crm.create_segment(NULL, 'true');
-- a predicate is one expression on its own: it cannot close the parenthesis
-- it is placed in, end the statement, or leave a string, comment or quote open
SELECT crm.create_segment('seg bad', $$country = 'DE') OR (true$$);
SELECT crm.create_segment('seg bad', $$(country = 'DE'$$);
SELECT crm.create_segment('seg bad', $$country IN ('DE', 'ES']$$);
SELECT crm.create_segment('seg bad', $$true; DELETE FROM crm.segment_member$$);
SELECT crm.create_segment('seg bad', $$country = 'DE' /* no end$$);
SELECT crm.create_segment('seg bad', $$country = $x$DE$$);
SELECT crm.create_segment('seg bad', $$country = 'DE$$);
SELECT crm.create_segment('seg bad', '-- a comment and nothing else');
-- temporary objects belong to the session that made them, not to a refresh
CREATE TEMP TABLE seg_tmp (contact_id bigint);
CREATE FUNCTION pg_temp.seg_tmp_fn(bigint) RETURNS boolean LANGUAGE sql STABLE AS 'SELECT true';
SELECT crm.create_segment('seg bad', 'EXISTS (SELECT 1 FROM seg_tmp t WHERE t.contact_id = contact_profile.contact_id)');
SELECT crm.create_segment('seg bad', 'pg_temp.seg_tmp_fn(contact_id)');
SELECT count(*) AS nothing_stored FROM crm.segment WHERE name = 'seg bad';

-- time and population dependence follow the functions the names resolved to:
-- a user function is not known to be pure of time (whatever its label), nor
-- are the clock, the session, 'now'-like literals or date input at run time;
-- another contact's activities rank this one among the others
CREATE FUNCTION public.seg_even(bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 2 = 0';
SELECT v.p AS predicate, a.time_dependent AS time, a.population_dependent AS population
  FROM (VALUES ($$country = 'DE' AND email = 's1@seg.test' AND stage IN ('lead', 'mql') AND lower(city) LIKE 'b%'$$),
			   ($$created_at > '2024-01-01' AND crm.activity_count(contact_id, 'click') > 2$$),
			   ($$public.seg_even(contact_id)$$),
			   ($$created_at > 'today'$$),
			   ($$created_at > date 'Yesterday'$$),
			   ($$created_at > (attrs->>'since')::timestamptz$$),
			   ($$pg_catalog.now() - created_at < interval '1 day'$$),
			   ($$txid_current() > 0$$),
			   ($$owner = session_user$$),
			   ($$owner = current_user$$),
			   ($$crm.activity_count(contact_id, within => '7 days') > 0$$),
			   ($$crm.activity_count(920001) > 0$$),
			   ($$crm.r(rfm) = 5$$),
			   ($$stage = 'customer' AND stage <> 'lead'$$),
			   ($$crm.activity_count(contact_id, 'click', '30 days') > 0$$)) v(p),
	   crm.segment_analyze(v.p, NULL) a;
DROP FUNCTION public.seg_even(bigint);

-- demographic, firmographic, behavioural, value and nested segments
SELECT crm.create_segment('seg de', $$attrs @> '{"t": "seg"}' AND country = 'DE'$$) > 0 AS created;
SELECT crm.create_segment('seg de', 'true');
SELECT crm.create_segment('seg big companies', $$attrs @> '{"t": "seg"}' AND company_employees >= 1000$$, 'people at large firms') > 0;
SELECT crm.create_segment('seg engaged', $$attrs @> '{"t": "seg"}' AND crm.activity_count(contact_id, 'email_open') >= 3$$) > 0;
SELECT crm.create_segment('seg recent openers', $$attrs @> '{"t": "seg"}' AND crm.activity_count(contact_id, 'email_open', '30 days') > 0$$) > 0;
SELECT crm.create_segment('seg mothers day', $$attrs @> '{"t": "seg"}' AND crm.bought_between(contact_id, crm.nth_weekday(2024, 5, 0, 2) - 21, crm.nth_weekday(2024, 5, 0, 2))$$) > 0;
SELECT crm.create_segment('seg adults 40+', $$attrs @> '{"t": "seg"}' AND age >= 40$$) > 0;
SELECT crm.create_segment('seg top value', $$attrs @> '{"t": "seg"}' AND value_rank >= 0.8$$) > 0;
SELECT crm.create_segment('seg engaged germans', $$crm.in_segment(contact_id, 'seg de') AND crm.in_segment(contact_id, 'seg engaged')$$) > 0;
SELECT name, time_dependent, population_dependent,
	   ARRAY(SELECT u.name FROM crm.segment u WHERE u.segment_id = ANY (s.uses) ORDER BY 1) AS uses
  FROM crm.segment s WHERE name LIKE 'seg %' ORDER BY segment_id;

-- first refresh: everyone, in dependency order.  (seg top value ranks this
-- file's customers among all the database's, so its members are not shown.)
SELECT * FROM crm.refresh_segments() WHERE segment LIKE 'seg %' AND segment <> 'seg top value';
SELECT s.name, string_agg((m.contact_id - 920000)::text, ',' ORDER BY m.contact_id) AS members
  FROM crm.segment s JOIN crm.segment_member m USING (segment_id)
 WHERE s.name LIKE 'seg %' AND s.name <> 'seg top value' GROUP BY s.name ORDER BY s.name;
-- entries into 'seg de' and 'seg engaged' marked their contacts for 'seg
-- engaged germans'; marks made by the refreshing transaction itself are read
-- once more by the next refresh, which then changes nothing
SELECT sum(entered + exited) AS changes FROM crm.refresh_segments() WHERE segment LIKE 'seg %' AND segment <> 'seg top value';

-- nothing changed: an incremental segment reads no contact at all
BEGIN;
CREATE TEMP TABLE scans AS SELECT seq_scan + coalesce(idx_scan, 0) AS n FROM pg_stat_xact_user_tables WHERE relid = 'crm.contact'::regclass;
SELECT * FROM crm.refresh_segment('seg de');
SELECT (SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'crm.contact'::regclass) - n AS contact_scans,
	   (SELECT last_full FROM crm.segment WHERE name = 'seg de') AS full, (SELECT last_evaluated FROM crm.segment WHERE name = 'seg de') AS evaluated
  FROM scans;
ROLLBACK;

-- changes are picked up: a move, a new contact, a deletion, activities, a company update
UPDATE crm.contact SET country = 'DE' WHERE contact_id = 920001;
UPDATE crm.contact SET country = 'FR' WHERE contact_id = 920002;
INSERT INTO crm.contact (contact_id, email, country, attrs) VALUES (920013, 's13@seg.test', 'DE', '{"t": "seg"}');
DELETE FROM crm.order WHERE contact_id = 920005;
DELETE FROM crm.contact WHERE contact_id = 920005;
INSERT INTO crm.activity (contact_id, kind, occurred_at)
SELECT 920001, 'email_open', timestamptz '2024-02-01 00:00+00' + make_interval(hours => n) FROM generate_series(1, 3) n;
UPDATE crm.company SET employees = 20 WHERE company_id = 920001;
SELECT * FROM crm.refresh_segments() WHERE segment LIKE 'seg %' AND segment <> 'seg top value';
SELECT name, last_full AS full, last_evaluated >= 1 AND (last_full OR last_evaluated <= 12) AS evaluated_few
  FROM crm.segment WHERE name IN ('seg de', 'seg big companies', 'seg engaged') ORDER BY name;
-- a second refresh finds nothing new
SELECT * FROM crm.refresh_segments() WHERE segment LIKE 'seg %' AND (entered > 0 OR exited > 0);

-- a comment at the end of a predicate ends with it, in every refresh query
SELECT crm.create_segment('seg spain', $$attrs @> '{"t": "seg"}' AND country = 'ES' -- Spain$$) > 0;
SELECT * FROM crm.refresh_segment('seg spain');
UPDATE crm.contact SET country = 'ES' WHERE contact_id = 920002;
SELECT * FROM crm.refresh_segment('seg spain');
SELECT last_full, last_evaluated FROM crm.segment WHERE name = 'seg spain';
-- a predicate written straight into the table is validated again by refresh
-- (the context, which names the owner, is not shown)
UPDATE crm.segment SET predicate = $$attrs @> '{"t": "seg"}') OR (true$$ WHERE name = 'seg spain';
\set SHOW_CONTEXT never
SELECT * FROM crm.refresh_segment('seg spain');
\set SHOW_CONTEXT errors
UPDATE crm.segment SET predicate = $$attrs @> '{"t": "seg"}' AND country = 'ES'$$ WHERE name = 'seg spain';
UPDATE crm.contact SET country = 'FR' WHERE contact_id = 920002;
SELECT * FROM crm.refresh_segment('seg spain');

-- the log replays to the membership, and membership equals a fresh evaluation
SELECT s.name,
	   (SELECT count(*) FROM crm.segment_member m WHERE m.segment_id = s.segment_id) AS members,
	   (SELECT count(*) FROM crm.segment_log l WHERE l.segment_id = s.segment_id AND change = 'enter')
	   - (SELECT count(*) FROM crm.segment_log l WHERE l.segment_id = s.segment_id AND change = 'exit') AS log_balance
  FROM crm.segment s WHERE s.name LIKE 'seg %' AND s.name <> 'seg top value' ORDER BY s.name;
CREATE FUNCTION pg_temp.fresh(pred text) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('SELECT contact_id FROM crm.contact_profile WHERE (%s)', pred);
END $$;
SELECT s.name,
	   (SELECT count(*) FROM pg_temp.fresh(s.predicate) f(contact_id)
		 FULL JOIN (SELECT m.contact_id FROM crm.segment_member m WHERE m.segment_id = s.segment_id) m USING (contact_id)
		 WHERE f.contact_id IS NULL OR m.contact_id IS NULL) AS differences
  FROM crm.segment s WHERE s.name LIKE 'seg %' AND s.kind = 'dynamic' ORDER BY s.name;
SELECT l.contact_id - 920000 AS c, l.change
  FROM crm.segment_log l JOIN crm.segment s USING (segment_id) WHERE s.name = 'seg de' ORDER BY l.log_id;

-- static lists
SELECT crm.create_static_segment('seg vip list', 'hand-picked') > 0;
SELECT crm.add_to_segment('seg vip list', ARRAY[920003, 920004, 920004, 999999999]) AS added;
SELECT crm.add_to_segment('seg vip list', ARRAY[920003]) AS added_again;
SELECT crm.remove_from_segment('seg vip list', ARRAY[920004]) AS removed;
SELECT * FROM crm.refresh_segment('seg vip list');
SELECT crm.add_to_segment('seg de', ARRAY[920003]);
SELECT crm.alter_segment('seg vip list', 'true');
SELECT crm.add_to_segment('seg nope', ARRAY[1]);
SELECT * FROM crm.refresh_segment('seg nope');

-- nested segments follow the lists they use
SELECT crm.create_segment('seg vip germans', $$crm.in_segment(contact_id, 'seg vip list') AND country = 'DE'$$) > 0;
SELECT * FROM crm.refresh_segment('seg vip germans');
UPDATE crm.contact SET country = 'DE' WHERE contact_id = 920003;
SELECT * FROM crm.refresh_segment('seg vip germans');
SELECT crm.remove_from_segment('seg vip list', ARRAY[920003]);
SELECT * FROM crm.refresh_segment('seg vip germans');

-- cycles and drops
SELECT crm.alter_segment('seg de', $$crm.in_segment(contact_id, 'seg engaged germans')$$);
SELECT crm.alter_segment('seg de', $$crm.in_segment(contact_id, 'seg de')$$);
SELECT crm.drop_segment('seg de');
SELECT crm.alter_segment('seg de', $$attrs @> '{"t": "seg"}' AND country IN ('DE', 'FR')$$);
SELECT * FROM crm.refresh_segment('seg de');
SELECT last_full FROM crm.segment WHERE name = 'seg de';
SELECT crm.drop_segment('seg nope');
-- clean up, so later tests pay no dirty marking
SELECT count(*) AS dropped FROM (
	SELECT crm.drop_segment(name) FROM crm.segment WHERE name LIKE 'seg %'
	 ORDER BY cardinality(uses) DESC, name = 'seg vip list', name = 'seg de', name = 'seg engaged') d;
SELECT count(*) AS left_over FROM crm.segment WHERE name LIKE 'seg %';
