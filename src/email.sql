
-- ---------------------------------------------------------------------------
-- crm.email: an e-mail address normalised with ICU (src/email.c)
-- ---------------------------------------------------------------------------

-- The shell type and the four I/O functions of a C base type (C symbols
-- crm_<type>_in, _out, _recv, _send), the same for crm.email and crm.rfm;
-- the type itself, with its own storage, follows in each file.  Like the
-- next one, a procedure of this session only (pg_temp, dropped at the end of
-- src/rfm.sql), not part of the installed extension.
CREATE PROCEDURE pg_temp.crm_declare_io(type_name text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $proc$
BEGIN
	EXECUTE pg_catalog.format($sql$
		CREATE TYPE crm.%1$I;
		CREATE FUNCTION crm.%1$s_in(cstring) RETURNS crm.%1$I
			AS 'MODULE_PATHNAME', 'crm_%1$s_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
		CREATE FUNCTION crm.%1$s_out(crm.%1$I) RETURNS cstring
			AS 'MODULE_PATHNAME', 'crm_%1$s_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
		CREATE FUNCTION crm.%1$s_recv(internal) RETURNS crm.%1$I
			AS 'MODULE_PATHNAME', 'crm_%1$s_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
		CREATE FUNCTION crm.%1$s_send(crm.%1$I) RETURNS bytea
			AS 'MODULE_PATHNAME', 'crm_%1$s_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
		$sql$, type_name);
END
$proc$;

-- Comparison support of a C base type, the same for crm.email and crm.rfm:
-- the six comparison functions (C symbols crm_<type>_eq ... crm_<type>_ge,
-- LEAKPROOF), the btree comparison and the two hash functions, their
-- comments, the operators = <> < <= > >= in pg_catalog (so they resolve
-- whatever the search_path: a BI tool cannot write OPERATOR(crm.=)), and
-- the default btree and hash operator classes.  A procedure of this session only (pg_temp, dropped
-- at the end of src/rfm.sql): it is not part of the installed extension.
-- Every name is schema-qualified; type_name is a fixed lower-case identifier.
CREATE PROCEDURE pg_temp.crm_declare_ordering(type_name text, cmp_about text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $proc$
DECLARE
	op record;
BEGIN
	FOR op IN SELECT * FROM (VALUES
		('eq', '=', '=', '<>', 'eqsel', 'eqjoinsel', ', HASHES, MERGES'),
		('ne', '<>', '<>', '=', 'neqsel', 'neqjoinsel', ''),
		('lt', '<', '>', '>=', 'scalarltsel', 'scalarltjoinsel', ''),
		('le', '<=', '>=', '>', 'scalarlesel', 'scalarlejoinsel', ''),
		('gt', '>', '<', '<=', 'scalargtsel', 'scalargtjoinsel', ''),
		('ge', '>=', '<=', '<', 'scalargesel', 'scalargejoinsel', '')
	) AS v(fn, oper, commutator, negator, rest, j, flags)
	LOOP
		-- %1$s type, %2$s function suffix, %3$s..%5$s operator, its
		-- commutator and negator, %6$s %7$s estimators, %8$s HASHES, MERGES
		EXECUTE pg_catalog.format($sql$
			CREATE FUNCTION crm.%1$s_%2$s(crm.%1$I, crm.%1$I) RETURNS boolean
				AS 'MODULE_PATHNAME', 'crm_%1$s_%2$s' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
			COMMENT ON FUNCTION crm.%1$s_%2$s(crm.%1$I, crm.%1$I) IS %9$L;
			CREATE OPERATOR pg_catalog.%3$s (
				LEFTARG = crm.%1$I, RIGHTARG = crm.%1$I, FUNCTION = crm.%1$s_%2$s,
				COMMUTATOR = OPERATOR(pg_catalog.%4$s), NEGATOR = OPERATOR(pg_catalog.%5$s),
				RESTRICT = pg_catalog.%6$s, JOIN = pg_catalog.%7$s%8$s);
			$sql$, type_name, op.fn, op.oper, op.commutator, op.negator, op.rest, op.j, op.flags,
			'implementation of ' || op.oper || ' for ' || type_name);
	END LOOP;
	EXECUTE pg_catalog.format($sql$
		CREATE FUNCTION crm.%1$s_cmp(crm.%1$I, crm.%1$I) RETURNS integer
			AS 'MODULE_PATHNAME', 'crm_%1$s_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
		CREATE FUNCTION crm.%1$s_hash(crm.%1$I) RETURNS integer
			AS 'MODULE_PATHNAME', 'crm_%1$s_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
		CREATE FUNCTION crm.%1$s_hash_extended(crm.%1$I, bigint) RETURNS bigint
			AS 'MODULE_PATHNAME', 'crm_%1$s_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
		COMMENT ON FUNCTION crm.%1$s_cmp(crm.%1$I, crm.%1$I) IS %2$L;
		COMMENT ON FUNCTION crm.%1$s_hash(crm.%1$I) IS %3$L;
		COMMENT ON FUNCTION crm.%1$s_hash_extended(crm.%1$I, bigint) IS %4$L;
		CREATE OPERATOR CLASS crm.%1$s_ops DEFAULT FOR TYPE crm.%1$I USING btree AS
			OPERATOR 1 pg_catalog.<, OPERATOR 2 pg_catalog.<=, OPERATOR 3 pg_catalog.=,
			OPERATOR 4 pg_catalog.>=, OPERATOR 5 pg_catalog.>,
			FUNCTION 1 crm.%1$s_cmp(crm.%1$I, crm.%1$I);
		CREATE OPERATOR CLASS crm.%1$s_hash_ops DEFAULT FOR TYPE crm.%1$I USING hash AS
			OPERATOR 1 pg_catalog.=,
			FUNCTION 1 crm.%1$s_hash(crm.%1$I),
			FUNCTION 2 crm.%1$s_hash_extended(crm.%1$I, bigint);
		$sql$, type_name, cmp_about, 'hash support for ' || type_name, 'extended hash support for ' || type_name);
END
$proc$;

CALL pg_temp.crm_declare_io('email');

CREATE TYPE crm.email (
	INPUT = crm.email_in,
	OUTPUT = crm.email_out,
	RECEIVE = crm.email_recv,
	SEND = crm.email_send,
	INTERNALLENGTH = VARIABLE,
	STORAGE = extended,
	CATEGORY = 'S',
	COLLATABLE = false
);
COMMENT ON TYPE crm.email IS
	'e-mail address: trimmed, NFC, local part case-folded, domain in lower-case IDNA ASCII form';
COMMENT ON FUNCTION crm.email_in(cstring) IS
	'text input of crm.email: normalises the address, 22P02 with a detail saying what is wrong';
COMMENT ON FUNCTION crm.email_out(crm.email) IS
	'text output of crm.email: the normalised address, which reads back as itself';
COMMENT ON FUNCTION crm.email_recv(internal) IS
	'binary input of crm.email: validates and normalises again, as the text input does';
COMMENT ON FUNCTION crm.email_send(crm.email) IS
	'binary output of crm.email: the normalised address as text bytes';

CREATE FUNCTION crm.email(text) RETURNS crm.email
	AS 'MODULE_PATHNAME', 'crm_email_from_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.email(text) IS 'normalise and validate text as an e-mail address';

-- Text becomes an address on assignment, so plain INSERTs with text
-- parameters work.  An address becomes text implicitly, so what BI tools
-- write works unchanged: email LIKE ?, lower(email), length(email),
-- min(email).  Comparisons with text do not fall back to comparing raw
-- text: "email = ?" finds the operators below (more exact argument types).
CREATE CAST (text AS crm.email) WITH FUNCTION crm.email(text) AS ASSIGNMENT;
CREATE CAST (crm.email AS text) WITHOUT FUNCTION AS IMPLICIT;

CALL pg_temp.crm_declare_ordering('email', 'btree support: byte order of the normalised addresses');

-- email = text, as a driver binds a string parameter (character varying)
-- or a user writes email = 'x'::text: the text is normalised as an address,
-- and text that is not one (a partial address) matches nothing instead of
-- raising 22P02.  The SQL bodies are inlined by the planner, so
-- "email = $1" becomes "email = crm.email_or_null($1)", which the unique
-- index on crm.contact.email serves.
CREATE FUNCTION crm.email_or_null(text) RETURNS crm.email
	AS 'MODULE_PATHNAME', 'crm_email_or_null' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.email_or_null(text) IS
	'text as a normalised e-mail address, NULL when it is not one (no error): the text side of email = text';
CREATE FUNCTION crm.email_eq_text(crm.email, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.=) crm.email_or_null($2);
CREATE FUNCTION crm.text_eq_email(text, crm.email) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN crm.email_or_null($1) OPERATOR(pg_catalog.=) $2;
CREATE FUNCTION crm.email_ne_text(crm.email, text) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN COALESCE($1 OPERATOR(pg_catalog.<>) crm.email_or_null($2), true);
CREATE FUNCTION crm.text_ne_email(text, crm.email) RETURNS boolean
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN COALESCE(crm.email_or_null($1) OPERATOR(pg_catalog.<>) $2, true);
COMMENT ON FUNCTION crm.email_eq_text(crm.email, text) IS
	'implementation of email = text: the text normalised as an address; NULL (no match) when it is not one';
COMMENT ON FUNCTION crm.text_eq_email(text, crm.email) IS
	'implementation of text = email: the text normalised as an address; NULL (no match) when it is not one';
COMMENT ON FUNCTION crm.email_ne_text(crm.email, text) IS
	'implementation of email <> text: true when the text is not an address or another one';
COMMENT ON FUNCTION crm.text_ne_email(text, crm.email) IS
	'implementation of text <> email: true when the text is not an address or another one';
CREATE OPERATOR pg_catalog.= (
	LEFTARG = crm.email, RIGHTARG = text, FUNCTION = crm.email_eq_text,
	COMMUTATOR = OPERATOR(pg_catalog.=), NEGATOR = OPERATOR(pg_catalog.<>),
	RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.= (
	LEFTARG = text, RIGHTARG = crm.email, FUNCTION = crm.text_eq_email,
	COMMUTATOR = OPERATOR(pg_catalog.=), NEGATOR = OPERATOR(pg_catalog.<>),
	RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = crm.email, RIGHTARG = text, FUNCTION = crm.email_ne_text,
	COMMUTATOR = OPERATOR(pg_catalog.<>), NEGATOR = OPERATOR(pg_catalog.=),
	RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = text, RIGHTARG = crm.email, FUNCTION = crm.text_ne_email,
	COMMUTATOR = OPERATOR(pg_catalog.<>), NEGATOR = OPERATOR(pg_catalog.=),
	RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);

CREATE FUNCTION crm.email_domain(crm.email) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_email_domain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.email_domain(crm.email) IS 'the domain of an address, in IDNA ASCII form';
CREATE FUNCTION crm.email_local(crm.email) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_email_local' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.email_local(crm.email) IS 'the case-folded local part of an address';
