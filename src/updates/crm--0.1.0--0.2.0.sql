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

-- crm.setup_roles(): grants by explicit lists of relations per role (src/roles.sql)
-- instead of name patterns (five of which matched nothing) and ALL ... IN SCHEMA;
-- the same privileges on every object
CREATE OR REPLACE FUNCTION crm.setup_roles() RETURNS TABLE (object text, done text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	-- the contact and the tables that hang off it (row-level security below)
	data text := 'crm.contact, crm.activity, crm.deal, crm."order", crm.order_line, crm.task, crm.score_ledger, '
				 'crm.score_event, crm.stage_history, crm.campaign_target';
	-- rows the triggers derive, written as whoever writes the contact data
	derived text := 'crm.score_ledger, crm.score_event, crm.stage_history';
	lookup text := 'crm.channel, crm.lead_source, crm.product, crm.company, crm.merge_rule';
	config text := 'crm.score_group, crm.scoring_rule, crm.fit_rule, crm.lifecycle_policy';
	segments text := 'crm.segment, crm.segment_member, crm.segment_log, crm.segment_dirty, crm.campaign, crm.campaign_target';
	invoker_views text := 'crm.consent_current, crm.contact_profile, crm.contact_scores, crm.pipeline';
	analyst_views text := 'crm.analyst_contact, crm.analyst_activity, crm.analyst_order, crm.analyst_deal, '
						  'crm.analyst_funnel, crm.analyst_stage_conversion, crm.analyst_retention, crm.analyst_churn, '
						  'crm.analyst_rfm, crm.analyst_clv_model, crm.analyst_clv, crm.analyst_campaign, crm.analyst_pipeline';
	sequences text := 'crm.activity_activity_id_seq, crm.campaign_campaign_id_seq, crm.company_company_id_seq, '
					  'crm.consent_consent_id_seq, crm.contact_contact_id_seq, crm.deal_deal_id_seq, '
					  'crm.erasure_log_erasure_id_seq, crm.merge_log_merge_id_seq, crm.order_order_id_seq, '
					  'crm.product_product_id_seq, crm.rule_id_seq, crm.segment_log_log_id_seq, '
					  'crm.segment_segment_id_seq, crm.stage_history_history_id_seq, crm.task_task_id_seq';
	r record;
	rname text;
BEGIN
	IF NOT (SELECT rolsuper OR (rolcreaterole AND pg_has_role(current_user, c.relowner, 'USAGE'))
			  FROM pg_roles, pg_class c
			 WHERE rolname = current_user AND c.oid = 'crm.contact'::regclass) THEN
		RAISE EXCEPTION 'permission denied to set up crm roles'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'crm.setup_roles() creates roles and changes grants and policies on the crm tables.',
				  HINT = 'Run it as a superuser, or as the owner of the crm tables with CREATEROLE.';
	END IF;

	FOREACH rname IN ARRAY ARRAY['crm_admin', 'crm_sales', 'crm_marketing', 'crm_analyst'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = rname) THEN
			object := rname; done := 'role adopted'; RETURN NEXT;
		ELSE
			EXECUTE format('CREATE ROLE %I NOLOGIN', rname);
			object := rname; done := 'role created'; RETURN NEXT;
		END IF;
		EXECUTE format('GRANT USAGE ON SCHEMA crm TO %I', rname);
	END LOOP;

	-- admin: every function the extension installs (the other roles run the
	-- ones PUBLIC may, and those granted by name below)
	EXECUTE (SELECT format('GRANT EXECUTE ON FUNCTION %s TO crm_admin',
						   string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid))
			   FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
			  WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
				AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'crm') AND d.deptype = 'e');
	-- The grants, by name: one row per grantee and privileges, with the
	-- relations they are on.  A table, view or sequence added to crm gets no
	-- grant until it is listed here.
	FOR r IN SELECT * FROM (VALUES
		-- admin: everything
		('crm_admin', 'ALL', 'TABLE', data || ', ' || lookup || ', ' || config || ', ' || invoker_views || ', ' || analyst_views
			|| ', crm.consent, crm.segment, crm.segment_member, crm.segment_log, crm.segment_dirty, crm.campaign, '
			|| 'crm.merge_log, crm.erasure_log, crm.privacy_salt, crm._dump_begin, crm.zz_dump_end'),
		('crm_admin', 'ALL', 'SEQUENCE', sequences),
		-- everyone but the analyst reads the lookup tables, and the
		-- security_invoker views (each reader through its own policies)
		('crm_sales, crm_marketing', 'SELECT', 'TABLE', lookup),
		('crm_sales, crm_marketing', 'SELECT', 'TABLE', invoker_views),
		-- what the triggers and merge need to see of the logs (no before-images)
		('crm_sales, crm_marketing', 'SELECT (merge_id, kept_id, dropped_id, txid, merged_at, merged_by)', 'TABLE', 'crm.merge_log'),
		('crm_sales, crm_marketing', 'SELECT (contact_id)', 'TABLE', 'crm.erasure_log'),
		-- sales: their contacts and everything hanging off them (rows limited
		-- below); DELETE of consent only ever passes crm.consent_append_only on
		-- the merge path
		('crm_sales', 'SELECT, INSERT, UPDATE, DELETE', 'TABLE', data),
		('crm_sales', 'SELECT, INSERT, DELETE', 'TABLE', 'crm.consent'),
		('crm_sales', 'SELECT, INSERT, UPDATE', 'TABLE', 'crm.company'),
		('crm_sales', 'INSERT, UPDATE (moved, conflicts)', 'TABLE', 'crm.merge_log'),
		('crm_sales', 'USAGE', 'SEQUENCE', sequences),
		('crm_sales', 'EXECUTE', 'FUNCTION', 'crm.merge_contacts(bigint, bigint, boolean)'),
		-- the triggers run as the writer: they read rules, policy and segment
		-- definitions, and write derived rows (scores, history, dirty marks);
		-- the dirty marks only need INSERT ... ON CONFLICT DO NOTHING (reading
		-- them would show which contacts of other reps change)
		('crm_sales, crm_marketing', 'SELECT', 'TABLE', config || ', crm.segment'),
		('crm_sales, crm_marketing', 'SELECT, INSERT, UPDATE, DELETE', 'TABLE', derived),
		('crm_sales, crm_marketing', 'INSERT', 'TABLE', 'crm.segment_dirty'),
		-- marketing: reads contacts and their data, writes consent (opt-outs
		-- from campaigns) and owns the configuration of segments, campaigns
		-- and scoring rules
		('crm_marketing', 'SELECT', 'TABLE', data),
		('crm_marketing', 'SELECT, INSERT', 'TABLE', 'crm.consent'),
		('crm_marketing', 'SELECT, INSERT, UPDATE, DELETE', 'TABLE', segments || ', crm.scoring_rule, crm.fit_rule'),
		('crm_marketing', 'USAGE', 'SEQUENCE', sequences),
		-- analyst: the k-anonymous views only
		('crm_analyst', 'SELECT', 'TABLE', analyst_views))
			v(grantees, privileges, kind, objects) LOOP
		EXECUTE format('GRANT %s ON %s %s TO %s', r.privileges, r.kind, r.objects, r.grantees);
	END LOOP;
	object := segments || ', crm.scoring_rule, crm.fit_rule'; done := 'granted to crm_marketing'; RETURN NEXT;
	REVOKE SELECT, UPDATE, DELETE ON crm.segment_dirty FROM crm_sales;
	REVOKE ALL ON crm.contact FROM crm_analyst;

	-- row-level security: the contact table by owner ...
	ALTER TABLE crm.contact ENABLE ROW LEVEL SECURITY;
	IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'crm' AND tablename = 'contact'
					  AND policyname = 'crm_sales_own') THEN
		CREATE POLICY crm_sales_own ON crm.contact TO crm_sales
			USING (owner = ANY ((SELECT crm.my_roles())::text[]))
			WITH CHECK (owner = ANY ((SELECT crm.my_roles())::text[]));
		CREATE POLICY crm_admin_all ON crm.contact TO crm_admin USING (true) WITH CHECK (true);
		CREATE POLICY crm_marketing_read ON crm.contact FOR SELECT TO crm_marketing USING (true);
	END IF;
	object := 'crm.contact'; done := 'row-level security by owner'; RETURN NEXT;
	-- ... and every table that points at contacts, through the contact
	FOR r IN SELECT DISTINCT t.table_name, t.contact_column, c.relname
			   FROM crm.contact_references() t JOIN pg_class c ON c.oid = t.table_name LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.table_name);
		IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.table_name
						  AND p.polname = 'crm_sales_own') THEN
			-- the contact lookup is itself under the contact table's policy
			EXECUTE format('CREATE POLICY crm_sales_own ON %1$s TO crm_sales
								USING (EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = %2$I.%3$I))
								WITH CHECK (EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = %2$I.%3$I))',
						   r.table_name, r.relname, r.contact_column);
			EXECUTE format('CREATE POLICY crm_admin_all ON %s TO crm_admin USING (true) WITH CHECK (true)',
						   r.table_name);
			EXECUTE format('CREATE POLICY crm_marketing_all ON %s TO crm_marketing USING (true) WITH CHECK (true)',
						   r.table_name);
		END IF;
		object := r.table_name::text; done := 'row-level security through the contact'; RETURN NEXT;
	END LOOP;
	-- ... and the tables that name contacts without a foreign key: a rep
	-- reads the companies it owns or has contacts at and changes those it
	-- owns, and reads the merges into and erasures of its contacts
	FOR r IN SELECT * FROM (VALUES
			('crm.company'::regclass,
			 'owner = ANY ((SELECT crm.my_roles())::text[])
			  OR EXISTS (SELECT 1 FROM crm.contact c WHERE c.company_id = company.company_id)',
			 'owner = ANY ((SELECT crm.my_roles())::text[])'),
			('crm.merge_log'::regclass,
			 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = merge_log.kept_id)',
			 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = merge_log.kept_id)'),
			('crm.erasure_log'::regclass,
			 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = erasure_log.contact_id)',
			 'false'))
			v(table_name, sales_reads, sales_writes) LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.table_name);
		IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.table_name
						  AND p.polname = 'crm_sales_own') THEN
			EXECUTE format('CREATE POLICY crm_sales_read ON %s FOR SELECT TO crm_sales USING (%s)',
						   r.table_name, r.sales_reads);
			EXECUTE format('CREATE POLICY crm_sales_own ON %1$s TO crm_sales USING (%2$s) WITH CHECK (%2$s)',
						   r.table_name, r.sales_writes);
			EXECUTE format('CREATE POLICY crm_admin_all ON %s TO crm_admin USING (true) WITH CHECK (true)',
						   r.table_name);
			EXECUTE format('CREATE POLICY crm_marketing_read ON %s FOR SELECT TO crm_marketing USING (true)',
						   r.table_name);
		END IF;
		object := r.table_name::text; done := 'row-level security through the contacts it names'; RETURN NEXT;
	END LOOP;
