-- The consent ledger: append-only; can_contact from the latest row
SET search_path = crm, public;
\set VERBOSITY default
INSERT INTO crm.contact (email) VALUES ('consent1@c.example'), ('consent2@c.example'), ('consent3@c.example');
SELECT contact_id AS c1 FROM crm.contact WHERE email = 'consent1@c.example' \gset
SELECT contact_id AS c2 FROM crm.contact WHERE email = 'consent2@c.example' \gset
SELECT contact_id AS c3 FROM crm.contact WHERE email = 'consent3@c.example' \gset
-- no row means no
SELECT crm.can_contact(:c1, 'email') AS no_row;
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, source)
VALUES (:c1, 'email', 'granted', now() - interval '2 days', 'form'),
	   (:c1, 'sms', 'granted', now() - interval '2 days', 'form'),
	   (:c1, 'sms', 'revoked', now() - interval '1 day', 'unsubscribe link'),
	   (:c2, 'email', 'granted', now() - interval '40 days', 'import'),
	   (:c3, 'email', 'denied', now() - interval '3 days', 'form'),
	   (:c3, 'email', 'granted', now() - interval '1 hour', 'double opt-in');
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, valid_until, source)
VALUES (:c2, 'phone', 'granted', now() - interval '40 days', now() - interval '10 days', 'call');
SELECT crm.can_contact(:c1, 'email') AS granted,
	   crm.can_contact(:c1, 'sms') AS revoked_later,
	   crm.can_contact(:c1, 'sms', now() - interval '36 hours') AS granted_back_then,
	   crm.can_contact(:c2, 'phone') AS expired,
	   crm.can_contact(:c2, 'phone', now() - interval '20 days') AS before_expiry,
	   crm.can_contact(:c3, 'email') AS regranted,
	   crm.can_contact(:c1, 'post') AS other_channel;
-- do-not-contact overrides a grant
UPDATE crm.contact SET do_not_contact = 'bounced' WHERE contact_id = :c1;
SELECT crm.can_contact(:c1, 'email') AS bounced;
SELECT contact_id = :c1 AS is_c1, channel, status, effective FROM crm.consent_current
 WHERE contact_id IN (:c1, :c3) ORDER BY contact_id, channel;
-- the ledger cannot be edited or erased
UPDATE crm.consent SET status = 'granted' WHERE contact_id = :c1 AND channel = 'sms';
DELETE FROM crm.consent WHERE contact_id = :c1;
TRUNCATE crm.consent;
SELECT count(*) AS ledger_rows FROM crm.consent WHERE contact_id IN (:c1, :c2, :c3);
-- bad input
SELECT crm.can_contact(:c1, 'fax');
INSERT INTO crm.consent (contact_id, channel, status) VALUES (:c1, 'fax', 'granted');
INSERT INTO crm.consent (contact_id, channel, status) VALUES (-1, 'email', 'granted');
-- (terse: the failing rows hold timestamps)
\set VERBOSITY terse
INSERT INTO crm.consent (contact_id, channel, status) VALUES (:c1, 'email', 'maybe');
INSERT INTO crm.consent (contact_id, channel, status, recorded_at, valid_until)
VALUES (:c1, 'email', 'granted', now(), now() - interval '1 day');
\set VERBOSITY default
SELECT crm.can_contact(NULL, 'email') AS null_in_null_out;
-- a new channel is a row in crm.channel
INSERT INTO crm.channel (channel, description) VALUES ('whatsapp', 'messages on WhatsApp');
INSERT INTO crm.consent (contact_id, channel, status) VALUES (:c3, 'whatsapp', 'granted');
SELECT crm.can_contact(:c3, 'whatsapp') AS new_channel;
