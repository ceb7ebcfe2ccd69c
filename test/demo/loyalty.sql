-- The seeds' loyalty programme (seed 002, example 4), created before the
-- real CDNOW orders are loaded (test/demo/load_cdnow.sql) so that they earn
-- as they arrive, each dated at its order: one point per dollar; 10% off a
-- purchase for 1,000 points; two partner vouchers for 5,000; silver and
-- gold tiers by points earned in a rolling 12 months.  CDNOW's orders are
-- from 1997-98: points that expired after 12 months would all be gone by
-- now, so the demo's points never expire (a programme's expiry setting).
\set ON_ERROR_STOP 1
INSERT INTO crm.loyalty_program (program_id, name, currency, points_per_unit, expiry, point_value)
VALUES (1, 'CDNOW points card', 'USD', 1, 'never', 0.01);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, discount_percent)
VALUES (1, 1, '10% off a purchase', 1000, 'discount', 10);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner, voucher_value)
VALUES (2, 1, 'Two partner vouchers (restaurant, cinema, hotel)', 5000, 'voucher', 2, 'Partner network', 25);
INSERT INTO crm.loyalty_tier (program_id, tier, qualifying_points) VALUES (1, 'silver', 250), (1, 'gold', 1000);
