-- pgTAP: roles and row-level security, tested as each role with SET ROLE
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(45);

-- a role with no crm membership cannot set up roles
CREATE ROLE crm_tap_nobody NOLOGIN;
SET ROLE crm_tap_nobody;
SELECT throws_ok('SELECT * FROM crm.setup_roles()', '42501', NULL, 'setup_roles without privilege: 42501');
RESET ROLE;

SELECT lives_ok('SELECT * FROM crm.setup_roles()', 'setup_roles as superuser');
SELECT lives_ok('SELECT * FROM crm.setup_roles()', 'setup_roles again: idempotent');
SELECT has_role(r, 'role ' || r) FROM unnest(ARRAY['crm_admin', 'crm_sales', 'crm_marketing', 'crm_analyst']) r;
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = t::regclass), t || ' has row-level security')
  FROM unnest(ARRAY['crm.contact', 'crm.activity', 'crm.deal', 'crm.order', 'crm.task', 'crm.consent', 'crm.score_ledger', 'crm.score_event']) t;

CREATE ROLE crm_tap_rep_a NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_tap_rep_b NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_tap_team NOLOGIN;
GRANT crm_tap_team TO crm_tap_rep_a;
CREATE ROLE crm_tap_mkt NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_tap_ana NOLOGIN IN ROLE crm_analyst;
CREATE ROLE crm_tap_admin NOLOGIN IN ROLE crm_admin;
INSERT INTO crm.contact (contact_id, email, first_name, last_name, owner, phone, city) VALUES
	(7200001, 'a1@rls.example', 'Ann', 'Lee', 'crm_tap_rep_a', '+1 555 0100 11', 'Boston'),
	(7200002, 'a2@rls.example', 'ANN', 'LEE', 'crm_tap_rep_a', '555010011', 'Boston'),
	(7200003, 'team@rls.example', 'Tom', 'Team', 'crm_tap_team', NULL, NULL),
	(7200004, 'b1@rls.example', 'Bob', 'Bee', 'crm_tap_rep_b', NULL, NULL);
INSERT INTO crm.activity (contact_id, kind) SELECT c, 'page_view' FROM unnest(ARRAY[7200001, 7200002, 7200003, 7200004]) c;
INSERT INTO crm.deal (contact_id, title) VALUES (7200001, 'A deal'), (7200004, 'B deal');
INSERT INTO crm."order" (contact_id, total) VALUES (7200002, 20), (7200004, 99);
INSERT INTO crm.task (contact_id, title) VALUES (7200004, 'Call Bob');
INSERT INTO crm.consent (contact_id, channel, status) VALUES (7200001, 'email', 'granted'), (7200004, 'email', 'granted');

-- sales rep A: own contacts and the team's, nothing of B
SET ROLE crm_tap_rep_a;
SELECT results_eq('SELECT contact_id FROM crm.contact WHERE email::text LIKE ''%@rls.example'' ORDER BY 1',
	ARRAY[7200001, 7200002, 7200003]::bigint[], 'sales sees own and team contacts only');
SELECT is((SELECT count(*) FROM crm.activity WHERE contact_id BETWEEN 7200001 AND 7200004), 3::bigint, 'sales sees activities of own contacts');
SELECT is((SELECT count(*) FROM crm.deal WHERE contact_id BETWEEN 7200001 AND 7200004), 1::bigint, 'sales sees own deals');
SELECT is((SELECT count(*) FROM crm."order" WHERE contact_id BETWEEN 7200001 AND 7200004), 1::bigint, 'sales sees own orders');
SELECT is((SELECT count(*) FROM crm.task WHERE contact_id BETWEEN 7200001 AND 7200004), 0::bigint, 'sales sees no task of B');
SELECT is((SELECT count(*) FROM crm.consent WHERE contact_id BETWEEN 7200001 AND 7200004), 1::bigint, 'sales sees own consents');
SELECT lives_ok($$UPDATE crm.contact SET city = 'Salem' WHERE contact_id = 7200003$$, 'sales updates a team contact');
UPDATE crm.contact SET city = 'Hacked' WHERE contact_id = 7200004;
SELECT throws_ok($$INSERT INTO crm.contact (email, owner) VALUES ('x@rls.example', 'crm_tap_rep_b')$$, '42501', NULL,
	'sales cannot create a contact for another rep');
