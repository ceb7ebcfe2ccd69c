-- Workload of test/t/search_path.sh: every trigger path and every
-- SQL-callable crm function, run as a superuser whose search_path puts a
-- schema full of look-alikes (public) before pg_catalog.  This file's own
-- SQL names nothing unqualified but crm's columns, so any look-alike that
-- runs was reached through crm's code.  Contacts here carry ids 990000+.
\set ON_ERROR_STOP 1
SET search_path = public, pg_catalog, crm;
SET track_functions = 'all';

-- contacts, a company, consents: contact_defaults, stage_log, stage_promote,
-- score_contacts (fit rules), segment dirty marks, consent triggers
INSERT INTO crm.company (company_id, name, domain, employees, country)
VALUES (990001, 'Plant Big GmbH', 'plant-big.test', 5000, 'DE');
INSERT INTO crm.contact (contact_id, email, first_name, last_name, country, job_title, company_id,
						 lead_source, birth_date, phone, attrs)
VALUES (990001, 'ana@plant.test', 'Ana', 'Núñez', 'DE', 'CEO', 990001, 'form', '1980-02-03', '+49 30 1234567', '{"t": "plant"}'),
	   (990002, 'ana.nunez@plant.test', 'ANA', 'NUNEZ', 'DE', 'CTO', 990001, 'form', '1980-02-03', '+49 30 1234567', '{"t": "plant"}'),
	   (990003, 'bo@plant.test', 'Bo', 'Li', 'US', 'Student', NULL, 'newsletter', '1999-09-09', NULL, '{"t": "plant"}'),
	   (990004, 'cy@plant.test', 'Cy', 'Doe', 'ES', 'Head of Sales', 990001, 'webinar', '1975-05-05', NULL, '{"t": "plant"}'),
	   (990005, 'di@plant.test', 'Di', 'Roe', 'FR', NULL, NULL, 'ads', NULL, NULL, '{"t": "plant"}');
UPDATE crm.contact SET job_title = 'CEO', city = 'Berlin' WHERE contact_id OPERATOR(pg_catalog.=) 990003;
UPDATE crm.company SET employees = 6000 WHERE company_id OPERATOR(pg_catalog.=) 990001;
INSERT INTO crm.consent (contact_id, channel, status, source)
VALUES (990001, 'email', 'granted', 'form'), (990002, 'email', 'denied', 'form'),
	   (990003, 'email', 'granted', 'form'), (990004, 'email', 'granted', 'form'),
	   (990004, 'sms', 'granted', 'form');
INSERT INTO crm.consent (contact_id, channel, status, source) VALUES (990003, 'email', 'revoked', 'unsubscribe');

-- activities: score_activities, the redirect trigger, promotions by score
-- and by a sales acceptance activity; a multi-row and a single-row INSERT
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
VALUES (990001, 'page_view', '2026-10-01 10:00+00', '{"url": "/pricing"}'),
	   (990001, 'form_submit', '2026-10-02 10:00+00', '{"form": "demo_request"}'),
	   (990001, 'webinar', '2026-10-03 10:00+00', '{"minutes": 45}'),
	   (990002, 'email_click', '2026-10-04 10:00+00', '{"campaign": "spring_sale"}'),
	   (990003, 'download', '2026-10-05 10:00+00', '{"asset": "whitepaper"}'),
	   (990004, 'call', '2026-10-06 10:00+00', '{}');
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
VALUES (990004, 'page_view', '2026-10-07 10:00+00', '{"url": "/demo"}');
UPDATE crm.lifecycle_policy SET sql_acceptance_kinds = '{sales_accepted}';
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (990004, 'sales_accepted', '2026-10-08 10:00+00');

