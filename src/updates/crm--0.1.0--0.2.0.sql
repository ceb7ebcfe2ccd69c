-- crm 0.1.0 -> 0.2.0: every change to the schema since 0.1.0, in the order
-- it was made.  Each later change goes here as well as into src/.
\echo Use "ALTER EXTENSION crm UPDATE TO '0.2.0'" to load this file. \quit

-- crm.schedule_maintenance(): the pg_cron jobs of the periodic work (src/schedule.sql)
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
-- crm.rfm takes bigint (issue 14, point 3, below): created here, before the
-- views that call it are replaced, so that they bind to it
CREATE FUNCTION crm.rfm(r bigint, f bigint, m bigint) RETURNS crm.rfm
	AS 'MODULE_PATHNAME', 'crm_rfm_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.rfm(bigint, bigint, bigint) IS 'RFM cell from three scores 1..5 (22023 when out of range)';

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
					crm.rfm(1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER (),
							1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER (),
							1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ()) AS rfm,
					percent_rank() OVER (ORDER BY sum(o.total)) AS value_rank
			   FROM crm."order" o
			  WHERE o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])
			  GROUP BY o.contact_id) v ON v.contact_id OPERATOR(pg_catalog.=) c.contact_id;
-- the view no longer calls crm.rfm(integer, integer, integer)
DROP FUNCTION crm.rfm(integer, integer, integer);

-- The tests of the row-level security policies (src/roles.c): no subqueries,
-- so that Citus accepts them on every shard.
CREATE FUNCTION crm.owned_by_me(owner text) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_owned_by_me' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.owned_by_me(text) IS
	'is the current user a member of the role named owner (directly or not; superusers are members of every role)? the contact policy of crm_sales';
CREATE FUNCTION crm.contact_visible(contact_id bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_contact_visible' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.contact_visible(bigint) IS
	'does the current user see this contact, under the contact table''s own policy? the policy of crm_sales on every table that points at contacts';
CREATE FUNCTION crm.company_has_my_contact(company_id bigint) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_company_has_my_contact' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.company_has_my_contact(bigint) IS
	'does the current user see a contact at this company? crm_sales reads such companies';

-- crm.setup_roles(): grants by explicit lists of relations per role (src/roles.sql)
-- instead of name patterns (five of which matched nothing) and ALL ... IN SCHEMA;
-- the same privileges on every object; its policies call
-- the functions above instead of subqueries
COMMENT ON FUNCTION crm.my_roles() IS
	'names of the roles the current user belongs to (itself included), for segment predicates such as owner = ANY (crm.my_roles()); the policies ask crm.owned_by_me';
CREATE OR REPLACE FUNCTION crm.setup_roles() RETURNS TABLE (object text, done text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
-- on Citus, one connection per node: the grants are DDL on the shards of
-- every table, one after another (a placeholder setting off Citus)
SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
	-- the contact and the tables that hang off it (row-level security below)
	data text := 'crm.contact, crm.activity, crm.deal, crm."order", crm.order_line, crm.task, crm.score_ledger, '
				 'crm.score_event, crm.stage_history, crm.campaign_target';
	-- rows the triggers derive, written as whoever writes the contact data
	derived text := 'crm.score_ledger, crm.score_event, crm.stage_history';
	lookup text := 'crm.channel, crm.lead_source, crm.product, crm.company, crm.merge_rule';
	config text := 'crm.score_group, crm.scoring_rule, crm.fit_rule, crm.lifecycle_policy, crm.product_rule';
	segments text := 'crm.segment, crm.segment_member, crm.segment_log, crm.segment_dirty, crm.campaign, crm.campaign_target';
	invoker_views text := 'crm.consent_current, crm.contact_profile, crm.contact_scores, crm.pipeline, crm.lead_cohorts, crm.product_rules, '
						 'crm.loyalty_monthly';
	analyst_views text := 'crm.analyst_contact, crm.analyst_activity, crm.analyst_order, crm.analyst_deal, '
						  'crm.analyst_funnel, crm.analyst_stage_conversion, crm.analyst_retention, crm.analyst_churn, '
						  'crm.analyst_rfm, crm.analyst_clv_model, crm.analyst_clv, crm.analyst_campaign, crm.analyst_pipeline';
	-- schema crm_bi (src/bi_views.sql): person views to the roles that may
	-- read every table under them, aggregate views (over the analyst views)
	-- to every role; SELECT only, though the simple ones are updatable
	bi_person_views text := 'crm_bi.contacts, crm_bi.activity_daily, crm_bi.orders, crm_bi.deals, '
							'crm_bi.stage_transitions, crm_bi.customer_clv, crm_bi.scores';
	bi_marketing_views text := 'crm_bi.segment_membership, crm_bi.campaign_results';
	bi_aggregate_views text := 'crm_bi.funnel_monthly, crm_bi.stage_conversion_monthly, crm_bi.cohort_retention, '
							   'crm_bi.churn_monthly, crm_bi.rfm_segments, crm_bi.clv_model, crm_bi.clv_distribution, '
							   'crm_bi.campaign_lift, crm_bi.pipeline, crm_bi.activity_totals_daily, '
							   'crm_bi.order_totals_monthly, crm_bi.deal_totals_monthly';
	sequences text := 'crm.activity_activity_id_seq, crm.campaign_campaign_id_seq, crm.company_company_id_seq, '
					  'crm.consent_consent_id_seq, crm.contact_contact_id_seq, crm.deal_deal_id_seq, '
					  'crm.erasure_log_erasure_id_seq, crm.merge_log_merge_id_seq, crm.order_order_id_seq, '
					  'crm.product_product_id_seq, crm.product_rule_rule_id_seq, crm.rule_id_seq, crm.segment_log_log_id_seq, '
					  'crm.segment_segment_id_seq, crm.stage_history_history_id_seq, crm.task_task_id_seq';
	-- loyalty (src/loyalty.sql): programmes and rewards are marketing's;
	-- the ledger is written by crm as its owner (src/loyalty.c), read by
	-- each role through its policies
	loyalty_config text := 'crm.loyalty_program, crm.loyalty_reward, crm.loyalty_tier, crm.earning_rule';
	loyalty_data text := 'crm.points_ledger, crm.points_draw, crm.points_lot, crm.points_balance, crm.loyalty_voucher, '
						 'crm.tier_history';
	loyalty_sequences text := 'crm.loyalty_program_program_id_seq, crm.loyalty_reward_reward_id_seq, crm.earning_rule_rule_id_seq';
	r record;
	rname text;
	stmt text;
	crm_roles CONSTANT text[] := ARRAY['crm_admin', 'crm_sales', 'crm_marketing', 'crm_analyst'];
	schema_grants CONSTANT text[] := ARRAY['GRANT USAGE ON SCHEMA crm, crm_bi TO crm_admin, crm_sales, crm_marketing, crm_analyst'];
	admin_grant text;
	grants text[];
	-- the grants on what each node has of its own (below)
	node_grants text[];
	bad text;
BEGIN
	IF NOT (SELECT rolsuper OR (rolcreaterole AND pg_has_role(current_user, c.relowner, 'USAGE'))
			  FROM pg_roles, pg_class c
			 WHERE rolname = current_user AND c.oid = 'crm.contact'::regclass) THEN
		RAISE EXCEPTION 'permission denied to set up crm roles'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'crm.setup_roles() creates roles and changes grants and policies on the crm tables.',
				  HINT = 'Run it as a superuser, or as the owner of the crm tables with CREATEROLE.';
	END IF;

	-- admin: every function the extension installs (the other roles run the
	-- ones PUBLIC may, and those granted by name below)
	admin_grant := (SELECT format('GRANT EXECUTE ON FUNCTION %s TO crm_admin',
						   string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid))
			   FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
			  WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
				AND d.refobjid = (SELECT e.oid FROM pg_extension e WHERE e.extname = 'crm') AND d.deptype = 'e');
	-- The grants, by name: one row per grantee and privileges, with the
	-- relations they are on.  A table, view or sequence added to crm gets no
	-- grant until it is listed here.
	SELECT array_agg(format('GRANT %s ON %s %s TO %s', v.privileges, v.kind, v.objects, v.grantees)),
		   array_agg(format('GRANT %s ON %s %s TO %s', v.privileges, v.kind, v.objects, v.grantees))
			 FILTER (WHERE v.kind <> 'TABLE')
	  INTO grants, node_grants
	  FROM (VALUES
		-- admin: everything
		('crm_admin', 'ALL', 'TABLE', data || ', ' || lookup || ', ' || config || ', ' || invoker_views || ', ' || analyst_views
			|| ', crm.consent, crm.segment, crm.segment_member, crm.segment_log, crm.segment_dirty, crm.campaign, '
			|| 'crm.merge_log, crm.erasure_log, crm.privacy_salt, crm._dump_begin, crm.zz_dump_end, '
			|| loyalty_config || ', ' || loyalty_data),
		('crm_admin', 'ALL', 'SEQUENCE', sequences || ', ' || loyalty_sequences || ', crm.points_ledger_entry_id_seq, crm.tier_history_history_id_seq'),
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
		('crm_sales', 'INSERT, UPDATE (moved, conflicts, in_progress)', 'TABLE', 'crm.merge_log'),
		-- the consent rows a merge in progress moves (the rep reads them on
		-- the kept contact anyway): crm.consent_append_only checks them
		('crm_sales', 'SELECT (moved_consent, in_progress)', 'TABLE', 'crm.merge_log'),
		('crm_sales', 'USAGE', 'SEQUENCE', sequences),
		('crm_sales', 'EXECUTE', 'FUNCTION', 'crm.merge_contacts(bigint, bigint, boolean)'),
		-- the triggers run as the writer: they read rules, policy and segment
		-- definitions, and write derived rows (scores, history, dirty marks);
		-- the dirty marks only need INSERT ... ON CONFLICT DO NOTHING (reading
		-- them would show which contacts of other reps change)
		('crm_sales, crm_marketing', 'SELECT', 'TABLE', config || ', crm.segment'),
		('crm_sales, crm_marketing', 'SELECT, INSERT, UPDATE, DELETE', 'TABLE', derived),
		('crm_sales, crm_marketing', 'INSERT', 'TABLE', 'crm.segment_dirty'),
		-- loyalty: points are read, never written, by the roles; a rep marks
		-- its contacts' vouchers used (crm.use_voucher)
		('crm_sales, crm_marketing', 'SELECT', 'TABLE', loyalty_config || ', ' || loyalty_data),
		('crm_sales', 'UPDATE (used_at, used_by)', 'TABLE', 'crm.loyalty_voucher'),
		('crm_marketing', 'INSERT, UPDATE, DELETE', 'TABLE', loyalty_config),
		('crm_marketing', 'USAGE', 'SEQUENCE', loyalty_sequences),
		-- marketing: reads contacts and their data, writes consent (opt-outs
		-- from campaigns) and owns the configuration of segments, campaigns
		-- and scoring rules
		('crm_marketing', 'SELECT', 'TABLE', data),
		('crm_marketing', 'SELECT, INSERT', 'TABLE', 'crm.consent'),
		('crm_marketing', 'SELECT, INSERT, UPDATE, DELETE', 'TABLE', segments || ', crm.scoring_rule, crm.fit_rule, crm.product_rule'),
		('crm_marketing', 'USAGE', 'SEQUENCE', sequences),
		-- analyst: the k-anonymous views only
		('crm_analyst', 'SELECT', 'TABLE', analyst_views),
		-- BI; the aggregate views read the analyst views (all but
		-- analyst_contact) with their reader's rights
		('crm_admin, crm_sales, crm_marketing', 'SELECT', 'TABLE', bi_person_views),
		('crm_admin, crm_marketing', 'SELECT', 'TABLE', bi_marketing_views),
		('crm_sales, crm_marketing', 'SELECT', 'TABLE', replace(analyst_views, 'crm.analyst_contact, ', '')),
		('crm_admin, crm_sales, crm_marketing, crm_analyst', 'SELECT', 'TABLE', bi_aggregate_views))
			v(grantees, privileges, kind, objects);

	-- On a Citus coordinator, the workers too: crm's schemas, sequences and
	-- functions belong to the extension each node installed, so Citus
	-- carries no grant on them to the workers (it does carry the roles, and
	-- the tables' grants and policies to their shards), and there the
	-- shards' triggers and policies run as the role that writes or reads.
	-- run_command_on_workers runs one statement outside this transaction,
	-- so before it touches the workers: the block creates the roles there
	-- first (Citus' propagation of CREATE ROLE below then finds them) and
	-- grants.
	IF EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'citus') THEN
		IF pg_catalog.citus_is_coordinator() THEN
			stmt := 'DO $crm$ BEGIN PERFORM pg_catalog.set_config(''citus.enable_ddl_propagation'', ''off'', true); '
					|| (SELECT string_agg(format('IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = %L) '
												 'THEN CREATE ROLE %I NOLOGIN; END IF; ', x, x), '')
						  FROM unnest(crm_roles) x)
					|| (SELECT string_agg(format('EXECUTE %L; ', g), '')
						  FROM unnest(schema_grants || admin_grant || node_grants) g)
					|| 'END $crm$';
			SELECT string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), ', ') INTO bad
			  FROM pg_catalog.run_command_on_workers(stmt) w
			 WHERE NOT w.success;
			IF bad IS NOT NULL THEN
				RAISE EXCEPTION 'could not grant on the workers: %', bad
					USING ERRCODE = 'object_not_in_prerequisite_state',
						  HINT = 'Install crm at this version on every worker, then call crm.setup_roles() again.';
			END IF;
		END IF;
	END IF;

	FOREACH rname IN ARRAY crm_roles LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = rname) THEN
			object := rname; done := 'role adopted'; RETURN NEXT;
		ELSE
			EXECUTE format('CREATE ROLE %I NOLOGIN', rname);
			object := rname; done := 'role created'; RETURN NEXT;
		END IF;
	END LOOP;
	FOREACH stmt IN ARRAY schema_grants || admin_grant || grants LOOP
		EXECUTE stmt;
	END LOOP;
	object := segments || ', crm.scoring_rule, crm.fit_rule'; done := 'granted to crm_marketing'; RETURN NEXT;
	REVOKE SELECT, UPDATE, DELETE ON crm.segment_dirty FROM crm_sales;
	REVOKE ALL ON crm.contact FROM crm_analyst;

	-- row-level security, one row per policy: the contact table by owner;
	-- every table that points at contacts through its contact; the tables
	-- that name contacts without a foreign key (a rep reads the companies it
	-- owns or has contacts at and changes those it owns, and reads the
	-- merges into and erasures of its contacts).  The tests are functions,
	-- not subqueries, which Citus refuses in a policy (src/roles.c); a policy
	-- already there gets its expressions again (0.1.0's had subqueries).
	FOR r IN
		SELECT p.rel, p.name, p.cmd, p.role, p.using_expr, p.check_expr, p.done
		  FROM (VALUES
				('crm.contact'::regclass, 'crm_sales_own', 'ALL', 'crm_sales', 'crm.owned_by_me(owner)',
				 'crm.owned_by_me(owner)', 'row-level security by owner'),
				('crm.contact', 'crm_admin_all', 'ALL', 'crm_admin', 'true', 'true', NULL),
				('crm.contact', 'crm_marketing_read', 'SELECT', 'crm_marketing', 'true', NULL, NULL))
				p(rel, name, cmd, role, using_expr, check_expr, done)
		UNION ALL
		SELECT t.table_name, p.*
		  FROM (SELECT DISTINCT f.table_name, format('crm.contact_visible(%I)', f.contact_column) AS test
				  FROM crm.contact_references() f) t,
			   LATERAL (VALUES
				('crm_sales_own', 'ALL', 'crm_sales', t.test, t.test, 'row-level security through the contact'),
				('crm_admin_all', 'ALL', 'crm_admin', 'true', 'true', NULL),
				('crm_marketing_all', 'ALL', 'crm_marketing', 'true', 'true', NULL)) p(name, cmd, role, using_expr, check_expr, done)
		UNION ALL
		SELECT t.rel, p.*
		  FROM (VALUES
				('crm.company'::regclass, 'crm.owned_by_me(owner) OR crm.company_has_my_contact(company_id)',
				 'crm.owned_by_me(owner)'),
				('crm.merge_log', 'crm.contact_visible(kept_id)', 'crm.contact_visible(kept_id)'),
				('crm.erasure_log', 'crm.contact_visible(contact_id)', 'false')) t(rel, reads, writes),
			   LATERAL (VALUES
				('crm_sales_read', 'SELECT', 'crm_sales', t.reads, NULL, 'row-level security through the contacts it names'),
				('crm_sales_own', 'ALL', 'crm_sales', t.writes, t.writes, NULL),
				('crm_admin_all', 'ALL', 'crm_admin', 'true', 'true', NULL),
				('crm_marketing_read', 'SELECT', 'crm_marketing', 'true', NULL, NULL)) p(name, cmd, role, using_expr, check_expr, done)
	LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.rel);
		IF EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.rel AND p.polname = r.name) THEN
			EXECUTE format('ALTER POLICY %I ON %s USING (%s)%s', r.name, r.rel, r.using_expr,
						   CASE WHEN r.check_expr IS NOT NULL THEN format(' WITH CHECK (%s)', r.check_expr) ELSE '' END);
		ELSE
			EXECUTE format('CREATE POLICY %I ON %s FOR %s TO %I USING (%s)%s', r.name, r.rel, r.cmd, r.role, r.using_expr,
						   CASE WHEN r.check_expr IS NOT NULL THEN format(' WITH CHECK (%s)', r.check_expr) ELSE '' END);
		END IF;
		IF r.done IS NOT NULL THEN
			object := r.rel::text; done := r.done; RETURN NEXT;
		END IF;
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

-- BI tools (issue 14): the comparison operators of crm.email and crm.rfm
-- move to pg_catalog, so they resolve whatever the search_path; e-mails
-- become text implicitly (LIKE, lower, length, min); email, rfm and stage
-- compare with text parameters.
ALTER OPERATOR crm.= (crm.email, crm.email) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.<> (crm.email, crm.email) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.< (crm.email, crm.email) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.<= (crm.email, crm.email) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.> (crm.email, crm.email) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.>= (crm.email, crm.email) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.= (crm.rfm, crm.rfm) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.<> (crm.rfm, crm.rfm) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.< (crm.rfm, crm.rfm) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.<= (crm.rfm, crm.rfm) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.> (crm.rfm, crm.rfm) SET SCHEMA pg_catalog;
ALTER OPERATOR crm.>= (crm.rfm, crm.rfm) SET SCHEMA pg_catalog;
DROP CAST (crm.email AS text);
CREATE CAST (crm.email AS text) WITHOUT FUNCTION AS IMPLICIT;

-- email = text, as a driver binds a string parameter (character varying)
-- or a user writes email = 'x'::text: the text is normalised as an address,
-- and text that is not one (a partial address) matches nothing instead of
-- raising 22P02.  The SQL bodies are inlined by the planner, so
-- "email = $1" becomes "email = crm.email_or_null($1)", which the unique
-- index on crm.contact.email serves.
CREATE FUNCTION crm.email_or_null(text) RETURNS crm.email
	AS 'MODULE_PATHNAME', 'crm_email_or_null' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.email_or_null(text) IS
	'text as a normalised e-mail address, NULL when it is not one (no error): the text side of email = text';
