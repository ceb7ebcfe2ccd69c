-- pgTAP: a segment's predicate runs with the privileges of its owner, the
-- role that wrote it, whoever refreshes it (a superuser, an administrator, a
-- pg_cron job), under the owner's row-level security; no one records an
-- owner whose privileges they do not have.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(22);

SELECT lives_ok('SELECT * FROM crm.setup_roles()', 'roles set up');
CREATE ROLE crm_tap_seg_mkt NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_tap_seg_mkt2 NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_tap_seg_gone NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_tap_seg_rep NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_tap_seg_ana NOLOGIN IN ROLE crm_analyst;
INSERT INTO crm.contact (contact_id, email, owner, attrs)
SELECT 950000 + i, 'own' || i || '@seg-owner.test', CASE WHEN i <= 2 THEN 'crm_tap_seg_rep' ELSE 'crm_tap_seg_mkt' END, '{"t": "owner"}'
  FROM generate_series(1, 6) i;
-- a table only the superuser can read
CREATE TABLE public.tap_seg_secret (contact_id bigint PRIMARY KEY);
REVOKE ALL ON public.tap_seg_secret FROM PUBLIC;
INSERT INTO public.tap_seg_secret VALUES (950001), (950002), (950003);

SET ROLE crm_tap_seg_mkt;
SELECT lives_ok($$SELECT crm.create_segment('tap secret', $p$attrs @> '{"t": "owner"}'
	AND EXISTS (SELECT 1 FROM public.tap_seg_secret s WHERE s.contact_id = contact_profile.contact_id)$p$)$$,
	'a marketer writes a predicate that reads a table only the superuser can read');
SELECT lives_ok($$SELECT crm.create_segment('tap all', $p$attrs @> '{"t": "owner"}'$p$)$$,
	'and one over the profile alone');
RESET ROLE;

-- the superuser refreshes: the predicate still runs as the marketer
SELECT throws_ok($$SELECT * FROM crm.refresh_segment('tap secret')$$, '42501',
	'permission denied for table tap_seg_secret',
	'refreshed by the superuser, the predicate cannot read what its owner cannot');
SELECT is((SELECT count(*) FROM crm.segment_member m JOIN crm.segment s USING (segment_id) WHERE s.name = 'tap secret'),
	0::bigint, 'and no member was stored');
SELECT is((SELECT owner FROM crm.segment WHERE name = 'tap secret'), 'crm_tap_seg_mkt'::regrole,
	'the writer of the predicate is recorded as its owner');
SET ROLE crm_tap_seg_mkt;
SELECT is((SELECT entered FROM crm.refresh_segment('tap all')), 6::bigint, 'a marketer refreshes its own segment');
RESET ROLE;
SELECT is((SELECT entered + exited FROM crm.refresh_segment('tap all', true)), 0::bigint,
	'the superuser refreshes the marketer''s other segment');
GRANT SELECT ON public.tap_seg_secret TO crm_tap_seg_mkt;
SELECT is((SELECT entered FROM crm.refresh_segment('tap secret')), 3::bigint,
	'once the owner may read the table, the same refresh sees it');
REVOKE SELECT ON public.tap_seg_secret FROM crm_tap_seg_mkt;
SELECT throws_ok($$SELECT * FROM crm.refresh_segment('tap secret', true)$$, '42501', NULL,
	'and no more once the grant is revoked');

-- an owner cannot be forged, and rewriting a predicate makes it the writer's
SET ROLE crm_tap_seg_mkt;
SELECT throws_ok($$UPDATE crm.segment SET owner = 'crm_tap_seg_mkt2' WHERE name = 'tap all'$$, '42501', NULL,
	'a marketer cannot make another role the owner of a predicate');
SELECT throws_ok(format($$INSERT INTO crm.segment (name, kind, predicate, owner) VALUES ('tap forged', 'dynamic', 'true', %L)$$,
						(SELECT quote_ident(rolname) FROM pg_roles WHERE rolsuper ORDER BY oid LIMIT 1)), '42501', NULL,
	'nor insert a predicate owned by a superuser');
RESET ROLE;
SELECT lives_ok($$SELECT crm.create_segment('tap su', 'true')$$, 'the superuser writes a predicate');
SELECT is((SELECT owner::oid FROM crm.segment WHERE name = 'tap su'),
	(SELECT oid FROM pg_roles WHERE rolname = current_user), 'and owns it');
SET ROLE crm_tap_seg_mkt;
SELECT lives_ok($$UPDATE crm.segment SET predicate = $p$EXISTS (SELECT 1 FROM public.tap_seg_secret s
	WHERE s.contact_id = contact_profile.contact_id)$p$ WHERE name = 'tap su'$$,
	'a marketer rewrites the superuser''s predicate straight in the table');
RESET ROLE;
SELECT is((SELECT owner FROM crm.segment WHERE name = 'tap su'), 'crm_tap_seg_mkt'::regrole,
	'the rewritten predicate is the marketer''s');
SELECT throws_ok($$SELECT * FROM crm.refresh_segment('tap su', true)$$, '42501', NULL,
	'and runs with the marketer''s privileges only');

-- row-level security applies as the owner: a sales rep allowed to write segments
GRANT SELECT, INSERT, UPDATE ON crm.segment TO crm_tap_seg_rep;
GRANT SELECT ON crm.contact_profile TO crm_tap_seg_rep;
SET ROLE crm_tap_seg_rep;
SELECT lives_ok($$SELECT crm.create_segment('tap rep', $p$attrs @> '{"t": "owner"}'$p$)$$, 'a sales rep writes a predicate');
RESET ROLE;
SELECT is((SELECT entered FROM crm.refresh_segment('tap rep')), 2::bigint,
	'refreshed by the superuser, it sees only the rep''s own contacts');

-- who may not refresh gains nothing: evaluation needs UPDATE on crm.segment
SELECT segment_id AS tap_secret_id FROM crm.segment WHERE name = 'tap secret' \gset
SET ROLE crm_tap_seg_ana;
SELECT throws_ok(format('SELECT * FROM crm.segment_evaluate(%s, NULL)', :tap_secret_id), '42501', NULL,
	'an analyst cannot evaluate a segment');
RESET ROLE;

-- a dropped owner stops the refresh instead of leaving the predicate to anyone
SET ROLE crm_tap_seg_gone;
SELECT lives_ok($$SELECT crm.create_segment('tap orphan', 'true')$$, 'a marketer writes a predicate');
RESET ROLE;
DROP ROLE crm_tap_seg_gone;
SELECT throws_ok($$SELECT * FROM crm.refresh_segment('tap orphan')$$, '42704',
	'the owner of segment "tap orphan" no longer exists', 'a segment whose owner was dropped does not refresh');

SELECT * FROM finish();
ROLLBACK;
