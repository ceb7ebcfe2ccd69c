-- pgTAP: the loyalty programme of seed 002 (a point per dollar, 10% off for
-- 1,000 points, two partner vouchers for 5,000).  Each order earns once
-- whatever path writes it; refunds, cancellations and deletions reverse
-- exactly what it earned (in proportion for a partial refund), spent points
-- become a debt the next earning pays; redemptions are idempotent by key
-- and never overdraw; expiry is dated at the lot's expiry and idempotent;
-- the ledger is append-only; merges move points; the roles read points and
-- cannot write them.  crm.loyalty_check() (balance = ledger = lots - debt)
-- is empty after every scenario.
BEGIN;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS crm;
SET search_path = public, crm;
SELECT plan(68);

INSERT INTO crm.loyalty_program (program_id, name, points_per_unit) VALUES (901, 'Supermarket card', 1);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, discount_percent)
VALUES (911, 901, '10% off a purchase', 1000, 'discount', 10);
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner, voucher_value)
VALUES (912, 901, 'Two partner vouchers', 5000, 'voucher', 2, 'Cinema Lux', 15);
INSERT INTO crm.contact (contact_id, email) VALUES
	(9001, 'loy-a@example.com'), (9002, 'loy-b@example.com'), (9003, 'loy-c@example.com'),
	(9004, 'loy-d@example.com'), (9005, 'loy-e@example.com');

CREATE FUNCTION pg_temp.bal(c bigint) RETURNS bigint LANGUAGE sql AS
	$$ SELECT balance FROM crm.points_balance WHERE contact_id = c AND program_id = 901 $$;
CREATE FUNCTION pg_temp.debt(c bigint) RETURNS bigint LANGUAGE sql AS
	$$ SELECT debt FROM crm.points_balance WHERE contact_id = c AND program_id = 901 $$;

-- earning: once per order, whatever the path
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
VALUES (9001, 1, now() - interval '20 days', 'paid', 1234.56);
SELECT is(pg_temp.bal(9001), 1234::bigint, 'a paid order of $1,234.56 earns 1,234 points (floor)');
SELECT is((SELECT occurred_at FROM crm.points_ledger WHERE contact_id = 9001 AND order_id = 1),
		  now() - interval '20 days', 'the points are dated at the order''s time');
SELECT is((SELECT expires_at FROM crm.points_lot WHERE contact_id = 9001),
		  now() - interval '20 days' + interval '12 months', 'its lot expires 12 months after');
UPDATE crm."order" SET status = 'shipped' WHERE contact_id = 9001 AND order_id = 1;
UPDATE crm."order" SET status = 'shipped' WHERE contact_id = 9001 AND order_id = 1;
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
VALUES (9001, 1, now() - interval '20 days', 'paid', 1234.56)
ON CONFLICT (contact_id, order_id) DO UPDATE SET status = excluded.status;
SELECT is(pg_temp.bal(9001), 1234::bigint, 'status updates and a replayed upsert earn nothing more');
SELECT is((SELECT count(*) FROM crm.points_ledger WHERE contact_id = 9001 AND order_id = 1), 1::bigint,
		  'one earn entry for the order');
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total) VALUES (9001, 2, now() - interval '10 days', 'placed', 500);
SELECT is(pg_temp.bal(9001), 1234::bigint, 'a placed order earns nothing yet');
UPDATE crm."order" SET status = 'paid' WHERE contact_id = 9001 AND order_id = 2;
SELECT is(pg_temp.bal(9001), 1734::bigint, 'it earns 500 when paid');
INSERT INTO crm."order" (contact_id, order_id, status, total, currency) VALUES (9001, 3, 'paid', 800, 'EUR');
SELECT is(pg_temp.bal(9001), 1734::bigint, 'an order in another currency earns nothing in a USD programme');
SELECT is_empty('SELECT * FROM crm.loyalty_check()', 'invariants hold after earning');

-- redemption
SELECT is((SELECT points FROM crm.redeem_points(9001, 911, order_id => 1, idempotency_key => 'pos-1')), 1000::bigint,
		  'a 10% discount costs 1,000 points');
