
-- ---------------------------------------------------------------------------
-- Roles and row-level security.  crm.setup_roles() creates (or adopts) four
-- group roles and grants; an administrator runs it once after CREATE
-- EXTENSION, and again after features add tables (it is idempotent).
--   crm_admin      everything, all rows; rules, policies, erasure, merges
--   crm_sales      contacts it owns (contact.owner = the role or a role it
--                  is a member of) and their activities, deals, orders,
--                  tasks, consents, merge and erasure records; the
--                  companies it owns or has contacts at; merges within those
--   crm_marketing  reads contacts and their data; manages segments,
--                  campaigns and scoring rules; not roles
--   crm_analyst    the views crm.analyst_* only: no personal data, every
--                  combination of values shared by at least 5 contacts;
--                  and the aggregate views of crm_bi over them
-- crm_bi's person views go to the roles that read the tables under them,
-- its aggregate views (and the analyst views under them) to every role.
-- Every other view is security_invoker, so the row-level security of the
-- tables under it applies to whoever reads it.
-- ---------------------------------------------------------------------------

-- The roles the current user is a member of (directly or not), itself included.
CREATE FUNCTION crm.my_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT array_agg(r.rolname::text) FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')
$$;
COMMENT ON FUNCTION crm.my_roles() IS
	'names of the roles the current user belongs to (itself included), for segment predicates such as owner = ANY (crm.my_roles()); the policies ask crm.owned_by_me';

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

-- Views for analysts: no names, e-mails, phones, ids or free text, and
-- nothing that singles a person out.  Every combination of values an analyst
-- can see stands for at least 5 contacts (k-anonymity, k = 5): contacts come
-- generalised (age band, industry, quarter) and, where a combination is
-- rarer, with more columns withheld; activities, orders and deals come as
-- counts per cell, and cells of fewer than 5 contacts are left out.  Dates
-- are taken in UTC, whatever the session's time zone, so that no two
-- settings give two overlapping views to compare.  The views run with their
-- owner's rights (they are their own filter), so analysts need no grant on
-- the tables.

-- One row per contact.  A contact whose combination is shared by fewer than
-- 5 contacts loses its columns one at a time, in the order of qi
-- (created quarter first, country last), until the contacts still
-- undecided at that step share what is left by 5 or more; withheld says how
-- many were withheld (NULL in a withheld column).  The last few contacts, if
-- fewer than 5 remain with everything withheld, are left out.
CREATE VIEW crm.analyst_contact AS
WITH RECURSIVE g AS (
	SELECT c.country, co.industry AS company_industry, c.lead_source, c.stage, c.income_band,
		   c.do_not_contact IS NOT NULL AS do_not_contact,
		   CASE WHEN c.birth_date IS NULL THEN NULL
				WHEN age(utc.today, c.birth_date::timestamp) < interval '25 years' THEN 'under 25'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '35 years' THEN '25-34'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '45 years' THEN '35-44'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '55 years' THEN '45-54'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '65 years' THEN '55-64'
				ELSE '65 and over' END AS age_band,
		   date_trunc('quarter', c.created_at AT TIME ZONE 'UTC')::date AS created_quarter
	  FROM crm.contact c LEFT JOIN crm.company co ON co.company_id = c.company_id
	 CROSS JOIN (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AS today) utc),
q AS (
	SELECT g.*, ARRAY[g.created_quarter::text, g.company_industry, g.lead_source, g.do_not_contact::text,
					  g.income_band, g.age_band, g.stage::text, g.country] AS qi
	  FROM g),
