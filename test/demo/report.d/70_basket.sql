\echo '== Cross-sell: association rules over the demo orders (its products are drawn at random, so lifts stay near 1)'
SELECT count(*) AS orders_with_lines FROM (SELECT DISTINCT contact_id, order_id FROM crm.order_line) o;
SELECT crm.refresh_product_rules(0.002, 0.02, max_len => 3, min_len => 1) AS rules_kept;
SELECT lhs_names, rhs_name, count, round(support::numeric, 4) AS support, round(confidence::numeric, 3) AS confidence,
       round(lift::numeric, 2) AS lift
  FROM crm.product_rules ORDER BY lift DESC, count DESC LIMIT 5;
\echo '== Next best products of three demo customers who bought a product some rule starts from, with their reasons'
SELECT c.contact_id, r.product_id, p.name, round(r.score::numeric, 3) AS score, r.reason
  FROM (SELECT DISTINCT l.contact_id FROM crm.order_line l
		 WHERE l.product_id IN (SELECT unnest(lhs) FROM crm.product_rule) ORDER BY l.contact_id LIMIT 3) c
 CROSS JOIN LATERAL crm.recommend_for_contact(c.contact_id, 2) r
  JOIN crm.product p ON p.product_id = r.product_id
 ORDER BY c.contact_id, r.score DESC;
