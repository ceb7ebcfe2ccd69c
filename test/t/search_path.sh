#!/usr/bin/env bash
# TAP: no SQL that crm runs on a caller's behalf resolves a name through the
# caller's search_path (the CVE-2018-1058 pattern).  Look-alikes of every
# function, aggregate, operator and type that crm's SQL names, and of every
# crm relation, are planted in public; a superuser whose path puts public
# before pg_catalog then runs every trigger path and SQL-callable function
# (search_path_workload.sql).  Each look-alike that runs counts itself.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src
db=crm_path$$
out=$(mktemp -d)
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

echo "1..5"
createdb "$db"
q -c 'CREATE EXTENSION crm' -f "$here/../demo/rules.sql" \
	-v seed=11 -v contacts=300 -v activities=3000 -f "$here/../demo/generate.sql" >/dev/null

# The names crm's SQL could resolve through a path: every identifier and
# operator token in the C units and SQL files (more than are used; a spare
# look-alike costs nothing).  The plants are kept in step with the code.
idents=$(cat "$src"/*.c "$src"/*.sql | grep -oE '[A-Za-z_][A-Za-z0-9_]*' | tr 'A-Z' 'a-z' | sort -u | tr '\n' ' ')
opers=$(cat "$src"/*.c "$src"/*.sql | grep -oE '[-+*/<>=~!@#%^&|`?]+' | sort -u | tr '\n' ' ')

q -v idents="$idents" -v opers="$opers" > "$out/plant.txt" 2>&1 <<'SQL'
SET search_path = pg_catalog;
CREATE SEQUENCE public.plant_hits;
CREATE FUNCTION public.plant_hit(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE ctx text;
BEGIN
	PERFORM nextval('public.plant_hits');
	GET DIAGNOSTICS ctx = PG_CONTEXT;
	RAISE WARNING 'planted % ran; context: %', what, ctx;
	RETURN true;
END $$;
CREATE TEMP TABLE plant_names AS SELECT unnest(string_to_array(btrim(:'idents'), ' ')) AS name;
CREATE TEMP TABLE plant_opers AS SELECT unnest(string_to_array(btrim(:'opers'), ' ')) AS name;
CREATE TEMP TABLE plant_made (kind text, what text, ok boolean, why text);

DO $$
DECLARE
	p record;
	body text;
	ret text;
BEGIN
	-- plain functions: same signature, in public, so public-first wins
	FOR p IN SELECT f.oid, f.proname, f.prokind, f.proretset, f.proallargtypes IS NOT NULL AS has_out,
					pg_get_function_arguments(f.oid) AS args, pg_get_function_identity_arguments(f.oid) AS ids,
					pg_get_function_result(f.oid) AS res, f.prorettype::regtype::text AS rettype,
					f.proargtypes::regtype[]::text[] AS argtypes
			   FROM pg_proc f
			  WHERE f.pronamespace = 'pg_catalog'::regnamespace
				AND f.proname IN (SELECT name FROM plant_names)
	LOOP
		BEGIN
			IF p.prokind = 'f' THEN
				body := format('BEGIN PERFORM public.plant_hit(%L); RETURN%s; END',
							   p.proname || '(' || p.ids || ')',
							   CASE WHEN p.proretset OR p.has_out THEN '' ELSE ' NULL' END);
				EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS %L',
							   p.proname, p.args, p.res, body);
			ELSIF p.prokind IN ('a', 'w')
				  AND NOT EXISTS (SELECT 1 FROM pg_aggregate a WHERE a.aggfnoid = p.oid AND a.aggkind <> 'n') THEN
				-- aggregates and window functions: an aggregate of the same signature
				ret := p.rettype;
				EXECUTE format('CREATE FUNCTION public.plant_sfunc_%s(%s) RETURNS %s LANGUAGE plpgsql AS %L',
							   p.oid, array_to_string(ret || p.argtypes, ', '), ret,
							   format('BEGIN PERFORM public.plant_hit(%L); RETURN NULL; END',
									  p.proname || '(' || p.ids || ')'));
				EXECUTE format('CREATE AGGREGATE public.%I(%s) (SFUNC = public.plant_sfunc_%s, STYPE = %s)',
							   p.proname, CASE WHEN p.ids = '' THEN '*' ELSE p.ids END, p.oid, ret);
			ELSE
				CONTINUE;
			END IF;
			INSERT INTO plant_made VALUES ('function', p.oid::regprocedure::text, true, NULL);
		EXCEPTION WHEN others THEN
			INSERT INTO plant_made VALUES ('function', p.oid::regprocedure::text, false, SQLERRM);
		END;
	END LOOP;

	-- operators of the same name and operand types
	FOR p IN SELECT o.oid, o.oprname, o.oprleft, o.oprright, o.oprresult::regtype::text AS res
			   FROM pg_operator o
			  WHERE o.oprnamespace = 'pg_catalog'::regnamespace AND o.oprname IN (SELECT name FROM plant_opers)
	LOOP
		BEGIN
			EXECUTE format('CREATE FUNCTION public.plant_op_%s(%s) RETURNS %s LANGUAGE plpgsql AS %L',
						   p.oid, concat_ws(', ', nullif(p.oprleft, 0)::regtype, p.oprright::regtype), p.res,
						   format('BEGIN PERFORM public.plant_hit(%L); RETURN NULL; END',
								  'operator ' || p.oid::regoperator));
			EXECUTE format('CREATE OPERATOR public.%s (%s RIGHTARG = %s, FUNCTION = public.plant_op_%s)',
						   p.oprname,
						   CASE WHEN p.oprleft <> 0 THEN format('LEFTARG = %s,', p.oprleft::regtype) ELSE '' END,
						   p.oprright::regtype, p.oid);
			INSERT INTO plant_made VALUES ('operator', p.oid::regoperator::text, true, NULL);
		EXCEPTION WHEN others THEN
			INSERT INTO plant_made VALUES ('operator', p.oid::regoperator::text, false, SQLERRM);
		END;
	END LOOP;

	-- types: a domain whose check counts every value cast to it
	FOR p IN SELECT t.typname FROM pg_type t
			  WHERE t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype = 'b' AND t.typelem = 0
				AND t.typname IN (SELECT name FROM plant_names)
	LOOP
		BEGIN
			EXECUTE format('CREATE DOMAIN public.%I AS pg_catalog.%I CHECK (public.plant_hit(%L))',
						   p.typname, p.typname, 'type ' || p.typname);
			INSERT INTO plant_made VALUES ('type', p.typname, true, NULL);
		EXCEPTION WHEN others THEN
			INSERT INTO plant_made VALUES ('type', p.typname, false, SQLERRM);
		END;
	END LOOP;

	-- relations: crm's tables and views under their bare names
	FOR p IN SELECT c.relname FROM pg_class c
			  WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
	LOOP
		EXECUTE format('CREATE VIEW public.%I AS SELECT * FROM crm.%I WHERE public.plant_hit(%L)',
					   p.relname, p.relname, 'relation ' || p.relname);
		INSERT INTO plant_made VALUES ('relation', p.relname, true, NULL);
	END LOOP;
END $$;
SELECT kind || ' ' || count(*) FILTER (WHERE ok) || ' planted, ' || count(*) FILTER (WHERE NOT ok) || ' not plantable'
  FROM plant_made GROUP BY kind ORDER BY kind;
SQL
planted=$(grep -cE '^(function|operator|type|relation) ' "$out/plant.txt")
# the names the issue reproduced must be among the plants
must=$(q -c "SELECT count(DISTINCT proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
				AND proname IN ('unnest', 'array_agg', 'to_jsonb', 'now', 'count')" 2>&1)
if [ "$planted" -eq 4 ] && [ "${must:-0}" -eq 5 ]; then
	echo "ok 1 - look-alikes planted in public"
else
	echo "not ok 1 - look-alikes planted in public"; sed 's/^/# /' "$out/plant.txt"
fi
sed 's/^/# /' "$out/plant.txt" | grep -E '^# (function|operator|type|relation) '

# every crm SQL or PL/pgSQL function pins its path (or has a body parsed at
# CREATE time); C functions pin it around their SPI calls (spi_connect_pinned)
unpinned=$(q -c "SELECT string_agg(p.oid::regprocedure::text, ', ')
	FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	WHERE p.pronamespace = 'crm'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
	  AND p.prosqlbody IS NULL
	  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=pg\_catalog%')")
spi=$(grep -lE 'SPI_(connect|finish)\(' "$src"/*.c | grep -v '/crm\.c$' | tr '\n' ' ')
if [ -z "$unpinned" ] && [ -z "$spi" ]; then
	echo "ok 2 - every crm SQL function pins search_path; C units reach SPI only through spi_connect_pinned"
else
	echo "not ok 2 - every crm SQL function pins search_path; C units reach SPI only through spi_connect_pinned"
	echo "# unpinned: $unpinned"; echo "# bare SPI_connect/SPI_finish in: $spi"
fi

before=$(q -c "SELECT last_value FROM public.plant_hits")
if q -f "$here/search_path_workload.sql" > "$out/workload.txt" 2> "$out/workload.err"; then
	echo "ok 3 - the workload runs under a hostile search_path"
else
	echo "not ok 3 - the workload runs under a hostile search_path"; tail -20 "$out/workload.err" | sed 's/^/# /'
fi
after=$(q -c "SELECT last_value FROM public.plant_hits")
if [ "$before" = "$after" ] && ! grep -q 'planted .* ran' "$out/workload.err"; then
	echo "ok 4 - no look-alike ran"
else
	echo "not ok 4 - no look-alike ran ($before -> $after)"
	grep -oE 'planted .* ran' "$out/workload.err" | sort | uniq -c | sort -rn | head -30 | sed 's/^/# /'
fi

# every crm function that is not type, aggregate or operator support (and
# not an inlined SQL function, which has no calls of its own) ran; but
# crm.schedule_maintenance, which needs pg_cron (test/t/pg_cron.sh runs it;
# its path is pinned like every PL/pgSQL function's, test 2), and
# crm.distribute, which needs Citus: the workload calls it, but a call that
# raises (0A000 here) is not counted (test/t/citus.sh runs it)
uncovered=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
	uncovered=$(q -c "SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text)
		FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		WHERE p.pronamespace = 'crm'::regnamespace AND p.prokind = 'f' AND l.lanname IN ('c', 'plpgsql')
		  AND p.oid NOT IN ('crm.schedule_maintenance(text, text, text)'::regprocedure, 'crm.distribute(boolean)'::regprocedure)
		  AND NOT EXISTS (SELECT 1 FROM pg_type t
						   WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze))
		  AND NOT EXISTS (SELECT 1 FROM pg_aggregate a
						   WHERE p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn,
										   a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn))
		  AND NOT EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprcode = p.oid)
		  AND NOT EXISTS (SELECT 1 FROM pg_amproc a WHERE a.amproc = p.oid)
		  AND NOT EXISTS (SELECT 1 FROM pg_stat_user_functions s WHERE s.funcid = p.oid AND s.calls > 0)")
	[ -z "$uncovered" ] && break
	sleep 0.5	# the workload's backend flushes its function counts as it exits
done
if [ -z "$uncovered" ]; then
	echo "ok 5 - the workload called every crm function"
else
	echo "not ok 5 - the workload called every crm function; not called: $uncovered"
fi

dropdb "$db"
rm -rf "$out"
