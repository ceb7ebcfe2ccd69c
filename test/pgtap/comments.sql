-- pgTAP: every column of crm's tables and views and of crm_bi's views has a
-- COMMENT, the REMARKS a BI tool shows for it (JDBC
-- DatabaseMetaData.getColumns reads pg_description).  A new column needs one
-- in src/columns.sql (or next to its table) and in the update script.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SELECT plan(4);

PREPARE uncommented AS
SELECT (c.oid::regclass::text || '.' || quote_ident(a.attname::text)) COLLATE "C" AS "column"
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace IN ('crm'::regnamespace, 'crm_bi'::regnamespace) AND c.relkind IN ('r', 'v', 'p', 'm', 'f')
   AND coalesce(btrim(pg_catalog.col_description(c.oid, a.attnum)), '') = ''
 ORDER BY 1;

SELECT is_empty('uncommented', 'every column of every crm table and view has a COMMENT');
SELECT cmp_ok((SELECT count(*) FROM pg_catalog.pg_class c
				 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
				WHERE c.relnamespace IN ('crm'::regnamespace, 'crm_bi'::regnamespace) AND c.relkind IN ('r', 'v', 'p', 'm', 'f')),
	'>', 250::bigint, 'the check sees the columns of crm''s tables and views');

-- the check catches a column added without a comment
ALTER TABLE crm.task ADD COLUMN tap_uncommented integer;
SELECT results_eq('uncommented', $$VALUES ('crm.task.tap_uncommented' COLLATE "C")$$,
	'a column added without a COMMENT is listed');
CREATE VIEW crm_bi.tap_uncommented WITH (security_invoker = true) AS SELECT 1 AS x;
SELECT results_eq('uncommented',
	$$VALUES ('crm.task.tap_uncommented' COLLATE "C"), ('crm_bi.tap_uncommented.x' COLLATE "C")$$,
	'a crm_bi view column without a COMMENT is listed');

SELECT * FROM finish();
ROLLBACK;
