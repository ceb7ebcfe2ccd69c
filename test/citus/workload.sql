-- The workload of test/t/citus.sh: run case by case (each "-- case: NAME"
-- in a session of its own, in this order) on one node and on a Citus
-- coordinator after crm.distribute(); each case's output must be the same.
-- "# todo: WHY" after a name: the case fails on Citus today (see
-- ../shared/docs/CITUS.md); the test reports it as a TAP TODO with the
-- error Citus gave.  Ids are given explicitly and times are fixed, so the
-- answers do not depend on sequences or on the clock.

-- case: the rows crm.distribute() copied: contacts (normalised e-mails, initial stages), history, ledger
SELECT contact_id, email, stage FROM crm.contact ORDER BY contact_id;
SELECT contact_id, from_stage, to_stage, automatic FROM crm.stage_history ORDER BY contact_id, history_id;
SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger ORDER BY contact_id, rule_id;
SELECT contact_id, order_id, total FROM crm."order" ORDER BY 1, 2;

-- case: a new contact
INSERT INTO crm.contact (contact_id, email, first_name, last_name, city, country, lead_source) VALUES
	(7, 'Fay@Example.COM', 'Fay', 'Ott', 'Berlin', 'DE', 'newsletter');
SELECT contact_id, email, stage FROM crm.contact WHERE contact_id = 7;

-- case: a duplicate e-mail address is refused (23505) # todo: UNIQUE (email) is dropped by distribute(drop_email_uniqueness => true): Citus cannot enforce it across shards
DO $$
BEGIN
	INSERT INTO crm.contact (contact_id, email) VALUES (99, 'ANN.LEE@example.com');
	RAISE EXCEPTION 'accepted' USING ERRCODE = 'P0001';
EXCEPTION
	WHEN unique_violation THEN RAISE NOTICE 'refused: %', SQLSTATE;
	WHEN raise_exception THEN RAISE NOTICE 'accepted a duplicate (rolled back)';
END $$;

-- case: an activity for a missing contact is refused (23503)
DO $$
BEGIN
	INSERT INTO crm.activity (contact_id, kind) VALUES (12345, 'page_view');
	RAISE NOTICE 'accepted';
EXCEPTION WHEN foreign_key_violation THEN RAISE NOTICE 'refused: %', SQLSTATE;
END $$;

-- case: activities score by INSERT
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(1, 3, 'form_submit', '2026-06-03 10:00+00', '{"form": "demo_request"}'),
	(3, 5, 'page_view', '2026-06-01 12:00+00', '{"url": "/pricing"}'),
	(3, 6, 'page_view', '2026-06-04 12:00+00', '{"url": "/pricing"}'),
	(4, 7, 'form_submit', '2026-06-05 09:00+00', '{"form": "demo_request"}');
SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger ORDER BY contact_id, rule_id;
SELECT c, round(crm.score(c, 'engagement', '2026-06-10 00:00+00')::numeric, 6) FROM generate_series(1, 6) c;

-- case: lifecycle promotion by the activities' scores
SELECT contact_id, stage FROM crm.contact ORDER BY contact_id;
SELECT contact_id, from_stage, to_stage, automatic FROM crm.stage_history ORDER BY contact_id, history_id;

-- case: orders and deals
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total, items) VALUES
	(1, 3, '2026-05-20 10:00+00', 'shipped', 42.00, 1),
	(3, 5, '2026-04-01 10:00+00', 'paid', 300.00, 3),
	(3, 6, '2026-05-01 10:00+00', 'refunded', 30.00, 1),
	(4, 7, '2026-05-30 10:00+00', 'paid', 55.00, 1);
INSERT INTO crm.deal (contact_id, deal_id, title, amount, status, closed_at) VALUES
	(4, 2, 'Dan: pilot', 900, 'open', NULL);
SELECT contact_id, count(*), sum(total) FROM crm."order" GROUP BY contact_id ORDER BY contact_id;
SELECT contact_id, deal_id, title, status FROM crm.deal ORDER BY contact_id, deal_id;

-- case: stages after the orders
SELECT contact_id, stage FROM crm.contact ORDER BY contact_id;

-- case: rescore rebuilds the same ledger
SELECT crm.rescore() >= 0 AS rescored;
SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger ORDER BY contact_id, rule_id;

