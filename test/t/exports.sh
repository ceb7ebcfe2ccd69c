#!/usr/bin/env bash
# TAP: the installed crm.so exports PostgreSQL's module hooks and the
# SQL-callable entry points only (src/exports.txt), and the crm_ prefix
# marks exactly those: every exported crm_ function has its
# PG_FUNCTION_INFO_V1 record, and every C function the extension's SQL
# declares is exported.
set -uo pipefail
so="$(pg_config --pkglibdir)/crm.so"
db=crm_exports$$
echo "1..3"
syms=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
others=$(grep -vE '^(crm_|pg_finfo_crm_|_PG_init$|Pg_magic_func$)' <<<"$syms")
if [ -z "$others" ]; then
	echo "ok 1 - crm.so exports only _PG_init, Pg_magic_func and crm_ entry points"
else
	echo "not ok 1 - crm.so exports other symbols:"; sed 's/^/# /' <<<"$others"
fi
funcs=$(grep -E '^crm_' <<<"$syms")
infos=$(grep -E '^pg_finfo_crm_' <<<"$syms" | sed 's/^pg_finfo_//')
plain=$(comm -23 <(echo "$funcs") <(echo "$infos"))
if [ -z "$plain" ]; then
	echo "ok 2 - every exported crm_ symbol is an SQL-callable function (has PG_FUNCTION_INFO_V1)"
else
	echo "not ok 2 - crm_ symbols that are not SQL-callable (rename them for what they do):"; sed 's/^/# /' <<<"$plain"
fi
createdb "$db"
psql -X -q -d "$db" -c 'CREATE EXTENSION crm'
declared=$(psql -X -At -d "$db" -c "SELECT DISTINCT prosrc FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e' JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crm' WHERE p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') ORDER BY 1")
missing=$(comm -23 <(echo "$declared") <(echo "$infos"))
bad=$(grep -vE '^crm_' <<<"$declared")
if [ -z "$missing$bad" ] && [ -n "$declared" ]; then
	echo "ok 3 - every C function the SQL declares ($(wc -l <<<"$declared")) is an exported crm_ entry point"
else
	echo "not ok 3 - declared but not exported or not crm_-prefixed:"; sed 's/^/# /' <<<"$missing$bad"
fi
dropdb "$db"
