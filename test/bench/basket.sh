#!/usr/bin/env bash
# Benchmark: market-basket mining on Groceries (9,835 baskets, 169 items),
# crm.association_rules at each of REFERENCE.md's settings against arules'
# C apriori on this machine (REFERENCE.md's speed anchor), against the SQL a
# user would write for pairs (a self-join of the order lines), and against
# the floor: one scan of the order lines the miner reads.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q <<'SQL' >/dev/null
CREATE TEMP TABLE g (tid int, item text);
\copy g FROM 'test/data/groceries/groceries.csv' (FORMAT csv, HEADER)
CREATE TABLE public.g AS SELECT * FROM g;
SQL
q <<'SQL' >/dev/null
INSERT INTO crm.product (sku, name) SELECT 'grocery-' || row_number() OVER (ORDER BY item), item FROM (SELECT DISTINCT item FROM public.g) s;
INSERT INTO crm.contact (contact_id, email) SELECT 920000 + i, 'g' || i || '@groceries.example' FROM generate_series(0, 99) i;
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
SELECT 920000 + tid % 100, tid, timestamptz '2024-01-01 00:00+00' + tid * interval '1 minute', 'paid', 0 FROM (SELECT DISTINCT tid FROM public.g) s;
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, unit_price)
SELECT 920000 + g.tid % 100, g.tid, row_number() OVER (PARTITION BY g.tid ORDER BY p.product_id), p.product_id, 1
  FROM public.g g JOIN crm.product p ON p.name = g.item;
VACUUM ANALYZE crm.order_line, crm."order";
SQL

floor=$(best 5 "SELECT count(*) FROM crm.order_line l JOIN crm.\"order\" o USING (contact_id, order_id) WHERE o.status NOT IN ('cancelled', 'refunded')")
# pairs in plain SQL: what a user writes for the item-to-item rules (supp 0.01, conf 0.1)
pairs_sql=$(best 3 "WITH b AS (SELECT DISTINCT l.order_id, l.product_id FROM crm.order_line l JOIN crm.\"order\" o USING (contact_id, order_id)
			WHERE o.status NOT IN ('cancelled', 'refunded')),
	n AS (SELECT count(DISTINCT order_id)::float8 AS n FROM b),
	i AS (SELECT product_id, count(*) AS c FROM b GROUP BY 1 HAVING count(*) >= ceil(0.01 * (SELECT n FROM n))),
	p AS (SELECT x.product_id AS a, y.product_id AS c, count(*) AS k FROM b x JOIN b y ON x.order_id = y.order_id AND x.product_id <> y.product_id
			JOIN i ON i.product_id = x.product_id JOIN i i2 ON i2.product_id = y.product_id GROUP BY 1, 2)
	SELECT count(*) FROM p JOIN i ON i.product_id = p.a WHERE p.k >= ceil(0.01 * (SELECT n FROM n)) AND p.k::float8 / i.c >= 0.1")
pairs_crm=$(best 3 "SELECT count(*) FROM crm.association_rules(0.01, 0.1, max_len => 2, min_len => 2)")

cat <<MD
Groceries (REFERENCE.md): 9,835 orders, 43,367 order lines, 169 products, loaded into
\`crm.order\` / \`crm.order_line\`. Best of 3 runs per call, \`count(*)\` over the function (the
rules are made and returned as a set, not stored). arules' times are REFERENCE.md's (its C
apriori, one thread, this 2-core machine, R start-up and data loading excluded; crm's include
reading the order lines through SPI).

| call | rules | crm ms | arules ms | crm / arules |
|---|---:|---:|---:|---:|
MD
while read -r s c ref; do
	n=$(q -c "SELECT count(*) FROM crm.association_rules($s, $c, min_len => 1)")
	t=$(best 3 "SELECT count(*) FROM crm.association_rules($s, $c, min_len => 1)")
	echo "| association_rules($s, $c, min_len => 1) | $n | $t | $ref | $(ratio "$t" "$ref") |"
done <<'SETTINGS'
0.001 0.8 30
0.001 0.5 28
0.005 0.5 19
0.01 0.5 20
0.01 0.1 19
0.02 0.1 15
0.0005 0.5 92
0.0003 0.5 843
SETTINGS
fi=$(best 3 "SELECT count(*) FROM crm.frequent_itemsets(0.001)")
echo "| frequent_itemsets(0.001) | $(q -c "SELECT count(*) FROM crm.frequent_itemsets(0.001)") itemsets | $fi | 34 (apriori), 41 (eclat) | $(ratio "$fi" 34) |"
cat <<MD

| item-to-item rules (supp 0.01, conf 0.1, pairs only) | ms | ratio |
|---|---:|---:|
| floor: one scan of the order lines the miner reads (join with the orders, status filter) | $floor | 1.00 |
| crm.association_rules(0.01, 0.1, max_len => 2, min_len => 2) | $pairs_crm | $(ratio "$pairs_crm" "$floor") |
| plain SQL: self-join of the order lines per order, counts, confidence | $pairs_sql | $(ratio "$pairs_sql" "$floor") (crm $(ratio "$pairs_sql" "$pairs_crm")x faster) |
MD