-- case: explain_score and grade on the coordinator
SELECT rule_id, rule, matches, round(contribution::numeric, 6) FROM crm.explain_score(1, '2026-06-10 00:00+00') ORDER BY rule_id;
SELECT c, crm.grade(c, '2026-06-10 00:00+00') FROM generate_series(1, 6) c;

-- case: a rule change reaches the triggers (in one session, after they cached the rules)
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(6, 9, 'page_view', '2026-06-07 09:00+00', '{"url": "/"}');
UPDATE crm.scoring_rule SET points = 100 WHERE rule_id = 1002;
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(6, 10, 'page_view', '2026-06-08 09:00+00', '{"url": "/"}');
SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger WHERE contact_id = 6 ORDER BY rule_id;

-- case: a static segment
SELECT crm.create_static_segment('vip') > 0 AS created;
SELECT crm.add_to_segment('vip', ARRAY[1, 3]::bigint[]);
SELECT m.contact_id FROM crm.segment_member m JOIN crm.segment s USING (segment_id) WHERE s.name = 'vip' ORDER BY 1;

-- case: a campaign on the static segment: consent, targets (preview and recorded), report
INSERT INTO crm.consent (contact_id, channel, status, recorded_at) VALUES
	(1, 'email', 'granted', '2026-05-01 00:00+00'), (3, 'email', 'granted', '2026-05-01 00:00+00');
SELECT crm.create_campaign('vip mail', 'vip', 'email', '2026-06-01 00:00+00', NULL, 100, 0) AS camp \gset
SELECT contact_id, email FROM crm.campaign_targets_preview(:camp) ORDER BY 1;
SELECT contact_id, email FROM crm.campaign_targets(:camp) ORDER BY 1;
SELECT campaign, targeted, held_out, responded, cost FROM crm.campaign_report(:camp);

-- case: a fit rule scores new and updated contacts
INSERT INTO crm.fit_rule (name, score_group, condition, points)
VALUES ('in Germany', 'fit', '$.country == "DE"', 15);
INSERT INTO crm.contact (contact_id, email, country) VALUES (8, 'gus@example.de', 'DE');
UPDATE crm.contact SET country = 'DE' WHERE contact_id = 4;
SELECT contact_id, crm.score(contact_id, 'fit', '2026-06-10 00:00+00') FROM crm.contact WHERE contact_id IN (4, 8) ORDER BY 1;
DELETE FROM crm.fit_rule WHERE name = 'in Germany';
SELECT count(*) FROM crm.score_ledger WHERE contact_id IN (4, 8);

-- case: a dynamic segment, refreshed after a change and with the others (full refreshes on Citus)
SELECT crm.create_segment('berlin', $$city = 'Berlin'$$) > 0 AS created;
SELECT * FROM crm.refresh_segment('berlin');
SELECT m.contact_id FROM crm.segment_member m JOIN crm.segment s USING (segment_id) WHERE s.name = 'berlin' ORDER BY 1;
-- a refresh after a change (incremental on one node), and every segment in one transaction
UPDATE crm.contact SET city = 'Berlin' WHERE contact_id = 2;
SELECT * FROM crm.refresh_segment('berlin');
SELECT crm.create_segment('customers', $$stage = 'customer'$$) > 0 AS created;
SELECT * FROM crm.refresh_segments() ORDER BY segment;
SELECT s.name, m.contact_id FROM crm.segment_member m JOIN crm.segment s USING (segment_id) ORDER BY 1, 2;

-- case: funnel
SELECT * FROM crm.funnel('2026-06-10 00:00+00');

-- case: rfm_scores
SELECT * FROM crm.rfm_scores('2026-06-10 00:00+00') ORDER BY contact_id;

-- case: btyd_summary ... GROUP BY contact_id (pushed down)
SELECT contact_id, crm.btyd_summary(ordered_at, total, '2026-06-10 00:00+00')
  FROM crm."order" WHERE status NOT IN ('cancelled', 'refunded') GROUP BY contact_id ORDER BY contact_id;

