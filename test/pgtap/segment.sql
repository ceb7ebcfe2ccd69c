-- pgTAP: stored membership equals a fresh evaluation of every predicate after
-- rounds of random changes to contacts, companies, orders, activities and
-- consent, for incremental, population-dependent, time-dependent and nested
-- segments; the log replays to the membership.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(35);
SELECT setseed(0.42);

INSERT INTO crm.company (company_id, name, domain, employees)
SELECT 940000 + i, 'tap co ' || i, 'tapco' || i || '.test', (random() * 2000)::int FROM generate_series(1, 10) i;
INSERT INTO crm.contact (contact_id, email, country, company_id, attrs)
SELECT 940000 + i, 'tap' || i || '@tap.test', (ARRAY['DE', 'ES', 'FR', 'US'])[1 + (random() * 3)::int],
	   CASE WHEN random() < 0.7 THEN 940001 + (random() * 9)::int END, '{"t": "tap"}'
  FROM generate_series(1, 400) i;
INSERT INTO crm."order" (contact_id, ordered_at, total)
SELECT 940001 + (random() * 399)::int, now() - random() * interval '400 days', round((random() * 300)::numeric, 2)
  FROM generate_series(1, 800);
INSERT INTO crm.activity (contact_id, kind, occurred_at)
SELECT 940001 + (random() * 399)::int, (ARRAY['click', 'email_open', 'page_view'])[1 + (random() * 2)::int],
	   now() - random() * interval '60 days'
  FROM generate_series(1, 3000);

SELECT lives_ok($$SELECT crm.create_segment('tap a', $p$attrs @> '{"t": "tap"}' AND country = 'DE' AND order_count >= 2$p$)$$, 'incremental segment');
SELECT lives_ok($$SELECT crm.create_segment('tap b', $p$attrs @> '{"t": "tap"}' AND (crm.activity_count(contact_id, 'click') >= 3 OR lifetime_value > 500 OR company_employees > 1500)$p$)$$, 'incremental segment with helpers');
SELECT lives_ok($$SELECT crm.create_segment('tap c', $p$attrs @> '{"t": "tap"}' AND value_rank >= 0.7$p$)$$, 'population-dependent segment');
SELECT lives_ok($$SELECT crm.create_segment('tap d', $p$crm.in_segment(contact_id, 'tap a') AND NOT crm.in_segment(contact_id, 'tap c')$p$)$$, 'nested segment');
SELECT lives_ok($$SELECT crm.create_segment('tap e', $p$attrs @> '{"t": "tap"}' AND (crm.activity_count(contact_id, 'click', '10 days') > 1 OR consent_email)$p$)$$, 'time-dependent segment');
SELECT is((SELECT array_agg(name ORDER BY name) FROM crm.segment WHERE name LIKE 'tap %' AND time_dependent), ARRAY['tap e'], 'only tap e is time dependent');
SELECT is((SELECT array_agg(name ORDER BY name) FROM crm.segment WHERE name LIKE 'tap %' AND population_dependent), ARRAY['tap c'], 'only tap c is population dependent');

CREATE FUNCTION pg_temp.differences() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	s record;
	n bigint := 0;
	d bigint;
BEGIN
	FOR s IN SELECT * FROM crm.segment WHERE name LIKE 'tap %' LOOP
		EXECUTE format($q$SELECT count(*) FROM (SELECT contact_id FROM crm.contact_profile WHERE (%s)) f
			FULL JOIN (SELECT contact_id FROM crm.segment_member WHERE segment_id = $1) m USING (contact_id)
			WHERE f.contact_id IS NULL OR m.contact_id IS NULL$q$, s.predicate) INTO d USING s.segment_id;
		n := n + d;
	END LOOP;
	RETURN n;
END $$;
CREATE FUNCTION pg_temp.log_mismatches() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM (
		SELECT l.segment_id, l.contact_id
		  FROM crm.segment_log l JOIN crm.segment s USING (segment_id) WHERE s.name LIKE 'tap %'
		 GROUP BY 1, 2
		HAVING (sum(CASE l.change WHEN 'enter' THEN 1 ELSE -1 END) <> 0)
				<> EXISTS (SELECT 1 FROM crm.segment_member m WHERE m.segment_id = l.segment_id AND m.contact_id = l.contact_id)
			OR sum(CASE l.change WHEN 'enter' THEN 1 ELSE -1 END) NOT IN (0, 1)) x
