#!/usr/bin/env bash
# Generates the README's reference section from the database: every setting,
# type, table, view, function and aggregate of the crm extension (the
# members pg_depend records with deptype 'e'), with its signature and its
# COMMENT.  Deterministic: sorted in the C collation, no OIDs, no times.
#
#   bash test/doc/reference.sh            rewrite README.md between
#                                         <!-- reference:start --> and
#                                         <!-- reference:end -->
#   bash test/doc/reference.sh --print    print what goes between the markers
#   bash test/doc/reference.sh --missing  list the members without a COMMENT
#
# With PGHOST, PGPORT or PGDATABASE set it uses that server (where crm is
# installed; it creates and drops a scratch database and loads crm's
# library, so it needs a superuser); otherwise it builds and installs crm and
# runs itself in a pg_virtualenv throwaway cluster.
set -euo pipefail
mode=${1:-write}
case $mode in write | --print | --missing) ;; *) echo "usage: $0 [--print|--missing]" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
readme=$here/../../README.md

if [ -z "${PGHOST:-}${PGPORT:-}${PGDATABASE:-}" ]; then
	source "$here/../lib/setup.sh"
	exec pg_virtualenv -t bash "$here/reference.sh" "$@"
fi

db=crm_reference$$
trap 'dropdb --if-exists "$db" 2>/dev/null || true' EXIT
createdb "$db"
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
q -c 'CREATE EXTENSION crm'

# The members, one row each: section, name, signature, comment.  Functions
# that serve a type, an operator, an operator class, an aggregate or a trigger
# are listed apart from the ones called by name.
members=$(cat <<'SQL'
WITH m AS (
	SELECT d.classid, d.objid
	  FROM pg_depend d
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'crm')
), support AS (
	SELECT unnest(ARRAY[typinput, typoutput, typreceive, typsend, typmodin, typmodout, typanalyze])::oid AS f FROM pg_type
	UNION ALL SELECT unnest(ARRAY[aggtransfn, aggfinalfn, aggcombinefn, aggserialfn, aggdeserialfn,
								  aggmtransfn, aggminvtransfn, aggmfinalfn])::oid FROM pg_aggregate
	UNION ALL SELECT oprcode::oid FROM pg_operator
	UNION ALL SELECT amproc::oid FROM pg_amproc
)
SELECT '2 type',
	   format_type(t.oid, NULL),
	   CASE t.typtype
		WHEN 'b' THEN 'base type, ' || CASE WHEN t.typlen > 0 THEN t.typlen || ' bytes' ELSE 'variable length' END
			|| coalesce((SELECT ', ' || string_agg(am.amname, ' and ' ORDER BY am.amname COLLATE "C") || ' operator classes'
						   FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
						  WHERE oc.opcintype = t.oid AND oc.opcdefault), '')
		WHEN 'e' THEN 'enum: ' || (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
									 FROM pg_enum e WHERE e.enumtypid = t.oid)
		WHEN 'd' THEN 'domain over ' || format_type(t.typbasetype, t.typtypmod)
		WHEN 'c' THEN 'composite: ' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
								FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
		ELSE t.typtype::text END,
	   obj_description(t.oid, 'pg_type')
  FROM m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
UNION ALL
SELECT CASE WHEN c.relkind IN ('r', 'p') THEN '3 table' ELSE '4 view' END,
	   c.oid::regclass::text,
	   '(' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
				 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) || ')',
	   obj_description(c.oid, 'pg_class')
  FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
 WHERE c.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT CASE WHEN p.prokind = 'a' THEN '6 aggregate'
			WHEN p.prorettype = 'trigger'::regtype OR p.oid IN (SELECT f FROM support) THEN '7 support'
			ELSE '5 function' END,
	   p.oid::regproc::text,
	   '(' || pg_get_function_arguments(p.oid) || ')'
		   || CASE WHEN p.prokind = 'p' THEN '' ELSE ' → ' || pg_get_function_result(p.oid) END,
	   obj_description(p.oid, 'pg_proc')
  FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT '1 schema', n.nspname, '', obj_description(n.oid, 'pg_namespace')
  FROM m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
SQL
)

if [ "$mode" = --missing ]; then
	q -F ' ' -c "SELECT substr(s, 3), name || signature FROM ($members) x(s, name, signature, comment)
				  WHERE comment IS NULL OR btrim(comment) = ''
				  ORDER BY s, name COLLATE \"C\", signature COLLATE \"C\""
	exit 0
fi

section=$(q -c "LOAD '\$libdir/crm'" -c "
	WITH x(s, name, signature, comment) AS ($members
		UNION ALL
		SELECT '0 setting', name,
			   vartype || ', default ' || coalesce(nullif(boot_val, ''), '''''') || ', context ' || context
			   || coalesce(', ' || nullif(unit, ''), ''),
			   short_desc || coalesce(' ' || extra_desc, '')
		  FROM pg_settings WHERE name LIKE 'crm.%'),
	heading(s, title, intro) AS (VALUES
		('0 setting', 'Settings', NULL), ('2 type', 'Types', NULL), ('3 table', 'Tables', NULL),
		('4 view', 'Views', NULL), ('5 function', 'Functions', NULL), ('6 aggregate', 'Aggregates', NULL),
		('7 support', 'Support and trigger functions',
		 'Called by PostgreSQL for a type, an operator, an aggregate or a trigger, not by name.'))
	SELECT line FROM (
		SELECT h.s, 0 AS k, '' AS name, '' AS signature, '### ' || h.title || E'\n' || coalesce(E'\n' || h.intro || E'\n', '') AS line
		  FROM heading h WHERE EXISTS (SELECT 1 FROM x WHERE x.s = h.s)
		UNION ALL
		SELECT x.s, 1, x.name, x.signature,
			   '- \`' || x.name || CASE WHEN x.s IN ('0 setting', '2 type') THEN '\` (' || x.signature || ')'
										  WHEN x.s IN ('3 table', '4 view') THEN ' ' || x.signature || '\`'
										  ELSE x.signature || '\`' END
			   || ': ' || coalesce(regexp_replace(btrim(x.comment), '\s+', ' ', 'g'), '(no comment)')
		  FROM x WHERE x.s <> '1 schema'
		UNION ALL
		SELECT h.s, 2, '', '', '' FROM heading h WHERE EXISTS (SELECT 1 FROM x WHERE x.s = h.s)
	) l
	ORDER BY s, k, name COLLATE \"C\", signature COLLATE \"C\"")
block() {
	echo '<!-- generated by test/doc/reference.sh from the COMMENTs in the database; do not edit by hand -->'
	echo
	printf '%s\n\n' "$section"
}
if [ "$mode" = --print ]; then
	block
	exit 0
fi

start='<!-- reference:start -->' end='<!-- reference:end -->'
if [ "$(grep -cxF "$start" "$readme")" != 1 ] || [ "$(grep -cxF "$end" "$readme")" != 1 ]; then
	echo "$readme: needs one line '$start' and one line '$end'" >&2
	exit 1
fi
tmp=$(mktemp)
{
	sed -n "1,/^$start\$/p" "$readme"
	block
	sed -n "/^$end\$/,\$p" "$readme"
} > "$tmp"
cat "$tmp" > "$readme"
rm -f "$tmp"
echo "rewrote the reference section of $readme"
