
-- ---------------------------------------------------------------------------
-- Lead scoring: fit and engagement scores kept current by statement-level
-- triggers, with exact exponential decay, explain and grades.  The C is in
-- src/scoring_rules.c (the rule cache), src/scoring_ledger.c (the triggers
-- that write the ledger, rescore) and src/scoring_read.c (the readers).
--
-- State is a ledger per contact and rule: (value, as_of) is the decayed sum
-- of the rule's points as of as_of, so decay is exact and O(1) per event in
-- any order of arrival.  Rules with a window keep one row per matching
-- activity in crm.score_event instead, since points leave a window as time
-- passes.  Group caps are applied when a score is read.
-- ---------------------------------------------------------------------------

CREATE TABLE crm.score_group (
	score_group text PRIMARY KEY
		CONSTRAINT score_group_lowercase_identifier CHECK (score_group ~ '^[a-z][a-z0-9_]*$'),
	half_life	interval,
	cap			double precision,
	grade_labels text[] NOT NULL DEFAULT '{}',
	grade_thresholds double precision[] NOT NULL DEFAULT '{}',
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE crm.score_group IS 'named scores: optional half-life (exponential decay), optional cap, grade thresholds';
COMMENT ON COLUMN crm.score_group.grade_thresholds IS 'descending minimum scores for grade_labels[1..n-1]; below the last one is grade_labels[n]';
INSERT INTO crm.score_group (score_group, grade_labels, grade_thresholds, description, builtin) VALUES
	('fit', '{A,B,C,D}', '{60,40,20}', 'who the contact is: attributes of contact and company', true),
	('engagement', '{1,2,3,4}', '{100,50,20}', 'what the contact does: activities', true);

-- Rule ids are unique across activity and fit rules, so one ledger serves both.
CREATE SEQUENCE crm.rule_id_seq;

CREATE TABLE crm.scoring_rule (
	rule_id		bigint PRIMARY KEY DEFAULT nextval('crm.rule_id_seq'),
	name		text NOT NULL
		CONSTRAINT name_not_empty CHECK (btrim(name) <> ''),
	score_group text NOT NULL DEFAULT 'engagement' REFERENCES crm.score_group ON UPDATE CASCADE,
	activity_kind text,
	condition	jsonpath,
	points		double precision NOT NULL,
	once		boolean NOT NULL DEFAULT false,
	"window"	interval,
	active		boolean NOT NULL DEFAULT true,
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crm.scoring_rule IS 'activity rules: kind (NULL = any), jsonpath condition on properties, points, once or every time, optional window';
ALTER SEQUENCE crm.rule_id_seq OWNED BY crm.scoring_rule.rule_id;

CREATE TABLE crm.fit_rule (
	rule_id		bigint PRIMARY KEY DEFAULT nextval('crm.rule_id_seq'),
	name		text NOT NULL
		CONSTRAINT name_not_empty CHECK (btrim(name) <> ''),
	score_group text NOT NULL DEFAULT 'fit' REFERENCES crm.score_group ON UPDATE CASCADE,
	condition	jsonpath NOT NULL,
	points		double precision NOT NULL,
	active		boolean NOT NULL DEFAULT true,
	created_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crm.fit_rule IS 'fit rules: a jsonpath condition on the contact profile (contact columns, attrs, company), points';

-- Per contact and rule: matches, raw points and the decayed value as of as_of.
-- The ledger and crm.score_event are derived from crm.activity (which has
-- the foreign key) and have none of their own: a foreign key would cost a
-- per-row check on every ledger write, which dominated bulk loads and
-- rescore.  Statement triggers on crm.contact and the rule tables below
-- remove the rows of deleted contacts and rules instead.
CREATE TABLE crm.score_ledger (
	contact_id	bigint NOT NULL,
	rule_id		bigint NOT NULL,
	score_group text NOT NULL,
	hits		bigint NOT NULL,
	raw_points	double precision NOT NULL,
	value		double precision NOT NULL,
	as_of		timestamptz NOT NULL,
	once		boolean NOT NULL,
	half_life_us double precision NOT NULL,
	PRIMARY KEY (contact_id, rule_id)
);
COMMENT ON TABLE crm.score_ledger IS 'scoring state per contact and rule: value is the decayed contribution as of as_of';

-- One row per activity matched by a windowed rule.
CREATE TABLE crm.score_event (
	contact_id	bigint NOT NULL,
	rule_id		bigint NOT NULL,
	score_group text NOT NULL,
	occurred_at timestamptz NOT NULL,
	points		double precision NOT NULL
);
COMMENT ON TABLE crm.score_event IS 'activities matched by windowed rules, kept so points can leave the window exactly';
CREATE INDEX score_event_contact_idx ON crm.score_event (contact_id, score_group, occurred_at);

SELECT pg_catalog.pg_extension_config_dump('crm.score_group', '');
SELECT pg_catalog.pg_extension_config_dump('crm.rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.scoring_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm.fit_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm.score_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('crm.score_event', '');

-- Combines two decayed sums inside the ledger upsert (see src/scoring.h).
CREATE FUNCTION crm.decayed_sum(v1 double precision, t1 timestamptz, v2 double precision, t2 timestamptz,
	half_life_us double precision) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_decayed_sum' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.decayed_sum(double precision, timestamptz, double precision, timestamptz, double precision) IS
	'value at the later of t1 and t2 of v1 (as of t1) plus v2 (as of t2), decaying with the half-life in microseconds (0 = none)';

-- A deleted rule takes its points with it; a deleted contact its scores
-- (what ON DELETE CASCADE would do, once per statement).  In C: the ids come
-- from the transition tables, the deletes go to the co-located shards, and
-- on Citus a rule's deletion reaches every node's shards (src/shard.c).
CREATE FUNCTION crm.forget_rule_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_forget_rule_points' LANGUAGE C;
COMMENT ON FUNCTION crm.forget_rule_points() IS 'trigger: removes the ledger and windowed-event rows of deleted rules';
CREATE TRIGGER forget_rule_points AFTER DELETE ON crm.scoring_rule
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_rule_points('scoring_rule');
CREATE TRIGGER forget_rule_points AFTER DELETE ON crm.fit_rule
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_rule_points('fit_rule');

CREATE FUNCTION crm.forget_contact_points() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_forget_contact_points' LANGUAGE C;
COMMENT ON FUNCTION crm.forget_contact_points() IS 'trigger: removes the ledger and windowed-event rows of deleted contacts';
CREATE TRIGGER forget_contact_points AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_contact_points('contact');
CREATE TRIGGER forget_contact_points_truncate AFTER TRUNCATE ON crm.contact
	FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_contact_points('contact');

-- Rules are checked when saved, not when an activity arrives.
CREATE FUNCTION crm.check_rule() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM crm.score_group g WHERE g.score_group = NEW.score_group) THEN
		RAISE EXCEPTION 'unknown score group "%"', NEW.score_group
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Score groups are listed in crm.score_group; add one there first.';
	END IF;
	IF NEW.points IS NULL OR NEW.points IN ('NaN', 'Infinity', '-Infinity') THEN
		RAISE EXCEPTION 'points must be a finite number, not %', coalesce(NEW.points::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF TG_ARGV[0] = 'scoring_rule' THEN
		IF NEW."window" IS NOT NULL AND NEW."window" <= interval '0' THEN
			RAISE EXCEPTION 'window must be positive, not %', NEW."window"
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Use NULL for a rule whose points never expire.';
		END IF;
		IF NEW.activity_kind IS NOT NULL AND NEW.activity_kind !~ '^[a-z][a-z0-9_]*$' THEN
			RAISE EXCEPTION 'activity_kind "%" is not a valid activity kind', NEW.activity_kind
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Activity kinds are lower-case identifiers such as page_view; NULL matches any kind.';
		END IF;
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION crm.check_rule() IS 'trigger: validates scoring and fit rules when they are saved; the argument names the table (on Citus the trigger fires on a placement, whose name is not the table''s)';
CREATE TRIGGER check_rule BEFORE INSERT OR UPDATE ON crm.scoring_rule
	FOR EACH ROW EXECUTE FUNCTION crm.check_rule('scoring_rule');
CREATE TRIGGER check_rule BEFORE INSERT OR UPDATE ON crm.fit_rule
	FOR EACH ROW EXECUTE FUNCTION crm.check_rule('fit_rule');

CREATE FUNCTION crm.check_score_group() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NEW.half_life IS NOT NULL AND NEW.half_life <= interval '0' THEN
		RAISE EXCEPTION 'half_life must be positive, not %', NEW.half_life
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use NULL for a score that does not decay.';
	END IF;
	IF NEW.cap IN ('NaN', 'Infinity', '-Infinity') THEN
		RAISE EXCEPTION 'cap must be a finite number or NULL, not %', NEW.cap
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF cardinality(NEW.grade_labels) <> cardinality(NEW.grade_thresholds) + 1 AND cardinality(NEW.grade_labels) > 0 THEN
		RAISE EXCEPTION 'a score group with % grade labels needs % thresholds, not %',
			cardinality(NEW.grade_labels), cardinality(NEW.grade_labels) - 1, cardinality(NEW.grade_thresholds)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT 1 FROM unnest(NEW.grade_thresholds) WITH ORDINALITY a(t, i)
				 JOIN unnest(NEW.grade_thresholds) WITH ORDINALITY b(t, i) ON b.i = a.i + 1
				WHERE b.t >= a.t) THEN
		RAISE EXCEPTION 'grade thresholds must be strictly descending: %', NEW.grade_thresholds
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION crm.check_score_group() IS 'trigger: validates half-life, cap and grade thresholds of a score group';
CREATE TRIGGER check_score_group BEFORE INSERT OR UPDATE ON crm.score_group
	FOR EACH ROW EXECUTE FUNCTION crm.check_score_group();

-- Compiled rules are cached per backend; a change to a rule table tells
-- every backend to drop its cache at commit.
CREATE FUNCTION crm.rules_changed() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_rules_changed' LANGUAGE C;
COMMENT ON FUNCTION crm.rules_changed() IS 'trigger: invalidates the compiled scoring rules in every backend';
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.scoring_rule
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed('scoring_rule');
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.fit_rule
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed('fit_rule');
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.score_group
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed('score_group');

-- A rule's condition as the triggers test it, callable from SQL
CREATE FUNCTION crm.condition_holds(doc jsonb, condition jsonpath) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_condition_holds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.condition_holds(jsonb, jsonpath) IS
	'does a rule''s jsonpath condition hold for a document, as crm tests rule conditions: a predicate with @@, any other path when it yields an item (@?); a structural error is false';

-- Engagement: every INSERT (single, multi-row, INSERT ... SELECT, COPY) is
-- scored once per statement from its transition table.  Each crm trigger
-- names its logical table in its argument: on Citus it fires on a shard,
-- whose name is not the table's (src/shard.c).
CREATE FUNCTION crm.score_activities() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_score_activities' LANGUAGE C;
COMMENT ON FUNCTION crm.score_activities() IS 'trigger: scores the inserted activities, set-based, from the transition table';
CREATE TRIGGER score_activities AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_activities('activity');

-- Fit: recomputed for inserted or updated contacts, and for the contacts of
-- an updated company.
CREATE FUNCTION crm.score_contacts() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_score_contacts' LANGUAGE C;
COMMENT ON FUNCTION crm.score_contacts() IS 'trigger: recomputes fit scores of inserted or updated contacts (or of an updated company''s contacts)';
CREATE TRIGGER score_contacts_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts('contact');
CREATE TRIGGER score_contacts_update AFTER UPDATE ON crm.contact
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts('contact');
CREATE TRIGGER score_company_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts('company');

CREATE FUNCTION crm.score(contact_id bigint, score_group text DEFAULT 'engagement', at timestamptz DEFAULT now())
RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_score' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.score(bigint, text, timestamptz) IS
	'score of a contact in a score group as of a time (default now), decay and cap applied; 0 when nothing scored';

CREATE FUNCTION crm.explain_score(contact_id bigint, at timestamptz DEFAULT now(),
	OUT rule_id bigint, OUT rule text, OUT score_group text, OUT matches bigint,
	OUT raw_points double precision, OUT contribution double precision)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'crm_explain_score' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION crm.explain_score(bigint, timestamptz) IS
	'one row per rule that contributed to a contact''s scores (a "(cap)" row when a cap cut the total); contributions add up to crm.score';

-- In C, from the rule cache (src/scoring_rules.c): it reads no table, so it
-- also runs inside a query Citus pushes to a shard
CREATE FUNCTION crm.grade_of(score_group text, score double precision) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_grade_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.grade_of(text, double precision) IS 'grade label of a score in a group, from the group''s thresholds';

CREATE FUNCTION crm.grade(contact_id bigint, at timestamptz DEFAULT now()) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT crm.grade_of('fit', crm.score(contact_id, 'fit', at))
		|| crm.grade_of('engagement', crm.score(contact_id, 'engagement', at))
$$;
COMMENT ON FUNCTION crm.grade(bigint, timestamptz) IS 'combined fit x engagement grade, A1 (best) to D4';

CREATE FUNCTION crm.rescore(contact_ids bigint[] DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_rescore' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.rescore(bigint[]) IS
	'recomputes scores from the activity history and profiles (all contacts when NULL); returns the number of contacts rescored';

-- Current scores per contact and group, for BI tools.
CREATE VIEW crm.contact_scores WITH (security_invoker = true) AS
SELECT c.contact_id, g.score_group, crm.score(c.contact_id, g.score_group) AS score
  FROM crm.contact c CROSS JOIN crm.score_group g;
COMMENT ON VIEW crm.contact_scores IS 'current score of every contact in every score group';

CREATE FUNCTION crm.scores_of(contact_ids bigint[], score_group text DEFAULT 'engagement', at timestamptz DEFAULT now(),
	OUT contact_id bigint, OUT score double precision)
RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'crm_scores_of' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1000;
COMMENT ON FUNCTION crm.scores_of(bigint[], text, timestamptz) IS
	'scores of many contacts in one group at one time, computed set-based (same values as crm.score)';
