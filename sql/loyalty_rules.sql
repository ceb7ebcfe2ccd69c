-- Loyalty: earning rules and rewards on the seeds' programme (a point per
-- dollar; 10% off a purchase for 1,000 points; two partner vouchers for
-- 5,000), with a double-points category, a category that earns nothing,
-- points for reviews (capped per month) and for converted referrals.
SET client_min_messages = notice;
INSERT INTO crm.loyalty_program (program_id, name, point_value) VALUES (71, 'Seed card', 0.01);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, discount_percent)
VALUES (711, 71, '10% off a purchase', 1000, 'discount', 10);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner, voucher_value)
VALUES (712, 71, 'Two partner vouchers', 5000, 'voucher', 2, 'Cinema Lux', 15);
INSERT INTO crm.earning_rule (rule_id, program_id, name, kind, category, multiplier) VALUES
	(721, 71, 'double points on produce', 'category', 'produce', 2),
	(722, 71, 'no points on tobacco', 'category', 'tobacco', 0);
INSERT INTO crm.earning_rule (rule_id, program_id, name, kind, activity_kind, condition, points, cap_points, cap_period) VALUES
	(723, 71, 'a review written', 'activity', 'review', '$.rating >= 1', 50, 100, 'month'),
	(724, 71, 'a referral that converted', 'activity', 'referral', '$.converted ? (@ == true)', 500, NULL, NULL);
INSERT INTO crm.product (product_id, sku, name, category, price) VALUES
	(7101, 'SEED-APL', 'Apples', 'produce', 3), (7102, 'SEED-CIG', 'Cigarettes', 'tobacco', 10),
	(7103, 'SEED-BRD', 'Bread', 'bakery', 2);
INSERT INTO crm.contact (contact_id, email) VALUES (7001, 'seed-a@example.com'), (7002, 'seed-b@example.com');

-- an order placed, its lines, then paid: 100 apples (300), 5 packs (50), 25
-- loaves (50): 400 - 50 of tobacco = 350 points, and 300 more for produce
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (7001, 1, '2026-10-01 10:00+00', 'placed', 400);
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, quantity, unit_price) VALUES
	(7001, 1, 1, 7101, 100, 3), (7001, 1, 2, 7102, 5, 10), (7001, 1, 3, 7103, 25, 2);
UPDATE crm."order" SET status = 'paid' WHERE contact_id = 7001 AND order_id = 1;
SELECT kind, points, order_id, rule_id FROM crm.points_ledger WHERE contact_id = 7001 ORDER BY entry_id;
-- paid again, shipped: nothing more
UPDATE crm."order" SET status = 'paid' WHERE contact_id = 7001 AND order_id = 1;
UPDATE crm."order" SET status = 'shipped' WHERE contact_id = 7001 AND order_id = 1;
SELECT balance, earned FROM crm.points_balance WHERE contact_id = 7001;
-- a quarter refunded: a quarter of each credit goes back (87 of 350, 75 of 300)
UPDATE crm."order" SET refunded = 100 WHERE contact_id = 7001 AND order_id = 1;
SELECT kind, points, rule_id FROM crm.points_ledger WHERE contact_id = 7001 AND kind = 'reverse' ORDER BY entry_id;

-- reviews: 50 points each, at most 100 a month, in one statement or not
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES
	(7001, 'review', '2026-10-03 10:00+00', '{"rating": 5}'), (7001, 'review', '2026-10-04 10:00+00', '{"rating": 4}'),
	(7001, 'review', '2026-10-05 10:00+00', '{"rating": 3}'), (7001, 'review', '2026-10-06 10:00+00', '{"stars": 3}');
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES (7001, 'review', '2026-10-20 10:00+00', '{"rating": 2}');
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES (7001, 'review', '2026-11-02 10:00+00', '{"rating": 1}');
SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*), sum(points)
  FROM crm.points_ledger WHERE contact_id = 7001 AND rule_id = 723 GROUP BY 1 ORDER BY 1;
-- referrals: only one that converted earns
INSERT INTO crm.activity (contact_id, kind, occurred_at, properties) VALUES
	(7002, 'referral', '2026-10-10 10:00+00', '{"converted": false}'),
	(7002, 'referral', '2026-10-11 10:00+00', '{"converted": true}');
SELECT kind, points, rule_id, activity_id IS NOT NULL AS by_activity FROM crm.points_ledger WHERE contact_id = 7002;
SELECT crm.condition_holds('{"converted": true}', '$.converted ? (@ == true)') AS converted,
	   crm.condition_holds('{"rating": "five"}', '$.rating >= 1') AS rating_not_a_number;