CREATE FUNCTION crm.email_eq_text(crm.email, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.=) crm.email_or_null($2);
CREATE FUNCTION crm.text_eq_email(text, crm.email) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN crm.email_or_null($1) OPERATOR(pg_catalog.=) $2;
CREATE FUNCTION crm.email_ne_text(crm.email, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN COALESCE($1 OPERATOR(pg_catalog.<>) crm.email_or_null($2), true);
CREATE FUNCTION crm.text_ne_email(text, crm.email) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN COALESCE(crm.email_or_null($1) OPERATOR(pg_catalog.<>) $2, true);
COMMENT ON FUNCTION crm.email_eq_text(crm.email, text) IS
	'implementation of email = text: the text normalised as an address; NULL (no match) when it is not one';
COMMENT ON FUNCTION crm.text_eq_email(text, crm.email) IS
	'implementation of text = email: the text normalised as an address; NULL (no match) when it is not one';
COMMENT ON FUNCTION crm.email_ne_text(crm.email, text) IS
	'implementation of email <> text: true when the text is not an address or another one';
COMMENT ON FUNCTION crm.text_ne_email(text, crm.email) IS
	'implementation of text <> email: true when the text is not an address or another one';
CREATE OPERATOR pg_catalog.= (
	LEFTARG = crm.email, RIGHTARG = text, FUNCTION = crm.email_eq_text,
	COMMUTATOR = OPERATOR(pg_catalog.=), NEGATOR = OPERATOR(pg_catalog.<>),
	RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.= (
	LEFTARG = text, RIGHTARG = crm.email, FUNCTION = crm.text_eq_email,
	COMMUTATOR = OPERATOR(pg_catalog.=), NEGATOR = OPERATOR(pg_catalog.<>),
	RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = crm.email, RIGHTARG = text, FUNCTION = crm.email_ne_text,
	COMMUTATOR = OPERATOR(pg_catalog.<>), NEGATOR = OPERATOR(pg_catalog.=),
	RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = text, RIGHTARG = crm.email, FUNCTION = crm.text_ne_email,
	COMMUTATOR = OPERATOR(pg_catalog.<>), NEGATOR = OPERATOR(pg_catalog.=),
	RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);

-- rfm = text, as a driver binds a string parameter: the text read as a cell
-- ('5-4-3'; 22P02 when it is not one), inlined so "rfm = $1" stays a
-- comparison of cells
CREATE FUNCTION crm.rfm_eq_text(crm.rfm, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.=) $2::crm.rfm;
CREATE FUNCTION crm.rfm_ne_text(crm.rfm, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.<>) $2::crm.rfm;
COMMENT ON FUNCTION crm.rfm_eq_text(crm.rfm, text) IS 'implementation of rfm = text: the text read as an RFM cell';
COMMENT ON FUNCTION crm.rfm_ne_text(crm.rfm, text) IS 'implementation of rfm <> text: the text read as an RFM cell';
CREATE OPERATOR pg_catalog.= (
	LEFTARG = crm.rfm, RIGHTARG = text, FUNCTION = crm.rfm_eq_text,
	NEGATOR = OPERATOR(pg_catalog.<>), RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = crm.rfm, RIGHTARG = text, FUNCTION = crm.rfm_ne_text,
	NEGATOR = OPERATOR(pg_catalog.=), RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);

-- ---------------------------------------------------------------------------
-- Column comments: what every column of crm's tables and views holds, its
-- unit or time zone and its allowed values.  BI tools show them as column
-- REMARKS (JDBC DatabaseMetaData.getColumns); test/pgtap/comments.sql fails
-- when a column has none.  Comments written with their tables stay there.
-- ---------------------------------------------------------------------------
COMMENT ON COLUMN crm._dump_begin.id IS 'always true: the one row''s key (the marker row is never stored; see the table comment)';
COMMENT ON COLUMN crm.zz_dump_end.id IS 'always true: the one row''s key (the marker row is never stored; see the table comment)';
COMMENT ON COLUMN crm.activity.contact_id IS 'the contact the activity belongs to (crm.contact)';
COMMENT ON COLUMN crm.activity.activity_id IS 'activity id, unique with contact_id';
COMMENT ON COLUMN crm.activity.kind IS 'what happened, a lowercase identifier (page_view, form_submit, email_open, email_click, meeting_booked...)';
COMMENT ON COLUMN crm.activity.occurred_at IS 'when it happened (timestamptz, an instant; default: time of insert)';
COMMENT ON COLUMN crm.activity.properties IS 'details of the activity as a JSON object (url, form, campaign_id...); scoring conditions read it';
COMMENT ON COLUMN crm.analyst_activity.kind IS 'activity kind';
COMMENT ON COLUMN crm.analyst_activity.occurred_on IS 'day the activities occurred, in UTC';
COMMENT ON COLUMN crm.analyst_activity.activities IS 'number of activities of this kind on this day';
COMMENT ON COLUMN crm.analyst_activity.contacts IS 'number of distinct contacts with such an activity that day (5 or more)';
COMMENT ON COLUMN crm.analyst_contact.country IS 'ISO 3166 alpha-2 country code; NULL when unknown or withheld';
COMMENT ON COLUMN crm.analyst_contact.stage IS 'lifecycle stage; NULL when withheld';
COMMENT ON COLUMN crm.analyst_contact.age_band IS 'age today (UTC): under 25, 25-34, 35-44, 45-54, 55-64, 65 and over; NULL when unknown or withheld';
COMMENT ON COLUMN crm.analyst_contact.income_band IS 'low, lower_middle, middle, upper_middle or high; NULL when unknown or withheld';
COMMENT ON COLUMN crm.analyst_contact.do_not_contact IS 'true when the contact is flagged do-not-contact; NULL when withheld';
COMMENT ON COLUMN crm.analyst_contact.lead_source IS 'lead source (crm.lead_source); NULL when unknown or withheld';
COMMENT ON COLUMN crm.analyst_contact.company_industry IS 'industry of the contact''s company; NULL when unknown or withheld';
COMMENT ON COLUMN crm.analyst_contact.created_quarter IS 'first day of the quarter (UTC) the contact was created; NULL when withheld';
COMMENT ON COLUMN crm.analyst_contact.withheld IS 'how many of the columns, counted from created_quarter backwards to country, are withheld as NULL (0 to 8)';
COMMENT ON COLUMN crm.analyst_deal.created_month IS 'first day of the month (UTC) the deals were created';
COMMENT ON COLUMN crm.analyst_deal.pipeline_stage IS 'pipeline stage of the deals';
COMMENT ON COLUMN crm.analyst_deal.status IS 'open, won or lost';
COMMENT ON COLUMN crm.analyst_deal.currency IS 'ISO 4217 currency code of amount';
COMMENT ON COLUMN crm.analyst_deal.deals IS 'number of deals in the cell';
COMMENT ON COLUMN crm.analyst_deal.contacts IS 'number of distinct contacts with a deal in the cell (5 or more)';
COMMENT ON COLUMN crm.analyst_deal.amount IS 'sum of the deal amounts, in currency';
COMMENT ON COLUMN crm.analyst_deal.weighted_amount IS 'sum of amount x probability, in currency, rounded to 2 decimals';
COMMENT ON COLUMN crm.analyst_order.ordered_month IS 'first day of the month (UTC) the orders were placed';
COMMENT ON COLUMN crm.analyst_order.status IS 'placed, paid, shipped, cancelled or refunded';
COMMENT ON COLUMN crm.analyst_order.currency IS 'ISO 4217 currency code of total';
COMMENT ON COLUMN crm.analyst_order.orders IS 'number of orders in the cell';
COMMENT ON COLUMN crm.analyst_order.contacts IS 'number of distinct contacts with an order in the cell (5 or more)';
COMMENT ON COLUMN crm.analyst_order.total IS 'sum of the order totals, in currency';
COMMENT ON COLUMN crm.analyst_order.items IS 'sum of the orders'' item counts (NULL counts as nothing)';
COMMENT ON COLUMN crm.campaign.campaign_id IS 'campaign id';
COMMENT ON COLUMN crm.campaign.name IS 'unique name of the campaign, not empty';
COMMENT ON COLUMN crm.campaign.channel IS 'channel the campaign contacts on (crm.channel); targets need consent for it';
COMMENT ON COLUMN crm.campaign.segment_id IS 'segment whose members are the audience (crm.segment)';
COMMENT ON COLUMN crm.campaign.starts_at IS 'start of the campaign window (timestamptz)';
COMMENT ON COLUMN crm.campaign.ends_at IS 'end of the campaign window (timestamptz, after starts_at); NULL = open-ended';
COMMENT ON COLUMN crm.campaign.cost IS 'cost of the campaign, 0 or more, for return on cost';
COMMENT ON COLUMN crm.campaign.holdout_share IS 'share of targets held out as control group, from 0 (none) to below 1';
COMMENT ON COLUMN crm.campaign.created_at IS 'when the campaign was created (timestamptz)';
COMMENT ON COLUMN crm.campaign_target.contact_id IS 'the selected contact (crm.contact)';
COMMENT ON COLUMN crm.campaign_target.campaign_id IS 'the campaign (crm.campaign)';
COMMENT ON COLUMN crm.campaign_target.holdout IS 'true: held out as control group, not to be contacted; false: to be contacted';
COMMENT ON COLUMN crm.campaign_target.selected_at IS 'when crm.campaign_targets selected the contact (timestamptz)';
COMMENT ON COLUMN crm.channel.channel IS 'channel or purpose name, a lowercase identifier (email, phone, sms, post, profiling...)';
COMMENT ON COLUMN crm.channel.description IS 'what the channel is';
COMMENT ON COLUMN crm.channel.builtin IS 'true for the rows crm installs (a dump restores them as edited)';
COMMENT ON COLUMN crm.company.company_id IS 'company id';
COMMENT ON COLUMN crm.company.name IS 'company name, not empty';
COMMENT ON COLUMN crm.company.domain IS 'web domain, lowercase host name; unique';
COMMENT ON COLUMN crm.company.industry IS 'industry, free text';
COMMENT ON COLUMN crm.company.employees IS 'number of employees, 0 or more';
COMMENT ON COLUMN crm.company.annual_revenue IS 'annual revenue, 0 or more (currency not recorded)';
COMMENT ON COLUMN crm.company.country IS 'ISO 3166 alpha-2 country code, upper case (DE, US...)';
COMMENT ON COLUMN crm.company.owner IS 'database role of the sales rep who owns the company (default: the inserting role)';
COMMENT ON COLUMN crm.company.created_at IS 'when the row was created (timestamptz)';
COMMENT ON COLUMN crm.company.updated_at IS 'time of the last update as the application sets it (timestamptz); defaults to the creation time, no trigger maintains it';
COMMENT ON COLUMN crm.consent.contact_id IS 'the contact the consent row is for (crm.contact)';
COMMENT ON COLUMN crm.consent.consent_id IS 'consent row id, unique with contact_id; breaks ties of recorded_at';
COMMENT ON COLUMN crm.consent.channel IS 'channel or purpose consented to (crm.channel)';
COMMENT ON COLUMN crm.consent.status IS 'granted, denied or revoked';
COMMENT ON COLUMN crm.consent.recorded_at IS 'when the consent was given or withdrawn (timestamptz); the latest row per channel is in force';
COMMENT ON COLUMN crm.consent.valid_until IS 'when a grant expires (timestamptz, after recorded_at); NULL = no expiry';
COMMENT ON COLUMN crm.consent.source IS 'where the consent was collected (form, import...), free text';
COMMENT ON COLUMN crm.consent.actor IS 'database role that recorded the row (default: the inserting role)';
COMMENT ON COLUMN crm.consent.note IS 'free-text note; cleared by crm.forget_contact';
COMMENT ON COLUMN crm.consent_current.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.consent_current.channel IS 'channel or purpose (crm.channel)';
COMMENT ON COLUMN crm.consent_current.status IS 'status of the latest row: granted, denied or revoked';
COMMENT ON COLUMN crm.consent_current.recorded_at IS 'when the latest row was recorded (timestamptz)';
COMMENT ON COLUMN crm.consent_current.valid_until IS 'when the latest grant expires (timestamptz); NULL = no expiry';
COMMENT ON COLUMN crm.consent_current.source IS 'where the latest consent was collected';
COMMENT ON COLUMN crm.consent_current.effective IS 'true when the latest row is granted and not expired now';
COMMENT ON COLUMN crm.contact.contact_id IS 'contact id';
COMMENT ON COLUMN crm.contact.email IS 'e-mail address (crm.email, normalised); mandatory and unique whatever the case';
COMMENT ON COLUMN crm.contact.first_name IS 'first name';
COMMENT ON COLUMN crm.contact.last_name IS 'last name';
COMMENT ON COLUMN crm.contact.phone IS 'telephone number: an optional +, a digit, then 3 to 30 digits, spaces or ( ) . -';
COMMENT ON COLUMN crm.contact.city IS 'city';
COMMENT ON COLUMN crm.contact.region IS 'region or state';
COMMENT ON COLUMN crm.contact.country IS 'ISO 3166 alpha-2 country code, upper case (DE, US...)';
COMMENT ON COLUMN crm.contact.birth_date IS 'date of birth, 1900-01-01 or later';
COMMENT ON COLUMN crm.contact.income_band IS 'low, lower_middle, middle, upper_middle or high';
COMMENT ON COLUMN crm.contact.company_id IS 'the company the contact works for (crm.company); NULL when none';
COMMENT ON COLUMN crm.contact.job_title IS 'job title';
COMMENT ON COLUMN crm.contact.lead_source IS 'where the lead came from (crm.lead_source); sets the initial stage';
COMMENT ON COLUMN crm.contact.stage IS 'lifecycle stage (crm.stage); moves forward only, logged in crm.stage_history';
COMMENT ON COLUMN crm.contact.attrs IS 'further attributes as a JSON object; fit rules read them as $.attrs';
COMMENT ON COLUMN crm.contact.created_at IS 'when the contact was created (timestamptz)';
COMMENT ON COLUMN crm.contact.updated_at IS 'when the contact was last updated (timestamptz, set by trigger)';
COMMENT ON COLUMN crm.contact_profile.contact_id IS 'contact id';
COMMENT ON COLUMN crm.contact_profile.email IS 'e-mail address (crm.email)';
COMMENT ON COLUMN crm.contact_profile.first_name IS 'first name';
COMMENT ON COLUMN crm.contact_profile.last_name IS 'last name';
COMMENT ON COLUMN crm.contact_profile.phone IS 'telephone number';
COMMENT ON COLUMN crm.contact_profile.city IS 'city';
COMMENT ON COLUMN crm.contact_profile.region IS 'region or state';
COMMENT ON COLUMN crm.contact_profile.country IS 'ISO 3166 alpha-2 country code';
COMMENT ON COLUMN crm.contact_profile.birth_date IS 'date of birth';
COMMENT ON COLUMN crm.contact_profile.age IS 'age in whole years today (session time zone); NULL without birth_date';
COMMENT ON COLUMN crm.contact_profile.income_band IS 'low, lower_middle, middle, upper_middle or high';
COMMENT ON COLUMN crm.contact_profile.job_title IS 'job title';
COMMENT ON COLUMN crm.contact_profile.lead_source IS 'lead source (crm.lead_source)';
COMMENT ON COLUMN crm.contact_profile.owner IS 'database role of the sales rep who owns the contact';
COMMENT ON COLUMN crm.contact_profile.stage IS 'lifecycle stage (crm.stage)';
COMMENT ON COLUMN crm.contact_profile.do_not_contact IS 'unsubscribed, bounced or manual; NULL = may be contacted';
COMMENT ON COLUMN crm.contact_profile.attrs IS 'further attributes (JSON object)';
COMMENT ON COLUMN crm.contact_profile.created_at IS 'when the contact was created (timestamptz)';
COMMENT ON COLUMN crm.contact_profile.updated_at IS 'when the contact was last updated (timestamptz)';
COMMENT ON COLUMN crm.contact_profile.company_id IS 'company id (crm.company); NULL when none';
COMMENT ON COLUMN crm.contact_profile.company_name IS 'company name';
COMMENT ON COLUMN crm.contact_profile.company_domain IS 'company web domain';
COMMENT ON COLUMN crm.contact_profile.company_industry IS 'company industry';
COMMENT ON COLUMN crm.contact_profile.company_employees IS 'company''s number of employees';
COMMENT ON COLUMN crm.contact_profile.company_annual_revenue IS 'company''s annual revenue';
COMMENT ON COLUMN crm.contact_profile.company_country IS 'company''s ISO 3166 alpha-2 country code';
COMMENT ON COLUMN crm.contact_profile.order_count IS 'number of orders, not counting cancelled or refunded ones';
COMMENT ON COLUMN crm.contact_profile.lifetime_value IS 'sum of order totals, not counting cancelled or refunded orders; 0 without orders';
COMMENT ON COLUMN crm.contact_profile.first_order_at IS 'time of the first order not cancelled or refunded (timestamptz); NULL without';
COMMENT ON COLUMN crm.contact_profile.last_order_at IS 'time of the latest order not cancelled or refunded (timestamptz); NULL without';
COMMENT ON COLUMN crm.contact_profile.recency_days IS 'whole days since last_order_at; NULL without orders';
COMMENT ON COLUMN crm.contact_profile.rfm IS 'RFM cell (crm.rfm): recency, frequency, monetary quintiles 1..5 among customers; NULL without orders';
COMMENT ON COLUMN crm.contact_profile.rfm_segment IS 'RFM segment name of rfm (crm.rfm_segment); NULL without orders';
COMMENT ON COLUMN crm.contact_profile.value_rank IS 'percent_rank of lifetime value among customers, 0 to 1; NULL without orders';
COMMENT ON COLUMN crm.contact_profile.activity_count IS 'number of activities, all time';
COMMENT ON COLUMN crm.contact_profile.last_activity_at IS 'time of the latest activity (timestamptz); NULL without';
COMMENT ON COLUMN crm.contact_profile.consent_email IS 'e-mail consent now: latest row granted and unexpired';
COMMENT ON COLUMN crm.contact_profile.consent_phone IS 'phone consent now: latest row granted and unexpired';
COMMENT ON COLUMN crm.contact_profile.consent_sms IS 'sms consent now: latest row granted and unexpired';
COMMENT ON COLUMN crm.contact_profile.consent_post IS 'post consent now: latest row granted and unexpired';
COMMENT ON COLUMN crm.contact_profile.consent_profiling IS 'profiling consent now: latest row granted and unexpired';
COMMENT ON COLUMN crm.contact_profile.engagement_score IS 'engagement score now (crm.score, group engagement)';
COMMENT ON COLUMN crm.contact_profile.fit_score IS 'fit score now (crm.score, group fit)';
COMMENT ON COLUMN crm.contact_profile.grade IS 'combined fit x engagement grade now, A1 (best) to D4 (crm.grade)';
COMMENT ON COLUMN crm.contact_scores.contact_id IS 'contact id';
COMMENT ON COLUMN crm.contact_scores.score_group IS 'score group (crm.score_group)';
COMMENT ON COLUMN crm.contact_scores.score IS 'current score of the contact in the group (crm.score)';
COMMENT ON COLUMN crm.deal.contact_id IS 'the contact the deal is with (crm.contact)';
COMMENT ON COLUMN crm.deal.deal_id IS 'deal id, unique with contact_id';
COMMENT ON COLUMN crm.deal.company_id IS 'the company the deal is with (crm.company); optional';
COMMENT ON COLUMN crm.deal.title IS 'what the deal is about, not empty';
COMMENT ON COLUMN crm.deal.pipeline_stage IS 'sales pipeline stage, free text (default qualification)';
COMMENT ON COLUMN crm.deal.amount IS 'deal value in currency, 0 or more';
COMMENT ON COLUMN crm.deal.currency IS 'ISO 4217 currency code of amount (default USD)';
COMMENT ON COLUMN crm.deal.probability IS 'probability of winning, 0 to 1';
COMMENT ON COLUMN crm.deal.expected_close IS 'expected closing date';
COMMENT ON COLUMN crm.deal.status IS 'open, won or lost';
COMMENT ON COLUMN crm.deal.owner IS 'database role of the sales rep who owns the deal (default: the inserting role)';
COMMENT ON COLUMN crm.deal.created_at IS 'when the deal was created (timestamptz)';
COMMENT ON COLUMN crm.deal.closed_at IS 'when the deal was won or lost (timestamptz); set exactly when status is not open';
COMMENT ON COLUMN crm.erasure_log.erasure_id IS 'erasure id';
COMMENT ON COLUMN crm.erasure_log.contact_id IS 'id of the erased contact (one row per contact)';
COMMENT ON COLUMN crm.erasure_log.erased_at IS 'when the contact was erased (timestamptz)';
COMMENT ON COLUMN crm.erasure_log.erased_by IS 'database role that ran crm.forget_contact';
COMMENT ON COLUMN crm.erasure_log.reason IS 'why the contact was erased, not empty';
COMMENT ON COLUMN crm.erasure_log.email_hash IS 'salted SHA-256 of the erased address (crm.salted_email_hash) when kept to block re-adding; else NULL';
COMMENT ON COLUMN crm.erasure_log.details IS 'counts of what was redacted (activities_stripped, deals_redacted, tasks_redacted, consent_notes_cleared, merge_logs_redacted) and email_hash_kept';
COMMENT ON COLUMN crm.fit_rule.rule_id IS 'rule id, shared sequence with crm.scoring_rule';
COMMENT ON COLUMN crm.fit_rule.name IS 'rule name, not empty';
COMMENT ON COLUMN crm.fit_rule.score_group IS 'score group the points go to (crm.score_group, default fit)';
COMMENT ON COLUMN crm.fit_rule.condition IS 'jsonpath condition on the contact profile (contact columns, $.attrs, $.company)';
COMMENT ON COLUMN crm.fit_rule.points IS 'points while the condition holds; may be negative, finite';
COMMENT ON COLUMN crm.fit_rule.active IS 'false: the rule is ignored';
COMMENT ON COLUMN crm.fit_rule.created_at IS 'when the rule was created (timestamptz)';
COMMENT ON COLUMN crm.lead_source.source IS 'lead source name, a lowercase identifier (form, newsletter, webinar...)';
COMMENT ON COLUMN crm.lead_source.initial_stage IS 'stage a new contact from this source starts at: subscriber or lead';
COMMENT ON COLUMN crm.lead_source.description IS 'what the source is';
COMMENT ON COLUMN crm.lead_source.builtin IS 'true for the rows crm installs (a dump restores them as edited)';
COMMENT ON COLUMN crm.lifecycle_policy.id IS 'always true: the key of the one row';
COMMENT ON COLUMN crm.lifecycle_policy.engagement_group IS 'score group used as engagement (crm.score_group, default engagement)';
COMMENT ON COLUMN crm.lifecycle_policy.fit_group IS 'score group used as fit (crm.score_group, default fit)';
COMMENT ON COLUMN crm.lifecycle_policy.mql_min_engagement IS 'engagement score needed for mql (default 50); NULL = not required';
COMMENT ON COLUMN crm.lifecycle_policy.mql_min_fit IS 'fit score needed for mql (default 20); NULL = not required';
COMMENT ON COLUMN crm.lifecycle_policy.sql_min_engagement IS 'engagement score needed for sql (default 100, not below the mql one); NULL = not required';
COMMENT ON COLUMN crm.lifecycle_policy.sql_min_fit IS 'fit score needed for sql (default 40, not below the mql one); NULL = not required';
COMMENT ON COLUMN crm.lifecycle_policy.sql_acceptance_kinds IS 'activity kinds that mean sales accepted the lead: move to sql (default meeting_booked, sales_accepted)';
COMMENT ON COLUMN crm.lifecycle_policy.churn_after IS 'a customer or evangelist with no order nor won deal for this long churns (crm.detect_churn; positive, default 365 days)';
COMMENT ON COLUMN crm.lifecycle_policy.revive_churned IS 'true: an order or won deal moves a churned contact back to customer (default true)';
COMMENT ON COLUMN crm.merge_log.merge_id IS 'merge id';
COMMENT ON COLUMN crm.merge_log.kept_id IS 'id of the contact kept';
COMMENT ON COLUMN crm.merge_log.dropped_id IS 'id of the contact merged away (deleted); not kept_id';
COMMENT ON COLUMN crm.merge_log.merged_at IS 'when the merge ran (timestamptz)';
COMMENT ON COLUMN crm.merge_log.merged_by IS 'database role that ran crm.merge_contacts';
COMMENT ON COLUMN crm.merge_log.txid IS 'transaction id of the merge (txid_current())';
COMMENT ON COLUMN crm.merge_log.dropped_row IS 'before-image of the dropped contact as JSON';
COMMENT ON COLUMN crm.merge_log.kept_row IS 'before-image of the kept contact as JSON';
COMMENT ON COLUMN crm.merge_log.moved IS 'JSON array, one object per table: table, action and rows affected';
COMMENT ON COLUMN crm.merge_log.conflicts IS 'JSON array of before-images of the dropped contact''s rows removed on key clashes or deleted';
COMMENT ON COLUMN crm.merge_rule.table_name IS 'table whose rows point at a contact';
COMMENT ON COLUMN crm.merge_rule.contact_column IS 'column of that table holding the contact id (default contact_id)';
COMMENT ON COLUMN crm.merge_rule.action IS 'move (default), delete or function';
COMMENT ON COLUMN crm.merge_rule.merge_function IS 'function(keep bigint, drop bigint) called when action is function; NULL otherwise';
COMMENT ON COLUMN crm.merge_rule.note IS 'why the table has this rule';
COMMENT ON COLUMN crm."order".contact_id IS 'the contact who ordered (crm.contact)';
COMMENT ON COLUMN crm."order".order_id IS 'order id, unique with contact_id';
COMMENT ON COLUMN crm."order".ordered_at IS 'when the order was placed (timestamptz)';
COMMENT ON COLUMN crm."order".status IS 'placed, paid, shipped, cancelled or refunded';
COMMENT ON COLUMN crm."order".currency IS 'ISO 4217 currency code of total (default USD)';
COMMENT ON COLUMN crm."order".total IS 'order total in currency, 0 or more';
COMMENT ON COLUMN crm."order".items IS 'number of items, positive; optional';
COMMENT ON COLUMN crm."order".external_ref IS 'the order''s id in the shop or source system';
COMMENT ON COLUMN crm.order_line.contact_id IS 'the contact who ordered (with order_id: crm."order")';
COMMENT ON COLUMN crm.order_line.order_id IS 'the order (with contact_id: crm."order")';
COMMENT ON COLUMN crm.order_line.line_no IS 'line number within the order, positive';
COMMENT ON COLUMN crm.order_line.product_id IS 'the product (crm.product)';
COMMENT ON COLUMN crm.order_line.quantity IS 'quantity, positive (default 1)';
COMMENT ON COLUMN crm.order_line.unit_price IS 'price of one unit in the order''s currency, 0 or more';
COMMENT ON COLUMN crm.pipeline.pipeline_stage IS 'pipeline stage of the open deals';
COMMENT ON COLUMN crm.pipeline.deals IS 'number of open deals in the stage';
COMMENT ON COLUMN crm.pipeline.amount IS 'sum of their amounts (currencies not converted)';
COMMENT ON COLUMN crm.pipeline.weighted_amount IS 'sum of amount x probability, rounded to 2 decimals (currencies not converted)';
COMMENT ON COLUMN crm.privacy_salt.id IS 'always true: the key of the one row';
COMMENT ON COLUMN crm.privacy_salt.salt IS 'secret salt of the e-mail hashes in crm.erasure_log';
COMMENT ON COLUMN crm.product.product_id IS 'product id';
COMMENT ON COLUMN crm.product.sku IS 'stock keeping unit, unique';
COMMENT ON COLUMN crm.product.name IS 'product name';
COMMENT ON COLUMN crm.product.category IS 'product category';
COMMENT ON COLUMN crm.product.price IS 'list price, 0 or more';
COMMENT ON COLUMN crm.product.active IS 'false: no longer sold';
COMMENT ON COLUMN crm.score_event.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.score_event.rule_id IS 'the windowed rule that matched (crm.scoring_rule)';
COMMENT ON COLUMN crm.score_event.score_group IS 'score group of the rule';
COMMENT ON COLUMN crm.score_event.occurred_at IS 'when the matching activity occurred (timestamptz)';
COMMENT ON COLUMN crm.score_event.points IS 'points of the match';
COMMENT ON COLUMN crm.score_group.score_group IS 'score group name, a lowercase identifier (fit, engagement...)';
COMMENT ON COLUMN crm.score_group.half_life IS 'half-life of exponential decay of the points (positive); NULL = no decay';
COMMENT ON COLUMN crm.score_group.cap IS 'maximum of the score; NULL = no cap';
COMMENT ON COLUMN crm.score_group.grade_labels IS 'grade names, best first (fit: A..D, engagement: 1..4)';
COMMENT ON COLUMN crm.score_group.description IS 'what the score measures';
COMMENT ON COLUMN crm.score_group.builtin IS 'true for the rows crm installs (a dump restores them as edited)';
COMMENT ON COLUMN crm.score_ledger.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.score_ledger.rule_id IS 'the rule (crm.scoring_rule or crm.fit_rule)';
COMMENT ON COLUMN crm.score_ledger.score_group IS 'score group of the rule';
COMMENT ON COLUMN crm.score_ledger.hits IS 'number of matches counted';
COMMENT ON COLUMN crm.score_ledger.raw_points IS 'sum of the points without decay (a once rule counts one match)';
COMMENT ON COLUMN crm.score_ledger.value IS 'decayed sum of the points as of as_of';
COMMENT ON COLUMN crm.score_ledger.as_of IS 'the time value is valid at (timestamptz)';
COMMENT ON COLUMN crm.score_ledger.once IS 'the rule counts only its earliest match';
COMMENT ON COLUMN crm.score_ledger.half_life_us IS 'the group''s half-life in microseconds when written; 0 = no decay';
COMMENT ON COLUMN crm.scoring_rule.rule_id IS 'rule id, shared sequence with crm.fit_rule';
COMMENT ON COLUMN crm.scoring_rule.name IS 'rule name, not empty';
COMMENT ON COLUMN crm.scoring_rule.score_group IS 'score group the points go to (crm.score_group, default engagement)';
COMMENT ON COLUMN crm.scoring_rule.activity_kind IS 'activity kind the rule matches; NULL = any kind';
COMMENT ON COLUMN crm.scoring_rule.condition IS 'jsonpath condition on the activity''s properties; NULL = always';
COMMENT ON COLUMN crm.scoring_rule.points IS 'points per match; may be negative, finite';
COMMENT ON COLUMN crm.scoring_rule.once IS 'true: only the earliest match counts (the latest inside the window for windowed rules)';
COMMENT ON COLUMN crm.scoring_rule."window" IS 'only matches within this interval before the scoring time count (positive); NULL = all time';
COMMENT ON COLUMN crm.scoring_rule.active IS 'false: the rule is ignored';
COMMENT ON COLUMN crm.scoring_rule.created_at IS 'when the rule was created (timestamptz)';
COMMENT ON COLUMN crm.segment.segment_id IS 'segment id';
COMMENT ON COLUMN crm.segment.name IS 'unique segment name, not empty';
COMMENT ON COLUMN crm.segment.kind IS 'static (a list) or dynamic (a predicate)';
COMMENT ON COLUMN crm.segment.predicate IS 'boolean SQL expression over crm.contact_profile columns; set exactly when kind is dynamic';
COMMENT ON COLUMN crm.segment.description IS 'what the segment is for';
COMMENT ON COLUMN crm.segment.created_at IS 'when the segment was created (timestamptz)';
COMMENT ON COLUMN crm.segment.refreshed_at IS 'when the last refresh ran (timestamptz); NULL before the first';
COMMENT ON COLUMN crm.segment.last_full IS 'whether the last refresh re-evaluated every contact';
COMMENT ON COLUMN crm.segment.last_evaluated IS 'number of contacts the last refresh evaluated';
COMMENT ON COLUMN crm.segment.last_entered IS 'number of contacts that entered at the last refresh';
COMMENT ON COLUMN crm.segment.last_exited IS 'number of contacts that exited at the last refresh';
COMMENT ON COLUMN crm.segment_dirty.contact_id IS 'a contact changed since segments were last refreshed';
COMMENT ON COLUMN crm.segment_dirty.xid IS 'transaction that changed it';
COMMENT ON COLUMN crm.segment_log.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.segment_log.log_id IS 'log row id, unique with contact_id';
COMMENT ON COLUMN crm.segment_log.segment_id IS 'the segment (crm.segment)';
COMMENT ON COLUMN crm.segment_log.change IS 'enter or exit';
COMMENT ON COLUMN crm.segment_log.at IS 'time of the refresh or list change that made it (timestamptz)';
COMMENT ON COLUMN crm.segment_member.contact_id IS 'the member (crm.contact)';
COMMENT ON COLUMN crm.segment_member.segment_id IS 'the segment (crm.segment)';
COMMENT ON COLUMN crm.segment_member.since IS 'when the contact entered the segment (timestamptz)';
COMMENT ON COLUMN crm.stage_history.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.stage_history.history_id IS 'transition id, unique with contact_id; orders transitions at the same time';
COMMENT ON COLUMN crm.stage_history.from_stage IS 'stage before the transition; NULL for a new contact''s first stage';
COMMENT ON COLUMN crm.stage_history.to_stage IS 'stage after the transition';
COMMENT ON COLUMN crm.stage_history.changed_at IS 'when the transition happened in the world: the time of the activity, order or deal that caused it, the end of the churn window, the time given to crm.set_stage (default: the clock), a new contact''s created_at; never in the future, never before the previous transition';
COMMENT ON COLUMN crm.stage_history.reason IS 'why: the rule that promoted (e.g. sales acceptance activity) or the reason given to crm.set_stage';
COMMENT ON COLUMN crm.stage_history.actor IS 'database role whose statement made the transition (current_user)';
COMMENT ON COLUMN crm.stage_history.automatic IS 'true: made by the lifecycle policy; false: by hand';
COMMENT ON COLUMN crm.stage_history.forced IS 'true: a backward move made with crm.set_stage(..., force => true)';
COMMENT ON COLUMN crm.task.contact_id IS 'the contact the task is about (crm.contact)';
COMMENT ON COLUMN crm.task.task_id IS 'task id, unique with contact_id';
COMMENT ON COLUMN crm.task.deal_id IS 'the deal the task is about (with contact_id: crm.deal); optional';
COMMENT ON COLUMN crm.task.title IS 'what to do, not empty';
COMMENT ON COLUMN crm.task.due_at IS 'when it is due (timestamptz); optional';
COMMENT ON COLUMN crm.task.done_at IS 'when it was done (timestamptz); NULL = open';
COMMENT ON COLUMN crm.task.note IS 'free-text note';
COMMENT ON COLUMN crm.task.owner IS 'database role of the sales rep the task is for (default: the inserting role)';
COMMENT ON COLUMN crm.task.created_at IS 'when the task was created (timestamptz)';

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
		   crm.rfm(1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER (),
				   1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER (),
				   1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ()) AS rfm
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

-- The CLV fitting aggregates: their state is bytea (an expanded object in
-- memory, src/clv_fit.c) instead of internal, so that Citus computes them
-- as partial aggregates on its workers.  An aggregate's state type cannot
-- be altered: the aggregates and their support functions are made again
-- (no object depends on them yet: the views that fit come below).
DO $drop_fits$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM (VALUES
		('bgnbd', 'float8, float8, float8'), ('mbgnbd', 'float8, float8, float8'),
		('paretonbd', 'float8, float8, float8'), ('gammagamma', 'float8, float8'),
		('bgbb', 'float8, float8, float8')) AS v(name, args)
	LOOP
		EXECUTE pg_catalog.format('DROP AGGREGATE crm.%1$s_fit(%2$s); DROP AGGREGATE crm.%1$s_fit(%2$s, float8); DROP FUNCTION crm.%1$s_final(internal);',
								  m.name, m.args);
	END LOOP;
END
$drop_fits$;
DROP FUNCTION crm.clv_rfm_trans(internal, float8, float8, float8), crm.clv_rfm_trans(internal, float8, float8, float8, float8),
	crm.clv_spend_trans(internal, float8, float8), crm.clv_spend_trans(internal, float8, float8, float8),
	crm.clv_discrete_trans(internal, float8, float8, float8), crm.clv_discrete_trans(internal, float8, float8, float8, float8),
	crm.clv_rows_combine(internal, internal), crm.clv_rows_serialize(internal), crm.clv_rows_deserialize(bytea, internal);
-- Fitting aggregates: a state of distinct rows, as bytea (its flat form):
-- Citus computes partial aggregates on its workers only for a state type
-- it can send, never for internal.  In memory the state is an expanded
-- object changed in place (src/clv_fit.c); it is flattened only when it
-- leaves the process (a parallel worker's or a Citus worker's partial state).
CREATE FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8) IS 'transition of the (frequency, recency, T) fits (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8, float8) IS 'transition of the weighted (frequency, recency, T) fits (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_spend_trans(bytea, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_spend_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_spend_trans(bytea, float8, float8) IS 'transition of crm.gammagamma_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_spend_trans(bytea, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_spend_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_spend_trans(bytea, float8, float8, float8) IS 'transition of the weighted crm.gammagamma_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_discrete_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8) IS 'transition of crm.bgbb_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_discrete_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8, float8) IS 'transition of the weighted crm.bgbb_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_rows_combine(bytea, bytea)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rows_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rows_combine(bytea, bytea) IS 'combine function of the CLV fits: merges sorted distinct rows (not STRICT: either state may be empty; only inside an aggregate)';

-- Fitting: one final function and two aggregates (unweighted, and with a
-- weight: the number of customers a row stands for) per model, the same
-- shape for all five, made by one loop (schema-qualified like the types).
DO $fits$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM (VALUES
		('bgnbd', 'clv_rfm_trans', 'frequency float8, recency float8, t float8',
		 'fit a BG/NBD model to customers (frequency, recency, T) by maximum likelihood',
		 'fit a BG/NBD model to weighted rows (frequency, recency, T, number of customers)'),
		('mbgnbd', 'clv_rfm_trans', 'frequency float8, recency float8, t float8',
		 'fit an MBG/NBD model to customers (frequency, recency, T) by maximum likelihood',
		 'fit an MBG/NBD model to weighted rows (frequency, recency, T, number of customers)'),
		('paretonbd', 'clv_rfm_trans', 'frequency float8, recency float8, t float8',
		 'fit a Pareto/NBD model to customers (frequency, recency, T) by maximum likelihood',
		 'fit a Pareto/NBD model to weighted rows (frequency, recency, T, number of customers)'),
		('gammagamma', 'clv_spend_trans', 'frequency float8, monetary_value float8',
		 'fit a Gamma-Gamma spend model to customers (frequency, mean repeat spend); rows with frequency 0 are ignored',
		 'fit a Gamma-Gamma spend model to weighted rows; rows with frequency 0 are ignored'),
		('bgbb', 'clv_discrete_trans', 'frequency float8, recency float8, n float8',
		 'fit a BG/BB model to customers (frequency, recency, n opportunities)',
		 'fit a BG/BB model to weighted rows (frequency, recency, n, number of customers)')
	) AS v(name, trans, args, about, weighted_about)
	LOOP
		-- %1$s model, %2$s transition function, %3$s the aggregate's arguments
		EXECUTE pg_catalog.format($sql$
			CREATE FUNCTION crm.%1$s_final(bytea) RETURNS crm.%1$I
				AS 'MODULE_PATHNAME', 'crm_%1$s_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
			COMMENT ON FUNCTION crm.%1$s_final(bytea) IS
				'final function of crm.%1$s_fit: maximum likelihood (not STRICT: an empty input is an error; only inside an aggregate)';
			CREATE AGGREGATE crm.%1$s_fit(%3$s) (
				SFUNC = crm.%2$s, STYPE = bytea, SSPACE = 8192, FINALFUNC = crm.%1$s_final,
				COMBINEFUNC = crm.clv_rows_combine, PARALLEL = SAFE);
			COMMENT ON AGGREGATE crm.%1$s_fit(%3$s) IS %4$L;
			CREATE AGGREGATE crm.%1$s_fit(%3$s, weight float8) (
				SFUNC = crm.%2$s, STYPE = bytea, SSPACE = 8192, FINALFUNC = crm.%1$s_final,
				COMBINEFUNC = crm.clv_rows_combine, PARALLEL = SAFE);
			COMMENT ON AGGREGATE crm.%1$s_fit(%3$s, weight float8) IS %5$L;
			$sql$, m.name, m.trans, m.args, m.about, m.weighted_about);
	END LOOP;
END
$fits$;

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

-- BI tools (issue 14, point 4): a read-only campaign preview
-- The selection shared by crm.campaign_targets (which records it) and
-- crm.campaign_targets_preview (which does not): every eligible member with
-- its group (holdout) and whether it is not recorded yet (new).
CREATE FUNCTION crm.campaign_selection(campaign_id bigint)
RETURNS TABLE (contact_id bigint, email crm.email, holdout boolean, new boolean)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cam crm.campaign;
BEGIN
	SELECT * INTO cam FROM crm.campaign k WHERE k.campaign_id = campaign_selection.campaign_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'campaign % does not exist', campaign_selection.campaign_id
			USING ERRCODE = 'undefined_object', HINT = 'Campaigns are listed in crm.campaign.';
	END IF;
	IF cam.ends_at <= now() THEN
		RAISE EXCEPTION 'campaign "%" has ended', cam.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It ended at %s.', cam.ends_at),
				  HINT = 'Targets are selected while a campaign runs; extend ends_at to select again.';
	END IF;
	-- members with a current grant on the channel and no do-not-contact flag;
	-- a contact already selected keeps the group it was put in
	RETURN QUERY
	SELECT m.contact_id, c.email,
		   coalesce(t.holdout, crm.campaign_holdout(m.contact_id, cam.campaign_id, cam.holdout_share)),
		   t.contact_id IS NULL
	  FROM crm.segment_member m
	  JOIN crm.contact c ON c.contact_id = m.contact_id
	  LEFT JOIN crm.campaign_target t ON t.contact_id = m.contact_id AND t.campaign_id = cam.campaign_id
	 WHERE m.segment_id = cam.segment_id
	   AND c.do_not_contact IS NULL
	   AND coalesce((SELECT l.status = 'granted' AND (l.valid_until IS NULL OR l.valid_until > now())
					   FROM crm.consent l
					  WHERE l.contact_id = m.contact_id AND l.channel = cam.channel AND l.recorded_at <= now()
					  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false);
END $$;
COMMENT ON FUNCTION crm.campaign_selection(bigint) IS
	'the eligible members of a running campaign with their group (holdout) and whether they are not yet recorded (new); the selection behind crm.campaign_targets and crm.campaign_targets_preview; reads only';

CREATE OR REPLACE FUNCTION crm.campaign_targets(campaign_id bigint)
RETURNS TABLE (contact_id bigint, email crm.email)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY
	WITH eligible AS MATERIALIZED (
		SELECT * FROM crm.campaign_selection(campaign_targets.campaign_id)),
	recorded AS (
		INSERT INTO crm.campaign_target (contact_id, campaign_id, holdout)
		SELECT e.contact_id, campaign_targets.campaign_id, e.holdout FROM eligible e WHERE e.new
		ON CONFLICT DO NOTHING)
	SELECT e.contact_id, e.email FROM eligible e
	 WHERE NOT e.holdout ORDER BY e.contact_id;
END $$;
COMMENT ON FUNCTION crm.campaign_targets(bigint) IS
	'contacts to send a campaign to now: stored members of its segment with unexpired consent on its channel and no do-not-contact flag, minus the hold-out group; WRITES: records every selected contact (and its group) in crm.campaign_target, so it fails in a read-only transaction (use crm.campaign_targets_preview there)';

CREATE FUNCTION crm.campaign_targets_preview(campaign_id bigint)
RETURNS TABLE (contact_id bigint, email crm.email)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
	SELECT s.contact_id, s.email FROM crm.campaign_selection($1) s
	 WHERE NOT s.holdout ORDER BY s.contact_id
$$;
COMMENT ON FUNCTION crm.campaign_targets_preview(bigint) IS
	'the contacts crm.campaign_targets would return now, without recording anything: does not write, works in a read-only transaction (BI connections)';

-- BI tools (issue 14, point 3): arguments as drivers bind them.  Integer
-- arguments take bigint (JDBC setLong), rates and amounts float8
-- (setDouble; numeric is cast implicitly), and every interval argument has
-- a text overload ('1 month', as setString binds it) with a SQL-standard
-- body, bound at CREATE time and inlined.
DROP FUNCTION crm.nth_weekday(integer, integer, integer, integer);
DROP FUNCTION crm.find_duplicates(double precision, integer);
DROP FUNCTION crm.simple_clv(numeric, numeric, numeric);
DROP FUNCTION crm.campaign_holdout(bigint, bigint, numeric);
DROP FUNCTION crm.create_campaign(text, text, text, timestamptz, timestamptz, numeric, numeric);

-- bigint arguments, so that a driver's 64-bit parameters bind
CREATE FUNCTION crm.nth_weekday(year bigint, month bigint, weekday bigint, n bigint)
RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	first date;
	d date;
BEGIN
	IF weekday NOT BETWEEN 0 AND 6 OR n NOT BETWEEN 1 AND 5 OR month NOT BETWEEN 1 AND 12 THEN
		RAISE EXCEPTION 'invalid weekday %, month % or occurrence %', weekday, month, n
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'weekday is 0 (Sunday) to 6 (Saturday), month 1 to 12, n 1 to 5.';
	END IF;
	first := make_date(year::integer, month::integer, 1);
	d := first + ((weekday - extract(dow FROM first)::integer + 7) % 7)::integer + 7 * (n - 1)::integer;
	IF extract(month FROM d) <> month THEN
		RAISE EXCEPTION '% has no occurrence % of weekday %', to_char(first, 'YYYY-MM'), n, weekday
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN d;
END $$;
COMMENT ON FUNCTION crm.nth_weekday(bigint, bigint, bigint, bigint) IS
	'the n-th weekday (0 = Sunday) of a month, e.g. Mother''s Day in the US and Germany: crm.nth_weekday(y, 5, 0, 2)';

-- The window as text, as a driver binds a string ('30 days'); a literal
-- window resolves here too and means the same.  A SQL-standard body: bound
-- at CREATE time and inlined, so it adds no call of its own.
CREATE FUNCTION crm.activity_count(contact_id bigint, kind text, within text)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN crm.activity_count(contact_id, kind, within::interval);
COMMENT ON FUNCTION crm.activity_count(bigint, text, text) IS
	'crm.activity_count with the window given as text (''30 days''), as a BI tool binds a string parameter';

CREATE FUNCTION crm.find_duplicates(min_score double precision DEFAULT 0.9, max_block bigint DEFAULT 100)
RETURNS TABLE (contact_a bigint, contact_b bigint, score double precision,
			   name_similarity double precision, reasons text[])
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF min_score < 0 OR min_score > 1 OR min_score = 'NaN' THEN
		RAISE EXCEPTION 'min_score must be between 0 and 1, not %', min_score
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF max_block < 2 THEN
		RAISE EXCEPTION 'max_block must be at least 2, not %', max_block
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH k AS MATERIALIZED (
		SELECT c.contact_id AS id,
			   crm.match_key(concat_ws(' ', c.first_name, c.last_name)) AS nk,
			   crm.phone_key(c.phone) AS pk,
			   crm.email_handle(c.email) AS ek,
			   c.company_id AS co, nullif(crm.match_key(c.city), '') AS ck,
			   c.country AS cy, c.birth_date AS bd
		  FROM crm.contact c),
	ks AS MATERIALIZED (
		-- the name key with its words sorted, so swapped names share blocks
		SELECT k.*, array_to_string(ARRAY(SELECT w FROM unnest(string_to_array(k.nk, ' ')) w ORDER BY w), ' ') AS sk
		  FROM k),
	blocks AS (
		-- one row per (block, contact); b names the kind of block.  A pair
		-- that shares nothing but a name key and a city scores at most
		-- 1 / (1 + exp(-1)) = 0.731, so that block is only built when such
		-- pairs can pass min_score (it is the largest block on real data).
		SELECT 1 AS b, k.ek AS key, k.id FROM ks k WHERE k.ek IS NOT NULL
		UNION ALL SELECT 2, k.pk, k.id FROM ks k WHERE k.pk IS NOT NULL
		UNION ALL SELECT 3, k.bd::text, k.id FROM ks k WHERE k.bd IS NOT NULL AND k.nk <> ''
		UNION ALL SELECT 4, k.sk || '|' || k.co, k.id FROM ks k WHERE k.nk <> '' AND k.co IS NOT NULL
		UNION ALL SELECT 5, k.sk || '|' || k.ck, k.id FROM ks k
				   WHERE k.nk <> '' AND k.ck IS NOT NULL AND min_score <= 0.7311
		UNION ALL SELECT 6, k.co || '|' || left(k.sk, 1), k.id FROM ks k WHERE k.nk <> '' AND k.co IS NOT NULL),
	sized AS (
		SELECT s.b, s.key, s.id, count(*) OVER (PARTITION BY s.b, s.key) AS n FROM blocks s),
	cand AS (
		SELECT DISTINCT x.id AS a, y.id AS b
		  FROM sized x JOIN sized y
			ON x.b = y.b AND x.key = y.key AND x.id < y.id
		 WHERE x.n <= max_block AND y.n <= max_block AND x.n > 1),
	scored AS (
		SELECT p.a, p.b, ka.nk = kb.nk AS same_name, sim.s,
			   ka.ek = kb.ek AS same_handle, ka.pk = kb.pk AS same_phone, ka.bd = kb.bd AS same_birth,
			   ka.co = kb.co AS same_company, ka.ck = kb.ck AS same_city,
			   30 * (sim.s - 1)
			   + CASE WHEN ka.ek = kb.ek THEN 3 ELSE 0 END
			   + CASE WHEN ka.pk = kb.pk THEN 3 WHEN ka.pk <> kb.pk THEN -1 ELSE 0 END
			   + CASE WHEN ka.bd = kb.bd THEN 3 WHEN ka.bd <> kb.bd THEN -3 ELSE 0 END
			   + CASE WHEN ka.co = kb.co THEN 2 WHEN ka.co <> kb.co THEN -0.5 ELSE 0 END
			   + CASE WHEN ka.ck = kb.ck THEN 1 WHEN ka.ck <> kb.ck THEN -1 ELSE 0 END
			   + CASE WHEN ka.cy <> kb.cy THEN -2 ELSE 0 END AS points
		  FROM cand p
		  JOIN k ka ON ka.id = p.a
		  JOIN k kb ON kb.id = p.b
		 CROSS JOIN LATERAL (SELECT CASE WHEN ka.nk = kb.nk AND ka.nk <> '' THEN 1.0::float8
										 ELSE crm.name_similarity(ka.nk, kb.nk) END AS s) sim)
	SELECT s.a, s.b, 1 / (1 + exp(-s.points)), s.s,
		   array_remove(ARRAY[
			   CASE WHEN s.same_handle THEN 'same e-mail handle' END,
			   CASE WHEN s.same_phone THEN 'same phone' END,
			   CASE WHEN s.same_name THEN 'same name' WHEN s.s >= 0.85 THEN 'similar name' END,
			   CASE WHEN s.same_birth THEN 'same birth date' END,
			   CASE WHEN s.same_company THEN 'same company' END,
			   CASE WHEN s.same_city THEN 'same city' END], NULL)
	  FROM scored s
	 WHERE 1 / (1 + exp(-s.points)) >= min_score
	 ORDER BY 3 DESC, 1, 2;
END $$;

COMMENT ON FUNCTION crm.find_duplicates(double precision, bigint) IS
	'candidate duplicate contacts found by blocking on e-mail handle, phone, birth date, name key + company, name key + city and company + initial; scored 0..1 with reasons';

-- float8 arguments, so that a driver's doubles (JDBC setDouble) bind and
-- numeric ones are cast implicitly; the arithmetic stays numeric
CREATE FUNCTION crm.simple_clv(margin float8, retention float8, discount float8)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF margin = 'NaN' OR retention = 'NaN' OR discount = 'NaN' THEN
		RAISE EXCEPTION 'simple_clv arguments must not be NaN' USING ERRCODE = '22023';
	END IF;
	IF retention < 0 OR retention > 1 THEN
		RAISE EXCEPTION 'retention must be between 0 and 1, not %', retention
			USING ERRCODE = '22023', HINT = 'Retention is the share of customers kept per period, e.g. 0.8.';
	END IF;
	IF discount < 0 THEN
		RAISE EXCEPTION 'discount rate must not be negative, not %', discount USING ERRCODE = '22023';
	END IF;
	IF 1 + discount - retention <= 0 THEN
		RAISE EXCEPTION 'simple_clv is infinite with retention 1 and discount 0'
			USING ERRCODE = '22023', HINT = 'Use a positive discount rate or a retention below 1.';
	END IF;
	RETURN margin::numeric * retention::numeric / (1 + discount::numeric - retention::numeric);
END
$$;
COMMENT ON FUNCTION crm.simple_clv(float8, float8, float8) IS 'simple CLV: margin * r / (1 + d - r) for a margin per period, retention r and discount rate d per period';

-- The period as text ('1 month'), as a driver binds a string parameter; a
-- literal period resolves to these too and means the same.  SQL-standard
-- bodies: bound at CREATE time and inlined, so they add no call of their own.
CREATE FUNCTION crm.period_index(ts timestamptz, period text) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN crm.period_index(ts, period::interval);
CREATE FUNCTION crm.period_start(idx bigint, period text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN crm.period_start(idx, period::interval);
CREATE FUNCTION crm.churn_rate(period text, "from" timestamptz, "to" timestamptz)
RETURNS TABLE (period_start timestamptz, active bigint, churned bigint, churn_rate numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT * FROM crm.churn_rate(period::interval, "from", "to");
END;
CREATE FUNCTION crm.retention_cohorts(period text)
RETURNS TABLE (cohort timestamptz, periods_since integer, customers bigint, active bigint, retention numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT * FROM crm.retention_cohorts(period::interval);
END;
COMMENT ON FUNCTION crm.period_index(timestamptz, text) IS 'crm.period_index with the period as text (''1 month''), as a BI tool binds a string parameter';
COMMENT ON FUNCTION crm.period_start(bigint, text) IS 'crm.period_start with the period as text (''1 month''), as a BI tool binds a string parameter';
COMMENT ON FUNCTION crm.churn_rate(text, timestamptz, timestamptz) IS 'crm.churn_rate with the period as text (''1 month''), as a BI tool binds a string parameter';
COMMENT ON FUNCTION crm.retention_cohorts(text) IS 'crm.retention_cohorts with the period as text (''1 month''), as a BI tool binds a string parameter';

CREATE FUNCTION crm.campaign_holdout(contact_id bigint, campaign_id bigint, share float8) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT ((hashint8extended($1, $2) & 2147483647)::float8 / 2147483648.0) < $3
$$;
COMMENT ON FUNCTION crm.campaign_holdout(bigint, bigint, float8) IS
	'is the contact in the campaign''s hold-out group? a hash of (contact, campaign) below the share';

CREATE FUNCTION crm.create_campaign(name text, segment text, channel text DEFAULT 'email',
	starts_at timestamptz DEFAULT now(), ends_at timestamptz DEFAULT NULL,
	cost float8 DEFAULT 0, holdout_share float8 DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sid bigint;
	id bigint;
BEGIN
	SELECT g.segment_id INTO sid FROM crm.segment g WHERE g.name = create_campaign.segment;
	IF sid IS NULL THEN
		RAISE EXCEPTION 'segment "%" does not exist', segment
			USING ERRCODE = 'undefined_object', HINT = 'Segments are listed in crm.segment.';
	END IF;
	INSERT INTO crm.campaign (name, channel, segment_id, starts_at, ends_at, cost, holdout_share)
	VALUES (name, channel, sid, coalesce(starts_at, now()), ends_at, coalesce(cost, 0), coalesce(holdout_share, 0))
	RETURNING campaign_id INTO id;
	RETURN id;
END $$;
COMMENT ON FUNCTION crm.create_campaign(text, text, text, timestamptz, timestamptz, float8, float8) IS
	'create a campaign on a segment (by name) and channel, with window, cost and hold-out share';

CREATE FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz, text)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_btyd_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz, text) IS 'transition of crm.btyd_summary with the unit as text (read as an interval once per value)';

-- The unit as text ('7 days'), as a driver binds a string parameter; a
-- literal unit resolves here too and means the same
CREATE AGGREGATE crm.btyd_summary(occurred_at timestamptz, amount numeric, observation_end timestamptz, unit text) (
	SFUNC = crm.btyd_summary_trans, STYPE = internal, FINALFUNC = crm.btyd_summary_final,
	COMBINEFUNC = crm.btyd_summary_combine, SERIALFUNC = crm.btyd_summary_serialize,
	DESERIALFUNC = crm.btyd_summary_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.btyd_summary(timestamptz, numeric, timestamptz, text) IS 'crm.btyd_summary with the unit as text (''7 days''), as a BI tool binds a string parameter';

-- Citus (issue 15): every trigger that writes or dispatches names its
-- logical table in its argument, since on Citus it fires on a shard
-- (crm.activity_102079); its SQL then writes the co-located shards of the
-- same contacts (src/shard.c).  The same triggers, replaced in place.
CREATE OR REPLACE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.scoring_rule
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed('scoring_rule');
CREATE OR REPLACE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.fit_rule
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed('fit_rule');
CREATE OR REPLACE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.score_group
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed('score_group');
CREATE OR REPLACE TRIGGER score_activities AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_activities('activity');
CREATE OR REPLACE TRIGGER score_contacts_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts('contact');
CREATE OR REPLACE TRIGGER score_contacts_update AFTER UPDATE ON crm.contact
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts('contact');
CREATE OR REPLACE TRIGGER score_company_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts('company');
CREATE OR REPLACE TRIGGER stage_log_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_log('contact');
CREATE OR REPLACE TRIGGER stage_log_update AFTER UPDATE ON crm.contact
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_log('contact');
CREATE OR REPLACE TRIGGER stage_promote AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote('activity');
CREATE OR REPLACE TRIGGER stage_promote_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote('contact');
CREATE OR REPLACE TRIGGER stage_promote_update AFTER UPDATE ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote('contact');
CREATE OR REPLACE TRIGGER stage_promote_insert AFTER INSERT ON crm.deal
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote('deal');
CREATE OR REPLACE TRIGGER stage_promote_update AFTER UPDATE ON crm.deal
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote('deal');
CREATE OR REPLACE TRIGGER stage_promote AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote('order');

-- Dirty marking in C (src/segment_dirty.c): the contact ids read from the
-- transition tables in C and written to the co-located shard on Citus; the
-- argument of each trigger is its logical table (issue 15)
CREATE OR REPLACE FUNCTION crm.segment_dirty() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_segment_dirty' LANGUAGE C;
COMMENT ON FUNCTION crm.segment_dirty() IS
	'trigger: mark for segment refresh the contacts of the inserted, deleted or updated rows (before and after), or on company, the contacts of the updated companies; the argument names the table';
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('contact');
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm.contact
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('contact');
CREATE OR REPLACE TRIGGER segment_dirty_delete AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('contact');
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('company');
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('activity');
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm.activity
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('activity');
CREATE OR REPLACE TRIGGER segment_dirty_delete AFTER DELETE ON crm.activity
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('activity');
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('order');
CREATE OR REPLACE TRIGGER segment_dirty_update AFTER UPDATE ON crm."order"
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('order');
CREATE OR REPLACE TRIGGER segment_dirty_delete AFTER DELETE ON crm."order"
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('order');
CREATE OR REPLACE TRIGGER segment_dirty_insert AFTER INSERT ON crm.consent
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('consent');

-- Rule and contact deletions in C (issue 15).  A deleted rule takes its
-- points with it; a deleted contact its scores (what ON DELETE CASCADE
-- would do, once per statement).  The ids come from the transition tables,
-- the deletes go to the co-located shards, and on Citus a rule's deletion
-- reaches every node's shards (src/shard.c).
CREATE OR REPLACE FUNCTION crm.forget_rule_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_forget_rule_points' LANGUAGE C;
COMMENT ON FUNCTION crm.forget_rule_points() IS 'trigger: removes the ledger and windowed-event rows of deleted rules';
CREATE OR REPLACE TRIGGER forget_rule_points AFTER DELETE ON crm.scoring_rule
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_rule_points('scoring_rule');
CREATE OR REPLACE TRIGGER forget_rule_points AFTER DELETE ON crm.fit_rule
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_rule_points('fit_rule');

CREATE OR REPLACE FUNCTION crm.forget_contact_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_forget_contact_points' LANGUAGE C;
COMMENT ON FUNCTION crm.forget_contact_points() IS 'trigger: removes the ledger and windowed-event rows of deleted contacts';
CREATE OR REPLACE TRIGGER forget_contact_points AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_contact_points('contact');
CREATE OR REPLACE TRIGGER forget_contact_points_truncate AFTER TRUNCATE ON crm.contact
	FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_contact_points('contact');

-- crm.check_rule reads its table from the argument, not TG_TABLE_NAME
CREATE OR REPLACE FUNCTION crm.check_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM crm.score_group g WHERE g.score_group = NEW.score_group) THEN
		RAISE EXCEPTION 'unknown score group "%"', NEW.score_group
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Score groups are listed in crm.score_group; add one there first.';
	END IF;
	IF NEW.points IS NULL OR NEW.points IN ('NaN', 'Infinity', '-Infinity') THEN
		RAISE EXCEPTION 'points must be a finite number, not %', coalesce(NEW.points::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF TG_ARGV[0] = 'scoring_rule' THEN
		IF NEW."window" IS NOT NULL AND NEW."window" <= interval '0' THEN
			RAISE EXCEPTION 'window must be positive, not %', NEW."window"
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use NULL for a rule whose points never expire.';
		END IF;
		IF NEW.activity_kind IS NOT NULL AND NEW.activity_kind !~ '^[a-z][a-z0-9_]*$' THEN
			RAISE EXCEPTION 'activity_kind "%" is not a valid activity kind', NEW.activity_kind
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Activity kinds are lower-case identifiers such as page_view; NULL matches any kind.';
		END IF;
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION crm.check_rule() IS 'trigger: validates scoring and fit rules when they are saved; the argument names the table (on Citus the trigger fires on a placement, whose name is not the table''s)';
CREATE OR REPLACE TRIGGER check_rule BEFORE INSERT OR UPDATE ON crm.scoring_rule
	FOR EACH ROW EXECUTE FUNCTION crm.check_rule('scoring_rule');
CREATE OR REPLACE TRIGGER check_rule BEFORE INSERT OR UPDATE ON crm.fit_rule
	FOR EACH ROW EXECUTE FUNCTION crm.check_rule('fit_rule');

-- crm.redirect_merged_contact looks contacts up in the co-located shard on
-- Citus, and refuses a redirect to another shard (issue 15)
CREATE OR REPLACE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.activity
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact('activity');
CREATE OR REPLACE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.deal
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact('deal');
CREATE OR REPLACE TRIGGER redirect_merged_contact BEFORE INSERT ON crm."order"
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact('order');
CREATE OR REPLACE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.task
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact('task');
CREATE OR REPLACE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.consent
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact('consent');

-- crm.policy() reads the policy row column by column (issue 15: on Citus the
-- whole-row value of a reference table's placement has another row type)
CREATE OR REPLACE FUNCTION crm.policy() RETURNS crm.lifecycle_policy
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r crm.lifecycle_policy;
BEGIN
	SELECT p.* INTO r FROM crm.lifecycle_policy p;
	IF NOT FOUND THEN
		r := ROW(true, 'engagement', 'fit', 50, 20, 100, 40,
				 '{meeting_booked,sales_accepted}', '365 days', true)::crm.lifecycle_policy;
	END IF;
	RETURN r;
END $$;

-- The history analytics and the campaign report in PL/pgSQL (issue 15:
-- Citus cannot plan a SQL function's parameters; PL/pgSQL plans them with
-- their values); the same queries
CREATE OR REPLACE FUNCTION crm.stages_at(at timestamptz DEFAULT now(), OUT contact_id bigint, OUT stage crm.stage)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT DISTINCT ON (h.contact_id) h.contact_id, h.to_stage
	  FROM crm.stage_history h
	 WHERE h.changed_at <= at
	 ORDER BY h.contact_id, h.changed_at DESC, h.history_id DESC;
END $$;
CREATE OR REPLACE FUNCTION crm.stage_history_mismatches(at timestamptz DEFAULT now(),
	OUT contact_id bigint, OUT stage crm.stage, OUT last_row_stage crm.stage, OUT stage_at crm.stage)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT c.contact_id, c.stage, l.to_stage, s.stage
	  FROM crm.contact c
	  LEFT JOIN LATERAL (SELECT h.to_stage FROM crm.stage_history h WHERE h.contact_id = c.contact_id
						  ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1) l ON true
	  LEFT JOIN crm.stages_at(at) s ON s.contact_id = c.contact_id
	 WHERE l.to_stage IS DISTINCT FROM c.stage OR s.stage IS DISTINCT FROM c.stage
	 ORDER BY c.contact_id;
END $$;
CREATE OR REPLACE FUNCTION crm.funnel(at timestamptz DEFAULT now(), OUT stage crm.stage, OUT contacts bigint, OUT share numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH s AS (SELECT a.stage, count(*) AS n FROM crm.stages_at(at) a GROUP BY a.stage)
	SELECT e.stage, coalesce(s.n, 0),
		   round(coalesce(s.n, 0) / nullif(sum(s.n) OVER (), 0), 4)
	  FROM unnest(enum_range(NULL::crm.stage)) e(stage) LEFT JOIN s ON s.stage = e.stage
	 ORDER BY e.stage;
END $$;
CREATE OR REPLACE FUNCTION crm.stage_conversion(from_date timestamptz, to_date timestamptz,
	OUT stage crm.stage, OUT entered bigint, OUT moved_on bigint, OUT conversion numeric,
	OUT median_time_in_stage interval, OUT p90_time_in_stage interval)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	-- each record's own timeline: rows a merge moved onto a contact follow
	-- one another (merged_from), not the kept contact's; a merge that kept
	-- the stage (from = to) is no move
	WITH h AS (
		SELECT h.contact_id, h.to_stage, h.changed_at,
			   lead(h.to_stage) OVER w AS next_stage, lead(h.changed_at) OVER w AS left_at
		  FROM crm.stage_history h
		 WHERE h.from_stage IS DISTINCT FROM h.to_stage
		WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id)),
	-- moving on is a later funnel stage before to_date; the exits
	-- (disqualified, churned) end the time in stage but are no conversion
	e AS (
		SELECT h.*, (h.next_stage > h.to_stage AND h.next_stage NOT IN ('disqualified', 'churned')
					 AND h.left_at < to_date) AS converted
		  FROM h WHERE h.changed_at >= from_date AND h.changed_at < to_date)
	SELECT s.stage, count(e.contact_id),
		   count(*) FILTER (WHERE e.converted),
		   round(count(*) FILTER (WHERE e.converted)::numeric / nullif(count(e.contact_id), 0), 4),
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY e.left_at - e.changed_at)
			 FILTER (WHERE e.left_at < to_date),
		   percentile_cont(0.9) WITHIN GROUP (ORDER BY e.left_at - e.changed_at)
			 FILTER (WHERE e.left_at < to_date)
	  FROM unnest(enum_range(NULL::crm.stage)) s(stage)
	  LEFT JOIN e ON e.to_stage = s.stage
	 GROUP BY s.stage ORDER BY s.stage;
END $$;
CREATE OR REPLACE FUNCTION crm.campaign_report(campaign_id bigint)
RETURNS TABLE (campaign text, targeted bigint, held_out bigint, responded bigint, response_rate numeric,
			   holdout_responded bigint, holdout_response_rate numeric, revenue numeric,
			   holdout_revenue numeric, cost numeric, return_on_cost numeric, lift numeric)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	WITH cam AS (
		SELECT k.*, coalesce(k.ends_at, now()) AS until FROM crm.campaign k WHERE k.campaign_id = $1),
	per_contact AS (
		SELECT t.holdout,
			   (SELECT sum(o.total) FROM crm."order" o
				 WHERE o.contact_id = t.contact_id AND o.ordered_at >= cam.starts_at AND o.ordered_at < cam.until
				   AND o.status <> ALL ('{cancelled,refunded}'::text[])) AS spent,
			   EXISTS (SELECT 1 FROM crm.activity a
						WHERE a.contact_id = t.contact_id AND a.occurred_at >= cam.starts_at AND a.occurred_at < cam.until
						  AND a.properties @> jsonb_build_object('campaign_id', cam.campaign_id)) AS acted
		  FROM cam JOIN crm.campaign_target t ON t.campaign_id = cam.campaign_id),
	agg AS (
		SELECT count(*) FILTER (WHERE NOT holdout) AS targeted,
			   count(*) FILTER (WHERE holdout) AS held_out,
			   count(*) FILTER (WHERE NOT holdout AND (spent IS NOT NULL OR acted)) AS responded,
			   count(*) FILTER (WHERE holdout AND (spent IS NOT NULL OR acted)) AS holdout_responded,
			   coalesce(sum(spent) FILTER (WHERE NOT holdout), 0) AS revenue,
			   coalesce(sum(spent) FILTER (WHERE holdout), 0) AS holdout_revenue
		  FROM per_contact)
	SELECT cam.name, agg.targeted, agg.held_out, agg.responded,
		   round(agg.responded::numeric / nullif(agg.targeted, 0), 4),
		   agg.holdout_responded,
		   round(agg.holdout_responded::numeric / nullif(agg.held_out, 0), 4),
		   agg.revenue, agg.holdout_revenue, cam.cost,
		   round((agg.revenue - cam.cost) / nullif(cam.cost, 0), 4),
		   round((agg.responded::numeric / nullif(agg.targeted, 0))
				 / nullif(agg.holdout_responded::numeric / nullif(agg.held_out, 0), 0) - 1, 4)
	  FROM cam, agg;
END $$;

-- ---------------------------------------------------------------------------
-- Scaling out on Citus: crm.distribute(), called once on the coordinator.
-- Every table that holds a contact's rows (crm.contact, the tables that
-- crm.contact_references() finds, and the tables of schema crm whose primary
-- key starts with contact_id) is hash-distributed by its contact column and
-- co-located with crm.contact, so a contact's rows are on one shard; every
-- other table of schema crm (lookup, configuration, logs) becomes a reference
-- table, copied to every node.  It runs only where Citus is installed, on the
-- coordinator, with crm at the same version on every worker.
-- ---------------------------------------------------------------------------
CREATE FUNCTION crm.distribute(drop_email_uniqueness boolean DEFAULT false)
RETURNS TABLE (table_name regclass, distribution text, action text, detail text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	version text;
	bad text;
	per_contact regclass[];
	per_contact_col name[];
	reference regclass[];
	pending regclass[];
	quiet regclass[] := '{}';	-- tables whose triggers are off while their rows are copied
	rel regclass;
	col name;
	i int;
	progress boolean;
	changed int := 0;
	con record;
	-- the Citus settings this call needs, restored before it returns
	saved text[];
	knobs CONSTANT text[] := ARRAY['citus.enable_unsafe_triggers',
								   'citus.enable_local_reference_table_foreign_keys',
								   'citus.multi_shard_modify_mode'];
	part "char";
	repl "char";
	contact_group int;
	fn regprocedure;
BEGIN
	IF NOT EXISTS (SELECT FROM pg_extension e WHERE e.extname = 'citus') THEN
		RAISE EXCEPTION 'crm.distribute() needs the citus extension in database "%"', current_database()
			USING ERRCODE = 'feature_not_supported',
				  HINT = 'Load Citus (shared_preload_libraries = ''citus''), run CREATE EXTENSION citus and CREATE EXTENSION crm '
					  || 'on the coordinator and on every worker, add the workers with citus_add_node(), '
					  || 'then call crm.distribute() on the coordinator.';
	END IF;
	IF NOT pg_catalog.citus_is_coordinator() THEN
		RAISE EXCEPTION 'crm.distribute() must be called on the Citus coordinator'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Connect to the coordinator (the node of group 0; register it with citus_set_coordinator_host()) and call it there.';
	END IF;

	-- every worker must have crm, at this version: the shards use its types,
	-- operators and trigger functions
	SELECT e.extversion INTO version FROM pg_extension e WHERE e.extname = 'crm';
	SELECT string_agg(format('%s:%s (%s)', w.nodename, w.nodeport,
							 CASE WHEN NOT w.success THEN 'unreachable: ' || w.result
								  WHEN w.result = '' THEN 'crm not installed'
								  ELSE 'crm ' || w.result END), ', ' ORDER BY w.nodename, w.nodeport)
	  INTO bad
	  FROM pg_catalog.run_command_on_workers(
			 $q$SELECT coalesce((SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'crm'), '')$q$) w
	 WHERE NOT w.success OR w.result IS DISTINCT FROM version;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'crm % is not installed on every worker: %', version, bad
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = format('Run CREATE EXTENSION crm VERSION %L (or ALTER EXTENSION crm UPDATE) in this database on each of them, then call crm.distribute() again.', version);
	END IF;

	-- Which tables hold a contact's rows, with their contact column
	SELECT array_agg(x.rel ORDER BY x.rel::text), array_agg(x.col ORDER BY x.rel::text)
	  INTO per_contact, per_contact_col
	  FROM (SELECT DISTINCT ON (r.table_name) r.table_name AS rel, r.contact_column AS col
			  FROM (SELECT 'crm.contact'::regclass AS table_name, 'contact_id'::name AS contact_column
					UNION ALL
					SELECT f.table_name, f.contact_column FROM crm.contact_references() f
					UNION ALL
					SELECT c.oid::regclass, a.attname
					  FROM pg_class c
					  JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
					  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.conkey[1]
					 WHERE c.relnamespace = 'crm'::regnamespace AND a.attname = 'contact_id'
					   AND c.oid <> 'crm.erasure_log'::regclass) r
			 ORDER BY r.table_name, r.contact_column) x;
	-- the rest of schema crm: copied to every node.  crm.erasure_log keeps
	-- one row per erased contact id, keyed by erasure_id: a log, not the
	-- contact's data (which is gone).  The dump markers stay local: copying
	-- their rows to the shards would fire their triggers, which delete the
	-- built-in rows and turn derivation off as a restore does.
	SELECT array_agg(c.oid::regclass ORDER BY c.oid::regclass::text) INTO reference
	  FROM pg_class c
	 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
	   AND c.oid <> ALL (per_contact::oid[])
	   AND c.oid NOT IN ('crm._dump_begin'::regclass, 'crm.zz_dump_end'::regclass);

	-- Refuse, before anything changes, what cannot be distributed as it is.
	FOR i IN 1 .. cardinality(per_contact) LOOP
		rel := per_contact[i];
		col := per_contact_col[i];
		IF EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = rel AND p.partmethod = 'h') THEN
			CONTINUE;
		END IF;
		IF (SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col) <> 'bigint'::regtype THEN
			RAISE EXCEPTION 'cannot distribute %: its contact column % is not bigint', rel, col
				USING ERRCODE = 'feature_not_supported',
					  HINT = 'A table co-located with crm.contact must hold the contact id as bigint.';
		END IF;
		-- Citus enforces a unique constraint only on one shard: it must
		-- contain the distribution column
		FOR con IN SELECT k.conname, pg_get_constraintdef(k.oid) AS def
					 FROM pg_constraint k
					WHERE k.conrelid = rel AND k.contype IN ('p', 'u', 'x')
					  AND NOT EXISTS (SELECT FROM pg_attribute a
									   WHERE a.attrelid = rel AND a.attname = col AND a.attnum = ANY (k.conkey))
		LOOP
			IF rel = 'crm.contact'::regclass AND con.conname = 'contact_email_key' AND drop_email_uniqueness THEN
				CONTINUE;
			END IF;
			RAISE EXCEPTION 'cannot distribute % by %: its constraint % (%) does not contain %',
							rel, col, con.conname, con.def, col
				USING ERRCODE = 'feature_not_supported',
					  DETAIL = 'Citus checks a UNIQUE, PRIMARY KEY or EXCLUDE constraint on one shard at a time; '
						  || 'one without the distribution column cannot be enforced across shards.',
					  HINT = CASE WHEN con.conname = 'contact_email_key'
								  THEN 'Call crm.distribute(drop_email_uniqueness => true) to drop it, accepting that the cluster no longer refuses a second contact with the same e-mail address (crm.find_duplicates() still finds them); or keep crm on one node.'
								  ELSE 'Add the contact column to the constraint, or drop it.' END;
		END LOOP;
	END LOOP;

	-- Settings this call needs, for this call only (set_config(..., true)
	-- lasts until the end of the transaction; the old values are put back
	-- before returning):
	--   enable_unsafe_triggers: Citus refuses to distribute a table with
	--     triggers unless it is on; crm's tables have them (the triggers are
	--     copied to every shard).  It is not needed afterwards.
	--   enable_local_reference_table_foreign_keys off: otherwise a local crm
	--     table that references a new reference table is turned into a Citus
	--     local table, which fails on the sequences and views crm owns.
	--   multi_shard_modify_mode sequential: the tables are created and filled
	--     one after another in one transaction, with foreign keys between them.
	saved := ARRAY(SELECT current_setting(k, true) FROM unnest(knobs) k);
	PERFORM set_config('citus.enable_unsafe_triggers', 'on', true),
			set_config('citus.enable_local_reference_table_foreign_keys', 'off', true),
			set_config('citus.multi_shard_modify_mode', 'sequential', true);

	-- crm's triggers are off while Citus copies the existing rows into the
	-- shards: the rows were derived from when they were written, and what
	-- they derived (ledger, history, marks) is copied with them.  Citus
	-- creates the shards' triggers in the state of the table's, and turns
	-- them back on with it below.
	FOREACH rel IN ARRAY reference || per_contact LOOP
		CONTINUE WHEN EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = rel
								AND NOT (p.partmethod = 'n' AND p.repmodel = 's'));
		EXECUTE format('ALTER TABLE %s DISABLE TRIGGER USER', rel);
		quiet := quiet || rel;
	END LOOP;

	-- Reference tables first (a distributed table may reference one), each
	-- after the crm tables it references.
	pending := reference;
	WHILE cardinality(pending) > 0 LOOP
		progress := false;
		FOREACH rel IN ARRAY pending LOOP
			CONTINUE WHEN EXISTS (SELECT FROM pg_constraint k
								   WHERE k.conrelid = rel AND k.contype = 'f' AND k.confrelid <> rel
									 AND k.confrelid = ANY (pending::oid[]));
			pending := array_remove(pending, rel);
			progress := true;
			table_name := rel;
			distribution := 'reference';
			SELECT p.partmethod, p.repmodel INTO part, repl FROM pg_dist_partition p WHERE p.logicalrelid = rel;
			IF part = 'n' AND repl = 't' THEN
				action := 'already a reference table';
				detail := NULL;
			ELSIF part IS NOT NULL AND NOT (part = 'n' AND repl = 's') THEN
				RAISE EXCEPTION 'cannot make % a reference table: it is already distributed (partition method %)', rel, part
					USING ERRCODE = 'object_not_in_prerequisite_state',
						  HINT = format('Run SELECT undistribute_table(%L), then call crm.distribute() again.', rel::text);
			ELSE
				PERFORM pg_catalog.create_reference_table(rel);
				changed := changed + 1;
				action := 'made a reference table';
				detail := 'copied to every node';
			END IF;
			RETURN NEXT;
		END LOOP;
		IF NOT progress THEN
			RAISE EXCEPTION 'cannot order the reference tables: their foreign keys form a cycle (%)', pending
				USING ERRCODE = 'feature_not_supported';
		END IF;
	END LOOP;

	-- Then crm.contact, then the tables that point at it, each after the
	-- tables it references.
	pending := per_contact;
	WHILE cardinality(pending) > 0 LOOP
		progress := false;
		FOREACH rel IN ARRAY pending LOOP
			CONTINUE WHEN rel <> 'crm.contact'::regclass AND 'crm.contact'::regclass = ANY (pending);
			CONTINUE WHEN EXISTS (SELECT FROM pg_constraint k
								   WHERE k.conrelid = rel AND k.contype = 'f' AND k.confrelid <> rel
									 AND k.confrelid = ANY (pending::oid[]));
			pending := array_remove(pending, rel);
			progress := true;
			col := per_contact_col[array_position(per_contact, rel)];
			table_name := rel;
			distribution := format('by %s, co-located with crm.contact', col);
			SELECT p.colocationid INTO contact_group FROM pg_dist_partition p
			 WHERE p.logicalrelid = 'crm.contact'::regclass;
			IF EXISTS (SELECT FROM pg_dist_partition p
						WHERE p.logicalrelid = rel AND p.partmethod = 'h'
						  AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) = col
						  AND p.colocationid = contact_group) THEN
				action := 'already distributed';
				detail := NULL;
				RETURN NEXT;
				CONTINUE;
			ELSIF EXISTS (SELECT FROM pg_dist_partition p
						   WHERE p.logicalrelid = rel AND NOT (p.partmethod = 'n' AND p.repmodel = 's')) THEN
				RAISE EXCEPTION 'cannot distribute % by %: it is already distributed another way', rel, col
					USING ERRCODE = 'object_not_in_prerequisite_state',
						  HINT = format('Run SELECT undistribute_table(%L), then call crm.distribute() again.', rel::text);
			END IF;
			IF rel = 'crm.contact'::regclass
			   AND EXISTS (SELECT FROM pg_constraint k
							WHERE k.conrelid = rel AND k.conname = 'contact_email_key') THEN
				-- only with drop_email_uniqueness (checked above)
				ALTER TABLE crm.contact DROP CONSTRAINT contact_email_key;
				action := 'dropped constraint contact_email_key';
				detail := 'UNIQUE (email) cannot be enforced across shards: a duplicate e-mail address is no longer refused';
				RETURN NEXT;
			END IF;
			IF rel = 'crm.contact'::regclass THEN
				PERFORM pg_catalog.create_distributed_table(rel, col::text);
			ELSE
				PERFORM pg_catalog.create_distributed_table(rel, col::text, colocate_with => 'crm.contact');
			END IF;
			changed := changed + 1;
			action := 'distributed';
			detail := format('%s shards', (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = rel));
			RETURN NEXT;
		END LOOP;
		IF NOT progress THEN
			RAISE EXCEPTION 'cannot order the per-contact tables: their foreign keys form a cycle (%)', pending
				USING ERRCODE = 'feature_not_supported';
		END IF;
	END LOOP;

	FOREACH rel IN ARRAY quiet LOOP
		EXECUTE format('ALTER TABLE %s ENABLE TRIGGER USER', rel);
	END LOOP;

	-- crm.set_stage runs on the node of its contact (Citus delegates the
	-- call): the guard and the log triggers on the shard learn of crm's own
	-- move (its reason, force and time) from the backend that runs the
	-- UPDATE, which must be theirs.  crm.redeem_points too: it locks and
	-- writes the contact's points where they are (src/loyalty.c).
	table_name := 'crm.contact'::regclass;
	distribution := 'by contact_id';
	FOREACH fn IN ARRAY ARRAY['crm.set_stage(bigint, crm.stage, text, boolean, timestamptz)',
							  'crm.redeem_points(bigint, bigint, bigint, text)']::regprocedure[] LOOP
		detail := NULL;
		IF EXISTS (SELECT FROM pg_dist_object o
					WHERE o.classid = 'pg_proc'::regclass AND o.objid = fn
					  AND o.distribution_argument_index IS NOT NULL) THEN
			action := 'already delegated ' || fn::regproc::text;
		ELSE
			PERFORM pg_catalog.create_distributed_function(fn, 'contact_id', colocate_with => 'crm.contact',
														   force_delegation => true);
			changed := changed + 1;
			action := 'delegated ' || fn::regproc::text;
			detail := 'calls run on the node of the contact';
		END IF;
		RETURN NEXT;
	END LOOP;

	-- Triggers on a worker's shards take ids (stage_history.history_id) from
	-- that worker's copy of the sequence, which crm created there like the
	-- coordinator's: give each node its own range, as Citus does for the
	-- sequences it propagates (the node's group id in the top 16 bits), so
	-- ids stay unique across nodes.  Idempotent: a sequence already in its
	-- range is left alone.
	SELECT string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') INTO bad
	  FROM pg_catalog.run_command_on_workers($q$DO $d$
		DECLARE
			start bigint := ((SELECT groupid FROM pg_catalog.pg_dist_local_group)::bigint << 48) + 1;
			seq regclass;
		BEGIN
			FOR seq IN SELECT s.oid::regclass FROM pg_catalog.pg_class s
						WHERE s.relkind = 'S' AND s.relnamespace = 'crm'::regnamespace LOOP
				IF (SELECT coalesce(q.last_value, 0) FROM pg_catalog.pg_sequences q
					 WHERE (q.schemaname || '.' || q.sequencename)::regclass = seq) < start THEN
					PERFORM pg_catalog.setval(seq, start, false);
				END IF;
			END LOOP;
		END $d$ $q$) w
	 WHERE NOT w.success;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'could not give the workers their sequence ranges: %', bad
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	FOREACH rel IN ARRAY ARRAY['crm._dump_begin', 'crm.zz_dump_end']::regclass[] LOOP
		table_name := rel;
		distribution := 'local';
		action := 'kept local';
		detail := 'dump marker, read only by pg_dump and pg_restore of this node';
		RETURN NEXT;
	END LOOP;

	FOR i IN 1 .. cardinality(knobs) LOOP
		PERFORM set_config(knobs[i], saved[i], true);
	END LOOP;
	IF changed = 0 THEN
		RAISE NOTICE 'crm is already distributed: nothing to do';
	END IF;
END $$;
COMMENT ON FUNCTION crm.distribute(boolean) IS
	'Citus, on the coordinator: distributes every crm table holding contacts'' rows by contact id (co-located with crm.contact) and makes the others reference tables; one row per table; a second call changes nothing; 0A000 without Citus, 55000 off the coordinator or when a worker lacks crm at this version; refuses UNIQUE (email) unless drop_email_uniqueness';
REVOKE ALL ON FUNCTION crm.distribute(boolean) FROM PUBLIC;

-- BI tools (issue 14, point 6): schema crm_bi, views with plain types for BI
-- tools (src/bi_views.sql), their column comments (src/columns.sql); granted
-- by crm.setup_roles above.  Before the stage = text operator below, as in
-- the install script.
-- ---------------------------------------------------------------------------
-- Schema crm_bi: what a BI tool reads (see README, "BI tools").  Views with
-- plain types only, so that a driver maps every column to a standard type:
-- e-mails and stages as text (the stage with its rank in the lifecycle
-- order), RFM cells as text with r, f, m as integers, model parameters as
-- float8, durations as days (float8), and a date in UTC beside a timestamp
-- where a chart wants a day (as the analyst views take their days).  Each
-- view has one row grain, said first in its COMMENT.
--
-- Every view is security_invoker: it reads with the reader's privileges and
-- row-level security, so a sales rep sees only its own contacts' rows.  Two
-- families, granted by crm.setup_roles (src/roles.sql):
--   person views      a row per contact, order, deal, ...; granted to the
--                     roles that may read the tables under them (never to
--                     crm_analyst)
--   aggregate views   over the k-anonymous crm.analyst_* views (owner's
--                     rights); granted to every crm role
-- After src/analyst.sql (the views it wraps) and before src/bi.sql: no view
-- here may bind to the stage = text operator defined there.
-- ---------------------------------------------------------------------------
CREATE SCHEMA crm_bi;
COMMENT ON SCHEMA crm_bi IS
	'views for BI tools over the crm extension: plain column types, one row grain per view, security_invoker';

-- Person views ---------------------------------------------------------------

-- crm.contact_profile computes each column only when it is read.
CREATE VIEW crm_bi.contacts WITH (security_invoker = true) AS
SELECT p.contact_id, p.email::text AS email, crm.email_domain(p.email) AS email_domain,
	   p.first_name, p.last_name, p.phone, p.city, p.region, p.country, p.birth_date, p.age,
	   p.income_band, p.job_title, p.lead_source, p.owner,
	   p.stage::text AS stage, array_position(enum_range(NULL::crm.stage), p.stage) AS stage_rank,
	   p.do_not_contact, p.created_at, (p.created_at AT TIME ZONE 'UTC')::date AS created_on, p.updated_at,
	   p.company_id, p.company_name, p.company_domain, p.company_industry, p.company_employees,
	   p.company_annual_revenue, p.company_country,
	   p.order_count, p.lifetime_value,
	   p.first_order_at, (p.first_order_at AT TIME ZONE 'UTC')::date AS first_order_on,
	   p.last_order_at, (p.last_order_at AT TIME ZONE 'UTC')::date AS last_order_on,
	   p.recency_days,
	   p.rfm::text AS rfm, crm.r(p.rfm) AS rfm_r, crm.f(p.rfm) AS rfm_f, crm.m(p.rfm) AS rfm_m,
	   p.rfm_segment, p.value_rank,
	   p.activity_count, p.last_activity_at,
	   p.consent_email, p.consent_phone, p.consent_sms, p.consent_post, p.consent_profiling,
	   p.engagement_score, p.fit_score, p.grade
  FROM crm.contact_profile p;
COMMENT ON VIEW crm_bi.contacts IS
	'one row per contact: who, company, stage and its rank, orders, lifetime value, RFM cell (text and r, f, m), activity, consent now, scores and grade; plain types';

CREATE VIEW crm_bi.activity_daily WITH (security_invoker = true) AS
SELECT a.contact_id, (a.occurred_at AT TIME ZONE 'UTC')::date AS activity_on, a.kind,
	   count(*) AS activities, min(a.occurred_at) AS first_at, max(a.occurred_at) AS last_at
  FROM crm.activity a
 GROUP BY a.contact_id, (a.occurred_at AT TIME ZONE 'UTC')::date, a.kind;
COMMENT ON VIEW crm_bi.activity_daily IS
	'one row per contact, day (UTC) and activity kind: the number of activities, the first and the last';

CREATE VIEW crm_bi.orders WITH (security_invoker = true) AS
SELECT o.contact_id, o.order_id, o.ordered_at, (o.ordered_at AT TIME ZONE 'UTC')::date AS ordered_on,
	   date_trunc('month', o.ordered_at AT TIME ZONE 'UTC')::date AS ordered_month,
	   o.status, o.status <> ALL (ARRAY['cancelled', 'refunded']) AS counts_as_purchase,
	   o.currency, o.total, o.items, o.external_ref
  FROM crm."order" o;
COMMENT ON VIEW crm_bi.orders IS
	'one row per order: contact, time and day (UTC), status, whether it counts as a purchase, currency, total, items';

CREATE VIEW crm_bi.deals WITH (security_invoker = true) AS
SELECT d.contact_id, d.deal_id, d.company_id, d.title, d.pipeline_stage, d.status,
	   d.amount, d.currency, d.probability, round(d.amount * d.probability, 2) AS weighted_amount,
	   d.expected_close, d.owner,
	   d.created_at, (d.created_at AT TIME ZONE 'UTC')::date AS created_on,
	   d.closed_at, (d.closed_at AT TIME ZONE 'UTC')::date AS closed_on,
	   (extract(epoch FROM coalesce(d.closed_at, now()) - d.created_at) / 86400)::float8 AS age_days
  FROM crm.deal d;
COMMENT ON VIEW crm_bi.deals IS
	'one row per deal: contact, company, pipeline stage, status, amount, probability, weighted amount, dates (UTC) of creation and close, age in days';

-- each record's own timeline, as crm.stage_conversion reads it: rows a merge
-- moved onto a contact follow one another (merged_from)
CREATE VIEW crm_bi.stage_transitions WITH (security_invoker = true) AS
SELECT h.contact_id, h.history_id,
	   h.from_stage::text AS from_stage, array_position(enum_range(NULL::crm.stage), h.from_stage) AS from_stage_rank,
	   h.to_stage::text AS to_stage, array_position(enum_range(NULL::crm.stage), h.to_stage) AS to_stage_rank,
	   h.changed_at, (h.changed_at AT TIME ZONE 'UTC')::date AS changed_on,
	   (extract(epoch FROM h.changed_at - lag(h.changed_at) OVER w) / 86400)::float8 AS days_since_previous,
	   h.reason, h.actor, h.automatic, h.forced, h.merged_from
  FROM crm.stage_history h
WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id);
COMMENT ON VIEW crm_bi.stage_transitions IS
	'one row per lifecycle transition (crm.stage_history): from and to stage with their ranks, time and day (UTC), days since the previous transition, reason, actor, automatic, forced';

-- spells from the log: each entry and the change that follows it
CREATE VIEW crm_bi.segment_membership WITH (security_invoker = true) AS
WITH l AS (
	SELECT l.contact_id, l.segment_id, l.change, l.at,
		   lead(l.at) OVER (PARTITION BY l.contact_id, l.segment_id ORDER BY l.at, l.log_id) AS left_at
	  FROM crm.segment_log l)
SELECT l.contact_id, l.segment_id, s.name AS segment, s.kind AS segment_kind,
	   l.at AS entered_at, (l.at AT TIME ZONE 'UTC')::date AS entered_on,
	   l.left_at AS exited_at, (l.left_at AT TIME ZONE 'UTC')::date AS exited_on,
	   l.left_at IS NULL AS is_current,
	   (extract(epoch FROM coalesce(l.left_at, now()) - l.at) / 86400)::float8 AS days_member
  FROM l JOIN crm.segment s ON s.segment_id = l.segment_id
 WHERE l.change = 'enter';
COMMENT ON VIEW crm_bi.segment_membership IS
	'one row per membership spell of a contact in a segment (crm.segment_log): entered and exited (NULL while a member) as times and days (UTC), days a member; members on a day D are the spells with entered_on <= D and (exited_on IS NULL or exited_on > D)';

CREATE VIEW crm_bi.campaign_results WITH (security_invoker = true) AS
SELECT k.campaign_id, k.name AS campaign, k.channel, g.name AS segment,
	   k.starts_at, (k.starts_at AT TIME ZONE 'UTC')::date AS starts_on,
	   k.ends_at, (k.ends_at AT TIME ZONE 'UTC')::date AS ends_on, k.holdout_share,
	   r.targeted, r.held_out, r.responded, r.response_rate, r.holdout_responded, r.holdout_response_rate,
	   r.revenue, r.holdout_revenue, r.cost, r.return_on_cost, r.lift
  FROM crm.campaign k
  JOIN crm.segment g ON g.segment_id = k.segment_id
 CROSS JOIN LATERAL crm.campaign_report(k.campaign_id) r;
COMMENT ON VIEW crm_bi.campaign_results IS
	'one row per campaign, as crm.campaign_report over the targets the reader can see: targeted, held out, responders, response rates, revenue, cost, return on cost, lift over the hold-out group';

-- The BG/NBD and Gamma-Gamma models are fitted when the view is read, to
-- the customers the reader can see (as crm.analyst_clv_model: days in UTC,
-- each fit only on 5 customers or more), and predict as crm.analyst_clv.
CREATE VIEW crm_bi.customer_clv WITH (security_invoker = true) AS
WITH o AS (
	SELECT o.contact_id, count(*) AS orders, sum(o.total) AS historic_value,
		   min(o.ordered_at) AS first_order_at, max(o.ordered_at) AS last_order_at,
		   crm.btyd_summary((o.ordered_at AT TIME ZONE 'UTC')::timestamptz, o.total,
							(now() AT TIME ZONE 'UTC')::timestamptz) AS s
	  FROM crm."order" o
	 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
	 GROUP BY o.contact_id),
n AS (
	SELECT count(*) AS customers, count(*) FILTER (WHERE (o.s).monetary_value > 0) AS repeat_customers FROM o),
m AS MATERIALIZED (
	SELECT CASE WHEN n.customers >= 5 THEN
				(SELECT crm.bgnbd_fit((o.s).frequency, (o.s).recency, (o.s).t) FROM o) END AS tx,
		   CASE WHEN n.repeat_customers >= 5 THEN
				(SELECT crm.gammagamma_fit((o.s).frequency, (o.s).monetary_value)
						FILTER (WHERE (o.s).monetary_value > 0) FROM o) END AS spend
	  FROM n),
p AS (
	SELECT m.tx, m.spend,
		   coalesce((crm.bgnbd_params(m.tx)).converged AND (crm.bgnbd_params(m.tx)).a < 1000
					AND (crm.bgnbd_params(m.tx)).b < 1000, false) AS usable,
		   coalesce((crm.gammagamma_params(m.spend)).converged AND (crm.gammagamma_params(m.spend)).q > 1, false)
			 AS spend_usable
	  FROM m)
SELECT o.contact_id, o.orders, o.historic_value,
	   o.first_order_at, (o.first_order_at AT TIME ZONE 'UTC')::date AS first_order_on,
	   date_trunc('month', o.first_order_at AT TIME ZONE 'UTC')::date AS cohort_month,
	   o.last_order_at, (o.last_order_at AT TIME ZONE 'UTC')::date AS last_order_on,
	   (o.s).frequency AS repeat_purchases, (o.s).recency AS recency_days, (o.s).t AS age_days,
	   (o.s).monetary_value AS mean_repeat_value,
	   CASE WHEN p.usable THEN crm.expected_purchases(p.tx, 365, (o.s).frequency, (o.s).recency, (o.s).t) END
		 AS expected_purchases_365d,
	   CASE WHEN p.usable THEN crm.p_alive(p.tx, (o.s).frequency, (o.s).recency, (o.s).t) END AS p_alive,
	   CASE WHEN NOT (p.usable AND p.spend_usable) THEN NULL
			WHEN (o.s).frequency > 0 AND (o.s).monetary_value = 0 THEN 0	-- repeat purchases of nothing
			ELSE crm.clv(p.tx, p.spend, (o.s).frequency, (o.s).recency, (o.s).t, (o.s).monetary_value,
						 12, 0.01, 365 / 12.0)
	   END AS clv_1y
  FROM o CROSS JOIN p;
COMMENT ON VIEW crm_bi.customer_clv IS
	'one row per customer (a contact with an order that is not cancelled or refunded): orders, historic value, first and last order, BTYD summary in days (UTC), and under BG/NBD x Gamma-Gamma fitted on read to the customers the reader can see: expected purchases in 365 days, probability alive, one-year CLV';

CREATE VIEW crm_bi.scores WITH (security_invoker = true) AS
SELECT s.contact_id, s.score_group, s.score, crm.grade_of(s.score_group, s.score) AS grade
  FROM crm.contact_scores s;
COMMENT ON VIEW crm_bi.scores IS
	'one row per contact and score group: the current score and its grade in the group';

-- Aggregate views (over crm.analyst_*, every row at least 5 contacts) -------

CREATE VIEW crm_bi.funnel_monthly WITH (security_invoker = true) AS
SELECT f.month, f.stage::text AS stage, array_position(enum_range(NULL::crm.stage), f.stage) AS stage_rank,
	   f.contacts, f.share
  FROM crm.analyst_funnel f;
COMMENT ON VIEW crm_bi.funnel_monthly IS
	'one row per month (UTC) and stage, as crm.analyst_funnel: contacts in the stage at the end of the month (now for the current month) and their share; stages of fewer than 5 contacts are left out';

CREATE VIEW crm_bi.stage_conversion_monthly WITH (security_invoker = true) AS
SELECT c.month, c.stage::text AS stage, array_position(enum_range(NULL::crm.stage), c.stage) AS stage_rank,
	   c.contacts, c.entered, c.moved_on, c.conversion,
	   (extract(epoch FROM c.median_time_in_stage) / 86400)::float8 AS median_days_in_stage,
	   (extract(epoch FROM c.p90_time_in_stage) / 86400)::float8 AS p90_days_in_stage
  FROM crm.analyst_stage_conversion c;
COMMENT ON VIEW crm_bi.stage_conversion_monthly IS
	'one row per month (UTC) and stage entered, as crm.analyst_stage_conversion: contacts, entries, entries that moved on, conversion rate, median and p90 days in stage; stages entered by fewer than 5 contacts are left out';

CREATE VIEW crm_bi.cohort_retention WITH (security_invoker = true) AS
SELECT r.cohort_month, r.months_since, r.customers, r.active, r.retention
  FROM crm.analyst_retention r;
COMMENT ON VIEW crm_bi.cohort_retention IS
	'one row per cohort (month of the first purchase, UTC) and months since, as crm.analyst_retention: cohort size, customers who bought that month, retention; rows of fewer than 5 active customers are left out';

CREATE VIEW crm_bi.churn_monthly WITH (security_invoker = true) AS
SELECT c.month, c.active, c.churned, c.churn_rate
  FROM crm.analyst_churn c;
COMMENT ON VIEW crm_bi.churn_monthly IS
	'one row per month (UTC) whose next month has ended, as crm.analyst_churn: customers who bought, how many did not buy the next month, churn rate; months of fewer than 5 customers are left out';

CREATE VIEW crm_bi.rfm_segments WITH (security_invoker = true) AS
SELECT s.segment, s.contacts, s.share, s.avg_recency_days, s.avg_frequency, s.avg_monetary, s.monetary
  FROM crm.analyst_rfm s;
COMMENT ON VIEW crm_bi.rfm_segments IS
	'one row per RFM segment (Champions ... Lost), as crm.analyst_rfm: customers, share, mean recency in days, mean orders, mean and total spend; segments of fewer than 5 customers are left out';

CREATE VIEW crm_bi.clv_model WITH (security_invoker = true) AS
SELECT m.contacts AS customers, m.repeat_customers, m.r, m.alpha, m.a, m.b, m.bgnbd_ll, m.bgnbd_converged,
	   m.p, m.q, m.gamma, m.gammagamma_ll, m.gammagamma_converged
  FROM crm.analyst_clv_model m;
COMMENT ON VIEW crm_bi.clv_model IS
	'one row (none below 5 customers): the BG/NBD and Gamma-Gamma parameters of crm.analyst_clv_model as float8 columns, with log-likelihoods and convergence';

CREATE VIEW crm_bi.clv_distribution WITH (security_invoker = true) AS
SELECT c.decile, c.contacts AS customers, c.clv_from, c.clv_to, c.avg_clv, c.total_clv,
	   c.avg_expected_purchases, c.avg_p_alive
  FROM crm.analyst_clv c;
COMMENT ON VIEW crm_bi.clv_distribution IS
	'one row per decile (1 = lowest) of predicted one-year CLV, as crm.analyst_clv: customers, lowest and highest CLV (not shown for the outer deciles), mean and total CLV, mean expected purchases in 365 days, mean probability alive; deciles of fewer than 5 customers are left out';

CREATE VIEW crm_bi.campaign_lift WITH (security_invoker = true) AS
SELECT c.campaign_id, c.campaign, c.channel, c.starts_on, c.ends_on, c.targeted, c.held_out, c.responded,
	   c.response_rate, c.holdout_responded, c.holdout_response_rate, c.revenue, c.holdout_revenue, c.cost,
	   c.return_on_cost, c.lift
  FROM crm.analyst_campaign c;
COMMENT ON VIEW crm_bi.campaign_lift IS
	'one row per campaign of 5 targeted contacts or more, as crm.analyst_campaign: targeted, held out, responders, response rates, revenue, cost, return on cost, lift over the hold-out group (hold-out figures NULL below 5 held out)';

CREATE VIEW crm_bi.pipeline WITH (security_invoker = true) AS
SELECT p.pipeline_stage, p.deals, p.contacts, p.amount, p.weighted_amount
  FROM crm.analyst_pipeline p;
COMMENT ON VIEW crm_bi.pipeline IS
	'one row per pipeline stage, as crm.analyst_pipeline: open deals, their contacts, amount, probability-weighted amount; stages of fewer than 5 contacts are left out';

CREATE VIEW crm_bi.activity_totals_daily WITH (security_invoker = true) AS
SELECT a.occurred_on AS activity_on, a.kind, a.activities, a.contacts
  FROM crm.analyst_activity a;
COMMENT ON VIEW crm_bi.activity_totals_daily IS
	'one row per day (UTC) and activity kind, as crm.analyst_activity: activities and distinct contacts; days of a kind with fewer than 5 contacts are left out';

CREATE VIEW crm_bi.order_totals_monthly WITH (security_invoker = true) AS
SELECT o.ordered_month, o.status, o.currency, o.orders, o.contacts, o.total, o.items
  FROM crm.analyst_order o;
COMMENT ON VIEW crm_bi.order_totals_monthly IS
	'one row per month (UTC), order status and currency, as crm.analyst_order: orders, distinct contacts, total, items; cells of fewer than 5 contacts are left out';

CREATE VIEW crm_bi.deal_totals_monthly WITH (security_invoker = true) AS
SELECT d.created_month, d.pipeline_stage, d.status, d.currency, d.deals, d.contacts, d.amount, d.weighted_amount
  FROM crm.analyst_deal d;
COMMENT ON VIEW crm_bi.deal_totals_monthly IS
	'one row per month created (UTC), pipeline stage, status and currency, as crm.analyst_deal: deals, distinct contacts, amount, weighted amount; cells of fewer than 5 contacts are left out';

-- Schema crm_bi (src/bi_views.sql)
COMMENT ON COLUMN crm_bi.contacts.contact_id IS 'contact id (crm.contact)';
COMMENT ON COLUMN crm_bi.contacts.email IS 'e-mail address as text, normalised (domain in lower case, local part case-folded)';
COMMENT ON COLUMN crm_bi.contacts.email_domain IS 'domain of the e-mail address, lower-case IDNA ASCII form';
COMMENT ON COLUMN crm_bi.contacts.first_name IS 'first name';
COMMENT ON COLUMN crm_bi.contacts.last_name IS 'last name';
COMMENT ON COLUMN crm_bi.contacts.phone IS 'telephone number as entered';
COMMENT ON COLUMN crm_bi.contacts.city IS 'city';
COMMENT ON COLUMN crm_bi.contacts.region IS 'region or state';
COMMENT ON COLUMN crm_bi.contacts.country IS 'ISO 3166 alpha-2 country code';
COMMENT ON COLUMN crm_bi.contacts.birth_date IS 'date of birth';
COMMENT ON COLUMN crm_bi.contacts.age IS 'age in whole years today';
COMMENT ON COLUMN crm_bi.contacts.income_band IS 'low, lower_middle, middle, upper_middle or high';
COMMENT ON COLUMN crm_bi.contacts.job_title IS 'job title';
COMMENT ON COLUMN crm_bi.contacts.lead_source IS 'where the lead came from (crm.lead_source)';
COMMENT ON COLUMN crm_bi.contacts.owner IS 'database role of the sales rep who owns the contact';
COMMENT ON COLUMN crm_bi.contacts.stage IS 'lifecycle stage as text: subscriber, lead, mql, sql, opportunity, customer, evangelist, disqualified, churned';
COMMENT ON COLUMN crm_bi.contacts.stage_rank IS 'position of the stage in the lifecycle order: subscriber 1 ... evangelist 7, disqualified 8, churned 9 (sort by it)';
COMMENT ON COLUMN crm_bi.contacts.do_not_contact IS 'unsubscribed, bounced or manual when the contact must never be contacted; NULL otherwise';
COMMENT ON COLUMN crm_bi.contacts.created_at IS 'when the contact was created (timestamptz)';
COMMENT ON COLUMN crm_bi.contacts.created_on IS 'day the contact was created, in UTC';
COMMENT ON COLUMN crm_bi.contacts.updated_at IS 'when the contact was last updated (timestamptz)';
COMMENT ON COLUMN crm_bi.contacts.company_id IS 'company the contact works for (crm.company); NULL if none';
COMMENT ON COLUMN crm_bi.contacts.company_name IS 'name of the company';
COMMENT ON COLUMN crm_bi.contacts.company_domain IS 'web domain of the company';
COMMENT ON COLUMN crm_bi.contacts.company_industry IS 'industry of the company';
COMMENT ON COLUMN crm_bi.contacts.company_employees IS 'number of employees of the company';
COMMENT ON COLUMN crm_bi.contacts.company_annual_revenue IS 'annual revenue of the company';
COMMENT ON COLUMN crm_bi.contacts.company_country IS 'ISO 3166 alpha-2 country code of the company';
COMMENT ON COLUMN crm_bi.contacts.order_count IS 'orders that are not cancelled or refunded';
COMMENT ON COLUMN crm_bi.contacts.lifetime_value IS 'sum of the orders that are not cancelled or refunded (0 without orders)';
COMMENT ON COLUMN crm_bi.contacts.first_order_at IS 'time of the first order that is not cancelled or refunded; NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.first_order_on IS 'day of the first order, in UTC; NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.last_order_at IS 'time of the last order that is not cancelled or refunded; NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.last_order_on IS 'day of the last order, in UTC; NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.recency_days IS 'whole days since the last order; NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.rfm IS 'RFM cell as text ''r-f-m'' (quintiles over all customers the reader can see); NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.rfm_r IS 'recency score of the RFM cell, 1 to 5 (5 = most recent)';
COMMENT ON COLUMN crm_bi.contacts.rfm_f IS 'frequency score of the RFM cell, 1 to 5 (5 = most orders)';
COMMENT ON COLUMN crm_bi.contacts.rfm_m IS 'monetary score of the RFM cell, 1 to 5 (5 = highest spend)';
COMMENT ON COLUMN crm_bi.contacts.rfm_segment IS 'named RFM segment (Champions, Loyal, ... Lost); NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.value_rank IS 'percentile (0 to 1) of the lifetime value among customers; NULL without orders';
COMMENT ON COLUMN crm_bi.contacts.activity_count IS 'number of activities of the contact';
COMMENT ON COLUMN crm_bi.contacts.last_activity_at IS 'time of the last activity; NULL without activities';
COMMENT ON COLUMN crm_bi.contacts.consent_email IS 'current, unexpired consent to marketing e-mail';
COMMENT ON COLUMN crm_bi.contacts.consent_phone IS 'current, unexpired consent to telephone calls';
COMMENT ON COLUMN crm_bi.contacts.consent_sms IS 'current, unexpired consent to text messages';
COMMENT ON COLUMN crm_bi.contacts.consent_post IS 'current, unexpired consent to letters and catalogues';
COMMENT ON COLUMN crm_bi.contacts.consent_profiling IS 'current, unexpired consent to profiling and scoring';
COMMENT ON COLUMN crm_bi.contacts.engagement_score IS 'current score in the engagement group';
COMMENT ON COLUMN crm_bi.contacts.fit_score IS 'current score in the fit group';
COMMENT ON COLUMN crm_bi.contacts.grade IS 'combined fit x engagement grade, A1 (best) to D4';
COMMENT ON COLUMN crm_bi.activity_daily.contact_id IS 'contact id (crm.contact)';
COMMENT ON COLUMN crm_bi.activity_daily.activity_on IS 'day of the activities, in UTC';
COMMENT ON COLUMN crm_bi.activity_daily.kind IS 'activity kind (page_view, form_submit, email_open...)';
COMMENT ON COLUMN crm_bi.activity_daily.activities IS 'number of activities of the contact of this kind that day';
COMMENT ON COLUMN crm_bi.activity_daily.first_at IS 'time of the first of them (timestamptz)';
COMMENT ON COLUMN crm_bi.activity_daily.last_at IS 'time of the last of them (timestamptz)';
COMMENT ON COLUMN crm_bi.orders.contact_id IS 'contact who ordered (crm.contact)';
COMMENT ON COLUMN crm_bi.orders.order_id IS 'order id';
COMMENT ON COLUMN crm_bi.orders.ordered_at IS 'when the order was placed (timestamptz)';
COMMENT ON COLUMN crm_bi.orders.ordered_on IS 'day the order was placed, in UTC';
COMMENT ON COLUMN crm_bi.orders.ordered_month IS 'first day of the month the order was placed, in UTC';
COMMENT ON COLUMN crm_bi.orders.status IS 'placed, paid, shipped, cancelled or refunded';
COMMENT ON COLUMN crm_bi.orders.counts_as_purchase IS 'false for cancelled and refunded orders, which RFM, CLV and retention leave out';
COMMENT ON COLUMN crm_bi.orders.currency IS 'ISO 4217 currency code of total';
COMMENT ON COLUMN crm_bi.orders.total IS 'order total, in currency';
COMMENT ON COLUMN crm_bi.orders.items IS 'number of items; NULL when not recorded';
COMMENT ON COLUMN crm_bi.orders.external_ref IS 'reference of the order in another system';
COMMENT ON COLUMN crm_bi.deals.contact_id IS 'contact of the deal (crm.contact)';
COMMENT ON COLUMN crm_bi.deals.deal_id IS 'deal id';
COMMENT ON COLUMN crm_bi.deals.company_id IS 'company of the deal (crm.company); NULL if none';
COMMENT ON COLUMN crm_bi.deals.title IS 'title of the deal';
COMMENT ON COLUMN crm_bi.deals.pipeline_stage IS 'pipeline stage (qualification, proposal, ...)';
COMMENT ON COLUMN crm_bi.deals.status IS 'open, won or lost';
COMMENT ON COLUMN crm_bi.deals.amount IS 'amount, in currency';
COMMENT ON COLUMN crm_bi.deals.currency IS 'ISO 4217 currency code of amount';
COMMENT ON COLUMN crm_bi.deals.probability IS 'probability of winning, 0 to 1';
COMMENT ON COLUMN crm_bi.deals.weighted_amount IS 'amount x probability, rounded to 2 decimals';
COMMENT ON COLUMN crm_bi.deals.expected_close IS 'expected close date';
COMMENT ON COLUMN crm_bi.deals.owner IS 'database role of the sales rep who owns the deal';
COMMENT ON COLUMN crm_bi.deals.created_at IS 'when the deal was created (timestamptz)';
COMMENT ON COLUMN crm_bi.deals.created_on IS 'day the deal was created, in UTC';
COMMENT ON COLUMN crm_bi.deals.closed_at IS 'when the deal was won or lost (timestamptz); NULL while open';
COMMENT ON COLUMN crm_bi.deals.closed_on IS 'day the deal was won or lost, in UTC; NULL while open';
COMMENT ON COLUMN crm_bi.deals.age_days IS 'days from creation to close, or to now while open';
COMMENT ON COLUMN crm_bi.stage_transitions.contact_id IS 'contact whose stage changed (crm.contact)';
COMMENT ON COLUMN crm_bi.stage_transitions.history_id IS 'id of the crm.stage_history row';
COMMENT ON COLUMN crm_bi.stage_transitions.from_stage IS 'stage before, as text; NULL for the first stage of a contact';
COMMENT ON COLUMN crm_bi.stage_transitions.from_stage_rank IS 'position of from_stage in the lifecycle order (subscriber 1 ... churned 9)';
COMMENT ON COLUMN crm_bi.stage_transitions.to_stage IS 'stage after, as text';
COMMENT ON COLUMN crm_bi.stage_transitions.to_stage_rank IS 'position of to_stage in the lifecycle order (subscriber 1 ... churned 9)';
COMMENT ON COLUMN crm_bi.stage_transitions.changed_at IS 'when the stage changed (timestamptz)';
COMMENT ON COLUMN crm_bi.stage_transitions.changed_on IS 'day the stage changed, in UTC';
COMMENT ON COLUMN crm_bi.stage_transitions.days_since_previous IS 'days since the previous transition of the same record (time spent in from_stage); NULL for the first';
COMMENT ON COLUMN crm_bi.stage_transitions.reason IS 'why the stage changed';
COMMENT ON COLUMN crm_bi.stage_transitions.actor IS 'database role that made the change';
COMMENT ON COLUMN crm_bi.stage_transitions.automatic IS 'true when the lifecycle policy promoted the contact';
COMMENT ON COLUMN crm_bi.stage_transitions.forced IS 'true for a backward move made with force';
COMMENT ON COLUMN crm_bi.stage_transitions.merged_from IS 'contact the row was written for, when a merge moved it here; NULL otherwise';
COMMENT ON COLUMN crm_bi.segment_membership.contact_id IS 'member contact (crm.contact)';
COMMENT ON COLUMN crm_bi.segment_membership.segment_id IS 'segment id (crm.segment)';
COMMENT ON COLUMN crm_bi.segment_membership.segment IS 'segment name';
COMMENT ON COLUMN crm_bi.segment_membership.segment_kind IS 'static or dynamic';
COMMENT ON COLUMN crm_bi.segment_membership.entered_at IS 'when the contact entered the segment (timestamptz)';
COMMENT ON COLUMN crm_bi.segment_membership.entered_on IS 'day the contact entered the segment, in UTC';
COMMENT ON COLUMN crm_bi.segment_membership.exited_at IS 'when the contact left the segment; NULL while a member';
COMMENT ON COLUMN crm_bi.segment_membership.exited_on IS 'day the contact left the segment, in UTC; NULL while a member';
COMMENT ON COLUMN crm_bi.segment_membership.is_current IS 'true while the contact is a member';
COMMENT ON COLUMN crm_bi.segment_membership.days_member IS 'days from entry to exit, or to now while a member';
COMMENT ON COLUMN crm_bi.campaign_results.campaign_id IS 'campaign id (crm.campaign)';
COMMENT ON COLUMN crm_bi.campaign_results.campaign IS 'campaign name';
COMMENT ON COLUMN crm_bi.campaign_results.channel IS 'channel the campaign contacts on';
COMMENT ON COLUMN crm_bi.campaign_results.segment IS 'name of the segment the audience comes from';
COMMENT ON COLUMN crm_bi.campaign_results.starts_at IS 'start of the campaign window (timestamptz)';
COMMENT ON COLUMN crm_bi.campaign_results.starts_on IS 'day the campaign starts, in UTC';
COMMENT ON COLUMN crm_bi.campaign_results.ends_at IS 'end of the campaign window; NULL = open-ended';
COMMENT ON COLUMN crm_bi.campaign_results.ends_on IS 'day the campaign ends, in UTC; NULL = open-ended';
COMMENT ON COLUMN crm_bi.campaign_results.holdout_share IS 'share of targets held out as control group';
COMMENT ON COLUMN crm_bi.campaign_results.targeted IS 'contacts targeted (not held out)';
COMMENT ON COLUMN crm_bi.campaign_results.held_out IS 'contacts held out as control';
COMMENT ON COLUMN crm_bi.campaign_results.responded IS 'targeted contacts who responded (an order, or an activity tagged with the campaign, in the window)';
COMMENT ON COLUMN crm_bi.campaign_results.response_rate IS 'responded / targeted';
COMMENT ON COLUMN crm_bi.campaign_results.holdout_responded IS 'held-out contacts who responded';
COMMENT ON COLUMN crm_bi.campaign_results.holdout_response_rate IS 'holdout_responded / held_out';
COMMENT ON COLUMN crm_bi.campaign_results.revenue IS 'order revenue of the targeted contacts in the window';
COMMENT ON COLUMN crm_bi.campaign_results.holdout_revenue IS 'order revenue of the held-out contacts in the window';
COMMENT ON COLUMN crm_bi.campaign_results.cost IS 'cost of the campaign';
COMMENT ON COLUMN crm_bi.campaign_results.return_on_cost IS '(revenue - cost) / cost; NULL when the cost is 0';
COMMENT ON COLUMN crm_bi.campaign_results.lift IS 'relative lift: response_rate / holdout_response_rate - 1';
COMMENT ON COLUMN crm_bi.customer_clv.contact_id IS 'customer (crm.contact)';
COMMENT ON COLUMN crm_bi.customer_clv.orders IS 'orders that are not cancelled or refunded';
COMMENT ON COLUMN crm_bi.customer_clv.historic_value IS 'sum of those orders (as crm.historic_clv)';
COMMENT ON COLUMN crm_bi.customer_clv.first_order_at IS 'time of the first order (timestamptz)';
COMMENT ON COLUMN crm_bi.customer_clv.first_order_on IS 'day of the first order, in UTC';
COMMENT ON COLUMN crm_bi.customer_clv.cohort_month IS 'first day of the month of the first order, in UTC (the retention cohort)';
COMMENT ON COLUMN crm_bi.customer_clv.last_order_at IS 'time of the last order (timestamptz)';
COMMENT ON COLUMN crm_bi.customer_clv.last_order_on IS 'day of the last order, in UTC';
COMMENT ON COLUMN crm_bi.customer_clv.repeat_purchases IS 'BTYD frequency: purchase days after the first (same-day orders merge), up to now';
COMMENT ON COLUMN crm_bi.customer_clv.recency_days IS 'BTYD recency: days from the first to the last purchase day (UTC)';
COMMENT ON COLUMN crm_bi.customer_clv.age_days IS 'BTYD T: days from the first purchase day to now (UTC)';
COMMENT ON COLUMN crm_bi.customer_clv.mean_repeat_value IS 'mean value of the repeat purchases; 0 without any';
COMMENT ON COLUMN crm_bi.customer_clv.expected_purchases_365d IS 'BG/NBD expected purchases in the next 365 days; NULL unless the fit converged with a and b below 1000';
COMMENT ON COLUMN crm_bi.customer_clv.p_alive IS 'BG/NBD probability that the customer is still active; NULL as expected_purchases_365d';
COMMENT ON COLUMN crm_bi.customer_clv.clv_1y IS 'predicted one-year CLV (12 periods of 365/12 days, 1% discount a period, BG/NBD x Gamma-Gamma); NULL unless both fits converged, a and b are below 1000 and q > 1';
COMMENT ON COLUMN crm_bi.scores.contact_id IS 'contact id (crm.contact)';
COMMENT ON COLUMN crm_bi.scores.score_group IS 'score group (engagement, fit, ...; crm.score_group)';
COMMENT ON COLUMN crm_bi.scores.score IS 'current score of the contact in the group';
COMMENT ON COLUMN crm_bi.scores.grade IS 'grade label of the score, from the group''s thresholds';
COMMENT ON COLUMN crm_bi.funnel_monthly.month IS 'first day of the month (UTC); contacts are counted at its end, now for the current month';
COMMENT ON COLUMN crm_bi.funnel_monthly.stage IS 'lifecycle stage as text';
COMMENT ON COLUMN crm_bi.funnel_monthly.stage_rank IS 'position of the stage in the lifecycle order (subscriber 1 ... churned 9)';
COMMENT ON COLUMN crm_bi.funnel_monthly.contacts IS 'contacts in the stage at the end of the month (at least 5)';
COMMENT ON COLUMN crm_bi.funnel_monthly.share IS 'contacts / all contacts with a stage at that time';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.month IS 'first day of the month (UTC) in which the stage was entered';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.stage IS 'the stage entered, as text';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.stage_rank IS 'position of the stage in the lifecycle order (subscriber 1 ... churned 9)';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.contacts IS 'distinct contacts that entered the stage in the month (at least 5)';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.entered IS 'entries into the stage in the month';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.moved_on IS 'entries that moved on to a later funnel stage before the month ended';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.conversion IS 'moved_on / entered';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.median_days_in_stage IS 'median days in the stage of the entries that left it within the month';
COMMENT ON COLUMN crm_bi.stage_conversion_monthly.p90_days_in_stage IS '90th percentile of the days in the stage of the entries that left it within the month';
COMMENT ON COLUMN crm_bi.cohort_retention.cohort_month IS 'first day of the month of the cohort''s first purchase (UTC)';
COMMENT ON COLUMN crm_bi.cohort_retention.months_since IS 'months since the cohort month (0 = the cohort month)';
COMMENT ON COLUMN crm_bi.cohort_retention.customers IS 'customers in the cohort';
COMMENT ON COLUMN crm_bi.cohort_retention.active IS 'customers of the cohort who bought in that month (at least 5)';
COMMENT ON COLUMN crm_bi.cohort_retention.retention IS 'active / customers';
COMMENT ON COLUMN crm_bi.churn_monthly.month IS 'first day of the month (UTC)';
COMMENT ON COLUMN crm_bi.churn_monthly.active IS 'customers who bought in the month (at least 5)';
COMMENT ON COLUMN crm_bi.churn_monthly.churned IS 'of them, customers who did not buy in the next month';
COMMENT ON COLUMN crm_bi.churn_monthly.churn_rate IS 'churned / active';
COMMENT ON COLUMN crm_bi.rfm_segments.segment IS 'named RFM segment (Champions, Loyal, ... Lost)';
COMMENT ON COLUMN crm_bi.rfm_segments.contacts IS 'customers in the segment (at least 5)';
COMMENT ON COLUMN crm_bi.rfm_segments.share IS 'share of all customers';
COMMENT ON COLUMN crm_bi.rfm_segments.avg_recency_days IS 'mean days since the last order';
COMMENT ON COLUMN crm_bi.rfm_segments.avg_frequency IS 'mean number of orders';
COMMENT ON COLUMN crm_bi.rfm_segments.avg_monetary IS 'mean total spend';
COMMENT ON COLUMN crm_bi.rfm_segments.monetary IS 'total spend of the segment';
COMMENT ON COLUMN crm_bi.clv_model.customers IS 'customers the BG/NBD model is fitted to (at least 5)';
COMMENT ON COLUMN crm_bi.clv_model.repeat_customers IS 'customers with repeat purchases, the Gamma-Gamma model is fitted to';
COMMENT ON COLUMN crm_bi.clv_model.r IS 'BG/NBD r (shape of the purchase-rate distribution)';
COMMENT ON COLUMN crm_bi.clv_model.alpha IS 'BG/NBD alpha (scale of the purchase-rate distribution, in days)';
COMMENT ON COLUMN crm_bi.clv_model.a IS 'BG/NBD a (dropout distribution)';
COMMENT ON COLUMN crm_bi.clv_model.b IS 'BG/NBD b (dropout distribution)';
COMMENT ON COLUMN crm_bi.clv_model.bgnbd_ll IS 'log-likelihood of the BG/NBD fit';
COMMENT ON COLUMN crm_bi.clv_model.bgnbd_converged IS 'whether the BG/NBD fit converged';
COMMENT ON COLUMN crm_bi.clv_model.p IS 'Gamma-Gamma p';
COMMENT ON COLUMN crm_bi.clv_model.q IS 'Gamma-Gamma q (predictions need q > 1)';
COMMENT ON COLUMN crm_bi.clv_model.gamma IS 'Gamma-Gamma gamma';
COMMENT ON COLUMN crm_bi.clv_model.gammagamma_ll IS 'log-likelihood of the Gamma-Gamma fit';
COMMENT ON COLUMN crm_bi.clv_model.gammagamma_converged IS 'whether the Gamma-Gamma fit converged';
COMMENT ON COLUMN crm_bi.clv_distribution.decile IS 'decile of predicted one-year CLV, 1 = lowest';
COMMENT ON COLUMN crm_bi.clv_distribution.customers IS 'customers in the decile (at least 5)';
COMMENT ON COLUMN crm_bi.clv_distribution.clv_from IS 'lowest CLV in the decile (NULL for the lowest decile)';
COMMENT ON COLUMN crm_bi.clv_distribution.clv_to IS 'highest CLV in the decile (NULL for the highest decile)';
COMMENT ON COLUMN crm_bi.clv_distribution.avg_clv IS 'mean predicted one-year CLV';
COMMENT ON COLUMN crm_bi.clv_distribution.total_clv IS 'total predicted one-year CLV';
COMMENT ON COLUMN crm_bi.clv_distribution.avg_expected_purchases IS 'mean expected purchases in the next 365 days';
COMMENT ON COLUMN crm_bi.clv_distribution.avg_p_alive IS 'mean probability that the customer is still active';
COMMENT ON COLUMN crm_bi.campaign_lift.campaign_id IS 'campaign id';
COMMENT ON COLUMN crm_bi.campaign_lift.campaign IS 'campaign name';
COMMENT ON COLUMN crm_bi.campaign_lift.channel IS 'channel of the campaign';
COMMENT ON COLUMN crm_bi.campaign_lift.starts_on IS 'day the campaign starts, in UTC';
COMMENT ON COLUMN crm_bi.campaign_lift.ends_on IS 'day the campaign ends, in UTC; NULL = open-ended';
COMMENT ON COLUMN crm_bi.campaign_lift.targeted IS 'contacts targeted (at least 5)';
COMMENT ON COLUMN crm_bi.campaign_lift.held_out IS 'contacts held out as control (NULL below 5)';
COMMENT ON COLUMN crm_bi.campaign_lift.responded IS 'targeted contacts who responded';
COMMENT ON COLUMN crm_bi.campaign_lift.response_rate IS 'responded / targeted';
COMMENT ON COLUMN crm_bi.campaign_lift.holdout_responded IS 'held-out contacts who responded (NULL below 5 held out)';
COMMENT ON COLUMN crm_bi.campaign_lift.holdout_response_rate IS 'holdout_responded / held_out';
COMMENT ON COLUMN crm_bi.campaign_lift.revenue IS 'revenue of the responders (NULL below 5 responders)';
COMMENT ON COLUMN crm_bi.campaign_lift.holdout_revenue IS 'revenue of the held-out responders (NULL below 5 held out or 5 held-out responders)';
COMMENT ON COLUMN crm_bi.campaign_lift.cost IS 'cost of the campaign';
COMMENT ON COLUMN crm_bi.campaign_lift.return_on_cost IS '(revenue - cost) / cost (NULL below 5 responders)';
COMMENT ON COLUMN crm_bi.campaign_lift.lift IS 'relative lift: response_rate / holdout_response_rate - 1 (NULL below 5 held out)';
COMMENT ON COLUMN crm_bi.pipeline.pipeline_stage IS 'deal pipeline stage';
COMMENT ON COLUMN crm_bi.pipeline.deals IS 'open deals in the stage';
COMMENT ON COLUMN crm_bi.pipeline.contacts IS 'distinct contacts of those deals (at least 5)';
COMMENT ON COLUMN crm_bi.pipeline.amount IS 'total amount of the open deals';
COMMENT ON COLUMN crm_bi.pipeline.weighted_amount IS 'amount weighted by each deal''s probability';
COMMENT ON COLUMN crm_bi.activity_totals_daily.activity_on IS 'day of the activities, in UTC';
COMMENT ON COLUMN crm_bi.activity_totals_daily.kind IS 'activity kind';
COMMENT ON COLUMN crm_bi.activity_totals_daily.activities IS 'activities of the kind that day';
COMMENT ON COLUMN crm_bi.activity_totals_daily.contacts IS 'distinct contacts with such an activity that day (at least 5)';
COMMENT ON COLUMN crm_bi.order_totals_monthly.ordered_month IS 'first day of the month (UTC) the orders were placed';
COMMENT ON COLUMN crm_bi.order_totals_monthly.status IS 'placed, paid, shipped, cancelled or refunded';
COMMENT ON COLUMN crm_bi.order_totals_monthly.currency IS 'ISO 4217 currency code of total';
COMMENT ON COLUMN crm_bi.order_totals_monthly.orders IS 'orders in the cell';
COMMENT ON COLUMN crm_bi.order_totals_monthly.contacts IS 'distinct contacts with an order in the cell (at least 5)';
COMMENT ON COLUMN crm_bi.order_totals_monthly.total IS 'sum of the order totals, in currency';
COMMENT ON COLUMN crm_bi.order_totals_monthly.items IS 'sum of the orders'' item counts';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.created_month IS 'first day of the month (UTC) the deals were created';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.pipeline_stage IS 'pipeline stage of the deals';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.status IS 'open, won or lost';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.currency IS 'ISO 4217 currency code of amount';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.deals IS 'deals in the cell';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.contacts IS 'distinct contacts with a deal in the cell (at least 5)';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.amount IS 'sum of the deal amounts, in currency';
COMMENT ON COLUMN crm_bi.deal_totals_monthly.weighted_amount IS 'sum of amount x probability, in currency, rounded to 2 decimals';

-- as at install (src/ownership.sql): when crm was installed by a role that is
-- not a superuser (a trusted install), it owns crm_bi's views and may hand on
-- USAGE on the schema
DO $$
DECLARE
	installer regrole := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'crm');
	r record;
BEGIN
	IF installer = (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = current_user) THEN
		RETURN;
	END IF;
	FOR r IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c
			  WHERE c.relnamespace = 'crm_bi'::regnamespace AND c.relkind = 'v' ORDER BY c.oid LOOP
		EXECUTE format('ALTER VIEW %s OWNER TO %s', r.rel, installer);
	END LOOP;
	EXECUTE format('GRANT USAGE ON SCHEMA crm_bi TO %s WITH GRANT OPTION', installer);
END $$;

-- crm.refresh_segment writes the segment's row before its members (issue 15:
-- on Citus a reference table may not be written after parallel writes to
-- distributed tables in one transaction)
CREATE OR REPLACE FUNCTION crm.refresh_segment(name text, full_refresh boolean DEFAULT false,
	OUT entered bigint, OUT exited bigint)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
	s crm.segment;
	snap pg_snapshot;
	prev pg_snapshot;
	cand bigint[];
	ev record;
	evaluated bigint;
	entering bigint[];
	exiting bigint[];
	distributed boolean := pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
