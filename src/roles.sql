
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
--   crm_analyst    pseudonymised views only (crm.analyst_*): no names,
--                  e-mails or phones, ids replaced by keyed hashes
-- Every other view is security_invoker, so the row-level security of the
-- tables under it applies to whoever reads it.
-- ---------------------------------------------------------------------------

-- The roles the current user is a member of (directly or not), itself included.
CREATE FUNCTION crm.my_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT array_agg(r.rolname::text) FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')
$$;
COMMENT ON FUNCTION crm.my_roles() IS
	'names of the roles the current user belongs to (itself included); row-level security compares contact.owner with it';

-- Pseudonymised views for analysts: a keyed hash instead of the contact id
-- (stable within a database, not reversible without crm.privacy_salt), and
-- no personal fields.  They run with the owner's rights, so analysts need no
-- grant on the tables; they are empty until a salt exists (crm.setup_roles
-- makes one).
CREATE VIEW crm.analyst_contact AS
SELECT left(encode(sha256(s.salt || convert_to(c.contact_id::text, 'UTF8')), 'hex'), 16) AS contact_key,
	   c.country, c.income_band, c.lead_source, c.stage, c.company_id,
	   (date_part('year', c.birth_date)::int / 10) * 10 AS birth_decade,
	   c.created_at::date AS created_on, c.do_not_contact IS NOT NULL AS do_not_contact
  FROM crm.contact c CROSS JOIN crm.privacy_salt s;
COMMENT ON VIEW crm.analyst_contact IS 'contacts without personal data: keyed-hash id, country, income band, source, stage, birth decade';
CREATE VIEW crm.analyst_activity AS
SELECT left(encode(sha256(s.salt || convert_to(a.contact_id::text, 'UTF8')), 'hex'), 16) AS contact_key,
	   a.kind, a.occurred_at
  FROM crm.activity a CROSS JOIN crm.privacy_salt s;
COMMENT ON VIEW crm.analyst_activity IS 'activities without properties, by keyed-hash contact id';
CREATE VIEW crm.analyst_order AS
SELECT left(encode(sha256(s.salt || convert_to(o.contact_id::text, 'UTF8')), 'hex'), 16) AS contact_key,
	   o.ordered_at, o.status, o.currency, o.total, o.items
  FROM crm."order" o CROSS JOIN crm.privacy_salt s;
COMMENT ON VIEW crm.analyst_order IS 'orders by keyed-hash contact id';
CREATE VIEW crm.analyst_deal AS
SELECT left(encode(sha256(s.salt || convert_to(d.contact_id::text, 'UTF8')), 'hex'), 16) AS contact_key,
	   d.pipeline_stage, d.amount, d.currency, d.probability, d.status, d.created_at, d.closed_at
  FROM crm.deal d CROSS JOIN crm.privacy_salt s;
COMMENT ON VIEW crm.analyst_deal IS 'deals without titles, by keyed-hash contact id';