-- deals and orders: opportunity and customer promotions
INSERT INTO crm.deal (contact_id, title, amount) VALUES (990001, 'Plant deal', 1000);
UPDATE crm.deal SET status = 'won', closed_at = '2026-10-10 10:00+00' WHERE contact_id OPERATOR(pg_catalog.=) 990001;
INSERT INTO crm.product (product_id, sku, name, price) VALUES (990001, 'PLANT-1', 'Plant product', 10);
INSERT INTO crm."order" (contact_id, order_id, ordered_at, total, items)
VALUES (990003, 990001, '2026-09-01 10:00+00', 30, 3), (990003, 990002, '2026-10-01 10:00+00', 20, 2),
	   (990004, 990003, '2026-10-02 10:00+00', 50, 5);
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, quantity, unit_price)
VALUES (990003, 990001, 1, 990001, 3, 10);
INSERT INTO crm.task (contact_id, title) VALUES (990001, 'call back');

-- scoring readers and rule changes (rules_changed, check_rule,
-- forget_rule_points, rescore)
SELECT crm.score(990001, 'engagement', '2026-11-01 00:00+00') IS NOT NULL AS scored;
SELECT pg_catalog.count(*) AS explained FROM crm.explain_score(990001, '2026-11-01 00:00+00');
SELECT pg_catalog.count(*) AS scores_of FROM crm.scores_of('{990001,990002,990003}', 'engagement', '2026-11-01 00:00+00');
SELECT crm.grade(990001, '2026-11-01 00:00+00') IS NOT NULL AS graded;
SELECT crm.grade_of('engagement', 50) IS NOT NULL AS grade_of;
SELECT crm.decayed_sum(1, '2026-01-01 00:00+00', 2, '2026-01-02 00:00+00', 86400e6) AS decayed;
INSERT INTO crm.scoring_rule (name, activity_kind, points) VALUES ('plant rule', 'call', 3);
INSERT INTO crm.fit_rule (name, condition, points) VALUES ('plant fit', '$.city == "Berlin"', 5);
INSERT INTO crm.score_group (score_group) VALUES ('plant_group');
SELECT crm.rescore('{990001,990002,990003,990004}') AS rescored_some;
DELETE FROM crm.scoring_rule WHERE name OPERATOR(pg_catalog.=) 'plant rule';
DELETE FROM crm.fit_rule WHERE name OPERATOR(pg_catalog.=) 'plant fit';
SELECT crm.rescore() AS rescored_all;

-- lifecycle functions
SELECT crm.set_stage(990002, 'mql', 'plant test') IS NOT NULL AS moved;
SELECT crm.set_stage(990002, 'lead', reason => 'plant test', force => true) IS NOT NULL AS moved_back;
SELECT crm.set_stage(990002, 'mql', 'plant test', at => pg_catalog.clock_timestamp()) IS NOT NULL AS moved_at;
SELECT crm.apply_lifecycle('{990001,990002}') AS applied;
SELECT crm.apply_lifecycle() AS applied_all;
SELECT crm.detect_churn('2028-01-01 00:00+00') AS churned;
SELECT crm.churn_contacts(1, '{}', '{}') AS churn_contacts;
SELECT crm.rebuild_stage_history('{990001,990002,990003}') AS rebuilt;
SELECT pg_catalog.count(*) AS itemsets FROM crm.frequent_itemsets(0.5);
SELECT pg_catalog.count(*) AS rules FROM crm.association_rules(0.5, 0.5, basket => 'contact');
SELECT crm.refresh_product_rules(0.5, 0.5) AS kept_rules;
SELECT pg_catalog.count(*) AS recommended FROM crm.recommend_for_basket('{1,2}');
SELECT pg_catalog.count(*) AS recommended_for FROM crm.recommend_for_contact(990001);
SELECT crm.rebuild_stage_history() IS NOT NULL AS rebuilt_all;
INSERT INTO crm."order" (contact_id, ordered_at, total) VALUES (990003, '2028-01-02 00:00+00', 5);
SELECT pg_catalog.count(*) AS stages_at FROM crm.stages_at('2027-01-01 00:00+00');
SELECT pg_catalog.count(*) AS funnel FROM crm.funnel('2027-01-01 00:00+00');
SELECT pg_catalog.count(*) AS mismatches FROM crm.stage_history_mismatches(pg_catalog.clock_timestamp());
SELECT pg_catalog.count(*) AS conversion FROM crm.stage_conversion('2020-01-01 00:00+00', '2030-01-01 00:00+00');
SELECT crm.stage_rank('mql') AS ranked;
SELECT (crm.policy()).mql_min_engagement IS NOT NULL AS policy;

