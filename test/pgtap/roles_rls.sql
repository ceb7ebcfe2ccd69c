-- pgTAP: what each crm role can read, on the demo data (20,000 contacts of
-- five reps).  Every relation (table, view, materialized view, sequence) and
-- every function of crm that a role can SELECT or EXECUTE is taken from the
-- catalog, and each must be classified below; then, acting as the role:
--   a sales rep sees only (and all) the rows of the contacts it owns,
--   marketing and admin see all rows,
--   an analyst sees no personal column and no combination of values that
--   fewer than 5 contacts share.
-- A relation or function added later and not classified here fails.
-- The demo is loaded into a database of its own, dropped at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT current_database() AS home_db \gset
DROP DATABASE IF EXISTS crm_roles_rls;
CREATE DATABASE crm_roles_rls;
\c crm_roles_rls
\o /dev/null
SET client_min_messages = warning;
CREATE EXTENSION pgtap;
CREATE EXTENSION crm;
\ir ../demo/rules.sql
\set seed 42
\set contacts 20000
\set activities 100000
\ir ../demo/generate.sql
\o

BEGIN;
SELECT plan(16);

-- the demo's owners are roles; a lead belongs to two of them
\o /dev/null
SELECT * FROM crm.setup_roles();
CREATE ROLE sales_1 NOLOGIN IN ROLE crm_sales;
CREATE ROLE sales_2 NOLOGIN IN ROLE crm_sales;
CREATE ROLE sales_3 NOLOGIN IN ROLE crm_sales;
CREATE ROLE sales_4 NOLOGIN IN ROLE crm_sales;
CREATE ROLE sales_5 NOLOGIN IN ROLE crm_sales;
CREATE ROLE crm_rls_lead NOLOGIN IN ROLE sales_2, sales_3;
CREATE ROLE crm_rls_mkt NOLOGIN IN ROLE crm_marketing;
CREATE ROLE crm_rls_ana NOLOGIN IN ROLE crm_analyst;
CREATE ROLE crm_rls_admin NOLOGIN IN ROLE crm_admin;
-- rows in the logs and segment tables too: merges, an erasure, a segment
-- with members and dirty marks, a campaign
SELECT crm.merge_contacts(k, d) FROM (
	SELECT min(contact_id) k, max(contact_id) d FROM crm.contact WHERE contact_id <= 200 GROUP BY owner) m;
SELECT crm.forget_contact(min(contact_id), 'erasure request') FROM crm.contact WHERE owner = 'sales_4';
SELECT crm.create_segment('rls germany', $$country = 'DE'$$);
SELECT crm.refresh_segment('rls germany');
SELECT crm.create_campaign('rls campaign', 'rls germany');
UPDATE crm.contact SET region = 'north' WHERE contact_id % 97 = 0;
\o

-- Citus refuses a policy with a subquery on a distributed table: the tests
-- are function calls (src/roles.c)
SELECT results_eq(
	$$SELECT count(*), count(*) FILTER (WHERE p.polqual::text LIKE '%{SUBLINK%'
										  OR coalesce(p.polwithcheck::text, '') LIKE '%{SUBLINK%')
		FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = 'crm'::regnamespace$$,
	$$VALUES (63::bigint, 0::bigint)$$,
	'the 63 policies of crm.setup_roles have no subquery');

-- The contacts a role may see: a rep those whose owner is a role it belongs
-- to, marketing and admin all of them, anyone else (an analyst) none.
CREATE FUNCTION pg_temp.may_see_contacts(member name) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
	SELECT c.contact_id FROM crm.contact c
	 WHERE pg_has_role(member, 'crm_marketing', 'MEMBER') OR pg_has_role(member, 'crm_admin', 'MEMBER')
		OR (pg_has_role(member, 'crm_sales', 'MEMBER')
			AND c.owner IN (SELECT r.rolname FROM pg_roles r WHERE pg_has_role(member, r.oid, 'MEMBER')))