-- case: what BI tools send: text periods, bigint scores, e-mail and stage filters by text
SELECT * FROM crm.churn_rate('1 month'::varchar, '2026-01-01 00:00+00', '2026-06-01 00:00+00');
SELECT count(*) FROM crm.retention_cohorts('1 month'::varchar);
SELECT crm.rfm(5::bigint, 4::bigint, 3::bigint)::text, crm.activity_count(1, 'page_view', '3650 days'::varchar);
SELECT contact_id FROM crm.contact WHERE email = 'ANN.LEE@example.com'::varchar OR stage = 'customer'::varchar ORDER BY 1;
SELECT contact_id, crm.btyd_summary(ordered_at, total, '2026-06-10 00:00+00', '7 days'::varchar)
  FROM crm."order" WHERE status NOT IN ('cancelled', 'refunded') GROUP BY contact_id ORDER BY contact_id;

-- case: schema crm_bi (person and aggregate views, plain types)
SELECT contact_id, email, email_domain, stage, stage_rank, rfm, rfm_r, order_count, lifetime_value
  FROM crm_bi.contacts ORDER BY contact_id;
SELECT contact_id, ordered_on, status, total FROM crm_bi.orders ORDER BY contact_id, order_id;
SELECT contact_id, from_stage, to_stage, automatic FROM crm_bi.stage_transitions ORDER BY contact_id, changed_at, history_id;
SELECT count(*) FROM crm_bi.funnel_monthly;

-- case: crm_bi.scores (crm.score and crm.grade_of per contact, pushed to the shards)
SELECT contact_id, score_group, round(score::numeric, 4), grade FROM crm_bi.scores ORDER BY 1, 2;

-- case: find_duplicates
SELECT contact_a, contact_b, round(score::numeric, 6), reasons FROM crm.find_duplicates(0.5) ORDER BY 1, 2;

-- case: merge_contacts (rows move by insert and delete, one shard pair at a time)
SELECT item, action, rows FROM crm.merge_contacts(1, 5) ORDER BY item, action;
SELECT crm.merged_into(5);
SELECT contact_id, count(*) FROM crm.activity GROUP BY contact_id ORDER BY contact_id;
SELECT contact_id, channel, status, merged_from FROM crm.consent WHERE contact_id IN (1, 5) ORDER BY 1, 2, 3, 4;
SELECT kept_id, dropped_id, in_progress, jsonb_array_length(moved_consent) FROM crm.merge_log ORDER BY kept_id;
SELECT contact_id, from_stage, to_stage, merged_from FROM crm.stage_history WHERE contact_id IN (1, 5) ORDER BY contact_id, changed_at, to_stage;

-- case: forget_contact (after a merge)
SELECT crm.forget_contact(6, 'asked to be forgotten') > 0 AS forgotten;
SELECT contact_id FROM crm.contact ORDER BY contact_id;
SELECT count(*) FROM crm.erasure_log;

-- case: contacts, stages and scores at the end
-- an erased address is a random token: only its form is compared
SELECT contact_id, regexp_replace(email, '^erased-[0-9a-f]{32}@', 'erased-TOKEN@'), stage FROM crm.contact ORDER BY contact_id;
SELECT contact_id, rule_id, hits, raw_points FROM crm.score_ledger ORDER BY contact_id, rule_id;

-- case: lifecycle history in event time (activities, orders, deals, churn, set_stage at)
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (60, 'et60@example.com', '2025-01-01 00:00+00'),
	(61, 'et61@example.com', '2025-01-01 00:00+00'), (62, 'et62@example.com', '2025-01-01 00:00+00');
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(60, 600, 'page_view', '2025-02-01 10:00+00', '{"url": "/pricing"}');
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(60, 601, 'page_view', '2025-02-03 10:00+00', '{"url": "/pricing"}');
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at) VALUES (61, 610, 'meeting_booked', '2025-03-01 08:00+00');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total, items) VALUES
	(61, 610, '2025-04-10 12:00+00', 'paid', 20, 1), (61, 611, '2025-04-20 12:00+00', 'paid', 30, 1);
INSERT INTO crm.deal (contact_id, deal_id, title, created_at) VALUES (62, 620, 'et deal', '2025-05-01 00:00+00');
INSERT INTO crm.deal (contact_id, deal_id, title, status, created_at, closed_at)
VALUES (62, 621, 'et deal won', 'won', '2025-05-02 00:00+00', '2025-06-15 00:00+00');
SELECT crm.set_stage(61, 'evangelist', 'referral', at => '2025-06-01 00:00+00');
SELECT crm.set_stage(62, 'disqualified', 'fraud', force => true, at => '2025-07-01 00:00+00');
SELECT contact_id, from_stage, to_stage, changed_at, reason, automatic, forced FROM crm.stage_history
 WHERE contact_id IN (60, 61, 62) ORDER BY contact_id, changed_at, history_id;