END $$;

-- Segment dirty marking: one trigger function instead of four copies; the
-- same triggers, replaced in place
CREATE FUNCTION crm.segment_dirty() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM crm.segment g WHERE g.kind = 'dynamic' AND NOT g.time_dependent) THEN
		RETURN NULL;
	END IF;
	IF TG_NARGS > 0 AND TG_ARGV[0] = 'company' THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT DISTINCT c.contact_id FROM crm.contact c JOIN new_rows n USING (company_id)
		ON CONFLICT DO NOTHING;
	ELSIF TG_OP = 'INSERT' THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT DISTINCT n.contact_id FROM new_rows n ON CONFLICT DO NOTHING;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT DISTINCT o.contact_id FROM old_rows o ON CONFLICT DO NOTHING;
	ELSE
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT n.contact_id FROM new_rows n UNION SELECT o.contact_id FROM old_rows o
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.segment_dirty() IS
	'trigger: mark for segment refresh the contacts of the inserted, deleted or updated rows (before and after), or with the argument company, the contacts of the updated companies';
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm.contact
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_delete AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('company');
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm.activity
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_delete AFTER DELETE ON crm.activity
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm."order"
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_delete AFTER DELETE ON crm."order"
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm.consent
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty();
DROP FUNCTION crm.segment_dirty_new(), crm.segment_dirty_old(), crm.segment_dirty_both(), crm.segment_dirty_company();