$$;
-- The companies a role may see: a rep those it owns and those of its contacts.
CREATE FUNCTION pg_temp.may_see_companies(member name) RETURNS SETOF bigint
LANGUAGE sql STABLE AS $$
	SELECT co.company_id FROM crm.company co
	 WHERE pg_has_role(member, 'crm_marketing', 'MEMBER') OR pg_has_role(member, 'crm_admin', 'MEMBER')
		OR (pg_has_role(member, 'crm_sales', 'MEMBER')
			AND (co.owner IN (SELECT r.rolname FROM pg_roles r WHERE pg_has_role(member, r.oid, 'MEMBER'))
				 OR co.company_id IN (SELECT c.company_id FROM crm.contact c
									   WHERE c.contact_id IN (SELECT pg_temp.may_see_contacts(member)))))
$$;

-- How each relation is judged.  Relations with a contact_id column and
-- sequences are classified by that alone; the rest are listed here.
CREATE TEMP TABLE rls_class (rel regclass PRIMARY KEY, class text NOT NULL, subject name);
INSERT INTO rls_class VALUES
	-- lookup and configuration tables: no row belongs to a contact
	('crm.channel', 'reference', NULL), ('crm.lead_source', 'reference', NULL),
	('crm.product', 'reference', NULL), ('crm.score_group', 'reference', NULL),
	('crm.scoring_rule', 'reference', NULL), ('crm.fit_rule', 'reference', NULL),
	('crm.lifecycle_policy', 'reference', NULL), ('crm.merge_rule', 'reference', NULL),
	('crm._dump_begin', 'reference', NULL), ('crm.zz_dump_end', 'reference', NULL),
	('crm.segment', 'reference', NULL), ('crm.campaign', 'reference', NULL),
	('crm.product_rule', 'reference', NULL),
	('crm.loyalty_program', 'reference', NULL), ('crm.loyalty_reward', 'reference', NULL), ('crm.loyalty_tier', 'reference', NULL), ('crm.earning_rule', 'reference', NULL),
	-- rows that belong to contacts through another column
	('crm.merge_log', 'contact', 'kept_id'),
	('crm.company', 'company', 'company_id'),
	-- the secret of the e-mail hashes
	('crm.privacy_salt', 'admin only', NULL),
	-- k-anonymous views: one row per contact, or cells counting contacts
	('crm.analyst_contact', 'analyst per contact', NULL),
	('crm.analyst_activity', 'analyst cells', 'contacts'),
	('crm.analyst_order', 'analyst cells', 'contacts'),
	('crm.analyst_deal', 'analyst cells', 'contacts'),
	-- the analyses (src/analyst.sql): each row counts its contacts
	('crm.analyst_funnel', 'analyst cells', 'contacts'),
	('crm.analyst_stage_conversion', 'analyst cells', 'contacts'),
	('crm.analyst_retention', 'analyst cells', 'active'),
	('crm.analyst_churn', 'analyst cells', 'active'),
	('crm.analyst_rfm', 'analyst cells', 'contacts'),
	('crm.analyst_clv_model', 'analyst cells', 'contacts'),
	('crm.analyst_clv', 'analyst cells', 'contacts'),
	('crm.analyst_campaign', 'analyst cells', 'targeted'),
	('crm.analyst_pipeline', 'analyst cells', 'contacts'),
	-- crm_bi's aggregate views over them (src/bi_views.sql); its person
	-- views are classified by their contact_id, or are invoker views
	('crm_bi.funnel_monthly', 'analyst cells', 'contacts'),
	('crm_bi.stage_conversion_monthly', 'analyst cells', 'contacts'),
	('crm_bi.cohort_retention', 'analyst cells', 'active'),
	('crm_bi.churn_monthly', 'analyst cells', 'active'),
	('crm_bi.rfm_segments', 'analyst cells', 'contacts'),
	('crm_bi.clv_model', 'analyst cells', 'customers'),
	('crm_bi.clv_distribution', 'analyst cells', 'customers'),
	('crm_bi.campaign_lift', 'analyst cells', 'targeted'),
	('crm_bi.pipeline', 'analyst cells', 'contacts'),
	('crm_bi.activity_totals_daily', 'analyst cells', 'contacts'),
	('crm_bi.order_totals_monthly', 'analyst cells', 'contacts'),
	('crm_bi.deal_totals_monthly', 'analyst cells', 'contacts');