SELECT count(*) FILTER (WHERE recorded_at >= changed_at) = count(*) AS recorded_after_the_events FROM crm.stage_history
 WHERE contact_id IN (60, 61, 62);
SELECT * FROM crm.funnel('2025-04-15 00:00+00') ORDER BY stage;

-- case: detect_churn dates a churn at the end of the inactivity window (each move run where its contact is)
SELECT crm.detect_churn('2027-01-01 00:00+00') >= 1 AS churned;
SELECT contact_id, from_stage, to_stage, changed_at, reason, automatic FROM crm.stage_history
 WHERE contact_id IN (60, 61, 62) AND to_stage = 'churned' ORDER BY contact_id;

-- case: late events and a threshold crossed inside a batch rebuild the history in the trigger; crm.rebuild_stage_history; cohorts and days in stage
INSERT INTO crm.contact (contact_id, email, created_at) VALUES (63, 'et63@example.com', '2025-01-01 00:00+00'),
	(64, 'et64@example.com', '2025-01-01 00:00+00');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total, items) VALUES (63, 630, '2025-05-01 00:00+00', 'paid', 10, 1);
INSERT INTO crm.deal (contact_id, deal_id, title, created_at) VALUES (63, 630, 'late deal', '2025-03-01 00:00+00');
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(64, 640, 'page_view', '2025-02-01 10:00+00', '{"url": "/pricing"}'),
	(64, 641, 'page_view', '2025-02-03 10:00+00', '{"url": "/pricing"}'),
	(64, 642, 'page_view', '2025-02-05 10:00+00', '{"url": "/pricing"}');
SELECT contact_id, from_stage, to_stage, changed_at, reason, automatic, forced FROM crm.stage_history
 WHERE contact_id IN (63, 64) ORDER BY contact_id, changed_at, history_id;
-- (not 61: the detect_churn case's)
SELECT crm.rebuild_stage_history(ARRAY[60, 62, 63, 64]) AS rebuilt;
SELECT contact_id, from_stage, to_stage, changed_at, reason, automatic, forced FROM crm.stage_history
 WHERE contact_id IN (60, 62, 63, 64) ORDER BY contact_id, changed_at, history_id;
SELECT contact_id, stage FROM crm.contact WHERE contact_id IN (60, 62, 63, 64) ORDER BY contact_id;
SELECT * FROM crm.lead_cohorts WHERE cohort = '2025-01-01';
SELECT stage, entered, moved_on, median_time_in_stage, median_days, p90_days
  FROM crm.stage_conversion('2025-01-01', '2026-01-01') ORDER BY stage;

-- case: association rules, frequent itemsets, kept rules, recommendations and a cross-sell campaign (order lines read through the coordinator)
INSERT INTO crm.product (product_id, sku, name, price) VALUES (9001, 'mb-1', 'bread', 2), (9002, 'mb-2', 'butter', 3),
	(9003, 'mb-3', 'jam', 4), (9004, 'mb-4', 'milk', 1);
INSERT INTO crm.contact (contact_id, email) SELECT g, 'mb' || g || '@example.com' FROM generate_series(70, 75) g;
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total, items)
SELECT 70 + g % 6, 7000 + g, timestamptz '2025-03-01 00:00+00' + g * interval '1 day', CASE WHEN g = 11 THEN 'cancelled' ELSE 'paid' END, 10, 2
  FROM generate_series(0, 11) g;
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, unit_price)
SELECT 70 + g % 6, 7000 + g, l, 9000 + p, 1
  FROM generate_series(0, 11) g, LATERAL (VALUES (1, 1), (2, 2), (3, CASE WHEN g % 3 = 0 THEN 3 ELSE 4 END), (4, CASE WHEN g % 2 = 0 THEN 4 END)) v(l, p)
 WHERE p IS NOT NULL;
SELECT items, count, round(support::numeric, 4) FROM crm.frequent_itemsets(0.3) ORDER BY cardinality(items), items;
SELECT lhs, rhs, count, round(support::numeric, 4), round(confidence::numeric, 4), round(lift::numeric, 4)
  FROM crm.association_rules(0.3, 0.6, min_len => 1) ORDER BY lhs, rhs;
