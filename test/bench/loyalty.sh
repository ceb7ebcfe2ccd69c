#!/usr/bin/env bash
# Loyalty benchmarks (issue 18): what the earning trigger costs a COPY of
# 1M orders; crm.expire_points over 1M lots against one scan of them and
# against the plain SQL of the same writes; the balance read; 8 pgbench
# clients redeeming on 100 hot contacts, against a bare UPDATE-and-INSERT
# redemption, with the overspend check afterwards.
#   bash test/bench/run.sh loyalty
set -euo pipefail
source test/bench/lib.sh
N=${BENCH_ORDERS:-1000000}
C=100000
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
work=$(mktemp -d)
chmod 777 "$work"

q -v seed=7 -v contacts=$C -v activities=0 -f test/demo/generate.sql >/dev/null
q -c "TRUNCATE crm.order_line, crm.\"order\"" >/dev/null
# the seeds' programme: one point per dollar, 1,000 points for 10% off
q -c "INSERT INTO crm.loyalty_program (program_id, name, point_value) VALUES (1, 'points card', 0.01);
	  INSERT INTO crm.loyalty_reward (reward_id, program_id, name, points, kind, vouchers, partner)
	  VALUES (1, 1, 'partner voucher', 1000, 'voucher', 1, 'Cinema')" >/dev/null
# 1M paid orders of 10 to 210 dollars over the last two years (half their
# lots already due), as an import would load them
q -c "COPY (SELECT 1 + (hashint4(g) & 2147483647) % $C,
			now() - ((hashint4(g * 7) & 2147483647) % 63072000) * interval '1 second', 'paid',
			10 + ((hashint4(g * 13) & 2147483647) % 20000) / 100.0
	  FROM generate_series(1, $N) g) TO '$work/orders.csv' (FORMAT csv)"
