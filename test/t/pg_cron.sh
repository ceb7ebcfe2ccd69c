#!/usr/bin/env bash
# TAP: crm's periodic work runs from pg_cron.  A cluster of its own, with
# pg_cron preloaded and running jobs in background workers (no client
# session, no password), gets crm, a customer past the churn window and a
# segment with a pending change; crm.schedule_maintenance() schedules the
# jobs every minute; within a bounded wait both have run, succeeded and done
# their work.  Without pg_cron the call refuses with 55000.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "1..5"

# in the suite's cluster, where pg_cron is not preloaded or installed
db=crm_nocron$$
createdb "$db"
err=$(psql -X -At -v VERBOSITY=verbose -d "$db" -c "CREATE EXTENSION crm" -c "SELECT crm.schedule_maintenance()" 2>&1)
dropdb "$db"
echo "$err" | grep -q 'ERROR:  55000: pg_cron is not installed'
if [ $? = 0 ]; then echo "ok 1 - without pg_cron, schedule_maintenance refuses with 55000"; else
	echo "not ok 1 - without pg_cron, schedule_maintenance refuses with 55000"; echo "$err" | sed 's/^/# /'; fi

cron_test() {
	set -uo pipefail
	q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
	q -c "CREATE EXTENSION pg_cron" -c "CREATE EXTENSION crm" >/dev/null || return 1
	q <<'SQL' >/dev/null || return 1
INSERT INTO crm.contact (contact_id, email, lead_source, country) VALUES
	(1, 'old-customer@cron.test', 'form', 'DE'), (2, 'mover@cron.test', 'form', 'FR');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (1, now() - interval '3 years', 10);
SELECT crm.create_segment('cron de', $$country = 'DE'$$);
UPDATE crm.contact SET country = 'DE' WHERE contact_id = 2;	-- pending until a refresh
SQL
	jobs=$(q -c "SELECT string_agg(jobname || '@' || schedule, ',' ORDER BY jobname)
				   FROM crm.schedule_maintenance('* * * * *', '* * * * *')")
	again=$(q -c "SELECT count(*) FROM crm.schedule_maintenance('* * * * *', '* * * * *')")
	njobs=$(q -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'crm: %'")
	[ "$jobs" = "crm: detect churn@* * * * *,crm: refresh segments@* * * * *" ] && [ "$again" = 2 ] && [ "$njobs" = 2 ]
	tap 2 $? "schedule_maintenance creates two named jobs, and again updates them (got $jobs; $njobs jobs)"

	# pg_cron runs on minute boundaries: wait for both jobs' first run (at most 130 s)
	local done=""
	for _ in $(seq 1 130); do
		done=$(q -c "SELECT count(DISTINCT j.jobname) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
					  WHERE j.jobname LIKE 'crm: %' AND d.status IN ('succeeded', 'failed')")
		[ "$done" = 2 ] && break
		sleep 1
	done
	runs=$(q -c "SELECT string_agg(j.jobname || '=' || d.status || coalesce(' ' || nullif(d.return_message, ''), ''), '; ')
				   FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname LIKE 'crm: %'")
	[ "$done" = 2 ] && ! echo "$runs" | grep -q '=failed'
	tap 3 $? "both jobs ran in a background worker and succeeded ($runs)"
	stage=$(q -c "SELECT stage FROM crm.contact WHERE contact_id = 1")
	[ "$stage" = churned ]
	tap 4 $? "the churn job moved the lapsed customer to churned (stage: $stage)"
	member=$(q -c "SELECT count(*) FROM crm.segment_member m JOIN crm.segment s USING (segment_id)
					 WHERE s.name = 'cron de' AND m.contact_id = 2")
	[ "$member" = 1 ]
	tap 5 $? "the refresh job brought the changed contact into its segment"
}
tap() { if [ "$2" = 0 ]; then echo "ok $1 - $3"; else echo "not ok $1 - $3"; fi; }
export -f cron_test tap
# a nested throwaway cluster, on a port of its own (pg_virtualenv cannot see
# the suite's cluster, whose socket is in a temporary directory): this one
# must preload pg_cron
port=$((20000 + $$ % 20000))
pg_virtualenv -t -c "-p $port" -o shared_preload_libraries=pg_cron -o cron.database_name=postgres \
	-o cron.use_background_workers=on -o max_worker_processes=20 bash -c cron_test 2>"${TMPDIR:-/tmp}/pg_cron_test.$$.err" \
	| grep -E '^(not )?ok '
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || { echo "# nested cluster failed:"; tail -20 "${TMPDIR:-/tmp}/pg_cron_test.$$.err" | sed 's/^/# /'; }
rm -f "${TMPDIR:-/tmp}/pg_cron_test.$$.err"