SELECT count(*) FROM crm.association_rules(0.2, 0.5, basket => 'contact');
SELECT crm.refresh_product_rules(0.3, 0.6) AS kept;
SELECT lhs_names, rhs_name, count FROM crm.product_rules ORDER BY lhs_names, rhs_name;
SELECT product_id, round(score::numeric, 4), round(lift::numeric, 4), because FROM crm.recommend_for_basket('{9001}', 3);
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at, properties) VALUES
	(75, 750, 'product_view', '2025-04-01 00:00+00', '{"product_id": 9003}');
SELECT product_id, round(score::numeric, 4), reason FROM crm.recommend_for_contact(75, 3, '{}') ORDER BY score DESC, product_id;
SELECT product_id, round(score::numeric, 4), reason FROM crm.recommend_for_contact(75, 3, '{x}') ORDER BY score DESC, product_id;
-- a cross-sell campaign on them
INSERT INTO crm.consent (contact_id, channel, status, recorded_at)
SELECT g, 'email', 'granted', '2025-01-01 00:00+00' FROM generate_series(70, 75) g;
SELECT crm.create_static_segment('mb buyers') > 0 AS created;
SELECT crm.add_to_segment('mb buyers', ARRAY[70, 71, 72, 73, 74, 75]::bigint[]);
SELECT crm.create_campaign('mb xsell', 'mb buyers', 'email', '2025-01-01 00:00+00', NULL, 0, 0.5, recommend => true) AS xs \gset
SELECT count(*) FROM crm.campaign_targets(:xs);
SELECT contact_id, holdout, recommended_product, recommendation FROM crm.campaign_target WHERE campaign_id = :xs ORDER BY contact_id;
SELECT * FROM crm.campaign_recommendations(:xs);
SELECT targeted, targeted_bought, held_out, holdout_bought FROM crm.cross_sell_report(:xs);

-- case: CLV fits over btyd_summary ... GROUP BY contact_id (partial states combined from the workers)
-- the CDNOW sample (2,357 customers, 6,919 purchases; psql variable cdnow: its path, read by the server)
CREATE TEMP TABLE cdnow_raw (line text);
COPY cdnow_raw FROM :'cdnow';
CREATE TEMP TABLE cdnow AS
SELECT 100000 + f[1]::bigint AS contact_id, (to_date(f[3], 'YYYYMMDD') + time '12:00') AT TIME ZONE 'UTC' AS ordered_at,
       f[5]::numeric(14, 2) AS total, row_number() OVER () AS n
  FROM (SELECT regexp_split_to_array(btrim(line), '\s+') f FROM cdnow_raw) s;
INSERT INTO crm.contact (contact_id, email, lead_source, country)
SELECT DISTINCT contact_id, 'cdnow-' || contact_id || '@cdnow.example', 'import', 'US' FROM cdnow;
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total, items)
SELECT contact_id, 100000 + n, ordered_at, 'paid', total, 1 FROM cdnow;
SELECT customers, round(b.r::numeric, 4) AS r, round(b.alpha::numeric, 4) AS alpha, round(b.a::numeric, 4) AS a,
       round(b.b::numeric, 4) AS b, round(b.ll::numeric, 3) AS bgnbd_ll, b.converged,
       round(g.p::numeric, 4) AS p, round(g.q::numeric, 4) AS q, round(g.gamma::numeric, 4) AS gamma, g.converged
  FROM (SELECT count(*) AS customers, crm.bgnbd_fit((s).frequency, (s).recency, (s).t) AS bg,
               crm.gammagamma_fit((s).frequency, (s).monetary_value) FILTER (WHERE (s).monetary_value > 0) AS gg
          FROM (SELECT crm.btyd_summary(ordered_at, total, '1998-07-01 00:00+00', '7 days') AS s
                  FROM crm."order" WHERE contact_id > 100000 GROUP BY contact_id) per_customer) f,
       crm.bgnbd_params(f.bg) b, crm.gammagamma_params(f.gg) g;

-- case: crm.setup_roles() (roles, grants, row-level security): a rep sees its own contacts and their rows only
-- (the roles are created or adopted, as the one-node cluster may have them from another test)
SELECT object, CASE WHEN done IN ('role created', 'role adopted') THEN 'role' ELSE done END
  FROM crm.setup_roles() ORDER BY 1, 2;
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_citus_rep') THEN
		CREATE ROLE crm_citus_rep LOGIN IN ROLE crm_sales;
	END IF;
