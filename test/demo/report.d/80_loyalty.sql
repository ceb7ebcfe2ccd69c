\echo '== Loyalty: the real CDNOW orders through the seeds'' programme (a point per dollar, 10% off for 1,000, two vouchers for 5,000)'
SELECT count(DISTINCT l.contact_id) AS members, count(*) AS credits, sum(l.points) AS points,
	   min(l.occurred_at)::date AS first_earned, max(l.occurred_at)::date AS last_earned
  FROM crm.points_ledger l WHERE l.program_id = 1 AND l.kind = 'earn';
\echo '== Tiers as they happened (silver at 250, gold at 1,000 points in 12 months; reviewed at the end of each period)'
SELECT crm.expire_points() AS points_expired;
SELECT to_char(h.changed_at AT TIME ZONE 'UTC', 'YYYY-Q"Q"') AS quarter,
	   count(*) FILTER (WHERE h.reason = 'upgrade' AND h.to_tier = 'silver') AS to_silver,
	   count(*) FILTER (WHERE h.reason = 'upgrade' AND h.to_tier = 'gold') AS to_gold,
	   count(*) FILTER (WHERE h.reason = 'review' AND h.to_tier = 'silver') AS gold_to_silver,
	   count(*) FILTER (WHERE h.reason = 'review' AND h.to_tier IS NULL) AS tier_lost
  FROM crm.tier_history h WHERE h.program_id = 1 GROUP BY 1 ORDER BY 1;
\echo '== Members by tier at the end of 1997 and of 1998, from the tier history (event time)'
SELECT d.at::date AS at, coalesce(t.to_tier, '-') AS tier, count(*) AS members
  FROM (VALUES ('1997-12-31 23:59:59+00'::timestamptz), ('1998-12-31 23:59:59+00')) d(at)
 CROSS JOIN LATERAL (SELECT DISTINCT ON (h.contact_id) h.contact_id, h.to_tier FROM crm.tier_history h
					  WHERE h.program_id = 1 AND h.changed_at <= d.at ORDER BY h.contact_id, h.changed_at DESC, h.history_id DESC) t
 WHERE t.to_tier IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2;
\echo '== Redemptions: every member with 5,000 points takes the vouchers, every member with 1,000 the discount on its last order'
SELECT count(*) AS voucher_redemptions, sum(cardinality(r.vouchers)) AS vouchers
  FROM crm.points_balance b CROSS JOIN LATERAL crm.redeem_points(b.contact_id, 2, idempotency_key => 'demo-vouchers') r
 WHERE b.program_id = 1 AND b.balance >= 5000;
SELECT count(*) AS discount_redemptions
  FROM crm.points_balance b
 CROSS JOIN LATERAL (SELECT o.order_id FROM crm."order" o WHERE o.contact_id = b.contact_id
					  ORDER BY o.ordered_at DESC, o.order_id DESC LIMIT 1) o
 CROSS JOIN LATERAL crm.redeem_points(b.contact_id, 1, o.order_id, 'demo-discount') r
 WHERE b.program_id = 1 AND b.balance >= 1000;
\echo '== The five biggest balances, with their tier and statement length'
SELECT b.contact_id, b.balance, b.earned, b.redeemed, coalesce(b.tier, '-') AS tier,
	   (SELECT count(*) FROM crm.points_statement(b.contact_id, 1)) AS movements
  FROM crm.points_balance b WHERE b.program_id = 1 ORDER BY b.balance DESC, b.contact_id LIMIT 5;
\echo '== Liability, redemption rate and breakage per year (crm.loyalty_monthly, a cent a point)'
SELECT extract(year FROM month)::int AS year, sum(earned) AS earned, sum(redeemed) AS redeemed,
	   (array_agg(outstanding ORDER BY month DESC))[1] AS outstanding_at_end,
	   (array_agg(liability ORDER BY month DESC))[1] AS liability_at_end,
	   round(sum(redeemed) / nullif(sum(earned) - sum(reversed), 0), 4) AS redemption_rate
  FROM crm.loyalty_monthly WHERE program_id = 1 GROUP BY 1 ORDER BY 1;
\echo '== Members by tier now, and the invariants (balance = ledger = lots - debt)'
SELECT coalesce(loyalty_tier, '-') AS tier, count(*) AS members, sum(points_balance) AS points
  FROM crm.contact_profile WHERE points_balance IS NOT NULL GROUP BY 1 ORDER BY 2 DESC;
SELECT count(*) AS problems FROM crm.loyalty_check();
