-- Identity and privacy on the demo data: match keys, duplicates, one merge.
-- Known duplicates are planted first (test/demo/plant_duplicates.sql), all in
-- one transaction that is rolled back, so later reports see the demo data as
-- generated.
BEGIN;
\set in_transaction 1
\o /dev/null
\i test/demo/plant_duplicates.sql
\o

\echo '== Match keys: one key for every spelling of a name, in any script'
SELECT n AS name, crm.match_key(n) AS match_key
  FROM unnest(ARRAY['José Núñez', 'JOSE  NUNEZ', 'Jürgen Müller', 'Иван Иванов', 'సాయి రెడ్డి', 'O''Neil, Mary-Ann']) n;

\echo '== Duplicates found by crm.find_duplicates() (blocking on keys, never all pairs)'
\timing on
CREATE TEMP TABLE dup AS SELECT * FROM crm.find_duplicates();
\timing off
SELECT count(*) AS pairs_found,
	   count(p.original) AS planted_found,
	   (SELECT count(*) FROM public.planted_duplicate) AS planted,
	   round(100.0 * count(p.original) / nullif((SELECT count(*) FROM public.planted_duplicate), 0), 1) AS recall_pct,
	   round(100.0 * (count(*) - count(p.original)) / nullif(count(*), 0), 1) AS false_pairs_pct
  FROM dup d LEFT JOIN public.planted_duplicate p ON (p.original, p.duplicate) = (d.contact_a, d.contact_b);
SELECT a.first_name || ' ' || coalesce(a.last_name, '') AS name_a, b.first_name || ' ' || coalesce(b.last_name, '') AS name_b,
	   round(d.score::numeric, 3) AS score, d.reasons
  FROM dup d JOIN crm.contact a ON a.contact_id = d.contact_a JOIN crm.contact b ON b.contact_id = d.contact_b
 WHERE d.contact_a IN (SELECT original FROM public.planted_duplicate p
						WHERE p.kind IN ('ascii', 'swapped', 'typo', 'case', 'one_field'))
 ORDER BY d.contact_a LIMIT 8;

\echo '== One merge: dry run, then the merge, then its log'
SELECT d.contact_a AS keep, d.contact_b AS drop
  FROM dup d JOIN public.planted_duplicate p ON (p.original, p.duplicate) = (d.contact_a, d.contact_b)
 WHERE EXISTS (SELECT 1 FROM crm.activity a WHERE a.contact_id = d.contact_a)
 ORDER BY d.contact_a LIMIT 1 \gset
-- the duplicate's own history, recorded under its second address
INSERT INTO crm.activity (contact_id, kind, properties)
VALUES (:drop, 'form_submit', '{"form": "demo_request"}'), (:drop, 'email_open', '{"campaign": "spring_sale"}');
INSERT INTO crm."order" (contact_id, total, items) VALUES (:drop, 42.50, 1);
INSERT INTO crm.consent (contact_id, channel, status, source) VALUES (:drop, 'email', 'revoked', 'unsubscribe link');
SELECT contact_id, email, first_name, last_name, phone, city, birth_date, stage,
	   crm.can_contact(contact_id, 'email') AS email_ok FROM crm.contact
 WHERE contact_id IN (:keep, :drop) ORDER BY contact_id;
SELECT * FROM crm.merge_contacts(:keep, :drop, dry_run => true);
SELECT * FROM crm.merge_contacts(:keep, :drop);
SELECT contact_id, email, first_name, last_name, phone, city, birth_date, stage,
	   crm.can_contact(contact_id, 'email') AS email_ok, attrs -> 'merged_emails' AS merged_emails
  FROM crm.contact WHERE contact_id = :keep;
SELECT merge_id, kept_id, dropped_id, merged_by, dropped_row ->> 'email' AS dropped_email,
	   jsonb_array_length(moved) AS tables_touched
  FROM crm.merge_log WHERE dropped_id = :drop;
\echo '== Consent history of the kept contact (rows merged in are marked)'
SELECT channel, status, recorded_at::date, source, merged_from, is_current FROM crm.consent_history(:keep);
ROLLBACK;