END $$;
INSERT INTO crm.company (company_id, name, owner) VALUES (801, 'rep''s own', 'crm_citus_rep'), (802, 'a contact''s', 'someone_else'),
	(803, 'someone else''s', 'someone_else');
INSERT INTO crm.contact (contact_id, email, owner, company_id) VALUES (80, 'rep80@example.com', 'crm_citus_rep', 802),
	(81, 'rep81@example.com', 'crm_citus_rep', NULL), (82, 'other82@example.com', 'someone_else', 803);
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at) VALUES
	(80, 800, 'page_view', '2025-03-01 00:00+00'), (81, 810, 'page_view', '2025-03-01 00:00+00'),
	(82, 820, 'page_view', '2025-03-01 00:00+00');
SET ROLE crm_citus_rep;
SELECT contact_id, owner FROM crm.contact ORDER BY 1;
SELECT contact_id, activity_id FROM crm.activity ORDER BY 1, 2;
SELECT contact_id, to_stage FROM crm.stage_history ORDER BY 1, 2;
SELECT company_id, name FROM crm.company WHERE company_id > 800 ORDER BY 1;
-- a rep writes rows of its own contacts, not of others'
INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at) VALUES (81, 811, 'page_view', '2025-03-02 00:00+00');
DO $$
BEGIN
	INSERT INTO crm.activity (contact_id, activity_id, kind, occurred_at) VALUES (82, 821, 'page_view', '2025-03-02 00:00+00');
	RAISE NOTICE 'accepted';
EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'refused: %', SQLSTATE;
END $$;
RESET ROLE;
SELECT contact_id, activity_id FROM crm.activity WHERE contact_id BETWEEN 80 AND 82 ORDER BY 1, 2;

-- case: loyalty: earning once, partial refund, redemption with a key, vouchers, a cancellation's debt, expiry per shard, a merge, the invariants, a rep
INSERT INTO crm.loyalty_program (program_id, name) VALUES (1, 'citus card');
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, discount_percent)
VALUES (1, 1, '10% off', 1000, 'discount', 10);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner, voucher_value)
VALUES (2, 1, 'two vouchers', 5000, 'voucher', 2, 'Citus Cinema', 15);
INSERT INTO crm.contact (contact_id, email) VALUES (90, 'loy90@example.com'), (91, 'loy91@example.com'),
	(92, 'loy92@example.com'), (93, 'loy93@example.com');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES
	(90, 9001, '2026-11-20 10:00+00', 'paid', 1500.75), (90, 9002, '2026-11-21 10:00+00', 'placed', 400),
	(91, 9101, '2025-01-10 10:00+00', 'paid', 300), (91, 9102, '2026-11-22 10:00+00', 'paid', 200),
	(92, 9201, '2026-11-23 10:00+00', 'paid', 5200), (93, 9301, '2026-11-24 10:00+00', 'paid', 250);
UPDATE crm."order" SET status = 'paid' WHERE order_id IN (9001, 9002);
UPDATE crm."order" SET refunded = 100 WHERE contact_id = 90 AND order_id = 9002;
SELECT points, balance FROM crm.redeem_points(90, 1, 9001, 'citus-till-1');
SELECT points, balance FROM crm.redeem_points(90, 1, 9001, 'citus-till-1');
SELECT points, balance, cardinality(vouchers) FROM crm.redeem_points(92, 2);
SELECT code FROM crm.loyalty_voucher WHERE contact_id = 92 ORDER BY code LIMIT 1 \gset
SELECT (crm.use_voucher(:'code')).partner;
DO $$
BEGIN
	PERFORM crm.redeem_points(91, 2);
EXCEPTION WHEN object_not_in_prerequisite_state THEN RAISE NOTICE 'refused: %', SQLSTATE;
END $$;
UPDATE crm."order" SET status = 'cancelled' WHERE contact_id = 90 AND order_id = 9001;
SELECT crm.expire_points(now());
SELECT crm.expire_points(now());
SELECT item, action, rows FROM crm.merge_contacts(90, 93) WHERE item LIKE '%points%' OR item LIKE '%loyalty%' ORDER BY item, action;
SELECT contact_id, program_id, balance, debt, earned, reversed, redeemed, expired FROM crm.points_balance ORDER BY 1, 2;
SELECT contact_id, kind, points, order_id, reward_id,
	   CASE WHEN occurred_at > now() - interval '1 hour' THEN 'just now' ELSE occurred_at::text END, merged_from
  FROM crm.points_ledger
 WHERE contact_id BETWEEN 90 AND 93 ORDER BY contact_id, occurred_at, kind, points;