-- rewards: 10% off an order, once per order unless the programme stacks
-- (an order of 2,000 first: 2,450 points)
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (7001, 3, '2026-11-04 10:00+00', 'paid', 2000);
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (7001, 2, '2026-11-05 10:00+00', 'placed', 80);
SELECT points, balance, vouchers FROM crm.redeem_points(7001, 711, order_id => 2);
SELECT * FROM crm.redeem_points(7001, 711, order_id => 2);
UPDATE crm.loyalty_program SET max_discounts_per_order = 2 WHERE program_id = 71;
SELECT points, balance FROM crm.redeem_points(7001, 711, order_id => 2);
SELECT order_id, discount_percent, points FROM crm.points_ledger WHERE contact_id = 7001 AND kind = 'redeem' ORDER BY entry_id;
-- a discount needs its order
SELECT * FROM crm.redeem_points(7001, 711);
-- more points than the balance: refused, naming it; nothing written
SELECT * FROM crm.redeem_points(7001, 712);
SELECT count(*) AS redemptions FROM crm.points_ledger WHERE kind = 'redeem';
-- two vouchers for 5,000: unique codes, each usable once
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (7002, 1, '2026-11-06 10:00+00', 'paid', 4600);
SELECT points, balance, cardinality(vouchers) AS vouchers, vouchers[1] <> vouchers[2] AS distinct_codes
  FROM crm.redeem_points(7002, 712, idempotency_key => 'pos-1');
SELECT code FROM crm.loyalty_voucher WHERE contact_id = 7002 ORDER BY code LIMIT 1 \gset
SELECT partner, value, used_by IS NOT NULL AS used FROM crm.use_voucher(:'code');
-- again: refused (the message names the random code and the time: shortened)
SELECT set_config('loyalty_test.code', :'code', false) IS NOT NULL AS kept;
DO $$
BEGIN
	PERFORM crm.use_voucher(current_setting('loyalty_test.code'));
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'refused (%): %', SQLSTATE, regexp_replace(SQLERRM, '[0-9A-F]{32} (was already used) at .*', '... \1');
END $$;
-- the same key again: the first redemption, not a second
SELECT points, balance FROM crm.redeem_points(7002, 712, idempotency_key => 'pos-1');
SELECT count(*) AS vouchers FROM crm.loyalty_voucher WHERE contact_id = 7002;

-- an order in another currency earns nothing (no conversion)
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, currency, total) VALUES (7002, 2, '2026-11-07 10:00+00', 'paid', 'EUR', 900);
SELECT count(*) AS credits FROM crm.points_ledger WHERE contact_id = 7002 AND order_id = 2;

-- bad rules and rewards (terse: the failing rows hold timestamps)
\set VERBOSITY terse
INSERT INTO crm.earning_rule (program_id, name, kind, category, multiplier) VALUES (71, 'nan', 'category', 'wine', 'NaN');
INSERT INTO crm.earning_rule (program_id, name, kind, category, multiplier) VALUES (71, 'negative', 'category', 'wine', -1);
INSERT INTO crm.earning_rule (program_id, name, kind, category, multiplier, cap_points, cap_period)
VALUES (71, 'capped exclusion', 'category', 'wine', 0.5, 10, 'month');
INSERT INTO crm.earning_rule (program_id, name, kind, category, multiplier) VALUES (71, 'produce again', 'category', 'produce', 3);
INSERT INTO crm.earning_rule (program_id, name, kind, activity_kind) VALUES (71, 'no points', 'activity', 'review');
INSERT INTO crm.earning_rule (program_id, name, kind, activity_kind, points, cap_points) VALUES (71, 'no period', 'activity', 'review', 5, 10);
INSERT INTO crm.earning_rule (program_id, name, kind, activity_kind, points, cap_points, cap_period)
VALUES (71, 'fortnight', 'activity', 'review', 5, 10, 'fortnight');
-- rule 0 would be the order's own points in the ledger's unique index
INSERT INTO crm.earning_rule (rule_id, program_id, name, kind, category, multiplier) VALUES (0, 71, 'zero', 'category', 'wine', 2);
INSERT INTO crm.loyalty_program (name, points_per_unit) VALUES ('bad', -1);
INSERT INTO crm.loyalty_program (name, points_per_unit) VALUES ('bad', 'NaN');
SELECT * FROM crm.redeem_points(7001, 799);
UPDATE crm.points_ledger SET points = 100000 WHERE contact_id = 7001;
DELETE FROM crm.points_ledger WHERE contact_id = 7001;

SELECT contact_id, balance, debt, earned, reversed, redeemed FROM crm.points_balance ORDER BY 1;
SELECT count(*) AS problems FROM crm.loyalty_check();