BEGIN
	-- the row lock serialises refreshes of one segment; once it is granted,
	-- the next statements see what a concurrent refresh committed
	s := crm.segment_lock(name);
	IF s.kind = 'static' THEN
		entered := 0;
		exited := 0;
		RETURN;
	END IF;
	snap := pg_current_snapshot();
	prev := s.refreshed_snapshot;
	-- The contacts to re-evaluate: those marked by transactions the last
	-- refresh's snapshot did not see, and by the last refreshing transaction
	-- itself (a snapshot counts its own transaction as seen once a later one
	-- has completed, and its later changes reuse its marks).  NULL, everyone:
	-- when asked, at the first refresh, when no marks are kept for the
	-- predicate (time dependent), or when the snapshot is from the future (the
	-- xids restarted: pg_restore).  A predicate that ranks contacts among each
	-- other needs everyone as soon as anything changed.
	-- On Citus the marks are written on the workers, with the workers' own
	-- transaction ids, which the coordinator's snapshot cannot order: every
	-- refresh there is a full one until the marks carry a cluster-wide order.
	IF distributed THEN
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
								 WHERE p.logicalrelid OPERATOR(pg_catalog.=) ''crm.segment_dirty''::pg_catalog.regclass)'
		   INTO distributed;
	END IF;
	IF full_refresh OR prev IS NULL OR s.time_dependent OR distributed
	   OR pg_snapshot_xmax(prev) > pg_snapshot_xmax(snap) THEN
		cand := NULL;
	ELSIF s.population_dependent THEN
		cand := CASE WHEN EXISTS (
					SELECT 1 FROM crm.segment_dirty d
					 WHERE d.xid >= pg_snapshot_xmin(prev)
					   AND (NOT pg_visible_in_snapshot(d.xid, prev) OR d.xid = s.refreshed_xid))
				THEN NULL ELSE '{}' END;
	ELSE
		cand := ARRAY(SELECT DISTINCT d.contact_id FROM crm.segment_dirty d
					   WHERE d.xid >= pg_snapshot_xmin(prev)
						 AND (NOT pg_visible_in_snapshot(d.xid, prev) OR d.xid = s.refreshed_xid));
	END IF;
	-- the predicate runs as the segment's owner, validated again, and its
	-- classification as validated now decides (no contact is read when the
	-- candidates are none and the predicate is not time dependent)
	ev := crm.segment_evaluate(s.segment_id, cand);
	IF ev.everyone THEN
		evaluated := (SELECT count(*) FROM crm.contact);
		WITH fresh AS MATERIALIZED (SELECT unnest(ev.members) AS contact_id),
		mem AS MATERIALIZED (SELECT m.contact_id FROM crm.segment_member m WHERE m.segment_id = s.segment_id)
		SELECT ARRAY(SELECT f.contact_id FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM mem WHERE mem.contact_id = f.contact_id)),
			   ARRAY(SELECT m.contact_id FROM mem m WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.contact_id = m.contact_id))
		  INTO entering, exiting;
	ELSE
		evaluated := cardinality(cand);
		WITH fresh AS MATERIALIZED (SELECT unnest(ev.members) AS contact_id),
		mem AS MATERIALIZED (
			SELECT m.contact_id FROM unnest(cand) c(contact_id)
			  JOIN crm.segment_member m ON m.segment_id = s.segment_id AND m.contact_id = c.contact_id)
		SELECT ARRAY(SELECT f.contact_id FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM mem WHERE mem.contact_id = f.contact_id)),
			   ARRAY(SELECT m.contact_id FROM mem m WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.contact_id = m.contact_id))
		  INTO entering, exiting;
	END IF;
	entered := cardinality(entering);
	exited := cardinality(exiting);
	-- On Citus crm.segment is a reference table, which a transaction may
	-- not write after a parallel operation on distributed tables: the
	-- function runs its multi-shard statements one connection at a time
	-- (citus.multi_shard_modify_mode, a placeholder setting off Citus)
	UPDATE crm.segment g
	   SET refreshed_at = now(), refreshed_snapshot = snap, refreshed_xid = pg_current_xact_id(),
		   last_full = ev.everyone, last_evaluated = evaluated, last_entered = entered, last_exited = exited,
		   time_dependent = ev.time_dependent, population_dependent = ev.population_dependent
	 WHERE g.segment_id = s.segment_id;
	PERFORM crm.segment_apply(s.segment_id, entering, exiting);
	-- dirty rows every incremental segment has seen are no longer needed (a
	-- snapshot's xmin is at most its own transaction's id)
	DELETE FROM crm.segment_dirty d
	 WHERE d.xid < (SELECT min(pg_snapshot_xmin(g.refreshed_snapshot)) FROM crm.segment g
					 WHERE g.kind = 'dynamic' AND NOT g.time_dependent HAVING bool_and(g.refreshed_snapshot IS NOT NULL));
