-- crm install script, assembled by the Makefile from the src/*.sql files its
-- SQL_PARTS lists, in that order.
\echo Use "CREATE EXTENSION crm" to load this file. \quit

-- Like pg_cron, the extension lives in pg_catalog and creates its own schema,
-- so the schema is a member of the extension and DROP EXTENSION removes it.
CREATE SCHEMA crm;
COMMENT ON SCHEMA crm IS 'customer-relationship management: tables, types and functions of the crm extension';