GRANT SELECT ON rls_class TO PUBLIC;

-- Columns no analyst may see, by name (any crm.email column too).
CREATE TEMP TABLE personal_column (name name PRIMARY KEY);
INSERT INTO personal_column VALUES ('contact_id'), ('contact_key'), ('email'), ('first_name'), ('last_name'),
	('phone'), ('city'), ('region'), ('birth_date'), ('job_title'), ('attrs'), ('properties'), ('title'),
	('note'), ('owner'), ('company_id'), ('external_ref'), ('actor'), ('source'), ('kept_id'), ('dropped_id');

-- Everything wrong with what a role can read, one line each.
CREATE FUNCTION pg_temp.rls_problems(member name) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	f record;
	cls text;
	subject name;
	seen bigint;
	expected bigint;
	ids bigint[];
	bad bigint;
	smallest bigint;
	cols text;
	invoker boolean;
	analyst boolean := pg_has_role(member, 'crm_analyst', 'MEMBER');
	admin boolean := pg_has_role(member, 'crm_admin', 'MEMBER');
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS may_contact (id bigint PRIMARY KEY);
	CREATE TEMP TABLE IF NOT EXISTS may_company (id bigint PRIMARY KEY);
	TRUNCATE may_contact, may_company;
	INSERT INTO may_contact SELECT pg_temp.may_see_contacts(member);
	INSERT INTO may_company SELECT pg_temp.may_see_companies(member);

	-- every relation of crm the role can read
	FOR r IN
		SELECT c.oid::regclass AS rel, c.relkind,
			   coalesce('security_invoker=true' = ANY (c.reloptions), false) AS invoker,
			   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'contact_id'
						  AND NOT a.attisdropped) AS has_contact_id
		  FROM pg_class c
		 WHERE (c.relnamespace = 'crm'::regnamespace
				OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
							WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
							  AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'crm' AND d.deptype = 'e'))
		   AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
		   AND CASE WHEN c.relkind = 'S'
					THEN has_sequence_privilege(member, c.oid, 'SELECT') OR has_sequence_privilege(member, c.oid, 'USAGE')
					ELSE has_table_privilege(member, c.oid, 'SELECT') OR has_any_column_privilege(member, c.oid, 'SELECT') END
		 ORDER BY 1::text
	LOOP
		SELECT k.class, k.subject INTO cls, subject FROM rls_class k WHERE k.rel = r.rel;
		IF cls IS NULL AND r.relkind = 'S' THEN
			cls := 'sequence';
		ELSIF cls IS NULL AND r.has_contact_id THEN
			cls := 'contact';
			subject := 'contact_id';
		ELSIF cls IS NULL AND r.relkind = 'v' AND r.invoker THEN
			cls := 'invoker view';
		END IF;
		IF cls IS NULL THEN
			RETURN NEXT format('%s: readable but not classified by this test', r.rel);
			CONTINUE;
		END IF;
		IF r.relkind IN ('v', 'm') AND NOT r.invoker AND cls NOT LIKE 'analyst%' THEN
			RETURN NEXT format('%s: a view that is not security_invoker: row-level security of the tables under it does not apply', r.rel);
		END IF;
		IF analyst AND NOT admin AND cls NOT LIKE 'analyst%' THEN
			RETURN NEXT format('%s: readable by an analyst (%s)', r.rel, cls);
		END IF;

		IF cls IN ('contact', 'company') THEN
			-- what the role sees, then what it should see
			BEGIN
				EXECUTE format('SET LOCAL ROLE %I', member);
				EXECUTE format('SELECT count(*), array_agg(DISTINCT %1$I) FILTER (WHERE %1$I IS NOT NULL) FROM %2$s',
							   subject, r.rel) INTO seen, ids;
				RESET ROLE;
			EXCEPTION WHEN insufficient_privilege THEN
				RETURN NEXT format('%s: granted but not readable: %s', r.rel, SQLERRM);
				CONTINUE;
			END;
			IF cls = 'contact' THEN
				SELECT count(*) INTO bad FROM unnest(ids) i WHERE i NOT IN (SELECT id FROM may_contact);
				EXECUTE format('SELECT count(*) FROM %s t WHERE t.%I IN (SELECT id FROM may_contact)',
							   r.rel, subject) INTO expected;
			ELSE
				SELECT count(*) INTO bad FROM unnest(ids) i WHERE i NOT IN (SELECT id FROM may_company);
				EXECUTE format('SELECT count(*) FROM %s t WHERE t.%I IN (SELECT id FROM may_company)',
							   r.rel, subject) INTO expected;
			END IF;
			IF bad > 0 THEN
				RETURN NEXT format('%s: %s rows seen, of %s %s it may not see', r.rel, seen, bad,
								   CASE cls WHEN 'contact' THEN 'contacts' ELSE 'companies' END);
			ELSIF seen <> expected THEN
				RETURN NEXT format('%s: %s rows seen, %s expected', r.rel, seen, expected);
			END IF;
		ELSIF cls = 'reference' AND r.has_contact_id THEN
			RETURN NEXT format('%s: classified as reference but has a contact_id column', r.rel);
		ELSIF cls = 'admin only' AND NOT admin THEN
			RETURN NEXT format('%s: readable by a role that is not crm_admin', r.rel);
		ELSIF cls LIKE 'analyst%' THEN
			RETURN QUERY SELECT format('%s: shows the personal column %s', r.rel, a.attname)
						   FROM pg_attribute a
						  WHERE a.attrelid = r.rel AND a.attnum > 0 AND NOT a.attisdropped
							AND (a.attname IN (SELECT name FROM personal_column) OR a.atttypid = 'crm.email'::regtype);
			-- every combination of the columns shown: at least 5 contacts
			SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
			  FROM pg_attribute a WHERE a.attrelid = r.rel AND a.attnum > 0 AND NOT a.attisdropped;
			BEGIN
				EXECUTE format('SET LOCAL ROLE %I', member);
				IF cls = 'analyst per contact' THEN
					EXECUTE format('SELECT min(n) FROM (SELECT count(*) AS n FROM %s GROUP BY %s) g', r.rel, cols)
					   INTO smallest;
				ELSE
					EXECUTE format('SELECT min(%I) FROM %s', subject, r.rel) INTO smallest;
				END IF;
				RESET ROLE;
			EXCEPTION WHEN insufficient_privilege OR undefined_column THEN
				RETURN NEXT format('%s: %s', r.rel, SQLERRM);
				CONTINUE;
			END;
			IF smallest < 5 THEN
				RETURN NEXT format('%s: a combination of its columns is shared by only %s contacts', r.rel, smallest);
			END IF;
		END IF;
		cls := NULL;
		subject := NULL;
	END LOOP;

	-- every function of crm the role can execute: it reads with the role's
	-- own rights (so only through the relations above), and the ones that
	-- list contacts and can be called without arguments list only its own
	FOR f IN
		SELECT p.oid::regprocedure AS fn, p.prosecdef, p.proconfig, p.provolatile, p.proretset,
			   p.pronargs = p.pronargdefaults AS no_args,
			   (SELECT array_agg(n) FROM unnest(p.proargnames, p.proargmodes) x(n, m)
				 WHERE m IN ('o', 't', 'b') AND n IN ('contact_id', 'contact_a', 'contact_b', 'kept_id')) AS id_cols
		  FROM pg_proc p
		 WHERE (p.pronamespace = 'crm'::regnamespace
				OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
							WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
							  AND d.refclassid = 'pg_extension'::regclass AND e.extname = 'crm' AND d.deptype = 'e'))
		   AND has_function_privilege(member, p.oid, 'EXECUTE')
		 ORDER BY 1::text
	LOOP
		IF f.prosecdef THEN
			RETURN NEXT format('%s: SECURITY DEFINER, reads with its owner''s rights', f.fn);
		END IF;
		IF EXISTS (SELECT 1 FROM unnest(f.proconfig) s WHERE s ~* '^(role|session_authorization)=') THEN
			RETURN NEXT format('%s: changes role in its SET clause', f.fn);
		END IF;
		IF f.proretset AND f.no_args AND f.provolatile <> 'v' AND f.id_cols IS NOT NULL THEN
			FOREACH subject IN ARRAY f.id_cols LOOP
				BEGIN
					EXECUTE format('SET LOCAL ROLE %I', member);
					EXECUTE format('SELECT array_agg(DISTINCT %I) FROM %s()', subject, f.fn::regproc) INTO ids;
					RESET ROLE;
				EXCEPTION WHEN insufficient_privilege THEN
					ids := NULL;	-- it cannot read the tables: it lists nothing
				END;
				SELECT count(*) INTO bad FROM unnest(ids) i WHERE i NOT IN (SELECT id FROM may_contact);
				IF bad > 0 THEN
					RETURN NEXT format('%s: lists %s contacts it may not see in %s', f.fn, bad, subject);
				END IF;
			END LOOP;
		END IF;
	END LOOP;