-- segments and campaigns (segment triggers, refresh, static lists)
SELECT pg_catalog.count(*) AS checked FROM crm.segment_check('plant de', $$country = 'DE' AND attrs @> '{"t": "plant"}'$$);
SELECT pg_catalog.count(*) AS analyzed FROM crm.segment_analyze($$country = 'DE'$$, 'plant de');
SELECT crm.create_segment('plant de', $$country = 'DE' AND attrs @> '{"t": "plant"}'$$) AS created;
SELECT crm.create_segment('plant active', $$crm.activity_count(contact_id, 'page_view', '3650 days') > 0
	AND crm.bought_between(contact_id, '2020-01-01', '2030-01-01') IS NOT NULL
	AND crm.in_segment(contact_id, 'plant de') IS NOT NULL$$) AS created_time;
SELECT crm.create_static_segment('plant list', 'hand-picked') AS created_static;
SELECT (crm.static_segment_lock('plant list')).kind AS static_kind;
SELECT crm.add_to_segment('plant list', '{990001,990003}') AS added;
SELECT crm.remove_from_segment('plant list', '{990003}') AS removed;
UPDATE crm.contact SET country = 'FR' WHERE contact_id OPERATOR(pg_catalog.=) 990002;
SELECT pg_catalog.count(*) AS refreshed FROM crm.refresh_segment('plant de');
SELECT pg_catalog.count(*) AS refreshed_full FROM crm.refresh_segment('plant de', true);
SELECT pg_catalog.count(*) AS refreshed_all FROM crm.refresh_segments();
SELECT crm.alter_segment('plant active', $$country = 'ES'$$) IS NULL AS altered;
SELECT crm.create_campaign('plant camp', 'plant de', 'email', '2026-01-01 00:00+00', '2030-01-01 00:00+00', 10, 0.5) AS camp \gset
SELECT pg_catalog.count(*) AS preview FROM crm.campaign_targets_preview(:camp);
SELECT pg_catalog.count(*) AS targets FROM crm.campaign_targets(:camp);
SELECT pg_catalog.count(*) AS report FROM crm.campaign_report(:camp);
SELECT crm.create_campaign('plant xsell', 'plant de', 'email', '2026-01-01 00:00+00', '2030-01-01 00:00+00', 10, 0.5, true) AS xcamp \gset
SELECT pg_catalog.count(*) AS xtargets FROM crm.campaign_targets(:xcamp);
SELECT pg_catalog.count(*) AS xoffers FROM crm.campaign_recommendations(:xcamp);
SELECT pg_catalog.count(*) AS xreport FROM crm.cross_sell_report(:xcamp);
SELECT crm.nth_weekday(2026, 5, 0, 2) IS NOT NULL AS mothers_day;
SELECT crm.drop_segment('plant list') IS NULL AS dropped;

-- RFM, retention, CLV
SELECT pg_catalog.count(*) AS rfm FROM crm.rfm_scores('2029-01-01 00:00+00', '2020-01-01 00:00+00');
SELECT crm.rfm_segment(crm.rfm(5, 4, 3)) IS NOT NULL AS rfm_segment,
	   crm.r(crm.rfm(5, 4, 3)), crm.f(crm.rfm(5, 4, 3)), crm.m(crm.rfm(5, 4, 3));
