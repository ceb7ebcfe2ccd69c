
-- ---------------------------------------------------------------------------
-- Extension phase: market-basket mining over the order lines (src/basket.c).
-- Definitions as R arules': support = count / baskets, an itemset frequent
-- when count >= ceil(min_support x baskets), one product on the right, and
-- max_len bounding the whole rule.
-- ---------------------------------------------------------------------------

CREATE FUNCTION crm.frequent_itemsets(min_support double precision, max_len integer DEFAULT 10,
	basket text DEFAULT 'order',
	OUT items bigint[], OUT count bigint, OUT support double precision)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'crm_frequent_itemsets' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10000;
COMMENT ON FUNCTION crm.frequent_itemsets(double precision, integer, text) IS
	'the sets of products bought together in at least min_support of the baskets (orders not cancelled or refunded; basket => ''contact'': all a contact bought), up to max_len products, with their counts';

CREATE FUNCTION crm.association_rules(min_support double precision, min_confidence double precision,
	max_len integer DEFAULT 10, min_len integer DEFAULT 2, basket text DEFAULT 'order', max_rules bigint DEFAULT 1000000,
	OUT lhs bigint[], OUT rhs bigint, OUT count bigint, OUT support double precision,
	OUT confidence double precision, OUT lift double precision, OUT conviction double precision)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'crm_association_rules' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10000;
COMMENT ON FUNCTION crm.association_rules(double precision, double precision, integer, integer, text, bigint) IS
	'rules lhs => rhs (one product) over the baskets: support and confidence at least the given ones, min_len to max_len products in all (min_len 1 admits {} => rhs); stops with 54000 past max_rules rules';