END $$;

-- crm.forget_contact draws the erased address before its UPDATE and runs
-- its multi-shard statements sequentially (issue 15: Citus refuses volatile
-- functions in an UPDATE of a distributed table, and writes to reference
-- tables after parallel operations)
CREATE OR REPLACE FUNCTION crm.forget_contact(contact_id bigint, reason text, keep_email_hash boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
	c crm.contact;
	hash bytea;
	-- drawn here, not in the UPDATE: Citus sends an UPDATE to the shard
	-- with its values, and refuses volatile functions in it
	token text := 'erased-' || md5(gen_random_uuid()::text) || '@erased.invalid';
	chain bigint[];			-- this contact and those merged into it, transitively
	frontier bigint[];
	done record;
	n_act bigint;
	n_deal bigint;
	n_task bigint;
	n_consent bigint;
	n_merge bigint;
	eid bigint;
BEGIN
	IF btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason is required to forget a contact'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Say why, e.g. ''erasure request of 2024-05-01 (ticket 123)''; it is kept in crm.erasure_log.';
	END IF;
	SELECT * INTO c FROM crm.contact x WHERE x.contact_id = forget_contact.contact_id FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM crm.require_contact(forget_contact.contact_id, 'erased');
	END IF;
	SELECT e.erasure_id, e.erased_at INTO done FROM crm.erasure_log e
	 WHERE e.contact_id = forget_contact.contact_id;
	IF FOUND THEN
		RAISE NOTICE 'contact % was already forgotten', forget_contact.contact_id
			USING DETAIL = format('Erased on %s; see crm.erasure_log, erasure_id %s.', done.erased_at, done.erasure_id);
		RETURN NULL;
	END IF;

	IF keep_email_hash THEN
		INSERT INTO crm.privacy_salt (salt)
		VALUES (decode(md5(gen_random_uuid()::text) || md5(gen_random_uuid()::text), 'hex'))
		ON CONFLICT (id) DO NOTHING;
		hash := crm.salted_email_hash(c.email);
	END IF;

	-- the erasure record first: it is what allows the consent notes to go
	INSERT INTO crm.erasure_log (contact_id, reason, email_hash)
	VALUES (forget_contact.contact_id, reason, hash)
	RETURNING erasure_id INTO eid;

	UPDATE crm.contact x
	   SET email = token,
		   first_name = NULL, last_name = NULL, phone = NULL, city = NULL, region = NULL,
		   birth_date = NULL, income_band = NULL, job_title = NULL,
		   attrs = jsonb_build_object('erased', true),
		   do_not_contact = 'manual'
	 WHERE x.contact_id = forget_contact.contact_id;
	UPDATE crm.activity a SET properties = '{}'
	 WHERE a.contact_id = forget_contact.contact_id AND a.properties <> '{}';
	GET DIAGNOSTICS n_act = ROW_COUNT;
	-- points earned by the stripped properties go too: the scores become
	-- what crm.rescore() makes of the activities as they are now
	PERFORM crm.rescore(ARRAY[forget_contact.contact_id]);
	-- immutable expressions only (textcat, jsonb_set, casts): Citus refuses
	-- STABLE functions of columns in an UPDATE of a distributed table
	UPDATE crm.deal x SET title = 'deal ' || x.deal_id::text || ' (erased contact)'
	 WHERE x.contact_id = forget_contact.contact_id;
	GET DIAGNOSTICS n_deal = ROW_COUNT;
	UPDATE crm.task x SET title = 'task ' || x.task_id::text || ' (erased contact)', note = NULL
	 WHERE x.contact_id = forget_contact.contact_id;
	GET DIAGNOSTICS n_task = ROW_COUNT;
	UPDATE crm.consent x SET note = NULL
	 WHERE x.contact_id = forget_contact.contact_id AND x.note IS NOT NULL;
	GET DIAGNOSTICS n_consent = ROW_COUNT;
	-- before-images of merges into this contact, and of merges into those
	-- (a loop, not a recursive CTE: Citus plans none over a reference table)
	chain := ARRAY[forget_contact.contact_id];
	frontier := chain;
	LOOP
		frontier := ARRAY(SELECT DISTINCT m.dropped_id FROM crm.merge_log m
						   WHERE m.kept_id = ANY (frontier) AND m.dropped_id <> ALL (chain));
		EXIT WHEN cardinality(frontier) = 0;
		chain := chain || frontier;
	END LOOP;
	UPDATE crm.merge_log m
	   SET dropped_row = jsonb_set('{"erased": true}', '{contact_id}', m.dropped_id::text::jsonb),
		   kept_row = jsonb_set('{"erased": true}', '{contact_id}', m.kept_id::text::jsonb),
		   conflicts = '[]', moved_consent = '[]'
	 WHERE m.kept_id = ANY (chain);
	GET DIAGNOSTICS n_merge = ROW_COUNT;

	UPDATE crm.erasure_log e
	   SET details = jsonb_build_object('activities_stripped', n_act, 'deals_redacted', n_deal,
										'tasks_redacted', n_task, 'consent_notes_cleared', n_consent,
										'merge_logs_redacted', n_merge, 'email_hash_kept', keep_email_hash)
	 WHERE e.erasure_id = eid;
	RETURN eid;
END $$;

-- crm.grade_of in C, from the rule cache (issue 15: an SQL read of
-- crm.score_group inside a query Citus pushed to a shard is refused)
CREATE OR REPLACE FUNCTION crm.grade_of(score_group text, score double precision) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_grade_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- crm.merge_contacts on Citus (issue 15): locks its two contacts one
-- statement each (only single-shard queries may take row locks), settles the
-- stage before the rows move, and moves them by INSERT ... SELECT and DELETE
-- (a distribution column cannot be updated); the dropped contact's consent
-- rows are logged (moved_consent) while the merge is in progress, which is
-- what crm.consent_append_only checks, on the shard, before a DELETE
ALTER TABLE crm.merge_log
	ADD COLUMN moved_consent jsonb NOT NULL DEFAULT '[]',
	ADD COLUMN in_progress boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN crm.merge_log.moved_consent IS 'JSON array of the dropped contact''s consent rows (before-images) that the merge copied onto the kept contact and then removed';
COMMENT ON COLUMN crm.merge_log.in_progress IS 'true only inside the merging transaction, while the dropped contact''s rows move (crm.consent_append_only lets the listed consent rows go then)';
CREATE OR REPLACE FUNCTION crm.consent_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' AND EXISTS (
		SELECT 1 FROM crm.merge_log m
		 WHERE m.dropped_id OPERATOR(pg_catalog.=) OLD.contact_id
		   AND m.in_progress
		   AND m.moved_consent OPERATOR(pg_catalog.@>) pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(OLD))) THEN
		RETURN OLD;
	END IF;
	IF TG_LEVEL = 'ROW' AND TG_OP = 'UPDATE' AND NEW.note IS NULL
	   AND (to_jsonb(NEW) - 'note') OPERATOR(pg_catalog.=) (to_jsonb(OLD) - 'note')
	   AND EXISTS (SELECT 1 FROM crm.erasure_log e
				    WHERE e.contact_id OPERATOR(pg_catalog.=) OLD.contact_id) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'crm.consent is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  DETAIL = 'Consent rows are the legal record of what a contact agreed to and when.',
			  HINT = 'Record a change of consent by inserting a new row with status granted, denied or revoked.';