-- Create or adopt the roles, grant, and put row-level security on the
-- contact table and on every table that points at contacts.
CREATE FUNCTION crm.setup_roles() RETURNS TABLE (object text, done text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	rname text;
	tables text;
	marketing text;
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

	INSERT INTO crm.privacy_salt (salt)
	VALUES (decode(md5(gen_random_uuid()::text) || md5(gen_random_uuid()::text), 'hex'))
	ON CONFLICT (id) DO NOTHING;

	-- admin: everything
	GRANT ALL ON ALL TABLES IN SCHEMA crm TO crm_admin;
	GRANT ALL ON ALL SEQUENCES IN SCHEMA crm TO crm_admin;
	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO crm_admin;

	-- everyone but the analyst reads the lookup tables
	GRANT SELECT ON crm.channel, crm.lead_source, crm.product, crm.company, crm.merge_rule
		TO crm_sales, crm_marketing;
	-- security_invoker views: each reader sees them through its own policies
	GRANT SELECT ON crm.consent_current, crm.contact_profile, crm.contact_scores, crm.pipeline
		TO crm_sales, crm_marketing;
	-- what the triggers and merge need to see of the logs (no before-images)
	GRANT SELECT (merge_id, kept_id, dropped_id, txid, merged_at, merged_by) ON crm.merge_log TO crm_sales, crm_marketing;
	GRANT SELECT (contact_id) ON crm.erasure_log TO crm_sales, crm_marketing;

	-- sales: their contacts and everything hanging off them (rows limited below)
	SELECT string_agg(x.table_name::text, ', ') INTO tables
	  FROM (SELECT DISTINCT t.table_name FROM crm.contact_references() t
			 WHERE t.table_name::text NOT IN ('crm.consent')) x;
	EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON crm.contact, %s TO crm_sales', tables);
	-- DELETE only ever passes crm.consent_append_only on the merge path
	GRANT SELECT, INSERT, DELETE ON crm.consent TO crm_sales;
	GRANT SELECT, INSERT, UPDATE ON crm.company TO crm_sales;
	GRANT INSERT, UPDATE (moved, conflicts) ON crm.merge_log TO crm_sales;
	GRANT USAGE ON ALL SEQUENCES IN SCHEMA crm TO crm_sales;
	GRANT EXECUTE ON FUNCTION crm.merge_contacts(bigint, bigint, boolean) TO crm_sales;

	-- the triggers run as the writer: they read rules, policy and segment
	-- definitions, and write derived rows (scores, history, dirty marks)
	GRANT SELECT ON crm.score_group, crm.scoring_rule, crm.fit_rule, crm.lifecycle_policy, crm.segment
		TO crm_sales, crm_marketing;
	GRANT SELECT, INSERT, UPDATE, DELETE ON crm.score_ledger, crm.score_event, crm.stage_history
		TO crm_sales, crm_marketing;
	-- the dirty marks only need INSERT ... ON CONFLICT DO NOTHING; reading
	-- them would show which contacts of other reps change
	GRANT INSERT ON crm.segment_dirty TO crm_sales, crm_marketing;
	REVOKE SELECT, UPDATE, DELETE ON crm.segment_dirty FROM crm_sales;

	-- marketing: reads contacts and their data, writes consent (opt-outs from
	-- campaigns) and owns the configuration of segments, campaigns, scoring
	EXECUTE format('GRANT SELECT ON crm.contact, %s TO crm_marketing', tables);
	GRANT SELECT, INSERT ON crm.consent TO crm_marketing;
	SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ') INTO marketing
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'crm' AND c.relkind IN ('r', 'p', 'v')
	   AND c.relname ~ '^(segment|campaign|scoring|score_rule|activity_rule|fit_rule|point_group|loyalty_rule|reward)';
	IF marketing IS NOT NULL THEN
		EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO crm_marketing', marketing);
		object := marketing; done := 'granted to crm_marketing'; RETURN NEXT;
	END IF;
	GRANT USAGE ON ALL SEQUENCES IN SCHEMA crm TO crm_marketing;

	-- analyst: the pseudonymised views only
	GRANT SELECT ON crm.analyst_contact, crm.analyst_activity, crm.analyst_order, crm.analyst_deal TO crm_analyst;
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
	-- sees the companies it owns or has contacts at, and the merges into and
	-- erasures of its contacts
	FOR r IN SELECT * FROM (VALUES
			('crm.company'::regclass,
			 'owner = ANY ((SELECT crm.my_roles())::text[])
			  OR EXISTS (SELECT 1 FROM crm.contact c WHERE c.company_id = company.company_id)'),
			('crm.merge_log'::regclass, 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = merge_log.kept_id)'),
			('crm.erasure_log'::regclass, 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = erasure_log.contact_id)'))
			v(table_name, sales_rows) LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.table_name);
		IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.table_name
						  AND p.polname = 'crm_sales_own') THEN
			EXECUTE format('CREATE POLICY crm_sales_own ON %1$s TO crm_sales USING (%2$s) WITH CHECK (%2$s)',
						   r.table_name, r.sales_rows);
			EXECUTE format('CREATE POLICY crm_admin_all ON %s TO crm_admin USING (true) WITH CHECK (true)',
						   r.table_name);
			EXECUTE format('CREATE POLICY crm_marketing_read ON %s FOR SELECT TO crm_marketing USING (true)',
						   r.table_name);
		END IF;
		object := r.table_name::text; done := 'row-level security through the contacts it names'; RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION crm.setup_roles() IS
	'create or adopt crm_admin, crm_sales, crm_marketing, crm_analyst; grant; row-level security on contacts, every table that points at them, companies and the merge and erasure logs; idempotent, re-run after adding features';

-- Admin functions are not for everyone: setup_roles checks its caller, and
-- erasure is granted to crm_admin by setup_roles.
REVOKE ALL ON FUNCTION crm.setup_roles() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.forget_contact(bigint, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.merge_contacts(bigint, bigint, boolean) FROM PUBLIC;