$$;
CREATE FUNCTION pg_temp.random_changes() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE crm.contact SET country = (ARRAY['DE', 'ES', 'FR', 'US'])[1 + (random() * 3)::int]
	 WHERE contact_id IN (SELECT 940001 + (random() * 399)::int FROM generate_series(1, 20));
	UPDATE crm.company SET employees = (random() * 2000)::int WHERE company_id = 940001 + (random() * 9)::int;
	INSERT INTO crm."order" (contact_id, ordered_at, total)
	SELECT 940001 + (random() * 399)::int, now() - random() * interval '30 days', round((random() * 400)::numeric, 2)
	  FROM generate_series(1, 15);
	DELETE FROM crm."order" WHERE (contact_id, order_id) IN
		(SELECT contact_id, order_id FROM crm."order" WHERE contact_id BETWEEN 940001 AND 940400 ORDER BY random() LIMIT 10);
	UPDATE crm."order" SET status = 'refunded' WHERE (contact_id, order_id) IN
		(SELECT contact_id, order_id FROM crm."order" WHERE contact_id BETWEEN 940001 AND 940400 ORDER BY random() LIMIT 5);
	INSERT INTO crm.activity (contact_id, kind, occurred_at)
	SELECT 940001 + (random() * 399)::int, 'click', now() - random() * interval '20 days' FROM generate_series(1, 60);
	DELETE FROM crm.activity WHERE (contact_id, activity_id) IN
		(SELECT contact_id, activity_id FROM crm.activity WHERE contact_id BETWEEN 940001 AND 940400 ORDER BY random() LIMIT 40);
	INSERT INTO crm.consent (contact_id, channel, status, recorded_at)
	SELECT 940001 + (random() * 399)::int, 'email', (ARRAY['granted', 'revoked'])[1 + (random())::int], now() - interval '1 minute'
	  FROM generate_series(1, 10);
	INSERT INTO crm.contact (contact_id, email, country, attrs)
	SELECT 940400 + n, 'tapnew' || n || '-' || (random() * 1e9)::bigint || '@tap.test', 'DE', '{"t": "tap"}'
	  FROM generate_series(1, 2) n WHERE NOT EXISTS (SELECT 1 FROM crm.contact WHERE contact_id = 940400 + n);
END $$;

SELECT ok((SELECT count(*) FROM crm.refresh_segments()) >= 5, 'first refresh of all segments');
SELECT is(pg_temp.differences(), 0::bigint, 'after the first refresh: stored = fresh');
SELECT ok((SELECT count(*) FROM crm.segment_member m JOIN crm.segment s USING (segment_id) WHERE s.name = 'tap ' || x) > 0,
		  'segment tap ' || x || ' is not empty') FROM unnest(ARRAY['a', 'b', 'c', 'd', 'e']) x;

SELECT pg_temp.random_changes();
SELECT ok((SELECT count(*) FROM crm.refresh_segments()) >= 5, 'round 1 refreshed');
SELECT is(pg_temp.differences(), 0::bigint, 'round 1: stored = fresh');
SELECT is(pg_temp.log_mismatches(), 0::bigint, 'round 1: log replays to membership');
SELECT ok((SELECT NOT last_full FROM crm.segment WHERE name = 'tap a'), 'round 1: tap a refreshed incrementally');
SELECT ok((SELECT last_full FROM crm.segment WHERE name = 'tap e'), 'round 1: tap e (time) refreshed fully');

SELECT pg_temp.random_changes();
SELECT ok((SELECT count(*) FROM crm.refresh_segments()) >= 5, 'round 2 refreshed');
SELECT is(pg_temp.differences(), 0::bigint, 'round 2: stored = fresh');
SELECT is(pg_temp.log_mismatches(), 0::bigint, 'round 2: log replays to membership');

-- a refresh of one segment only, then changes, then all: the others catch up
SELECT pg_temp.random_changes();
SELECT ok((SELECT entered + exited FROM crm.refresh_segment('tap a')) >= 0, 'round 3: tap a alone');
SELECT pg_temp.random_changes();
SELECT ok((SELECT count(*) FROM crm.refresh_segments()) >= 5, 'round 3 refreshed');
SELECT is(pg_temp.differences(), 0::bigint, 'round 3: stored = fresh');
SELECT is(pg_temp.log_mismatches(), 0::bigint, 'round 3: log replays to membership');

SELECT pg_temp.random_changes();
SELECT pg_temp.random_changes();
SELECT ok((SELECT count(*) FROM crm.refresh_segments()) >= 5, 'round 4 refreshed');
SELECT is(pg_temp.differences(), 0::bigint, 'round 4: stored = fresh');
SELECT is(pg_temp.log_mismatches(), 0::bigint, 'round 4: log replays to membership');

-- a predicate changed: the next refresh starts over and agrees again
SELECT lives_ok($$SELECT crm.alter_segment('tap a', $p$attrs @> '{"t": "tap"}' AND country IN ('DE', 'ES') AND order_count >= 1$p$)$$, 'alter tap a');
SELECT pg_temp.random_changes();
SELECT ok((SELECT count(*) FROM crm.refresh_segments()) >= 5, 'round 5 refreshed');
SELECT ok((SELECT last_full FROM crm.segment WHERE name = 'tap a'), 'round 5: altered tap a refreshed fully');
SELECT is(pg_temp.differences(), 0::bigint, 'round 5: stored = fresh');
SELECT is(pg_temp.log_mismatches(), 0::bigint, 'round 5: log replays to membership');
SELECT is((SELECT sum(entered + exited) FROM crm.refresh_segments() WHERE segment LIKE 'tap %' AND segment <> 'tap e'), 0::numeric,
		  'a refresh right after a refresh changes nothing');

SELECT * FROM finish();
ROLLBACK;
