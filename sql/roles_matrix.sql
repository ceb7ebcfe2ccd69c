-- Every object of the extension and what each crm role may do with it after
-- crm.setup_roles(): the decision for each object is written here, so a new
-- object that nobody decided on (or a changed grant) fails this test.
-- Relations: r select, a insert, w update, d delete (c: on some columns
-- only); sequences: u usage; functions: x execute; types: u usage.
-- Effective privileges, PUBLIC's and inherited grants included.
SET client_min_messages = warning;
SELECT count(*) > 0 AS set_up FROM crm.setup_roles();
RESET client_min_messages;
WITH member AS (
	SELECT d.classid, d.objid
	  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
	 WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'crm'
), role(r) AS (VALUES ('crm_admin'), ('crm_marketing'), ('crm_sales'), ('crm_analyst')),
rel AS (
	SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' ELSE c.relkind::text END AS kind,
		   c.oid::regclass::text AS name, c.oid, c.relkind
	  FROM member m JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid
), grants AS (
	SELECT rel.kind, rel.name, role.r,
		   CASE WHEN rel.relkind = 'S' THEN
				CASE WHEN has_sequence_privilege(role.r, rel.oid, 'USAGE') THEN 'u' ELSE '' END
		   ELSE
				concat(CASE WHEN has_table_privilege(role.r, rel.oid, 'SELECT') THEN 'r'
							WHEN has_any_column_privilege(role.r, rel.oid, 'SELECT') THEN 'r(c)' END,
					   CASE WHEN has_table_privilege(role.r, rel.oid, 'INSERT') THEN 'a'
							WHEN has_any_column_privilege(role.r, rel.oid, 'INSERT') THEN 'a(c)' END,
					   CASE WHEN has_table_privilege(role.r, rel.oid, 'UPDATE') THEN 'w'
							WHEN has_any_column_privilege(role.r, rel.oid, 'UPDATE') THEN 'w(c)' END,
					   CASE WHEN has_table_privilege(role.r, rel.oid, 'DELETE') THEN 'd' END)
		   END AS privs
	  FROM rel CROSS JOIN role
	UNION ALL
	SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE 'function' END,
		   p.oid::regprocedure::text, role.r,
		   CASE WHEN has_function_privilege(role.r, p.oid, 'EXECUTE') THEN 'x' ELSE '' END
	  FROM member m JOIN pg_catalog.pg_proc p ON m.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = m.objid
	 CROSS JOIN role
	UNION ALL
	SELECT 'type', t.oid::regtype::text, role.r,
		   CASE WHEN has_type_privilege(role.r, t.oid, 'USAGE') THEN 'u' ELSE '' END
	  FROM member m JOIN pg_catalog.pg_type t ON m.classid = 'pg_catalog.pg_type'::regclass AND t.oid = m.objid
	 CROSS JOIN role
)
SELECT kind, name,
	   max(privs) FILTER (WHERE r = 'crm_admin') AS admin,
	   max(privs) FILTER (WHERE r = 'crm_marketing') AS marketing,
	   max(privs) FILTER (WHERE r = 'crm_sales') AS sales,
	   max(privs) FILTER (WHERE r = 'crm_analyst') AS analyst
  FROM grants GROUP BY kind, name ORDER BY kind, name COLLATE "C";