SELECT pg_catalog.count(*) AS churn_rate FROM crm.churn_rate('1 month', '2026-01-01 00:00+00', '2027-01-01 00:00+00');
SELECT pg_catalog.count(*) AS cohorts FROM crm.retention_cohorts('1 month');
SELECT crm.period_start(crm.period_index('2026-05-05 00:00+00', '1 month'), '1 month') IS NOT NULL AS periods;
SELECT crm.historic_clv(990003) AS historic_clv, crm.simple_clv(100, 0.8, 0.1) AS simple_clv;
-- the same with the types drivers bind: bigint, double, interval, varchar
SELECT crm.rfm(5::pg_catalog.int8, 4::pg_catalog.int8, 3::pg_catalog.int8) IS NOT NULL AS rfm_long,
	   crm.nth_weekday(2026::pg_catalog.int8, 5::pg_catalog.int8, 0::pg_catalog.int8, 2::pg_catalog.int8) IS NOT NULL AS weekday_long,
	   crm.simple_clv(100::pg_catalog.float8, 0.8::pg_catalog.float8, 0.1::pg_catalog.float8) AS clv_double,
	   crm.activity_count(990003, 'page_view', '30 days'::pg_catalog.varchar) AS count_text,
	   crm.activity_count(990003, 'page_view', '30 days'::pg_catalog.interval) AS count_interval;
SELECT pg_catalog.count(*) AS churn_interval
  FROM crm.churn_rate('1 month'::pg_catalog.interval, '2026-01-01 00:00+00', '2027-01-01 00:00+00');
SELECT pg_catalog.count(*) AS cohorts_text FROM crm.retention_cohorts('1 month'::pg_catalog.varchar);
SELECT pg_catalog.count(*) AS cohorts_interval FROM crm.retention_cohorts('1 month'::pg_catalog.interval);
SELECT crm.period_start(crm.period_index('2026-05-05 00:00+00', '1 month'::pg_catalog.interval),
						'1 month'::pg_catalog.interval) IS NOT NULL AS periods_interval;
-- the fits (aggregates) on a few rows; the predictions on fitted CDNOW models
SELECT crm.bgnbd_fit(x, t_x, t) AS bg, crm.bgnbd_fit(x, t_x, t, 1) AS bgw,
	   crm.mbgnbd_fit(x, t_x, t) AS mbg, crm.mbgnbd_fit(x, t_x, t, 1) AS mbgw,
	   crm.paretonbd_fit(x, t_x, t) AS pnbd, crm.paretonbd_fit(x, t_x, t, 1) AS pnbdw,
	   crm.gammagamma_fit(x, m) FILTER (WHERE x OPERATOR(pg_catalog.>) 0) AS gg,
	   crm.gammagamma_fit(x, m, 1) FILTER (WHERE x OPERATOR(pg_catalog.>) 0) AS ggw,
	   crm.bgbb_fit(bx, bt, 6) AS bb, crm.bgbb_fit(bx, bt, 6, 1) AS bbw
  FROM (VALUES (0::pg_catalog.float8, 0::pg_catalog.float8, 30::pg_catalog.float8, 0::pg_catalog.float8,
				0::pg_catalog.float8, 0::pg_catalog.float8),
			   (1, 10, 30, 20, 1, 3), (2, 20, 30, 25, 2, 4), (3, 25, 30, 30, 3, 5),
			   (0, 0, 20, 0, 0, 0), (1, 5, 20, 15, 1, 6), (4, 6, 6, 10, 4, 6), (2, 3, 6, 12, 2, 6)) d(x, t_x, t, m, bx, bt);
CREATE TEMP TABLE plant_models AS
SELECT 'bgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.bgnbd AS bg,
	   'mbgnbd(r=0.243,alpha=4.414,a=0.793,b=2.426)'::crm.mbgnbd AS mbg,
	   'paretonbd(r=0.553,alpha=10.58,s=0.606,beta=11.67)'::crm.paretonbd AS pnbd,
	   'gammagamma(p=6.25,q=3.74,gamma=15.44)'::crm.gammagamma AS gg,
	   'bgbb(alpha=1.204,beta=0.750,gamma=0.657,delta=2.783)'::crm.bgbb AS bb;
