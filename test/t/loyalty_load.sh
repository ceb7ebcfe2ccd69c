#!/usr/bin/env bash
# TAP: the loyalty ledger under concurrent mixed load, 8 pgbench clients on
# 30 contacts: orders that earn at once or when paid later (some dated more
# than a year back, so their lots are due), partial and full refunds,
# cancellations, deletions, redemptions with idempotency keys that collide
# (replays, and a key reused for another reward), expiry runs.  Deadlocks
# are retried (--max-tries); a refused redemption (too few points, key
# reused) is caught in the script.  Afterwards: crm.loyalty_check() finds
# nothing (balance = ledger = lots - debt; lots = credits - draws; no debit
# overdrawn); every order's reversals are what its refunds call for, never
# more; every redemption wrote its reward's vouchers; no key spent twice.
set -uo pipefail
db=crm_loyalty_load$$
work=$(mktemp -d)
clients=8 per_client=250
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
ok() {
	if [ "$3" -eq 0 ]; then echo "ok $1 - $2"; else echo "not ok $1 - $2"; [ -n "${4:-}" ] && echo "$4" | sed 's/^/# /'; fi
}
echo "1..7"
createdb "$db"
q <<'SQL' >/dev/null || { echo "Bail out! could not set up the programme"; exit 1; }
CREATE EXTENSION crm;
INSERT INTO crm.loyalty_program (program_id, name) VALUES (1, 'load card');
INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner) VALUES
	(1, 1, 'one voucher', 150, 'voucher', 1, 'Load Cafe'),
	(2, 1, 'two vouchers', 400, 'voucher', 2, 'Load Cinema');
INSERT INTO crm.contact (contact_id, email) SELECT g, 'load' || g || '@example.com' FROM generate_series(1, 30) g;
SQL

cat > "$work/order.sql" <<'PGB'
\set c random(1, 30)
\set t random(1000, 40000)
\set d random(0, 500)
\set s random(1, 3)
INSERT INTO crm."order" (contact_id, ordered_at, status, total)
VALUES (:c, now() - :d * interval '1 day', (ARRAY['placed', 'paid', 'shipped'])[:s], :t / 100.0);
PGB
cat > "$work/pay.sql" <<'PGB'
\set c random(1, 30)
UPDATE crm."order" SET status = 'paid'
 WHERE (contact_id, order_id) IN (SELECT contact_id, order_id FROM crm."order"
								   WHERE contact_id = :c AND status = 'placed' ORDER BY order_id LIMIT 1);
PGB
cat > "$work/refund.sql" <<'PGB'
\set c random(1, 30)
\set part random(1, 4)
UPDATE crm."order" SET refunded = least(total, refunded + round(total * :part / 4.0, 2)),
	   status = CASE WHEN refunded + round(total * :part / 4.0, 2) >= total THEN 'refunded' ELSE status END
 WHERE (contact_id, order_id) IN (SELECT contact_id, order_id FROM crm."order"
								   WHERE contact_id = :c AND status IN ('paid', 'shipped') ORDER BY random() LIMIT 1);
PGB
cat > "$work/cancel.sql" <<'PGB'
\set c random(1, 30)
UPDATE crm."order" SET status = 'cancelled'
 WHERE (contact_id, order_id) IN (SELECT contact_id, order_id FROM crm."order"
								   WHERE contact_id = :c AND status <> 'cancelled' ORDER BY random() LIMIT 1);
PGB
cat > "$work/delete.sql" <<'PGB'
\set c random(1, 30)
DELETE FROM crm."order"
 WHERE (contact_id, order_id) IN (SELECT contact_id, order_id FROM crm."order"
								   WHERE contact_id = :c ORDER BY random() LIMIT 1);
PGB
# keys collide on purpose: the same key again is a replay, the same key for
# the other reward is refused
cat > "$work/redeem.sql" <<'PGB'
\set c random(1, 30)
\set r random(1, 2)
\set k random(1, 40)
DO $$
BEGIN
	PERFORM crm.redeem_points(:c, :r, idempotency_key => 'till-' || :k);
EXCEPTION WHEN object_not_in_prerequisite_state OR invalid_parameter_value THEN
	NULL;
END $$;
PGB
cat > "$work/expire.sql" <<'PGB'
SELECT crm.expire_points();
PGB

total=$((clients * per_client))
pgbench -n -c $clients -j 2 -t $per_client --max-tries=20 \
	-f "$work/order.sql@30" -f "$work/pay.sql@8" -f "$work/refund.sql@8" -f "$work/cancel.sql@3" \
	-f "$work/delete.sql@2" -f "$work/redeem.sql@25" -f "$work/expire.sql@2" "$db" > "$work/pgbench.out" 2>&1
