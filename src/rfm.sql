
-- ---------------------------------------------------------------------------
-- crm.rfm: one RFM cell, recency / frequency / monetary quintile scores 1..5
-- (src/rfm.c), its named segments, and crm.rfm_scores over the order history.
-- ---------------------------------------------------------------------------
CALL pg_temp.crm_declare_io('rfm');

CREATE TYPE crm.rfm (
	INPUT = crm.rfm_in,
	OUTPUT = crm.rfm_out,
	RECEIVE = crm.rfm_recv,
	SEND = crm.rfm_send,
	INTERNALLENGTH = 4,
	PASSEDBYVALUE,
	ALIGNMENT = int4,
	STORAGE = plain,
	CATEGORY = 'U'
);
COMMENT ON TYPE crm.rfm IS
	'RFM cell: recency, frequency and monetary quintile scores 1..5, written ''5-4-3'' (input also ''543'')';
COMMENT ON FUNCTION crm.rfm_in(cstring) IS
	'text input of crm.rfm: ''5-4-3'' or ''543'', each score 1..5; 22P02 otherwise';
COMMENT ON FUNCTION crm.rfm_out(crm.rfm) IS
	'text output of crm.rfm: ''r-f-m''';
COMMENT ON FUNCTION crm.rfm_recv(internal) IS
	'binary input of crm.rfm: checks the version field and that each score is 1..5 (22P03 otherwise)';
COMMENT ON FUNCTION crm.rfm_send(crm.rfm) IS
	'binary output of crm.rfm: the 4-byte packed cell';

-- bigint, so that a driver's 64-bit parameters (JDBC setLong) bind; integers
-- are cast to it implicitly
CREATE FUNCTION crm.rfm(r bigint, f bigint, m bigint) RETURNS crm.rfm
	AS 'MODULE_PATHNAME', 'crm_rfm_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.rfm(bigint, bigint, bigint) IS 'RFM cell from three scores 1..5 (22023 when out of range)';
CREATE FUNCTION crm.r(crm.rfm) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_rfm_r' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.r(crm.rfm) IS 'recency score of an RFM cell, 5 = most recent';
CREATE FUNCTION crm.f(crm.rfm) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_rfm_f' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.f(crm.rfm) IS 'frequency score of an RFM cell, 5 = most orders';
CREATE FUNCTION crm.m(crm.rfm) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_rfm_m' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.m(crm.rfm) IS 'monetary score of an RFM cell, 5 = highest spend';
CREATE FUNCTION crm.rfm_segment(crm.rfm) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_rfm_segment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.rfm_segment(crm.rfm) IS
	'named segment of an RFM cell (Champions, Loyal, ... Lost) from R and the rounded mean of F and M; see README';

-- Comparison functions, operators and operator classes (see src/email.sql)
CALL pg_temp.crm_declare_ordering('rfm', 'btree support: cells ordered by r, then f, then m');
DROP PROCEDURE pg_temp.crm_declare_io(text), pg_temp.crm_declare_ordering(text, text);

-- rfm = text, as a driver binds a string parameter: the text read as a cell
-- ('5-4-3'; 22P02 when it is not one), inlined so "rfm = $1" stays a
-- comparison of cells
CREATE FUNCTION crm.rfm_eq_text(crm.rfm, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.=) $2::crm.rfm;
CREATE FUNCTION crm.rfm_ne_text(crm.rfm, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.<>) $2::crm.rfm;
COMMENT ON FUNCTION crm.rfm_eq_text(crm.rfm, text) IS 'implementation of rfm = text: the text read as an RFM cell';
COMMENT ON FUNCTION crm.rfm_ne_text(crm.rfm, text) IS 'implementation of rfm <> text: the text read as an RFM cell';
CREATE OPERATOR pg_catalog.= (
	LEFTARG = crm.rfm, RIGHTARG = text, FUNCTION = crm.rfm_eq_text,
	NEGATOR = OPERATOR(pg_catalog.<>), RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = crm.rfm, RIGHTARG = text, FUNCTION = crm.rfm_ne_text,
	NEGATOR = OPERATOR(pg_catalog.=), RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);

-- RFM per customer.  Quintile scores are rank based, 1 + floor(5 (rank - 1) / n)
-- over the n customers, so customers with equal values always share a score
-- (ntile would split a tie across two quintiles by chance); without ties the
-- result is the ntile(5) split.  R ranks the last order time (latest = 5), F
-- the number of orders, M the total spent.  Cancelled and refunded orders do
-- not count; only orders in [since, as_of] do.
-- PL/pgSQL rather than SQL: its plan is made for the actual as_of and since
-- (a SQL function's generic plan is about 10% slower on 1M orders).
CREATE FUNCTION crm.rfm_scores(as_of timestamptz DEFAULT now(), since timestamptz DEFAULT NULL)
RETURNS TABLE (contact_id bigint, recency_days integer, frequency bigint, monetary numeric,
			   rfm crm.rfm, segment text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RETURN QUERY
	SELECT s.contact_id, s.recency_days, s.frequency, s.monetary, s.rfm, crm.rfm_segment(s.rfm)
	  FROM (SELECT o.contact_id,
				   floor(extract(epoch FROM as_of - max(o.ordered_at)) / 86400)::integer AS recency_days,
				   count(*) AS frequency,
				   sum(o.total) AS monetary,
				   crm.rfm((1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER ())::integer,
						   (1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER ())::integer,
						   (1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ())::integer) AS rfm
			  FROM crm."order" o
			 WHERE o.ordered_at <= as_of
			   AND (since IS NULL OR o.ordered_at >= since)
			   AND o.status <> ALL ('{cancelled,refunded}'::text[])
			 GROUP BY o.contact_id) s;
END $$;
COMMENT ON FUNCTION crm.rfm_scores(timestamptz, timestamptz) IS
	'per customer with orders in [since, as_of]: recency in days, frequency, monetary, the RFM cell (quintiles over those customers, ties share a score) and its segment';
