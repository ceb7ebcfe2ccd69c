#!/usr/bin/env bash
# TAP: ALTER EXTENSION crm UPDATE from every released version.  For each
# frozen install script src/releases/crm--V.sql: a database created at V with
# demo data runs on the new shared library (V's SQL declarations, the new
# .so), is updated, keeps every row, scores and promotes as before, and then
# has exactly the schema of a fresh CREATE EXTENSION crm: pg_dump
# --schema-only of both (with the extension's members released so that the
# dump shows them: definitions, volatility, strictness, parallel labels, SET
# clauses, comments, grants, policies) and the pg_extension_config_dump
# registrations must be equal.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
current=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$root/crm.control")
releases=$(ls "$root"/src/releases/crm--*.sql 2>/dev/null | sed 's/.*crm--\(.*\)\.sql$/\1/' | sort -V)
out=$(mktemp -d)
q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; return "$1"; }

nrel=$(echo "$releases" | grep -c .)
echo "1..$((2 + 7 * nrel))"

[ "$nrel" -gt 0 ]; ok $? "at least one released version to update from (src/releases/)"
for v in $releases; do
	[ "$v" != "$current" ] || { echo "# $v is both released and under development"; false; }
done
ok $? "the version under development ($current) is not a released one"

# The columns of each crm table, "table=col,col;..." (quoted names): the
# checksum after the update reads only the columns there were before it, so
# a column the update adds does not count as a changed row.
columns_of() {
	q -d "$1" -c "SELECT string_agg(t || '=' || cols, ';' ORDER BY t) FROM (
		SELECT c.oid::regclass::text AS t, string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum) AS cols
		  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'r' GROUP BY 1) x"
}