END $$;

CREATE OR REPLACE FUNCTION crm.merge_contacts(keep bigint, drop bigint, dry_run boolean DEFAULT false)
RETURNS TABLE (item text, action text, rows bigint)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
-- on Citus, one connection per node: the consent trigger on a worker must
-- see this transaction's crm.merge_log row (a placeholder setting off Citus)
SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
	k crm.contact;
	d crm.contact;
	r record;
	ix record;
	n bigint;
	log_id bigint;
	v_moved jsonb := '[]';
	v_conflicts jsonb := '[]';
	cond text;
	cols text;
	vals text;
	moving regclass[] := '{}';
	ordered regclass[] := '{}';
	consent_rows jsonb;
	stage_entry jsonb;
	counted jsonb := '{}';
	merged jsonb;
	refs crm.contact_reference[];
	called regprocedure[] := '{}';
	cur crm.stage;
	v_stage crm.stage;
	v_forced boolean;
	v_reason text;
BEGIN
	IF keep = drop THEN
		RAISE EXCEPTION 'cannot merge contact % into itself', keep
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass two different contact ids: the one to keep and the duplicate to drop.';
	END IF;
	-- lock both in id order; a concurrent insert's foreign-key check waits.
	-- One contact per statement: on Citus each is then a single-shard
	-- query, the only kind that may take row locks.
	PERFORM 1 FROM crm.contact c WHERE c.contact_id = least(keep, drop) FOR UPDATE;
	PERFORM 1 FROM crm.contact c WHERE c.contact_id = greatest(keep, drop) FOR UPDATE;
	PERFORM crm.require_contact(keep, 'kept');
	PERFORM crm.require_contact(drop, 'dropped');
	SELECT * INTO k FROM crm.contact c WHERE c.contact_id = keep;
	SELECT * INTO d FROM crm.contact c WHERE c.contact_id = drop;
	-- the catalog walk once, not once per step
	refs := ARRAY(SELECT x FROM crm.contact_references() x);

	IF dry_run THEN
		FOR r IN SELECT * FROM unnest(refs) LOOP
			EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.table_name, r.contact_column)
			   INTO n USING drop;
			IF n > 0 THEN
				item := r.table_name::text;
				action := CASE WHEN r.table_name = 'crm.consent'::regclass THEN 'copy to keep'
							   WHEN r.action = 'function' THEN 'call ' || r.merge_function::text
							   WHEN r.table_name = 'crm.stage_history'::regclass AND r.action = 'move'
								 THEN 'move, marked merged_from'
							   ELSE r.action END;
				rows := n;
				RETURN NEXT;
			END IF;
		END LOOP;
		v_stage := crm.merged_stage(k.stage, d.stage);
		item := 'crm.stage_history';
		action := format('record the merge: %s -> %s%s', k.stage, v_stage,
						 CASE WHEN crm.stage_move_is_forward(k.stage, v_stage) OR k.stage = v_stage
							  THEN '' ELSE ' (forced)' END);
		rows := 1;
		RETURN NEXT;
		item := 'crm.contact'; action := 'fill empty fields of keep, then delete drop'; rows := 1;
		RETURN NEXT;
		RETURN;
	END IF;

	-- in progress until the end: while it is, crm.consent_append_only lets
	-- the consent rows logged here go (after they are copied onto keep)
	SELECT coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.consent_id), '[]') INTO consent_rows
	  FROM crm.consent l WHERE l.contact_id = drop;
	INSERT INTO crm.merge_log (kept_id, dropped_id, dropped_row, kept_row, moved_consent, in_progress)
	VALUES (keep, drop, to_jsonb(d), to_jsonb(k), consent_rows, true)
	RETURNING merge_id INTO log_id;

	-- registered merge functions see both contacts first
	FOR r IN SELECT * FROM unnest(refs) x WHERE x.action = 'function' LOOP
		-- once each: one function may merge several tables (crm.merge_points)
		IF NOT r.merge_function = ANY (called) THEN
			EXECUTE format('SELECT %s($1, $2)', r.merge_function::regproc) USING keep, drop;
			called := called || r.merge_function;
		END IF;
		EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.table_name, r.contact_column)
		   INTO n USING drop;
		IF n > 0 THEN
			RAISE EXCEPTION 'merge function % left % rows of contact % in %', r.merge_function, n, drop, r.table_name
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		v_moved := v_moved || jsonb_build_object('table', r.table_name::text, 'action', 'merged by ' || r.merge_function::text);
	END LOOP;

	-- consent: copy the ledger onto keep, settle each channel on the most
	-- restrictive current state of the two, then remove the originals
	INSERT INTO crm.consent (contact_id, channel, status, recorded_at, valid_until, source, actor, note, merged_from)
	SELECT keep, l.channel, l.status, l.recorded_at, l.valid_until, l.source, l.actor, l.note, drop
	  FROM crm.consent l WHERE l.contact_id = drop ORDER BY l.recorded_at, l.consent_id;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		INSERT INTO crm.consent (contact_id, channel, status, valid_until, source, note)
		SELECT keep, w.channel,
			   CASE WHEN w.valid_until <= now() THEN 'revoked' ELSE w.status END,
			   CASE WHEN w.valid_until > now() THEN w.valid_until END, 'merge',
			   format('most restrictive of contacts %s and %s', keep, drop)
			   || CASE WHEN w.valid_until <= now() THEN ' (a grant had expired)' ELSE '' END
		  FROM (SELECT c.channel,
					   CASE WHEN bool_or(c.status = 'revoked') THEN 'revoked'
							WHEN bool_or(c.status = 'denied') THEN 'denied' ELSE 'granted' END AS status,
					   CASE WHEN bool_and(c.status = 'granted') THEN min(c.valid_until) END AS valid_until
				  FROM (SELECT DISTINCT ON (l.contact_id, l.channel) l.contact_id, l.channel, l.status, l.valid_until
						  FROM crm.consent l WHERE l.contact_id IN (keep, drop) AND l.merged_from IS DISTINCT FROM drop
						 ORDER BY l.contact_id, l.channel, l.recorded_at DESC, l.consent_id DESC) c
				 GROUP BY c.channel) w
		  -- only where the copied history does not already end in that state
		 WHERE NOT EXISTS (
				SELECT 1 FROM (SELECT l.status, l.valid_until FROM crm.consent l
								WHERE l.contact_id = keep AND l.channel = w.channel
								ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1) last
				 WHERE last.status = w.status
				   AND (w.status <> 'granted' OR last.valid_until IS NOT DISTINCT FROM w.valid_until));
		DELETE FROM crm.consent l WHERE l.contact_id = drop;
		v_moved := v_moved || jsonb_build_object('table', 'crm.consent', 'action', 'copied to keep', 'rows', n);
	END IF;

	-- rows that would clash on a unique key: the kept contact's row wins
	FOR r IN SELECT * FROM unnest(refs) x
			  WHERE x.action IN ('move', 'delete') AND x.table_name <> 'crm.consent'::regclass LOOP
		IF r.action = 'delete' THEN
			EXECUTE format('WITH g AS (DELETE FROM %s t WHERE t.%I = $1 RETURNING t.*)
							SELECT count(*), coalesce(jsonb_agg(jsonb_build_object(%L, to_jsonb(g))), ''[]'') FROM g',
						   r.table_name, r.contact_column, r.table_name::text)
			   INTO n, merged USING drop;
			v_conflicts := v_conflicts || merged;
			v_moved := v_moved || jsonb_build_object('table', r.table_name::text, 'action', 'deleted (logged)', 'rows', n);
			CONTINUE;
		END IF;
		FOR ix IN
			SELECT (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
					 WHERE a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey::int2[])
					   AND a.attname <> r.contact_column) AS others
			  FROM pg_index x
			 WHERE x.indrelid = r.table_name AND x.indisunique AND x.indpred IS NULL
			   AND x.indexprs IS NULL
			   AND (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = x.indrelid
					   AND a.attname = r.contact_column) = ANY (x.indkey::int2[])
		LOOP
			-- keep's keys read first (one contact's shard), then drop's rows
			-- with those keys deleted (the other's): on Citus the two
			-- contacts' rows are on different shards
			IF ix.others IS NULL THEN
				cond := format('EXISTS (SELECT 1 FROM %s k WHERE k.%I = $2)', r.table_name, r.contact_column);
			ELSE
				SELECT string_agg(format('t.%I', o), ', '), string_agg(format('k.%I', o), ', ')
				  INTO cols, vals FROM unnest(ix.others) o;
				cond := format('(%s) IN (SELECT %s FROM %s k WHERE k.%I = $2)', cols, vals, r.table_name, r.contact_column);
			END IF;
			EXECUTE format('WITH g AS (DELETE FROM %1$s t WHERE t.%2$I = $1 AND %3$s RETURNING t.*)
							SELECT count(*), coalesce(jsonb_agg(jsonb_build_object(%4$L, to_jsonb(g))), ''[]'') FROM g',
						   r.table_name, r.contact_column, cond, r.table_name::text)
			   INTO n, merged USING drop, keep;
			IF n > 0 THEN
				v_conflicts := v_conflicts || merged;
				v_moved := v_moved || jsonb_build_object('table', r.table_name::text, 'action', 'key clash: kept keep''s row, logged drop''s', 'rows', n);
			END IF;
		END LOOP;
	END LOOP;

	-- the most advanced stage, and a history row that records the merge,
	-- before drop's rows arrive: their copies fire keep's triggers, which
	-- then promote only past what the two stages already were (by a
	-- combined score, say), and the history ends at the contact's stage
	-- even when drop's moved rows are later than keep's own
	SELECT c.stage INTO cur FROM crm.contact c WHERE c.contact_id = keep;
	v_stage := crm.merged_stage(cur, d.stage);
	v_reason := format('merge: contact %s (stage %s) merged into this one', drop, d.stage);
	IF v_stage = cur THEN
		v_forced := false;
		INSERT INTO crm.stage_history (contact_id, from_stage, to_stage, changed_at, reason)
		VALUES (keep, cur, cur, clock_timestamp(), v_reason);
	ELSE
		-- leaving an exit, or a lead becoming churned, is outside the
		-- forward-only rule: forced, and logged as such
		v_forced := NOT crm.stage_move_is_forward(cur, v_stage);
		PERFORM crm.set_stage(keep, v_stage, v_reason, force => v_forced);
	END IF;
	stage_entry := jsonb_build_object('table', 'crm.stage_history',
		'action', format('recorded the merge: %s -> %s%s', cur, v_stage, CASE WHEN v_forced THEN ' (forced)' ELSE '' END),
		'rows', 1);

	-- move everything else: copy drop's rows onto keep, referenced tables
	-- first (order before order_line), then delete the originals, the
	-- referencing ones first.  Insert and delete, not an update of the
	-- contact column: on Citus that column places the row on its shard.
	-- The copies are new rows to the triggers (scores, promotions), as if
	-- keep had done what drop did; keep is rescored below.
	SELECT array_agg(x.table_name) INTO moving FROM unnest(refs) x
	 WHERE x.action = 'move' AND x.table_name <> 'crm.consent'::regclass;
	WHILE cardinality(ordered) < cardinality(moving) LOOP
		n := cardinality(ordered);
		ordered := ordered || ARRAY(
			SELECT m FROM unnest(moving) m
			 WHERE m <> ALL (ordered)
			   AND NOT EXISTS (SELECT 1 FROM pg_constraint con
								WHERE con.conrelid = m AND con.contype = 'f' AND con.confrelid <> m
								  AND con.confrelid = ANY (moving) AND con.confrelid <> ALL (ordered)));
		IF cardinality(ordered) = n THEN
			RAISE EXCEPTION 'cannot order the tables to move: their foreign keys form a cycle (%)',
				ARRAY(SELECT m FROM unnest(moving) m WHERE m <> ALL (ordered))
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
	END LOOP;
	FOR i IN 1..coalesce(cardinality(ordered), 0) LOOP
		SELECT x.* INTO r FROM unnest(refs) x WHERE x.table_name = ordered[i] LIMIT 1;
		-- every stored column but the contact's; a history row keeps the
		-- contact it was first written for
		SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
			   string_agg(CASE WHEN r.table_name = 'crm.stage_history'::regclass AND a.attname = 'merged_from'
							   THEN 'coalesce(t.merged_from, $2)' ELSE 't.' || quote_ident(a.attname) END,
						  ', ' ORDER BY a.attnum),
			   CASE WHEN bool_or(a.attidentity = 'a') THEN 'OVERRIDING SYSTEM VALUE' ELSE '' END
		  INTO cols, vals, cond
		  FROM pg_attribute a
		 WHERE a.attrelid = r.table_name AND a.attnum > 0 AND NOT a.attisdropped
		   AND a.attgenerated = '' AND a.attname <> r.contact_column;
		EXECUTE format('INSERT INTO %1$s (%2$I%3$s) %4$s SELECT $1%5$s FROM %1$s t WHERE t.%2$I = $2',
					   r.table_name, r.contact_column,
					   CASE WHEN cols IS NULL THEN '' ELSE ', ' || cols END, cond,
					   CASE WHEN vals IS NULL THEN '' ELSE ', ' || vals END)
		  USING keep, drop;
		GET DIAGNOSTICS n = ROW_COUNT;
		counted := counted || jsonb_build_object(r.table_name::text, n);
	END LOOP;
	FOR i IN REVERSE coalesce(cardinality(ordered), 0)..1 LOOP
		SELECT x.* INTO r FROM unnest(refs) x WHERE x.table_name = ordered[i] LIMIT 1;
		EXECUTE format('DELETE FROM %s t WHERE t.%I = $1', r.table_name, r.contact_column) USING drop;
	END LOOP;
	SELECT v_moved || coalesce(jsonb_agg(jsonb_build_object('table', x.table_name::text, 'action', 'moved',
															'rows', counted -> x.table_name::text) ORDER BY x.i), '[]')
	  INTO v_moved
	  FROM unnest(refs) WITH ORDINALITY x(table_name, contact_column, action, merge_function, i)
	 WHERE (counted ->> x.table_name::text)::bigint > 0;

	-- nothing may still point at drop (ON DELETE CASCADE would lose it)
	FOR r IN SELECT * FROM unnest(refs) LOOP
		EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.table_name, r.contact_column)
		   INTO n USING drop;
		IF n > 0 THEN
			RAISE EXCEPTION 'merge would lose % rows of % that still point at contact %', n, r.table_name, drop
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Register how to merge that table in crm.merge_rule.';
		END IF;
	END LOOP;

	-- keep's empty fields from drop; the strictest do-not-contact; attrs
	-- joined (keep wins per key); drop's address kept in attrs.merged_emails;
	-- the stage below
	merged := (to_jsonb(d) - '{contact_id,email,owner,created_at,updated_at,stage,attrs}'::text[])
			  || jsonb_strip_nulls(to_jsonb(k))
			  || jsonb_build_object(
					'created_at', least(k.created_at, d.created_at),
					'attrs', d.attrs || k.attrs || jsonb_build_object('merged_emails',
						coalesce(k.attrs -> 'merged_emails', '[]') || coalesce(d.attrs -> 'merged_emails', '[]')
						|| to_jsonb(d.email::text)));
	SELECT string_agg(format('%1$I = r.%1$I', a.attname), ', ' ORDER BY a.attnum) INTO cols
	  FROM pg_attribute a
	 WHERE a.attrelid = 'crm.contact'::regclass AND a.attnum > 0 AND NOT a.attisdropped
	   AND a.attgenerated = '' AND a.attidentity = ''
	   AND a.attname NOT IN ('contact_id', 'email', 'updated_at', 'stage');
	DELETE FROM crm.contact c WHERE c.contact_id = drop;
	EXECUTE format('UPDATE crm.contact c SET %s FROM jsonb_populate_record(NULL::crm.contact, $1) r
					 WHERE c.contact_id = $2', cols) USING merged, keep;

	v_moved := v_moved || stage_entry;
	-- the kept contact's scores, recomputed from its merged history
	PERFORM crm.rescore(ARRAY[keep]);

	UPDATE crm.merge_log m SET moved = v_moved, conflicts = v_conflicts, in_progress = false
	 WHERE m.merge_id = log_id;
	FOR r IN SELECT * FROM jsonb_to_recordset(v_moved) AS x("table" text, action text, rows bigint) LOOP
		item := r."table";
		action := r.action;
		rows := r.rows;
		RETURN NEXT;
	END LOOP;
	item := 'crm.merge_log'; action := 'logged'; rows := 1;
	RETURN NEXT;
END $$;

-- Lifecycle history in event time (src/lifecycle.sql): changed_at is when
-- the transition happened in the world, recorded_at the wall clock of the
-- write (audit); rows written before are taken as recorded when they say
-- they changed.  crm.set_stage takes the time of a manual move.
ALTER TABLE crm.stage_history ADD COLUMN recorded_at timestamptz;
UPDATE crm.stage_history SET recorded_at = changed_at;
ALTER TABLE crm.stage_history ALTER COLUMN recorded_at SET DEFAULT clock_timestamp(),
	ALTER COLUMN recorded_at SET NOT NULL;
COMMENT ON COLUMN crm.stage_history.recorded_at IS 'audit: when the row was written (the wall clock of the writing statement), by actor';
DROP FUNCTION crm.set_stage(bigint, crm.stage, text, boolean);
CREATE FUNCTION crm.set_stage(contact_id bigint, stage crm.stage, reason text, force boolean DEFAULT false,
	at timestamptz DEFAULT NULL)
RETURNS crm.stage
	AS 'MODULE_PATHNAME', 'crm_set_stage' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.set_stage(bigint, crm.stage, text, boolean, timestamptz) IS
	'moves a contact to a stage by hand, at a time (NULL: the clock; else not in the future, not before its last transition); a backward move needs force => true and a reason; logged in crm.stage_history';

-- After a late or unordered import: the automatic transitions recomputed
-- from the events (src/lifecycle_rebuild.c), the rest of the history kept.
CREATE FUNCTION crm.rebuild_stage_history(contact_ids bigint[] DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_rebuild_stage_history' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.rebuild_stage_history(bigint[]) IS
	'recomputes the automatic transitions of the given contacts (everyone when NULL) from their activities, deals and orders in time order, keeping first, manual, forced and merge rows and still-valid churns; sets each stage to where its history ends; returns how many contacts were rebuilt';

-- crm.stage_conversion: times in stage justified, and in days as numbers
DROP FUNCTION crm.stage_conversion(timestamptz, timestamptz);
CREATE FUNCTION crm.stage_conversion(from_date timestamptz, to_date timestamptz,
	OUT stage crm.stage, OUT entered bigint, OUT moved_on bigint, OUT conversion numeric,
	OUT median_time_in_stage interval, OUT p90_time_in_stage interval,
	OUT median_days numeric, OUT p90_days numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	-- each record's own timeline: rows a merge moved onto a contact follow
	-- one another (merged_from), not the kept contact's; a merge that kept
	-- the stage (from = to) is no move
	WITH h AS (
		SELECT h.contact_id, h.to_stage, h.changed_at,
			   lead(h.to_stage) OVER w AS next_stage, lead(h.changed_at) OVER w AS left_at
		  FROM crm.stage_history h
		 WHERE h.from_stage IS DISTINCT FROM h.to_stage
		WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id)),
	-- moving on is a later funnel stage before to_date; the exits
	-- (disqualified, churned) end the time in stage but are no conversion
	e AS (
		SELECT h.*, (h.next_stage > h.to_stage AND h.next_stage NOT IN ('disqualified', 'churned')
					 AND h.left_at < to_date) AS converted
		  FROM h WHERE h.changed_at >= from_date AND h.changed_at < to_date),
	-- the intervals justified (days beyond 30 read as months), and in days
	-- as a number, for sorting and charts
	q AS (
		SELECT s.stage, count(e.contact_id) AS entered,
			   count(*) FILTER (WHERE e.converted) AS moved_on,
			   percentile_cont(0.5) WITHIN GROUP (ORDER BY e.left_at - e.changed_at)
				 FILTER (WHERE e.left_at < to_date) AS median,
			   percentile_cont(0.9) WITHIN GROUP (ORDER BY e.left_at - e.changed_at)
				 FILTER (WHERE e.left_at < to_date) AS p90
		  FROM unnest(enum_range(NULL::crm.stage)) s(stage)
		  LEFT JOIN e ON e.to_stage = s.stage
		 GROUP BY s.stage)
	SELECT q.stage, q.entered, q.moved_on, round(q.moved_on::numeric / nullif(q.entered, 0), 4),
		   justify_interval(q.median), justify_interval(q.p90),
		   round((extract(epoch FROM q.median) / 86400)::numeric, 1),
		   round((extract(epoch FROM q.p90) / 86400)::numeric, 1)
	  FROM q ORDER BY q.stage;
END $$;
COMMENT ON FUNCTION crm.stage_conversion(timestamptz, timestamptz) IS
	'per stage: contacts that entered it in [from_date, to_date), how many moved on to a later stage before to_date, the rate, median and p90 time in stage (justified intervals, and days as numbers)';

-- Lead cohorts: contacts by the month (UTC) they entered the funnel as a
-- lead or later, and the share that reached mql, sql and customer within
-- 30, 90 and 180 days of it.  Each contact's first time at or past a stage,
-- from its own timeline (rows a merge moved here are another record's).
CREATE VIEW crm.lead_cohorts WITH (security_invoker = true) AS
WITH firsts AS (
	SELECT h.contact_id,
		   min(h.changed_at) FILTER (WHERE h.to_stage BETWEEN 'lead' AND 'evangelist') AS lead_at,
		   min(h.changed_at) FILTER (WHERE h.to_stage BETWEEN 'mql' AND 'evangelist') AS mql_at,
		   min(h.changed_at) FILTER (WHERE h.to_stage BETWEEN 'sql' AND 'evangelist') AS sql_at,
		   min(h.changed_at) FILTER (WHERE h.to_stage BETWEEN 'customer' AND 'evangelist') AS customer_at
	  FROM crm.stage_history h
	 WHERE h.merged_from IS NULL
	 GROUP BY h.contact_id),
c AS (
	SELECT date_trunc('month', f.lead_at AT TIME ZONE 'UTC')::date AS cohort, f.*
	  FROM firsts f WHERE f.lead_at IS NOT NULL)
SELECT c.cohort, count(*) AS leads,
	   round(avg(coalesce(c.mql_at < c.lead_at + interval '30 days', false)::int), 4) AS mql_30d,
	   round(avg(coalesce(c.mql_at < c.lead_at + interval '90 days', false)::int), 4) AS mql_90d,
	   round(avg(coalesce(c.mql_at < c.lead_at + interval '180 days', false)::int), 4) AS mql_180d,
	   round(avg(coalesce(c.sql_at < c.lead_at + interval '30 days', false)::int), 4) AS sql_30d,
	   round(avg(coalesce(c.sql_at < c.lead_at + interval '90 days', false)::int), 4) AS sql_90d,
	   round(avg(coalesce(c.sql_at < c.lead_at + interval '180 days', false)::int), 4) AS sql_180d,
	   round(avg(coalesce(c.customer_at < c.lead_at + interval '30 days', false)::int), 4) AS customer_30d,
	   round(avg(coalesce(c.customer_at < c.lead_at + interval '90 days', false)::int), 4) AS customer_90d,
	   round(avg(coalesce(c.customer_at < c.lead_at + interval '180 days', false)::int), 4) AS customer_180d
  FROM c
 GROUP BY c.cohort;
COMMENT ON VIEW crm.lead_cohorts IS
	'contacts by the month (UTC) they first became a lead or later, and the share of them that reached mql, sql and customer within 30, 90 and 180 days';
COMMENT ON COLUMN crm.lead_cohorts.cohort IS 'first day of the month (UTC) in which the contacts first became a lead or later';
COMMENT ON COLUMN crm.lead_cohorts.leads IS 'contacts of the cohort';
COMMENT ON COLUMN crm.lead_cohorts.mql_30d IS 'share of the cohort that reached mql or later within 30 days of becoming a lead';
COMMENT ON COLUMN crm.lead_cohorts.mql_90d IS 'share that reached mql or later within 90 days';
COMMENT ON COLUMN crm.lead_cohorts.mql_180d IS 'share that reached mql or later within 180 days';
COMMENT ON COLUMN crm.lead_cohorts.sql_30d IS 'share that reached sql or later within 30 days';
COMMENT ON COLUMN crm.lead_cohorts.sql_90d IS 'share that reached sql or later within 90 days';
COMMENT ON COLUMN crm.lead_cohorts.sql_180d IS 'share that reached sql or later within 180 days';
COMMENT ON COLUMN crm.lead_cohorts.customer_30d IS 'share that became a customer (or evangelist) within 30 days';
COMMENT ON COLUMN crm.lead_cohorts.customer_90d IS 'share that became a customer within 90 days';
COMMENT ON COLUMN crm.lead_cohorts.customer_180d IS 'share that became a customer within 180 days';

-- ---------------------------------------------------------------------------
-- Extension phase: market-basket mining over the order lines (src/basket.c).
-- Definitions as R arules': support = count / baskets, an itemset frequent
-- when count >= ceil(min_support x baskets), one product on the right, and
-- max_len bounding the whole rule.
-- ---------------------------------------------------------------------------

CREATE FUNCTION crm.frequent_itemsets(min_support double precision, max_len integer DEFAULT 10,
	basket text DEFAULT 'order',
	OUT items bigint[], OUT count bigint, OUT support double precision)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'crm_frequent_itemsets' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10000;
COMMENT ON FUNCTION crm.frequent_itemsets(double precision, integer, text) IS
	'the sets of products bought together in at least min_support of the baskets (orders not cancelled or refunded; basket => ''contact'': all a contact bought), up to max_len products, with their counts';

CREATE FUNCTION crm.association_rules(min_support double precision, min_confidence double precision,
	max_len integer DEFAULT 10, min_len integer DEFAULT 2, basket text DEFAULT 'order', max_rules bigint DEFAULT 1000000,
	OUT lhs bigint[], OUT rhs bigint, OUT count bigint, OUT support double precision,
	OUT confidence double precision, OUT lift double precision, OUT conviction double precision)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'crm_association_rules' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10000;
COMMENT ON FUNCTION crm.association_rules(double precision, double precision, integer, integer, text, bigint) IS
	'rules lhs => rhs (one product) over the baskets: support and confidence at least the given ones, min_len to max_len products in all (min_len 1 admits {} => rhs); stops with 54000 past max_rules rules';

-- Mined rules kept for reuse: the last refresh per basket kind, with when,
-- by whom and with which settings it was mined.
CREATE TABLE crm.product_rule (
	rule_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	basket		text NOT NULL
		CONSTRAINT basket_order_or_contact CHECK (basket IN ('order', 'contact')),
	lhs			bigint[] NOT NULL,
	rhs			bigint NOT NULL REFERENCES crm.product ON DELETE CASCADE,
	count		bigint NOT NULL,
	support		double precision NOT NULL,
	confidence	double precision NOT NULL,
	lift		double precision NOT NULL,
	conviction	double precision NOT NULL,
	min_support double precision NOT NULL,
	min_confidence double precision NOT NULL,
	max_len		integer NOT NULL,
	mined_at	timestamptz NOT NULL DEFAULT now(),
	mined_by	text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE crm.product_rule IS 'association rules kept by crm.refresh_product_rules: lhs => rhs with their measures and the settings they were mined with';
-- the rules whose left-hand side a basket contains: lhs <@ basket
CREATE INDEX product_rule_lhs_idx ON crm.product_rule USING gin (lhs);
SELECT pg_catalog.pg_extension_config_dump('crm.product_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm.product_rule_rule_id_seq', '');

CREATE FUNCTION crm.refresh_product_rules(min_support double precision, min_confidence double precision,
	max_len integer DEFAULT 4, basket text DEFAULT 'order', max_rules bigint DEFAULT 1000000, min_len integer DEFAULT 2)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	-- mined first: a refusal (22023, 54000) leaves the kept rules as they were
	CREATE TEMP TABLE IF NOT EXISTS crm_mined_rules ON COMMIT DROP AS
	SELECT r.* FROM crm.association_rules(min_support, min_confidence, max_len, min_len, basket, max_rules) r;
	DELETE FROM crm.product_rule p WHERE p.basket = refresh_product_rules.basket;
	INSERT INTO crm.product_rule (basket, lhs, rhs, count, support, confidence, lift, conviction,
								  min_support, min_confidence, max_len)
	SELECT refresh_product_rules.basket, r.lhs, r.rhs, r.count, r.support, r.confidence, r.lift, r.conviction,
		   min_support, min_confidence, max_len
	  FROM pg_temp.crm_mined_rules r;
	GET DIAGNOSTICS n = ROW_COUNT;
	DROP TABLE pg_temp.crm_mined_rules;
	RETURN n;
END $$;
COMMENT ON FUNCTION crm.refresh_product_rules(double precision, double precision, integer, text, bigint, integer) IS
	'mines the association rules (crm.association_rules) and keeps them in crm.product_rule in place of that basket kind''s earlier ones; min_len 1 also keeps {} => product rules (the popular products, as a fallback for recommendations); returns how many';

CREATE VIEW crm.product_rules WITH (security_invoker = true) AS
SELECT r.rule_id, r.basket,
	   ARRAY(SELECT p.name FROM unnest(r.lhs) u(id) JOIN crm.product p ON p.product_id = u.id ORDER BY p.name) AS lhs_names,
	   q.name AS rhs_name, r.lhs, r.rhs, r.count, r.support, r.confidence, r.lift, r.conviction, r.mined_at
  FROM crm.product_rule r JOIN crm.product q ON q.product_id = r.rhs;
COMMENT ON VIEW crm.product_rules IS 'crm.product_rule with product names';

-- Spark's FPGrowthModel.transform, ranked: every kept rule whose lhs the
-- basket holds recommends its rhs, unless the basket has it; each product
-- scored by the highest confidence among the rules that recommend it.
CREATE FUNCTION crm.recommend_for_basket(product_ids bigint[], k integer DEFAULT 5,
	OUT product_id bigint, OUT score double precision, OUT lift double precision, OUT because bigint[])
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	IF k IS NULL OR k <= 0 THEN
		RAISE EXCEPTION 'k must be a positive number of products, not %', coalesce(k::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH m AS (
		SELECT r.rhs, r.confidence, r.lift, r.lhs,
			   max(r.lift) OVER (PARTITION BY r.rhs) AS best_lift,
			   row_number() OVER (PARTITION BY r.rhs ORDER BY r.confidence DESC, r.lift DESC, cardinality(r.lhs), r.rule_id) AS n
		  FROM crm.product_rule r
		 WHERE r.basket = 'order' AND r.lhs <@ coalesce(product_ids, '{}')
		   AND NOT (r.rhs = ANY (coalesce(product_ids, '{}'))))
	SELECT m.rhs, m.confidence, m.best_lift, m.lhs FROM m WHERE m.n = 1
	 ORDER BY m.confidence DESC, m.best_lift DESC, m.rhs LIMIT k;
END $$;
COMMENT ON FUNCTION crm.recommend_for_basket(bigint[], integer) IS
	'products to suggest for a basket from crm.product_rule: those the rules whose lhs the basket holds recommend, not already in it, best first by confidence (score), with the highest lift among their rules and the lhs of the best rule (because)';

COMMENT ON COLUMN crm.product_rule.rule_id IS 'rule id';
COMMENT ON COLUMN crm.product_rule.basket IS 'what a basket was when the rule was mined: order (each order) or contact (all a contact bought)';
COMMENT ON COLUMN crm.product_rule.lhs IS 'left-hand side: the products (crm.product) bought, sorted by id';
COMMENT ON COLUMN crm.product_rule.rhs IS 'right-hand side: the product (crm.product) bought with them';
COMMENT ON COLUMN crm.product_rule.count IS 'baskets holding lhs and rhs';
COMMENT ON COLUMN crm.product_rule.support IS 'count / baskets';
COMMENT ON COLUMN crm.product_rule.confidence IS 'count / baskets holding lhs';
COMMENT ON COLUMN crm.product_rule.lift IS 'confidence / support of rhs; above 1: bought together more than by chance';
COMMENT ON COLUMN crm.product_rule.conviction IS '(1 - support of rhs) / (1 - confidence); infinite at confidence 1';
COMMENT ON COLUMN crm.product_rule.min_support IS 'min_support of the refresh that mined it';
COMMENT ON COLUMN crm.product_rule.min_confidence IS 'min_confidence of the refresh that mined it';
COMMENT ON COLUMN crm.product_rule.max_len IS 'max_len of the refresh that mined it';
COMMENT ON COLUMN crm.product_rule.mined_at IS 'when the refresh that mined it ran';
COMMENT ON COLUMN crm.product_rule.mined_by IS 'database role that ran the refresh';
COMMENT ON COLUMN crm.product_rules.rule_id IS 'rule id (crm.product_rule)';
COMMENT ON COLUMN crm.product_rules.basket IS 'order or contact baskets';
COMMENT ON COLUMN crm.product_rules.lhs_names IS 'names of the left-hand side products, sorted';
COMMENT ON COLUMN crm.product_rules.rhs_name IS 'name of the right-hand side product';
COMMENT ON COLUMN crm.product_rules.lhs IS 'left-hand side product ids';
COMMENT ON COLUMN crm.product_rules.rhs IS 'right-hand side product id';
COMMENT ON COLUMN crm.product_rules.count IS 'baskets holding lhs and rhs';
COMMENT ON COLUMN crm.product_rules.support IS 'count / baskets';
COMMENT ON COLUMN crm.product_rules.confidence IS 'count / baskets holding lhs';
COMMENT ON COLUMN crm.product_rules.lift IS 'confidence / support of rhs';
COMMENT ON COLUMN crm.product_rules.conviction IS '(1 - support of rhs) / (1 - confidence)';
COMMENT ON COLUMN crm.product_rules.mined_at IS 'when the rule was mined';

-- The next best products for a contact: the kept rules (order baskets)
-- applied to what the contact bought and browsed (activities product_view
-- and add_to_cart whose properties name a product_id), never a product it
-- bought unless its category repeats; each with a reason a marketer reads.
CREATE FUNCTION crm.recommend_for_contact(contact_id bigint, k integer DEFAULT 5, repeat_categories text[] DEFAULT '{}',
	OUT product_id bigint, OUT score double precision, OUT reason text)
RETURNS SETOF record
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	who bigint := recommend_for_contact.contact_id;
	bought bigint[];
	viewed bigint[];
BEGIN
	IF k IS NULL OR k <= 0 THEN
		RAISE EXCEPTION 'k must be a positive number of products, not %', coalesce(k::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = who) THEN
		RAISE EXCEPTION 'contact % does not exist', who USING ERRCODE = 'no_data_found';
	END IF;
	SELECT coalesce(array_agg(DISTINCT l.product_id), '{}') INTO bought
	  FROM crm.order_line l JOIN crm."order" o ON o.contact_id = l.contact_id AND o.order_id = l.order_id
	 WHERE l.contact_id = who AND o.status NOT IN ('cancelled', 'refunded');
	SELECT coalesce(array_agg(DISTINCT (a.properties ->> 'product_id')::bigint), '{}') INTO viewed
	  FROM crm.activity a
	 WHERE a.contact_id = who AND a.kind IN ('product_view', 'add_to_cart')
	   AND (a.properties ->> 'product_id') ~ '^[0-9]{1,18}$';
	RETURN QUERY
	WITH m AS (
		SELECT r.rhs, r.confidence, r.lift, r.lhs,
			   row_number() OVER (PARTITION BY r.rhs ORDER BY r.confidence DESC, r.lift DESC, cardinality(r.lhs), r.rule_id) AS n
		  FROM crm.product_rule r JOIN crm.product p ON p.product_id = r.rhs
		 WHERE r.basket = 'order' AND p.active AND r.lhs <@ (bought || viewed)
		   AND (NOT (r.rhs = ANY (bought)) OR p.category = ANY (repeat_categories))),
	best AS (SELECT m.* FROM m WHERE m.n = 1 ORDER BY m.confidence DESC, m.lift DESC, m.rhs LIMIT k)
	SELECT b.rhs, b.confidence,
		   CASE WHEN cardinality(b.lhs) = 0
				THEN format('popular: in %s%% of all orders', round((100 * b.confidence)::numeric, 1))
				ELSE format('in %s%% of the orders with %s (lift %s); you %s', round((100 * b.confidence)::numeric, 1),
							(SELECT string_agg(p.name, ', ' ORDER BY p.name) FROM crm.product p WHERE p.product_id = ANY (b.lhs)),
							round(b.lift::numeric, 2),
							concat_ws(' and ',
								'bought ' || (SELECT string_agg(p.name, ', ' ORDER BY p.name) FROM crm.product p
											   WHERE p.product_id = ANY (b.lhs) AND p.product_id = ANY (bought)),
								'viewed ' || (SELECT string_agg(p.name, ', ' ORDER BY p.name) FROM crm.product p
											   WHERE p.product_id = ANY (b.lhs) AND NOT (p.product_id = ANY (bought)))))
		   END || CASE WHEN b.rhs = ANY (bought) THEN '; bought before, and bought again by many'
					   WHEN b.rhs = ANY (viewed) THEN '; you viewed it' ELSE '' END
	  FROM best b ORDER BY b.confidence DESC, b.lift DESC, b.rhs;
END $$;
COMMENT ON FUNCTION crm.recommend_for_contact(bigint, integer, text[]) IS
	'the next best products for a contact from crm.product_rule, applied to what it bought and browsed (product_view, add_to_cart activities with a product_id), never a product it bought unless its category is in repeat_categories; score = the best rule''s confidence, with a reason';

-- cross-sell campaigns: a recommended product per target
ALTER TABLE crm.campaign ADD COLUMN recommend boolean NOT NULL DEFAULT false;
ALTER TABLE crm.campaign_target ADD COLUMN recommended_product bigint REFERENCES crm.product ON DELETE SET NULL,
	ADD COLUMN recommendation text;
DROP FUNCTION crm.create_campaign(text, text, text, timestamptz, timestamptz, float8, float8);
CREATE FUNCTION crm.create_campaign(name text, segment text, channel text DEFAULT 'email',
	starts_at timestamptz DEFAULT now(), ends_at timestamptz DEFAULT NULL,
	cost float8 DEFAULT 0, holdout_share float8 DEFAULT 0, recommend boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sid bigint;
	id bigint;
BEGIN
	SELECT g.segment_id INTO sid FROM crm.segment g WHERE g.name = create_campaign.segment;
	IF sid IS NULL THEN
		RAISE EXCEPTION 'segment "%" does not exist', segment
			USING ERRCODE = 'undefined_object', HINT = 'Segments are listed in crm.segment.';
	END IF;
	INSERT INTO crm.campaign (name, channel, segment_id, starts_at, ends_at, cost, holdout_share, recommend)
	VALUES (name, channel, sid, coalesce(starts_at, now()), ends_at, coalesce(cost, 0), coalesce(holdout_share, 0),
			coalesce(recommend, false))
	RETURNING campaign_id INTO id;
	RETURN id;
END $$;
COMMENT ON FUNCTION crm.create_campaign(text, text, text, timestamptz, timestamptz, float8, float8, boolean) IS
	'create a campaign on a segment (by name) and channel, with window, cost and hold-out share; recommend => true makes it a cross-sell campaign: each target (held out or not) is given its next best product when selected';
CREATE OR REPLACE FUNCTION crm.campaign_targets(campaign_id bigint)
RETURNS TABLE (contact_id bigint, email crm.email)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY
	WITH eligible AS MATERIALIZED (
		SELECT * FROM crm.campaign_selection(campaign_targets.campaign_id)),
	-- a cross-sell campaign records each new target's next best product
	-- (src/basket.sql), the held-out ones too: the report compares them
	recorded AS (
		INSERT INTO crm.campaign_target (contact_id, campaign_id, holdout, recommended_product, recommendation)
		SELECT e.contact_id, campaign_targets.campaign_id, e.holdout, r.product_id, r.reason
		  FROM eligible e
		  LEFT JOIN LATERAL (SELECT x.product_id, x.reason FROM crm.recommend_for_contact(e.contact_id, 1) x
							  WHERE (SELECT k.recommend FROM crm.campaign k
									  WHERE k.campaign_id = campaign_targets.campaign_id)) r ON true
		 WHERE e.new
		ON CONFLICT DO NOTHING)
	SELECT e.contact_id, e.email FROM eligible e
	 WHERE NOT e.holdout ORDER BY e.contact_id;
END $$;
COMMENT ON FUNCTION crm.campaign_targets(bigint) IS
	'contacts to send a campaign to now: stored members of its segment with unexpired consent on its channel and no do-not-contact flag, minus the hold-out group; WRITES: records every selected contact (and its group, and for a cross-sell campaign its next best product) in crm.campaign_target, so it fails in a read-only transaction (use crm.campaign_targets_preview there)';

-- Cross-sell campaigns (recommend => true): what each target is sent, and
-- how many bought it, against the hold-out group.
CREATE FUNCTION crm.campaign_recommendations(campaign_id bigint)
RETURNS TABLE (contact_id bigint, email crm.email, product_id bigint, reason text)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT t.contact_id, c.email, t.recommended_product, t.recommendation
	  FROM crm.campaign_target t JOIN crm.contact c ON c.contact_id = t.contact_id
	 WHERE t.campaign_id = campaign_recommendations.campaign_id AND NOT t.holdout
	   AND t.recommended_product IS NOT NULL
	 ORDER BY t.contact_id;
END $$;
COMMENT ON FUNCTION crm.campaign_recommendations(bigint) IS
	'the recorded targets of a cross-sell campaign (not the hold-out group) with the product to offer each and why; after crm.campaign_targets';

CREATE FUNCTION crm.cross_sell_report(campaign_id bigint)
RETURNS TABLE (campaign text, targeted bigint, targeted_bought bigint, targeted_rate numeric,
			   held_out bigint, holdout_bought bigint, holdout_rate numeric, lift numeric)
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	cam crm.campaign;
BEGIN
	SELECT * INTO cam FROM crm.campaign k WHERE k.campaign_id = cross_sell_report.campaign_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'campaign % does not exist', cross_sell_report.campaign_id
			USING ERRCODE = 'undefined_object', HINT = 'Campaigns are listed in crm.campaign.';
	ELSIF NOT cam.recommend THEN
		RAISE EXCEPTION 'campaign "%" recommends no products', cam.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Create it with crm.create_campaign(..., recommend => true); crm.campaign_report reports any campaign.';
	END IF;
	-- bought: an order line of the recommended product in the window
	RETURN QUERY
	WITH t AS (
		SELECT t.holdout,
			   EXISTS (SELECT 1 FROM crm.order_line l
						 JOIN crm."order" o ON o.contact_id = l.contact_id AND o.order_id = l.order_id
						WHERE l.contact_id = t.contact_id AND l.product_id = t.recommended_product
						  AND o.ordered_at >= cam.starts_at AND (cam.ends_at IS NULL OR o.ordered_at < cam.ends_at)
						  AND o.status <> ALL ('{cancelled,refunded}'::text[])) AS bought
		  FROM crm.campaign_target t
		 WHERE t.campaign_id = cam.campaign_id AND t.recommended_product IS NOT NULL),
	a AS (
		SELECT count(*) FILTER (WHERE NOT t.holdout) AS targeted,
			   count(*) FILTER (WHERE NOT t.holdout AND t.bought) AS targeted_bought,
			   count(*) FILTER (WHERE t.holdout) AS held_out,
			   count(*) FILTER (WHERE t.holdout AND t.bought) AS holdout_bought
		  FROM t)
	SELECT cam.name, a.targeted, a.targeted_bought, round(a.targeted_bought::numeric / nullif(a.targeted, 0), 4),
		   a.held_out, a.holdout_bought, round(a.holdout_bought::numeric / nullif(a.held_out, 0), 4),
		   round((a.targeted_bought::numeric / nullif(a.targeted, 0))
				 / nullif(a.holdout_bought::numeric / nullif(a.held_out, 0), 0) - 1, 4)
	  FROM a;
END $$;
COMMENT ON FUNCTION crm.cross_sell_report(bigint) IS
	'a cross-sell campaign''s result: targets and hold-out contacts given a product, how many of each bought it in the window, the rates and the lift of the targets'' rate over the hold-out''s';

COMMENT ON COLUMN crm.campaign.recommend IS 'true: a cross-sell campaign, each target given its next best product (crm.recommend_for_contact) when selected';
COMMENT ON COLUMN crm.campaign_target.recommended_product IS 'cross-sell campaigns: the product recommended to the contact when it was selected (held-out contacts too, for the comparison)';
COMMENT ON COLUMN crm.campaign_target.recommendation IS 'why that product: the reason crm.recommend_for_contact gave';

-- crm.detect_churn moves the customers through crm.churn_contacts, where their
-- rows are (the move's reason and time known to the triggers that log it)
CREATE FUNCTION crm.churn_contacts(here bigint, contact_ids bigint[], times timestamptz[]) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_churn_contacts' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION crm.churn_contacts(bigint, bigint[], timestamptz[]) IS
	'crm.detect_churn''s move, called per contact in a query pushed to the shards: the first call of a query in the shard of contact here moves that shard''s listed customers and evangelists to churned, each at its time (no later than now, no earlier than its last transition); returns how many moved';

-- Partial refunds (src/schema.sql): loyalty reverses points in proportion
ALTER TABLE crm."order" ADD COLUMN refunded numeric(14, 2) NOT NULL DEFAULT 0
	CONSTRAINT refunded_within_total CHECK (refunded >= 0 AND refunded <= greatest(total, 0));

-- ---------------------------------------------------------------------------
-- Loyalty (src/loyalty.c): programmes and rewards (configuration, reference
-- tables on Citus), and per contact an append-only points ledger whose
-- credits are lots with an expiry and whose debits name the lots they draw
-- from, soonest-expiring first.  The lots' remaining points and the balance
-- are kept beside the ledger in the same transaction; crm.loyalty_check()
-- proves them equal to it.
-- ---------------------------------------------------------------------------
CREATE TABLE crm.loyalty_program (
	program_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name		text NOT NULL UNIQUE,
	currency	text NOT NULL DEFAULT 'USD'
		CONSTRAINT currency_iso_4217 CHECK (currency ~ '^[A-Z]{3}$'),
	points_per_unit numeric NOT NULL DEFAULT 1
		CONSTRAINT points_per_unit_not_negative_nor_nan CHECK (points_per_unit >= 0 AND points_per_unit <> 'NaN'),
	rounding	text NOT NULL DEFAULT 'floor'
		CONSTRAINT rounding_floor_round_ceil CHECK (rounding IN ('floor', 'round', 'ceil')),
	min_order_total numeric(14, 2) NOT NULL DEFAULT 0
		CONSTRAINT min_order_total_not_negative_nor_nan CHECK (min_order_total >= 0 AND min_order_total <> 'NaN'),
	earn_statuses text[] NOT NULL DEFAULT '{paid,shipped}'
		CONSTRAINT earn_statuses_placed_paid_shipped CHECK (earn_statuses <@ '{placed,paid,shipped}' AND cardinality(earn_statuses) > 0),
	reverse_statuses text[] NOT NULL DEFAULT '{cancelled,refunded}'
		CONSTRAINT reverse_statuses_cancelled_refunded CHECK (reverse_statuses <@ '{cancelled,refunded}'),
	expiry		text NOT NULL DEFAULT 'after_earning'
		CONSTRAINT expiry_after_earning_after_inactivity_never CHECK (expiry IN ('after_earning', 'after_inactivity', 'never')),
	expires_after interval NOT NULL DEFAULT '12 months'
		CONSTRAINT expires_after_positive CHECK (expires_after > '0'),
	spent_reversal text NOT NULL DEFAULT 'other_lots'
		CONSTRAINT spent_reversal_other_lots_negative CHECK (spent_reversal IN ('other_lots', 'negative')),
	max_discounts_per_order integer NOT NULL DEFAULT 1
		CONSTRAINT max_discounts_per_order_positive CHECK (max_discounts_per_order > 0),
	point_value numeric(14, 6)
		CONSTRAINT point_value_not_negative_nor_nan CHECK (point_value >= 0 AND point_value <> 'NaN'),
	tier_window interval NOT NULL DEFAULT '12 months'
		CONSTRAINT tier_window_positive CHECK (tier_window > '0'),
	active		boolean NOT NULL DEFAULT true,
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crm.loyalty_program IS
	'loyalty programmes: points per currency unit of an order, which order statuses earn and reverse, expiry, the policy for reversing spent points';
SELECT pg_catalog.pg_extension_config_dump('crm.loyalty_program', '');
SELECT pg_catalog.pg_extension_config_dump('crm.loyalty_program_program_id_seq', '');

CREATE TABLE crm.loyalty_reward (
	reward_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	program_id	bigint NOT NULL REFERENCES crm.loyalty_program,
	name		text NOT NULL,
	points		bigint NOT NULL
		CONSTRAINT points_positive CHECK (points > 0),
	kind		text NOT NULL
		CONSTRAINT kind_discount_voucher CHECK (kind IN ('discount', 'voucher')),
	discount_percent numeric
		CONSTRAINT discount_percent_0_100 CHECK (discount_percent > 0 AND discount_percent <= 100),
	vouchers	integer
		CONSTRAINT vouchers_positive CHECK (vouchers > 0),
	partner		text,
	voucher_value numeric(14, 2)
		CONSTRAINT voucher_value_not_negative_nor_nan CHECK (voucher_value >= 0 AND voucher_value <> 'NaN'),
	voucher_valid_for interval NOT NULL DEFAULT '6 months'
		CONSTRAINT voucher_valid_for_positive CHECK (voucher_valid_for > '0'),
	active		boolean NOT NULL DEFAULT true,
	UNIQUE (program_id, name),
	CONSTRAINT discount_has_percent CHECK ((kind = 'discount') = (discount_percent IS NOT NULL)),
	CONSTRAINT voucher_has_count CHECK ((kind = 'voucher') = (vouchers IS NOT NULL))
);
COMMENT ON TABLE crm.loyalty_reward IS
	'what points buy: a percentage discount on an order, or vouchers (each with a unique code, partner, value and expiry)';
SELECT pg_catalog.pg_extension_config_dump('crm.loyalty_reward', '');
SELECT pg_catalog.pg_extension_config_dump('crm.loyalty_reward_reward_id_seq', '');

-- The ledger.  A contact with points cannot be deleted, nor a programme
-- that has them: the ledger is a financial record; crm.forget_contact
-- erases the person and keeps it.  The foreign keys that say so are on
-- crm.points_balance, one row per contact and programme, which crm writes
-- in the statement that writes the ledger, lots or draws (only crm writes
-- them, as their owner); a key per ledger, lot and draw row would be
-- checked once per row and cost an order import more than the points
-- themselves (test/bench/results/loyalty.md).  crm.loyalty_check() finds
-- any row of them without its balance, credit or debit.
CREATE TABLE crm.points_ledger (
	contact_id	bigint NOT NULL,
	entry_id	bigint GENERATED BY DEFAULT AS IDENTITY,
	program_id	bigint NOT NULL,
	kind		text NOT NULL
		CONSTRAINT kind_earn_reverse_redeem_expire CHECK (kind IN ('earn', 'reverse', 'redeem', 'expire')),
	points		bigint NOT NULL,
	order_id	bigint,
	reward_id	bigint,
	activity_id bigint,
	rule_id		bigint,
	discount_percent numeric,
	expires_at	timestamptz,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	actor		text NOT NULL DEFAULT current_user,
	idempotency_key text,
	merged_from bigint,
	PRIMARY KEY (contact_id, entry_id),
	CONSTRAINT credit_earns_debit_spends CHECK (CASE WHEN kind = 'earn' THEN points > 0 ELSE points < 0 END),
	CONSTRAINT earn_names_an_order_or_an_activity CHECK (kind <> 'earn' OR (order_id IS NULL) <> (activity_id IS NULL)),
	CONSTRAINT reverse_names_the_order CHECK (kind <> 'reverse' OR order_id IS NOT NULL),
	CONSTRAINT an_activity_earns_by_a_rule CHECK (activity_id IS NULL OR rule_id IS NOT NULL),
	CONSTRAINT redeem_names_the_reward CHECK ((kind = 'redeem') = (reward_id IS NOT NULL))
);
COMMENT ON TABLE crm.points_ledger IS
	'append-only points ledger: earn (a credit: a lot with its expiry), reverse, redeem and expire (debits, which name the lots they draw from in crm.points_draw)';
-- an order earns once per programme (and once more per category rule
-- that gives it a bonus), an activity once per activity rule, whatever
-- path writes them
CREATE UNIQUE INDEX points_ledger_earned_once ON crm.points_ledger (contact_id, program_id, order_id, (coalesce(rule_id, 0)))
	WHERE kind = 'earn' AND order_id IS NOT NULL;
CREATE UNIQUE INDEX points_ledger_activity_once ON crm.points_ledger (contact_id, program_id, activity_id, rule_id)
	WHERE kind = 'earn' AND activity_id IS NOT NULL;
CREATE UNIQUE INDEX points_ledger_idempotency ON crm.points_ledger (contact_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('crm.points_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('crm.points_ledger_entry_id_seq', '');

CREATE TABLE crm.points_draw (
	contact_id	bigint NOT NULL,
	debit_id	bigint NOT NULL,
	credit_id	bigint NOT NULL,
	points		bigint NOT NULL
		CONSTRAINT points_positive CHECK (points > 0),
	drawn_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (contact_id, debit_id, credit_id)
);
COMMENT ON TABLE crm.points_draw IS
	'append-only: how many points each debit of crm.points_ledger took from which credit (lot)';
SELECT pg_catalog.pg_extension_config_dump('crm.points_draw', '');

-- Kept beside the ledger: each credit's points not yet drawn, and when they
-- expire (after_inactivity moves it on with each earning)
CREATE TABLE crm.points_lot (
	contact_id	bigint NOT NULL,
	credit_id	bigint NOT NULL,
	program_id	bigint NOT NULL,
	expires_at	timestamptz,
	remaining	bigint NOT NULL
		CONSTRAINT remaining_not_negative CHECK (remaining >= 0),
	PRIMARY KEY (contact_id, credit_id)
);
COMMENT ON TABLE crm.points_lot IS
	'each credit''s points not yet drawn and when they expire, kept by crm in the transaction that writes the ledger';
CREATE INDEX points_lot_due_idx ON crm.points_lot (expires_at) WHERE remaining > 0;
SELECT pg_catalog.pg_extension_config_dump('crm.points_lot', '');

CREATE TABLE crm.points_balance (
	contact_id	bigint NOT NULL REFERENCES crm.contact,
	program_id	bigint NOT NULL REFERENCES crm.loyalty_program,
	balance		bigint NOT NULL DEFAULT 0,
	debt		bigint NOT NULL DEFAULT 0
		CONSTRAINT debt_not_negative CHECK (debt >= 0),
	earned		bigint NOT NULL DEFAULT 0,
	reversed	bigint NOT NULL DEFAULT 0,
	redeemed	bigint NOT NULL DEFAULT 0,
	expired		bigint NOT NULL DEFAULT 0,
	last_earned_at timestamptz,
	tier		text,
	tier_since	timestamptz,
	tier_until	timestamptz,
	updated_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (contact_id, program_id),
	CONSTRAINT a_tier_has_its_period CHECK ((tier IS NULL) = (tier_until IS NULL) AND (tier IS NULL) = (tier_since IS NULL))
);
COMMENT ON TABLE crm.points_balance IS
	'points per contact and programme, kept in the transaction that writes the ledger: balance = the sum of the ledger = the lots'' remaining points - debt';
SELECT pg_catalog.pg_extension_config_dump('crm.points_balance', '');
CREATE INDEX points_balance_tier_due_idx ON crm.points_balance (tier_until) WHERE tier_until IS NOT NULL;

-- Earning rules beside a programme's points per currency unit: a product
-- category's lines earn multiplier times (above 1: a bonus credit per order
-- and rule; below 1: less of the order's own points, 0 none), and an
-- activity (a review written, a referral) of a kind whose properties meet
-- a jsonpath condition, tested as scoring rules test theirs
-- (crm.condition_holds), earns points once.  A rule's bonus credits may be
-- capped per contact and calendar period (UTC).
CREATE TABLE crm.earning_rule (
	-- above 0: the ledger's unique index takes a NULL rule (the order's
	-- own points) as 0
	rule_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY
		CONSTRAINT rule_id_positive CHECK (rule_id > 0),
	program_id	bigint NOT NULL REFERENCES crm.loyalty_program,
	name		text NOT NULL
		CONSTRAINT name_not_empty CHECK (btrim(name) <> ''),
	kind		text NOT NULL
		CONSTRAINT kind_category_activity CHECK (kind IN ('category', 'activity')),
	category	text,
	multiplier	numeric
		CONSTRAINT multiplier_not_negative_nor_nan CHECK (multiplier >= 0 AND multiplier <> 'NaN'),
	activity_kind text,
	condition	jsonpath,
	points		bigint
		CONSTRAINT points_positive CHECK (points > 0),
	cap_points	bigint
		CONSTRAINT cap_points_positive CHECK (cap_points > 0),
	cap_period	text
		CONSTRAINT cap_period_day_week_month_quarter_year CHECK (cap_period IN ('day', 'week', 'month', 'quarter', 'year')),
	active		boolean NOT NULL DEFAULT true,
	created_at	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (program_id, name),
	CONSTRAINT category_rule_has_category_and_multiplier
		CHECK ((kind = 'category') = (category IS NOT NULL AND multiplier IS NOT NULL)),
	CONSTRAINT activity_rule_has_points CHECK ((kind = 'activity') = (points IS NOT NULL)),
	CONSTRAINT category_rule_has_no_activity CHECK (kind = 'activity' OR (activity_kind IS NULL AND condition IS NULL)),
	CONSTRAINT cap_has_its_period CHECK ((cap_points IS NULL) = (cap_period IS NULL)),
	CONSTRAINT capped_rule_is_a_bonus CHECK (cap_points IS NULL OR kind = 'activity' OR multiplier > 1)
);
COMMENT ON TABLE crm.earning_rule IS
	'a programme''s earning rules: category multipliers on order lines, and points for activities that meet a jsonpath condition; each bonus optionally capped per contact and period';
CREATE UNIQUE INDEX earning_rule_one_per_category ON crm.earning_rule (program_id, category) WHERE kind = 'category';
SELECT pg_catalog.pg_extension_config_dump('crm.earning_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm.earning_rule_rule_id_seq', '');

-- Tiers: a contact holds the highest tier whose qualifying points it
-- earned (less reversals) in the programme's tier_window up to an earning,
-- from that earning on; at the end of the tier's period (tier_window after
-- it was reached or last kept) crm.expire_points reviews it and keeps it,
-- or lowers it to what the window then justifies.  Qualifying points are
-- not the balance: redeeming or expiring points does not lower a tier.
CREATE TABLE crm.loyalty_tier (
	program_id	bigint NOT NULL REFERENCES crm.loyalty_program,
	tier		text NOT NULL
		CONSTRAINT tier_not_empty CHECK (tier <> ''),
	qualifying_points bigint NOT NULL
		CONSTRAINT qualifying_points_positive CHECK (qualifying_points > 0),
	PRIMARY KEY (program_id, tier),
	UNIQUE (program_id, qualifying_points)
);
COMMENT ON TABLE crm.loyalty_tier IS
	'tiers of a programme (silver, gold): the qualifying points earned in the programme''s tier_window that reach each';
SELECT pg_catalog.pg_extension_config_dump('crm.loyalty_tier', '');

CREATE TABLE crm.tier_history (
	contact_id	bigint NOT NULL,
	history_id	bigint GENERATED BY DEFAULT AS IDENTITY,
	program_id	bigint NOT NULL,
	from_tier	text,
	to_tier		text,
	qualifying_points bigint NOT NULL,
	changed_at	timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	reason		text NOT NULL
		CONSTRAINT reason_upgrade_review_merge CHECK (reason IN ('upgrade', 'review', 'merge')),
	merged_from bigint,
	PRIMARY KEY (contact_id, history_id)
);
COMMENT ON TABLE crm.tier_history IS
	'every change of a contact''s tier, dated when it happened in the world: an upgrade at the earning that reached it, a review at the end of the tier''s period, a merge that brought a higher tier';
CREATE INDEX tier_history_contact_time_idx ON crm.tier_history (contact_id, program_id, changed_at);
SELECT pg_catalog.pg_extension_config_dump('crm.tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('crm.tier_history_history_id_seq', '');

CREATE TABLE crm.loyalty_voucher (
	contact_id	bigint NOT NULL REFERENCES crm.contact,
	code		text NOT NULL,
	redemption_id bigint NOT NULL,
	reward_id	bigint NOT NULL,
	partner		text,
	value		numeric(14, 2),
	expires_at	timestamptz NOT NULL,
	used_at		timestamptz,
	used_by		text,
	PRIMARY KEY (contact_id, code),
	FOREIGN KEY (contact_id, redemption_id) REFERENCES crm.points_ledger
);
COMMENT ON TABLE crm.loyalty_voucher IS
	'vouchers bought with points: a random code, redeemable once (crm.use_voucher) before it expires';
CREATE INDEX loyalty_voucher_code_idx ON crm.loyalty_voucher (code);
SELECT pg_catalog.pg_extension_config_dump('crm.loyalty_voucher', '');

-- The ledger and the draws are history: a correction is a new entry.  The
-- one exception is crm.merge_contacts, which moves a dropped contact's
-- rows onto the kept one (crm.merge_points copies them first) while the
-- merge of that contact is in progress; crm.merge_log is written only by
-- the merge.
CREATE FUNCTION crm.points_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' AND EXISTS (
		SELECT 1 FROM crm.merge_log m
		 WHERE m.dropped_id OPERATOR(pg_catalog.=) OLD.contact_id AND m.in_progress) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  DETAIL = 'The points ledger is the record of every point earned and spent.',
			  HINT = 'Correct a balance by a new entry: refund or cancel the order (its points are reversed), or redeem or expire points.';
END $$;
COMMENT ON FUNCTION crm.points_append_only() IS
	'trigger: refuses UPDATE, DELETE and TRUNCATE on the points ledger and its draws, except the moves of crm.merge_contacts';
CREATE TRIGGER points_append_only BEFORE UPDATE OR DELETE ON crm.points_ledger
	FOR EACH ROW EXECUTE FUNCTION crm.points_append_only();
CREATE TRIGGER points_no_truncate BEFORE TRUNCATE ON crm.points_ledger
	FOR EACH STATEMENT EXECUTE FUNCTION crm.points_append_only();
CREATE TRIGGER points_append_only BEFORE UPDATE OR DELETE ON crm.points_draw
	FOR EACH ROW EXECUTE FUNCTION crm.points_append_only();
CREATE TRIGGER points_no_truncate BEFORE TRUNCATE ON crm.points_draw
	FOR EACH STATEMENT EXECUTE FUNCTION crm.points_append_only();

-- Earning and reversal, in the transaction of the order
CREATE FUNCTION crm.loyalty_orders() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_loyalty_orders' LANGUAGE C;
COMMENT ON FUNCTION crm.loyalty_orders() IS
	'trigger: an order that reaches an earning status earns its programme''s points once (with its category rules); a refund, cancellation or deletion reverses what it earned (in proportion for a partial refund); on crm.activity, an activity earns the points of its activity rules once';
CREATE TRIGGER loyalty_earn AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.loyalty_orders('order');
CREATE TRIGGER loyalty_update AFTER UPDATE ON crm."order"
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.loyalty_orders('order');
CREATE TRIGGER loyalty_delete AFTER DELETE ON crm."order"
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.loyalty_orders('order');
CREATE TRIGGER loyalty_earn AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.loyalty_orders('activity');

CREATE FUNCTION crm.redeem_points(contact_id bigint, reward_id bigint, order_id bigint DEFAULT NULL,
								  idempotency_key text DEFAULT NULL)
RETURNS TABLE (entry_id bigint, points bigint, balance bigint, vouchers text[])
	AS 'MODULE_PATHNAME', 'crm_redeem_points' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.redeem_points(bigint, bigint, bigint, text) IS
	'spends a reward''s points under a lock of the contact''s balance (soonest-expiring lots first); a discount is recorded against the order; the same idempotency key returns the first result';

CREATE FUNCTION crm.expire_points(as_of timestamptz DEFAULT now()) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_expire_points' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION crm.expire_points(timestamptz) IS
	'expires every lot due by as_of, dated at its expiry, and reviews the tiers whose period ended by as_of; idempotent; returns the points expired';
CREATE FUNCTION crm.expire_lots(here bigint, as_of timestamptz) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_expire_lots' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION crm.expire_lots(bigint, timestamptz) IS
	'crm.expire_points''s work where the lots are: the first call of a query in a shard expires that shard''s due lots and reviews its due tiers';

CREATE FUNCTION crm.use_voucher(code text) RETURNS crm.loyalty_voucher
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v crm.loyalty_voucher;
BEGIN
	-- statement_timestamp(): Citus refuses a volatile function in a
	-- multi-shard UPDATE (the code is found on whichever shard holds it)
	UPDATE crm.loyalty_voucher x SET used_at = statement_timestamp(), used_by = current_user
	 WHERE x.code OPERATOR(pg_catalog.=) use_voucher.code AND x.used_at IS NULL
	   AND x.expires_at OPERATOR(pg_catalog.>) now()
	RETURNING x.* INTO v;
	IF v.code IS NULL THEN
		SELECT x.* INTO v FROM crm.loyalty_voucher x WHERE x.code OPERATOR(pg_catalog.=) use_voucher.code;
		IF v.code IS NULL THEN
			RAISE EXCEPTION 'voucher % does not exist', code USING ERRCODE = 'no_data_found';
		ELSIF v.used_at IS NOT NULL THEN
			RAISE EXCEPTION 'voucher % was already used at %', code, v.used_at
				USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'A voucher is redeemable once.';
		ELSE
			RAISE EXCEPTION 'voucher % expired at %', code, v.expires_at
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
	END IF;
	RETURN v;
END $$;
COMMENT ON FUNCTION crm.use_voucher(text) IS
	'marks a voucher used; refuses a code already used or expired';

-- Every movement of a contact's points with the lots it touched and the
-- running balance per programme, in the order the ledger was written.
CREATE FUNCTION crm.points_statement(contact_id bigint, program bigint DEFAULT NULL)
RETURNS TABLE (entry_id bigint, program_id bigint, kind text, occurred_at timestamptz, points bigint,
			   balance bigint, lots jsonb, order_id bigint, reward_id bigint, expires_at timestamptz)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY
	SELECT l.entry_id, l.program_id, l.kind, l.occurred_at, l.points,
		   (sum(l.points) OVER (PARTITION BY l.program_id ORDER BY l.entry_id))::bigint,
		   CASE WHEN l.points OPERATOR(pg_catalog.>) 0
				THEN (SELECT pg_catalog.jsonb_build_object('remaining', t.remaining, 'expires_at', t.expires_at)
						FROM crm.points_lot t
					   WHERE t.contact_id OPERATOR(pg_catalog.=) l.contact_id AND t.credit_id OPERATOR(pg_catalog.=) l.entry_id)
				ELSE (SELECT coalesce(pg_catalog.jsonb_object_agg(d.credit_id::text, d.points ORDER BY d.credit_id), '{}')
						FROM crm.points_draw d
					   WHERE d.contact_id OPERATOR(pg_catalog.=) l.contact_id AND d.debit_id OPERATOR(pg_catalog.=) l.entry_id)
		   END,
		   l.order_id, l.reward_id, l.expires_at
	  FROM crm.points_ledger l
	 WHERE l.contact_id OPERATOR(pg_catalog.=) points_statement.contact_id
	   AND (points_statement.program IS NULL OR l.program_id OPERATOR(pg_catalog.=) points_statement.program)
	 ORDER BY l.program_id, l.entry_id;
END $$;
COMMENT ON FUNCTION crm.points_statement(bigint, bigint) IS
	'every movement of a contact''s points: credits with their lot''s remaining points, debits with the lots they drew from, and the running balance';

-- Per programme and month (UTC) with movements: points earned, reversed,
-- redeemed and expired, what is outstanding at the month's end and what it
-- is worth, how much was redeemed, and the breakage (the share of the
-- points that left by expiring rather than by a redemption)
CREATE VIEW crm.loyalty_monthly WITH (security_invoker = true) AS
WITH m AS (
	SELECT l.program_id, date_trunc('month', l.occurred_at AT TIME ZONE 'UTC')::date AS month,
		   count(DISTINCT l.contact_id) AS contacts,
		   coalesce(sum(l.points) FILTER (WHERE l.kind = 'earn'), 0)::bigint AS earned,
		   coalesce(-sum(l.points) FILTER (WHERE l.kind = 'reverse'), 0)::bigint AS reversed,
		   coalesce(-sum(l.points) FILTER (WHERE l.kind = 'redeem'), 0)::bigint AS redeemed,
		   coalesce(-sum(l.points) FILTER (WHERE l.kind = 'expire'), 0)::bigint AS expired,
		   sum(l.points) AS net
	  FROM crm.points_ledger l
	 GROUP BY 1, 2),
r AS (
	SELECT m.*, (sum(m.net) OVER (PARTITION BY m.program_id ORDER BY m.month))::bigint AS outstanding FROM m)
SELECT r.program_id, p.name AS program, r.month, r.contacts, r.earned, r.reversed, r.redeemed, r.expired,
	   r.outstanding, round(r.outstanding * p.point_value, 2) AS liability, p.currency,
	   round(r.redeemed / nullif(r.earned - r.reversed, 0)::numeric, 4) AS redemption_rate,
	   round(r.expired / nullif(r.redeemed + r.expired, 0)::numeric, 4) AS breakage
  FROM r
  JOIN crm.loyalty_program p ON p.program_id = r.program_id;
COMMENT ON VIEW crm.loyalty_monthly IS
	'loyalty per programme and month with movements: points earned, reversed, redeemed, expired; outstanding at the month''s end and its value (liability); redemption rate and breakage; each reader sees its own contacts'' points';

-- The invariants, per contact and programme: the balance is the sum of the
-- ledger and the lots' remaining points less the debt; each lot holds its
-- credit less its draws; no debit draws more than it took; the debt is
-- what the debits have not drawn; every lot and draw has its ledger
-- entries, and every contact with points its balance row (they stand for
-- the foreign keys, see crm.points_ledger).  No row: all hold.
CREATE FUNCTION crm.loyalty_check(contact_ids bigint[] DEFAULT NULL)
RETURNS TABLE (contact_id bigint, program_id bigint, problem text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY
	WITH led AS (
		SELECT l.contact_id, l.program_id, sum(l.points)::bigint AS total
		  FROM crm.points_ledger l
		 WHERE contact_ids IS NULL OR l.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids)
		 GROUP BY 1, 2),
	drawn AS (
		SELECT d.contact_id, d.debit_id, sum(d.points)::bigint AS points
		  FROM crm.points_draw d
		 WHERE contact_ids IS NULL OR d.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids)
		 GROUP BY 1, 2),
	taken AS (
		SELECT d.contact_id, d.credit_id, sum(d.points)::bigint AS points
		  FROM crm.points_draw d
		 WHERE contact_ids IS NULL OR d.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids)
		 GROUP BY 1, 2),
	owed AS (
		SELECT l.contact_id, l.program_id,
			   sum((-l.points) OPERATOR(pg_catalog.-) coalesce(w.points, 0))::bigint AS debt,
			   bool_or(coalesce(w.points, 0) OPERATOR(pg_catalog.>) (-l.points)) AS overdrawn
		  FROM crm.points_ledger l
		  LEFT JOIN drawn w ON w.contact_id OPERATOR(pg_catalog.=) l.contact_id AND w.debit_id OPERATOR(pg_catalog.=) l.entry_id
		 WHERE l.points OPERATOR(pg_catalog.<) 0
		   AND (contact_ids IS NULL OR l.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids))
		 GROUP BY 1, 2),
	lots AS (
		SELECT t.contact_id, t.program_id, sum(t.remaining)::bigint AS remaining,
			   bool_or(t.remaining OPERATOR(pg_catalog.<>) (l.points OPERATOR(pg_catalog.-) coalesce(k.points, 0))) AS wrong,
			   bool_or(l.entry_id IS NULL OR l.kind OPERATOR(pg_catalog.<>) 'earn'
					   OR l.program_id OPERATOR(pg_catalog.<>) t.program_id) AS orphan
		  FROM crm.points_lot t
		  LEFT JOIN crm.points_ledger l ON l.contact_id OPERATOR(pg_catalog.=) t.contact_id AND l.entry_id OPERATOR(pg_catalog.=) t.credit_id
		  LEFT JOIN taken k ON k.contact_id OPERATOR(pg_catalog.=) t.contact_id AND k.credit_id OPERATOR(pg_catalog.=) t.credit_id
		 WHERE contact_ids IS NULL OR t.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids)
		 GROUP BY 1, 2),
	-- a draw names a debit and a credit (with its lot) of the same programme
	draws AS (
		SELECT d.contact_id, coalesce(c.program_id, b.program_id) AS program_id
		  FROM crm.points_draw d
		  LEFT JOIN crm.points_ledger b ON b.contact_id OPERATOR(pg_catalog.=) d.contact_id AND b.entry_id OPERATOR(pg_catalog.=) d.debit_id
		  LEFT JOIN crm.points_ledger c ON c.contact_id OPERATOR(pg_catalog.=) d.contact_id AND c.entry_id OPERATOR(pg_catalog.=) d.credit_id
		  LEFT JOIN crm.points_lot t ON t.contact_id OPERATOR(pg_catalog.=) d.contact_id AND t.credit_id OPERATOR(pg_catalog.=) d.credit_id
		 WHERE (contact_ids IS NULL OR d.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids))
		   AND (b.entry_id IS NULL OR c.entry_id IS NULL OR t.credit_id IS NULL OR b.points OPERATOR(pg_catalog.>=) 0
				OR c.kind OPERATOR(pg_catalog.<>) 'earn' OR b.program_id OPERATOR(pg_catalog.<>) c.program_id)
		 GROUP BY 1, 2),
	keys AS (
		SELECT b.contact_id, b.program_id FROM crm.points_balance b
		 WHERE contact_ids IS NULL OR b.contact_id OPERATOR(pg_catalog.=) ANY (contact_ids)
		UNION SELECT led.contact_id, led.program_id FROM led
		UNION SELECT t.contact_id, t.program_id FROM lots t
		UNION SELECT w.contact_id, w.program_id FROM draws w)
	SELECT k.contact_id, k.program_id, p.problem
	  FROM keys k
	  LEFT JOIN crm.points_balance b ON b.contact_id OPERATOR(pg_catalog.=) k.contact_id AND b.program_id OPERATOR(pg_catalog.=) k.program_id
	  LEFT JOIN led ON led.contact_id OPERATOR(pg_catalog.=) k.contact_id AND led.program_id OPERATOR(pg_catalog.=) k.program_id
	  LEFT JOIN owed o ON o.contact_id OPERATOR(pg_catalog.=) k.contact_id AND o.program_id OPERATOR(pg_catalog.=) k.program_id
	  LEFT JOIN lots t ON t.contact_id OPERATOR(pg_catalog.=) k.contact_id AND t.program_id OPERATOR(pg_catalog.=) k.program_id
	  LEFT JOIN draws w ON w.contact_id OPERATOR(pg_catalog.=) k.contact_id AND w.program_id IS NOT DISTINCT FROM k.program_id
	 CROSS JOIN LATERAL (VALUES
		(CASE WHEN b.contact_id IS NULL THEN 'points without a balance row' END),
		(CASE WHEN t.orphan THEN 'a lot without its credit in the ledger' END),
		(CASE WHEN w.contact_id IS NOT NULL THEN 'a draw without its debit, credit or lot in the ledger' END),
		(CASE WHEN b.balance IS DISTINCT FROM coalesce(led.total, 0)
			  THEN format('balance %s, ledger sum %s', b.balance, coalesce(led.total, 0)) END),
		(CASE WHEN coalesce(b.debt, 0) OPERATOR(pg_catalog.<>) coalesce(o.debt, 0)
			  THEN format('debt %s, undrawn debits %s', b.debt, coalesce(o.debt, 0)) END),
		(CASE WHEN coalesce(b.balance, 0) OPERATOR(pg_catalog.<>) (coalesce(t.remaining, 0) OPERATOR(pg_catalog.-) coalesce(b.debt, 0))
			  THEN format('balance %s, lots %s less debt %s', b.balance, coalesce(t.remaining, 0), b.debt) END),
		(CASE WHEN t.wrong THEN 'a lot''s remaining points differ from its credit less its draws' END),
		(CASE WHEN o.overdrawn THEN 'a debit drew more points than it took' END)) p(problem)
	 WHERE p.problem IS NOT NULL
	 ORDER BY 1, 2, 3;
END $$;
COMMENT ON FUNCTION crm.loyalty_check(bigint[]) IS
	'the loyalty invariants (balance = ledger = lots - debt; lots = credits - draws; no debit overdrawn; every lot and draw has its ledger entries and every ledger entry its balance row), one row per violation; no row when all hold';

-- crm.merge_contacts: the dropped contact's points, lots, draws and
-- vouchers moved onto the kept contact (ids kept), its balances added.
-- crm.merge_points checks the caller and runs crm.move_points as the
-- ledger's owner (src/loyalty.c); nobody else may call it.
CREATE FUNCTION crm.merge_points(keep bigint, drop bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'crm_merge_points' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION crm.merge_points(bigint, bigint) IS
	'crm.merge_contacts'' step for loyalty: inside the merge of two contacts the caller sees, moves the dropped contact''s points onto the kept one (crm.move_points)';
CREATE FUNCTION crm.move_points(keep bigint, drop bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	-- read first: Citus plans no subquery across the two contacts' shards
	kept_keys text[] := ARRAY(SELECT k.idempotency_key FROM crm.points_ledger k
							   WHERE k.contact_id OPERATOR(pg_catalog.=) keep AND k.idempotency_key IS NOT NULL);
	dt record;
	kept_tier text;
	kept_points bigint;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM crm.points_ledger l WHERE l.contact_id OPERATOR(pg_catalog.=) drop)
	   AND NOT EXISTS (SELECT 1 FROM crm.points_balance b WHERE b.contact_id OPERATOR(pg_catalog.=) drop) THEN
		RETURN;
	END IF;
	-- the kept contact holds the higher of the two tiers, with its period
	FOR dt IN SELECT d.program_id, d.tier, d.tier_since, d.tier_until, x.qualifying_points
			   FROM crm.points_balance d
			   JOIN crm.loyalty_tier x ON x.program_id OPERATOR(pg_catalog.=) d.program_id AND x.tier OPERATOR(pg_catalog.=) d.tier
			  WHERE d.contact_id OPERATOR(pg_catalog.=) drop LOOP
		kept_tier := (SELECT b.tier FROM crm.points_balance b
					   WHERE b.contact_id OPERATOR(pg_catalog.=) keep AND b.program_id OPERATOR(pg_catalog.=) dt.program_id);
		kept_points := (SELECT x.qualifying_points FROM crm.loyalty_tier x
						 WHERE x.program_id OPERATOR(pg_catalog.=) dt.program_id AND x.tier OPERATOR(pg_catalog.=) kept_tier);
		IF kept_points IS NULL OR kept_points OPERATOR(pg_catalog.<) dt.qualifying_points THEN
			UPDATE crm.points_balance b SET tier = dt.tier, tier_since = dt.tier_since, tier_until = dt.tier_until
			 WHERE b.contact_id OPERATOR(pg_catalog.=) keep AND b.program_id OPERATOR(pg_catalog.=) dt.program_id;
			IF FOUND THEN
				INSERT INTO crm.tier_history (contact_id, history_id, program_id, from_tier, to_tier, qualifying_points,
											  changed_at, reason, merged_from)
				VALUES (keep, nextval('crm.tier_history_history_id_seq'), dt.program_id, kept_tier, dt.tier,
						dt.qualifying_points, statement_timestamp(), 'merge', drop);
			END IF;
		END IF;
	END LOOP;
	INSERT INTO crm.points_balance AS b (contact_id, program_id, balance, debt, earned, reversed, redeemed, expired, last_earned_at,
										 tier, tier_since, tier_until)
	SELECT keep, d.program_id, d.balance, d.debt, d.earned, d.reversed, d.redeemed, d.expired, d.last_earned_at,
		   d.tier, d.tier_since, d.tier_until
	  FROM crm.points_balance d WHERE d.contact_id OPERATOR(pg_catalog.=) drop
	ON CONFLICT ON CONSTRAINT points_balance_pkey DO UPDATE
	   SET balance = b.balance OPERATOR(pg_catalog.+) excluded.balance,
		   debt = b.debt OPERATOR(pg_catalog.+) excluded.debt,
		   earned = b.earned OPERATOR(pg_catalog.+) excluded.earned,
		   reversed = b.reversed OPERATOR(pg_catalog.+) excluded.reversed,
		   redeemed = b.redeemed OPERATOR(pg_catalog.+) excluded.redeemed,
		   expired = b.expired OPERATOR(pg_catalog.+) excluded.expired,
		   last_earned_at = greatest(b.last_earned_at, excluded.last_earned_at),
		   -- the proposed row's default: Citus takes no volatile call here
		   updated_at = excluded.updated_at;
	INSERT INTO crm.points_ledger (contact_id, entry_id, program_id, kind, points, order_id, reward_id, activity_id, rule_id,
								   discount_percent, expires_at, occurred_at, recorded_at, actor, idempotency_key, merged_from)
	SELECT keep, l.entry_id, l.program_id, l.kind, l.points, l.order_id, l.reward_id, l.activity_id, l.rule_id,
		   l.discount_percent,
		   l.expires_at, l.occurred_at, l.recorded_at, l.actor,
		   -- a key both contacts used stays with the kept contact's entry
		   CASE WHEN NOT l.idempotency_key OPERATOR(pg_catalog.=) ANY (kept_keys) THEN l.idempotency_key END,
		   coalesce(l.merged_from, drop)
	  FROM crm.points_ledger l WHERE l.contact_id OPERATOR(pg_catalog.=) drop;
	INSERT INTO crm.points_lot (contact_id, credit_id, program_id, expires_at, remaining)
	SELECT keep, t.credit_id, t.program_id, t.expires_at, t.remaining
	  FROM crm.points_lot t WHERE t.contact_id OPERATOR(pg_catalog.=) drop;
	INSERT INTO crm.points_draw (contact_id, debit_id, credit_id, points, drawn_at)
	SELECT keep, d.debit_id, d.credit_id, d.points, d.drawn_at
	  FROM crm.points_draw d WHERE d.contact_id OPERATOR(pg_catalog.=) drop;
	INSERT INTO crm.loyalty_voucher (contact_id, code, redemption_id, reward_id, partner, value, expires_at, used_at, used_by)
	SELECT keep, v.code, v.redemption_id, v.reward_id, v.partner, v.value, v.expires_at, v.used_at, v.used_by
	  FROM crm.loyalty_voucher v WHERE v.contact_id OPERATOR(pg_catalog.=) drop;
	INSERT INTO crm.tier_history (contact_id, history_id, program_id, from_tier, to_tier, qualifying_points,
								  changed_at, recorded_at, reason, merged_from)
	SELECT keep, h.history_id, h.program_id, h.from_tier, h.to_tier, h.qualifying_points,
		   h.changed_at, h.recorded_at, h.reason, coalesce(h.merged_from, drop)
	  FROM crm.tier_history h WHERE h.contact_id OPERATOR(pg_catalog.=) drop;
	DELETE FROM crm.tier_history h WHERE h.contact_id OPERATOR(pg_catalog.=) drop;
	DELETE FROM crm.loyalty_voucher v WHERE v.contact_id OPERATOR(pg_catalog.=) drop;
	DELETE FROM crm.points_draw d WHERE d.contact_id OPERATOR(pg_catalog.=) drop;
	DELETE FROM crm.points_lot t WHERE t.contact_id OPERATOR(pg_catalog.=) drop;
	DELETE FROM crm.points_balance b WHERE b.contact_id OPERATOR(pg_catalog.=) drop;
	DELETE FROM crm.points_ledger l WHERE l.contact_id OPERATOR(pg_catalog.=) drop;
END $$;
COMMENT ON FUNCTION crm.move_points(bigint, bigint) IS
	'moves the dropped contact''s ledger, draws, lots, vouchers and tier history onto the kept contact, adds its balances and keeps the higher tier (run by crm.merge_points as the ledger''s owner)';
REVOKE ALL ON FUNCTION crm.move_points(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.expire_points(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.expire_lots(bigint, timestamptz) FROM PUBLIC;

-- Merges move the loyalty tables with crm.merge_points (src/privacy.sql)
CREATE OR REPLACE FUNCTION crm.contact_references()
RETURNS SETOF crm.contact_reference
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	WITH RECURSIVE refs(relid, attnum, depth) AS (
		SELECT 'crm.contact'::regclass::oid, a.attnum, 0
		  FROM pg_attribute a
		 WHERE a.attrelid = 'crm.contact'::regclass AND a.attname = 'contact_id'
		UNION
		SELECT con.conrelid, con.conkey[array_position(con.confkey, r.attnum)], r.depth + 1
		  FROM refs r
		  JOIN pg_constraint con ON con.confrelid = r.relid AND con.contype = 'f'
		   AND r.attnum = ANY (con.confkey)
		 WHERE r.depth < 8 AND con.conrelid <> 'crm.contact'::regclass),
	found AS (
		SELECT DISTINCT r.relid, a.attname
		  FROM refs r JOIN pg_attribute a ON a.attrelid = r.relid AND a.attnum = r.attnum
		 WHERE r.depth > 0
		UNION
		SELECT d.relid, 'contact_id' FROM derived d
		UNION
		SELECT m.table_name, m.contact_column FROM crm.merge_rule m),
	-- scoring state has no foreign key (see src/scoring.sql); the merge
	-- deletes the dropped contact's rows and rescores the kept contact.
	-- Loyalty's tables move together (src/loyalty.sql): balances add up.
	derived(relid, action, merge_function) AS (
		VALUES ('crm.score_ledger'::regclass::oid, 'delete', NULL::regprocedure),
			   ('crm.score_event'::regclass::oid, 'delete', NULL),
			   ('crm.points_ledger'::regclass::oid, 'function', 'crm.merge_points(bigint, bigint)'::regprocedure),
			   ('crm.points_draw'::regclass::oid, 'function', 'crm.merge_points(bigint, bigint)'::regprocedure),
			   ('crm.points_lot'::regclass::oid, 'function', 'crm.merge_points(bigint, bigint)'::regprocedure),
			   ('crm.points_balance'::regclass::oid, 'function', 'crm.merge_points(bigint, bigint)'::regprocedure),
			   ('crm.loyalty_voucher'::regclass::oid, 'function', 'crm.merge_points(bigint, bigint)'::regprocedure),
			   ('crm.tier_history'::regclass::oid, 'function', 'crm.merge_points(bigint, bigint)'::regprocedure))
	SELECT f.relid::regclass, f.attname, coalesce(m.action, d.action, 'move'),
		   CASE WHEN m.action IS NOT NULL THEN m.merge_function ELSE d.merge_function END
	  FROM found f LEFT JOIN crm.merge_rule m ON m.table_name = f.relid
	  LEFT JOIN derived d ON d.relid = f.relid
	 ORDER BY f.relid::regclass::text, f.attname
$$;
COMMENT ON FUNCTION crm.contact_references() IS
	'tables and columns that hold a contact id (foreign keys to crm.contact, followed through composite keys, the scoring state, and crm.merge_rule), with the merge action';

-- The loyalty columns (src/columns.sql)
COMMENT ON COLUMN crm."order".refunded IS 'how much of total was refunded, 0 to total (default 0): loyalty points are reversed in proportion';
COMMENT ON COLUMN crm.loyalty_program.program_id IS 'programme id';
COMMENT ON COLUMN crm.loyalty_program.name IS 'programme name, unique';
COMMENT ON COLUMN crm.loyalty_program.currency IS 'ISO 4217 currency of the orders that earn (default USD); orders in another currency earn nothing here';
COMMENT ON COLUMN crm.loyalty_program.points_per_unit IS 'points per currency unit of an order total, 0 or more (default 1: a point per dollar)';
COMMENT ON COLUMN crm.loyalty_program.rounding IS 'how fractional points round: floor (default), round or ceil';
COMMENT ON COLUMN crm.loyalty_program.min_order_total IS 'orders below this total earn nothing (default 0)';
COMMENT ON COLUMN crm.loyalty_program.earn_statuses IS 'order statuses at which an order earns, once (default {paid,shipped})';
COMMENT ON COLUMN crm.loyalty_program.reverse_statuses IS 'order statuses that reverse what the order earned (default {cancelled,refunded}); a partial refund (refunded < total) reverses in proportion';
COMMENT ON COLUMN crm.loyalty_program.expiry IS 'after_earning (default: a lot expires expires_after after it was earned), after_inactivity (all lots expire expires_after after the last earning) or never';
COMMENT ON COLUMN crm.loyalty_program.expires_after IS 'the expiry duration (default 12 months)';
COMMENT ON COLUMN crm.loyalty_program.spent_reversal IS 'when a refunded order''s points were already spent: other_lots (default: taken from the contact''s other points, the rest owed as debt) or negative (owed as debt at once)';
COMMENT ON COLUMN crm.loyalty_program.max_discounts_per_order IS 'how many discount rewards one order may take (default 1)';
COMMENT ON COLUMN crm.loyalty_program.tier_window IS 'tiers: the rolling window of qualifying points, and the length of a tier''s period (default 12 months)';
COMMENT ON COLUMN crm.loyalty_program.active IS 'false: the programme earns no more points; points already earned stay redeemable';
COMMENT ON COLUMN crm.loyalty_program.created_at IS 'when the programme was created';
COMMENT ON COLUMN crm.loyalty_reward.reward_id IS 'reward id';
COMMENT ON COLUMN crm.loyalty_reward.program_id IS 'the programme whose points it costs (crm.loyalty_program)';
COMMENT ON COLUMN crm.loyalty_reward.name IS 'reward name, unique in the programme';
COMMENT ON COLUMN crm.loyalty_reward.points IS 'points it costs, positive';
COMMENT ON COLUMN crm.loyalty_reward.kind IS 'discount (a percentage off an order) or voucher';
COMMENT ON COLUMN crm.loyalty_reward.discount_percent IS 'discounts: percent off the order, above 0 and at most 100; NULL for vouchers';
COMMENT ON COLUMN crm.loyalty_reward.vouchers IS 'vouchers: how many one redemption gives, positive; NULL for discounts';
COMMENT ON COLUMN crm.loyalty_reward.partner IS 'vouchers: the partner that honours them (restaurant, cinema, hotel)';
COMMENT ON COLUMN crm.loyalty_reward.voucher_value IS 'vouchers: the value of each, 0 or more';
COMMENT ON COLUMN crm.loyalty_reward.voucher_valid_for IS 'vouchers: how long after the redemption they can be used (default 6 months)';
COMMENT ON COLUMN crm.loyalty_reward.active IS 'false: no longer redeemable';
COMMENT ON COLUMN crm.points_ledger.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.points_ledger.entry_id IS 'entry id, in the order entries were written';
COMMENT ON COLUMN crm.points_ledger.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.points_ledger.kind IS 'earn (a credit, positive), reverse, redeem or expire (debits, negative)';
COMMENT ON COLUMN crm.points_ledger.points IS 'points: positive for earn, negative for the debits';
COMMENT ON COLUMN crm.points_ledger.order_id IS 'earn by an order and reverse: the order (with contact_id); redeem: the order a discount is for';
COMMENT ON COLUMN crm.points_ledger.activity_id IS 'earn by an activity rule: the activity (with contact_id)';
COMMENT ON COLUMN crm.points_ledger.rule_id IS 'earn: the earning rule of a bonus or an activity''s points (crm.earning_rule; NULL: the order''s own points); reverse: the rule of the credit reversed';
COMMENT ON COLUMN crm.points_ledger.reward_id IS 'redeem: the reward bought (crm.loyalty_reward); NULL otherwise';
COMMENT ON COLUMN crm.points_ledger.discount_percent IS 'redeem of a discount: the percent off the order';
COMMENT ON COLUMN crm.points_ledger.expires_at IS 'earn: when the lot expires (NULL: never)';
COMMENT ON COLUMN crm.points_ledger.occurred_at IS 'when it happened in the world: the order''s time for earning, the lot''s expiry for expire';
COMMENT ON COLUMN crm.points_ledger.recorded_at IS 'when the entry was written (audit)';
COMMENT ON COLUMN crm.points_ledger.actor IS 'the role that wrote it (audit)';
COMMENT ON COLUMN crm.points_ledger.idempotency_key IS 'redeem: the caller''s key; the same key returns the first redemption instead of spending again';
COMMENT ON COLUMN crm.points_ledger.merged_from IS 'the contact the entry was written for before a merge moved it here; NULL if never merged';
COMMENT ON COLUMN crm.points_draw.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.points_draw.debit_id IS 'the debit (a redeem, reverse or expire entry of crm.points_ledger)';
COMMENT ON COLUMN crm.points_draw.credit_id IS 'the credit (an earn entry, a lot) it drew from';
COMMENT ON COLUMN crm.points_draw.points IS 'points drawn, positive';
COMMENT ON COLUMN crm.points_draw.drawn_at IS 'when the draw was written (audit)';
COMMENT ON COLUMN crm.points_lot.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.points_lot.credit_id IS 'the credit (earn entry of crm.points_ledger)';
COMMENT ON COLUMN crm.points_lot.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.points_lot.expires_at IS 'when its remaining points expire (NULL: never); moved on by each earning under after_inactivity';
COMMENT ON COLUMN crm.points_lot.remaining IS 'points of the credit not yet drawn, 0 or more';
COMMENT ON COLUMN crm.points_balance.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.points_balance.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.points_balance.balance IS 'redeemable points: the sum of the ledger; negative while a debt exceeds the lots';
COMMENT ON COLUMN crm.points_balance.debt IS 'points reversed that no lot could cover, settled from the next points earned';
COMMENT ON COLUMN crm.points_balance.earned IS 'points earned in all';
COMMENT ON COLUMN crm.points_balance.reversed IS 'points reversed by refunds and cancellations';
COMMENT ON COLUMN crm.points_balance.redeemed IS 'points spent on rewards';
COMMENT ON COLUMN crm.points_balance.expired IS 'points expired';
COMMENT ON COLUMN crm.points_balance.last_earned_at IS 'time of the latest earning (the order''s time)';
COMMENT ON COLUMN crm.points_balance.tier IS 'the tier held (crm.loyalty_tier); NULL: none';
COMMENT ON COLUMN crm.points_balance.tier_since IS 'when the tier was reached (the earning''s time)';
COMMENT ON COLUMN crm.points_balance.tier_until IS 'the end of the tier''s period, when crm.expire_points reviews it';
COMMENT ON COLUMN crm.points_balance.updated_at IS 'when the row was last written (audit)';
COMMENT ON COLUMN crm.earning_rule.rule_id IS 'rule id';
COMMENT ON COLUMN crm.earning_rule.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.earning_rule.name IS 'rule name, unique in the programme';
COMMENT ON COLUMN crm.earning_rule.kind IS 'category (a multiplier on the order lines of a product category) or activity (points for an activity)';
COMMENT ON COLUMN crm.earning_rule.category IS 'category rules: the product category (crm.product.category); one rule per category and programme';
COMMENT ON COLUMN crm.earning_rule.multiplier IS 'category rules: the lines earn multiplier times the programme''s points per unit; above 1 a bonus credit per order (rounded down), below 1 less of the order''s own points, 0 none';
COMMENT ON COLUMN crm.earning_rule.activity_kind IS 'activity rules: the activity kind (NULL: any)';
COMMENT ON COLUMN crm.earning_rule.condition IS 'activity rules: a jsonpath condition on the activity''s properties, tested as scoring rules are (crm.condition_holds); NULL: always';
COMMENT ON COLUMN crm.earning_rule.points IS 'activity rules: the points an activity earns, once per activity';
COMMENT ON COLUMN crm.earning_rule.cap_points IS 'at most this many points from the rule per contact and cap_period (NULL: no cap); bonuses only';
COMMENT ON COLUMN crm.earning_rule.cap_period IS 'the cap''s calendar period in UTC: day, week, month, quarter or year';
COMMENT ON COLUMN crm.earning_rule.active IS 'false: the rule earns nothing more';
COMMENT ON COLUMN crm.earning_rule.created_at IS 'when the rule was created';
COMMENT ON COLUMN crm.loyalty_tier.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.loyalty_tier.tier IS 'tier name, unique in the programme';
COMMENT ON COLUMN crm.loyalty_tier.qualifying_points IS 'points to earn (less reversals) within the programme''s tier_window to reach it; positive, unique in the programme';
COMMENT ON COLUMN crm.tier_history.contact_id IS 'the contact (crm.contact)';
COMMENT ON COLUMN crm.tier_history.history_id IS 'entry id';
COMMENT ON COLUMN crm.tier_history.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.tier_history.from_tier IS 'the tier before; NULL: none';
COMMENT ON COLUMN crm.tier_history.to_tier IS 'the tier after; NULL: none';
COMMENT ON COLUMN crm.tier_history.qualifying_points IS 'upgrade and review: the qualifying points in the window then; merge: the threshold of the tier brought';
COMMENT ON COLUMN crm.tier_history.changed_at IS 'when it happened in the world: the earning that reached the tier, the end of the period reviewed, the merge';
COMMENT ON COLUMN crm.tier_history.recorded_at IS 'when the row was written (audit)';
COMMENT ON COLUMN crm.tier_history.reason IS 'upgrade, review (the end of a period: kept rows are not logged) or merge';
COMMENT ON COLUMN crm.tier_history.merged_from IS 'the contact it was logged for, when moved here by a merge';
COMMENT ON COLUMN crm.loyalty_voucher.contact_id IS 'the contact who redeemed it (crm.contact)';
COMMENT ON COLUMN crm.loyalty_voucher.code IS 'the voucher code: random, unique';
COMMENT ON COLUMN crm.loyalty_voucher.redemption_id IS 'the redeem entry of crm.points_ledger that bought it';
COMMENT ON COLUMN crm.loyalty_voucher.reward_id IS 'the reward (crm.loyalty_reward)';
COMMENT ON COLUMN crm.loyalty_voucher.partner IS 'the partner that honours it';
COMMENT ON COLUMN crm.loyalty_voucher.value IS 'its value';
COMMENT ON COLUMN crm.loyalty_voucher.expires_at IS 'after this it cannot be used';
COMMENT ON COLUMN crm.loyalty_voucher.used_at IS 'when it was used (crm.use_voucher); NULL while unused';
COMMENT ON COLUMN crm.loyalty_voucher.used_by IS 'the role that marked it used';
COMMENT ON COLUMN crm.loyalty_program.point_value IS 'what one point is worth in currency, for the liability (crm.loyalty_monthly); NULL: not valued';
COMMENT ON COLUMN crm.loyalty_monthly.program_id IS 'the programme (crm.loyalty_program)';
COMMENT ON COLUMN crm.loyalty_monthly.program IS 'its name';
COMMENT ON COLUMN crm.loyalty_monthly.month IS 'first day of the month (UTC) the movements happened in (occurred_at); months without movements are left out';
COMMENT ON COLUMN crm.loyalty_monthly.contacts IS 'contacts with a movement in the month';
COMMENT ON COLUMN crm.loyalty_monthly.earned IS 'points earned in the month';
COMMENT ON COLUMN crm.loyalty_monthly.reversed IS 'points reversed by refunds, cancellations and deleted orders';
COMMENT ON COLUMN crm.loyalty_monthly.redeemed IS 'points spent on rewards';
COMMENT ON COLUMN crm.loyalty_monthly.expired IS 'points expired';
COMMENT ON COLUMN crm.loyalty_monthly.outstanding IS 'points outstanding at the month''s end: the ledger''s sum up to then (debts count negative)';
COMMENT ON COLUMN crm.loyalty_monthly.liability IS 'outstanding x the programme''s point_value, in currency; NULL when point_value is not set';
COMMENT ON COLUMN crm.loyalty_monthly.currency IS 'ISO 4217 currency of the liability';
COMMENT ON COLUMN crm.loyalty_monthly.redemption_rate IS 'redeemed / (earned - reversed) in the month; NULL when nothing net was earned';
COMMENT ON COLUMN crm.loyalty_monthly.breakage IS 'expired / (redeemed + expired): the share of the points leaving in the month by expiry; NULL when none left';

-- crm.condition_holds(): a rule's condition as the triggers test it (src/scoring.sql)
CREATE FUNCTION crm.condition_holds(doc jsonb, condition jsonpath) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_condition_holds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.condition_holds(jsonb, jsonpath) IS
	'does a rule''s jsonpath condition hold for a document, as crm tests rule conditions: a predicate with @@, any other path when it yields an item (@?); a structural error is false';

-- crm.contact_profile and crm_bi.contacts: loyalty points, tier and points
-- expiring within 30 days, appended (src/segment.sql, src/bi_views.sql)
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
	   crm.grade(c.contact_id) AS grade,
	   lp.balance AS points_balance, lp.tier AS loyalty_tier, lp.expiring AS points_expiring_30d
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
					crm.rfm(1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER (),
							1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER (),
							1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ()) AS rfm,
					percent_rank() OVER (ORDER BY sum(o.total)) AS value_rank
			   FROM crm."order" o
			  WHERE o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])
			  GROUP BY o.contact_id) v ON v.contact_id OPERATOR(pg_catalog.=) c.contact_id
  -- loyalty (src/loyalty.sql): the points of every programme, the highest
  -- tier held, the points whose lots expire within 30 days
  LEFT JOIN LATERAL (
	SELECT sum(b.balance)::bigint AS balance,
		   (pg_catalog.array_agg(b.tier ORDER BY t.qualifying_points DESC) FILTER (WHERE b.tier IS NOT NULL))[1] AS tier,
		   (SELECT coalesce(sum(l.remaining), 0)::bigint FROM crm.points_lot l
			 WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.remaining OPERATOR(pg_catalog.>) 0
			   AND l.expires_at OPERATOR(pg_catalog.>) now()
			   AND l.expires_at OPERATOR(pg_catalog.<=) (now() OPERATOR(pg_catalog.+) interval '30 days')) AS expiring
	  FROM crm.points_balance b
	  LEFT JOIN crm.loyalty_tier t ON t.program_id OPERATOR(pg_catalog.=) b.program_id AND t.tier OPERATOR(pg_catalog.=) b.tier
	 WHERE b.contact_id OPERATOR(pg_catalog.=) c.contact_id
	HAVING count(*) OPERATOR(pg_catalog.>) 0) lp ON true;
COMMENT ON VIEW crm.contact_profile IS
	'one row per contact for segment predicates: contact and company columns, orders, lifetime value, RFM cell and segment, value_rank (percentile of lifetime value among customers), activity counts, consent per channel now, scores, loyalty points, tier and points expiring soon';

CREATE OR REPLACE VIEW crm_bi.contacts WITH (security_invoker = true) AS
SELECT p.contact_id, p.email::text AS email, crm.email_domain(p.email) AS email_domain,
	   p.first_name, p.last_name, p.phone, p.city, p.region, p.country, p.birth_date, p.age,
	   p.income_band, p.job_title, p.lead_source, p.owner,
	   p.stage::text AS stage, array_position(enum_range(NULL::crm.stage), p.stage) AS stage_rank,
	   p.do_not_contact, p.created_at, (p.created_at AT TIME ZONE 'UTC')::date AS created_on, p.updated_at,
	   p.company_id, p.company_name, p.company_domain, p.company_industry, p.company_employees,
	   p.company_annual_revenue, p.company_country,
	   p.order_count, p.lifetime_value,
	   p.first_order_at, (p.first_order_at AT TIME ZONE 'UTC')::date AS first_order_on,
	   p.last_order_at, (p.last_order_at AT TIME ZONE 'UTC')::date AS last_order_on,
	   p.recency_days,
	   p.rfm::text AS rfm, crm.r(p.rfm) AS rfm_r, crm.f(p.rfm) AS rfm_f, crm.m(p.rfm) AS rfm_m,
	   p.rfm_segment, p.value_rank,
	   p.activity_count, p.last_activity_at,
	   p.consent_email, p.consent_phone, p.consent_sms, p.consent_post, p.consent_profiling,
	   p.engagement_score, p.fit_score, p.grade,
	   p.points_balance, p.loyalty_tier, p.points_expiring_30d
  FROM crm.contact_profile p;
COMMENT ON VIEW crm_bi.contacts IS
	'one row per contact: who, company, stage and its rank, orders, lifetime value, RFM cell (text and r, f, m), activity, consent now, scores and grade, loyalty points and tier; plain types';

COMMENT ON COLUMN crm.contact_profile.points_balance IS 'loyalty: the redeemable points of every programme (crm.points_balance); NULL: in none';
COMMENT ON COLUMN crm.contact_profile.loyalty_tier IS 'loyalty: the highest tier held (crm.loyalty_tier); NULL: none';
COMMENT ON COLUMN crm.contact_profile.points_expiring_30d IS 'loyalty: points whose lots expire within the next 30 days';
COMMENT ON COLUMN crm_bi.contacts.points_balance IS 'loyalty: the redeemable points of every programme; NULL: in none';
COMMENT ON COLUMN crm_bi.contacts.loyalty_tier IS 'loyalty: the highest tier held; NULL: none';
COMMENT ON COLUMN crm_bi.contacts.points_expiring_30d IS 'loyalty: points whose lots expire within the next 30 days';

-- predictive models: crm.logit_fit, crm.predict, crm.explain_prediction, crm.auc, crm.log_loss, crm.brier (src/predict.sql)
-- ---------------------------------------------------------------------------
-- Predictive models (src/predict_*.c): logistic regression as an aggregate,
-- its model type, predictions with reasons that add up, and the measures of
-- a score (AUC, log loss, Brier score).  Pure functions of their arguments:
-- PUBLIC may call them.
-- ---------------------------------------------------------------------------
CREATE TYPE crm.logit AS (
	feature		text[],
	level		text[],
	coefficient double precision[],
	std_error	double precision[],
	dropped		text[],
	log_likelihood double precision,
	n			double precision,
	positives	double precision,
	vectors		bigint,
	iterations	integer,
	converged	boolean,
	l2			double precision
);
COMMENT ON TYPE crm.logit IS
	'a fitted logistic regression (crm.logit_fit): per column its feature, level (NULL: numeric), coefficient and standard error, the intercept first; the aliased columns dropped; log-likelihood, weight of all and of the positive rows, distinct feature vectors, iterations, converged, the L2 penalty';

CREATE FUNCTION crm.logit_trans(internal, boolean, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_logit_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.logit_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.logit_final(internal)
RETURNS crm.logit AS 'MODULE_PATHNAME', 'crm_logit_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.logit_trans(internal, boolean, jsonb) IS 'crm.logit_fit''s transition: adds the row''s outcome to its feature vector''s counts';
COMMENT ON FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision) IS 'crm.logit_fit''s transition, with a weight';
COMMENT ON FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision, double precision) IS 'crm.logit_fit''s transition, with a weight and the L2 penalty';
COMMENT ON FUNCTION crm.logit_combine(internal, internal) IS 'crm.logit_fit''s combine: adds two partial states (parallel workers, Citus workers)';
COMMENT ON FUNCTION crm.logit_serialize(internal) IS 'crm.logit_fit''s state as bytes';
COMMENT ON FUNCTION crm.logit_deserialize(bytea, internal) IS 'crm.logit_fit''s state from bytes';
COMMENT ON FUNCTION crm.logit_final(internal) IS 'crm.logit_fit''s final: encodes the distinct vectors, drops aliased columns, fits by Newton''s method';

CREATE AGGREGATE crm.logit_fit(outcome boolean, features jsonb) (
	SFUNC = crm.logit_trans, STYPE = internal, FINALFUNC = crm.logit_final,
	COMBINEFUNC = crm.logit_combine, SERIALFUNC = crm.logit_serialize,
	DESERIALFUNC = crm.logit_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE crm.logit_fit(outcome boolean, features jsonb, weight double precision) (
	SFUNC = crm.logit_trans, STYPE = internal, FINALFUNC = crm.logit_final,
	COMBINEFUNC = crm.logit_combine, SERIALFUNC = crm.logit_serialize,
	DESERIALFUNC = crm.logit_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE crm.logit_fit(outcome boolean, features jsonb, weight double precision, l2 double precision) (
	SFUNC = crm.logit_trans, STYPE = internal, FINALFUNC = crm.logit_final,
	COMBINEFUNC = crm.logit_combine, SERIALFUNC = crm.logit_serialize,
	DESERIALFUNC = crm.logit_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.logit_fit(boolean, jsonb) IS
	'logistic regression of outcome on the features (numbers and booleans as given, strings one-hot with the first level as baseline, null missing), by Newton''s method over the distinct feature vectors; aliased columns dropped; 22023 when the outcome has one value';
COMMENT ON AGGREGATE crm.logit_fit(boolean, jsonb, double precision) IS
	'crm.logit_fit with a weight per row (0 or more)';
COMMENT ON AGGREGATE crm.logit_fit(boolean, jsonb, double precision, double precision) IS
	'crm.logit_fit with a weight per row and an L2 penalty on the coefficients but the intercept (the same on every row)';

CREATE FUNCTION crm.predict(model crm.logit, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_logit_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict(crm.logit, jsonb) IS
	'the model''s probability for the features: an unseen string level adds nothing, an unknown numeric feature is refused (22023)';
CREATE FUNCTION crm.predict_log_odds(model crm.logit, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_logit_log_odds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict_log_odds(crm.logit, jsonb) IS
	'the model''s log-odds for the features: the sum of crm.explain_prediction''s contributions';
CREATE FUNCTION crm.explain_prediction(model crm.logit, features jsonb)
RETURNS TABLE (feature text, value text, contribution double precision)
	AS 'MODULE_PATHNAME', 'crm_logit_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION crm.explain_prediction(crm.logit, jsonb) IS
	'the intercept and each feature''s contribution to the log-odds (coefficient x value); in this order they add up to crm.predict_log_odds';

CREATE FUNCTION crm.auc_trans(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_auc_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.auc_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_auc_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.auc_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_auc_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.auc_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_auc_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.auc_final(internal)
RETURNS double precision AS 'MODULE_PATHNAME', 'crm_auc_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.auc_trans(internal, double precision, boolean) IS 'crm.auc''s transition: keeps the (score, label) pair';
COMMENT ON FUNCTION crm.auc_combine(internal, internal) IS 'crm.auc''s combine';
COMMENT ON FUNCTION crm.auc_serialize(internal) IS 'crm.auc''s state as bytes';
COMMENT ON FUNCTION crm.auc_deserialize(bytea, internal) IS 'crm.auc''s state from bytes';
COMMENT ON FUNCTION crm.auc_final(internal) IS 'crm.auc''s final: sorts the scores, ranks ties at their average';
CREATE AGGREGATE crm.auc(score double precision, label boolean) (
	SFUNC = crm.auc_trans, STYPE = internal, FINALFUNC = crm.auc_final,
	COMBINEFUNC = crm.auc_combine, SERIALFUNC = crm.auc_serialize,
	DESERIALFUNC = crm.auc_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.auc(double precision, boolean) IS
	'area under the ROC curve of score for label: the Mann-Whitney statistic with average ranks for ties; NULL when one class is missing';

CREATE FUNCTION crm.log_loss_trans(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_log_loss_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.brier_trans(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_brier_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.mean_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_mean_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.mean_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_mean_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mean_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_mean_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mean_final(internal)
RETURNS double precision AS 'MODULE_PATHNAME', 'crm_mean_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_loss_trans(internal, double precision, boolean) IS 'crm.log_loss''s transition';
COMMENT ON FUNCTION crm.brier_trans(internal, double precision, boolean) IS 'crm.brier''s transition';
COMMENT ON FUNCTION crm.mean_combine(internal, internal) IS 'crm.log_loss''s and crm.brier''s combine';
COMMENT ON FUNCTION crm.mean_serialize(internal) IS 'crm.log_loss''s and crm.brier''s state as bytes';
COMMENT ON FUNCTION crm.mean_deserialize(bytea, internal) IS 'crm.log_loss''s and crm.brier''s state from bytes';
COMMENT ON FUNCTION crm.mean_final(internal) IS 'crm.log_loss''s and crm.brier''s final: the mean';
CREATE AGGREGATE crm.log_loss(p double precision, label boolean) (
	SFUNC = crm.log_loss_trans, STYPE = internal, FINALFUNC = crm.mean_final,
	COMBINEFUNC = crm.mean_combine, SERIALFUNC = crm.mean_serialize,
	DESERIALFUNC = crm.mean_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.log_loss(double precision, boolean) IS
	'mean negative log-likelihood of the probabilities p for label, p clipped to [1e-15, 1 - 1e-15]';
CREATE AGGREGATE crm.brier(p double precision, label boolean) (
	SFUNC = crm.brier_trans, STYPE = internal, FINALFUNC = crm.mean_final,
	COMBINEFUNC = crm.mean_combine, SERIALFUNC = crm.mean_serialize,
	DESERIALFUNC = crm.mean_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.brier(double precision, boolean) IS
	'mean squared difference of the probabilities p from label (1 or 0)';

-- Naive Bayes over field values (src/predict_nbayes.c)
CREATE TYPE crm.nbayes AS (
	feature		text[],
	value		text[],
	positives	double precision[],
	negatives	double precision[],
	class_positives double precision,
	class_negatives double precision,
	alpha		double precision
);
COMMENT ON TYPE crm.nbayes IS
	'a naive Bayes model (crm.nb_fit): per feature and value the positive and negative rows with it (sorted by feature and value), the rows of each class, the smoothing alpha';
CREATE FUNCTION crm.nb_trans(internal, boolean, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.nb_trans(internal, boolean, jsonb, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.nb_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.nb_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_nb_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.nb_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.nb_final(internal)
RETURNS crm.nbayes AS 'MODULE_PATHNAME', 'crm_nb_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.nb_trans(internal, boolean, jsonb) IS 'crm.nb_fit''s transition: counts the row''s values in its class';
COMMENT ON FUNCTION crm.nb_trans(internal, boolean, jsonb, double precision) IS 'crm.nb_fit''s transition, with alpha';
COMMENT ON FUNCTION crm.nb_combine(internal, internal) IS 'crm.nb_fit''s combine: adds the counts';
COMMENT ON FUNCTION crm.nb_serialize(internal) IS 'crm.nb_fit''s state as bytes';
COMMENT ON FUNCTION crm.nb_deserialize(bytea, internal) IS 'crm.nb_fit''s state from bytes';
COMMENT ON FUNCTION crm.nb_final(internal) IS 'crm.nb_fit''s final: the counts, sorted, as a crm.nbayes';
CREATE AGGREGATE crm.nb_fit(outcome boolean, features jsonb) (
	SFUNC = crm.nb_trans, STYPE = internal, FINALFUNC = crm.nb_final,
	COMBINEFUNC = crm.nb_combine, SERIALFUNC = crm.nb_serialize,
	DESERIALFUNC = crm.nb_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE crm.nb_fit(outcome boolean, features jsonb, alpha double precision) (
	SFUNC = crm.nb_trans, STYPE = internal, FINALFUNC = crm.nb_final,
	COMBINEFUNC = crm.nb_combine, SERIALFUNC = crm.nb_serialize,
	DESERIALFUNC = crm.nb_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.nb_fit(boolean, jsonb) IS
	'naive Bayes over field values (every value a category, null missing) with Laplace smoothing alpha = 1 and the prior of the class frequencies';
COMMENT ON AGGREGATE crm.nb_fit(boolean, jsonb, double precision) IS
	'crm.nb_fit with the smoothing alpha (above 0; the same on every row)';
CREATE FUNCTION crm.predict(model crm.nbayes, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_nb_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict(crm.nbayes, jsonb) IS
	'the naive Bayes probability for the features; a feature the model never saw adds nothing, an unseen value of a known one its smoothed likelihood';
CREATE FUNCTION crm.predict_log_odds(model crm.nbayes, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_nb_log_odds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict_log_odds(crm.nbayes, jsonb) IS
	'the naive Bayes log-odds: the sum of crm.explain_prediction''s contributions';
CREATE FUNCTION crm.explain_prediction(model crm.nbayes, features jsonb)
RETURNS TABLE (feature text, value text, contribution double precision)
	AS 'MODULE_PATHNAME', 'crm_nb_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION crm.explain_prediction(crm.nbayes, jsonb) IS
	'the prior''s log-odds and each feature''s log likelihood ratio; in this order they add up to crm.predict_log_odds';

-- stage = text, as a driver binds a string parameter (character varying):
-- the text read as a stage (22P02 when it is not one).  Inlined, so
-- "stage = $1" becomes "stage = $1::crm.stage", which an index on stage
-- serves; a literal (stage = 'lead') resolves here too and means the same.
CREATE FUNCTION crm.stage_eq_text(crm.stage, text) RETURNS boolean
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.=) $2::crm.stage;
CREATE FUNCTION crm.stage_ne_text(crm.stage, text) RETURNS boolean
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.<>) $2::crm.stage;
COMMENT ON FUNCTION crm.stage_eq_text(crm.stage, text) IS 'implementation of stage = text: the text read as a stage';
COMMENT ON FUNCTION crm.stage_ne_text(crm.stage, text) IS 'implementation of stage <> text: the text read as a stage';
CREATE OPERATOR pg_catalog.= (
	LEFTARG = crm.stage, RIGHTARG = text, FUNCTION = crm.stage_eq_text,
	NEGATOR = OPERATOR(pg_catalog.<>), RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = crm.stage, RIGHTARG = text, FUNCTION = crm.stage_ne_text,
	NEGATOR = OPERATOR(pg_catalog.=), RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);


-- The analyst views (src/analyst.sql)
COMMENT ON COLUMN crm.analyst_funnel.month IS 'first day of the month (UTC); contacts are counted at its end, now for the current month';
COMMENT ON COLUMN crm.analyst_funnel.stage IS 'lifecycle stage';
COMMENT ON COLUMN crm.analyst_funnel.contacts IS 'contacts in the stage at the end of the month (at least 5)';
COMMENT ON COLUMN crm.analyst_funnel.share IS 'contacts / all contacts with a stage at that time';
COMMENT ON COLUMN crm.analyst_stage_conversion.month IS 'first day of the month (UTC) in which the stage was entered';
COMMENT ON COLUMN crm.analyst_stage_conversion.stage IS 'the stage entered';
COMMENT ON COLUMN crm.analyst_stage_conversion.contacts IS 'distinct contacts that entered the stage in the month (at least 5)';
COMMENT ON COLUMN crm.analyst_stage_conversion.entered IS 'entries into the stage in the month';
COMMENT ON COLUMN crm.analyst_stage_conversion.moved_on IS 'entries that moved on to a later funnel stage before the month ended (now for the current month)';
COMMENT ON COLUMN crm.analyst_stage_conversion.conversion IS 'moved_on / entered';
COMMENT ON COLUMN crm.analyst_stage_conversion.median_time_in_stage IS 'median time from entering the stage to leaving it, over entries that left before the month ended';
COMMENT ON COLUMN crm.analyst_stage_conversion.p90_time_in_stage IS '90th percentile of that time';
COMMENT ON COLUMN crm.analyst_retention.cohort_month IS 'month of the first purchase (UTC), the cohort';
COMMENT ON COLUMN crm.analyst_retention.months_since IS 'months since the cohort month (0 = the cohort month)';
COMMENT ON COLUMN crm.analyst_retention.customers IS 'customers in the cohort';
COMMENT ON COLUMN crm.analyst_retention.active IS 'customers of the cohort who bought in that month (at least 5)';
COMMENT ON COLUMN crm.analyst_retention.retention IS 'active / customers';
COMMENT ON COLUMN crm.analyst_churn.month IS 'first day of the month (UTC); only months whose next month has ended';
COMMENT ON COLUMN crm.analyst_churn.active IS 'customers who bought in the month (at least 5)';
COMMENT ON COLUMN crm.analyst_churn.churned IS 'of those, customers who did not buy in the next month';
COMMENT ON COLUMN crm.analyst_churn.churn_rate IS 'churned / active';
COMMENT ON COLUMN crm.analyst_rfm.segment IS 'named RFM segment (crm.rfm_segment)';
COMMENT ON COLUMN crm.analyst_rfm.contacts IS 'customers in the segment (at least 5)';
COMMENT ON COLUMN crm.analyst_rfm.share IS 'contacts / all customers with an order';
COMMENT ON COLUMN crm.analyst_rfm.avg_recency_days IS 'mean days since the last order';
COMMENT ON COLUMN crm.analyst_rfm.avg_frequency IS 'mean number of orders';
COMMENT ON COLUMN crm.analyst_rfm.avg_monetary IS 'mean spend (order totals, cancelled and refunded left out)';
COMMENT ON COLUMN crm.analyst_rfm.monetary IS 'total spend of the segment';
COMMENT ON COLUMN crm.analyst_clv_model.contacts IS 'customers the BG/NBD model is fitted to (at least 5)';
COMMENT ON COLUMN crm.analyst_clv_model.repeat_customers IS 'customers with a repeat purchase, the Gamma-Gamma model is fitted to';
COMMENT ON COLUMN crm.analyst_clv_model.r IS 'BG/NBD r';
COMMENT ON COLUMN crm.analyst_clv_model.alpha IS 'BG/NBD alpha (days)';
COMMENT ON COLUMN crm.analyst_clv_model.a IS 'BG/NBD a';
COMMENT ON COLUMN crm.analyst_clv_model.b IS 'BG/NBD b';
COMMENT ON COLUMN crm.analyst_clv_model.bgnbd_ll IS 'log-likelihood of the BG/NBD fit';
COMMENT ON COLUMN crm.analyst_clv_model.bgnbd_converged IS 'whether the BG/NBD fit converged';
COMMENT ON COLUMN crm.analyst_clv_model.p IS 'Gamma-Gamma p';
COMMENT ON COLUMN crm.analyst_clv_model.q IS 'Gamma-Gamma q';
COMMENT ON COLUMN crm.analyst_clv_model.gamma IS 'Gamma-Gamma gamma';
COMMENT ON COLUMN crm.analyst_clv_model.gammagamma_ll IS 'log-likelihood of the Gamma-Gamma fit';
COMMENT ON COLUMN crm.analyst_clv_model.gammagamma_converged IS 'whether the Gamma-Gamma fit converged';
COMMENT ON COLUMN crm.analyst_clv_model.bgnbd IS 'the fitted BG/NBD model value';
COMMENT ON COLUMN crm.analyst_clv_model.gammagamma IS 'the fitted Gamma-Gamma model value';
COMMENT ON COLUMN crm.analyst_clv.decile IS 'decile of predicted one-year CLV, 1 = lowest';
COMMENT ON COLUMN crm.analyst_clv.contacts IS 'customers in the decile';
COMMENT ON COLUMN crm.analyst_clv.clv_from IS 'lowest CLV in the decile (NULL for the lowest decile)';
COMMENT ON COLUMN crm.analyst_clv.clv_to IS 'highest CLV in the decile (NULL for the highest decile)';
COMMENT ON COLUMN crm.analyst_clv.avg_clv IS 'mean predicted one-year CLV';
COMMENT ON COLUMN crm.analyst_clv.total_clv IS 'total predicted one-year CLV';
COMMENT ON COLUMN crm.analyst_clv.avg_expected_purchases IS 'mean expected purchases in the next 365 days';
COMMENT ON COLUMN crm.analyst_clv.avg_p_alive IS 'mean probability that the customer is still active';
COMMENT ON COLUMN crm.analyst_campaign.campaign_id IS 'campaign id';
COMMENT ON COLUMN crm.analyst_campaign.campaign IS 'campaign name';
COMMENT ON COLUMN crm.analyst_campaign.channel IS 'channel of the campaign';
COMMENT ON COLUMN crm.analyst_campaign.starts_on IS 'day the campaign starts (UTC)';
COMMENT ON COLUMN crm.analyst_campaign.ends_on IS 'day the campaign ends (UTC)';
COMMENT ON COLUMN crm.analyst_campaign.targeted IS 'contacts targeted (at least 5)';
COMMENT ON COLUMN crm.analyst_campaign.held_out IS 'contacts held out as control (NULL below 5)';
COMMENT ON COLUMN crm.analyst_campaign.responded IS 'targeted contacts who responded';
COMMENT ON COLUMN crm.analyst_campaign.response_rate IS 'responded / targeted';
COMMENT ON COLUMN crm.analyst_campaign.holdout_responded IS 'held-out contacts who responded (NULL below 5 held out)';
COMMENT ON COLUMN crm.analyst_campaign.holdout_response_rate IS 'holdout_responded / held_out';
COMMENT ON COLUMN crm.analyst_campaign.revenue IS 'revenue of the responders (NULL below 5 responders)';
COMMENT ON COLUMN crm.analyst_campaign.holdout_revenue IS 'revenue of the held-out responders (NULL below 5 held out or 5 held-out responders)';
COMMENT ON COLUMN crm.analyst_campaign.cost IS 'cost of the campaign';
COMMENT ON COLUMN crm.analyst_campaign.return_on_cost IS '(revenue - cost) / cost (NULL below 5 responders)';
COMMENT ON COLUMN crm.analyst_campaign.lift IS 'relative lift: response_rate / holdout_response_rate - 1 (NULL below 5 held out)';
COMMENT ON COLUMN crm.analyst_pipeline.pipeline_stage IS 'deal pipeline stage';
COMMENT ON COLUMN crm.analyst_pipeline.deals IS 'open deals in the stage';
COMMENT ON COLUMN crm.analyst_pipeline.contacts IS 'distinct contacts of those deals (at least 5)';
COMMENT ON COLUMN crm.analyst_pipeline.amount IS 'total amount of the open deals';
COMMENT ON COLUMN crm.analyst_pipeline.weighted_amount IS 'amount weighted by each deals probability';

-- A database set up under 0.1.0 has policies with subqueries (which Citus
-- refuses): set up again, they call the functions above
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
				WHERE p.polrelid OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass
				  AND p.polname OPERATOR(pg_catalog.=) 'crm_sales_own') THEN
		PERFORM crm.setup_roles();
	END IF;
END $$;
