
-- ---------------------------------------------------------------------------
-- What BI tools need beyond the capabilities (see README, "BI tools").
-- After every view of the other parts: a view compares a stage with a
-- literal through the enum's own operator, and would bind to the one below
-- if it came first.
-- ---------------------------------------------------------------------------

-- stage = text, as a driver binds a string parameter (character varying):
-- the text read as a stage (22P02 when it is not one).  Inlined, so
-- "stage = $1" becomes "stage = $1::crm.stage", which an index on stage
-- serves; a literal (stage = 'lead') resolves here too and means the same.
CREATE FUNCTION crm.stage_eq_text(crm.stage, text) RETURNS boolean
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.=) $2::crm.stage;
CREATE FUNCTION crm.stage_ne_text(crm.stage, text) RETURNS boolean
	LANGUAGE sql STABLE STRICT PARALLEL SAFE
	RETURN $1 OPERATOR(pg_catalog.<>) $2::crm.stage;
COMMENT ON FUNCTION crm.stage_eq_text(crm.stage, text) IS 'implementation of stage = text: the text read as a stage';
COMMENT ON FUNCTION crm.stage_ne_text(crm.stage, text) IS 'implementation of stage <> text: the text read as a stage';
CREATE OPERATOR pg_catalog.= (
	LEFTARG = crm.stage, RIGHTARG = text, FUNCTION = crm.stage_eq_text,
	NEGATOR = OPERATOR(pg_catalog.<>), RESTRICT = pg_catalog.eqsel, JOIN = pg_catalog.eqjoinsel);
CREATE OPERATOR pg_catalog.<> (
	LEFTARG = crm.stage, RIGHTARG = text, FUNCTION = crm.stage_ne_text,
	NEGATOR = OPERATOR(pg_catalog.=), RESTRICT = pg_catalog.neqsel, JOIN = pg_catalog.neqjoinsel);