SELECT crm.params(bg) IS NOT NULL, crm.params(mbg) IS NOT NULL, crm.params(pnbd) IS NOT NULL,
	   crm.params(gg) IS NOT NULL, crm.params(bb) IS NOT NULL,
	   crm.bgnbd_params(bg) IS NOT NULL, crm.mbgnbd_params(mbg) IS NOT NULL,
	   crm.paretonbd_params(pnbd) IS NOT NULL, crm.gammagamma_params(gg) IS NOT NULL,
	   crm.bgbb_params(bb) IS NOT NULL
  FROM plant_models;
SELECT crm.expected_purchases(bg, 10), crm.expected_purchases(bg, 10, 1, 10, 30),
	   crm.p_alive(bg, 1, 10, 30), crm.prob_purchases(bg, 1, 10), crm.log_likelihood(bg, 1, 10, 30),
	   crm.expected_purchases(mbg, 10), crm.expected_purchases(mbg, 10, 1, 10, 30),
	   crm.p_alive(mbg, 1, 10, 30), crm.prob_purchases(mbg, 1, 10), crm.log_likelihood(mbg, 1, 10, 30),
	   crm.expected_purchases(pnbd, 10), crm.expected_purchases(pnbd, 10, 1, 10, 30),
	   crm.p_alive(pnbd, 1, 10, 30), crm.prob_purchases(pnbd, 1, 10), crm.log_likelihood(pnbd, 1, 10, 30),
	   crm.expected_spend(gg, 2, 20), crm.log_likelihood(gg, 2, 20),
	   crm.expected_purchases(bb, 3), crm.expected_purchases(bb, 3, 1, 3, 6),
	   crm.p_alive(bb, 1, 3, 6), crm.prob_purchases(bb, 1, 3), crm.log_likelihood(bb, 1, 3, 6),
	   crm.clv(bg, gg, 1, 10, 30, 20, 12, 0.01, 1), crm.clv(mbg, gg, 1, 10, 30, 20, 12, 0.01, 1),
	   crm.clv(pnbd, gg, 1, 10, 30, 20, 12, 0.01, 1)
  FROM plant_models;
SELECT pg_catalog.count(*) FROM plant_models, crm.bgnbd_simulate(bg, 30, 10, 7);
SELECT pg_catalog.count(*) FROM plant_models, crm.mbgnbd_simulate(mbg, 30, 10, 7);
SELECT pg_catalog.count(*) FROM plant_models, crm.paretonbd_simulate(pnbd, 30, 10, 7);
SELECT pg_catalog.count(*) FROM plant_models, crm.bgbb_simulate(bb, 6, 10);
SELECT crm.gammagamma_simulate(gg, 2, 10) IS NOT NULL FROM plant_models;
SELECT pg_catalog.count(*) AS summary FROM (
	SELECT crm.btyd_summary(ordered_at, total, '2029-01-01 00:00+00') AS s,
		   crm.btyd_summary(ordered_at, total, '2029-01-01 00:00+00', '7 days') AS w,
		   crm.btyd_summary(ordered_at, total, '2029-01-01 00:00+00', '7 days'::pg_catalog.interval) AS wi,
		   crm.btyd_summary(ordered_at, total, '2029-01-01 00:00+00', '7 days'::pg_catalog.varchar) AS ws
	  FROM crm."order" GROUP BY contact_id) s;

