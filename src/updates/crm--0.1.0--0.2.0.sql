-- crm 0.1.0 -> 0.2.0: every change to the schema since 0.1.0, in the order
-- it was made.  Each later change goes here as well as into src/.
\echo Use "ALTER EXTENSION crm UPDATE TO '0.2.0'" to load this file. \quit

-- crm.schedule_maintenance(): the pg_cron jobs of the periodic work (src/schedule.sql)
-- Periodic work, run by pg_cron: churn detection and segment refresh.  The
-- jobs are named, so scheduling again updates them (pg_cron keys a job by
-- name and user) instead of adding copies.
CREATE FUNCTION crm.schedule_maintenance(churn text DEFAULT '17 3 * * *',
										 segments text DEFAULT '*/15 * * * *',
										 OUT jobname text, OUT schedule text, OUT command text,
										 OUT jobid bigint)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
		RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database and run CREATE EXTENSION pg_cron; '
					  || 'or, where pg_cron lives in another database, schedule the commands of the README''s "Scheduling" section there with cron.schedule_in_database.';
	END IF;
	FOR jobname, schedule, command IN
		VALUES ('crm: detect churn', churn, 'SELECT crm.detect_churn()'),
			   ('crm: refresh segments', segments, 'SELECT crm.refresh_segments()')
	LOOP
		IF schedule IS NULL THEN
			-- NULL: the job is not wanted (unscheduled when it exists)
			PERFORM cron.unschedule(j.jobid) FROM cron.job j
			  WHERE j.jobname = schedule_maintenance.jobname
				AND j.username = current_user;
			CONTINUE;
		END IF;
		jobid := cron.schedule(jobname, schedule, command);
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION crm.schedule_maintenance(text, text) IS
	'creates or updates the pg_cron jobs of crm''s periodic work (detect_churn, refresh_segments) under the calling role; a NULL schedule removes that job; 55000 when pg_cron is not installed here';
REVOKE ALL ON FUNCTION crm.schedule_maintenance(text, text) FROM PUBLIC;

-- H4: comments
COMMENT ON FUNCTION crm.email_in(cstring) IS
	'text input of crm.email: normalises the address, 22P02 with a detail saying what is wrong';
COMMENT ON FUNCTION crm.email_out(crm.email) IS
	'text output of crm.email: the normalised address, which reads back as itself';
COMMENT ON FUNCTION crm.email_recv(internal) IS
	'binary input of crm.email: validates and normalises again, as the text input does';
COMMENT ON FUNCTION crm.email_send(crm.email) IS
	'binary output of crm.email: the normalised address as text bytes';
COMMENT ON FUNCTION crm.rfm_in(cstring) IS
	'text input of crm.rfm: ''5-4-3'' or ''543'', each score 1..5; 22P02 otherwise';
COMMENT ON FUNCTION crm.rfm_out(crm.rfm) IS
	'text output of crm.rfm: ''r-f-m''';
COMMENT ON FUNCTION crm.rfm_recv(internal) IS
	'binary input of crm.rfm: checks the version field and that each score is 1..5 (22P03 otherwise)';
COMMENT ON FUNCTION crm.rfm_send(crm.rfm) IS
	'binary output of crm.rfm: the 4-byte packed cell';
