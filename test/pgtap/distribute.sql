-- pgTAP: crm.distribute() on one node (no citus extension here): refuses
-- with 0A000 and a hint, changes nothing, admins only.  On a Citus cluster
-- it is tested by test/t/citus.sh.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(6);

SELECT throws_ok('SELECT * FROM crm.distribute()', '0A000',
				 format('crm.distribute() needs the citus extension in database "%s"', current_database()),
				 'without Citus: 0A000 naming the database');
SELECT throws_ok('SELECT * FROM crm.distribute(drop_email_uniqueness => true)', '0A000', NULL,
				 'without Citus, also with drop_email_uniqueness: 0A000');
DO $$
DECLARE hint text;
BEGIN
	PERFORM crm.distribute();
EXCEPTION WHEN feature_not_supported THEN
	GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
	CREATE TEMP TABLE distribute_hint AS SELECT hint;
END $$;
SELECT matches((SELECT hint FROM distribute_hint), 'CREATE EXTENSION citus.*citus_add_node.*coordinator',
			   'the hint says how to set Citus up');
SELECT ok(EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'crm.contact'::regclass AND conname = 'contact_email_key'),
		  'the refusal leaves UNIQUE (email) in place');
SELECT ok(NOT has_function_privilege('public', 'crm.distribute(boolean)', 'EXECUTE'),
		  'PUBLIC may not call crm.distribute()');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'crm.distribute(boolean)'::regprocedure),
		  ARRAY['search_path=pg_catalog, pg_temp'], 'its search_path is pinned and it sets no Citus switch for the session');

SELECT * FROM finish();
ROLLBACK;