-- crm.stage_rank reads the stage facts of src/lifecycle.c instead of
-- repeating the stage order in SQL (same values).
CREATE OR REPLACE FUNCTION crm.stage_rank(crm.stage) RETURNS real
	AS 'MODULE_PATHNAME', 'crm_stage_rank' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- crm.add_to_segment and crm.remove_from_segment find and lock their static
-- segment through one helper, crm.static_segment_lock, instead of two copies
-- of the check (src/segment.sql); same errors, SQLSTATEs and hints
CREATE FUNCTION crm.static_segment_lock(segment_name text) RETURNS crm.segment
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
BEGIN
	s := crm.segment_lock(segment_name);
	IF s.kind <> 'static' THEN
		RAISE EXCEPTION 'segment "%" is dynamic', segment_name
			USING ERRCODE = 'wrong_object_type', HINT = 'Its members follow its predicate; change it with crm.alter_segment.';
	END IF;
	RETURN s;
END $$;
COMMENT ON FUNCTION crm.static_segment_lock(text) IS 'the named static segment''s row, locked as by crm.segment_lock (42704 when missing, 42809 when dynamic)';
CREATE OR REPLACE FUNCTION crm.add_to_segment(name text, contact_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
	entering bigint[];
BEGIN
	s := crm.static_segment_lock(name);
	entering := ARRAY(SELECT DISTINCT c.contact_id FROM crm.contact c
					   WHERE c.contact_id = ANY (contact_ids)
						 AND NOT EXISTS (SELECT 1 FROM crm.segment_member m
										  WHERE m.segment_id = s.segment_id AND m.contact_id = c.contact_id));
	PERFORM crm.segment_apply(s.segment_id, entering, '{}');
	RETURN cardinality(entering);
END $$;
CREATE OR REPLACE FUNCTION crm.remove_from_segment(name text, contact_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
	exiting bigint[];
BEGIN
	s := crm.static_segment_lock(name);
	exiting := ARRAY(SELECT m.contact_id FROM crm.segment_member m
					  WHERE m.segment_id = s.segment_id AND m.contact_id = ANY (contact_ids));
	PERFORM crm.segment_apply(s.segment_id, '{}', exiting);
	RETURN cardinality(exiting);
END $$;

-- the analyst's analytics: crm.analyst_funnel ... crm.analyst_pipeline (src/analyst.sql)
-- ---------------------------------------------------------------------------
-- The analyst's analytics: the aggregate analyses (funnel, stage conversion,
-- cohort retention, churn, RFM segments, CLV, campaigns, pipeline) as more
-- views of the crm.analyst_* family (src/roles.sql): owner's rights, no
-- personal column, every row standing for at least 5 distinct contacts
-- (rows of fewer are left out), months and days in UTC.  They are views,
-- not functions with arguments, so nothing an analyst passes becomes SQL;
-- a BI tool filters them with WHERE.  The admin's functions cannot be called
-- inside them (a function reads with its caller's rights, and the analyst
-- has no grant on the tables), so each repeats its function's query for
-- fixed arguments; test/pgtap/analyst.sql checks that they give the same
-- numbers (the functions run with TimeZone = 'UTC').
-- ---------------------------------------------------------------------------

-- crm.funnel at the end of every month (UTC), the current month at now().
-- Each history row counts from the first month end at or after its time
-- to the first at or after the contact's next row (+1 and -1), so a running
-- sum per stage gives the funnel of every month in one pass.
CREATE VIEW crm.analyst_funnel AS
WITH r AS (
	SELECT h.to_stage AS stage, h.changed_at,
		   lead(h.changed_at) OVER (PARTITION BY h.contact_id ORDER BY h.changed_at, h.history_id) AS next_at
	  FROM crm.stage_history h
	 WHERE h.changed_at <= now()),
d AS (
	SELECT r.stage, date_trunc('month', (r.changed_at AT TIME ZONE 'UTC') - interval '1 microsecond') AS month, 1 AS delta
	  FROM r
	UNION ALL
	SELECT r.stage, date_trunc('month', (r.next_at AT TIME ZONE 'UTC') - interval '1 microsecond'), -1
	  FROM r WHERE r.next_at IS NOT NULL),
g AS (
	SELECT d.stage, d.month, sum(d.delta) AS delta FROM d GROUP BY d.stage, d.month),
s AS (
	SELECT m.month, e.stage,
		   sum(coalesce(g.delta, 0)) OVER (PARTITION BY e.stage ORDER BY m.month) AS n
	  FROM generate_series((SELECT min(g.month) FROM g), date_trunc('month', now() AT TIME ZONE 'UTC'),
						   interval '1 month') m(month)
	 CROSS JOIN unnest(enum_range(NULL::crm.stage)) e(stage)
	  LEFT JOIN g ON g.stage = e.stage AND g.month = m.month),
f AS (
	SELECT s.month::date AS month, s.stage, s.n::bigint AS contacts,
		   round(s.n / nullif(sum(s.n) OVER (PARTITION BY s.month), 0), 4) AS share
	  FROM s)
SELECT f.month, f.stage, f.contacts, f.share FROM f WHERE f.contacts >= 5;
COMMENT ON VIEW crm.analyst_funnel IS
	'one row per month (UTC) and stage: contacts in the stage at the end of the month (now for the current month) and their share of all contacts then, as crm.funnel; stages of fewer than 5 contacts are left out';

-- crm.stage_conversion over each month (UTC): [month start, month end), the
-- current month up to now()
CREATE VIEW crm.analyst_stage_conversion AS
WITH h AS (
	SELECT h.contact_id, h.to_stage, h.changed_at,
		   lead(h.to_stage) OVER w AS next_stage, lead(h.changed_at) OVER w AS left_at
	  FROM crm.stage_history h
	 WHERE h.from_stage IS DISTINCT FROM h.to_stage
	WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id)),