END $$;

-- the leak the issue reported, by name
SET ROLE sales_1;
SELECT is((SELECT count(*) FROM crm.consent_current),
		  (SELECT count(*) FROM crm.consent_current c JOIN crm.contact USING (contact_id)),
		  'sales_1 reads consent_current of its own contacts only');
RESET ROLE;

-- each role, everything it can read
SELECT is(ARRAY(SELECT pg_temp.rls_problems('sales_1')), '{}'::text[],
		  'sales_1 (crm_sales) reads only and all the rows of its contacts and companies');
SELECT is(ARRAY(SELECT pg_temp.rls_problems('sales_5')), '{}'::text[],
		  'sales_5 (crm_sales) reads only and all the rows of its contacts and companies');
SELECT is(ARRAY(SELECT pg_temp.rls_problems('crm_rls_lead')), '{}'::text[],
		  'a lead in sales_2 and sales_3 reads only and all the rows of both');
SELECT is(ARRAY(SELECT pg_temp.rls_problems('crm_rls_mkt')), '{}'::text[],
		  'crm_marketing reads every row of what it can read');
SELECT is(ARRAY(SELECT pg_temp.rls_problems('crm_rls_admin')), '{}'::text[],
		  'crm_admin reads every row of everything');
SELECT is(ARRAY(SELECT pg_temp.rls_problems('crm_rls_ana')), '{}'::text[],
		  'crm_analyst reads only the analyst views: no personal column, no combination of fewer than 5 contacts');

