-- pgTAP: the filters BI tools generate work whatever the search_path, with
-- the types drivers bind (setString sends character varying), as a sales
-- rep under row-level security, and the unique index on e-mail serves them.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public;
SELECT plan(25);

\o /dev/null
SELECT * FROM crm.setup_roles();
\o
CREATE ROLE bi_rep NOLOGIN IN ROLE crm_sales;
INSERT INTO crm.contact (email, owner, stage) VALUES
	('Ann.Lee@Example.ORG', 'bi_rep', 'lead'), ('bob@example.org', 'bi_rep', 'customer'),
	('carl@example.org', current_user, 'lead');
CREATE TEMP TABLE cells AS SELECT crm.rfm(5, 4, 3) AS rfm UNION ALL SELECT crm.rfm(1, 1, 1);
GRANT SELECT ON cells TO crm_sales;
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		plan := plan || line || ' ';
	END LOOP;
	RETURN plan;
END $$;
PREPARE by_email(varchar) AS SELECT count(*)::int FROM crm.contact WHERE email = $1;
PREPARE by_email_rev(varchar) AS SELECT count(*)::int FROM crm.contact WHERE $1 = email;
PREPARE not_email(varchar) AS SELECT count(*)::int FROM crm.contact WHERE email <> $1;
PREPARE by_email_typed(varchar) AS SELECT count(*)::int FROM crm.contact WHERE email = $1::crm.email;
PREPARE contains(varchar) AS SELECT count(*)::int FROM crm.contact WHERE email ILIKE $1;
PREPARE by_stage(varchar) AS SELECT count(*)::int FROM crm.contact WHERE stage = $1;
PREPARE by_rfm(varchar) AS SELECT count(*)::int FROM cells WHERE rfm = $1::crm.rfm;
PREPARE by_rfm_text(varchar) AS SELECT count(*)::int FROM cells WHERE rfm = $1;

SELECT is(current_setting('search_path'), 'public', 'crm is not on the search_path');
-- e-mail equality: literal, bound string, typed, reversed, negated
SELECT is((SELECT count(*)::int FROM crm.contact WHERE email = 'ANN.LEE@example.org'), 1,
	'email = literal: any spelling finds the row');
SELECT results_eq($$EXECUTE by_email('ann.lee@EXAMPLE.org')$$, ARRAY[1], 'email = varchar parameter: any spelling finds the row');
SELECT results_eq($$EXECUTE by_email_rev(' Ann.Lee@example.org ')$$, ARRAY[1], 'varchar parameter = email');
SELECT results_eq($$EXECUTE by_email_typed('ann.lee@example.org')$$, ARRAY[1], 'email = parameter::crm.email');
SELECT results_eq($$EXECUTE by_email('ann.lee')$$, ARRAY[0], 'a partial address finds nothing (no 22P02)');
SELECT results_eq($$EXECUTE by_email('')$$, ARRAY[0], 'an empty string finds nothing');
SELECT results_eq($$EXECUTE not_email('ann.lee')$$, ARRAY[3], 'email <> a partial address: every row');
SELECT results_eq($$EXECUTE not_email('ann.lee@example.org')$$, ARRAY[2], 'email <> an address: the other rows');
SELECT throws_ok($$SELECT count(*) FROM crm.contact WHERE email = 'ann.lee'$$, '22P02', NULL,
	'a partial literal is read as an address: 22P02, as before');
-- the functions BI tools apply to a text column
SELECT results_eq($$EXECUTE contains('%LEE%')$$, ARRAY[1], 'email ILIKE: the contains filter');
SELECT is((SELECT count(*)::int FROM crm.contact WHERE email LIKE '%@example.org'), 3, 'email LIKE');
SELECT is((SELECT min(email) FROM crm.contact), 'ann.lee@example.org', 'min(email)');
SELECT is((SELECT max(length(email)) FROM crm.contact), 19, 'length(email)');
SELECT is((SELECT upper(email) FROM crm.contact WHERE email = 'bob@example.org'), 'BOB@EXAMPLE.ORG', 'upper(email)');
SELECT is((SELECT count(DISTINCT lower(email))::int FROM crm.contact), 3, 'lower(email)');
-- the unique index serves a bound string, in a generic plan too
SET LOCAL plan_cache_mode = force_generic_plan;
SET LOCAL enable_seqscan = off;
SELECT matches(pg_temp.plan_of($$EXECUTE by_email('ann.lee@example.org')$$),
	'Index (Only )?Scan using contact_email_key on contact.*Index Cond: \(email = crm\.email_or_null',
	'generic plan of email = $1: an index scan of contact_email_key');
RESET enable_seqscan;
RESET plan_cache_mode;
-- stage and rfm
SELECT results_eq($$EXECUTE by_stage('lead')$$, ARRAY[2], 'stage = varchar parameter');
SELECT throws_ok($$EXECUTE by_stage('leed')$$, '22P02', NULL, 'stage = an unknown label: 22P02 naming it');
SELECT is((SELECT count(*)::int FROM crm.contact WHERE stage = 'customer'), 1, 'stage = literal: as before');
SELECT results_eq($$EXECUTE by_rfm('5-4-3')$$, ARRAY[1], 'rfm = parameter::crm.rfm');
SELECT results_eq($$EXECUTE by_rfm_text('1-1-1')$$, ARRAY[1], 'rfm = varchar parameter');
-- as a sales rep: the same filters, under row-level security
SET LOCAL ROLE bi_rep;
SELECT results_eq($$EXECUTE by_email('BOB@example.org')$$, ARRAY[1], 'sales rep: email = parameter');
SELECT results_eq($$EXECUTE by_email('carl@example.org')$$, ARRAY[0], 'sales rep: another rep''s contact stays hidden');
SELECT results_eq($$EXECUTE by_stage('lead')$$, ARRAY[1], 'sales rep: stage = parameter, own rows only');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
