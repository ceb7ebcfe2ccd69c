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

# At scale: 100,000 contacts, 300,000 orders, about 1,000,000 order lines over
# 10,000 products (popularity skewed, and half of the later lines of an
# order drawn from the first line's "partners", so there are rules to find)
q <<'SQL' >/dev/null
DELETE FROM crm.order_line; DELETE FROM crm."order"; DELETE FROM crm.contact;
INSERT INTO crm.product (sku, name, category, price)
SELECT 'scale-' || i, 'product ' || i, 'c' || (i % 50), 1 FROM generate_series(1, 10000) i;
CREATE TABLE public.scale_product AS SELECT row_number() OVER (ORDER BY product_id) AS n, product_id FROM crm.product WHERE sku LIKE 'scale-%';
SELECT setseed(0.17);
INSERT INTO crm.contact (contact_id, email) SELECT i, 'scale' || i || '@scale.example' FROM generate_series(1, 100000) i;
INSERT INTO crm."order" (contact_id, order_id, ordered_at, status, total)
SELECT c, o, timestamptz '2025-01-01 00:00+00' + (c * 3 + o) * interval '1 minute', 'paid', 0
  FROM generate_series(1, 100000) c, generate_series(1, 3) o;
CREATE TABLE public.scale_first AS
SELECT c, o, 1 + floor(9999 * power(random(), 3))::int AS first, 1 + floor(random() * 6)::int AS lines
  FROM generate_series(1, 100000) c, generate_series(1, 3) o;
INSERT INTO crm.order_line (contact_id, order_id, line_no, product_id, unit_price)
SELECT f.c, f.o, l, p.product_id, 1
  FROM public.scale_first f, generate_series(1, f.lines) l,
	   LATERAL (SELECT CASE WHEN l = 1 THEN f.first
							WHEN random() < 0.5 THEN 1 + (f.first * (7 + l) + l) % 10000
							ELSE 1 + floor(9999 * power(random(), 3))::int END AS n) x
  JOIN public.scale_product p ON p.n = x.n;
VACUUM ANALYZE crm.order_line, crm."order", crm.contact;
SQL
lines=$(q -c "SELECT count(*) FROM crm.order_line")
scale_floor=$(best 3 "SELECT count(*) FROM crm.order_line l JOIN crm.\"order\" o USING (contact_id, order_id) WHERE o.status NOT IN ('cancelled', 'refunded')")
S=${BENCH_BASKET_SUPPORT:-0.0002}
C=${BENCH_BASKET_CONFIDENCE:-0.05}
nrules=$(q -c "SELECT count(*) FROM crm.association_rules($S, $C, max_len => 3)")
crm_all=$(best 3 "SELECT count(*) FROM crm.association_rules($S, $C, max_len => 3)")
npairs=$(q -c "SELECT count(*) FROM crm.association_rules($S, $C, max_len => 2)")
crm_pairs=$(best 3 "SELECT count(*) FROM crm.association_rules($S, $C, max_len => 2)")
pairs_sql_scale=$(best 1 "WITH b AS (SELECT DISTINCT l.contact_id, l.order_id, l.product_id FROM crm.order_line l JOIN crm.\"order\" o USING (contact_id, order_id)
			WHERE o.status NOT IN ('cancelled', 'refunded')),
	n AS (SELECT count(*)::float8 AS n FROM (SELECT DISTINCT contact_id, order_id FROM b) x),
	i AS (SELECT product_id, count(*) AS c FROM b GROUP BY 1 HAVING count(*) >= ceil($S * (SELECT n FROM n))),
	p AS (SELECT x.product_id AS a, y.product_id AS c, count(*) AS k FROM b x JOIN b y USING (contact_id, order_id)
			JOIN i ON i.product_id = x.product_id JOIN i i2 ON i2.product_id = y.product_id
		   WHERE x.product_id <> y.product_id GROUP BY 1, 2)
	SELECT count(*) FROM p JOIN i ON i.product_id = p.a WHERE p.k >= ceil($S * (SELECT n FROM n)) AND p.k::float8 / i.c >= $C")
triples_sql=$(psql -X -q -At -c "SET statement_timeout = '300s'" -c '\timing on' -c "WITH b AS (SELECT DISTINCT l.contact_id, l.order_id, l.product_id FROM crm.order_line l JOIN crm.\"order\" o USING (contact_id, order_id)
			WHERE o.status NOT IN ('cancelled', 'refunded')),
	n AS (SELECT ceil($S * count(*)) AS m FROM (SELECT DISTINCT contact_id, order_id FROM b) x),
	i AS (SELECT product_id FROM b GROUP BY 1 HAVING count(*) >= (SELECT m FROM n)),
	bi AS (SELECT b.* FROM b JOIN i USING (product_id))
	SELECT count(*) FROM (SELECT x.product_id, y.product_id, z.product_id FROM bi x JOIN bi y USING (contact_id, order_id) JOIN bi z USING (contact_id, order_id)
		   WHERE x.product_id < y.product_id AND y.product_id < z.product_id GROUP BY 1, 2, 3 HAVING count(*) >= (SELECT m FROM n)) t" 2>&1 \
	| awk '/^Time: / {t = $2} /canceling statement/ {c = 1} END {if (c) print "timeout"; else printf "%.1f", t}')
q -c "SELECT crm.refresh_product_rules($S, $C, max_len => 3, min_len => 1)" >/dev/null
rec=$(psql -X -q -At -c '\timing on' -c "SELECT count(*) FROM generate_series(1, 500) g, LATERAL crm.recommend_for_contact(g * 199, 5) r" \
	| awk '/^Time: / {printf "%.2f", $2 / 500}')
cat <<MD

At scale: 100,000 contacts, 300,000 orders, $lines order lines over 10,000 products (popularity
skewed, half of an order's later lines drawn from its first product's partners); min_support $S,
min_confidence $C.

| call | result | ms | ratio to the floor |
|---|---:|---:|---:|
| floor: one scan of the order lines the miner reads | $lines lines | $scale_floor | 1.00 |
| crm.association_rules($S, $C, max_len => 3) | $nrules rules | $crm_all | $(ratio "$crm_all" "$scale_floor") |
| crm.association_rules($S, $C, max_len => 2) (pairs) | $npairs rules | $crm_pairs | $(ratio "$crm_pairs" "$scale_floor") |
| plain SQL, pairs (self-join per order, one run) | $npairs rules | $pairs_sql_scale | $(ratio "$pairs_sql_scale" "$scale_floor") (crm $(ratio "$pairs_sql_scale" "$crm_pairs")x faster) |
| plain SQL, frequent triples only (two self-joins, one run, 300 s limit) | | $triples_sql | |
| crm.recommend_for_contact(id, 5), mean over 500 contacts | | $rec per contact | |
MD