-- loyalty: earning, partial refund, deletion, redemption (discount with a
-- key, vouchers), expiry, the statement and the check; the merge below
-- moves 990002's points (merge_points, move_points, points_append_only)
INSERT INTO crm.loyalty_program (program_id, name) VALUES (990001, 'plant card');
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, discount_percent)
VALUES (990001, 990001, 'plant 10%', 100, 'discount', 10);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner, voucher_value)
VALUES (990002, 990001, 'plant vouchers', 200, 'voucher', 2, 'Plant Cinema', 10);
-- tiers, a capped activity rule and category rules (the order lines' path)
INSERT INTO crm.loyalty_tier (program_id, tier, qualifying_points) VALUES (990001, 'plant silver', 300);
INSERT INTO crm.earning_rule (program_id, name, kind, activity_kind, condition, points, cap_points, cap_period)
VALUES (990001, 'plant review', 'activity', 'review', '$.rating >= 1', 20, 30, 'month');
INSERT INTO crm.earning_rule (program_id, name, kind, category, multiplier)
VALUES (990001, 'plant double', 'category', 'plant-double', 2), (990001, 'plant none', 'category', 'plant-none', 0);
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties)
VALUES (990001, 'review', '2026-11-01 00:00+00', '{"rating": 5}'), (990001, 'review', '2026-11-02 00:00+00', '{"rating": 4}');
SELECT crm.condition_holds('{"rating": 5}', '$.rating >= 1') AS holds;
-- predictive models: a fit over the plant's orders, predictions, reasons, measures
SELECT (crm.logit_fit(o.total OPERATOR(pg_catalog.>) 100, pg_catalog.jsonb_build_object('status', o.status, 'items', o.items))).converged IS NOT NULL AS fitted,
	   (crm.logit_fit(o.total OPERATOR(pg_catalog.>) 100, pg_catalog.jsonb_build_object('status', o.status), 1.0)).n AS weighted,
	   (crm.logit_fit(o.total OPERATOR(pg_catalog.>) 100, pg_catalog.jsonb_build_object('status', o.status), 1.0, 0.5)).l2 AS penalised
  FROM (VALUES (150::pg_catalog.numeric, 'paid'::pg_catalog.text, 1), (40, 'paid', 2), (400, 'shipped', 1), (20, 'shipped', 3)) o(total, status, items);
SELECT crm.predict(m, '{"status": "paid"}') IS NOT NULL, crm.predict_log_odds(m, '{"status": "paid"}') IS NOT NULL,
	   (SELECT pg_catalog.count(*) FROM crm.explain_prediction(m, '{"status": "paid"}')) AS reasons
  FROM (SELECT crm.logit_fit(v.y, v.x, 1.0, 1.0) AS m
		  FROM (VALUES (true, '{"status": "paid"}'::pg_catalog.jsonb), (false, '{"status": "shipped"}'), (true, '{"status": "shipped"}')) v(y, x)) s;
SELECT crm.predict(m, '{"status": "paid"}') IS NOT NULL, crm.predict_log_odds(m, '{"status": "paid"}') IS NOT NULL,
	   (SELECT pg_catalog.count(*) FROM crm.explain_prediction(m, '{"status": "paid"}')) AS nb_reasons,
	   (SELECT (crm.nb_fit(v.y, v.x, 0.5)).alpha
		  FROM (VALUES (true, '{"status": "paid"}'::pg_catalog.jsonb), (false, '{"status": "shipped"}')) v(y, x)) AS alpha
  FROM (SELECT crm.nb_fit(v.y, v.x) AS m
		  FROM (VALUES (true, '{"status": "paid"}'::pg_catalog.jsonb), (false, '{"status": "shipped"}')) v(y, x)) s;
SELECT crm.auc(v.s, v.l), crm.log_loss(v.s, v.l), crm.brier(v.s, v.l)
  FROM (VALUES (0.9::pg_catalog.float8, true), (0.2, false), (0.6, true)) v(s, l);
INSERT INTO crm.product (product_id, sku, name, category, price)
VALUES (990002, 'PLANT-2', 'Plant double', 'plant-double', 5), (990003, 'PLANT-3', 'Plant none', 'plant-none', 5);
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (990001, 990105, '2026-11-04 00:00+00', 'placed', 20);
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, quantity, unit_price)
VALUES (990001, 990105, 1, 990002, 2, 5), (990001, 990105, 2, 990003, 2, 5);
UPDATE crm."order" SET status = 'paid' WHERE contact_id OPERATOR(pg_catalog.=) 990001 AND order_id OPERATOR(pg_catalog.=) 990105;
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
VALUES (990001, 990101, '2025-01-05 00:00+00', 'paid', 150), (990001, 990102, '2026-11-01 00:00+00', 'paid', 400),
	   (990002, 990103, '2026-11-02 00:00+00', 'paid', 250), (990002, 990104, '2026-11-03 00:00+00', 'paid', 40);
