-- pgTAP: loyalty tiers (silver at 1,000 and gold at 5,000 qualifying points
-- earned in a rolling 12 months).  An upgrade happens at the earning that
-- reaches the tier, dated at that order's time, step by step even when a
-- year of orders arrives in one statement; redeeming or a refund does not
-- lower a tier; the review at the end of the tier's period (a year after it
-- was reached or last kept) keeps it or lowers it, dated at the period's
-- end, as many periods as have passed; a merge keeps the higher tier.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(26);

INSERT INTO crm.loyalty_program (program_id, name) VALUES (951, 'Tiered card');
INSERT INTO crm.loyalty_tier (program_id, tier, qualifying_points) VALUES (951, 'silver', 1000), (951, 'gold', 5000);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner)
VALUES (961, 951, 'Voucher', 1000, 'voucher', 1, 'Cinema');
INSERT INTO crm.contact (contact_id, email)
SELECT g, 'tier' || g || '@example.com' FROM generate_series(9501, 9509) g;

CREATE FUNCTION pg_temp.tier(c bigint) RETURNS text LANGUAGE sql AS
	$$ SELECT tier FROM crm.points_balance WHERE contact_id = c AND program_id = 951 $$;
CREATE FUNCTION pg_temp.history(c bigint) RETURNS TABLE (from_tier text, to_tier text, changed_at timestamptz, reason text)
LANGUAGE sql AS $$ SELECT from_tier, to_tier, changed_at, reason FROM crm.tier_history
					 WHERE contact_id = c ORDER BY changed_at, history_id $$;

-- 9501: a year of orders in one statement, as an import; 9502: the same
-- orders one at a time.  Silver when March's order brings 1,100, gold when
-- June's brings 5,100.
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES
	(9501, '2025-01-10 12:00+00', 'paid', 600), (9501, '2025-03-01 12:00+00', 'paid', 500),
	(9501, '2025-06-01 12:00+00', 'paid', 4000);
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9502, '2025-01-10 12:00+00', 'paid', 600);
SELECT is(pg_temp.tier(9502), NULL, 'below 1,000 qualifying points: no tier');
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9502, '2025-03-01 12:00+00', 'paid', 500);
SELECT is(pg_temp.tier(9502), 'silver', 'the order that brings 1,100 makes silver at once');
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9502, '2025-06-01 12:00+00', 'paid', 4000);
SELECT results_eq('SELECT * FROM pg_temp.history(9501)',
				  $$VALUES (NULL, 'silver', '2025-03-01 12:00+00'::timestamptz, 'upgrade'),
						   ('silver', 'gold', '2025-06-01 12:00+00'::timestamptz, 'upgrade')$$,
				  'an import of a year: each upgrade logged at the order that reached it');
SELECT results_eq('SELECT * FROM pg_temp.history(9502)', 'SELECT * FROM pg_temp.history(9501)',
				  'the same orders one at a time give the same history');
SELECT is((SELECT (tier, tier_since, tier_until)::text FROM crm.points_balance WHERE contact_id = 9501),
		  ('gold', '2025-06-01 12:00+00'::timestamptz, '2026-06-01 12:00+00'::timestamptz)::text,
		  'gold from June 2025 for a period of 12 months');

-- 9503: one order past both thresholds: one step, to gold
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9503, '2026-02-01 12:00+00', 'paid', 6000);
SELECT results_eq('SELECT from_tier, to_tier FROM pg_temp.history(9503)', $$VALUES (NULL, 'gold')$$,
				  'an order past both thresholds: one upgrade, to gold');

-- 9504: orders more than a window apart never add up
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES
	(9504, '2024-01-01 12:00+00', 'paid', 900), (9504, '2025-02-01 12:00+00', 'paid', 900);
SELECT is(pg_temp.tier(9504), NULL, 'points more than 12 months apart do not qualify together');

-- qualifying points are not the balance: redeeming does not lower a tier,
-- nor does a refund before the period ends
SELECT * FROM crm.redeem_points(9503, 961) \g /dev/null
UPDATE crm."order" SET status = 'refunded' WHERE contact_id = 9503;
SELECT is(pg_temp.tier(9503), 'gold', 'a redemption and a refund leave the tier until its period ends');
SELECT is((SELECT (balance, debt)::text FROM crm.points_balance WHERE contact_id = 9503), (-1000, 1000)::text,
		  '... while the points are spent and reversed (the spent 1,000 owed)');

-- the review at the period's end: 9501's gold period ends 2026-06-01; the
-- window then holds June 2025's 4,000 points: silver, dated at the end
SELECT crm.expire_points('2026-06-02 00:00+00') \g /dev/null
SELECT results_eq($$SELECT from_tier, to_tier, changed_at, reason FROM pg_temp.history(9501) WHERE reason = 'review'$$,
				  $$VALUES ('gold', 'silver', '2026-06-01 12:00+00'::timestamptz, 'review')$$,
				  'at the end of the period the window''s 4,000 points keep silver, not gold');
