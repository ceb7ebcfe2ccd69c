-- Periodic work, run by pg_cron: churn detection and segment refresh.  The
-- jobs are named, so scheduling again updates them (pg_cron keys a job by
-- name and user) instead of adding copies.
CREATE FUNCTION crm.schedule_maintenance(churn text DEFAULT '17 3 * * *',
										 segments text DEFAULT '*/15 * * * *',
										 points text DEFAULT '41 3 * * *',
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
			   ('crm: refresh segments', segments, 'SELECT crm.refresh_segments()'),
			   ('crm: expire points', points, 'SELECT crm.expire_points()')
	LOOP
		IF schedule IS NULL THEN
			-- NULL: the job is not wanted (unscheduled when it exists)
			PERFORM cron.unschedule(j.jobid) FROM cron.job j
			  WHERE j.jobname = schedule_maintenance.jobname
				AND j.username = current_user;
			CONTINUE;
		END IF;
		-- expiry is crm_admin's: a job that would fail every night is not made
		IF jobname = 'crm: expire points'
		   AND NOT has_function_privilege('crm.expire_points(timestamptz)', 'EXECUTE') THEN
			RAISE NOTICE 'the job "crm: expire points" is not scheduled: % may not run crm.expire_points', current_user
				USING HINT = 'Schedule it as crm_admin (or a role granted EXECUTE on crm.expire_points), or pass points => NULL.';
			CONTINUE;
		END IF;
		jobid := cron.schedule(jobname, schedule, command);
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION crm.schedule_maintenance(text, text, text) IS
	'creates or updates the pg_cron jobs of crm''s periodic work (detect_churn, refresh_segments, expire_points) under the calling role; a NULL schedule removes that job; 55000 when pg_cron is not installed here';
REVOKE ALL ON FUNCTION crm.schedule_maintenance(text, text, text) FROM PUBLIC;