-- step n keeps qi[n+1:]; a contact is placed at the first step whose group
-- of contacts not placed before it has 5 members or more
step(withheld, placed, country, company_industry, lead_source, stage, income_band, do_not_contact,
	 age_band, created_quarter, qi) AS (
	SELECT 0, count(*) OVER (PARTITION BY q.qi) >= 5, q.country, q.company_industry, q.lead_source,
		   q.stage, q.income_band, q.do_not_contact, q.age_band, q.created_quarter, q.qi
	  FROM q
	UNION ALL
	SELECT s.withheld + 1, count(*) OVER (PARTITION BY s.qi[s.withheld + 2:]) >= 5, s.country,
		   s.company_industry, s.lead_source, s.stage, s.income_band, s.do_not_contact, s.age_band,
		   s.created_quarter, s.qi
	  FROM step s
	 WHERE NOT s.placed AND s.withheld < 8)
SELECT CASE WHEN s.withheld < 8 THEN s.country END AS country,
	   CASE WHEN s.withheld < 7 THEN s.stage END AS stage,
	   CASE WHEN s.withheld < 6 THEN s.age_band END AS age_band,
	   CASE WHEN s.withheld < 5 THEN s.income_band END AS income_band,
	   CASE WHEN s.withheld < 4 THEN s.do_not_contact END AS do_not_contact,
	   CASE WHEN s.withheld < 3 THEN s.lead_source END AS lead_source,
	   CASE WHEN s.withheld < 2 THEN s.company_industry END AS company_industry,
	   CASE WHEN s.withheld < 1 THEN s.created_quarter END AS created_quarter,
	   s.withheld
  FROM step s
 WHERE s.placed;
COMMENT ON VIEW crm.analyst_contact IS
	'one row per contact, generalised so that every combination of values stands for at least 5 contacts: country, stage, age band, income band, do-not-contact, lead source, company industry, quarter created; withheld = how many of these (from the last) are withheld as NULL';

CREATE VIEW crm.analyst_activity AS
SELECT a.kind, (a.occurred_at AT TIME ZONE 'UTC')::date AS occurred_on,
	   count(*) AS activities, count(DISTINCT a.contact_id) AS contacts
  FROM crm.activity a
 GROUP BY 1, 2
HAVING count(DISTINCT a.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_activity IS 'activities per kind and day (UTC), with the number of contacts; days of a kind with fewer than 5 contacts are left out';

CREATE VIEW crm.analyst_order AS
SELECT date_trunc('month', o.ordered_at AT TIME ZONE 'UTC')::date AS ordered_month, o.status, o.currency,
	   count(*) AS orders, count(DISTINCT o.contact_id) AS contacts, sum(o.total) AS total, sum(o.items) AS items
  FROM crm."order" o
 GROUP BY 1, 2, 3
HAVING count(DISTINCT o.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_order IS 'orders per month, status and currency: count, contacts, total, items; cells of fewer than 5 contacts are left out';

CREATE VIEW crm.analyst_deal AS
SELECT date_trunc('month', d.created_at AT TIME ZONE 'UTC')::date AS created_month, d.pipeline_stage, d.status, d.currency,
	   count(*) AS deals, count(DISTINCT d.contact_id) AS contacts, sum(d.amount) AS amount,
	   round(sum(d.amount * d.probability), 2) AS weighted_amount
  FROM crm.deal d
 GROUP BY 1, 2, 3, 4
HAVING count(DISTINCT d.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_deal IS 'deals per month created, pipeline stage, status and currency: count, contacts, amount, weighted amount; cells of fewer than 5 contacts are left out';

-- Create or adopt the roles, grant, and put row-level security on the
-- contact table and on every table that points at contacts.
CREATE FUNCTION crm.setup_roles() RETURNS TABLE (object text, done text)
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
COMMENT ON FUNCTION crm.setup_roles() IS
	'create or adopt crm_admin, crm_sales, crm_marketing, crm_analyst; grant; row-level security on contacts, every table that points at them, companies and the merge and erasure logs; idempotent, re-run after adding features';

-- Admin functions are not for everyone: setup_roles checks its caller, and
-- erasure is granted to crm_admin by setup_roles.
REVOKE ALL ON FUNCTION crm.setup_roles() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.forget_contact(bigint, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.merge_contacts(bigint, bigint, boolean) FROM PUBLIC;