m AS (
	SELECT h.*, date_trunc('month', h.changed_at AT TIME ZONE 'UTC') AS month
	  FROM h WHERE h.changed_at < now()),
e AS (
	SELECT m.*, (m.next_stage > m.to_stage AND m.next_stage NOT IN ('disqualified', 'churned')
				 AND m.left_at < m.to_date) AS converted
	  FROM (SELECT m.*, least((m.month + interval '1 month') AT TIME ZONE 'UTC', now()) AS to_date FROM m) m)
SELECT e.month::date AS month, e.to_stage AS stage, count(DISTINCT e.contact_id) AS contacts,
	   count(*) AS entered, count(*) FILTER (WHERE e.converted) AS moved_on,
	   round(count(*) FILTER (WHERE e.converted)::numeric / count(*), 4) AS conversion,
	   percentile_cont(0.5) WITHIN GROUP (ORDER BY e.left_at - e.changed_at) FILTER (WHERE e.left_at < e.to_date)
		 AS median_time_in_stage,
	   percentile_cont(0.9) WITHIN GROUP (ORDER BY e.left_at - e.changed_at) FILTER (WHERE e.left_at < e.to_date)
		 AS p90_time_in_stage
  FROM e
 GROUP BY e.month, e.to_stage
HAVING count(DISTINCT e.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_stage_conversion IS
	'one row per month (UTC) and stage, as crm.stage_conversion(month start, month end or now): contacts and entries into the stage in the month, entries that moved on to a later stage before the month ended, the rate, median and p90 time in stage; stages entered by fewer than 5 contacts in a month are left out';

-- crm.retention_cohorts('1 month') with months in UTC
CREATE VIEW crm.analyst_retention AS
WITH b AS (
	SELECT DISTINCT o.contact_id, date_trunc('month', o.ordered_at AT TIME ZONE 'UTC') AS month
	  FROM crm."order" o
	 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])),
