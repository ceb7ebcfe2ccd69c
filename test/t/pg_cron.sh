#!/usr/bin/env bash
# TAP: crm's periodic work runs from pg_cron.  A cluster of its own, with
# pg_cron preloaded and running jobs in background workers (no client
# session, no password), gets crm, a customer past the churn window and a
# segment with a pending change; crm.schedule_maintenance() schedules the
# jobs every minute; within a bounded wait both have run, succeeded and done
# their work.  A sales rep's churn job runs under the rep's row-level
# security: it churns the rep's lapsed customer, not another rep's.  Without
# pg_cron the call refuses with 55000.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "1..7"

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
SELECT count(*) FROM crm.setup_roles();
CREATE ROLE cron_rep LOGIN IN ROLE crm_sales;
GRANT USAGE ON SCHEMA cron TO cron_rep;
GRANT EXECUTE ON FUNCTION crm.schedule_maintenance(text, text, text) TO cron_rep;
INSERT INTO crm.contact (contact_id, email, lead_source, country, owner) VALUES
	(1, 'old-customer@cron.test', 'form', 'DE', 'cron_rep'), (2, 'mover@cron.test', 'form', 'FR', 'cron_rep'),
	(3, 'other-rep@cron.test', 'form', 'FR', 'postgres');
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES
	(1, now() - interval '3 years', 10), (3, now() - interval '3 years', 10);
-- a loyalty lot earned two years ago, due for expiry
INSERT INTO crm.loyalty_program (program_id, name) VALUES (1, 'cron card');
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (3, now() - interval '2 years', 'paid', 50);
SELECT crm.create_segment('cron de', $$country = 'DE'$$);
UPDATE crm.contact SET country = 'DE' WHERE contact_id = 2;	-- pending until a refresh
SQL
	# the churn job as the rep, the refresh job as the superuser; each call
	# twice (the second updates the job)
	jobs=$(q -c "SET ROLE cron_rep" -c "SELECT string_agg(jobname || '@' || schedule, ',')
				   FROM crm.schedule_maintenance('* * * * *', NULL)" -c "SELECT count(*) FROM crm.schedule_maintenance('* * * * *', NULL)" \
			 -c "RESET ROLE" -c "SELECT string_agg(jobname || '@' || schedule, ',')
				   FROM crm.schedule_maintenance(NULL, '* * * * *', '* * * * *')" \
			 -c "SELECT count(*) FROM crm.schedule_maintenance(NULL, '* * * * *', '* * * * *')" | tr '\n' ' ')
	njobs=$(q -c "SELECT string_agg(jobname || ' as ' || username, ', ' ORDER BY jobname) FROM cron.job WHERE jobname LIKE 'crm: %'")
	# the rep's call skips the expiry job (crm_admin's) with a notice
	[ "$jobs" = "crm: detect churn@* * * * * 1 crm: refresh segments@* * * * *,crm: expire points@* * * * * 2 " ] &&
		[ "$njobs" = "crm: detect churn as cron_rep, crm: expire points as postgres, crm: refresh segments as postgres" ]
	tap 2 $? "schedule_maintenance creates named jobs under the calling role, and again updates them (got $jobs; $njobs)"

	# pg_cron runs on minute boundaries: wait for the jobs' first run (at most 130 s)
	local done=""
	for _ in $(seq 1 130); do
		done=$(q -c "SELECT count(DISTINCT j.jobname) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
					  WHERE j.jobname LIKE 'crm: %' AND d.status IN ('succeeded', 'failed')")
		[ "$done" = 3 ] && break
		sleep 1
	done
	runs=$(q -c "SELECT string_agg(j.jobname || '=' || d.status || coalesce(' ' || nullif(d.return_message, ''), ''), '; ')
				   FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname LIKE 'crm: %'")
	[ "$done" = 3 ] && ! echo "$runs" | grep -q '=failed'
	tap 3 $? "the three jobs ran in a background worker and succeeded ($runs)"
	stage=$(q -c "SELECT stage FROM crm.contact WHERE contact_id = 1")
	[ "$stage" = churned ]
	tap 4 $? "the rep's churn job moved the rep's lapsed customer to churned (stage: $stage)"
	member=$(q -c "SELECT count(*) FROM crm.segment_member m JOIN crm.segment s USING (segment_id)
					 WHERE s.name = 'cron de' AND m.contact_id = 2")
	[ "$member" = 1 ]
	tap 5 $? "the refresh job brought the changed contact into its segment"
	other=$(q -c "SELECT stage FROM crm.contact WHERE contact_id = 3")
	[ "$other" = customer ]
	tap 6 $? "the rep's job, under row-level security, left another rep's lapsed customer alone (stage: $other)"
	expired=$(q -c "SELECT expired FROM crm.points_balance WHERE contact_id = 3")
	[ "$expired" = 50 ]
	tap 7 $? "the expiry job expired the lot earned two years ago (expired: $expired)"
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
