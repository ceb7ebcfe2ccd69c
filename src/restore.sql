
-- ---------------------------------------------------------------------------
-- Dump markers (src/restore.c).  pg_dump writes the data of crm's tables in
-- name order, moving a table only after those its foreign keys point at:
-- the row of crm._dump_begin comes before all of crm's data, that of
-- crm.zz_dump_end after it.  Loading either row (pg_restore, psql -f) turns
-- off, then on again (the setting crm.loading_dump), the triggers that
-- derive rows from the loaded ones, for that session only: the dump already
-- holds what they derived.  The first also deletes the built-in rows of the
-- tables with a "builtin" column, which are dumped in full (filter ''): the
-- load restores them as they were edited, and not the ones a user deleted.
-- ---------------------------------------------------------------------------
CREATE TABLE crm._dump_begin (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id)
);
COMMENT ON TABLE crm._dump_begin IS
	'dump marker: its row, loaded first from a dump of crm, keeps the triggers from deriving the loaded rows again (one row; do not delete it)';
CREATE TABLE crm.zz_dump_end (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id)
);
COMMENT ON TABLE crm.zz_dump_end IS
	'dump marker: its row, loaded last from a dump of crm, lets the triggers derive again (one row; do not delete it)';
INSERT INTO crm._dump_begin DEFAULT VALUES;
INSERT INTO crm.zz_dump_end DEFAULT VALUES;
SELECT pg_catalog.pg_extension_config_dump('crm._dump_begin', '');
SELECT pg_catalog.pg_extension_config_dump('crm.zz_dump_end', '');

CREATE FUNCTION crm.dump_marker() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_dump_marker' LANGUAGE C;
COMMENT ON FUNCTION crm.dump_marker() IS
	'trigger: a dump marker row is being loaded: derivation off (''begin'') or on again (''end'') for this session; the row is not stored';
CREATE TRIGGER dump_marker BEFORE INSERT ON crm._dump_begin
	FOR EACH ROW EXECUTE FUNCTION crm.dump_marker('begin');
CREATE TRIGGER dump_marker BEFORE INSERT ON crm.zz_dump_end
	FOR EACH ROW EXECUTE FUNCTION crm.dump_marker('end');