SELECT contact_id, count(*), sum(points) FROM crm.points_draw GROUP BY 1 ORDER BY 1;
SELECT contact_id, partner, used_at IS NOT NULL FROM crm.loyalty_voucher ORDER BY 1, 3;
SELECT count(*) AS problems FROM crm.loyalty_check();
SELECT program_id, month, contacts, earned, reversed, redeemed, expired, outstanding, redemption_rate, breakage
  FROM crm.loyalty_monthly ORDER BY 1, 2;
-- a rep's order earns; the rep cannot write the ledger
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (81, 8101, '2026-11-25 10:00+00', 'paid', 60);
SET ROLE crm_citus_rep;
SELECT contact_id, balance FROM crm.points_balance ORDER BY 1;
DO $$
BEGIN
	INSERT INTO crm.points_ledger (contact_id, program_id, kind, points, order_id, occurred_at)
	VALUES (81, 1, 'earn', 100000, 1, now());
	RAISE NOTICE 'accepted';
EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'refused: %', SQLSTATE;
END $$;
RESET ROLE;

-- case: loyalty tiers: upgrades at the orders' times from one import, a refund that leaves the tier, the review per shard at the period's end, a merge that keeps the higher tier
INSERT INTO crm.loyalty_program (program_id, name) VALUES (2, 'citus tiers');
INSERT INTO crm.loyalty_tier (program_id, tier, qualifying_points) VALUES (2, 'silver', 1000), (2, 'gold', 5000);
INSERT INTO crm.contact (contact_id, email) VALUES (94, 'loy94@example.com'), (95, 'loy95@example.com'),
	(96, 'loy96@example.com'), (97, 'loy97@example.com');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, currency, total) VALUES
	(94, 9401, '2025-01-10 12:00+00', 'paid', 'USD', 600), (94, 9402, '2025-03-01 12:00+00', 'paid', 'USD', 500),
	(94, 9403, '2025-06-01 12:00+00', 'paid', 'USD', 4000), (95, 9501, '2024-11-01 12:00+00', 'paid', 'USD', 1200),
	(96, 9601, '2026-11-01 12:00+00', 'paid', 'USD', 1500), (97, 9701, '2026-10-01 12:00+00', 'paid', 'USD', 5500);
UPDATE crm."order" SET status = 'refunded' WHERE contact_id = 97;
SELECT contact_id, tier FROM crm.points_balance WHERE program_id = 2 ORDER BY 1;
SELECT crm.expire_points(now()) >= 0 AS expired;
SELECT item, action, rows FROM crm.merge_contacts(96, 97) WHERE item LIKE '%tier%' ORDER BY item, action;
SELECT contact_id, tier, tier_since, tier_until FROM crm.points_balance WHERE program_id = 2 ORDER BY 1;
SELECT contact_id, from_tier, to_tier, qualifying_points, reason,
	   CASE WHEN reason = 'merge' THEN 'at the merge' ELSE changed_at::text END, merged_from
  FROM crm.tier_history ORDER BY contact_id, changed_at, history_id;
SELECT count(*) AS problems FROM crm.loyalty_check();

-- case: loyalty earning rules: a double-points category and an excluded one on the order lines, a partial refund of both credits, capped review points from one multi-row insert, a converted referral
INSERT INTO crm.loyalty_program (program_id, name) VALUES (3, 'citus rules');
INSERT INTO crm.earning_rule (rule_id, program_id, name, kind, category, multiplier) VALUES
	(31, 3, 'double produce', 'category', 'produce', 2), (32, 3, 'no tobacco', 'category', 'tobacco', 0);
INSERT INTO crm.earning_rule (rule_id, program_id, name, kind, activity_kind, condition, points, cap_points, cap_period) VALUES
	(33, 3, 'review', 'activity', 'review', '$.rating >= 1', 50, 100, 'month'),
	(34, 3, 'referral', 'activity', 'referral', '$.converted ? (@ == true)', 500, NULL, NULL);
INSERT INTO crm.product (product_id, sku, name, category, price) VALUES
	(3101, 'C-APL', 'Apples', 'produce', 3), (3102, 'C-CIG', 'Cigarettes', 'tobacco', 10);
