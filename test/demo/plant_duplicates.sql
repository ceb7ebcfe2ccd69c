-- Plant known duplicates in the demo data, to measure crm.find_duplicates.
--   psql -v seed=42 -v rate=0.05 -f test/demo/plant_duplicates.sql [-v in_transaction=1]
-- Run after generate.sql.  For a share `rate` of the generated contacts that
-- have a name, inserts a second record of the same person as it would arrive
-- through another channel: another e-mail address, the name spelled another
-- way, and only some of the other fields.  The pairs are recorded in
-- public.planted_duplicate (original, duplicate, kind).
--
-- Name variants (kind): case (JOSÉ NÚÑEZ), ascii (the plain-ASCII spelling a
-- person types: Jose Nunez, Juergen Mueller, Dmitriy Smirnov, Sai Reddy),
-- one_field (the whole name in first_name, odd spacing), swapped (first and
-- last name exchanged), typo (two letters of the last name exchanged).
-- Other fields: city always kept (in upper case 30% of the time); phone kept
-- (reformatted) 60% of the time when there is one; birth date 50%; company
-- 60%; the e-mail handle (local part) reused at another domain 30%.  A
-- duplicate that would share nothing but its name and city is given the
-- birth date: in this data some 30 different people share each name and
-- city, so such a pair cannot be told apart from them by any method.
\if :{?seed}
\else
\set seed 42
\endif
\if :{?rate}
\else
\set rate 0.05
\endif
\set ON_ERROR_STOP 1

-- -v in_transaction=1: the caller's transaction (the demo report rolls back)
\if :{?in_transaction}
\else
BEGIN;
\endif
SELECT format($f$CREATE OR REPLACE FUNCTION pg_temp.rnd(i bigint, stream int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$b$ SELECT (hashint8extended(i, %s::bigint * 1000 + stream) & 2147483647)::float8 / 2147483648.0 $b$$f$,
	(:seed)::bigint) \gexec

-- exchange the third and fourth letters (a typing slip); short names get a doubled last letter
CREATE OR REPLACE FUNCTION pg_temp.typo(s text) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN length(s) >= 5 THEN left(s, 2) || substr(s, 4, 1) || substr(s, 3, 1) || substr(s, 5) ELSE s || right(s, 1) END $$;

DROP TABLE IF EXISTS public.planted_duplicate;
CREATE TABLE public.planted_duplicate (original bigint PRIMARY KEY, duplicate bigint UNIQUE, kind text);

DROP TABLE IF EXISTS pg_temp.plant;
CREATE TEMP TABLE plant AS
SELECT c.*, v.kind,
	   split_part(split_part(c.email::text, '@', 1), '.', 1) AS ascii_first,
	   regexp_replace(split_part(split_part(c.email::text, '@', 1), '.', 2), '[0-9]+$', '') AS ascii_last,
	   pg_temp.rnd(c.contact_id, 210) < 0.6 AND c.phone IS NOT NULL AS keep_phone,
	   pg_temp.rnd(c.contact_id, 211) < 0.5 AS keep_birth,
	   pg_temp.rnd(c.contact_id, 212) < 0.6 AND c.company_id IS NOT NULL AS keep_company,
	   pg_temp.rnd(c.contact_id, 213) < 0.3 AS keep_handle
  FROM crm.contact c
 CROSS JOIN LATERAL (SELECT CASE WHEN r < 0.2 THEN 'case' WHEN r < 0.45 THEN 'ascii'
								 WHEN r < 0.6 THEN 'one_field' WHEN r < 0.75 THEN 'swapped'
								 ELSE 'typo' END AS kind
					   FROM (SELECT pg_temp.rnd(c.contact_id, 201) AS r) x) v
 WHERE c.first_name IS NOT NULL AND c.last_name IS NOT NULL
   AND c.email::text NOT LIKE '%@cdnow.example'
   AND pg_temp.rnd(c.contact_id, 200) < :rate;
UPDATE plant SET keep_birth = true WHERE NOT (keep_phone OR keep_birth OR keep_company OR keep_handle);
ALTER TABLE plant ADD new_email text;
UPDATE plant SET new_email = crm.email(CASE WHEN keep_handle THEN split_part(email::text, '@', 1) || '@mail.example'
	ELSE ascii_first || '_' || ascii_last || '.' || contact_id || '@dup.example' END)::text;

WITH ins AS (
	INSERT INTO crm.contact (email, first_name, last_name, phone, city, country, birth_date, company_id,
							 income_band, job_title, lead_source, owner, attrs, created_at)
	SELECT p.new_email,
		   CASE p.kind WHEN 'case' THEN upper(p.first_name)
					   WHEN 'ascii' THEN initcap(p.ascii_first)
					   WHEN 'one_field' THEN '  ' || p.first_name || '   ' || p.last_name || ' '
					   WHEN 'swapped' THEN p.last_name
					   ELSE p.first_name END,
		   CASE p.kind WHEN 'case' THEN upper(p.last_name)
					   WHEN 'ascii' THEN initcap(p.ascii_last)
					   WHEN 'one_field' THEN NULL
					   WHEN 'swapped' THEN p.first_name
					   ELSE pg_temp.typo(p.last_name) END,
		   CASE WHEN p.keep_phone THEN regexp_replace(p.phone, '^\+[0-9]+ ', '0') END,
		   CASE WHEN pg_temp.rnd(p.contact_id, 214) < 0.3 THEN upper(p.city) ELSE p.city END,
		   p.country,
		   CASE WHEN p.keep_birth THEN p.birth_date END,
		   CASE WHEN p.keep_company THEN p.company_id END,
		   p.income_band, p.job_title, 'form', p.owner, '{}', p.created_at + interval '30 days'
	  FROM plant p ORDER BY p.contact_id
	RETURNING contact_id, email)
INSERT INTO public.planted_duplicate (original, duplicate, kind)
SELECT p.contact_id, i.contact_id, p.kind
  FROM ins i JOIN plant p
	ON i.email::text = p.new_email;
\if :{?in_transaction}
\else
COMMIT;
\endif
ANALYZE crm.contact;
SELECT kind, count(*) AS planted FROM public.planted_duplicate GROUP BY kind ORDER BY kind;