SELECT is(pg_temp.bal(9001), 734::bigint, 'the balance drops to 734');
SELECT is((SELECT jsonb_object_keys(lots) FROM crm.points_statement(9001) WHERE kind = 'redeem'),
		  (SELECT credit_id::text FROM crm.points_lot WHERE contact_id = 9001 ORDER BY expires_at LIMIT 1),
		  'the redemption drew from the soonest-expiring lot');
SELECT is((SELECT entry_id FROM crm.redeem_points(9001, 911, order_id => 1, idempotency_key => 'pos-1')),
		  (SELECT entry_id FROM crm.points_ledger WHERE contact_id = 9001 AND kind = 'redeem'),
		  'the same idempotency key returns the first redemption');
SELECT is(pg_temp.bal(9001), 734::bigint, '... and spends nothing again');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 912, idempotency_key => 'pos-1')$$, '22023', NULL,
				 'a key reused for another reward is refused');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 911, order_id => 1)$$, '55000', NULL,
				 'a second discount on one order is refused (max_discounts_per_order 1)');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 911)$$, '22023', NULL, 'a discount needs its order');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 999)$$, 'P0002', NULL, 'an unknown reward is refused');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 912)$$, '55000', NULL, 'too few points: refused');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 911, order_id => 1, idempotency_key => '')$$, '22023', NULL,
				 'an empty key is refused');
SELECT is(pg_temp.bal(9001), 734::bigint, 'refused redemptions spend nothing');
SELECT is_empty('SELECT * FROM crm.loyalty_check()', 'invariants hold after redeeming');

-- refunds: in proportion, never more than earned; spent points become a debt
UPDATE crm."order" SET refunded = 250 WHERE contact_id = 9001 AND order_id = 2;
SELECT is(pg_temp.bal(9001), 484::bigint, 'refunding $250 of $500 reverses 250 points');
UPDATE crm."order" SET refunded = 250, items = 1 WHERE contact_id = 9001 AND order_id = 2;
SELECT is(pg_temp.bal(9001), 484::bigint, 'the same refund written again reverses nothing more');
UPDATE crm."order" SET status = 'refunded', refunded = 500 WHERE contact_id = 9001 AND order_id = 2;
SELECT is(pg_temp.bal(9001), 234::bigint, 'the full refund reverses the other 250');
UPDATE crm."order" SET status = 'cancelled' WHERE contact_id = 9001 AND order_id = 2;
SELECT is((SELECT -sum(points) FROM crm.points_ledger WHERE contact_id = 9001 AND order_id = 2 AND kind = 'reverse'),
		  500::numeric, 'never more reversed than the order earned');
UPDATE crm."order" SET status = 'cancelled' WHERE contact_id = 9001 AND order_id = 1;
SELECT is(pg_temp.bal(9001), -1000::bigint, 'cancelling the order whose points were spent leaves -1,000');
SELECT is(pg_temp.debt(9001), 1000::bigint, '... a debt of 1,000');
SELECT is_empty('SELECT * FROM crm.loyalty_check()', 'invariants hold after reversals');
INSERT INTO crm."order" (contact_id, order_id, status, total) VALUES (9001, 4, 'paid', 1500);
SELECT is(pg_temp.bal(9001), 500::bigint, 'the next 1,500 points pay the debt first');
SELECT is(pg_temp.debt(9001), 0::bigint, '... no debt left');
SELECT is((SELECT remaining FROM crm.points_lot WHERE contact_id = 9001 AND credit_id =
			(SELECT entry_id FROM crm.points_ledger WHERE contact_id = 9001 AND order_id = 4)), 500::bigint,
		  'the new lot keeps 500');

-- vouchers
INSERT INTO crm."order" (contact_id, order_id, status, total) VALUES (9001, 5, 'paid', 5000);
CREATE TEMP TABLE v AS SELECT * FROM crm.redeem_points(9001, 912);
SELECT is((SELECT cardinality(vouchers) FROM v), 2, '5,000 points buy two vouchers');
SELECT is(pg_temp.bal(9001), 500::bigint, 'the balance is 500 again');
SELECT isnt((SELECT vouchers[1] FROM v), (SELECT vouchers[2] FROM v), 'each voucher has its own code');
SELECT is((SELECT partner FROM crm.use_voucher((SELECT vouchers[1] FROM v))), 'Cinema Lux', 'a voucher is used once');
SELECT throws_ok($$SELECT crm.use_voucher((SELECT vouchers[1] FROM v))$$, '55000', NULL, '... and not twice');
SELECT throws_ok($$SELECT crm.use_voucher('NO-SUCH-CODE')$$, 'P0002', NULL, 'an unknown code is refused');