INSERT INTO crm.contact (contact_id, email) VALUES (98, 'loy98@example.com'), (99, 'loy99@example.com');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, currency, total) VALUES
	(98, 9801, '2026-10-01 10:00+00', 'placed', 'GBP', 350), (99, 9901, '2026-10-02 10:00+00', 'placed', 'GBP', 60);
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, quantity, unit_price) VALUES
	(98, 9801, 1, 3101, 100, 3), (98, 9801, 2, 3102, 5, 10), (99, 9901, 1, 3101, 20, 3);
UPDATE crm.loyalty_program SET currency = 'GBP' WHERE program_id = 3;
UPDATE crm."order" SET status = 'paid' WHERE order_id IN (9801, 9901);
UPDATE crm."order" SET refunded = 87.5 WHERE contact_id = 98 AND order_id = 9801;
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES
	(98, 'review', '2026-10-03 10:00+00', '{"rating": 5}'), (98, 'review', '2026-10-04 10:00+00', '{"rating": 4}'),
	(98, 'review', '2026-10-05 10:00+00', '{"rating": 3}'), (99, 'review', '2026-10-05 10:00+00', '{"rating": 2}'),
	(99, 'referral', '2026-10-06 10:00+00', '{"converted": true}'), (99, 'referral', '2026-10-07 10:00+00', '{"converted": false}');
SELECT contact_id, kind, points, order_id, rule_id, activity_id IS NOT NULL AS by_activity,
	   CASE WHEN occurred_at > now() - interval '1 hour' THEN 'just now' ELSE occurred_at::text END
  FROM crm.points_ledger WHERE program_id = 3 ORDER BY contact_id, occurred_at, kind, rule_id NULLS FIRST;
SELECT contact_id, balance, earned, reversed FROM crm.points_balance WHERE program_id = 3 ORDER BY 1;
SELECT count(*) AS problems FROM crm.loyalty_check();

-- case: predictive models: a logistic and a naive Bayes fit over the contacts of every shard, predictions and their reasons, AUC, log loss and Brier score
SELECT (m).log_likelihood::numeric(20, 8), (m).n, (m).positives, (m).vectors, (m).iterations, (m).converged,
	   (m).dropped, array_length((m).feature, 1)
  FROM (SELECT crm.logit_fit(c.contact_id % 3 = 0, jsonb_build_object('country', c.country, 'digits', length(c.contact_id::text),
														  'even', c.contact_id % 2 = 0)) AS m
		  FROM crm.contact c) s;
SELECT round(crm.auc(crm.predict(m, jsonb_build_object('country', c.country, 'digits', length(c.contact_id::text),
													   'even', c.contact_id % 2 = 0)), c.contact_id % 3 = 0)::numeric, 8) AS auc
  FROM crm.contact c,
	   (SELECT crm.logit_fit(c.contact_id % 3 = 0, jsonb_build_object('country', c.country, 'digits', length(c.contact_id::text),
														  'even', c.contact_id % 2 = 0)) AS m FROM crm.contact c) s;
SELECT round(crm.auc(c.contact_id::float8, c.contact_id % 2 = 0)::numeric, 8) AS auc,
	   round(crm.log_loss(1.0 / (1 + c.contact_id), c.contact_id % 2 = 0)::numeric, 8) AS log_loss,
	   round(crm.brier(1.0 / (1 + c.contact_id), c.contact_id % 2 = 0)::numeric, 8) AS brier
  FROM crm.contact c;
SELECT e.feature, e.value, round(e.contribution::numeric, 8) AS contribution
  FROM (SELECT crm.logit_fit(c.contact_id % 3 = 0, jsonb_build_object('country', c.country, 'digits', length(c.contact_id::text),
														  'even', c.contact_id % 2 = 0)) AS m FROM crm.contact c) s,
	   crm.explain_prediction(s.m, '{"country": "DE", "digits": 2, "even": true}') e;
SELECT (m).class_positives, (m).class_negatives, (m).feature, (m).value, (m).positives, (m).negatives,
	   round(crm.predict(m, '{"country": "DE", "even": true}')::numeric, 10) AS p
  FROM (SELECT crm.nb_fit(c.contact_id % 3 = 0, jsonb_build_object('country', c.country, 'even', c.contact_id % 2 = 0)) AS m
		  FROM crm.contact c) s;