# one row per crm table of the list $2 (columns_of): count and hash of its
# rows over those columns, in a stable order
checksum() {
	q -d "$1" -v cols="$2" <<'SQL'
SELECT set_config('crm_upgrade.cols', :'cols', false) IS NULL AS unset \gset
DO $$
DECLARE t text; r text; acc text := '';
BEGIN
	FOR t IN SELECT x FROM unnest(string_to_array(current_setting('crm_upgrade.cols'), ';')) x ORDER BY 1
	LOOP
		EXECUTE format('SELECT count(*) || '':'' || coalesce(md5(string_agg(x::text, '','' ORDER BY x::text)), '''') FROM (SELECT %s FROM %s) x',
					   split_part(t, '=', 2), split_part(t, '=', 1))
		   INTO r;
		acc := acc || split_part(t, '=', 1) || '=' || r || E'\n';
	END LOOP;
	RAISE NOTICE '%', acc;
END $$;
SQL
}

# the extension's members as a pg_dump shows them once released from it,
# and its config-dump registrations
schema_of() {
	local db=$1
	q -d "$db" -c "SELECT c.oid::regclass || ' ' || coalesce(x.cond, '')
		  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(rel, cond), pg_class c
		 WHERE e.extname = 'crm' AND c.oid = x.rel ORDER BY 1" > "$out/$db.config"
	q -d "$db" <<'SQL' >/dev/null
DO $$
DECLARE o record;
BEGIN
	FOR o IN SELECT a.type, a.object_names AS names, a.object_args AS args
			   FROM pg_depend d, pg_extension e, pg_identify_object_as_address(d.classid, d.objid, d.objsubid) a
			  WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
				AND e.extname = 'crm'
			  ORDER BY a.type = 'schema'	-- the schema last
	LOOP
		EXECUTE 'ALTER EXTENSION crm DROP ' || CASE
			WHEN o.type IN ('function', 'aggregate', 'procedure') THEN
				format('%s %s(%s)', o.type, array_to_string(o.names, '.'), array_to_string(o.args, ', '))
			WHEN o.type = 'operator' THEN
				format('OPERATOR %s.%s (%s)', quote_ident(o.names[1]), o.names[2], array_to_string(o.args, ', '))
			WHEN o.type IN ('operator class', 'operator family') THEN
				format('%s %I.%I USING %I', o.type, o.names[2], o.names[3], o.names[1])
			WHEN o.type = 'cast' THEN
				format('CAST (%s AS %s)', o.names[1], o.args[1])
			ELSE
				format('%s %s', o.type, array_to_string(o.names, '.'))
		END;
	END LOOP;
END $$;
SQL
	pg_dump --schema-only --no-owner "$db" | grep -vE '^(-- (Dumped|Started|Completed)|\\(un)?restrict )' > "$out/$db.schema"
}

for v in $releases; do
	old=crm_up_old$$ new=crm_up_new$$
	dropdb --if-exists "$old" 2>/dev/null; dropdb --if-exists "$new" 2>/dev/null
	createdb "$old" && createdb "$new"
	# version V's declarations on the new library: the demo load runs its
	# triggers, scoring, promotions, a segment, a merge and consents
	q -d "$old" -c "CREATE EXTENSION crm VERSION '$v'" -f "$here/../demo/rules.sql" \
		-v seed=5 -v contacts=1000 -v activities=10000 -f "$here/../demo/generate.sql" \
		-f "$here/upgrade_data.sql" -c "SELECT count(*) FROM crm.setup_roles()" > "$out/load.txt" 2>&1
	ok $? "$v: demo data loads on version $v's SQL with the new shared library (and crm.setup_roles runs)"
	[ $? = 0 ] || sed 's/^/# /' "$out/load.txt" | tail -20

	cols=$(columns_of "$old")
	before=$(checksum "$old" "$cols" 2>&1)
	q -d "$old" -c "ALTER EXTENSION crm UPDATE" -c "ALTER EXTENSION crm UPDATE" > "$out/update.txt" 2>&1
	ok $? "$v: ALTER EXTENSION crm UPDATE (twice: the second is a no-op) to $current"
	[ $? = 0 ] || sed 's/^/# /' "$out/update.txt"
	got=$(q -d "$old" -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")

	after=$(checksum "$old" "$cols" 2>&1)
	[ -n "$before" ] && [ "$before" = "$after" ] && [ "$got" = "$current" ]
	ok $? "$v: every row of every crm table is kept by the update (now at $got)"
	[ "$before" = "$after" ] || diff <(echo "$before") <(echo "$after") | sed 's/^/# /'

	# the triggers after the update: a new activity scores, a promotion is logged
	res=$(q -d "$old" <<'SQL' 2>&1
INSERT INTO crm.contact (contact_id, email, lead_source, country, job_title)
VALUES (990001, 'after-update@x.example', 'form', 'DE', 'CEO');
INSERT INTO crm.activity (contact_id, kind, properties)
SELECT 990001, 'form_submit', '{"form": "demo_request"}' FROM generate_series(1, 3);
SELECT (SELECT count(*) FROM crm.score_ledger WHERE contact_id = 990001) > 0,
	   (SELECT stage FROM crm.contact WHERE contact_id = 990001),
	   (SELECT count(*) FROM crm.stage_history WHERE contact_id = 990001 AND to_stage = 'mql');
SQL
)
	[ "$res" = "t|mql|1" ]
	ok $? "$v: after the update a new activity scores and its promotion to mql is logged (got $res)"

	# no script, PostgreSQL's own error: an unknown version, a downgrade
	e1=$(q -d "$old" -c "ALTER EXTENSION crm UPDATE TO '9.9.9'" 2>&1)
	e2=$(q -d "$old" -c "ALTER EXTENSION crm UPDATE TO '$v'" 2>&1)
	echo "$e1" | grep -q 'has no update path from version "'"$current"'" to version "9.9.9"' &&
		echo "$e2" | grep -q 'has no update path from version "'"$current"'" to version "'"$v"'"'
	ok $? "$v: UPDATE TO an unknown version and the downgrade to $v fail with PostgreSQL's error"
	[ $? = 0 ] || echo "# $e1 / $e2"

	# both set up: the update must bring the policies of $v's crm.setup_roles up to date
	q -d "$new" -c "CREATE EXTENSION crm" -c "SELECT count(*) FROM crm.setup_roles()" >/dev/null
	schema_of "$old" 2>"$out/schema.err"; schema_of "$new" 2>>"$out/schema.err"
	[ -s "$out/$new.schema" ] && [ ! -s "$out/schema.err" ] && diff -q "$out/$old.schema" "$out/$new.schema" >/dev/null
	ok $? "$v: the updated schema equals a fresh install of $current (pg_dump --schema-only of every member)"
	[ -s "$out/schema.err" ] && sed 's/^/# /' "$out/schema.err" | head -20
	diff "$out/$old.schema" "$out/$new.schema" | head -60 | sed 's/^/# /'

	diff -q "$out/$old.config" "$out/$new.config" >/dev/null && [ -s "$out/$new.config" ]
	ok $? "$v: the same tables and conditions are registered with pg_extension_config_dump"
	diff "$out/$old.config" "$out/$new.config" | sed 's/^/# /'

	dropdb "$old"; dropdb "$new"
done
rm -rf "$out"
