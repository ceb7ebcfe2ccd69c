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

-- crm.contact_profile: the five consent columns from one lateral pass over the
-- contact's ledger instead of five copies of a subquery (src/segment.sql);
-- same columns, results, privileges and security_invoker
CREATE OR REPLACE VIEW crm.contact_profile WITH (security_invoker = true) AS
SELECT c.contact_id, c.email, c.first_name, c.last_name, c.phone, c.city, c.region, c.country,
	   c.birth_date,
	   extract(year FROM age(c.birth_date))::integer AS age,
	   c.income_band, c.job_title, c.lead_source, c.owner, c.stage, c.do_not_contact, c.attrs,
	   c.created_at, c.updated_at,
	   c.company_id, co.name AS company_name, co.domain AS company_domain,
	   co.industry AS company_industry, co.employees AS company_employees,
	   co.annual_revenue AS company_annual_revenue, co.country AS company_country,
	   (SELECT count(*) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS order_count,
	   (SELECT coalesce(sum(o.total), 0) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS lifetime_value,
	   (SELECT min(o.ordered_at) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS first_order_at,
	   (SELECT max(o.ordered_at) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS last_order_at,
	   (SELECT floor(extract(epoch FROM now() OPERATOR(pg_catalog.-) max(o.ordered_at)) / 86400)::integer
		  FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS recency_days,
	   v.rfm, crm.rfm_segment(v.rfm) AS rfm_segment, v.value_rank,
	   (SELECT count(*) FROM crm.activity a
		 WHERE a.contact_id OPERATOR(pg_catalog.=) c.contact_id) AS activity_count,
	   (SELECT max(a.occurred_at) FROM crm.activity a
		 WHERE a.contact_id OPERATOR(pg_catalog.=) c.contact_id) AS last_activity_at,
	   coalesce(cs.email, false) AS consent_email, coalesce(cs.phone, false) AS consent_phone,
	   coalesce(cs.sms, false) AS consent_sms, coalesce(cs.post, false) AS consent_post,
	   coalesce(cs.profiling, false) AS consent_profiling,
	   crm.score(c.contact_id, 'engagement') AS engagement_score,
	   crm.score(c.contact_id, 'fit') AS fit_score,
	   crm.grade(c.contact_id) AS grade
  FROM crm.contact c
  -- consent now, per channel: the latest row recorded by now, granted and
  -- unexpired; one pass over the contact's ledger (consent_current_idx)
  LEFT JOIN LATERAL (
	SELECT bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'email') AS email,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'phone') AS phone,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'sms') AS sms,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'post') AS post,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'profiling') AS profiling
	  FROM (SELECT DISTINCT ON (l.channel) l.channel,
				   l.status OPERATOR(pg_catalog.=) 'granted'
				   AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now()) AS granted
			  FROM crm.consent l
			 WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.recorded_at OPERATOR(pg_catalog.<=) now()
			 ORDER BY l.channel, l.recorded_at DESC, l.consent_id DESC) l) cs ON true
  LEFT JOIN crm.company co ON co.company_id OPERATOR(pg_catalog.=) c.company_id
  LEFT JOIN (SELECT o.contact_id,
					crm.rfm((1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER ())::integer,
							(1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER ())::integer,
							(1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ())::integer) AS rfm,
					percent_rank() OVER (ORDER BY sum(o.total)) AS value_rank
			   FROM crm."order" o
			  WHERE o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])
			  GROUP BY o.contact_id) v ON v.contact_id OPERATOR(pg_catalog.=) c.contact_id;
