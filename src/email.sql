
-- ---------------------------------------------------------------------------
-- crm.email: an e-mail address normalised with ICU (src/email.c)
-- ---------------------------------------------------------------------------
CREATE TYPE crm.email;

CREATE FUNCTION crm.email_in(cstring) RETURNS crm.email
	AS 'MODULE_PATHNAME', 'crm_email_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.email_out(crm.email) RETURNS cstring
	AS 'MODULE_PATHNAME', 'crm_email_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.email_recv(internal) RETURNS crm.email
	AS 'MODULE_PATHNAME', 'crm_email_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.email_send(crm.email) RETURNS bytea
	AS 'MODULE_PATHNAME', 'crm_email_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

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

-- Both casts apply on assignment, so plain INSERTs with text parameters work
-- and an email can be stored in a text column.  Neither is implicit: with an
-- implicit email -> text cast, "email = 'Ann@X.com'" typed by a user whose
-- search_path lacks crm would silently compare raw text and miss the row;
-- without it, that query fails loudly instead.
CREATE CAST (text AS crm.email) WITH FUNCTION crm.email(text) AS ASSIGNMENT;
CREATE CAST (crm.email AS text) WITHOUT FUNCTION AS ASSIGNMENT;

CREATE FUNCTION crm.email_eq(crm.email, crm.email) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_email_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_ne(crm.email, crm.email) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_email_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_lt(crm.email, crm.email) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_email_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_le(crm.email, crm.email) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_email_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_gt(crm.email, crm.email) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_email_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_ge(crm.email, crm.email) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_email_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_cmp(crm.email, crm.email) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_email_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_hash(crm.email) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_email_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.email_hash_extended(crm.email, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_email_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.email_eq(crm.email, crm.email) IS 'implementation of = for email';
COMMENT ON FUNCTION crm.email_ne(crm.email, crm.email) IS 'implementation of <> for email';
COMMENT ON FUNCTION crm.email_lt(crm.email, crm.email) IS 'implementation of < for email';
COMMENT ON FUNCTION crm.email_le(crm.email, crm.email) IS 'implementation of <= for email';
COMMENT ON FUNCTION crm.email_gt(crm.email, crm.email) IS 'implementation of > for email';
COMMENT ON FUNCTION crm.email_ge(crm.email, crm.email) IS 'implementation of >= for email';
COMMENT ON FUNCTION crm.email_cmp(crm.email, crm.email) IS 'btree support: byte order of the normalised addresses';
COMMENT ON FUNCTION crm.email_hash(crm.email) IS 'hash support for email';
COMMENT ON FUNCTION crm.email_hash_extended(crm.email, bigint) IS 'extended hash support for email';

CREATE OPERATOR crm.= (
	LEFTARG = crm.email, RIGHTARG = crm.email,
	FUNCTION = crm.email_eq,
	COMMUTATOR = OPERATOR(crm.=), NEGATOR = OPERATOR(crm.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR crm.<> (
	LEFTARG = crm.email, RIGHTARG = crm.email,
	FUNCTION = crm.email_ne,
	COMMUTATOR = OPERATOR(crm.<>), NEGATOR = OPERATOR(crm.=),
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR crm.< (
	LEFTARG = crm.email, RIGHTARG = crm.email,
	FUNCTION = crm.email_lt,
	COMMUTATOR = OPERATOR(crm.>), NEGATOR = OPERATOR(crm.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR crm.<= (
	LEFTARG = crm.email, RIGHTARG = crm.email,
	FUNCTION = crm.email_le,
	COMMUTATOR = OPERATOR(crm.>=), NEGATOR = OPERATOR(crm.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR crm.> (
	LEFTARG = crm.email, RIGHTARG = crm.email,
	FUNCTION = crm.email_gt,
	COMMUTATOR = OPERATOR(crm.<), NEGATOR = OPERATOR(crm.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR crm.>= (
	LEFTARG = crm.email, RIGHTARG = crm.email,
	FUNCTION = crm.email_ge,
	COMMUTATOR = OPERATOR(crm.<=), NEGATOR = OPERATOR(crm.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS crm.email_ops DEFAULT FOR TYPE crm.email USING btree AS
	OPERATOR 1 crm.<,
	OPERATOR 2 crm.<=,
	OPERATOR 3 crm.=,
	OPERATOR 4 crm.>=,
	OPERATOR 5 crm.>,
	FUNCTION 1 crm.email_cmp(crm.email, crm.email);
CREATE OPERATOR CLASS crm.email_hash_ops DEFAULT FOR TYPE crm.email USING hash AS
	OPERATOR 1 crm.=,
	FUNCTION 1 crm.email_hash(crm.email),
	FUNCTION 2 crm.email_hash_extended(crm.email, bigint);

CREATE FUNCTION crm.email_domain(crm.email) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_email_domain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.email_domain(crm.email) IS 'the domain of an address, in IDNA ASCII form';
CREATE FUNCTION crm.email_local(crm.email) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_email_local' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.email_local(crm.email) IS 'the case-folded local part of an address';
