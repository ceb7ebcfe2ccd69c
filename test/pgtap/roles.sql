-- pgTAP: roles and row-level security, tested as each role with SET ROLE
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(65);

-- a role with no crm membership cannot set up roles
CREATE ROLE crm_tap_nobody NOLOGIN;
SET ROLE crm_tap_nobody;
SELECT throws_ok('SELECT * FROM crm.setup_roles()', '42501', NULL, 'setup_roles without privilege: 42501');
RESET ROLE;

SELECT lives_ok('SELECT * FROM crm.setup_roles()', 'setup_roles as superuser');
SELECT lives_ok('SELECT * FROM crm.setup_roles()', 'setup_roles again: idempotent');
SELECT has_role(r, 'role ' || r) FROM unnest(ARRAY['crm_admin', 'crm_sales', 'crm_marketing', 'crm_analyst']) r;
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = t::regclass), t || ' has row-level security')
  FROM unnest(ARRAY['crm.contact', 'crm.activity', 'crm.deal', 'crm.order', 'crm.task', 'crm.consent', 'crm.score_ledger', 'crm.score_event',
					'crm.company', 'crm.merge_log', 'crm.erasure_log']) t;

CREATE ROLE crm_tap_rep_a NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_tap_rep_b NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_tap_team NOLOGIN;
GRANT crm_tap_team TO crm_tap_rep_a;
CREATE ROLE crm_tap_mkt NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_tap_ana NOLOGIN IN ROLE crm_analyst;
CREATE ROLE crm_tap_admin NOLOGIN IN ROLE crm_admin;
-- companies: B's with a contact of A, B's alone, A's without contacts
INSERT INTO crm.company (company_id, name, owner) VALUES
	(7200101, 'Shared Co', 'crm_tap_rep_b'), (7200102, 'B Co', 'crm_tap_rep_b'), (7200103, 'A Co', 'crm_tap_rep_a');
INSERT INTO crm.contact (contact_id, email, first_name, last_name, owner, phone, city, company_id) VALUES
	(7200001, 'a1@rls.example', 'Ann', 'Lee', 'crm_tap_rep_a', '+1 555 0100 11', 'Boston', 7200101),
	(7200002, 'a2@rls.example', 'ANN', 'LEE', 'crm_tap_rep_a', '555010011', 'Boston', NULL),
	(7200003, 'team@rls.example', 'Tom', 'Team', 'crm_tap_team', NULL, NULL, NULL),
	(7200004, 'b1@rls.example', 'Bob', 'Bee', 'crm_tap_rep_b', NULL, NULL, 7200102);
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
-- views apply the policies of the tables under them
SELECT is((SELECT count(*) FROM crm.consent_current WHERE contact_id BETWEEN 7200001 AND 7200004), 1::bigint,
	'sales sees the current consent of own contacts only');
SELECT results_eq('SELECT contact_id, company_name FROM crm.contact_profile WHERE contact_id BETWEEN 7200001 AND 7200004 ORDER BY 1',
	$$VALUES (7200001::bigint, 'Shared Co'), (7200002, NULL), (7200003, NULL)$$,
	'sales reads the profiles of own contacts, with their companies');
SELECT results_eq('SELECT company_id FROM crm.company WHERE company_id BETWEEN 7200101 AND 7200103 ORDER BY 1',
	ARRAY[7200101, 7200103]::bigint[], 'sales sees its own companies and those of its contacts only');
SELECT lives_ok($$INSERT INTO crm.company (name, owner) VALUES ('New A Co', 'crm_tap_rep_a')$$, 'sales creates a company it owns');
SELECT throws_ok($$INSERT INTO crm.company (name, owner) VALUES ('Not mine', 'crm_tap_rep_b')$$, '42501', NULL,
	'sales cannot create a company for another rep');