-- deleting an order takes its points back
INSERT INTO crm."order" (contact_id, order_id, status, total) VALUES (9003, 1, 'paid', 300);
DELETE FROM crm."order" WHERE contact_id = 9003 AND order_id = 1;
SELECT is(pg_temp.bal(9003), 0::bigint, 'a deleted order''s points are reversed');

-- expiry, dated at the lot's expiry, idempotent
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
VALUES (9002, 1, '2025-06-01 12:00+00', 'paid', 300), (9002, 2, now() - interval '1 day', 'paid', 200);
SELECT is(crm.expire_points(now()), 300::bigint, 'the lot earned 2025-06-01 expires');
SELECT is((SELECT occurred_at FROM crm.points_ledger WHERE contact_id = 9002 AND kind = 'expire'),
		  timestamptz '2026-06-01 12:00+00', 'dated at its expiry, not when the job ran');
SELECT is(crm.expire_points(now()), 0::bigint, 'a second run expires nothing');
SELECT is(pg_temp.bal(9002), 200::bigint, 'the recent 200 points stay');
SELECT throws_ok($$SELECT crm.expire_points(now() + interval '1 day')$$, '22023', NULL, 'expiring in the future is refused');

-- the ledger is append-only; a contact with points cannot be deleted
SELECT throws_ok($$UPDATE crm.points_ledger SET points = 100000 WHERE contact_id = 9001$$, '55000', NULL,
				 'the ledger refuses UPDATE');
SELECT throws_ok($$DELETE FROM crm.points_ledger WHERE contact_id = 9001$$, '55000', NULL, '... and DELETE');
SELECT throws_ok($$TRUNCATE crm.points_draw$$, '55000', NULL, 'the draws refuse TRUNCATE');
SELECT throws_ok($$DELETE FROM crm.contact WHERE contact_id = 9002$$, '23503', NULL, 'a contact with points is not deleted');

-- merge: the points move and the balances add up
INSERT INTO crm."order" (contact_id, order_id, status, total) VALUES (9004, 41, 'paid', 1120), (9005, 51, 'paid', 1080);
SELECT * FROM crm.redeem_points(9004, 911, order_id => 41, idempotency_key => 'web-7') \g /dev/null
SELECT * FROM crm.redeem_points(9005, 911, order_id => 51, idempotency_key => 'web-7') \g /dev/null
SELECT * FROM crm.merge_contacts(9004, 9005) \g /dev/null
SELECT is(pg_temp.bal(9004), 200::bigint, 'a merge adds the dropped contact''s points');
SELECT is((SELECT count(*) FROM crm.points_ledger WHERE contact_id = 9004 AND merged_from = 9005), 2::bigint,
		  'its ledger entries moved, marked merged_from');
SELECT is((SELECT merged_from FROM crm.points_ledger WHERE contact_id = 9004 AND idempotency_key = 'web-7'), NULL::bigint,
		  'a key both contacts used stays with the kept contact''s redemption');
SELECT is_empty('SELECT * FROM crm.loyalty_check()', 'invariants hold after expiry, vouchers and the merge');

-- the monthly report: 9002's 300 points earned in June 2025 and expired in
-- June 2026, valued at a cent a point
UPDATE crm.loyalty_program SET point_value = 0.01 WHERE program_id = 901;
SELECT results_eq($$SELECT earned, expired, outstanding, liability FROM crm.loyalty_monthly
					 WHERE program_id = 901 AND month = '2025-06-01'$$,
				  $$VALUES (300::bigint, 0::bigint, 300::bigint, 3.00::numeric)$$,
				  'crm.loyalty_monthly: points earned in June 2025, outstanding and liability at its end');
SELECT results_eq($$SELECT earned, expired, outstanding, breakage FROM crm.loyalty_monthly
					 WHERE program_id = 901 AND month = '2026-06-01'$$,
				  $$VALUES (0::bigint, 300::bigint, 0::bigint, 1.0000::numeric)$$,
				  '... and their expiry in June 2026: all breakage');
