#!/usr/bin/env bash
# TAP: a database using crm, installed and dumped by its owner (a role that
# is not a superuser), restores with the commands a DBA runs by default, in
# custom format (pg_dump -Fc, pg_restore -d) and in plain format (pg_dump,
# psql -f), as that owner and without an error.  Every row of every crm table
# and every crm sequence is identical afterwards, the derived rows included
# (stage history, score ledger and events, segment members and log, campaign
# targets, merge and erasure logs): no trigger derives them a second time
# while the data loads, and every trigger derives as usual once it is loaded.
# DROP EXTENSION crm then removes every object it made.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
owner=crm_dump_owner$$ pass=dump$$
src=crm_dump_src$$ dstc=crm_dump_c$$ dstp=crm_dump_p$$ dstq=crm_dump_q$$ dstr=crm_dump_r$$
work=$(mktemp -d)
# as the cluster's superuser, and as the owner
su() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
q() { PGUSER=$owner PGPASSWORD=$pass psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
ok() { if [ "$1" = 0 ]; then echo "ok $2"; else echo "not ok $2"; fi; }

echo "1..13"
su -d postgres -c "CREATE ROLE $owner LOGIN CREATEROLE PASSWORD '$pass'"
for db in "$src" "$dstc" "$dstp" "$dstq" "$dstr"; do createdb -O "$owner" "$db"; done

# The source: demo data, and every kind of derived row, including states a
# second derivation would change (churned customers who have orders, a
# forced move back below an open deal, a policy that accepts fewer kinds),
# and built-in lookup rows edited and deleted.
q -d "$src" -c 'CREATE EXTENSION crm' -f "$here/../demo/rules.sql" \
	-c "UPDATE crm.lifecycle_policy SET sql_acceptance_kinds = '{sales_accepted}'" \
	-v seed=7 -v contacts=2000 -v activities=20000 -f "$here/../demo/generate.sql" >"$work/src.log" 2>&1 &&
q -d "$src" >>"$work/src.log" 2>&1 <<'SQL'
INSERT INTO crm.channel (channel) VALUES ('whatsapp');
DELETE FROM crm.channel WHERE channel = 'post';
UPDATE crm.lead_source SET initial_stage = 'subscriber' WHERE source = 'webinar';
INSERT INTO crm.lead_source (source, initial_stage) VALUES ('podcast', 'subscriber');
INSERT INTO crm.contact (email, lead_source) VALUES ('listener@podcast.example', 'podcast');
-- windowed rule matches (score_event) and a fresh engagement score
INSERT INTO crm.activity (contact_id, kind, properties)
SELECT contact_id, 'email_click', '{"campaign": "spring_sale"}' FROM crm.contact ORDER BY contact_id LIMIT 50;
SELECT crm.detect_churn(now() + interval '200 days');
SELECT crm.set_stage(d.contact_id, 'lead', 'requalified by hand', force => true)
  FROM (SELECT DISTINCT d.contact_id FROM crm.deal d JOIN crm.contact c USING (contact_id)
		 WHERE d.status = 'open' AND c.stage = 'opportunity' ORDER BY 1 LIMIT 3) d;
SELECT crm.create_segment('germany', $$country = 'DE'$$);
SELECT crm.refresh_segment('germany');
UPDATE crm.contact SET country = 'AT' WHERE contact_id IN (
	SELECT m.contact_id FROM crm.segment_member m ORDER BY 1 LIMIT 5);
SELECT crm.refresh_segment('germany');
SELECT crm.create_static_segment('vip');
SELECT crm.add_to_segment('vip', ARRAY[1, 2, 3]::bigint[]);
SELECT crm.create_campaign('spring', 'germany');
SELECT count(*) FROM crm.campaign_targets((SELECT campaign_id FROM crm.campaign WHERE name = 'spring'));
SELECT * FROM crm.merge_contacts(10, 11);
SELECT crm.forget_contact(12, 'erasure request (test)', keep_email_hash => true);
SELECT * FROM crm.setup_roles();
SQL
[ $? = 0 ] || { echo "# source setup failed:"; sed 's/^/# /' "$work/src.log"; }

# Does the source hold rows of every kind a derivation writes?
kinds=$(su -d "$src" -c "
	SELECT (SELECT count(*) > 0 FROM crm.stage_history WHERE from_stage IS NOT NULL)
	   AND (SELECT count(*) > 0 FROM crm.score_ledger) AND (SELECT count(*) > 0 FROM crm.score_event)
	   AND (SELECT count(*) > 0 FROM crm.segment_member) AND (SELECT count(*) > 0 FROM crm.segment_log)
	   AND (SELECT count(*) > 0 FROM crm.campaign_target) AND (SELECT count(*) > 0 FROM crm.merge_log)
	   AND (SELECT count(*) > 0 FROM crm.erasure_log) AND (SELECT count(*) > 0 FROM crm.privacy_salt)
	   AND EXISTS (SELECT 1 FROM crm.contact c JOIN crm.\"order\" o USING (contact_id) WHERE c.stage = 'churned')
	   AND EXISTS (SELECT 1 FROM crm.contact c JOIN crm.deal d USING (contact_id)
				   WHERE c.stage = 'lead' AND d.status = 'open')
	   AND EXISTS (SELECT 1 FROM crm.contact c JOIN crm.activity a USING (contact_id)
				   WHERE c.stage < 'sql' AND a.kind = 'meeting_booked')
	   AND (SELECT rolsuper FROM pg_roles WHERE rolname = '$owner') IS FALSE" 2>&1)
ok "$([ "$kinds" = t ]; echo $?)" "1 - the owner, not a superuser, installs crm; the source holds every kind of derived row"

# Every row of every table crm dumps (as the extension lists them, so a new
# table is compared without touching this test), and every crm sequence.
checksum() {
	{ su -d "$1" <<'SQL'
SELECT string_agg(format('SELECT %L || '' '' || count(*) || '' '' || md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM %s x',
						 c.oid::regclass, E'\n', '', c.oid::regclass), ' UNION ALL ' ORDER BY c.oid::regclass::text)
	   || ' UNION ALL SELECT string_agg(s.schemaname || ''.'' || s.sequencename || '' '' || coalesce(s.last_value::text, ''unset''), '' '' ORDER BY s.sequencename) FROM pg_sequences s WHERE s.schemaname = ''crm'''
  FROM pg_extension e CROSS JOIN unnest(e.extconfig) r(oid) JOIN pg_class c ON c.oid = r.oid
 WHERE e.extname = 'crm' AND c.relkind = 'r'
\gexec
SQL
} 2>&1 | sort
}
# compare NAME DB: the checksums of the source and of DB, listing what differs
compare() {
	local after
	after=$(checksum "$2")
	if [ -n "$before" ] && [ "$before" = "$after" ]; then
		echo "ok $1 - every row of every crm table and every crm sequence is identical"
	else
		echo "not ok $1 - every row of every crm table and every crm sequence is identical"
		diff <(echo "$before") <(echo "$after") | sed 's/^/# /'
	fi
}
before=$(checksum "$src")

# custom format, restored by pg_restore as the owner
PGUSER=$owner PGPASSWORD=$pass pg_dump -Fc -f "$work/crm.dump" "$src" 2>"$work/c.err" &&
	PGUSER=$owner PGPASSWORD=$pass pg_restore -d "$dstc" "$work/crm.dump" 2>>"$work/c.err"
rc=$?
[ -s "$work/c.err" ] && { rc=1; sed 's/^/# /' "$work/c.err"; }
ok "$rc" "2 - pg_dump -Fc and pg_restore -d, as the owner, succeed without an error"
compare 3 "$dstc"

# plain format, loaded by psql as the owner
PGUSER=$owner PGPASSWORD=$pass pg_dump -f "$work/crm.sql" "$src" 2>"$work/p.err" &&
	q -d "$dstp" -f "$work/crm.sql" >/dev/null 2>>"$work/p.err"
rc=$?
[ -s "$work/p.err" ] && { rc=1; sed 's/^/# /' "$work/p.err"; }
ok "$rc" "4 - pg_dump and psql -f, as the owner, succeed without an error"
compare 5 "$dstp"

# Loaded again, and the same session then inserts a contact: once the load
# is over, its history is written again.
q -d "$dstq" -f "$work/crm.sql" -c "SELECT 'loading ' || current_setting('crm.loading_dump')" \
	-c "INSERT INTO crm.contact (email) VALUES ('after-load@x.example')" \
	-c "SELECT 'history ' || count(*) FROM crm.stage_history h JOIN crm.contact c USING (contact_id)
		 WHERE c.email = 'after-load@x.example'" >"$work/q.out" 2>&1
h=$(grep -E '^(loading|history) ' "$work/q.out" | tr '\n' ' ')
ok "$([ "$h" = "loading off history 1 " ]; echo $?)" "6 - the session that loaded the plain dump derives again after the load (${h:-$(tail -3 "$work/q.out")})"

# A new session of the restored database derives as usual: a new contact's
# history, an activity's points, an order's promotion of a churned customer.
derived=$(q -d "$dstc" <<'SQL'
BEGIN;
INSERT INTO crm.contact (email) VALUES ('new@x.example');
SELECT count(*) = 1 FROM crm.stage_history h JOIN crm.contact c USING (contact_id)
 WHERE c.email = 'new@x.example';
CREATE TEMP TABLE score0 AS SELECT crm.score(1) AS s;
INSERT INTO crm.activity (contact_id, kind, properties) VALUES (1, 'page_view', '{"url": "/pricing"}');
SELECT crm.score(1) > s FROM score0;
CREATE TEMP TABLE churned AS
SELECT c.contact_id FROM crm.contact c WHERE c.stage = 'churned' ORDER BY 1 LIMIT 1;
INSERT INTO crm."order" (contact_id, total) SELECT contact_id, 10 FROM churned;
SELECT c.stage = 'customer' FROM crm.contact c JOIN churned USING (contact_id);
ROLLBACK;
SQL
)
ok "$([ "$(echo $derived)" = "t t t" ]; echo $?)" "7 - after the restore the triggers derive as usual (got: $(echo $derived))"

# pg_dump writes crm's tables in name order (moved only for foreign keys):
# the markers must come first and last for the load to be recognised.
toc=$(pg_restore -l "$work/crm.dump" | grep -E '^[0-9]+; [0-9]+ [0-9]+ TABLE DATA crm ' | awk '{print $7}')
ok "$([ "$(echo "$toc" | head -1)" = _dump_begin ] && [ "$(echo "$toc" | tail -1)" = zz_dump_end ]; echo $?)" \
	"8 - crm's data in the dump starts with crm._dump_begin and ends with crm.zz_dump_end"

# sequences continue after restore: a new contact does not collide
if q -d "$dstc" -c "INSERT INTO crm.contact (email) VALUES ('after-restore@x.example')" >/dev/null; then
	echo "ok 9 - identity sequences continue after restore"
else
	echo "not ok 9 - identity sequences continue after restore"
fi

# Only a marker turns crm.loading_dump on: not SET, before or after crm's
# library is loaded (a new contact still gets its history).
byhand=$(q -d "$dstc" 2>&1 <<'SQL'
\set VERBOSITY sqlstate
SET crm.loading_dump = on;
BEGIN;
INSERT INTO crm.contact (email) VALUES ('by-hand@x.example');
SELECT 'history ' || count(*) FROM crm.stage_history h JOIN crm.contact c USING (contact_id)
 WHERE c.email = 'by-hand@x.example';
ROLLBACK;
\set ON_ERROR_STOP 0
SET crm.loading_dump = on;
SQL
)
ok "$(echo "$byhand" | tr '\n' ' ' | grep -qE '^WARNING: +55P02 history 1 ERROR: +55P02 ?$'; echo $?)" \
	"10 - SET crm.loading_dump = on is refused (got: $(echo $byhand))"

# The begin marker alone, loaded into a database in use, fails (its built-in
# rows are referenced) and leaves the setting off; into an empty crm it turns
# the setting on until DISCARD ALL (what a pooler runs between clients).
pg_restore -l "$work/crm.dump" | grep -E 'TABLE DATA crm _dump_begin' >"$work/begin.list"
pg_restore -L "$work/begin.list" -f "$work/begin.sql" "$work/crm.dump"
inuse=$(q -d "$dstc" -v ON_ERROR_STOP=0 -f "$work/begin.sql" -c "SHOW crm.loading_dump" 2>&1 | tail -1)
ok "$([ "$inuse" = off ]; echo $?)" "11 - a begin marker loaded into a database in use fails and leaves crm.loading_dump off (got: $inuse)"
q -d "$dstr" -c "CREATE EXTENSION crm" >/dev/null
fresh=$(q -d "$dstr" -f "$work/begin.sql" -c "SHOW crm.loading_dump" -c "DISCARD ALL" -c "SHOW crm.loading_dump" 2>&1 | grep -E '^(on|off)$' | tr '\n' ' ')
ok "$([ "$fresh" = "on off " ]; echo $?)" "12 - the begin marker turns crm.loading_dump on, DISCARD ALL off (got: $fresh)"

left=$(q -d "$dstc" -c "DROP EXTENSION crm CASCADE" -c "
	SELECT count(*) FROM pg_namespace WHERE nspname = 'crm'" 2>/dev/null | tail -1)
[ "$left" = "0" ] && echo "ok 13 - DROP EXTENSION crm, by its owner, removes schema crm" ||
	echo "not ok 13 - DROP EXTENSION crm, by its owner, removes schema crm (left: $left)"
for db in "$src" "$dstc" "$dstp" "$dstq" "$dstr"; do dropdb "$db"; done
su -d postgres -c "DROP ROLE $owner"
rm -rf "$work"