SELECT is((SELECT (tier, tier_since, tier_until)::text FROM crm.points_balance WHERE contact_id = 9501),
		  ('silver', '2026-06-01 12:00+00'::timestamptz, '2027-06-01 12:00+00'::timestamptz)::text,
		  'silver from the review on, for another period');
SELECT is(pg_temp.tier(9503), 'gold', 'a tier whose period has not ended is not reviewed');
SELECT crm.expire_points('2026-06-02 00:00+00') \g /dev/null
SELECT is((SELECT count(*) FROM crm.tier_history WHERE contact_id = 9501), 3::bigint, 'the review is idempotent');

-- 9505: silver in November 2024 and nothing since: kept at the first
-- review (the window still holds the order), lost at the second; one call
-- does both
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9505, '2024-11-01 12:00+00', 'paid', 1200);
SELECT crm.expire_points() \g /dev/null
SELECT results_eq('SELECT * FROM pg_temp.history(9505)',
				  $$VALUES (NULL, 'silver', '2024-11-01 12:00+00'::timestamptz, 'upgrade'),
						   ('silver', NULL, '2026-11-01 12:00+00'::timestamptz, 'review')$$,
				  'kept at the first review, lost at the second, each period in one call');
SELECT is((SELECT (tier, tier_since, tier_until)::text FROM crm.points_balance WHERE contact_id = 9505),
		  (NULL::text, NULL::timestamptz, NULL::timestamptz)::text, 'no tier, no period');

-- a tier reached later than the orders of a late import is never dated
-- before the tier held then
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9506, '2026-03-01 12:00+00', 'paid', 1500);
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9506, '2026-01-01 12:00+00', 'paid', 5000);
SELECT results_eq('SELECT to_tier, changed_at FROM pg_temp.history(9506)',
				  $$VALUES ('silver', '2026-03-01 12:00+00'::timestamptz), ('gold', '2026-03-01 12:00+00'::timestamptz)$$,
				  'a late order that reaches gold is dated no earlier than the silver it follows');

-- a merge: the kept contact holds the higher tier, the history moves
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES
	(9507, now() - interval '1 month', 'paid', 1500), (9508, now() - interval '2 months', 'paid', 5500);
SELECT * FROM crm.merge_contacts(9507, 9508) \g /dev/null
SELECT is(pg_temp.tier(9507), 'gold', 'a merge keeps the higher tier');
SELECT results_eq($$SELECT from_tier, to_tier, reason FROM crm.tier_history WHERE contact_id = 9507 ORDER BY history_id$$,
				  $$VALUES (NULL, 'silver', 'upgrade'), (NULL, 'gold', 'upgrade'), ('silver', 'gold', 'merge')$$,
				  '... the dropped contact''s history moves, and the merge is logged');
SELECT is_empty('SELECT * FROM crm.loyalty_check()', 'loyalty invariants hold');

-- the profile: points, the tier and what expires soon, for segments
-- ("gold members with 900+ points and no purchase in 60 days")
INSERT INTO crm."order" (contact_id, ordered_at, status, total) VALUES (9509, now() - interval '340 days', 'paid', 6000);
SELECT results_eq($$SELECT points_balance, loyalty_tier, points_expiring_30d FROM crm.contact_profile WHERE contact_id = 9509$$,
				  $$VALUES (6000::bigint, 'gold'::text, 6000::bigint)$$,
				  'crm.contact_profile: balance, tier, and the points of the lot that expires in 25 days');
SELECT is((SELECT (points_balance, loyalty_tier, points_expiring_30d)::text FROM crm.contact_profile WHERE contact_id = 9504),
		  (0, NULL, 0)::text, 'a member whose points expired: 0 points, no tier, nothing expiring');
SELECT crm.create_segment('tap gold idle', $p$loyalty_tier = 'gold' AND points_balance >= 900 AND recency_days > 60$p$) \g /dev/null
SELECT is((SELECT time_dependent FROM crm.segment WHERE name = 'tap gold idle'), true,
		  'a segment on the loyalty columns is re-evaluated in full (redemptions and expiry mark nothing dirty)');
SELECT * FROM crm.refresh_segment('tap gold idle') \g /dev/null
SELECT results_eq($$SELECT contact_id FROM crm.segment_member m JOIN crm.segment s USING (segment_id)
					 WHERE s.name = 'tap gold idle' ORDER BY 1$$,
				  $$VALUES (9506::bigint), (9509::bigint)$$, '... and finds the idle gold members (9506: gold since March)');

-- bad configuration
SELECT throws_ok($$INSERT INTO crm.loyalty_tier VALUES (951, 'bronze', 0)$$, '23514', NULL,
				 'a tier needs a positive threshold');
SELECT throws_ok($$INSERT INTO crm.loyalty_tier VALUES (951, 'platinum', 5000)$$, '23505', NULL,
				 'two tiers cannot share a threshold');
SELECT throws_ok($$UPDATE crm.loyalty_program SET tier_window = '0' WHERE program_id = 951$$, '23514', NULL,
				 'the tier window is positive');

SELECT * FROM finish();
ROLLBACK;
