-- Load the real CDNOW transactions (test/data/CDNOW_master.txt: 23,570
-- customers, 69,659 purchases, 1997-01 to 1998-06) into crm.contact and
-- crm."order".  Run from the repository root:
--   psql -f test/demo/load_cdnow.sql
-- Customers get addresses cdnow-NNNNN@cdnow.example and attrs.cdnow_id;
-- sample membership (Hardie's 2,357-customer cohort) is attrs.cdnow_sample.
\set ON_ERROR_STOP 1
BEGIN;
CREATE TEMP TABLE cdnow_raw (line text);
\copy cdnow_raw FROM 'test/data/CDNOW_master.txt'
CREATE TEMP TABLE cdnow_sample_raw (line text);
\copy cdnow_sample_raw FROM 'test/data/CDNOW_sample.txt'

CREATE TEMP TABLE cdnow AS
SELECT f[1] AS cust, to_date(f[2], 'YYYYMMDD') AS day, f[3]::int AS cds, f[4]::numeric(14, 2) AS dollars
  FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') f FROM cdnow_raw) s
 WHERE f[1] ~ '^\d+$';
CREATE TEMP TABLE cdnow_ids AS
SELECT DISTINCT f[1] AS cust, f[2] AS sample_id
  FROM (SELECT regexp_split_to_array(btrim(line, E' \r\n'), '\s+') f FROM cdnow_sample_raw) s;

INSERT INTO crm.contact (email, lead_source, country, attrs, created_at)
SELECT 'cdnow-' || c.cust || '@cdnow.example', 'import', 'US',
	   jsonb_strip_nulls(jsonb_build_object('cdnow_id', c.cust, 'cdnow_sample', s.sample_id)),
	   c.first_day
  FROM (SELECT cust, min(day)::timestamptz AS first_day FROM cdnow GROUP BY cust) c
  LEFT JOIN cdnow_ids s USING (cust)
 ORDER BY c.cust;

INSERT INTO crm."order" (contact_id, ordered_at, status, total, items, external_ref)
SELECT k.contact_id, r.day, 'paid', r.dollars, nullif(r.cds, 0), 'cdnow'
  FROM cdnow r
  JOIN crm.contact k ON k.email = ('cdnow-' || r.cust || '@cdnow.example')::crm.email
 ORDER BY k.contact_id, r.day;
COMMIT;
ANALYZE crm.contact, crm."order";