rc=$?
out=$(cat "$work/pgbench.out")
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/.*/\1/p' <<<"$out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
retried=$(sed -n 's/^number of transactions retried: \([0-9]*\).*/\1/p' <<<"$out")
[ "$rc" -eq 0 ] && [ "${processed:-0}" = "$total" ] && [ "${failed:-x}" = "0" ]
ok 1 "$clients clients x $per_client transactions: none aborted or failed (${retried:-?} deadlocks retried)" $? \
	"$(grep -iv '^ *-\|^SQL script\|^latency\|^initial\|^tps\|^transaction type\|^scaling\|^query mode\|^number of \(clients\|threads\)\|^maximum number' <<<"$out" | head -30)"

counts=$(q -c "SELECT (SELECT count(*) FILTER (WHERE kind = 'earn') || ' earned, ' || count(*) FILTER (WHERE kind = 'reverse')
						|| ' reversals, ' || count(*) FILTER (WHERE kind = 'redeem') || ' redemptions, '
						|| count(*) FILTER (WHERE kind = 'expire') || ' expiries' FROM crm.points_ledger),
					  (SELECT count(*) FROM crm.points_balance WHERE debt > 0) || ' in debt'")
echo "# $counts"
[ "$(q -c "SELECT count(DISTINCT kind) FROM crm.points_ledger")" = 4 ]
ok 2 "the load earned, reversed, redeemed and expired points ($counts)" $?

problems=$(q -c "SELECT string_agg(contact_id || ': ' || problem, '; ') FROM crm.loyalty_check()")
[ -z "$problems" ]
ok 3 "crm.loyalty_check(): balance = ledger = lots - debt, lots = credits - draws, no debit overdrawn" $? "$problems"

# per earned order: its reversals are what its refunds call for (all of it
# when cancelled, refunded or deleted, in proportion for a partial refund),
# less what expired from its lot first; never more
bad=$(q <<'SQL'
WITH e AS (
	SELECT l.contact_id, l.order_id, l.entry_id, l.points,
		   CASE WHEN o.order_id IS NULL OR o.status IN ('cancelled', 'refunded') OR o.refunded >= o.total THEN l.points
				ELSE floor(l.points * o.refunded / o.total)::bigint END AS target,
		   coalesce((SELECT -sum(r.points) FROM crm.points_ledger r
					  WHERE r.contact_id = l.contact_id AND r.order_id = l.order_id AND r.kind = 'reverse'), 0) AS reversed,
		   coalesce((SELECT sum(d.points) FROM crm.points_draw d JOIN crm.points_ledger x
						 ON x.contact_id = d.contact_id AND x.entry_id = d.debit_id AND x.kind = 'expire'
					  WHERE d.contact_id = l.contact_id AND d.credit_id = l.entry_id), 0) AS expired
	  FROM crm.points_ledger l
	  LEFT JOIN crm."order" o ON o.contact_id = l.contact_id AND o.order_id = l.order_id
	 WHERE l.kind = 'earn')
SELECT string_agg(format('order %s/%s earned %s, should reverse %s, reversed %s, expired %s',
						 contact_id, order_id, points, target, reversed, expired), '; ')
  FROM e WHERE reversed > target OR reversed < least(target, points - expired)
SQL
)
[ -z "$bad" ]
ok 4 "every order's reversals are what its refunds call for, never more" $? "$bad"

bad=$(q -c "SELECT string_agg(o.contact_id || '/' || o.order_id, ', ') FROM crm.\"order\" o
			 WHERE o.status IN ('paid', 'shipped') AND floor(o.total) >= 1
			   AND NOT EXISTS (SELECT 1 FROM crm.points_ledger l WHERE l.contact_id = o.contact_id
								  AND l.order_id = o.order_id AND l.kind = 'earn')")
[ -z "$bad" ]
ok 5 "every paid or shipped order earned" $? "$bad"

bad=$(q -c "SELECT string_agg(l.contact_id || '/' || l.entry_id, ', ') FROM crm.points_ledger l
			  JOIN crm.loyalty_reward r ON r.reward_id = l.reward_id
			 WHERE l.kind = 'redeem' AND (l.points <> -r.points OR r.vouchers <> (
				   SELECT count(*) FROM crm.loyalty_voucher v WHERE v.contact_id = l.contact_id AND v.redemption_id = l.entry_id))")
[ -z "$bad" ]
ok 6 "every redemption cost its reward's points and wrote its vouchers" $? "$bad"

bad=$(q -c "SELECT string_agg(contact_id || ':' || idempotency_key, ', ') FROM (
			  SELECT contact_id, idempotency_key FROM crm.points_ledger WHERE idempotency_key IS NOT NULL
			   GROUP BY 1, 2 HAVING count(*) > 1) x")
[ -z "$bad" ] && [ "$(q -c "SELECT count(*) FROM crm.points_ledger WHERE kind = 'redeem' AND idempotency_key IS NULL")" = 0 ]
ok 7 "no idempotency key spent twice" $? "$bad"

dropdb "$db"
rm -rf "$work"