chmod a+r "$work/orders.csv"
reset() { q -c "ALTER TABLE crm.points_ledger DISABLE TRIGGER points_no_truncate;
				ALTER TABLE crm.points_draw DISABLE TRIGGER points_no_truncate;
				TRUNCATE crm.points_draw, crm.points_lot, crm.points_balance, crm.loyalty_voucher, crm.points_ledger, crm.order_line, crm.\"order\";
				ALTER TABLE crm.points_ledger ENABLE TRIGGER points_no_truncate;
				ALTER TABLE crm.points_draw ENABLE TRIGGER points_no_truncate" -c CHECKPOINT >/dev/null; }
copy() { ms "COPY crm.\"order\" (contact_id, ordered_at, status, total) FROM '$work/orders.csv' (FORMAT csv)"; }
loyalty_triggers() {
	q -c "ALTER TABLE crm.\"order\" $1 TRIGGER loyalty_earn; ALTER TABLE crm.\"order\" $1 TRIGGER loyalty_update;
		  ALTER TABLE crm.\"order\" $1 TRIGGER loyalty_delete" >/dev/null
}

# 1. COPY with the loyalty triggers off and on (crm's other order triggers
# on in both), and with every user trigger off (the floor)
q -c "ALTER TABLE crm.\"order\" DISABLE TRIGGER USER" >/dev/null
reset; floor=$(copy)
q -c "ALTER TABLE crm.\"order\" ENABLE TRIGGER USER" >/dev/null
loyalty_triggers DISABLE
reset; off=$(copy)
loyalty_triggers ENABLE
reset; on=$(copy)
read -r earned lots <<<"$(q -c "SELECT count(*), (SELECT count(*) FROM crm.points_lot) FROM crm.points_ledger WHERE kind = 'earn'" | tr '|' ' ')"
# the floor of what earning must write: the same credits, lots and
# balances by plain INSERTs into copies of the tables (same indexes), after
# the orders are in
q -c "CREATE TABLE bench_ledger (LIKE crm.points_ledger INCLUDING ALL);
	  CREATE TABLE bench_lot (LIKE crm.points_lot INCLUDING ALL);
	  CREATE TABLE bench_balance (LIKE crm.points_balance INCLUDING ALL)" -c CHECKPOINT >/dev/null
writes=$(ms "INSERT INTO bench_ledger (entry_id, contact_id, program_id, kind, points, order_id, occurred_at, expires_at)
	SELECT nextval('crm.points_ledger_entry_id_seq'), contact_id, 1, 'earn', floor(total)::bigint, order_id,
		   least(ordered_at, now()), least(ordered_at, now()) + interval '12 months'
	  FROM crm.\"order\" ORDER BY contact_id, order_id;
	INSERT INTO bench_lot SELECT contact_id, entry_id, program_id, expires_at, points FROM bench_ledger;
	INSERT INTO bench_balance (contact_id, program_id, balance, earned, last_earned_at)
	SELECT contact_id, program_id, sum(points), sum(points), max(occurred_at) FROM bench_ledger GROUP BY 1, 2")
q -c "DROP TABLE bench_ledger, bench_lot, bench_balance" >/dev/null
floor_writes=$(awk "BEGIN {printf \"%.1f\", $off + $writes}")
cat <<MD
## Earning in the transaction of the order: COPY of $N paid orders

$N orders of 100,000 contacts, dated over two years, one COPY; tables
truncated and checkpointed before each run. The programme is the seeds'
(one point per dollar); each order earns one lot.

| COPY of $N orders | ms | / loyalty off |
|---|---:|---:|
| every crm trigger off (the bare COPY, foreign key checked) | $floor | $(ratio "$floor" "$off") |
| loyalty triggers off (lifecycle, segments, merge redirect on) | $off | 1.00 |
| loyalty triggers on | $on | $(ratio "$on" "$off") |
| the floor: loyalty off, then plain INSERTs of the same credits, lots and balances ($writes ms) | $floor_writes | $(ratio "$floor_writes" "$off") |

- Earned: $earned ledger credits, $lots lots; the trigger's cost over the floor of its writes: $(awk "BEGIN {printf \"%.1f\", $on - $off - $writes}") ms.
- Target: at most 1.3x with the trigger on against off: $(awk "BEGIN {print ($on / $off <= 1.3) ? \"met\" : \"NOT met\"}").

MD

# 2. expire_points over the lots: half are due (earned more than 12 months
# ago).  One scan of the lots is the floor of finding them; the plain SQL
# of the same writes (a debit, a draw, the lot emptied, the balance) is
# what a user would write instead, without the lock of each balance.
q -c "VACUUM ANALYZE crm.points_lot" -c "VACUUM ANALYZE crm.points_balance" -c "VACUUM ANALYZE crm.points_ledger" >/dev/null
due=$(q -c "SELECT count(*) FROM crm.points_lot WHERE remaining > 0 AND expires_at <= now()")
total_lots=$(q -c "SELECT count(*) FROM crm.points_lot")
scan=$(best 3 "SET max_parallel_workers_per_gather = 0; SELECT count(*), sum(remaining) FROM crm.points_lot WHERE remaining > 0 AND expires_at <= now()")
none=$(best 3 "SELECT crm.expire_points(now() - interval '3 years')")
q -c "CREATE TABLE bench_lot AS SELECT * FROM crm.points_lot;
	  CREATE TABLE bench_balance AS SELECT * FROM crm.points_balance;
	  CREATE TABLE bench_ledger (LIKE crm.points_ledger INCLUDING DEFAULTS);
	  CREATE TABLE bench_draw (LIKE crm.points_draw INCLUDING DEFAULTS);
	  ALTER TABLE bench_lot ADD PRIMARY KEY (contact_id, credit_id);
	  ALTER TABLE bench_balance ADD PRIMARY KEY (contact_id, program_id);
	  ALTER TABLE bench_ledger ADD PRIMARY KEY (contact_id, entry_id);
	  ALTER TABLE bench_draw ADD PRIMARY KEY (contact_id, debit_id, credit_id);
	  CREATE INDEX ON bench_lot (expires_at) WHERE remaining > 0" \
	-c "VACUUM ANALYZE bench_lot" -c "VACUUM ANALYZE bench_balance" -c CHECKPOINT >/dev/null
plain=$(ms "WITH due AS MATERIALIZED (
	SELECT l.contact_id, l.credit_id, l.program_id, l.remaining, l.expires_at,
		   nextval('crm.points_ledger_entry_id_seq') AS entry_id
	  FROM bench_lot l WHERE l.remaining > 0 AND l.expires_at <= now()),
 d AS (INSERT INTO bench_ledger (contact_id, entry_id, program_id, kind, points, occurred_at)
	   SELECT contact_id, entry_id, program_id, 'expire', -remaining, expires_at FROM due),
 w AS (INSERT INTO bench_draw (contact_id, debit_id, credit_id, points)
	   SELECT contact_id, entry_id, credit_id, remaining FROM due),
 e AS (UPDATE bench_lot l SET remaining = 0 FROM due WHERE (l.contact_id, l.credit_id) = (due.contact_id, due.credit_id))
UPDATE bench_balance b SET balance = b.balance - s.points, expired = b.expired + s.points
  FROM (SELECT contact_id, program_id, sum(remaining) AS points FROM due GROUP BY 1, 2) s
 WHERE (b.contact_id, b.program_id) = (s.contact_id, s.program_id)")
q -c "DROP TABLE bench_lot, bench_balance, bench_ledger, bench_draw" -c CHECKPOINT >/dev/null
expire=$(ms "SELECT crm.expire_points()")
again=$(best 3 "SELECT crm.expire_points()")
problems=$(q -c "SELECT count(*) FROM crm.loyalty_check()")
left=$(q -c "SELECT count(*) FROM crm.points_lot WHERE remaining > 0 AND expires_at <= now()")
cat <<MD
## crm.expire_points over $total_lots lots, $due of them due

| | ms | / one scan |
|---|---:|---:|
| one scan of the lots, counting the due ones (parallel query off) | $scan | 1.00 |
| \`crm.expire_points()\` when nothing is due (a date before every lot) | $none | $(ratio "$none" "$scan") |
| plain SQL of the same writes on copies of the tables (what a user would write; no locks) | $plain | $(ratio "$plain" "$scan") |
| \`crm.expire_points()\`: $due lots expired | $expire | $(ratio "$expire" "$scan") |
| \`crm.expire_points()\` again (idempotent: nothing left) | $again | $(ratio "$again" "$scan") |

- Afterwards: $left due lots left, $problems violations in \`crm.loyalty_check()\`.
- Against the plain SQL of the same writes: $(ratio "$expire" "$plain")x.
- Target: at most 2x one scan of the lots. Nothing due or already expired: $(awk "BEGIN {print ($none / $scan <= 2 && $again / $scan <= 2) ? \"met\" : \"NOT met\"}"). $due lots expired: $(awk "BEGIN {print ($expire / $scan <= 2) ? \"met\" : \"NOT met\"}").

MD

# 3. the balance read: one row, whatever the ledger holds
big=$(q -c "SELECT contact_id FROM crm.points_ledger GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
bign=$(q -c "SELECT count(*) FROM crm.points_ledger WHERE contact_id = $big")
small=$(q -c "SELECT contact_id FROM crm.points_ledger GROUP BY 1 ORDER BY count(*), 1 LIMIT 1")
smalln=$(q -c "SELECT count(*) FROM crm.points_ledger WHERE contact_id = $small")
read_loop() { echo "DO \$\$ DECLARE b bigint; BEGIN FOR i IN 1..20000 LOOP
	SELECT x.balance INTO b FROM crm.points_balance x WHERE x.contact_id = $1 AND x.program_id = 1; END LOOP; END \$\$"; }
sum_loop() { echo "DO \$\$ DECLARE b bigint; BEGIN FOR i IN 1..20000 LOOP
	SELECT sum(x.points) INTO b FROM crm.points_ledger x WHERE x.contact_id = $1 AND x.program_id = 1; END LOOP; END \$\$"; }
rb=$(best 3 "$(read_loop "$big")")
rs=$(best 3 "$(read_loop "$small")")
sb=$(best 3 "$(sum_loop "$big")")
ss=$(best 3 "$(sum_loop "$small")")
us() { awk "BEGIN {printf \"%.1f\", 1000 * $1 / 20000}"; }
cat <<MD
## The balance read (20,000 reads in a PL/pgSQL loop)

| contact | ledger rows | \`crm.points_balance\` read µs | summing the ledger instead µs |
|---|---:|---:|---:|
| the fewest entries | $smalln | $(us "$rs") | $(us "$ss") |
| the most entries | $bign | $(us "$rb") | $(us "$sb") |

MD

# 4. redemptions: 8 clients on 100 hot contacts, each with 30,000 points
# (30 redemptions of 1,000); a run asks for about twice what there is, so
# most late calls are refused for the balance
reset
q -c "INSERT INTO crm.\"order\" (contact_id, status, total) SELECT c, 'paid', 10000 FROM generate_series(1, 100) c, generate_series(1, 3)" >/dev/null
cat > "$work/redeem.sql" <<'PGB'
\set c random(1, 100)
DO $$
BEGIN
	PERFORM crm.redeem_points(:c, 1);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
	NULL;
END $$;
PGB
cat > "$work/bare.sql" <<'PGB'
\set c random(1, 100)
DO $$
BEGIN
	UPDATE bench_balance SET balance = balance - 1000 WHERE contact_id = :c AND balance >= 1000;
	IF FOUND THEN
		INSERT INTO bench_ledger (contact_id, points) VALUES (:c, -1000);
	END IF;
END $$;
PGB
q -c "CREATE TABLE bench_balance (contact_id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0));
	  CREATE TABLE bench_ledger (contact_id bigint NOT NULL, entry_id bigint GENERATED ALWAYS AS IDENTITY, points bigint NOT NULL,
								 at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (contact_id, entry_id));
	  INSERT INTO bench_balance SELECT c, 30000 FROM generate_series(1, 100) c" -c CHECKPOINT >/dev/null
tx=6000
pgb() { pgbench -n -c 8 -j 2 -t $((tx / 8)) -f "$1" 2>&1; }
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$1" | head -1; }
bare_out=$(pgb "$work/bare.sql")
red_out=$(pgb "$work/redeem.sql")
bare_tps=$(tps "$bare_out")
red_tps=$(tps "$red_out")
read -r redeemed negative over <<<"$(q -c "SELECT count(*) FILTER (WHERE kind = 'redeem'),
	(SELECT count(*) FROM crm.points_balance WHERE balance < 0),
	(SELECT count(*) FROM (SELECT contact_id FROM crm.points_ledger GROUP BY 1
							HAVING -sum(points) FILTER (WHERE kind = 'redeem') > sum(points) FILTER (WHERE kind = 'earn')) s)
	FROM crm.points_ledger" | tr '|' ' ')"
problems=$(q -c "SELECT count(*) FROM crm.loyalty_check()")
bare_redeemed=$(q -c "SELECT count(*) FROM bench_ledger")
cat <<MD
## Redemptions: 8 pgbench clients, 100 hot contacts, $tx calls

Each contact holds 30,000 points (three lots); a redemption takes 1,000 and
writes a voucher, so 3,000 calls can succeed and the rest are refused for
the balance (caught in the script, counted as done).

| | tps | redemptions written |
|---|---:|---:|
| bare SQL: \`UPDATE balance ... WHERE balance >= 1000\` and one ledger INSERT (no lots, no voucher) | $bare_tps | $bare_redeemed |
| \`crm.redeem_points\` (balance lock, lots drawn soonest-expiring first, voucher) | $red_tps | $redeemed |

- Overspends: $negative negative balances, $over contacts that redeemed more than they earned, $problems violations in \`crm.loyalty_check()\`.

MD
rm -rf "$work"
