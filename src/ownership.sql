
-- ---------------------------------------------------------------------------
-- Who owns what (last in the install script).  crm is a trusted extension:
-- a role with CREATE on the database (its owner, by default) may install it,
-- and the script then runs as the bootstrap superuser.  That superuser keeps
-- the schemas (crm, crm_bi), the C functions, types and operators, so the
-- installer cannot redefine code that runs inside the server nor add objects
-- to the schemas; the data (tables, their sequences, views) goes to the
-- role that ran CREATE EXTENSION, which can then load, grant, secure, dump
-- and restore it like its own tables.  The C units check the types of the
-- columns they read (require_column_type), since that role may alter its
-- tables.  When a superuser installs crm everything stays its own and
-- nothing here runs.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
	installer regrole := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'crm');
	r record;
BEGIN
	IF installer = (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = current_user) THEN
		RETURN;
	END IF;
	-- a sequence owned by a column follows its table
	FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_catalog.pg_class c
			  WHERE c.relnamespace IN ('crm'::regnamespace, 'crm_bi'::regnamespace)
				AND (c.relkind IN ('r', 'p', 'v', 'm')
					 OR (c.relkind = 'S' AND NOT EXISTS (
							SELECT 1 FROM pg_catalog.pg_depend d
							 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
							   AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i'))))
			  ORDER BY c.oid
	LOOP
		EXECUTE format('ALTER %s %s OWNER TO %s',
					   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
									  WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.rel, installer);
	END LOOP;
	-- to hand on to the crm roles (crm.setup_roles), and to run the
	-- functions revoked from PUBLIC (setup_roles, merges, erasure)
	EXECUTE format('GRANT USAGE ON SCHEMA crm TO %s WITH GRANT OPTION', installer);
	EXECUTE format('GRANT USAGE ON SCHEMA crm_bi TO %s WITH GRANT OPTION', installer);
	EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO %s WITH GRANT OPTION', installer);
END $$;