UPDATE crm.company SET industry = 'hacked' WHERE company_id IN (7200101, 7200102);
UPDATE crm.company SET industry = 'retail' WHERE company_id = 7200103;
SELECT throws_ok('SELECT count(*) FROM crm.segment_dirty', '42501', NULL, 'sales cannot read which contacts changed');
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
SELECT is((SELECT count(*) FROM crm.merge_log WHERE kept_id = 7200001), 1::bigint, 'sales sees the merge into its contact');
SELECT throws_ok($$SELECT crm.forget_contact(7200001, 'test')$$, '42501', NULL, 'forget_contact is for crm_admin: 42501');
SELECT throws_ok('SELECT * FROM crm.setup_roles()', '42501', NULL, 'sales cannot set up roles');
RESET ROLE;
SELECT is((SELECT city FROM crm.contact WHERE contact_id = 7200004), NULL, 'the other rep''s contact was not changed');
SELECT results_eq('SELECT company_id, industry FROM crm.company WHERE company_id BETWEEN 7200101 AND 7200103 ORDER BY 1',
	$$VALUES (7200101::bigint, NULL::text), (7200102, NULL), (7200103, 'retail')$$,
	'sales changed its own company, not those of another rep (one its contact works at, one it cannot see)');
SET ROLE crm_tap_rep_b;
SELECT is((SELECT count(*) FROM crm.merge_log WHERE kept_id = 7200001), 0::bigint, 'another rep does not see that merge');
RESET ROLE;

-- marketing reads everything, changes no contact, records consent
SET ROLE crm_tap_mkt;
SELECT is((SELECT count(*) FROM crm.contact WHERE email::text LIKE '%@rls.example'), 3::bigint, 'marketing reads all contacts');
SELECT is((SELECT count(*) FROM crm.consent_current WHERE contact_id BETWEEN 7200001 AND 7200004), 2::bigint,
	'marketing reads the current consent of all contacts');
SELECT is((SELECT count(*) FROM crm.company WHERE company_id BETWEEN 7200101 AND 7200103), 3::bigint, 'marketing reads all companies');
SELECT throws_ok($$UPDATE crm.contact SET city = 'x' WHERE contact_id = 7200004$$, '42501', NULL, 'marketing cannot edit contacts');
SELECT lives_ok($$INSERT INTO crm.consent (contact_id, channel, status, source) VALUES (7200004, 'email', 'revoked', 'campaign unsubscribe')$$,
	'marketing records an opt-out');
SELECT throws_ok('SELECT * FROM crm.setup_roles()', '42501', NULL, 'marketing cannot set up roles');
RESET ROLE;

-- analyst: k-anonymous views only; six alike contacts with an order each,
-- and three (the ones above) that fewer than 5 share anything with
INSERT INTO crm.contact (contact_id, email, owner, country)
SELECT 7200010 + i, 'k' || i || '@rls.example', 'crm_tap_rep_b', 'DE' FROM generate_series(1, 6) i;
INSERT INTO crm."order" (contact_id, total, ordered_at) SELECT 7200010 + i, 10, now() - interval '40 days' FROM generate_series(1, 6) i;
SET ROLE crm_tap_ana;
SELECT throws_ok('SELECT count(*) FROM crm.contact', '42501', NULL, 'analyst cannot read the contact table');
SELECT results_eq('SELECT country, withheld, count(*) FROM crm.analyst_contact GROUP BY 1, 2',
	$$VALUES ('DE', 0, 6::bigint)$$, 'analyst reads the six alike contacts in full and not the three others');
SELECT results_eq('SELECT orders, contacts, total FROM crm.analyst_order',
	$$VALUES (6::bigint, 6::bigint, 60::numeric)$$, 'analyst reads orders as a cell of six contacts, not the two lone orders');
SELECT is((SELECT count(*) FROM crm.analyst_activity), 0::bigint, 'analyst sees no activity cell of fewer than 5 contacts');
RESET ROLE;
SELECT hasnt_column('crm', 'analyst_contact', c, 'analyst_contact has no ' || c)
  FROM unnest(ARRAY['email', 'first_name', 'phone', 'city', 'birth_date', 'company_id', 'contact_id', 'contact_key']) c;

-- admin: sees all, may erase
SET ROLE crm_tap_admin;
SELECT isnt(crm.forget_contact(7200004, 'erasure request'), NULL, 'admin erases a contact');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