SELECT is((SELECT outstanding FROM crm.loyalty_monthly WHERE program_id = 901 ORDER BY month DESC LIMIT 1),
		  (SELECT sum(balance)::bigint FROM crm.points_balance WHERE program_id = 901),
		  'the last month''s outstanding points are the sum of the balances');
SELECT is((SELECT sum(redeemed) FROM crm.loyalty_monthly WHERE program_id = 901), 8000::numeric,
		  'redemptions over the months: 1,000 + 5,000 + 2 x 1,000 (the merged contacts)');

-- the roles: a rep's orders earn and it redeems for its contacts, but it
-- cannot write points, nor see or redeem for another rep's contacts
SELECT * FROM crm.setup_roles() \g /dev/null
CREATE ROLE loy_rep NOLOGIN IN ROLE crm_sales;
GRANT loy_rep TO current_user;
INSERT INTO crm.contact (contact_id, email, owner) VALUES (9006, 'loy-f@example.com', 'loy_rep');
SET ROLE loy_rep;
INSERT INTO crm."order" (contact_id, order_id, status, total) VALUES (9006, 1, 'paid', 2000);
SELECT is(pg_temp.bal(9006), 2000::bigint, 'a rep''s order earns (the trigger writes as the ledger''s owner)');
SELECT throws_ok($$INSERT INTO crm.points_ledger (contact_id, program_id, kind, points, order_id, occurred_at)
				   VALUES (9006, 901, 'earn', 100000, 77, now())$$, '42501', NULL, 'a rep cannot mint points');
SELECT throws_ok($$SELECT * FROM crm.redeem_points(9001, 911, order_id => 4)$$, 'P0002', NULL,
				 'nor redeem for a contact it does not see');
SELECT is((SELECT balance FROM crm.redeem_points(9006, 911, order_id => 1)), 1000::bigint,
		  'it redeems for its own contact');
SELECT is((SELECT count(*) FROM crm.points_balance), 1::bigint, 'it reads only its contacts'' points');
SELECT throws_ok($$SELECT crm.expire_points()$$, '42501', NULL, 'expiry is not for reps');
RESET ROLE;
SELECT is_empty('SELECT * FROM crm.loyalty_check()', 'invariants hold after the rep''s writes');

-- the balance rows carry the foreign keys: a contact or a programme with
-- points cannot be deleted; loyalty_check finds what a key would refuse
SELECT throws_ok('DELETE FROM crm.contact WHERE contact_id = 9006', '23503', NULL,
				 'a contact with points cannot be deleted');
SELECT throws_ok('DELETE FROM crm.loyalty_program WHERE program_id = 901', '23503', NULL,
				 'nor a programme with points');
-- (each case rolled back; its problems kept in a psql variable: pgTAP's
-- own count would be rolled back with it)
SAVEPOINT orphans;
INSERT INTO crm.points_lot (contact_id, credit_id, program_id, expires_at, remaining) VALUES (9006, 987654, 901, NULL, 0);
SELECT array_agg(problem)::text AS lot_problems FROM crm.loyalty_check(ARRAY[9006]::bigint[]) \gset
ROLLBACK TO orphans;
INSERT INTO crm.points_draw (contact_id, debit_id, credit_id, points)
SELECT 9006, 987654, entry_id, 1 FROM crm.points_ledger WHERE contact_id = 9006 AND kind = 'earn';
SELECT array_agg(problem)::text AS draw_problems FROM crm.loyalty_check(ARRAY[9006]::bigint[]) \gset
ROLLBACK TO orphans;
DELETE FROM crm.points_balance WHERE contact_id = 9006;
SELECT array_agg(problem)::text AS balance_problems FROM crm.loyalty_check(ARRAY[9006]::bigint[]) \gset
ROLLBACK TO orphans;
SELECT is(:'lot_problems'::text[], ARRAY['a lot without its credit in the ledger'],
		  'loyalty_check finds a lot without its credit');
SELECT ok('a draw without its debit, credit or lot in the ledger' = ANY (:'draw_problems'::text[]), '... a draw without its debit');
SELECT ok('points without a balance row' = ANY (:'balance_problems'::text[]), '... and points without a balance row');

SELECT * FROM finish();
ROLLBACK;