SELECT throws_ok($$INSERT INTO crm.activity (contact_id, kind) VALUES (7200004, 'call')$$, '42501', NULL,
	'sales cannot add activities to another rep''s contact');
SELECT lives_ok($$INSERT INTO crm.activity (contact_id, kind) VALUES (7200001, 'call')$$, 'sales adds activities to own contact');
SELECT throws_ok($$UPDATE crm.contact SET owner = 'crm_tap_rep_b' WHERE contact_id = 7200001$$, '42501', NULL,
	'sales cannot hand a contact to a rep it is not');
-- the extension's functions work under row-level security
SELECT ok(crm.can_contact(7200001, 'email'), 'can_contact works for sales');
SELECT results_eq('SELECT contact_a, contact_b FROM crm.find_duplicates() WHERE contact_a >= 7200001',
	$$VALUES (7200001::bigint, 7200002::bigint)$$, 'find_duplicates sees the rep''s own duplicates');
SELECT throws_ok('SELECT * FROM crm.merge_contacts(7200001, 7200004)', 'P0002', NULL,
	'merging another rep''s contact: P0002 (not visible)');
SELECT lives_ok('SELECT * FROM crm.merge_contacts(7200001, 7200002)', 'sales merges two of its own contacts');
SELECT is((SELECT count(*) FROM crm."order" WHERE contact_id = 7200001), 1::bigint, 'the order moved to the kept contact');
SELECT throws_ok($$SELECT crm.forget_contact(7200001, 'test')$$, '42501', NULL, 'forget_contact is for crm_admin: 42501');
SELECT throws_ok('SELECT * FROM crm.setup_roles()', '42501', NULL, 'sales cannot set up roles');
RESET ROLE;
SELECT is((SELECT city FROM crm.contact WHERE contact_id = 7200004), NULL, 'the other rep''s contact was not changed');

-- marketing reads everything, changes no contact, records consent
SET ROLE crm_tap_mkt;
SELECT is((SELECT count(*) FROM crm.contact WHERE email::text LIKE '%@rls.example'), 3::bigint, 'marketing reads all contacts');
SELECT throws_ok($$UPDATE crm.contact SET city = 'x' WHERE contact_id = 7200004$$, '42501', NULL, 'marketing cannot edit contacts');
SELECT lives_ok($$INSERT INTO crm.consent (contact_id, channel, status, source) VALUES (7200004, 'email', 'revoked', 'campaign unsubscribe')$$,
	'marketing records an opt-out');
SELECT throws_ok('SELECT * FROM crm.setup_roles()', '42501', NULL, 'marketing cannot set up roles');
RESET ROLE;

-- analyst: pseudonymised views only
SET ROLE crm_tap_ana;
SELECT throws_ok('SELECT count(*) FROM crm.contact', '42501', NULL, 'analyst cannot read the contact table');
SELECT cmp_ok((SELECT count(*) FROM crm.analyst_contact), '>=', 3::bigint, 'analyst reads the pseudonymised contacts');
SELECT is((SELECT count(*) FROM crm.analyst_order WHERE total IN (20, 99)), 2::bigint, 'analyst reads orders of every rep');
RESET ROLE;
SELECT hasnt_column('crm', 'analyst_contact', c, 'analyst_contact has no ' || c)
  FROM unnest(ARRAY['email', 'first_name', 'phone']) c;

-- admin: sees all, may erase
SET ROLE crm_tap_admin;
SELECT isnt(crm.forget_contact(7200004, 'erasure request'), NULL, 'admin erases a contact');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
