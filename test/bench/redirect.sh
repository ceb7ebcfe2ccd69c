#!/usr/bin/env bash
# The merge redirect trigger on a bulk load (src/privacy.c).  Runs inside
# test/bench/run.sh: PG* point at a fresh cluster with crm created.
#   100k contacts; COPY of 100k activities with every crm trigger on
#   crm.activity disabled except the one measured (foreign key on).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${BENCH_REDIRECT_ACTIVITIES:-100000}
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -c "INSERT INTO crm.contact (contact_id, email) SELECT i, 'r' || i || '@redirect.example' FROM generate_series(1, 100000) i"
q -c "COPY (SELECT 1 + (hashint4(g) & 2147483647) % 100000, 'page_view', now() - g * interval '1 minute', '{\"url\": \"/\"}'
	FROM generate_series(1, $N) g) TO '/tmp/crm_bench_redirect.csv' (FORMAT csv)"
chmod a+r /tmp/crm_bench_redirect.csv
# the PL/pgSQL trigger the C one replaced, for the comparison
q <<'SQL'
CREATE FUNCTION public.plpgsql_redirect() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	target bigint;
BEGIN
	IF has_table_privilege('crm.contact', 'UPDATE') THEN
		PERFORM FROM crm.contact c WHERE c.contact_id = NEW.contact_id FOR KEY SHARE;
	ELSE
		PERFORM FROM crm.contact c WHERE c.contact_id = NEW.contact_id;
	END IF;
	IF FOUND THEN
		RETURN NEW;
	END IF;
	target := crm.merged_into(NEW.contact_id);
	IF target IS NOT NULL THEN
		NEW.contact_id := target;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER plpgsql_redirect BEFORE INSERT ON crm.activity
	FOR EACH ROW EXECUTE FUNCTION public.plpgsql_redirect();
SQL
q -c "ALTER TABLE crm.activity DISABLE TRIGGER USER" -c "ANALYZE crm.contact"
load() {	# load with only trigger $1 enabled (none for the floor)
	q -c "TRUNCATE crm.activity"
	[ -n "$1" ] && q -c "ALTER TABLE crm.activity ENABLE TRIGGER $1"
	ms "COPY crm.activity (contact_id, kind, occurred_at, properties) FROM '/tmp/crm_bench_redirect.csv' (FORMAT csv)"
	[ -n "$1" ] && q -c "ALTER TABLE crm.activity DISABLE TRIGGER $1"
	return 0
}
floor=""; c=""; pl=""
for _ in 1 2 3; do	# interleaved, best of 3 each
	t=$(load ""); floor=$(printf '%s\n%s\n' "$floor" "$t" | grep . | sort -n | head -1)
	t=$(load redirect_merged_contact); c=$(printf '%s\n%s\n' "$c" "$t" | grep . | sort -n | head -1)
	t=$(load plpgsql_redirect); pl=$(printf '%s\n%s\n' "$pl" "$t" | grep . | sort -n | head -1)
done
minus() { awk "BEGIN {printf \"%.1f\", $1 - $2}"; }
cat <<MD
COPY of $N activities into \`crm.activity\` with 100,000 contacts; every user trigger on the
table disabled except the one measured; the foreign key check is on in every run. Best of 3,
runs interleaved.

| load | ms | trigger cost (ms above floor) | per row |
|---|---:|---:|---:|
| floor: foreign key only | $floor | 0 | |
| crm.redirect_merged_contact (C) | $c | $(minus "$c" "$floor") | $(awk "BEGIN {printf \"%.1f us\", ($c - $floor) * 1000 / $N}") |
| the same in PL/pgSQL (the version it replaced) | $pl | $(minus "$pl" "$floor") | $(awk "BEGIN {printf \"%.1f us\", ($pl - $floor) * 1000 / $N}") |
MD
