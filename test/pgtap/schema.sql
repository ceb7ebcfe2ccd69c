-- pgTAP: the data model's shape and its behaviour for an application
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(35);

SELECT has_schema('crm');
SELECT has_table('crm', t, 'table crm.' || t) FROM unnest(ARRAY[
	'company', 'contact', 'consent', 'activity', 'deal', 'product', 'order', 'order_line', 'task',
	'channel', 'lead_source']) t;
SELECT has_type('crm', 'email', 'type crm.email');
SELECT col_type_is('crm', 'contact', 'email', 'crm', 'email', 'contact.email is crm.email');
SELECT col_not_null('crm', 'contact', 'email', 'contact.email is mandatory');
SELECT col_is_pk('crm', t, ARRAY['contact_id', id], t || ' has (contact_id, ' || id || ') as key')
  FROM (VALUES ('activity', 'activity_id'), ('deal', 'deal_id'), ('order', 'order_id'),
			   ('task', 'task_id'), ('consent', 'consent_id')) v(t, id);
SELECT fk_ok('crm', 'activity', 'contact_id', 'crm', 'contact', 'contact_id');
SELECT fk_ok('crm', 'order_line', ARRAY['contact_id', 'order_id'], 'crm', 'order', ARRAY['contact_id', 'order_id']);
SELECT index_is_unique('crm', 'contact', 'contact_email_key', 'e-mail is unique');
SELECT has_index('crm', 'activity', 'activity_contact_time_idx', 'activities by contact and time');

-- behaviour: the only mandatory field, normalisation on the way in
SELECT throws_ok($$INSERT INTO crm.contact (first_name) VALUES ('x')$$, '23502', NULL, 'contact without email: 23502');
SELECT throws_ok($$INSERT INTO crm.contact (email) VALUES ('broken')$$, '22P02', NULL, 'malformed email: 22P02');
SELECT lives_ok($$INSERT INTO crm.contact (email) VALUES ('Tap@Example.org')$$, 'plain insert works');
SELECT throws_ok($$INSERT INTO crm.contact (email) VALUES ('tap@EXAMPLE.ORG')$$, '23505', NULL, 'duplicate in another case: 23505');
SELECT is((SELECT email::text FROM crm.contact WHERE email = 'TAP@example.org'), 'tap@example.org', 'lookup by any spelling');
SELECT throws_ok($$INSERT INTO crm."order" (contact_id, total) SELECT contact_id, -1 FROM crm.contact LIMIT 1$$,
	'23514', NULL, 'negative order total: 23514');
SELECT lives_ok($$INSERT INTO crm.consent (contact_id, channel, status)
	SELECT contact_id, 'email', 'granted' FROM crm.contact WHERE email = 'tap@example.org'$$, 'consent insert works');
SELECT throws_ok($$UPDATE crm.consent SET status = 'granted'$$, '55000', NULL, 'consent update refused');
SELECT throws_ok($$DELETE FROM crm.consent$$, '55000', NULL, 'consent delete refused');
SELECT set_config('search_path', 'public', true) IS NOT NULL AS crm_not_in_path \gset
SELECT is((SELECT count(*)::int FROM crm.contact WHERE email = 'TAP@example.org'::text), 1,
	'without crm in search_path, email = text compares addresses, not raw text');
SELECT set_config('search_path', 'public, crm', true) IS NOT NULL AS crm_in_path \gset
SELECT throws_ok($$SELECT crm.can_contact(1, 'carrier_pigeon')$$, '22023', 'unknown channel "carrier_pigeon"', 'unknown channel: 22023');

SELECT * FROM finish();
ROLLBACK;