f AS (
	SELECT b.contact_id, min(b.month) AS cohort FROM b GROUP BY b.contact_id),
sizes AS (
	SELECT f.cohort, count(*) AS n FROM f GROUP BY f.cohort)
SELECT f.cohort::date AS cohort_month,
	   ((extract(year FROM b.month) - extract(year FROM f.cohort)) * 12
		+ extract(month FROM b.month) - extract(month FROM f.cohort))::integer AS months_since,
	   sizes.n AS customers, count(*) AS active, round(count(*)::numeric / sizes.n, 4) AS retention
  FROM b JOIN f ON f.contact_id = b.contact_id JOIN sizes ON sizes.cohort = f.cohort
 GROUP BY f.cohort, b.month, sizes.n
HAVING count(*) >= 5;
COMMENT ON VIEW crm.analyst_retention IS
	'one row per cohort (month of the first purchase, UTC) and months since: customers of the cohort, how many of them bought in that month, and that share, as crm.retention_cohorts(''1 month''); cancelled and refunded orders do not count; rows of fewer than 5 active customers are left out';

-- crm.churn_rate('1 month', first order month, current month) in UTC
CREATE VIEW crm.analyst_churn AS
WITH act AS (
	SELECT DISTINCT date_trunc('month', o.ordered_at AT TIME ZONE 'UTC') AS month, o.contact_id
	  FROM crm."order" o
	 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded']))
SELECT a.month::date AS month, count(*) AS active, count(*) FILTER (WHERE n.contact_id IS NULL) AS churned,
	   round((count(*) FILTER (WHERE n.contact_id IS NULL))::numeric / count(*), 4) AS churn_rate
  FROM act a
  LEFT JOIN act n ON n.contact_id = a.contact_id AND n.month = a.month + interval '1 month'
 WHERE a.month + interval '2 months' <= date_trunc('month', now() AT TIME ZONE 'UTC')
 GROUP BY a.month
HAVING count(*) >= 5;
COMMENT ON VIEW crm.analyst_churn IS
	'one row per month (UTC) whose next month has ended: customers who bought in the month, how many of them did not buy in the next one, and that share, as crm.churn_rate(''1 month'', ...); cancelled and refunded orders do not count; months of fewer than 5 customers are left out';

-- crm.rfm_scores() (now, all orders) by segment
CREATE VIEW crm.analyst_rfm AS
WITH s AS (
	SELECT floor(extract(epoch FROM now() - max(o.ordered_at)) / 86400)::integer AS recency_days,
		   count(*) AS frequency, sum(o.total) AS monetary,
		   crm.rfm((1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER ())::integer,
				   (1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER ())::integer,
				   (1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ())::integer) AS rfm
	  FROM crm."order" o
	 WHERE o.ordered_at <= now() AND o.status <> ALL ('{cancelled,refunded}'::text[])
	 GROUP BY o.contact_id),
g AS (
	SELECT crm.rfm_segment(s.rfm) AS segment, count(*) AS contacts,
		   round(count(*) / sum(count(*)) OVER (), 4) AS share,
		   round(avg(s.recency_days), 1) AS avg_recency_days, round(avg(s.frequency), 2) AS avg_frequency,
		   round(avg(s.monetary), 2) AS avg_monetary, sum(s.monetary) AS monetary
	  FROM s GROUP BY crm.rfm_segment(s.rfm))
SELECT g.segment, g.contacts, g.share, g.avg_recency_days, g.avg_frequency, g.avg_monetary, g.monetary
  FROM g WHERE g.contacts >= 5;
COMMENT ON VIEW crm.analyst_rfm IS
	'one row per RFM segment of crm.rfm_scores() (now, all orders): customers, their share, mean recency in days, mean orders, mean and total spend; segments of fewer than 5 customers are left out';

-- The CLV model: BG/NBD and Gamma-Gamma fitted to the BTYD summary (in days,
-- days in UTC) of every customer's orders up to now.  Each fit runs only on
-- 5 customers or more (an empty fit is an error).
CREATE VIEW crm.analyst_clv_model AS
WITH s AS (
	SELECT (x.s).frequency, (x.s).recency, (x.s).t, (x.s).monetary_value
	  FROM (SELECT crm.btyd_summary((o.ordered_at AT TIME ZONE 'UTC')::timestamptz, o.total,
									(now() AT TIME ZONE 'UTC')::timestamptz) AS s
			  FROM crm."order" o
			 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
			 GROUP BY o.contact_id) x),
n AS (
	SELECT count(*) AS customers, count(*) FILTER (WHERE s.monetary_value > 0) AS repeat_customers FROM s),
m AS MATERIALIZED (
	SELECT n.customers, n.repeat_customers,
		   CASE WHEN n.customers >= 5 THEN (SELECT crm.bgnbd_fit(s.frequency, s.recency, s.t) FROM s) END AS tx,
		   CASE WHEN n.repeat_customers >= 5 THEN
				(SELECT crm.gammagamma_fit(s.frequency, s.monetary_value) FILTER (WHERE s.monetary_value > 0) FROM s)
		   END AS spend
	  FROM n)
SELECT m.customers AS contacts, m.repeat_customers, (crm.bgnbd_params(m.tx)).r, (crm.bgnbd_params(m.tx)).alpha,
	   (crm.bgnbd_params(m.tx)).a, (crm.bgnbd_params(m.tx)).b, (crm.bgnbd_params(m.tx)).ll AS bgnbd_ll,
	   (crm.bgnbd_params(m.tx)).converged AS bgnbd_converged,
	   (crm.gammagamma_params(m.spend)).p, (crm.gammagamma_params(m.spend)).q,
	   (crm.gammagamma_params(m.spend)).gamma, (crm.gammagamma_params(m.spend)).ll AS gammagamma_ll,
	   (crm.gammagamma_params(m.spend)).converged AS gammagamma_converged,
	   m.tx AS bgnbd, m.spend AS gammagamma
  FROM m
 WHERE m.customers >= 5;
COMMENT ON VIEW crm.analyst_clv_model IS
	'one row: the BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma) models fitted by maximum likelihood to every customer''s BTYD summary (crm.btyd_summary in days, days in UTC, cancelled and refunded orders left out, observation end now), as float8 columns and as the model values; contacts = customers fitted, repeat_customers those the spend model is fitted to; no row below 5 customers';

-- Deciles of predicted CLV under that model: one year as 12 periods of
-- 365/12 days, 1% a period.  Predictions only from a converged BG/NBD fit
-- with a and b below 1,000: beyond that there is next to no dropout and the
-- hypergeometric series of the predictions need too many terms (22003 for
-- a whole read).  The lowest and highest values (one customer's)
-- are not shown.
CREATE VIEW crm.analyst_clv AS
WITH s AS (
	SELECT (x.s).frequency, (x.s).recency, (x.s).t, (x.s).monetary_value
	  FROM (SELECT crm.btyd_summary((o.ordered_at AT TIME ZONE 'UTC')::timestamptz, o.total,
									(now() AT TIME ZONE 'UTC')::timestamptz) AS s
			  FROM crm."order" o
			 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
			 GROUP BY o.contact_id) x),
c AS (
	SELECT CASE WHEN m.usable THEN crm.expected_purchases(m.bgnbd, 365, s.frequency, s.recency, s.t) END
			 AS purchases,
		   CASE WHEN m.usable THEN crm.p_alive(m.bgnbd, s.frequency, s.recency, s.t) END AS p_alive,
		   CASE WHEN NOT (m.usable AND m.gammagamma_converged AND m.q > 1) THEN NULL
				WHEN s.frequency > 0 AND s.monetary_value = 0 THEN 0	-- repeat purchases of nothing
				ELSE crm.clv(m.bgnbd, m.gammagamma, s.frequency, s.recency, s.t, s.monetary_value, 12, 0.01, 365 / 12.0)
		   END AS clv
	  FROM s CROSS JOIN (SELECT m.*, m.bgnbd_converged AND m.a < 1000 AND m.b < 1000 AS usable
						   FROM crm.analyst_clv_model m) m),
d AS (
	SELECT ntile(10) OVER (ORDER BY c.clv, c.purchases) AS decile, c.* FROM c)
SELECT d.decile, count(*) AS contacts,
	   CASE WHEN d.decile > 1 THEN min(d.clv) END AS clv_from,
	   CASE WHEN d.decile < 10 THEN max(d.clv) END AS clv_to,
	   avg(d.clv) AS avg_clv, sum(d.clv) AS total_clv,
	   avg(d.purchases) AS avg_expected_purchases, avg(d.p_alive) AS avg_p_alive
  FROM d
 GROUP BY d.decile
HAVING count(*) >= 5;
COMMENT ON VIEW crm.analyst_clv IS
	'one row per decile (1 = lowest) of predicted one-year CLV (crm.clv over crm.analyst_clv_model: 12 periods of 365/12 days, 1% a period; NULL unless both fits converged, a and b are below 1000 and q > 1): customers, the decile''s lowest and highest CLV (not shown for the lowest and highest decile), mean and total CLV, mean expected purchases in the next 365 days and mean probability alive; deciles of fewer than 5 customers are left out';

-- crm.campaign_report of every campaign
CREATE VIEW crm.analyst_campaign AS
WITH cam AS (
	SELECT k.campaign_id, k.name, k.channel, k.starts_at, k.ends_at, k.cost, coalesce(k.ends_at, now()) AS until
	  FROM crm.campaign k),
per_contact AS (
	SELECT cam.campaign_id, t.holdout,
		   (SELECT sum(o.total) FROM crm."order" o
			 WHERE o.contact_id = t.contact_id AND o.ordered_at >= cam.starts_at AND o.ordered_at < cam.until
			   AND o.status <> ALL ('{cancelled,refunded}'::text[])) AS spent,
		   EXISTS (SELECT 1 FROM crm.activity a
					WHERE a.contact_id = t.contact_id AND a.occurred_at >= cam.starts_at AND a.occurred_at < cam.until
					  AND a.properties @> jsonb_build_object('campaign_id', cam.campaign_id)) AS acted
	  FROM cam JOIN crm.campaign_target t ON t.campaign_id = cam.campaign_id),
agg AS (
	SELECT p.campaign_id,
		   count(*) FILTER (WHERE NOT p.holdout) AS targeted,
		   count(*) FILTER (WHERE p.holdout) AS held_out,
		   count(*) FILTER (WHERE NOT p.holdout AND (p.spent IS NOT NULL OR p.acted)) AS responded,
		   count(*) FILTER (WHERE p.holdout AND (p.spent IS NOT NULL OR p.acted)) AS holdout_responded,
		   coalesce(sum(p.spent) FILTER (WHERE NOT p.holdout), 0) AS revenue,
		   coalesce(sum(p.spent) FILTER (WHERE p.holdout), 0) AS holdout_revenue
	  FROM per_contact p GROUP BY p.campaign_id),
r AS (
	SELECT cam.campaign_id, cam.name, cam.channel, cam.starts_at, cam.ends_at, cam.cost, agg.targeted,
		   CASE WHEN agg.held_out >= 5 THEN agg.held_out END AS held_out,
		   agg.responded, round(agg.responded::numeric / agg.targeted, 4) AS response_rate,
		   CASE WHEN agg.held_out >= 5 THEN agg.holdout_responded END AS holdout_responded,
		   CASE WHEN agg.held_out >= 5 THEN round(agg.holdout_responded::numeric / agg.held_out, 4) END
			 AS holdout_response_rate,
		   CASE WHEN agg.responded >= 5 THEN agg.revenue END AS revenue,
		   CASE WHEN agg.held_out >= 5 AND agg.holdout_responded >= 5 THEN agg.holdout_revenue END AS holdout_revenue,
		   CASE WHEN agg.held_out >= 5 THEN
				round((agg.responded::numeric / agg.targeted)
					  / nullif(agg.holdout_responded::numeric / agg.held_out, 0) - 1, 4) END AS lift
	  FROM cam JOIN agg ON agg.campaign_id = cam.campaign_id
	 WHERE agg.targeted >= 5)
SELECT r.campaign_id, r.name AS campaign, r.channel, (r.starts_at AT TIME ZONE 'UTC')::date AS starts_on,
	   (r.ends_at AT TIME ZONE 'UTC')::date AS ends_on, r.targeted, r.held_out, r.responded, r.response_rate,
	   r.holdout_responded, r.holdout_response_rate, r.revenue, r.holdout_revenue, r.cost,
	   round((r.revenue - r.cost) / nullif(r.cost, 0), 4) AS return_on_cost, r.lift
  FROM r;
COMMENT ON VIEW crm.analyst_campaign IS
	'one row per campaign, as crm.campaign_report: targeted contacts, held-out contacts, responders, response rates, revenue, hold-out revenue, cost, return on cost and lift; campaigns of fewer than 5 targeted contacts are left out, hold-out figures are NULL below 5 held-out contacts, revenue (and return on cost) below 5 responders';

-- crm.pipeline with the number of contacts
CREATE VIEW crm.analyst_pipeline AS
SELECT d.pipeline_stage, count(*) AS deals, count(DISTINCT d.contact_id) AS contacts, sum(d.amount) AS amount,
	   round(sum(d.amount * d.probability), 2) AS weighted_amount
  FROM crm.deal d
 WHERE d.status = 'open'
 GROUP BY d.pipeline_stage
HAVING count(DISTINCT d.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_pipeline IS
	'one row per pipeline stage, as crm.pipeline: open deals, their contacts, amount and probability-weighted amount; stages of fewer than 5 contacts are left out';
-- as at install (src/ownership.sql): when crm was installed by a role that is
-- not a superuser (a trusted install), its views belong to that role
DO $$
DECLARE
	installer regrole := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'crm');
	v text;
BEGIN
	IF installer = (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = current_user) THEN
		RETURN;
	END IF;
	FOREACH v IN ARRAY ARRAY['crm.analyst_funnel', 'crm.analyst_stage_conversion', 'crm.analyst_retention',
							 'crm.analyst_churn', 'crm.analyst_rfm', 'crm.analyst_clv_model', 'crm.analyst_clv',
							 'crm.analyst_campaign', 'crm.analyst_pipeline'] LOOP
		EXECUTE format('ALTER VIEW %s OWNER TO %s', v, installer);
	END LOOP;
END $$;