-- the analyst views on the demo data
-- (they run with their owner's rights: the superuser reads what an analyst reads)
SELECT cmp_ok((SELECT count(*) FROM crm.analyst_contact WHERE withheld <= 3), '>', 10000::bigint,
			  'analyst_contact: most contacts keep at least country, stage, age band, income band and do-not-contact');
SELECT cmp_ok((SELECT count(*) FROM crm.analyst_contact), '>', (SELECT count(*) - 5 FROM crm.contact),
			  'analyst_contact: no more than 4 contacts are left out');
-- the cells shown are exactly those of 5 contacts or more, with true counts
SELECT is((SELECT count(*) FROM crm.analyst_activity v
			FULL JOIN (SELECT a.kind, (a.occurred_at AT TIME ZONE 'UTC')::date AS day, count(DISTINCT a.contact_id) AS n
						 FROM crm.activity a GROUP BY 1, 2 HAVING count(DISTINCT a.contact_id) >= 5) x
			  ON x.kind = v.kind AND x.day = v.occurred_on
		   WHERE v.contacts IS DISTINCT FROM x.n),
		  0::bigint, 'analyst_activity: every kind and day of 5 contacts or more, with its number of contacts');
SELECT is((SELECT count(*) FROM crm.analyst_order v
			FULL JOIN (SELECT date_trunc('month', o.ordered_at AT TIME ZONE 'UTC')::date AS month, o.status, o.currency,
							  count(DISTINCT o.contact_id) AS n
						 FROM crm."order" o GROUP BY 1, 2, 3 HAVING count(DISTINCT o.contact_id) >= 5) x
			  ON x.month = v.ordered_month AND x.status = v.status AND x.currency = v.currency
		   WHERE v.contacts IS DISTINCT FROM x.n),
		  0::bigint, 'analyst_order: every month, status and currency of 5 contacts or more, with its number of contacts');
SELECT is((SELECT count(*) FROM crm.analyst_deal v
			FULL JOIN (SELECT date_trunc('month', d.created_at AT TIME ZONE 'UTC')::date AS month, d.pipeline_stage, d.status, d.currency,
							  count(DISTINCT d.contact_id) AS n
						 FROM crm.deal d GROUP BY 1, 2, 3, 4 HAVING count(DISTINCT d.contact_id) >= 5) x
			  ON x.month = v.created_month AND x.pipeline_stage = v.pipeline_stage AND x.status = v.status
			 AND x.currency = v.currency
		   WHERE v.contacts IS DISTINCT FROM x.n),
		  0::bigint, 'analyst_deal: every month, pipeline stage, status and currency of 5 contacts or more, with its number of contacts');

-- one view whatever the session's time zone (two would overlap, to compare)
-- the rows of a view, as text
CREATE FUNCTION pg_temp.analyst_rows(v text) RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN QUERY EXECUTE format('SELECT x::text FROM %s x', v::regclass);
END $$;
CREATE FUNCTION pg_temp.analyst_digest() RETURNS text[] LANGUAGE sql STABLE AS $$
	SELECT ARRAY[(SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM crm.analyst_contact x),
				 (SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM crm.analyst_activity x),
				 (SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM crm.analyst_order x),
				 (SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM crm.analyst_deal x)]
		|| ARRAY(SELECT (SELECT md5(string_agg(x::text, ',' ORDER BY x::text))
						   FROM pg_temp.analyst_rows(v) x(x))
				   FROM unnest(ARRAY['crm.analyst_funnel', 'crm.analyst_stage_conversion', 'crm.analyst_retention',
									 'crm.analyst_churn', 'crm.analyst_rfm', 'crm.analyst_clv_model', 'crm.analyst_clv',
									 'crm.analyst_campaign', 'crm.analyst_pipeline']) v)
$$;
SET TimeZone = 'Pacific/Kiritimati';
CREATE TEMP TABLE digest_east AS SELECT pg_temp.analyst_digest() AS d;
SET TimeZone = 'Pacific/Pago_Pago';
SELECT is(pg_temp.analyst_digest(), (SELECT d FROM digest_east),
		  'the analyst views show the same rows at UTC+14 and at UTC-11');
RESET TimeZone;

-- a sales rep's aggregate view counts its own deals only
SET ROLE sales_1;
CREATE TEMP TABLE rep_pipeline AS SELECT sum(deals) AS n FROM crm.pipeline;
RESET ROLE;
SELECT is((SELECT n FROM rep_pipeline)::bigint,
		  (SELECT count(*) FROM crm.deal WHERE status = 'open'
			  AND contact_id IN (SELECT pg_temp.may_see_contacts('sales_1'))),
		  'sales_1''s pipeline counts the open deals of its contacts');

-- the test notices what it was not told about
CREATE TABLE crm.rls_canary (x integer);
CREATE VIEW crm.rls_canary_view AS SELECT contact_id FROM crm.contact;
CREATE FUNCTION crm.rls_canary_fn() RETURNS TABLE (contact_id bigint) LANGUAGE sql STABLE SECURITY DEFINER
	AS 'SELECT c.contact_id FROM crm.contact c';
GRANT SELECT ON crm.rls_canary, crm.rls_canary_view TO crm_sales;
SELECT is(ARRAY(SELECT regexp_replace(p, '[0-9]+', 'N', 'g') FROM pg_temp.rls_problems('sales_1') p
				 WHERE p LIKE '%canary%' ORDER BY p),
		  ARRAY['crm.rls_canary: readable but not classified by this test',
				'crm.rls_canary_fn(): SECURITY DEFINER, reads with its owner''s rights',
				'crm.rls_canary_fn(): lists N contacts it may not see in contact_id',
				'crm.rls_canary_view: N rows seen, of N contacts it may not see',
				'crm.rls_canary_view: a view that is not security_invoker: row-level security of the tables under it does not apply'],
		  'a new relation, a definer view that leaks, and a SECURITY DEFINER function that leaks are flagged');

SELECT * FROM finish();
ROLLBACK;

\c :home_db
DROP DATABASE crm_roles_rls;