UPDATE crm."order" SET refunded = 100 WHERE contact_id OPERATOR(pg_catalog.=) 990001 AND order_id OPERATOR(pg_catalog.=) 990102;
DELETE FROM crm."order" WHERE contact_id OPERATOR(pg_catalog.=) 990002 AND order_id OPERATOR(pg_catalog.=) 990104;
SELECT points AS redeemed FROM crm.redeem_points(990001, 990001, 990102, 'plant-key');
SELECT pg_catalog.cardinality(vouchers) AS vouchers FROM crm.redeem_points(990002, 990002);
SELECT (crm.use_voucher(v.code)).partner AS used FROM crm.loyalty_voucher v
 WHERE v.contact_id OPERATOR(pg_catalog.=) 990002 ORDER BY v.code LIMIT 1;
SELECT crm.expire_points() AS expired, crm.expire_lots(990001, pg_catalog.now()) AS expired_here;
SELECT pg_catalog.count(*) AS statement FROM crm.points_statement(990001);
SELECT pg_catalog.count(*) AS loyalty_problems FROM crm.loyalty_check();

-- e-mail and identity functions, duplicates, merge, erasure
SELECT crm.email('Z@Plant.Test') IS NOT NULL, crm.email_domain('z@plant.test') IS NOT NULL, crm.email_or_null('z@plant.test') IS NOT NULL,
	   crm.email_local('z@plant.test') IS NOT NULL, crm.email_handle('z@plant.test') IS NOT NULL,
	   crm.match_key('José Núñez') IS NOT NULL, crm.name_similarity('José', 'Jose'),
	   crm.phone_key('+49 30 1234567') IS NOT NULL, crm.salted_email_hash('z@plant.test') IS NOT NULL,
	   crm.is_forgotten('z@plant.test') IS NOT NULL;
SELECT pg_catalog.count(*) AS duplicates FROM crm.find_duplicates(0.5, 10);
SELECT crm.can_contact(990001, 'email', '2026-11-01 00:00+00') IS NOT NULL AS can_contact;
SELECT pg_catalog.count(*) AS consent_history FROM crm.consent_history(990001);
SELECT pg_catalog.count(*) AS refs FROM crm.contact_references();
SELECT pg_catalog.count(*) AS merge_preview FROM crm.merge_contacts(990001, 990002, dry_run => true);
SELECT pg_catalog.count(*) AS merged FROM crm.merge_contacts(990001, 990002);
SELECT crm.merged_into(990002) AS followed;
-- rows for the merged-away contact are redirected
INSERT INTO crm.activity (contact_id, kind, occurred_at) VALUES (990002, 'email_open', '2026-10-20 10:00+00');
INSERT INTO crm.consent (contact_id, channel, status) VALUES (990002, 'phone', 'granted');
SELECT crm.forget_contact(990003, 'plant test') AS forgotten;
DELETE FROM crm.contact WHERE contact_id OPERATOR(pg_catalog.=) 990005;
-- the end-of-dump marker (the first one, crm._dump_begin, deletes the
-- built-in rows and so runs only into a database without data: the restore
-- test loads it)
INSERT INTO crm.zz_dump_end DEFAULT VALUES;
SELECT crm.my_roles() IS NOT NULL AS my_roles;
SELECT crm.owned_by_me(CURRENT_USER::pg_catalog.text) AS owned_by_me, crm.contact_visible(1) IS NOT NULL AS contact_visible,
       crm.company_has_my_contact(1) IS NOT NULL AS company_has_my_contact;
SELECT pg_catalog.count(*) AS setup_roles FROM crm.setup_roles();
-- crm.distribute(): without Citus it refuses (0A000) before touching anything
DO $$
BEGIN
	PERFORM crm.distribute();
	RAISE EXCEPTION 'crm.distribute() ran without Citus';
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END $$;
