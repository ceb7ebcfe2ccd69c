-- crm install script, assembled by the Makefile from src/*.sql.
\echo Use "CREATE EXTENSION crm" to load this file. \quit

-- Like pg_cron, the extension lives in pg_catalog and creates its own schema,
-- so the schema is a member of the extension and DROP EXTENSION removes it.
CREATE SCHEMA crm;
COMMENT ON SCHEMA crm IS 'customer-relationship management: tables, types and functions of the crm extension';

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

-- ---------------------------------------------------------------------------
-- The CRM data model: ordinary tables in schema crm.
--
-- Every table that grows with contacts carries contact_id and has it first in
-- its primary key, so the tables can be distributed (Citus) by contact_id and
-- co-located.  Small lookup tables (channel, lead_source, product, company)
-- are reference tables in that design.  Check constraints are named
-- <column>_<rule> so a violation names the column and what is allowed.
-- ---------------------------------------------------------------------------

-- Lifecycle stages in funnel order; disqualified and churned are exits.
CREATE TYPE crm.stage AS ENUM (
	'subscriber', 'lead', 'mql', 'sql', 'opportunity', 'customer', 'evangelist',
	'disqualified', 'churned');
COMMENT ON TYPE crm.stage IS
	'lifecycle stage, ordered subscriber < lead < mql < sql < opportunity < customer < evangelist; disqualified and churned are exits';

-- Channels a contact may consent to.  Extend with INSERT.
CREATE TABLE crm.channel (
	channel		text PRIMARY KEY
		CONSTRAINT channel_lowercase_identifier CHECK (channel ~ '^[a-z][a-z0-9_]*$'),
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE crm.channel IS 'channels and purposes that need consent (email, phone, sms, post, profiling...)';
INSERT INTO crm.channel (channel, description, builtin) VALUES
	('email', 'marketing e-mail', true),
	('phone', 'telephone calls', true),
	('sms', 'text messages', true),
	('post', 'letters and catalogues', true),
	('profiling', 'use of behaviour data for profiling and scoring', true);

-- Where leads come from, and the stage a new contact from there starts at.
CREATE TABLE crm.lead_source (
	source		text PRIMARY KEY
		CONSTRAINT source_lowercase_identifier CHECK (source ~ '^[a-z][a-z0-9_]*$'),
	initial_stage crm.stage NOT NULL DEFAULT 'lead'
		CONSTRAINT initial_stage_subscriber_or_lead CHECK (initial_stage IN ('subscriber', 'lead')),
	description text,
	builtin		boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE crm.lead_source IS 'lead sources and the lifecycle stage a new contact from each starts at';
INSERT INTO crm.lead_source (source, initial_stage, description, builtin) VALUES
	('form', 'lead', 'web form', true),
	('download', 'lead', 'content download', true),
	('newsletter', 'subscriber', 'newsletter sign-up', true),
	('contest', 'subscriber', 'contest or sweepstake', true),
	('webinar', 'lead', 'webinar registration', true),
	('video', 'subscriber', 'video view with sign-up', true),
	('ads', 'lead', 'paid advertising', true),
	('partner', 'lead', 'partner referral', true),
	('event', 'lead', 'trade fair or event', true),
	('import', 'lead', 'list import', true);

CREATE TABLE crm.company (
	company_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name		text NOT NULL
		CONSTRAINT name_not_empty CHECK (btrim(name) <> ''),
	domain		text
		CONSTRAINT domain_lowercase_hostname CHECK (domain ~ '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'),
	industry	text,
	employees	integer
		CONSTRAINT employees_not_negative CHECK (employees >= 0),
	annual_revenue numeric(18, 2)
		CONSTRAINT annual_revenue_not_negative_nor_nan CHECK (annual_revenue >= 0 AND annual_revenue <> 'NaN'),
	country		text
		CONSTRAINT country_iso_3166_alpha2 CHECK (country ~ '^[A-Z]{2}$'),
	owner		text NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE crm.company IS 'organisations contacts work for';
CREATE UNIQUE INDEX company_domain_key ON crm.company (domain);

CREATE TABLE crm.contact (
	contact_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	email		crm.email NOT NULL,
	first_name	text,
	last_name	text,
	phone		text
		CONSTRAINT phone_e164_like CHECK (phone ~ '^\+?[0-9][0-9 ().-]{3,30}$'),
	city		text,
	region		text,
	country		text
		CONSTRAINT country_iso_3166_alpha2 CHECK (country ~ '^[A-Z]{2}$'),
	birth_date	date
		CONSTRAINT birth_date_after_1900 CHECK (birth_date >= DATE '1900-01-01'),
	income_band text
		CONSTRAINT income_band_low_lower_middle_middle_upper_middle_high
		CHECK (income_band IN ('low', 'lower_middle', 'middle', 'upper_middle', 'high')),
	company_id	bigint REFERENCES crm.company ON DELETE SET NULL,
	job_title	text,
	lead_source text REFERENCES crm.lead_source ON UPDATE CASCADE,
	owner		text NOT NULL DEFAULT current_user,
	stage		crm.stage,
	do_not_contact text
		CONSTRAINT do_not_contact_unsubscribed_bounced_manual
		CHECK (do_not_contact IN ('unsubscribed', 'bounced', 'manual')),
	attrs		jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT attrs_json_object CHECK (jsonb_typeof(attrs) = 'object'),
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT contact_email_key UNIQUE (email)
);
COMMENT ON TABLE crm.contact IS 'people: the e-mail address is the only mandatory field';
COMMENT ON COLUMN crm.contact.owner IS 'database role of the sales rep who owns the contact';
COMMENT ON COLUMN crm.contact.do_not_contact IS 'set when the contact must never be contacted: unsubscribed, bounced or manual';
CREATE INDEX contact_company_idx ON crm.contact (company_id);
CREATE INDEX contact_owner_idx ON crm.contact (owner);
CREATE INDEX contact_country_idx ON crm.contact (country);

CREATE TABLE crm.activity (
	contact_id	bigint NOT NULL REFERENCES crm.contact ON DELETE CASCADE,
	activity_id bigint GENERATED BY DEFAULT AS IDENTITY,
	kind		text NOT NULL
		CONSTRAINT kind_lowercase_identifier CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
	occurred_at timestamptz NOT NULL DEFAULT now(),
	properties	jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT properties_json_object CHECK (jsonb_typeof(properties) = 'object'),
	PRIMARY KEY (contact_id, activity_id)
);
COMMENT ON TABLE crm.activity IS 'the event stream: page views, form submits, e-mail opens and clicks, meetings, calls...';
CREATE INDEX activity_contact_time_idx ON crm.activity (contact_id, occurred_at);
CREATE INDEX activity_time_brin ON crm.activity USING brin (occurred_at);

CREATE TABLE crm.deal (
	contact_id	bigint NOT NULL REFERENCES crm.contact ON DELETE CASCADE,
	deal_id		bigint GENERATED BY DEFAULT AS IDENTITY,
	company_id	bigint REFERENCES crm.company ON DELETE SET NULL,
	title		text NOT NULL
		CONSTRAINT title_not_empty CHECK (btrim(title) <> ''),
	pipeline_stage text NOT NULL DEFAULT 'qualification',
	amount		numeric(16, 2) NOT NULL DEFAULT 0
		CONSTRAINT amount_not_negative_nor_nan CHECK (amount >= 0 AND amount <> 'NaN'),
	currency	text NOT NULL DEFAULT 'USD'
		CONSTRAINT currency_iso_4217 CHECK (currency ~ '^[A-Z]{3}$'),
	probability numeric(5, 4) NOT NULL DEFAULT 0.1
		CONSTRAINT probability_between_0_and_1 CHECK (probability BETWEEN 0 AND 1),
	expected_close date,
	status		text NOT NULL DEFAULT 'open'
		CONSTRAINT status_open_won_lost CHECK (status IN ('open', 'won', 'lost')),
	owner		text NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	closed_at	timestamptz,
	CONSTRAINT closed_at_set_iff_closed CHECK ((status = 'open') = (closed_at IS NULL)),
	PRIMARY KEY (contact_id, deal_id)
);
COMMENT ON TABLE crm.deal IS 'opportunities: a contact (and optionally its company), amount, probability, open / won / lost';
CREATE INDEX deal_open_idx ON crm.deal (pipeline_stage) WHERE status = 'open';

CREATE TABLE crm.product (
	product_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	sku			text NOT NULL UNIQUE,
	name		text NOT NULL,
	category	text,
	price		numeric(14, 2)
		CONSTRAINT price_not_negative_nor_nan CHECK (price >= 0 AND price <> 'NaN'),
	active		boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE crm.product IS 'what can be bought';

CREATE TABLE crm."order" (
	contact_id	bigint NOT NULL REFERENCES crm.contact ON DELETE CASCADE,
	order_id	bigint GENERATED BY DEFAULT AS IDENTITY,
	ordered_at	timestamptz NOT NULL DEFAULT now(),
	status		text NOT NULL DEFAULT 'placed'
		CONSTRAINT status_placed_paid_shipped_cancelled_refunded
		CHECK (status IN ('placed', 'paid', 'shipped', 'cancelled', 'refunded')),
	currency	text NOT NULL DEFAULT 'USD'
		CONSTRAINT currency_iso_4217 CHECK (currency ~ '^[A-Z]{3}$'),
	total		numeric(14, 2) NOT NULL
		CONSTRAINT total_not_negative_nor_nan CHECK (total >= 0 AND total <> 'NaN'),
	items		integer
		CONSTRAINT items_positive CHECK (items > 0),
	external_ref text,
	PRIMARY KEY (contact_id, order_id)
);
COMMENT ON TABLE crm."order" IS 'purchases: who, when, how much';
CREATE INDEX order_contact_time_idx ON crm."order" (contact_id, ordered_at);
CREATE INDEX order_time_idx ON crm."order" (ordered_at);

CREATE TABLE crm.order_line (
	contact_id	bigint NOT NULL,
	order_id	bigint NOT NULL,
	line_no		integer NOT NULL
		CONSTRAINT line_no_positive CHECK (line_no > 0),
	product_id	bigint NOT NULL REFERENCES crm.product,
	quantity	integer NOT NULL DEFAULT 1
		CONSTRAINT quantity_positive CHECK (quantity > 0),
	unit_price	numeric(14, 2) NOT NULL
		CONSTRAINT unit_price_not_negative_nor_nan CHECK (unit_price >= 0 AND unit_price <> 'NaN'),
	PRIMARY KEY (contact_id, order_id, line_no),
	FOREIGN KEY (contact_id, order_id) REFERENCES crm."order" ON DELETE CASCADE
);
COMMENT ON TABLE crm.order_line IS 'order lines: product, quantity, unit price';
CREATE INDEX order_line_product_idx ON crm.order_line (product_id);

CREATE TABLE crm.task (
	contact_id	bigint NOT NULL REFERENCES crm.contact ON DELETE CASCADE,
	task_id		bigint GENERATED BY DEFAULT AS IDENTITY,
	deal_id		bigint,
	title		text NOT NULL
		CONSTRAINT title_not_empty CHECK (btrim(title) <> ''),
	due_at		timestamptz,
	done_at		timestamptz,
	note		text,
	owner		text NOT NULL DEFAULT current_user,
	created_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (contact_id, task_id),
	FOREIGN KEY (contact_id, deal_id) REFERENCES crm.deal ON DELETE CASCADE
);
COMMENT ON TABLE crm.task IS 'follow-ups on a contact or one of its deals';
CREATE INDEX task_open_due_idx ON crm.task (owner, due_at) WHERE done_at IS NULL;

-- pg_dump keeps every row, the built-in ones as users edited them; loading a
-- dump replaces the built-in rows this script wrote (src/restore.c).
SELECT pg_catalog.pg_extension_config_dump('crm.channel', '');
SELECT pg_catalog.pg_extension_config_dump('crm.lead_source', '');
SELECT pg_catalog.pg_extension_config_dump('crm.company', '');
SELECT pg_catalog.pg_extension_config_dump('crm.company_company_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.contact', '');
SELECT pg_catalog.pg_extension_config_dump('crm.contact_contact_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.activity', '');
SELECT pg_catalog.pg_extension_config_dump('crm.activity_activity_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.deal', '');
SELECT pg_catalog.pg_extension_config_dump('crm.deal_deal_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.product', '');
SELECT pg_catalog.pg_extension_config_dump('crm.product_product_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm."order"', '');
SELECT pg_catalog.pg_extension_config_dump('crm.order_order_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.order_line', '');
SELECT pg_catalog.pg_extension_config_dump('crm.task', '');
SELECT pg_catalog.pg_extension_config_dump('crm.task_task_id_seq', '');

-- New contacts start at the stage their lead source implies (a form is a
-- lead, a newsletter sign-up a subscriber) unless the INSERT gives one;
-- updated_at follows every UPDATE.
CREATE FUNCTION crm.contact_defaults() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		IF NEW.stage IS NULL THEN
			NEW.stage := coalesce((SELECT s.initial_stage FROM crm.lead_source s
								   WHERE s.source OPERATOR(pg_catalog.=) NEW.lead_source),
								  'lead');
		END IF;
	ELSE
		NEW.updated_at := now();
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION crm.contact_defaults() IS 'trigger: initial stage from the lead source; updated_at on update';
CREATE TRIGGER contact_defaults BEFORE INSERT OR UPDATE ON crm.contact
	FOR EACH ROW EXECUTE FUNCTION crm.contact_defaults();
ALTER TABLE crm.contact ALTER COLUMN stage SET NOT NULL;

-- ---------------------------------------------------------------------------
-- Consent: an append-only ledger per contact and channel.  The current state
-- of a channel is its latest row; no row means no consent.
-- ---------------------------------------------------------------------------
CREATE TABLE crm.consent (
	contact_id	bigint NOT NULL REFERENCES crm.contact,
	consent_id	bigint GENERATED BY DEFAULT AS IDENTITY,
	channel		text NOT NULL REFERENCES crm.channel,
	status		text NOT NULL
		CONSTRAINT status_granted_denied_revoked CHECK (status IN ('granted', 'denied', 'revoked')),
	recorded_at timestamptz NOT NULL DEFAULT now(),
	valid_until timestamptz,
	source		text,
	actor		text NOT NULL DEFAULT current_user,
	note		text,
	merged_from bigint,
	CONSTRAINT valid_until_after_recorded_at CHECK (valid_until > recorded_at),
	PRIMARY KEY (contact_id, consent_id)
);
COMMENT ON TABLE crm.consent IS 'append-only consent ledger: granted / denied / revoked per contact and channel, with source, actor and expiry';
COMMENT ON COLUMN crm.consent.merged_from IS
	'set on rows crm.merge_contacts copied from a merged-away contact: that contact''s id (see crm.merge_log)';
CREATE INDEX consent_current_idx ON crm.consent (contact_id, channel, recorded_at DESC, consent_id DESC);
SELECT pg_catalog.pg_extension_config_dump('crm.consent', '');
SELECT pg_catalog.pg_extension_config_dump('crm.consent_consent_id_seq', '');

-- The ledger is history: a change of mind is a new row, never an edit.
--
-- Two paths may still remove or redact rows, and neither is a switch a user
-- can flip (no GUC, no session variable): each is allowed only when the
-- invariant that makes it harmless already holds in the database.
--  * DELETE of a row of contact D is allowed when this very transaction has
--    logged the merge of D (crm.merge_log, dropped_id = D, txid = ours) and
--    an identical copy of the row (channel, status, recorded_at,
--    valid_until, source, actor) already sits on the kept contact with
--    merged_from = D.  That is what crm.merge_contacts does: it re-inserts
--    the history onto the kept contact, then removes the originals so the
--    merged-away contact can be deleted.  Whoever deletes this way has
--    therefore moved the row, not lost it.
--  * UPDATE that only clears note (to NULL) is allowed for a contact that
--    crm.erasure_log records as forgotten: crm.forget_contact redacts free
--    text that may hold personal data, and keeps status, channel and times.
-- Everything else (any other UPDATE or DELETE, and TRUNCATE) is refused.
CREATE FUNCTION crm.consent_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_LEVEL = 'ROW' AND TG_OP = 'DELETE' AND EXISTS (
		SELECT 1 FROM crm.merge_log m
		  JOIN crm.consent c ON c.contact_id OPERATOR(pg_catalog.=) m.kept_id
		 WHERE m.dropped_id OPERATOR(pg_catalog.=) OLD.contact_id
		   AND m.txid OPERATOR(pg_catalog.=) pg_catalog.txid_current()
		   AND c.merged_from OPERATOR(pg_catalog.=) OLD.contact_id
		   AND c.channel OPERATOR(pg_catalog.=) OLD.channel
		   AND c.status OPERATOR(pg_catalog.=) OLD.status
		   AND c.recorded_at OPERATOR(pg_catalog.=) OLD.recorded_at
		   AND c.valid_until IS NOT DISTINCT FROM OLD.valid_until
		   AND c.source IS NOT DISTINCT FROM OLD.source
		   AND c.actor OPERATOR(pg_catalog.=) OLD.actor) THEN
		RETURN OLD;
	END IF;
	IF TG_LEVEL = 'ROW' AND TG_OP = 'UPDATE' AND NEW.note IS NULL
	   AND (to_jsonb(NEW) - 'note') OPERATOR(pg_catalog.=) (to_jsonb(OLD) - 'note')
	   AND EXISTS (SELECT 1 FROM crm.erasure_log e
				    WHERE e.contact_id OPERATOR(pg_catalog.=) OLD.contact_id) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'crm.consent is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'object_not_in_prerequisite_state',
			  DETAIL = 'Consent rows are the legal record of what a contact agreed to and when.',
			  HINT = 'Record a change of consent by inserting a new row with status granted, denied or revoked.';
END $$;
COMMENT ON FUNCTION crm.consent_append_only() IS
	'trigger: refuses UPDATE, DELETE and TRUNCATE on the consent ledger, except the moves of crm.merge_contacts and the note redaction of crm.forget_contact';
CREATE TRIGGER consent_append_only BEFORE UPDATE OR DELETE ON crm.consent
	FOR EACH ROW EXECUTE FUNCTION crm.consent_append_only();
CREATE TRIGGER consent_no_truncate BEFORE TRUNCATE ON crm.consent
	FOR EACH STATEMENT EXECUTE FUNCTION crm.consent_append_only();

-- Current consent state of one channel: granted and unexpired, and the
-- contact is not flagged do-not-contact.
CREATE FUNCTION crm.can_contact(contact_id bigint, channel text, at timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ok boolean;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM crm.channel c WHERE c.channel = can_contact.channel) THEN
		RAISE EXCEPTION 'unknown channel "%"', can_contact.channel
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Channels are listed in crm.channel; add one with INSERT INTO crm.channel.';
	END IF;
	SELECT l.status = 'granted' AND (l.valid_until IS NULL OR l.valid_until > can_contact.at)
	  INTO ok
	  FROM crm.consent l
	 WHERE l.contact_id = can_contact.contact_id
	   AND l.channel = can_contact.channel
	   AND l.recorded_at <= can_contact.at
	 ORDER BY l.recorded_at DESC, l.consent_id DESC
	 LIMIT 1;
	RETURN coalesce(ok, false)
		AND NOT EXISTS (SELECT 1 FROM crm.contact p
						 WHERE p.contact_id = can_contact.contact_id
						   AND p.do_not_contact IS NOT NULL);
END $$;
COMMENT ON FUNCTION crm.can_contact(bigint, text, timestamptz) IS
	'may this contact be contacted on this channel at this time (default now)? latest consent row granted and unexpired, and not do-not-contact';

-- Current state per contact and channel, for reporting and segment predicates.
CREATE VIEW crm.consent_current WITH (security_invoker = true) AS
SELECT DISTINCT ON (l.contact_id, l.channel)
	   l.contact_id, l.channel, l.status, l.recorded_at, l.valid_until, l.source,
	   (l.status = 'granted' AND (l.valid_until IS NULL OR l.valid_until > now())) AS effective
  FROM crm.consent l
 ORDER BY l.contact_id, l.channel, l.recorded_at DESC, l.consent_id DESC;
COMMENT ON VIEW crm.consent_current IS 'latest consent row per contact and channel; effective = granted and not expired';

-- ---------------------------------------------------------------------------
-- Lead scoring (src/scoring.c): fit and engagement scores kept current by
-- statement-level triggers, with exact exponential decay, explain and grades.
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

-- Combines two decayed sums inside the ledger upsert (see src/scoring.c).
CREATE FUNCTION crm.decayed_sum(v1 double precision, t1 timestamptz, v2 double precision, t2 timestamptz,
	half_life_us double precision) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_decayed_sum' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.decayed_sum(double precision, timestamptz, double precision, timestamptz, double precision) IS
	'value at the later of t1 and t2 of v1 (as of t1) plus v2 (as of t2), decaying with the half-life in microseconds (0 = none)';

-- A deleted rule takes its points with it.
CREATE FUNCTION crm.forget_rule_points() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM crm.score_ledger l USING old_rows o WHERE l.rule_id = o.rule_id;
	DELETE FROM crm.score_event e USING old_rows o WHERE e.rule_id = o.rule_id;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.forget_rule_points() IS 'trigger: removes the ledger and windowed-event rows of deleted rules';
CREATE TRIGGER forget_rule_points AFTER DELETE ON crm.scoring_rule
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_rule_points();
CREATE TRIGGER forget_rule_points AFTER DELETE ON crm.fit_rule
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_rule_points();

-- A deleted contact takes its scores with it (what ON DELETE CASCADE would
-- do, once per statement).  A concurrent activity insert holds a key-share
-- lock on the contact, so the delete waits for it and then sees its rows.
CREATE FUNCTION crm.forget_contact_points() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		TRUNCATE crm.score_ledger, crm.score_event;
	ELSE
		DELETE FROM crm.score_ledger l USING old_rows o WHERE l.contact_id = o.contact_id;
		DELETE FROM crm.score_event e USING old_rows o WHERE e.contact_id = o.contact_id;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.forget_contact_points() IS 'trigger: removes the ledger and windowed-event rows of deleted contacts';
CREATE TRIGGER forget_contact_points AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_contact_points();
CREATE TRIGGER forget_contact_points_truncate AFTER TRUNCATE ON crm.contact
	FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_contact_points();

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
	IF TG_TABLE_NAME = 'scoring_rule' THEN
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
COMMENT ON FUNCTION crm.check_rule() IS 'trigger: validates scoring and fit rules when they are saved';
CREATE TRIGGER check_rule BEFORE INSERT OR UPDATE ON crm.scoring_rule
	FOR EACH ROW EXECUTE FUNCTION crm.check_rule();
CREATE TRIGGER check_rule BEFORE INSERT OR UPDATE ON crm.fit_rule
	FOR EACH ROW EXECUTE FUNCTION crm.check_rule();

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
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed();
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.fit_rule
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed();
CREATE TRIGGER rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.score_group
	FOR EACH STATEMENT EXECUTE FUNCTION crm.rules_changed();

-- Engagement: every INSERT (single, multi-row, INSERT ... SELECT, COPY) is
-- scored once per statement from its transition table.
CREATE FUNCTION crm.score_activities() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_score_activities' LANGUAGE C;
COMMENT ON FUNCTION crm.score_activities() IS 'trigger: scores the inserted activities, set-based, from the transition table';
CREATE TRIGGER score_activities AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_activities();

-- Fit: recomputed for inserted or updated contacts, and for the contacts of
-- an updated company.
CREATE FUNCTION crm.score_contacts() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_score_contacts' LANGUAGE C;
COMMENT ON FUNCTION crm.score_contacts() IS 'trigger: recomputes fit scores of inserted or updated contacts (or of an updated company''s contacts)';
CREATE TRIGGER score_contacts_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts();
CREATE TRIGGER score_contacts_update AFTER UPDATE ON crm.contact
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts();
CREATE TRIGGER score_company_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION crm.score_contacts();

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

CREATE FUNCTION crm.grade_of(score_group text, score double precision) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT g.grade_labels[1 + (SELECT count(*) FROM unnest(g.grade_thresholds) t WHERE score < t)::int]
	  FROM crm.score_group g WHERE g.score_group = grade_of.score_group
$$;
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

-- ---------------------------------------------------------------------------
-- Lifecycle stages (src/lifecycle.c): a forward-only state machine enforced
-- by a row trigger on every path, automatic promotions decided in C triggers
-- in the same transaction as the change that causes them, a history row for
-- every transition, and funnel analytics.
-- ---------------------------------------------------------------------------

-- The policy has at most one row; without one the defaults below apply.
CREATE TABLE crm.lifecycle_policy (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id),
	engagement_group text NOT NULL DEFAULT 'engagement' REFERENCES crm.score_group ON UPDATE CASCADE,
	fit_group	text NOT NULL DEFAULT 'fit' REFERENCES crm.score_group ON UPDATE CASCADE,
	mql_min_engagement double precision DEFAULT 50,
	mql_min_fit double precision DEFAULT 20,
	sql_min_engagement double precision DEFAULT 100,
	sql_min_fit double precision DEFAULT 40,
	sql_acceptance_kinds text[] NOT NULL DEFAULT '{meeting_booked,sales_accepted}',
	churn_after interval NOT NULL DEFAULT '365 days'
		CONSTRAINT churn_after_positive CHECK (churn_after > interval '0'),
	revive_churned boolean NOT NULL DEFAULT true,
	CONSTRAINT sql_thresholds_not_below_mql CHECK (
		(sql_min_engagement IS NULL OR mql_min_engagement IS NULL OR sql_min_engagement >= mql_min_engagement)
		AND (sql_min_fit IS NULL OR mql_min_fit IS NULL OR sql_min_fit >= mql_min_fit)),
	CONSTRAINT mql_sql_thresholds_finite CHECK (
		mql_min_engagement NOT IN ('NaN', 'Infinity', '-Infinity')
		AND mql_min_fit NOT IN ('NaN', 'Infinity', '-Infinity')
		AND sql_min_engagement NOT IN ('NaN', 'Infinity', '-Infinity')
		AND sql_min_fit NOT IN ('NaN', 'Infinity', '-Infinity'))
);
COMMENT ON TABLE crm.lifecycle_policy IS
	'promotion thresholds (NULL = not required), sales-acceptance activity kinds, churn window; one row, defaults when empty';
SELECT pg_catalog.pg_extension_config_dump('crm.lifecycle_policy', '');

-- The policy in force: the row, or the defaults.
CREATE FUNCTION crm.policy() RETURNS crm.lifecycle_policy
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT p FROM (SELECT p, 0 AS o FROM crm.lifecycle_policy p
				   UNION ALL SELECT ROW(true, 'engagement', 'fit', 50, 20, 100, 40,
										'{meeting_booked,sales_accepted}', '365 days', true)::crm.lifecycle_policy, 1) s
	 ORDER BY o LIMIT 1
$$;
COMMENT ON FUNCTION crm.policy() IS 'the lifecycle policy in force: the row of crm.lifecycle_policy, or the defaults';

CREATE TABLE crm.stage_history (
	contact_id	bigint NOT NULL REFERENCES crm.contact ON DELETE CASCADE,
	history_id	bigint GENERATED BY DEFAULT AS IDENTITY,
	from_stage	crm.stage,
	to_stage	crm.stage NOT NULL,
	changed_at	timestamptz NOT NULL DEFAULT now(),
	reason		text,
	actor		text NOT NULL DEFAULT current_user,
	automatic	boolean NOT NULL DEFAULT false,
	forced		boolean NOT NULL DEFAULT false,
	merged_from bigint,
	PRIMARY KEY (contact_id, history_id)
);
COMMENT ON TABLE crm.stage_history IS 'every lifecycle transition: from, to, when, why, by whom, automatic or manual';
COMMENT ON COLUMN crm.stage_history.merged_from IS
	'set on rows crm.merge_contacts moved here from a merged-away contact: the contact they were written for (see crm.merge_log)';
-- The stage of every contact at a time (crm.stages_at, crm.funnel) is one
-- index-only scan of this index in order, keeping each contact's first entry.
CREATE INDEX stage_history_contact_time_idx ON crm.stage_history (contact_id, changed_at DESC, history_id DESC)
	INCLUDE (to_stage);
CREATE INDEX stage_history_time_idx ON crm.stage_history (changed_at);
SELECT pg_catalog.pg_extension_config_dump('crm.stage_history', '');
SELECT pg_catalog.pg_extension_config_dump('crm.stage_history_history_id_seq', '');

-- Forward-only, on every path: a row trigger in C compares old and new stage.
CREATE FUNCTION crm.stage_guard() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_stage_guard' LANGUAGE C;
COMMENT ON FUNCTION crm.stage_guard() IS 'trigger: refuses backward stage moves unless made through crm.set_stage(..., force => true)';
CREATE TRIGGER stage_guard BEFORE UPDATE OF stage ON crm.contact
	FOR EACH ROW EXECUTE FUNCTION crm.stage_guard();

-- One history row per transition, written set-based per statement.
CREATE FUNCTION crm.stage_log() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_stage_log' LANGUAGE C;
COMMENT ON FUNCTION crm.stage_log() IS 'trigger: writes one crm.stage_history row per contact whose stage the statement changed';
CREATE TRIGGER stage_log_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_log();
CREATE TRIGGER stage_log_update AFTER UPDATE ON crm.contact
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_log();

-- Automatic promotions.  Trigger names sort after the scoring triggers
-- ("score_..." < "stage_..."), so promotions see the new scores.
CREATE FUNCTION crm.stage_promote() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_stage_promote' LANGUAGE C;
COMMENT ON FUNCTION crm.stage_promote() IS
	'trigger: applies the lifecycle policy to the contacts a statement on activity, contact, deal or order touched';
CREATE TRIGGER stage_promote AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote();
CREATE TRIGGER stage_promote_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote();
CREATE TRIGGER stage_promote_update AFTER UPDATE ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote();
CREATE TRIGGER stage_promote_insert AFTER INSERT ON crm.deal
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote();
CREATE TRIGGER stage_promote_update AFTER UPDATE ON crm.deal
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote();
CREATE TRIGGER stage_promote AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.stage_promote();

CREATE FUNCTION crm.set_stage(contact_id bigint, stage crm.stage, reason text, force boolean DEFAULT false)
RETURNS crm.stage
	AS 'MODULE_PATHNAME', 'crm_set_stage' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.set_stage(bigint, crm.stage, text, boolean) IS
	'moves a contact to a stage by hand; a backward move needs force => true and a reason; logged in crm.stage_history';

-- The guard's rule as a function, for callers that move stages on their own
-- terms (crm.merge_contacts forces, and logs as forced, only what the guard
-- would refuse).
CREATE FUNCTION crm.stage_move_is_forward(from_stage crm.stage, to_stage crm.stage) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_stage_move_is_forward' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.stage_move_is_forward(crm.stage, crm.stage) IS
	'true if stage_guard lets a move between the two stages through without force (false for an unchanged stage: no move)';

CREATE FUNCTION crm.apply_lifecycle(contact_ids bigint[] DEFAULT NULL) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_apply_lifecycle' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.apply_lifecycle(bigint[]) IS
	're-evaluates the lifecycle policy for the given contacts (everyone when NULL); returns how many moved';

CREATE FUNCTION crm.detect_churn(as_of timestamptz DEFAULT now()) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_detect_churn' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION crm.detect_churn(timestamptz) IS
	'moves customers with no order within the policy''s churn window before as_of to churned; returns how many';

-- Stage of every contact at a time, from the history.
CREATE FUNCTION crm.stages_at(at timestamptz DEFAULT now(), OUT contact_id bigint, OUT stage crm.stage)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT DISTINCT ON (h.contact_id) h.contact_id, h.to_stage
	  FROM crm.stage_history h
	 WHERE h.changed_at <= at
	 ORDER BY h.contact_id, h.changed_at DESC, h.history_id DESC
$$;
COMMENT ON FUNCTION crm.stages_at(timestamptz) IS 'the stage of every contact that existed at a time, from crm.stage_history';

-- The invariant the history keeps: every contact's stage is its last history
-- row, and the stage crm.stages_at (so crm.funnel) reads for it.  Rows
-- written by the calling transaction carry clock times later than its now():
-- pass clock_timestamp() to check them before the commit.
CREATE FUNCTION crm.stage_history_mismatches(at timestamptz DEFAULT now(),
	OUT contact_id bigint, OUT stage crm.stage, OUT last_row_stage crm.stage, OUT stage_at crm.stage)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT c.contact_id, c.stage, l.to_stage, s.stage
	  FROM crm.contact c
	  LEFT JOIN LATERAL (SELECT h.to_stage FROM crm.stage_history h WHERE h.contact_id = c.contact_id
						  ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1) l ON true
	  LEFT JOIN crm.stages_at(at) s ON s.contact_id = c.contact_id
	 WHERE l.to_stage IS DISTINCT FROM c.stage OR s.stage IS DISTINCT FROM c.stage
	 ORDER BY c.contact_id
$$;
COMMENT ON FUNCTION crm.stage_history_mismatches(timestamptz) IS
	'contacts whose stage is not the last row of their crm.stage_history or not what crm.stages_at(at) says; empty when the history explains every stage';

CREATE FUNCTION crm.funnel(at timestamptz DEFAULT now(), OUT stage crm.stage, OUT contacts bigint, OUT share numeric)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	WITH s AS (SELECT a.stage, count(*) AS n FROM crm.stages_at(at) a GROUP BY a.stage)
	SELECT e.stage, coalesce(s.n, 0),
		   round(coalesce(s.n, 0) / nullif(sum(s.n) OVER (), 0), 4)
	  FROM unnest(enum_range(NULL::crm.stage)) e(stage) LEFT JOIN s ON s.stage = e.stage
	 ORDER BY e.stage
$$;
COMMENT ON FUNCTION crm.funnel(timestamptz) IS 'contacts per stage and their share of all contacts at a time (default now), from the history';

CREATE FUNCTION crm.stage_conversion(from_date timestamptz, to_date timestamptz,
	OUT stage crm.stage, OUT entered bigint, OUT moved_on bigint, OUT conversion numeric,
	OUT median_time_in_stage interval, OUT p90_time_in_stage interval)
RETURNS SETOF record
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	-- each record's own timeline: rows a merge moved onto a contact follow
	-- one another (merged_from), not the kept contact's; a merge that kept
	-- the stage (from = to) is no move
	WITH h AS (
		SELECT h.contact_id, h.to_stage, h.changed_at,
			   lead(h.to_stage) OVER w AS next_stage, lead(h.changed_at) OVER w AS left_at
		  FROM crm.stage_history h
		 WHERE h.from_stage IS DISTINCT FROM h.to_stage
		WINDOW w AS (PARTITION BY h.contact_id, h.merged_from ORDER BY h.changed_at, h.history_id)),
	-- moving on is a later funnel stage before to_date; the exits
	-- (disqualified, churned) end the time in stage but are no conversion
	e AS (
		SELECT h.*, (h.next_stage > h.to_stage AND h.next_stage NOT IN ('disqualified', 'churned')
					 AND h.left_at < to_date) AS converted
		  FROM h WHERE h.changed_at >= from_date AND h.changed_at < to_date)
	SELECT s.stage, count(e.contact_id),
		   count(*) FILTER (WHERE e.converted),
		   round(count(*) FILTER (WHERE e.converted)::numeric / nullif(count(e.contact_id), 0), 4),
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY e.left_at - e.changed_at)
			 FILTER (WHERE e.left_at < to_date),
		   percentile_cont(0.9) WITHIN GROUP (ORDER BY e.left_at - e.changed_at)
			 FILTER (WHERE e.left_at < to_date)
	  FROM unnest(enum_range(NULL::crm.stage)) s(stage)
	  LEFT JOIN e ON e.to_stage = s.stage
	 GROUP BY s.stage ORDER BY s.stage
$$;
COMMENT ON FUNCTION crm.stage_conversion(timestamptz, timestamptz) IS
	'per stage: contacts that entered it in [from_date, to_date), how many moved on to a later stage before to_date, the rate, median and p90 time in stage';

CREATE VIEW crm.pipeline WITH (security_invoker = true) AS
SELECT d.pipeline_stage, count(*) AS deals, sum(d.amount) AS amount,
	   round(sum(d.amount * d.probability), 2) AS weighted_amount
  FROM crm.deal d
 WHERE d.status = 'open'
 GROUP BY d.pipeline_stage;
COMMENT ON VIEW crm.pipeline IS 'open deals by pipeline stage: count, amount and probability-weighted amount';

-- ===================================================================
-- Customer lifetime value (src/clv_*.c): the BTYD summary, model types,
-- fitting aggregates and predictions.
-- ===================================================================

-- The per-customer summary in the BTYD conventions
CREATE TYPE crm.btyd_rfm AS (frequency integer, recency double precision, t double precision,
							 monetary_value numeric);
COMMENT ON TYPE crm.btyd_rfm IS 'BTYD summary of one customer: repeat purchases x, recency t_x, age T (in units), mean repeat spend';

CREATE FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz, interval)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_btyd_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz, interval) IS 'transition of crm.btyd_summary (STABLE: days and hours are local, in the session time zone; not STRICT: NULL times are skipped, NULL amounts make the spend NULL)';
CREATE FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_btyd_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz) IS 'transition of crm.btyd_summary with a unit of one day (STABLE: days are local)';
CREATE FUNCTION crm.btyd_summary_final(internal)
RETURNS crm.btyd_rfm AS 'MODULE_PATHNAME', 'crm_btyd_summary_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_final(internal) IS 'final function of crm.btyd_summary (not STRICT: an empty state gives NULL)';
CREATE FUNCTION crm.btyd_summary_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_btyd_summary_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_combine(internal, internal) IS 'combine function of crm.btyd_summary (not STRICT: either state may be empty)';
CREATE FUNCTION crm.btyd_summary_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_btyd_summary_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_serialize(internal) IS 'serialisation of the crm.btyd_summary state';
CREATE FUNCTION crm.btyd_summary_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_btyd_summary_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_deserialize(bytea, internal) IS 'deserialisation of the crm.btyd_summary state';

CREATE AGGREGATE crm.btyd_summary(occurred_at timestamptz, amount numeric, observation_end timestamptz, unit interval) (
	SFUNC = crm.btyd_summary_trans, STYPE = internal, FINALFUNC = crm.btyd_summary_final,
	COMBINEFUNC = crm.btyd_summary_combine, SERIALFUNC = crm.btyd_summary_serialize,
	DESERIALFUNC = crm.btyd_summary_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.btyd_summary(timestamptz, numeric, timestamptz, interval) IS 'one customer''s transactions to (frequency, recency, T, monetary_value): same-day purchases merge, times in units of a whole number of days rounded to 2 decimals, purchases after observation_end ignored';
CREATE AGGREGATE crm.btyd_summary(occurred_at timestamptz, amount numeric, observation_end timestamptz) (
	SFUNC = crm.btyd_summary_trans, STYPE = internal, FINALFUNC = crm.btyd_summary_final,
	COMBINEFUNC = crm.btyd_summary_combine, SERIALFUNC = crm.btyd_summary_serialize,
	DESERIALFUNC = crm.btyd_summary_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.btyd_summary(timestamptz, numeric, timestamptz) IS 'one customer''s transactions to (frequency, recency, T, monetary_value) in days';

-- Model types: fixed length (88 bytes), text form name(param=value,...)
CREATE TYPE crm.bgnbd;
CREATE FUNCTION crm.bgnbd_in(cstring) RETURNS crm.bgnbd AS 'MODULE_PATHNAME', 'crm_bgnbd_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.bgnbd_out(crm.bgnbd) RETURNS cstring AS 'MODULE_PATHNAME', 'crm_bgnbd_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.bgnbd_recv(internal) RETURNS crm.bgnbd AS 'MODULE_PATHNAME', 'crm_bgnbd_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.bgnbd_send(crm.bgnbd) RETURNS bytea AS 'MODULE_PATHNAME', 'crm_bgnbd_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE crm.bgnbd (INPUT = crm.bgnbd_in, OUTPUT = crm.bgnbd_out, RECEIVE = crm.bgnbd_recv,
	SEND = crm.bgnbd_send, INTERNALLENGTH = 88, ALIGNMENT = double);
COMMENT ON TYPE crm.bgnbd IS 'fitted BG/NBD model (Fader, Hardie & Lee 2005): r, alpha, a, b, log-likelihood, customers, standard errors, converged';
COMMENT ON FUNCTION crm.bgnbd_in(cstring) IS 'text input of crm.bgnbd';
COMMENT ON FUNCTION crm.bgnbd_out(crm.bgnbd) IS 'text output of crm.bgnbd';
COMMENT ON FUNCTION crm.bgnbd_recv(internal) IS 'binary input of crm.bgnbd';
COMMENT ON FUNCTION crm.bgnbd_send(crm.bgnbd) IS 'binary output of crm.bgnbd';

CREATE TYPE crm.mbgnbd;
CREATE FUNCTION crm.mbgnbd_in(cstring) RETURNS crm.mbgnbd AS 'MODULE_PATHNAME', 'crm_mbgnbd_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mbgnbd_out(crm.mbgnbd) RETURNS cstring AS 'MODULE_PATHNAME', 'crm_mbgnbd_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mbgnbd_recv(internal) RETURNS crm.mbgnbd AS 'MODULE_PATHNAME', 'crm_mbgnbd_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mbgnbd_send(crm.mbgnbd) RETURNS bytea AS 'MODULE_PATHNAME', 'crm_mbgnbd_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE crm.mbgnbd (INPUT = crm.mbgnbd_in, OUTPUT = crm.mbgnbd_out, RECEIVE = crm.mbgnbd_recv,
	SEND = crm.mbgnbd_send, INTERNALLENGTH = 88, ALIGNMENT = double);
COMMENT ON TYPE crm.mbgnbd IS 'fitted MBG/NBD model (Batislam et al. 2007): r, alpha, a, b, log-likelihood, customers, standard errors, converged';
COMMENT ON FUNCTION crm.mbgnbd_in(cstring) IS 'text input of crm.mbgnbd';
COMMENT ON FUNCTION crm.mbgnbd_out(crm.mbgnbd) IS 'text output of crm.mbgnbd';
COMMENT ON FUNCTION crm.mbgnbd_recv(internal) IS 'binary input of crm.mbgnbd';
COMMENT ON FUNCTION crm.mbgnbd_send(crm.mbgnbd) IS 'binary output of crm.mbgnbd';

CREATE TYPE crm.paretonbd;
CREATE FUNCTION crm.paretonbd_in(cstring) RETURNS crm.paretonbd AS 'MODULE_PATHNAME', 'crm_paretonbd_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.paretonbd_out(crm.paretonbd) RETURNS cstring AS 'MODULE_PATHNAME', 'crm_paretonbd_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.paretonbd_recv(internal) RETURNS crm.paretonbd AS 'MODULE_PATHNAME', 'crm_paretonbd_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.paretonbd_send(crm.paretonbd) RETURNS bytea AS 'MODULE_PATHNAME', 'crm_paretonbd_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE crm.paretonbd (INPUT = crm.paretonbd_in, OUTPUT = crm.paretonbd_out, RECEIVE = crm.paretonbd_recv,
	SEND = crm.paretonbd_send, INTERNALLENGTH = 88, ALIGNMENT = double);
COMMENT ON TYPE crm.paretonbd IS 'fitted Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): r, alpha, s, beta, log-likelihood, customers, standard errors, converged';
COMMENT ON FUNCTION crm.paretonbd_in(cstring) IS 'text input of crm.paretonbd';
COMMENT ON FUNCTION crm.paretonbd_out(crm.paretonbd) IS 'text output of crm.paretonbd';
COMMENT ON FUNCTION crm.paretonbd_recv(internal) IS 'binary input of crm.paretonbd';
COMMENT ON FUNCTION crm.paretonbd_send(crm.paretonbd) IS 'binary output of crm.paretonbd';

CREATE TYPE crm.gammagamma;
CREATE FUNCTION crm.gammagamma_in(cstring) RETURNS crm.gammagamma AS 'MODULE_PATHNAME', 'crm_gammagamma_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.gammagamma_out(crm.gammagamma) RETURNS cstring AS 'MODULE_PATHNAME', 'crm_gammagamma_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.gammagamma_recv(internal) RETURNS crm.gammagamma AS 'MODULE_PATHNAME', 'crm_gammagamma_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.gammagamma_send(crm.gammagamma) RETURNS bytea AS 'MODULE_PATHNAME', 'crm_gammagamma_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE crm.gammagamma (INPUT = crm.gammagamma_in, OUTPUT = crm.gammagamma_out, RECEIVE = crm.gammagamma_recv,
	SEND = crm.gammagamma_send, INTERNALLENGTH = 88, ALIGNMENT = double);
COMMENT ON TYPE crm.gammagamma IS 'fitted Gamma-Gamma spend model (Fader, Hardie & Lee 2005): p, q, gamma, log-likelihood, customers, standard errors, converged';
COMMENT ON FUNCTION crm.gammagamma_in(cstring) IS 'text input of crm.gammagamma';
COMMENT ON FUNCTION crm.gammagamma_out(crm.gammagamma) IS 'text output of crm.gammagamma';
COMMENT ON FUNCTION crm.gammagamma_recv(internal) IS 'binary input of crm.gammagamma';
COMMENT ON FUNCTION crm.gammagamma_send(crm.gammagamma) IS 'binary output of crm.gammagamma';

CREATE TYPE crm.bgbb;
CREATE FUNCTION crm.bgbb_in(cstring) RETURNS crm.bgbb AS 'MODULE_PATHNAME', 'crm_bgbb_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.bgbb_out(crm.bgbb) RETURNS cstring AS 'MODULE_PATHNAME', 'crm_bgbb_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.bgbb_recv(internal) RETURNS crm.bgbb AS 'MODULE_PATHNAME', 'crm_bgbb_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.bgbb_send(crm.bgbb) RETURNS bytea AS 'MODULE_PATHNAME', 'crm_bgbb_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE crm.bgbb (INPUT = crm.bgbb_in, OUTPUT = crm.bgbb_out, RECEIVE = crm.bgbb_recv,
	SEND = crm.bgbb_send, INTERNALLENGTH = 88, ALIGNMENT = double);
COMMENT ON TYPE crm.bgbb IS 'fitted BG/BB model for discrete opportunities (Fader, Hardie & Shang 2010): alpha, beta, gamma, delta, log-likelihood, customers, standard errors, converged';
COMMENT ON FUNCTION crm.bgbb_in(cstring) IS 'text input of crm.bgbb';
COMMENT ON FUNCTION crm.bgbb_out(crm.bgbb) IS 'text output of crm.bgbb';
COMMENT ON FUNCTION crm.bgbb_recv(internal) IS 'binary input of crm.bgbb';
COMMENT ON FUNCTION crm.bgbb_send(crm.bgbb) IS 'binary output of crm.bgbb';

-- Accessors, the same C function for every model
CREATE FUNCTION crm.params(crm.bgnbd) RETURNS jsonb AS 'MODULE_PATHNAME', 'crm_clv_model_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.params(crm.mbgnbd) RETURNS jsonb AS 'MODULE_PATHNAME', 'crm_clv_model_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.params(crm.paretonbd) RETURNS jsonb AS 'MODULE_PATHNAME', 'crm_clv_model_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.params(crm.gammagamma) RETURNS jsonb AS 'MODULE_PATHNAME', 'crm_clv_model_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.params(crm.bgbb) RETURNS jsonb AS 'MODULE_PATHNAME', 'crm_clv_model_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.params(crm.bgnbd) IS 'BG/NBD parameters, standard errors (se), ll, n and converged as jsonb';
COMMENT ON FUNCTION crm.params(crm.mbgnbd) IS 'MBG/NBD parameters, standard errors (se), ll, n and converged as jsonb';
COMMENT ON FUNCTION crm.params(crm.paretonbd) IS 'Pareto/NBD parameters, standard errors (se), ll, n and converged as jsonb';
COMMENT ON FUNCTION crm.params(crm.gammagamma) IS 'Gamma-Gamma parameters, standard errors (se), ll, n and converged as jsonb';
COMMENT ON FUNCTION crm.params(crm.bgbb) IS 'BG/BB parameters, standard errors (se), ll, n and converged as jsonb';

CREATE FUNCTION crm.bgnbd_params(crm.bgnbd, OUT r float8, OUT alpha float8, OUT a float8, OUT b float8,
	OUT ll float8, OUT n float8, OUT converged boolean)
AS 'MODULE_PATHNAME', 'crm_clv_model_record' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.bgnbd_params(crm.bgnbd) IS 'BG/NBD parameters as a record';
CREATE FUNCTION crm.mbgnbd_params(crm.mbgnbd, OUT r float8, OUT alpha float8, OUT a float8, OUT b float8,
	OUT ll float8, OUT n float8, OUT converged boolean)
AS 'MODULE_PATHNAME', 'crm_clv_model_record' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.mbgnbd_params(crm.mbgnbd) IS 'MBG/NBD parameters as a record';
CREATE FUNCTION crm.paretonbd_params(crm.paretonbd, OUT r float8, OUT alpha float8, OUT s float8, OUT beta float8,
	OUT ll float8, OUT n float8, OUT converged boolean)
AS 'MODULE_PATHNAME', 'crm_clv_model_record' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.paretonbd_params(crm.paretonbd) IS 'Pareto/NBD parameters as a record';
CREATE FUNCTION crm.gammagamma_params(crm.gammagamma, OUT p float8, OUT q float8, OUT gamma float8,
	OUT ll float8, OUT n float8, OUT converged boolean)
AS 'MODULE_PATHNAME', 'crm_clv_model_record' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.gammagamma_params(crm.gammagamma) IS 'Gamma-Gamma parameters as a record';
CREATE FUNCTION crm.bgbb_params(crm.bgbb, OUT alpha float8, OUT beta float8, OUT gamma float8, OUT delta float8,
	OUT ll float8, OUT n float8, OUT converged boolean)
AS 'MODULE_PATHNAME', 'crm_clv_model_record' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.bgbb_params(crm.bgbb) IS 'BG/BB parameters as a record';

-- Fitting aggregates: compressed internal state of distinct rows
CREATE FUNCTION crm.clv_rfm_trans(internal, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rfm_trans(internal, float8, float8, float8) IS 'transition of the (frequency, recency, T) fits (not STRICT: rows with a NULL are skipped)';
CREATE FUNCTION crm.clv_rfm_trans(internal, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rfm_trans(internal, float8, float8, float8, float8) IS 'transition of the weighted (frequency, recency, T) fits (not STRICT: rows with a NULL are skipped)';
CREATE FUNCTION crm.clv_spend_trans(internal, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_spend_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_spend_trans(internal, float8, float8) IS 'transition of crm.gammagamma_fit (not STRICT: rows with a NULL are skipped)';
CREATE FUNCTION crm.clv_spend_trans(internal, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_spend_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_spend_trans(internal, float8, float8, float8) IS 'transition of the weighted crm.gammagamma_fit (not STRICT: rows with a NULL are skipped)';
CREATE FUNCTION crm.clv_discrete_trans(internal, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_discrete_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_discrete_trans(internal, float8, float8, float8) IS 'transition of crm.bgbb_fit (not STRICT: rows with a NULL are skipped)';
CREATE FUNCTION crm.clv_discrete_trans(internal, float8, float8, float8, float8)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_discrete_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_discrete_trans(internal, float8, float8, float8, float8) IS 'transition of the weighted crm.bgbb_fit (not STRICT: rows with a NULL are skipped)';
CREATE FUNCTION crm.clv_rows_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_rows_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rows_combine(internal, internal) IS 'combine function of the CLV fits (not STRICT: either state may be empty)';
CREATE FUNCTION crm.clv_rows_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rows_serialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rows_serialize(internal) IS 'serialisation of the CLV fit state (sorted distinct rows with weights)';
CREATE FUNCTION crm.clv_rows_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_clv_rows_deserialize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rows_deserialize(bytea, internal) IS 'deserialisation of the CLV fit state';

CREATE FUNCTION crm.bgnbd_final(internal) RETURNS crm.bgnbd
AS 'MODULE_PATHNAME', 'crm_bgnbd_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.bgnbd_final(internal) IS 'final function of crm.bgnbd_fit: maximum likelihood (not STRICT: an empty input is an error)';
CREATE AGGREGATE crm.bgnbd_fit(frequency float8, recency float8, t float8) (
	SFUNC = crm.clv_rfm_trans, STYPE = internal, FINALFUNC = crm.bgnbd_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.bgnbd_fit(float8, float8, float8) IS 'fit a BG/NBD model to customers (frequency, recency, T) by maximum likelihood';
CREATE AGGREGATE crm.bgnbd_fit(frequency float8, recency float8, t float8, weight float8) (
	SFUNC = crm.clv_rfm_trans, STYPE = internal, FINALFUNC = crm.bgnbd_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.bgnbd_fit(float8, float8, float8, float8) IS 'fit a BG/NBD model to weighted rows (frequency, recency, T, number of customers)';

CREATE FUNCTION crm.mbgnbd_final(internal) RETURNS crm.mbgnbd
AS 'MODULE_PATHNAME', 'crm_mbgnbd_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.mbgnbd_final(internal) IS 'final function of crm.mbgnbd_fit: maximum likelihood (not STRICT: an empty input is an error)';
CREATE AGGREGATE crm.mbgnbd_fit(frequency float8, recency float8, t float8) (
	SFUNC = crm.clv_rfm_trans, STYPE = internal, FINALFUNC = crm.mbgnbd_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.mbgnbd_fit(float8, float8, float8) IS 'fit an MBG/NBD model to customers (frequency, recency, T) by maximum likelihood';
CREATE AGGREGATE crm.mbgnbd_fit(frequency float8, recency float8, t float8, weight float8) (
	SFUNC = crm.clv_rfm_trans, STYPE = internal, FINALFUNC = crm.mbgnbd_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.mbgnbd_fit(float8, float8, float8, float8) IS 'fit an MBG/NBD model to weighted rows (frequency, recency, T, number of customers)';

-- BG/NBD and MBG/NBD predictions
CREATE FUNCTION crm.expected_purchases(model crm.bgnbd, t float8, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_expected_conditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.bgnbd, float8, float8, float8, float8) IS 'BG/NBD: expected purchases in the next t units of a customer with (frequency, recency, T)';
CREATE FUNCTION crm.expected_purchases(model crm.bgnbd, t float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_expected_unconditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.bgnbd, float8) IS 'BG/NBD: expected repeat purchases in the first t units of a new customer';
CREATE FUNCTION crm.p_alive(model crm.bgnbd, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.p_alive(crm.bgnbd, float8, float8, float8) IS 'BG/NBD: probability that a customer with (frequency, recency, T) is still active';
CREATE FUNCTION crm.prob_purchases(model crm.bgnbd, n float8, t float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_prob_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.prob_purchases(crm.bgnbd, float8, float8) IS 'BG/NBD: probability of exactly n repeat purchases in the first t units of a new customer';
CREATE FUNCTION crm.prob_purchases(model crm.mbgnbd, n float8, t float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_prob_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.prob_purchases(crm.mbgnbd, float8, float8) IS 'MBG/NBD: probability of exactly n repeat purchases in the first t units of a new customer';
CREATE FUNCTION crm.prob_purchases(model crm.paretonbd, n float8, t float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_paretonbd_prob_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.prob_purchases(crm.paretonbd, float8, float8) IS 'Pareto/NBD: probability of exactly n repeat purchases in the first t units of a new customer';
CREATE FUNCTION crm.prob_purchases(model crm.bgbb, x float8, n float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgbb_prob_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.prob_purchases(crm.bgbb, float8, float8) IS 'BG/BB: probability of exactly x transactions in the first n opportunities of a new customer';
CREATE FUNCTION crm.log_likelihood(model crm.bgnbd, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_likelihood(crm.bgnbd, float8, float8, float8) IS 'BG/NBD: log-likelihood of one customer';

CREATE FUNCTION crm.expected_purchases(model crm.mbgnbd, t float8, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_expected_conditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.mbgnbd, float8, float8, float8, float8) IS 'MBG/NBD: expected purchases in the next t units of a customer with (frequency, recency, T)';
CREATE FUNCTION crm.expected_purchases(model crm.mbgnbd, t float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_expected_unconditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.mbgnbd, float8) IS 'MBG/NBD: expected repeat purchases in the first t units of a new customer';
CREATE FUNCTION crm.p_alive(model crm.mbgnbd, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.p_alive(crm.mbgnbd, float8, float8, float8) IS 'MBG/NBD: probability that a customer with (frequency, recency, T) is still active';
CREATE FUNCTION crm.log_likelihood(model crm.mbgnbd, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgnbd_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_likelihood(crm.mbgnbd, float8, float8, float8) IS 'MBG/NBD: log-likelihood of one customer';

-- Pareto/NBD
CREATE FUNCTION crm.paretonbd_final(internal) RETURNS crm.paretonbd
AS 'MODULE_PATHNAME', 'crm_paretonbd_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.paretonbd_final(internal) IS 'final function of crm.paretonbd_fit: maximum likelihood (not STRICT: an empty input is an error)';
CREATE AGGREGATE crm.paretonbd_fit(frequency float8, recency float8, t float8) (
	SFUNC = crm.clv_rfm_trans, STYPE = internal, FINALFUNC = crm.paretonbd_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.paretonbd_fit(float8, float8, float8) IS 'fit a Pareto/NBD model to customers (frequency, recency, T) by maximum likelihood';
CREATE AGGREGATE crm.paretonbd_fit(frequency float8, recency float8, t float8, weight float8) (
	SFUNC = crm.clv_rfm_trans, STYPE = internal, FINALFUNC = crm.paretonbd_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.paretonbd_fit(float8, float8, float8, float8) IS 'fit a Pareto/NBD model to weighted rows (frequency, recency, T, number of customers)';
CREATE FUNCTION crm.expected_purchases(model crm.paretonbd, t float8, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_paretonbd_expected_conditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.paretonbd, float8, float8, float8, float8) IS 'Pareto/NBD: expected purchases in the next t units of a customer with (frequency, recency, T)';
CREATE FUNCTION crm.expected_purchases(model crm.paretonbd, t float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_paretonbd_expected_unconditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.paretonbd, float8) IS 'Pareto/NBD: expected repeat purchases in the first t units of a new customer';
CREATE FUNCTION crm.p_alive(model crm.paretonbd, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_paretonbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.p_alive(crm.paretonbd, float8, float8, float8) IS 'Pareto/NBD: probability that a customer with (frequency, recency, T) is still active';
CREATE FUNCTION crm.log_likelihood(model crm.paretonbd, frequency float8, recency float8, "T" float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_paretonbd_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_likelihood(crm.paretonbd, float8, float8, float8) IS 'Pareto/NBD: log-likelihood of one customer';

-- Gamma-Gamma spend
CREATE FUNCTION crm.gammagamma_final(internal) RETURNS crm.gammagamma
AS 'MODULE_PATHNAME', 'crm_gammagamma_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.gammagamma_final(internal) IS 'final function of crm.gammagamma_fit: maximum likelihood (not STRICT: an empty input is an error)';
CREATE AGGREGATE crm.gammagamma_fit(frequency float8, monetary_value float8) (
	SFUNC = crm.clv_spend_trans, STYPE = internal, FINALFUNC = crm.gammagamma_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.gammagamma_fit(float8, float8) IS 'fit a Gamma-Gamma spend model to customers (frequency, mean repeat spend); rows with frequency 0 are ignored';
CREATE AGGREGATE crm.gammagamma_fit(frequency float8, monetary_value float8, weight float8) (
	SFUNC = crm.clv_spend_trans, STYPE = internal, FINALFUNC = crm.gammagamma_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.gammagamma_fit(float8, float8, float8) IS 'fit a Gamma-Gamma spend model to weighted rows; rows with frequency 0 are ignored';
CREATE FUNCTION crm.expected_spend(model crm.gammagamma, frequency float8, monetary_value float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_gammagamma_expected_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_spend(crm.gammagamma, float8, float8) IS 'Gamma-Gamma: conditional expected mean spend per transaction (population mean when frequency is 0); needs q > 1';
CREATE FUNCTION crm.log_likelihood(model crm.gammagamma, frequency float8, monetary_value float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_gammagamma_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_likelihood(crm.gammagamma, float8, float8) IS 'Gamma-Gamma: log-likelihood of one customer with repeat purchases';

-- BG/BB
CREATE FUNCTION crm.bgbb_final(internal) RETURNS crm.bgbb
AS 'MODULE_PATHNAME', 'crm_bgbb_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.bgbb_final(internal) IS 'final function of crm.bgbb_fit: maximum likelihood (not STRICT: an empty input is an error)';
CREATE AGGREGATE crm.bgbb_fit(frequency float8, recency float8, n float8) (
	SFUNC = crm.clv_discrete_trans, STYPE = internal, FINALFUNC = crm.bgbb_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.bgbb_fit(float8, float8, float8) IS 'fit a BG/BB model to customers (frequency, recency, n opportunities)';
CREATE AGGREGATE crm.bgbb_fit(frequency float8, recency float8, n float8, weight float8) (
	SFUNC = crm.clv_discrete_trans, STYPE = internal, FINALFUNC = crm.bgbb_final,
	COMBINEFUNC = crm.clv_rows_combine, SERIALFUNC = crm.clv_rows_serialize,
	DESERIALFUNC = crm.clv_rows_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.bgbb_fit(float8, float8, float8, float8) IS 'fit a BG/BB model to weighted rows (frequency, recency, n, number of customers)';
CREATE FUNCTION crm.expected_purchases(model crm.bgbb, periods float8, frequency float8, recency float8, n float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgbb_expected_conditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.bgbb, float8, float8, float8, float8) IS 'BG/BB: expected transactions in the next periods opportunities of a customer with (frequency, recency, n)';
CREATE FUNCTION crm.expected_purchases(model crm.bgbb, n float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgbb_expected_unconditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_purchases(crm.bgbb, float8) IS 'BG/BB: expected transactions in the first n opportunities of a new customer';
CREATE FUNCTION crm.p_alive(model crm.bgbb, frequency float8, recency float8, n float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgbb_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.p_alive(crm.bgbb, float8, float8, float8) IS 'BG/BB: probability that a customer with (frequency, recency, n) is alive at opportunity n + 1';
CREATE FUNCTION crm.log_likelihood(model crm.bgbb, frequency float8, recency float8, n float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgbb_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_likelihood(crm.bgbb, float8, float8, float8) IS 'BG/BB: log-likelihood of one customer';

-- Discounted CLV: transaction model x spend model
CREATE FUNCTION crm.clv(transaction_model crm.bgnbd, spend_model crm.gammagamma, frequency float8, recency float8,
	"T" float8, monetary_value float8, horizon float8, discount_rate float8, unit float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_clv_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv(crm.bgnbd, crm.gammagamma, float8, float8, float8, float8, float8, float8, float8) IS 'discounted CLV over horizon periods of unit model-time each, discount_rate per period (BG/NBD x Gamma-Gamma)';
CREATE FUNCTION crm.clv(transaction_model crm.mbgnbd, spend_model crm.gammagamma, frequency float8, recency float8,
	"T" float8, monetary_value float8, horizon float8, discount_rate float8, unit float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_clv_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv(crm.mbgnbd, crm.gammagamma, float8, float8, float8, float8, float8, float8, float8) IS 'discounted CLV over horizon periods of unit model-time each, discount_rate per period (MBG/NBD x Gamma-Gamma)';
CREATE FUNCTION crm.clv(transaction_model crm.paretonbd, spend_model crm.gammagamma, frequency float8, recency float8,
	"T" float8, monetary_value float8, horizon float8, discount_rate float8, unit float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_clv_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv(crm.paretonbd, crm.gammagamma, float8, float8, float8, float8, float8, float8, float8) IS 'discounted CLV over horizon periods of unit model-time each, discount_rate per period (Pareto/NBD x Gamma-Gamma)';

-- Deterministic simulator (recovery tests, benchmarks)
CREATE FUNCTION crm.bgnbd_simulate(model crm.bgnbd, "T" float8, seed bigint, step float8 DEFAULT 0,
	OUT frequency float8, OUT recency float8, OUT t float8)
AS 'MODULE_PATHNAME', 'crm_bgnbd_simulate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.bgnbd_simulate(crm.bgnbd, float8, bigint, float8) IS 'one customer drawn from a BG/NBD model, observed for T units; the same seed gives the same customer; times rounded up to multiples of step when step > 0';
CREATE FUNCTION crm.mbgnbd_simulate(model crm.mbgnbd, "T" float8, seed bigint, step float8 DEFAULT 0,
	OUT frequency float8, OUT recency float8, OUT t float8)
AS 'MODULE_PATHNAME', 'crm_mbgnbd_simulate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.mbgnbd_simulate(crm.mbgnbd, float8, bigint, float8) IS 'one customer drawn from an MBG/NBD model (dropout possible at time 0 and after each purchase), observed for T units; the same seed gives the same customer; times rounded up to multiples of step when step > 0';
CREATE FUNCTION crm.paretonbd_simulate(model crm.paretonbd, "T" float8, seed bigint, step float8 DEFAULT 0,
	OUT frequency float8, OUT recency float8, OUT t float8)
AS 'MODULE_PATHNAME', 'crm_paretonbd_simulate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.paretonbd_simulate(crm.paretonbd, float8, bigint, float8) IS 'one customer drawn from a Pareto/NBD model (exponential lifetime), observed for T units; the same seed gives the same customer; times rounded up to multiples of step when step > 0';
CREATE FUNCTION crm.bgbb_simulate(model crm.bgbb, opportunities float8, seed bigint,
	OUT frequency float8, OUT recency float8, OUT n float8)
AS 'MODULE_PATHNAME', 'crm_bgbb_simulate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.bgbb_simulate(crm.bgbb, float8, bigint) IS 'one customer drawn from a BG/BB model over n transaction opportunities (dropout at the start of each, then a purchase with probability p); the same seed gives the same customer';
CREATE FUNCTION crm.gammagamma_simulate(model crm.gammagamma, frequency float8, seed bigint)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_gammagamma_simulate' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.gammagamma_simulate(crm.gammagamma, float8, bigint) IS 'monetary value (mean of frequency purchase values) of one customer drawn from a Gamma-Gamma model; the same seed gives the same customer';

-- ===================================================================
-- Simple CLV and retention over crm."order" (src/clv_retention.sql).
-- Orders that were cancelled or refunded do not count as purchases.
-- ===================================================================

CREATE FUNCTION crm.historic_clv(contact_id bigint)
RETURNS numeric
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(sum(o.total), 0)
	  FROM crm."order" o
	 WHERE o.contact_id OPERATOR(pg_catalog.=) $1
	   AND o.status OPERATOR(pg_catalog.<>) ALL (ARRAY['cancelled', 'refunded'])
$$;
COMMENT ON FUNCTION crm.historic_clv(bigint) IS 'value to date of a contact: the sum of its orders, cancelled and refunded ones left out (0 without orders)';

CREATE FUNCTION crm.simple_clv(margin numeric, retention numeric, discount numeric)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF margin = 'NaN' OR retention = 'NaN' OR discount = 'NaN' THEN
		RAISE EXCEPTION 'simple_clv arguments must not be NaN' USING ERRCODE = '22023';
	END IF;
	IF retention < 0 OR retention > 1 THEN
		RAISE EXCEPTION 'retention must be between 0 and 1, not %', retention
			USING ERRCODE = '22023', HINT = 'Retention is the share of customers kept per period, e.g. 0.8.';
	END IF;
	IF discount < 0 THEN
		RAISE EXCEPTION 'discount rate must not be negative, not %', discount USING ERRCODE = '22023';
	END IF;
	IF 1 + discount - retention <= 0 THEN
		RAISE EXCEPTION 'simple_clv is infinite with retention 1 and discount 0'
			USING ERRCODE = '22023', HINT = 'Use a positive discount rate or a retention below 1.';
	END IF;
	RETURN margin * retention / (1 + discount - retention);
END
$$;
COMMENT ON FUNCTION crm.simple_clv(numeric, numeric, numeric) IS 'simple CLV: margin * r / (1 + d - r) for a margin per period, retention r and discount rate d per period';

CREATE FUNCTION crm.period_index(ts timestamptz, period interval)
RETURNS bigint
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	months int := extract(year FROM period)::int * 12 + extract(month FROM period)::int;
	secs numeric := extract(epoch FROM (period - make_interval(months => months)));
BEGIN
	IF months > 0 AND secs = 0 THEN
		RETURN floor(((extract(year FROM ts)::int - 2000) * 12 + extract(month FROM ts)::int - 1)::numeric / months);
	ELSIF months = 0 AND secs > 0 THEN
		RETURN floor(extract(epoch FROM (ts::timestamp - timestamp '2000-01-03')) / secs);
	END IF;
	RAISE EXCEPTION 'period must be positive and either whole months or a fixed length, not %', period
		USING ERRCODE = '22023', HINT = 'Use ''1 month'', ''3 months'', ''1 year'', ''7 days''...';
END
$$;
COMMENT ON FUNCTION crm.period_index(timestamptz, interval) IS 'number of the period (months counted from 2000-01, fixed lengths from Monday 2000-01-03, session time zone) that contains ts';

CREATE FUNCTION crm.period_start(idx bigint, period interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	months int := extract(year FROM period)::int * 12 + extract(month FROM period)::int;
BEGIN
	IF months > 0 THEN
		RETURN (timestamp '2000-01-01' + make_interval(months => (idx * months)::int))::timestamptz;
	END IF;
	RETURN (timestamp '2000-01-03' + idx * period)::timestamptz;
END
$$;
COMMENT ON FUNCTION crm.period_start(bigint, interval) IS 'start of the period numbered idx by crm.period_index';

CREATE FUNCTION crm.churn_rate(period interval, "from" timestamptz, "to" timestamptz)
RETURNS TABLE (period_start timestamptz, active bigint, churned bigint, churn_rate numeric)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM crm.period_index("from", period);	-- validates the period
	IF "from" >= "to" THEN
		RAISE EXCEPTION 'from must be before to' USING ERRCODE = '22023';
	END IF;
	RETURN QUERY
	WITH p AS (
		SELECT s FROM generate_series("from", "to", period) s
		 WHERE s + 2 * period <= "to"),
	act AS (
		SELECT p.s, o.contact_id
		  FROM p JOIN crm."order" o
			ON o.ordered_at >= p.s AND o.ordered_at < p.s + period
		 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])
		 GROUP BY p.s, o.contact_id),
	res AS (
		SELECT act.s, count(*) AS n,
			   count(*) FILTER (WHERE NOT EXISTS (
					SELECT 1 FROM crm."order" o2
					 WHERE o2.contact_id = act.contact_id
					   AND o2.ordered_at >= act.s + period AND o2.ordered_at < act.s + 2 * period
					   AND o2.status <> ALL (ARRAY['cancelled', 'refunded']))) AS lost
		  FROM act GROUP BY act.s)
	SELECT p.s, coalesce(res.n, 0), coalesce(res.lost, 0),
		   CASE WHEN res.n > 0 THEN round(res.lost::numeric / res.n, 4) END
	  FROM p LEFT JOIN res ON res.s = p.s
	 ORDER BY p.s;
END
$$;
COMMENT ON FUNCTION crm.churn_rate(interval, timestamptz, timestamptz) IS 'per period from "from" to "to": customers who bought in the period, how many of them did not buy in the next one, and that share (the churn rate)';

CREATE FUNCTION crm.retention_cohorts(period interval)
RETURNS TABLE (cohort timestamptz, periods_since integer, customers bigint, active bigint, retention numeric)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM crm.period_index(now(), period);	-- validates the period
	RETURN QUERY
	WITH b AS (
		SELECT DISTINCT o.contact_id, crm.period_index(o.ordered_at, period) AS i
		  FROM crm."order" o
		 WHERE o.status <> ALL (ARRAY['cancelled', 'refunded'])),
	f AS (
		SELECT b.contact_id, min(b.i) AS c FROM b GROUP BY b.contact_id),
	sizes AS (
		SELECT f.c, count(*) AS n FROM f GROUP BY f.c)
	SELECT crm.period_start(f.c, period), (b.i - f.c)::integer, sizes.n, count(*),
		   round(count(*)::numeric / sizes.n, 4)
	  FROM b JOIN f USING (contact_id) JOIN sizes ON sizes.c = f.c
	 GROUP BY f.c, b.i - f.c, sizes.n
	 ORDER BY f.c, 2;
END
$$;
COMMENT ON FUNCTION crm.retention_cohorts(interval) IS 'cohorts by the period of the first purchase: for each number of periods since, how many of the cohort bought in that period and their share';

-- ---------------------------------------------------------------------------
-- Identity: match keys, name similarity and duplicate detection
-- (src/identity.c)
-- ---------------------------------------------------------------------------
CREATE FUNCTION crm.match_key(text) RETURNS text
	AS 'MODULE_PATHNAME', 'crm_match_key' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.match_key(text) IS
	'blocking key for names: ICU "Any-Latin; Latin-ASCII", case-folded, apostrophes dropped, other punctuation and spaces collapsed to one space';

CREATE FUNCTION crm.name_similarity(a text, b text) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_name_similarity' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.name_similarity(text, text) IS
	'Jaro-Winkler similarity (0..1) of two names'' match keys, best of as-is, words sorted and romanisation skeleton; 0 when either key is empty';

-- The blocking keys of one contact, as find_duplicates uses them.  These
-- have SQL-standard bodies, bound to pg_catalog when the extension is
-- created, so the caller's search_path cannot redirect them; without a SET
-- clause the planner can inline them.
CREATE FUNCTION crm.phone_key(phone text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN length(regexp_replace(phone, '[^0-9]', '', 'g')) >= 7
			THEN right(regexp_replace(phone, '[^0-9]', '', 'g'), 9) END;
COMMENT ON FUNCTION crm.phone_key(text) IS
	'blocking key for phone numbers: the last 9 digits (so +34 612 345 678 and 612345678 agree); NULL under 7 digits';

CREATE FUNCTION crm.email_handle(email crm.email) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN nullif(replace(split_part(split_part(email::text, '@', 1), '+', 1), '.', ''), '');
COMMENT ON FUNCTION crm.email_handle(crm.email) IS
	'blocking key for e-mail: the local part without dots and +tags (ann.lee+news@x and annlee@y share "annlee")';

-- Candidate duplicate pairs.  Candidates come from blocks (contacts sharing
-- a key); a block larger than max_block is skipped, since a key shared by
-- that many contacts (a switchboard number, info@...) says nothing about
-- identity.  Each candidate is scored from log-odds points, Fellegi-Sunter
-- style, with hand-set weights:
--   name      30 * (similarity - 1)      (0 for the same key, -1.5 at 0.95)
--   e-mail handle equal +3
--   phone     equal +3, both set and different -1
--   birth date equal +3, both set and different -3
--   company   equal +2, both set and different -0.5
--   city      equal +1, both set and different -1
--   country   both set and different -2
-- score = 1 / (1 + exp(-points)); 0.9 needs about 2.2 points: a name plus
-- a phone, a birth date or an e-mail handle, or a near-exact name plus
-- company and city.
CREATE FUNCTION crm.find_duplicates(min_score double precision DEFAULT 0.9, max_block integer DEFAULT 100)
RETURNS TABLE (contact_a bigint, contact_b bigint, score double precision,
			   name_similarity double precision, reasons text[])
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF min_score < 0 OR min_score > 1 OR min_score = 'NaN' THEN
		RAISE EXCEPTION 'min_score must be between 0 and 1, not %', min_score
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF max_block < 2 THEN
		RAISE EXCEPTION 'max_block must be at least 2, not %', max_block
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
	WITH k AS MATERIALIZED (
		SELECT c.contact_id AS id,
			   crm.match_key(concat_ws(' ', c.first_name, c.last_name)) AS nk,
			   crm.phone_key(c.phone) AS pk,
			   crm.email_handle(c.email) AS ek,
			   c.company_id AS co, nullif(crm.match_key(c.city), '') AS ck,
			   c.country AS cy, c.birth_date AS bd
		  FROM crm.contact c),
	ks AS MATERIALIZED (
		-- the name key with its words sorted, so swapped names share blocks
		SELECT k.*, array_to_string(ARRAY(SELECT w FROM unnest(string_to_array(k.nk, ' ')) w ORDER BY w), ' ') AS sk
		  FROM k),
	blocks AS (
		-- one row per (block, contact); b names the kind of block.  A pair
		-- that shares nothing but a name key and a city scores at most
		-- 1 / (1 + exp(-1)) = 0.731, so that block is only built when such
		-- pairs can pass min_score (it is the largest block on real data).
		SELECT 1 AS b, k.ek AS key, k.id FROM ks k WHERE k.ek IS NOT NULL
		UNION ALL SELECT 2, k.pk, k.id FROM ks k WHERE k.pk IS NOT NULL
		UNION ALL SELECT 3, k.bd::text, k.id FROM ks k WHERE k.bd IS NOT NULL AND k.nk <> ''
		UNION ALL SELECT 4, k.sk || '|' || k.co, k.id FROM ks k WHERE k.nk <> '' AND k.co IS NOT NULL
		UNION ALL SELECT 5, k.sk || '|' || k.ck, k.id FROM ks k
				   WHERE k.nk <> '' AND k.ck IS NOT NULL AND min_score <= 0.7311
		UNION ALL SELECT 6, k.co || '|' || left(k.sk, 1), k.id FROM ks k WHERE k.nk <> '' AND k.co IS NOT NULL),
	sized AS (
		SELECT s.b, s.key, s.id, count(*) OVER (PARTITION BY s.b, s.key) AS n FROM blocks s),
	cand AS (
		SELECT DISTINCT x.id AS a, y.id AS b
		  FROM sized x JOIN sized y
			ON x.b = y.b AND x.key = y.key AND x.id < y.id
		 WHERE x.n <= max_block AND y.n <= max_block AND x.n > 1),
	scored AS (
		SELECT p.a, p.b, ka.nk = kb.nk AS same_name, sim.s,
			   ka.ek = kb.ek AS same_handle, ka.pk = kb.pk AS same_phone, ka.bd = kb.bd AS same_birth,
			   ka.co = kb.co AS same_company, ka.ck = kb.ck AS same_city,
			   30 * (sim.s - 1)
			   + CASE WHEN ka.ek = kb.ek THEN 3 ELSE 0 END
			   + CASE WHEN ka.pk = kb.pk THEN 3 WHEN ka.pk <> kb.pk THEN -1 ELSE 0 END
			   + CASE WHEN ka.bd = kb.bd THEN 3 WHEN ka.bd <> kb.bd THEN -3 ELSE 0 END
			   + CASE WHEN ka.co = kb.co THEN 2 WHEN ka.co <> kb.co THEN -0.5 ELSE 0 END
			   + CASE WHEN ka.ck = kb.ck THEN 1 WHEN ka.ck <> kb.ck THEN -1 ELSE 0 END
			   + CASE WHEN ka.cy <> kb.cy THEN -2 ELSE 0 END AS points
		  FROM cand p
		  JOIN k ka ON ka.id = p.a
		  JOIN k kb ON kb.id = p.b
		 CROSS JOIN LATERAL (SELECT CASE WHEN ka.nk = kb.nk AND ka.nk <> '' THEN 1.0::float8
										 ELSE crm.name_similarity(ka.nk, kb.nk) END AS s) sim)
	SELECT s.a, s.b, 1 / (1 + exp(-s.points)), s.s,
		   array_remove(ARRAY[
			   CASE WHEN s.same_handle THEN 'same e-mail handle' END,
			   CASE WHEN s.same_phone THEN 'same phone' END,
			   CASE WHEN s.same_name THEN 'same name' WHEN s.s >= 0.85 THEN 'similar name' END,
			   CASE WHEN s.same_birth THEN 'same birth date' END,
			   CASE WHEN s.same_company THEN 'same company' END,
			   CASE WHEN s.same_city THEN 'same city' END], NULL)
	  FROM scored s
	 WHERE 1 / (1 + exp(-s.points)) >= min_score
	 ORDER BY 3 DESC, 1, 2;
END $$;
COMMENT ON FUNCTION crm.find_duplicates(double precision, integer) IS
	'candidate duplicate contacts found by blocking on e-mail handle, phone, birth date, name key + company, name key + city and company + initial; scored 0..1 with reasons';

-- ---------------------------------------------------------------------------
-- Privacy: lossless merge of duplicate contacts, the right to be forgotten,
-- consent history.
-- ---------------------------------------------------------------------------

-- How crm.merge_contacts treats the rows of one table that point at a
-- contact.  Tables not listed get the default, 'move'.  Other features
-- register their tables here (INSERT INTO crm.merge_rule ...).
--   move      UPDATE the contact column to the kept contact.  Where a unique
--             key would clash (the kept contact already has a row with the
--             same key, e.g. a per-contact summary row), the kept contact's
--             row wins and the dropped contact's row is deleted; its full
--             before-image goes into crm.merge_log.conflicts.
--   delete    derived rows that the kept contact's own rows will rebuild:
--             the dropped contact's rows are deleted, before-images logged.
--   function  merge_function(keep bigint, drop bigint) is called first and
--             must leave no row of the dropped contact in the table (e.g. a
--             score table adds the two ledgers and rescores the kept contact).
CREATE TABLE crm.merge_rule (
	table_name	regclass PRIMARY KEY,
	contact_column name NOT NULL DEFAULT 'contact_id',
	action		text NOT NULL DEFAULT 'move'
		CONSTRAINT action_move_delete_function CHECK (action IN ('move', 'delete', 'function')),
	merge_function regprocedure,
	note		text,
	CONSTRAINT merge_function_iff_function CHECK ((action = 'function') = (merge_function IS NOT NULL))
);
COMMENT ON TABLE crm.merge_rule IS
	'how crm.merge_contacts treats a table''s rows of the dropped contact: move (default), delete, or call merge_function(keep, drop)';
SELECT pg_catalog.pg_extension_config_dump('crm.merge_rule', '');

-- Every merge, with what it moved and the full before-image of both contacts.
CREATE TABLE crm.merge_log (
	merge_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	kept_id		bigint NOT NULL,
	dropped_id	bigint NOT NULL,
	merged_at	timestamptz NOT NULL DEFAULT now(),
	merged_by	text NOT NULL DEFAULT current_user,
	txid		bigint NOT NULL DEFAULT txid_current(),
	dropped_row jsonb NOT NULL,
	kept_row	jsonb NOT NULL,
	moved		jsonb NOT NULL DEFAULT '[]',
	conflicts	jsonb NOT NULL DEFAULT '[]',
	CONSTRAINT kept_is_not_dropped CHECK (kept_id <> dropped_id)
);
COMMENT ON TABLE crm.merge_log IS
	'one row per crm.merge_contacts: who, when, rows moved per table, before-images of both contacts and of rows removed on key clashes';
CREATE INDEX merge_log_dropped_idx ON crm.merge_log (dropped_id);
CREATE INDEX merge_log_kept_idx ON crm.merge_log (kept_id);
SELECT pg_catalog.pg_extension_config_dump('crm.merge_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm.merge_log_merge_id_seq', '');

-- Every erasure: when, why, by whom; no personal data (an optional salted
-- hash of the address, to honour "do not re-add").
CREATE TABLE crm.erasure_log (
	erasure_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	contact_id	bigint NOT NULL UNIQUE,
	erased_at	timestamptz NOT NULL DEFAULT now(),
	erased_by	text NOT NULL DEFAULT current_user,
	reason		text NOT NULL
		CONSTRAINT reason_not_empty CHECK (btrim(reason) <> ''),
	email_hash	bytea,
	details		jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE crm.erasure_log IS
	'right-to-be-forgotten record: contact id, when, by whom, why, rows redacted; no personal data except an optional salted e-mail hash';
CREATE INDEX erasure_log_hash_idx ON crm.erasure_log (email_hash) WHERE email_hash IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('crm.erasure_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm.erasure_log_erasure_id_seq', '');

-- The secret salt of e-mail hashes, created on first use (so that a restore
-- brings back the dumped salt rather than a new one).
CREATE TABLE crm.privacy_salt (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id),
	salt		bytea NOT NULL
);
COMMENT ON TABLE crm.privacy_salt IS 'the secret salt of erasure_log.email_hash (one row, made by the first crm.forget_contact that keeps a hash)';
SELECT pg_catalog.pg_extension_config_dump('crm.privacy_salt', '');

-- Lifecycle rank used when two stages meet in a merge: the most advanced
-- wins; churned ranks just below customer (it was one), disqualified lowest.
CREATE FUNCTION crm.stage_rank(crm.stage) RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE $1 WHEN 'disqualified' THEN 0 WHEN 'subscriber' THEN 1 WHEN 'lead' THEN 2
			   WHEN 'mql' THEN 3 WHEN 'sql' THEN 4 WHEN 'opportunity' THEN 5
			   WHEN 'churned' THEN 5.5 WHEN 'customer' THEN 6 WHEN 'evangelist' THEN 7 END;
COMMENT ON FUNCTION crm.stage_rank(crm.stage) IS
	'how advanced a lifecycle stage is, for merges: disqualified 0 < subscriber ... opportunity 5 < churned 5.5 < customer 6 < evangelist 7';

-- The stage of two merged contacts: the more advanced one.
CREATE FUNCTION crm.merged_stage(crm.stage, crm.stage) RETURNS crm.stage
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN crm.stage_rank($2) > crm.stage_rank($1) THEN $2 ELSE $1 END;
COMMENT ON FUNCTION crm.merged_stage(crm.stage, crm.stage) IS
	'the stage a merge gives the kept contact (first argument: its stage; second: the dropped contact''s): the more advanced by crm.stage_rank';

-- Every (table, column) that points at crm.contact.contact_id: foreign keys
-- found at run time, followed through composite keys (order_line points at
-- "order" (contact_id, order_id), which points at contact), plus tables
-- registered in crm.merge_rule without a foreign key.
CREATE TYPE crm.contact_reference AS (table_name regclass, contact_column name, action text, merge_function regprocedure);
COMMENT ON TYPE crm.contact_reference IS 'a table and column that hold a contact id, with the merge action (see crm.contact_references())';
CREATE FUNCTION crm.contact_references()
RETURNS SETOF crm.contact_reference
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	WITH RECURSIVE refs(relid, attnum, depth) AS (
		SELECT 'crm.contact'::regclass::oid, a.attnum, 0
		  FROM pg_attribute a
		 WHERE a.attrelid = 'crm.contact'::regclass AND a.attname = 'contact_id'
		UNION
		SELECT con.conrelid, con.conkey[array_position(con.confkey, r.attnum)], r.depth + 1
		  FROM refs r
		  JOIN pg_constraint con ON con.confrelid = r.relid AND con.contype = 'f'
		   AND r.attnum = ANY (con.confkey)
		 WHERE r.depth < 8 AND con.conrelid <> 'crm.contact'::regclass),
	found AS (
		SELECT DISTINCT r.relid, a.attname
		  FROM refs r JOIN pg_attribute a ON a.attrelid = r.relid AND a.attnum = r.attnum
		 WHERE r.depth > 0
		UNION
		SELECT d.relid, 'contact_id' FROM derived d
		UNION
		SELECT m.table_name, m.contact_column FROM crm.merge_rule m),
	-- scoring state has no foreign key (see src/scoring.sql); the merge
	-- deletes the dropped contact's rows and rescores the kept contact
	derived(relid, action) AS (
		VALUES ('crm.score_ledger'::regclass::oid, 'delete'), ('crm.score_event'::regclass::oid, 'delete'))
	SELECT f.relid::regclass, f.attname, coalesce(m.action, d.action, 'move'), m.merge_function
	  FROM found f LEFT JOIN crm.merge_rule m ON m.table_name = f.relid
	  LEFT JOIN derived d ON d.relid = f.relid
	 ORDER BY f.relid::regclass::text, f.attname
$$;
COMMENT ON FUNCTION crm.contact_references() IS
	'tables and columns that hold a contact id (foreign keys to crm.contact, followed through composite keys, the scoring state, and crm.merge_rule), with the merge action';

-- Where the contact of an id went: itself, or the contact it was merged
-- into (following chains), or NULL if it does not exist.
CREATE FUNCTION crm.merged_into(contact_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cur bigint := merged_into.contact_id;
	nxt bigint;
BEGIN
	FOR hop IN 1..100 LOOP
		IF EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = cur) THEN
			RETURN cur;
		END IF;
		SELECT m.kept_id INTO nxt FROM crm.merge_log m
		 WHERE m.dropped_id = cur ORDER BY m.merge_id DESC LIMIT 1;
		IF nxt IS NULL THEN
			RETURN NULL;
		END IF;
		cur := nxt;
	END LOOP;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.merged_into(bigint) IS
	'the live contact an id now stands for: itself, or the contact it was merged into (following merge chains); NULL if none';

-- Raise P0002 for a contact that is not there, saying where a merged one went.
CREATE FUNCTION crm.require_contact(contact_id bigint, what text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	went bigint;
BEGIN
	IF EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = require_contact.contact_id) THEN
		RETURN;
	END IF;
	SELECT m.kept_id INTO went FROM crm.merge_log m
	 WHERE m.dropped_id = require_contact.contact_id ORDER BY m.merge_id DESC LIMIT 1;
	IF went IS NOT NULL THEN
		RAISE EXCEPTION '% contact % does not exist', what, require_contact.contact_id
			USING ERRCODE = 'no_data_found',
				  DETAIL = format('Contact %s was merged into contact %s.', require_contact.contact_id, went),
				  HINT = 'Use crm.merged_into(id) to find the live contact.';
	END IF;
	RAISE EXCEPTION '% contact % does not exist', what, require_contact.contact_id
		USING ERRCODE = 'no_data_found',
			  HINT = 'Check the id; under row-level security you only see the contacts you may change.';
END $$;
COMMENT ON FUNCTION crm.require_contact(bigint, text) IS
	'raises P0002 naming the contact (and where it was merged to) unless it exists and is visible';

-- Merge two records of one person into `keep`.  See the README for the
-- rules; in short: lock both contacts (in id order, so two merges cannot
-- deadlock), log both before-images, run registered merge functions, move
-- the consent ledger (copy onto keep, then remove; see crm.consent_append_only),
-- delete rows that clash on a unique key (logged), move every other row in
-- one statement (so composite foreign keys such as order_line -> order are
-- checked once both sides moved; stage history rows are marked merged_from),
-- check that nothing still points at drop, fill keep's empty fields, delete
-- drop, and end keep's stage history with a row recording the merge.
CREATE FUNCTION crm.merge_contacts(keep bigint, drop bigint, dry_run boolean DEFAULT false)
RETURNS TABLE (item text, action text, rows bigint)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k crm.contact;
	d crm.contact;
	r record;
	ix record;
	n bigint;
	log_id bigint;
	v_moved jsonb := '[]';
	v_conflicts jsonb := '[]';
	ctes text[] := '{}';
	names text[] := '{}';
	counts bigint[];
	cond text;
	stmt text;
	cols text;
	merged jsonb;
	nref int := 0;
	refs crm.contact_reference[];
	cur crm.stage;
	v_stage crm.stage;
	v_forced boolean;
	v_reason text;
BEGIN
	IF keep = drop THEN
		RAISE EXCEPTION 'cannot merge contact % into itself', keep
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass two different contact ids: the one to keep and the duplicate to drop.';
	END IF;
	-- lock both in id order; a concurrent insert's foreign-key check waits
	PERFORM 1 FROM crm.contact c WHERE c.contact_id IN (keep, drop)
	 ORDER BY c.contact_id FOR UPDATE;
	PERFORM crm.require_contact(keep, 'kept');
	PERFORM crm.require_contact(drop, 'dropped');
	SELECT * INTO k FROM crm.contact c WHERE c.contact_id = keep;
	SELECT * INTO d FROM crm.contact c WHERE c.contact_id = drop;
	-- the catalog walk once, not once per step
	refs := ARRAY(SELECT x FROM crm.contact_references() x);

	IF dry_run THEN
		FOR r IN SELECT * FROM unnest(refs) LOOP
			EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.table_name, r.contact_column)
			   INTO n USING drop;
			IF n > 0 THEN
				item := r.table_name::text;
				action := CASE WHEN r.table_name = 'crm.consent'::regclass THEN 'copy to keep'
							   WHEN r.action = 'function' THEN 'call ' || r.merge_function::text
							   WHEN r.table_name = 'crm.stage_history'::regclass AND r.action = 'move'
								 THEN 'move, marked merged_from'
							   ELSE r.action END;
				rows := n;
				RETURN NEXT;
			END IF;
		END LOOP;
		v_stage := crm.merged_stage(k.stage, d.stage);
		item := 'crm.stage_history';
		action := format('record the merge: %s -> %s%s', k.stage, v_stage,
						 CASE WHEN crm.stage_move_is_forward(k.stage, v_stage) OR k.stage = v_stage
							  THEN '' ELSE ' (forced)' END);
		rows := 1;
		RETURN NEXT;
		item := 'crm.contact'; action := 'fill empty fields of keep, then delete drop'; rows := 1;
		RETURN NEXT;
		RETURN;
	END IF;

	INSERT INTO crm.merge_log (kept_id, dropped_id, dropped_row, kept_row)
	VALUES (keep, drop, to_jsonb(d), to_jsonb(k))
	RETURNING merge_id INTO log_id;

	-- registered merge functions see both contacts first
	FOR r IN SELECT * FROM unnest(refs) x WHERE x.action = 'function' LOOP
		EXECUTE format('SELECT %s($1, $2)', r.merge_function::regproc) USING keep, drop;
		EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.table_name, r.contact_column)
		   INTO n USING drop;
		IF n > 0 THEN
			RAISE EXCEPTION 'merge function % left % rows of contact % in %', r.merge_function, n, drop, r.table_name
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
		v_moved := v_moved || jsonb_build_object('table', r.table_name::text, 'action', 'merged by ' || r.merge_function::text);
	END LOOP;

	-- consent: copy the ledger onto keep, settle each channel on the most
	-- restrictive current state of the two, then remove the originals
	INSERT INTO crm.consent (contact_id, channel, status, recorded_at, valid_until, source, actor, note, merged_from)
	SELECT keep, l.channel, l.status, l.recorded_at, l.valid_until, l.source, l.actor, l.note, drop
	  FROM crm.consent l WHERE l.contact_id = drop ORDER BY l.recorded_at, l.consent_id;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		INSERT INTO crm.consent (contact_id, channel, status, valid_until, source, note)
		SELECT keep, w.channel,
			   CASE WHEN w.valid_until <= now() THEN 'revoked' ELSE w.status END,
			   CASE WHEN w.valid_until > now() THEN w.valid_until END, 'merge',
			   format('most restrictive of contacts %s and %s', keep, drop)
			   || CASE WHEN w.valid_until <= now() THEN ' (a grant had expired)' ELSE '' END
		  FROM (SELECT c.channel,
					   CASE WHEN bool_or(c.status = 'revoked') THEN 'revoked'
							WHEN bool_or(c.status = 'denied') THEN 'denied' ELSE 'granted' END AS status,
					   CASE WHEN bool_and(c.status = 'granted') THEN min(c.valid_until) END AS valid_until
				  FROM (SELECT DISTINCT ON (l.contact_id, l.channel) l.contact_id, l.channel, l.status, l.valid_until
						  FROM crm.consent l WHERE l.contact_id IN (keep, drop) AND l.merged_from IS DISTINCT FROM drop
						 ORDER BY l.contact_id, l.channel, l.recorded_at DESC, l.consent_id DESC) c
				 GROUP BY c.channel) w
		  -- only where the copied history does not already end in that state
		 WHERE NOT EXISTS (
				SELECT 1 FROM (SELECT l.status, l.valid_until FROM crm.consent l
								WHERE l.contact_id = keep AND l.channel = w.channel
								ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1) last
				 WHERE last.status = w.status
				   AND (w.status <> 'granted' OR last.valid_until IS NOT DISTINCT FROM w.valid_until));
		DELETE FROM crm.consent l WHERE l.contact_id = drop;
		v_moved := v_moved || jsonb_build_object('table', 'crm.consent', 'action', 'copied to keep', 'rows', n);
	END IF;

	-- rows that would clash on a unique key: the kept contact's row wins
	FOR r IN SELECT * FROM unnest(refs) x
			  WHERE x.action IN ('move', 'delete') AND x.table_name <> 'crm.consent'::regclass LOOP
		IF r.action = 'delete' THEN
			EXECUTE format('WITH g AS (DELETE FROM %s t WHERE t.%I = $1 RETURNING t.*)
							SELECT count(*), coalesce(jsonb_agg(jsonb_build_object(%L, to_jsonb(g))), ''[]'') FROM g',
						   r.table_name, r.contact_column, r.table_name::text)
			   INTO n, merged USING drop;
			v_conflicts := v_conflicts || merged;
			v_moved := v_moved || jsonb_build_object('table', r.table_name::text, 'action', 'deleted (logged)', 'rows', n);
			CONTINUE;
		END IF;
		FOR ix IN
			SELECT (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
					 WHERE a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey::int2[])
					   AND a.attname <> r.contact_column) AS others
			  FROM pg_index x
			 WHERE x.indrelid = r.table_name AND x.indisunique AND x.indpred IS NULL
			   AND x.indexprs IS NULL
			   AND (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = x.indrelid
					   AND a.attname = r.contact_column) = ANY (x.indkey::int2[])
		LOOP
			cond := '';
			FOR j IN 1..coalesce(array_length(ix.others, 1), 0) LOOP
				cond := cond || format(' AND k.%1$I = t.%1$I', ix.others[j]);
			END LOOP;
			EXECUTE format('WITH g AS (DELETE FROM %1$s t WHERE t.%2$I = $1 AND EXISTS (
								SELECT 1 FROM %1$s k WHERE k.%2$I = $2%3$s) RETURNING t.*)
							SELECT count(*), coalesce(jsonb_agg(jsonb_build_object(%4$L, to_jsonb(g))), ''[]'') FROM g',
						   r.table_name, r.contact_column, cond, r.table_name::text)
			   INTO n, merged USING drop, keep;
			IF n > 0 THEN
				v_conflicts := v_conflicts || merged;
				v_moved := v_moved || jsonb_build_object('table', r.table_name::text, 'action', 'key clash: kept keep''s row, logged drop''s', 'rows', n);
			END IF;
		END LOOP;
	END LOOP;

	-- move everything else in one statement
	FOR r IN SELECT * FROM unnest(refs) x
			  WHERE x.action = 'move' AND x.table_name <> 'crm.consent'::regclass LOOP
		nref := nref + 1;
		-- a history row keeps the contact it was first written for
		ctes := ctes || format('m%s AS (UPDATE %s SET %I = $1%s WHERE %I = $2 RETURNING 1)',
							   nref, r.table_name, r.contact_column,
							   CASE WHEN r.table_name = 'crm.stage_history'::regclass
									THEN ', merged_from = coalesce(merged_from, $2)' ELSE '' END,
							   r.contact_column);
		names := names || r.table_name::text;
	END LOOP;
	IF nref > 0 THEN
		stmt := 'WITH ' || array_to_string(ctes, ', ') || ' SELECT ARRAY[';
		FOR j IN 1..nref LOOP
			stmt := stmt || CASE WHEN j > 1 THEN ', ' ELSE '' END || format('(SELECT count(*) FROM m%s)', j);
		END LOOP;
		EXECUTE stmt || ']::bigint[]' INTO counts USING keep, drop;
		FOR j IN 1..nref LOOP
			IF counts[j] > 0 THEN
				v_moved := v_moved || jsonb_build_object('table', names[j], 'action', 'moved', 'rows', counts[j]);
			END IF;
		END LOOP;
	END IF;

	-- nothing may still point at drop (ON DELETE CASCADE would lose it)
	FOR r IN SELECT * FROM unnest(refs) LOOP
		EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', r.table_name, r.contact_column)
		   INTO n USING drop;
		IF n > 0 THEN
			RAISE EXCEPTION 'merge would lose % rows of % that still point at contact %', n, r.table_name, drop
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Register how to merge that table in crm.merge_rule.';
		END IF;
	END LOOP;

	-- keep's empty fields from drop; the strictest do-not-contact; attrs
	-- joined (keep wins per key); drop's address kept in attrs.merged_emails;
	-- the stage below
	merged := (to_jsonb(d) - '{contact_id,email,owner,created_at,updated_at,stage,attrs}'::text[])
			  || jsonb_strip_nulls(to_jsonb(k))
			  || jsonb_build_object(
					'created_at', least(k.created_at, d.created_at),
					'attrs', d.attrs || k.attrs || jsonb_build_object('merged_emails',
						coalesce(k.attrs -> 'merged_emails', '[]') || coalesce(d.attrs -> 'merged_emails', '[]')
						|| to_jsonb(d.email::text)));
	SELECT string_agg(format('%1$I = r.%1$I', a.attname), ', ' ORDER BY a.attnum) INTO cols
	  FROM pg_attribute a
	 WHERE a.attrelid = 'crm.contact'::regclass AND a.attnum > 0 AND NOT a.attisdropped
	   AND a.attgenerated = '' AND a.attidentity = ''
	   AND a.attname NOT IN ('contact_id', 'email', 'updated_at', 'stage');
	DELETE FROM crm.contact c WHERE c.contact_id = drop;
	EXECUTE format('UPDATE crm.contact c SET %s FROM jsonb_populate_record(NULL::crm.contact, $1) r
					 WHERE c.contact_id = $2', cols) USING merged, keep;

	-- the most advanced stage, and a history row that records the merge, so
	-- the history ends at the contact's stage even when drop's moved rows
	-- are later than keep's own (read again: the update may have promoted)
	SELECT c.stage INTO cur FROM crm.contact c WHERE c.contact_id = keep;
	v_stage := crm.merged_stage(cur, d.stage);
	v_reason := format('merge: contact %s (stage %s) merged into this one', drop, d.stage);
	IF v_stage = cur THEN
		v_forced := false;
		INSERT INTO crm.stage_history (contact_id, from_stage, to_stage, changed_at, reason)
		VALUES (keep, cur, cur, clock_timestamp(), v_reason);
	ELSE
		-- leaving an exit, or a lead becoming churned, is outside the
		-- forward-only rule: forced, and logged as such
		v_forced := NOT crm.stage_move_is_forward(cur, v_stage);
		PERFORM crm.set_stage(keep, v_stage, v_reason, force => v_forced);
	END IF;
	v_moved := v_moved || jsonb_build_object('table', 'crm.stage_history',
		'action', format('recorded the merge: %s -> %s%s', cur, v_stage, CASE WHEN v_forced THEN ' (forced)' ELSE '' END),
		'rows', 1);
	-- the kept contact's scores, recomputed from its merged history
	PERFORM crm.rescore(ARRAY[keep]);

	UPDATE crm.merge_log m SET moved = v_moved, conflicts = v_conflicts
	 WHERE m.merge_id = log_id;
	FOR r IN SELECT * FROM jsonb_to_recordset(v_moved) AS x("table" text, action text, rows bigint) LOOP
		item := r."table";
		action := r.action;
		rows := r.rows;
		RETURN NEXT;
	END LOOP;
	item := 'crm.merge_log'; action := 'logged'; rows := 1;
	RETURN NEXT;
END $$;
COMMENT ON FUNCTION crm.merge_contacts(bigint, bigint, boolean) IS
	'merge contact drop into keep: move every row that points at drop, most restrictive consent, most advanced stage, fill empty fields, log it; dry_run reports only';

-- An insert aimed at a contact that a concurrent merge is removing must not
-- be lost.  The merge holds the contact row FOR UPDATE; this trigger takes
-- KEY SHARE on it first, so it waits for the merge to finish.  If the row is
-- gone afterwards and crm.merge_log says where it went, the new row is
-- redirected to the kept contact (an application that still holds an old
-- id keeps working too).  An id that never existed is left alone and fails
-- the foreign key check as usual.  Taking a row lock needs UPDATE on
-- crm.contact; a role without it (an insert-only tracking role, say) does
-- not wait, and in the race its insert fails loudly on the foreign key
-- instead of being redirected.  In C (src/privacy.c): it runs for every row
-- of every bulk load.
CREATE FUNCTION crm.redirect_merged_contact() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_redirect_merged_contact' LANGUAGE C;
COMMENT ON FUNCTION crm.redirect_merged_contact() IS
	'trigger: waits for a merge holding the contact, and redirects rows aimed at a merged-away contact to the contact it was merged into';
CREATE FUNCTION crm.forget_locked_contacts() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_forget_locked_contacts' LANGUAGE C;
COMMENT ON FUNCTION crm.forget_locked_contacts() IS
	'trigger: after contacts are deleted (a merge), redirect_merged_contact looks each contact up again instead of trusting the locks it took earlier in the transaction';
CREATE TRIGGER forget_locked_contacts AFTER DELETE OR TRUNCATE ON crm.contact
	FOR EACH STATEMENT EXECUTE FUNCTION crm.forget_locked_contacts();
CREATE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.activity
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact();
CREATE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.deal
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact();
CREATE TRIGGER redirect_merged_contact BEFORE INSERT ON crm."order"
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact();
CREATE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.task
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact();
CREATE TRIGGER redirect_merged_contact BEFORE INSERT ON crm.consent
	FOR EACH ROW EXECUTE FUNCTION crm.redirect_merged_contact();

-- The consent ledger of one contact, oldest first, with the rows copied in
-- by merges (merged_from) and which row is the current one per channel.
CREATE FUNCTION crm.consent_history(contact_id bigint)
RETURNS TABLE (consent_id bigint, channel text, status text, recorded_at timestamptz,
			   valid_until timestamptz, source text, actor text, note text,
			   merged_from bigint, is_current boolean)
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT l.consent_id, l.channel, l.status, l.recorded_at, l.valid_until, l.source, l.actor, l.note,
		   l.merged_from,
		   row_number() OVER (PARTITION BY l.channel ORDER BY l.recorded_at DESC, l.consent_id DESC) = 1
	  FROM crm.consent l
	 WHERE l.contact_id = $1
	 ORDER BY l.recorded_at, l.consent_id
$$;
COMMENT ON FUNCTION crm.consent_history(bigint) IS
	'the consent ledger of a contact, oldest first: who recorded what, from which source, rows merged in, and the current row per channel';

-- Salted SHA-256 of a normalised address, with the database's secret salt
-- (NULL while no salt exists).
CREATE FUNCTION crm.salted_email_hash(email crm.email) RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT sha256(s.salt || convert_to($1::text, 'UTF8')) FROM crm.privacy_salt s
$$;
COMMENT ON FUNCTION crm.salted_email_hash(crm.email) IS
	'salted SHA-256 of an address (the salt is secret, in crm.privacy_salt); NULL before any hash was kept';

-- Was this address erased with "do not re-add"?
CREATE FUNCTION crm.is_forgotten(email crm.email) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT 1 FROM crm.erasure_log e WHERE e.email_hash = crm.salted_email_hash($1))
$$;
COMMENT ON FUNCTION crm.is_forgotten(crm.email) IS
	'true if the address belonged to a contact erased with keep_email_hash (do not re-add); the only way to match it again';

-- The right to be forgotten.  The contact row stays (ids in orders and
-- aggregates keep adding up) but its personal data is gone: the address
-- becomes an irreversible random token, names, phone, city, region, birth
-- date, income band, job title and attrs are cleared, and it is marked
-- do-not-contact.  Activities keep kind and time but lose their properties
-- (and the points those earned);
-- deal titles and task texts are replaced; consent notes are cleared (the
-- ledger itself stays: it is the legal record); merge_log before-images that
-- held this person's data are reduced to ids.  Orders are kept as they are.
CREATE FUNCTION crm.forget_contact(contact_id bigint, reason text, keep_email_hash boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c crm.contact;
	hash bytea;
	done record;
	n_act bigint;
	n_deal bigint;
	n_task bigint;
	n_consent bigint;
	n_merge bigint;
	eid bigint;
BEGIN
	IF btrim(reason) = '' THEN
		RAISE EXCEPTION 'a reason is required to forget a contact'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Say why, e.g. ''erasure request of 2024-05-01 (ticket 123)''; it is kept in crm.erasure_log.';
	END IF;
	SELECT * INTO c FROM crm.contact x WHERE x.contact_id = forget_contact.contact_id FOR UPDATE;
	IF NOT FOUND THEN
		PERFORM crm.require_contact(forget_contact.contact_id, 'erased');
	END IF;
	SELECT e.erasure_id, e.erased_at INTO done FROM crm.erasure_log e
	 WHERE e.contact_id = forget_contact.contact_id;
	IF FOUND THEN
		RAISE NOTICE 'contact % was already forgotten', forget_contact.contact_id
			USING DETAIL = format('Erased on %s; see crm.erasure_log, erasure_id %s.', done.erased_at, done.erasure_id);
		RETURN NULL;
	END IF;

	IF keep_email_hash THEN
		INSERT INTO crm.privacy_salt (salt)
		VALUES (decode(md5(gen_random_uuid()::text) || md5(gen_random_uuid()::text), 'hex'))
		ON CONFLICT (id) DO NOTHING;
		hash := crm.salted_email_hash(c.email);
	END IF;

	-- the erasure record first: it is what allows the consent notes to go
	INSERT INTO crm.erasure_log (contact_id, reason, email_hash)
	VALUES (forget_contact.contact_id, reason, hash)
	RETURNING erasure_id INTO eid;

	UPDATE crm.contact x
	   SET email = 'erased-' || md5(gen_random_uuid()::text) || '@erased.invalid',
		   first_name = NULL, last_name = NULL, phone = NULL, city = NULL, region = NULL,
		   birth_date = NULL, income_band = NULL, job_title = NULL,
		   attrs = jsonb_build_object('erased', true),
		   do_not_contact = 'manual'
	 WHERE x.contact_id = forget_contact.contact_id;
	UPDATE crm.activity a SET properties = '{}'
	 WHERE a.contact_id = forget_contact.contact_id AND a.properties <> '{}';
	GET DIAGNOSTICS n_act = ROW_COUNT;
	-- points earned by the stripped properties go too: the scores become
	-- what crm.rescore() makes of the activities as they are now
	PERFORM crm.rescore(ARRAY[forget_contact.contact_id]);
	UPDATE crm.deal x SET title = 'deal ' || x.deal_id || ' (erased contact)'
	 WHERE x.contact_id = forget_contact.contact_id;
	GET DIAGNOSTICS n_deal = ROW_COUNT;
	UPDATE crm.task x SET title = 'task ' || x.task_id || ' (erased contact)', note = NULL
	 WHERE x.contact_id = forget_contact.contact_id;
	GET DIAGNOSTICS n_task = ROW_COUNT;
	UPDATE crm.consent x SET note = NULL
	 WHERE x.contact_id = forget_contact.contact_id AND x.note IS NOT NULL;
	GET DIAGNOSTICS n_consent = ROW_COUNT;
	-- before-images of merges into this contact, and of merges into those
	WITH RECURSIVE chain(id) AS (
		SELECT forget_contact.contact_id
		UNION
		SELECT m.dropped_id FROM crm.merge_log m JOIN chain ON m.kept_id = chain.id)
	UPDATE crm.merge_log m
	   SET dropped_row = jsonb_build_object('contact_id', m.dropped_id, 'erased', true),
		   kept_row = jsonb_build_object('contact_id', m.kept_id, 'erased', true),
		   conflicts = '[]'
	  FROM chain WHERE m.kept_id = chain.id;
	GET DIAGNOSTICS n_merge = ROW_COUNT;

	UPDATE crm.erasure_log e
	   SET details = jsonb_build_object('activities_stripped', n_act, 'deals_redacted', n_deal,
										'tasks_redacted', n_task, 'consent_notes_cleared', n_consent,
										'merge_logs_redacted', n_merge, 'email_hash_kept', keep_email_hash)
	 WHERE e.erasure_id = eid;
	RETURN eid;
END $$;
COMMENT ON FUNCTION crm.forget_contact(bigint, text, boolean) IS
	'right to be forgotten: erase a contact''s personal data (address replaced by a random token), keep anonymous rows and orders, log it in crm.erasure_log; returns the erasure id (NULL and a notice if already forgotten)';

-- ---------------------------------------------------------------------------
-- Dump markers (src/restore.c).  pg_dump writes the data of crm's tables in
-- name order, moving a table only after those its foreign keys point at:
-- the row of crm._dump_begin comes before all of crm's data, that of
-- crm.zz_dump_end after it.  Loading either row (pg_restore, psql -f) turns
-- off, then on again (the setting crm.loading_dump), the triggers that
-- derive rows from the loaded ones, for that session only: the dump already
-- holds what they derived.  The first also deletes the built-in rows of the
-- tables with a "builtin" column, which are dumped in full (filter ''): the
-- load restores them as they were edited, and not the ones a user deleted.
-- ---------------------------------------------------------------------------
CREATE TABLE crm._dump_begin (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id)
);
COMMENT ON TABLE crm._dump_begin IS
	'dump marker: its row, loaded first from a dump of crm, keeps the triggers from deriving the loaded rows again (one row; do not delete it)';
CREATE TABLE crm.zz_dump_end (
	id			boolean PRIMARY KEY DEFAULT true CONSTRAINT one_row CHECK (id)
);
COMMENT ON TABLE crm.zz_dump_end IS
	'dump marker: its row, loaded last from a dump of crm, lets the triggers derive again (one row; do not delete it)';
INSERT INTO crm._dump_begin DEFAULT VALUES;
INSERT INTO crm.zz_dump_end DEFAULT VALUES;
SELECT pg_catalog.pg_extension_config_dump('crm._dump_begin', '');
SELECT pg_catalog.pg_extension_config_dump('crm.zz_dump_end', '');

CREATE FUNCTION crm.dump_marker() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_dump_marker' LANGUAGE C;
COMMENT ON FUNCTION crm.dump_marker() IS
	'trigger: a dump marker row is being loaded: derivation off (''begin'') or on again (''end'') for this session; the row is not stored';
CREATE TRIGGER dump_marker BEFORE INSERT ON crm._dump_begin
	FOR EACH ROW EXECUTE FUNCTION crm.dump_marker('begin');
CREATE TRIGGER dump_marker BEFORE INSERT ON crm.zz_dump_end
	FOR EACH ROW EXECUTE FUNCTION crm.dump_marker('end');

-- ---------------------------------------------------------------------------
-- crm.rfm: one RFM cell, recency / frequency / monetary quintile scores 1..5
-- (src/rfm.c), its named segments, and crm.rfm_scores over the order history.
-- ---------------------------------------------------------------------------
CREATE TYPE crm.rfm;

CREATE FUNCTION crm.rfm_in(cstring) RETURNS crm.rfm
	AS 'MODULE_PATHNAME', 'crm_rfm_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.rfm_out(crm.rfm) RETURNS cstring
	AS 'MODULE_PATHNAME', 'crm_rfm_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.rfm_recv(internal) RETURNS crm.rfm
	AS 'MODULE_PATHNAME', 'crm_rfm_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION crm.rfm_send(crm.rfm) RETURNS bytea
	AS 'MODULE_PATHNAME', 'crm_rfm_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

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

CREATE FUNCTION crm.rfm(r integer, f integer, m integer) RETURNS crm.rfm
	AS 'MODULE_PATHNAME', 'crm_rfm_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.rfm(integer, integer, integer) IS 'RFM cell from three scores 1..5 (22023 when out of range)';
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

CREATE FUNCTION crm.rfm_eq(crm.rfm, crm.rfm) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_rfm_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_ne(crm.rfm, crm.rfm) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_rfm_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_lt(crm.rfm, crm.rfm) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_rfm_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_le(crm.rfm, crm.rfm) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_rfm_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_gt(crm.rfm, crm.rfm) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_rfm_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_ge(crm.rfm, crm.rfm) RETURNS boolean
	AS 'MODULE_PATHNAME', 'crm_rfm_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_cmp(crm.rfm, crm.rfm) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_rfm_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_hash(crm.rfm) RETURNS integer
	AS 'MODULE_PATHNAME', 'crm_rfm_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION crm.rfm_hash_extended(crm.rfm, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'crm_rfm_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION crm.rfm_eq(crm.rfm, crm.rfm) IS 'implementation of = for rfm';
COMMENT ON FUNCTION crm.rfm_ne(crm.rfm, crm.rfm) IS 'implementation of <> for rfm';
COMMENT ON FUNCTION crm.rfm_lt(crm.rfm, crm.rfm) IS 'implementation of < for rfm';
COMMENT ON FUNCTION crm.rfm_le(crm.rfm, crm.rfm) IS 'implementation of <= for rfm';
COMMENT ON FUNCTION crm.rfm_gt(crm.rfm, crm.rfm) IS 'implementation of > for rfm';
COMMENT ON FUNCTION crm.rfm_ge(crm.rfm, crm.rfm) IS 'implementation of >= for rfm';
COMMENT ON FUNCTION crm.rfm_cmp(crm.rfm, crm.rfm) IS 'btree support: cells ordered by r, then f, then m';
COMMENT ON FUNCTION crm.rfm_hash(crm.rfm) IS 'hash support for rfm';
COMMENT ON FUNCTION crm.rfm_hash_extended(crm.rfm, bigint) IS 'extended hash support for rfm';

CREATE OPERATOR crm.= (
	LEFTARG = crm.rfm, RIGHTARG = crm.rfm, FUNCTION = crm.rfm_eq,
	COMMUTATOR = OPERATOR(crm.=), NEGATOR = OPERATOR(crm.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR crm.<> (
	LEFTARG = crm.rfm, RIGHTARG = crm.rfm, FUNCTION = crm.rfm_ne,
	COMMUTATOR = OPERATOR(crm.<>), NEGATOR = OPERATOR(crm.=),
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR crm.< (
	LEFTARG = crm.rfm, RIGHTARG = crm.rfm, FUNCTION = crm.rfm_lt,
	COMMUTATOR = OPERATOR(crm.>), NEGATOR = OPERATOR(crm.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR crm.<= (
	LEFTARG = crm.rfm, RIGHTARG = crm.rfm, FUNCTION = crm.rfm_le,
	COMMUTATOR = OPERATOR(crm.>=), NEGATOR = OPERATOR(crm.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR crm.> (
	LEFTARG = crm.rfm, RIGHTARG = crm.rfm, FUNCTION = crm.rfm_gt,
	COMMUTATOR = OPERATOR(crm.<), NEGATOR = OPERATOR(crm.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR crm.>= (
	LEFTARG = crm.rfm, RIGHTARG = crm.rfm, FUNCTION = crm.rfm_ge,
	COMMUTATOR = OPERATOR(crm.<=), NEGATOR = OPERATOR(crm.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS crm.rfm_ops DEFAULT FOR TYPE crm.rfm USING btree AS
	OPERATOR 1 crm.<,
	OPERATOR 2 crm.<=,
	OPERATOR 3 crm.=,
	OPERATOR 4 crm.>=,
	OPERATOR 5 crm.>,
	FUNCTION 1 crm.rfm_cmp(crm.rfm, crm.rfm);
CREATE OPERATOR CLASS crm.rfm_hash_ops DEFAULT FOR TYPE crm.rfm USING hash AS
	OPERATOR 1 crm.=,
	FUNCTION 1 crm.rfm_hash(crm.rfm),
	FUNCTION 2 crm.rfm_hash_extended(crm.rfm, bigint);

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

-- ---------------------------------------------------------------------------
-- Roles and row-level security.  crm.setup_roles() creates (or adopts) four
-- group roles and grants; an administrator runs it once after CREATE
-- EXTENSION, and again after features add tables (it is idempotent).
--   crm_admin      everything, all rows; rules, policies, erasure, merges
--   crm_sales      contacts it owns (contact.owner = the role or a role it
--                  is a member of) and their activities, deals, orders,
--                  tasks, consents, merge and erasure records; the
--                  companies it owns or has contacts at; merges within those
--   crm_marketing  reads contacts and their data; manages segments,
--                  campaigns and scoring rules; not roles
--   crm_analyst    the views crm.analyst_* only: no personal data, every
--                  combination of values shared by at least 5 contacts
-- Every other view is security_invoker, so the row-level security of the
-- tables under it applies to whoever reads it.
-- ---------------------------------------------------------------------------

-- The roles the current user is a member of (directly or not), itself included.
CREATE FUNCTION crm.my_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT array_agg(r.rolname::text) FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')
$$;
COMMENT ON FUNCTION crm.my_roles() IS
	'names of the roles the current user belongs to (itself included); row-level security compares contact.owner with it';

-- Views for analysts: no names, e-mails, phones, ids or free text, and
-- nothing that singles a person out.  Every combination of values an analyst
-- can see stands for at least 5 contacts (k-anonymity, k = 5): contacts come
-- generalised (age band, industry, quarter) and, where a combination is
-- rarer, with more columns withheld; activities, orders and deals come as
-- counts per cell, and cells of fewer than 5 contacts are left out.  Dates
-- are taken in UTC, whatever the session's time zone, so that no two
-- settings give two overlapping views to compare.  The views run with their
-- owner's rights (they are their own filter), so analysts need no grant on
-- the tables.

-- One row per contact.  A contact whose combination is shared by fewer than
-- 5 contacts loses its columns one at a time, in the order of qi
-- (created quarter first, country last), until the contacts still
-- undecided at that step share what is left by 5 or more; withheld says how
-- many were withheld (NULL in a withheld column).  The last few contacts, if
-- fewer than 5 remain with everything withheld, are left out.
CREATE VIEW crm.analyst_contact AS
WITH RECURSIVE g AS (
	SELECT c.country, co.industry AS company_industry, c.lead_source, c.stage, c.income_band,
		   c.do_not_contact IS NOT NULL AS do_not_contact,
		   CASE WHEN c.birth_date IS NULL THEN NULL
				WHEN age(utc.today, c.birth_date::timestamp) < interval '25 years' THEN 'under 25'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '35 years' THEN '25-34'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '45 years' THEN '35-44'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '55 years' THEN '45-54'
				WHEN age(utc.today, c.birth_date::timestamp) < interval '65 years' THEN '55-64'
				ELSE '65 and over' END AS age_band,
		   date_trunc('quarter', c.created_at AT TIME ZONE 'UTC')::date AS created_quarter
	  FROM crm.contact c LEFT JOIN crm.company co ON co.company_id = c.company_id
	 CROSS JOIN (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AS today) utc),
q AS (
	SELECT g.*, ARRAY[g.created_quarter::text, g.company_industry, g.lead_source, g.do_not_contact::text,
					  g.income_band, g.age_band, g.stage::text, g.country] AS qi
	  FROM g),
-- step n keeps qi[n+1:]; a contact is placed at the first step whose group
-- of contacts not placed before it has 5 members or more
step(withheld, placed, country, company_industry, lead_source, stage, income_band, do_not_contact,
	 age_band, created_quarter, qi) AS (
	SELECT 0, count(*) OVER (PARTITION BY q.qi) >= 5, q.country, q.company_industry, q.lead_source,
		   q.stage, q.income_band, q.do_not_contact, q.age_band, q.created_quarter, q.qi
	  FROM q
	UNION ALL
	SELECT s.withheld + 1, count(*) OVER (PARTITION BY s.qi[s.withheld + 2:]) >= 5, s.country,
		   s.company_industry, s.lead_source, s.stage, s.income_band, s.do_not_contact, s.age_band,
		   s.created_quarter, s.qi
	  FROM step s
	 WHERE NOT s.placed AND s.withheld < 8)
SELECT CASE WHEN s.withheld < 8 THEN s.country END AS country,
	   CASE WHEN s.withheld < 7 THEN s.stage END AS stage,
	   CASE WHEN s.withheld < 6 THEN s.age_band END AS age_band,
	   CASE WHEN s.withheld < 5 THEN s.income_band END AS income_band,
	   CASE WHEN s.withheld < 4 THEN s.do_not_contact END AS do_not_contact,
	   CASE WHEN s.withheld < 3 THEN s.lead_source END AS lead_source,
	   CASE WHEN s.withheld < 2 THEN s.company_industry END AS company_industry,
	   CASE WHEN s.withheld < 1 THEN s.created_quarter END AS created_quarter,
	   s.withheld
  FROM step s
 WHERE s.placed;
COMMENT ON VIEW crm.analyst_contact IS
	'one row per contact, generalised so that every combination of values stands for at least 5 contacts: country, stage, age band, income band, do-not-contact, lead source, company industry, quarter created; withheld = how many of these (from the last) are withheld as NULL';

CREATE VIEW crm.analyst_activity AS
SELECT a.kind, (a.occurred_at AT TIME ZONE 'UTC')::date AS occurred_on,
	   count(*) AS activities, count(DISTINCT a.contact_id) AS contacts
  FROM crm.activity a
 GROUP BY 1, 2
HAVING count(DISTINCT a.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_activity IS 'activities per kind and day (UTC), with the number of contacts; days of a kind with fewer than 5 contacts are left out';

CREATE VIEW crm.analyst_order AS
SELECT date_trunc('month', o.ordered_at AT TIME ZONE 'UTC')::date AS ordered_month, o.status, o.currency,
	   count(*) AS orders, count(DISTINCT o.contact_id) AS contacts, sum(o.total) AS total, sum(o.items) AS items
  FROM crm."order" o
 GROUP BY 1, 2, 3
HAVING count(DISTINCT o.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_order IS 'orders per month, status and currency: count, contacts, total, items; cells of fewer than 5 contacts are left out';

CREATE VIEW crm.analyst_deal AS
SELECT date_trunc('month', d.created_at AT TIME ZONE 'UTC')::date AS created_month, d.pipeline_stage, d.status, d.currency,
	   count(*) AS deals, count(DISTINCT d.contact_id) AS contacts, sum(d.amount) AS amount,
	   round(sum(d.amount * d.probability), 2) AS weighted_amount
  FROM crm.deal d
 GROUP BY 1, 2, 3, 4
HAVING count(DISTINCT d.contact_id) >= 5;
COMMENT ON VIEW crm.analyst_deal IS 'deals per month created, pipeline stage, status and currency: count, contacts, amount, weighted amount; cells of fewer than 5 contacts are left out';

-- Create or adopt the roles, grant, and put row-level security on the
-- contact table and on every table that points at contacts.
CREATE FUNCTION crm.setup_roles() RETURNS TABLE (object text, done text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	rname text;
	tables text;
	marketing text;
BEGIN
	IF NOT (SELECT rolsuper OR (rolcreaterole AND pg_has_role(current_user, c.relowner, 'USAGE'))
			  FROM pg_roles, pg_class c
			 WHERE rolname = current_user AND c.oid = 'crm.contact'::regclass) THEN
		RAISE EXCEPTION 'permission denied to set up crm roles'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'crm.setup_roles() creates roles and changes grants and policies on the crm tables.',
				  HINT = 'Run it as a superuser, or as the owner of the crm tables with CREATEROLE.';
	END IF;

	FOREACH rname IN ARRAY ARRAY['crm_admin', 'crm_sales', 'crm_marketing', 'crm_analyst'] LOOP
		IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = rname) THEN
			object := rname; done := 'role adopted'; RETURN NEXT;
		ELSE
			EXECUTE format('CREATE ROLE %I NOLOGIN', rname);
			object := rname; done := 'role created'; RETURN NEXT;
		END IF;
		EXECUTE format('GRANT USAGE ON SCHEMA crm TO %I', rname);
	END LOOP;

	-- admin: everything
	GRANT ALL ON ALL TABLES IN SCHEMA crm TO crm_admin;
	GRANT ALL ON ALL SEQUENCES IN SCHEMA crm TO crm_admin;
	GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO crm_admin;

	-- everyone but the analyst reads the lookup tables
	GRANT SELECT ON crm.channel, crm.lead_source, crm.product, crm.company, crm.merge_rule
		TO crm_sales, crm_marketing;
	-- security_invoker views: each reader sees them through its own policies
	GRANT SELECT ON crm.consent_current, crm.contact_profile, crm.contact_scores, crm.pipeline
		TO crm_sales, crm_marketing;
	-- what the triggers and merge need to see of the logs (no before-images)
	GRANT SELECT (merge_id, kept_id, dropped_id, txid, merged_at, merged_by) ON crm.merge_log TO crm_sales, crm_marketing;
	GRANT SELECT (contact_id) ON crm.erasure_log TO crm_sales, crm_marketing;

	-- sales: their contacts and everything hanging off them (rows limited below)
	SELECT string_agg(x.table_name::text, ', ') INTO tables
	  FROM (SELECT DISTINCT t.table_name FROM crm.contact_references() t
			 WHERE t.table_name::text NOT IN ('crm.consent')) x;
	EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON crm.contact, %s TO crm_sales', tables);
	-- DELETE only ever passes crm.consent_append_only on the merge path
	GRANT SELECT, INSERT, DELETE ON crm.consent TO crm_sales;
	GRANT SELECT, INSERT, UPDATE ON crm.company TO crm_sales;
	GRANT INSERT, UPDATE (moved, conflicts) ON crm.merge_log TO crm_sales;
	GRANT USAGE ON ALL SEQUENCES IN SCHEMA crm TO crm_sales;
	GRANT EXECUTE ON FUNCTION crm.merge_contacts(bigint, bigint, boolean) TO crm_sales;

	-- the triggers run as the writer: they read rules, policy and segment
	-- definitions, and write derived rows (scores, history, dirty marks)
	GRANT SELECT ON crm.score_group, crm.scoring_rule, crm.fit_rule, crm.lifecycle_policy, crm.segment
		TO crm_sales, crm_marketing;
	GRANT SELECT, INSERT, UPDATE, DELETE ON crm.score_ledger, crm.score_event, crm.stage_history
		TO crm_sales, crm_marketing;
	-- the dirty marks only need INSERT ... ON CONFLICT DO NOTHING; reading
	-- them would show which contacts of other reps change
	GRANT INSERT ON crm.segment_dirty TO crm_sales, crm_marketing;
	REVOKE SELECT, UPDATE, DELETE ON crm.segment_dirty FROM crm_sales;

	-- marketing: reads contacts and their data, writes consent (opt-outs from
	-- campaigns) and owns the configuration of segments, campaigns, scoring
	EXECUTE format('GRANT SELECT ON crm.contact, %s TO crm_marketing', tables);
	GRANT SELECT, INSERT ON crm.consent TO crm_marketing;
	SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ') INTO marketing
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE n.nspname = 'crm' AND c.relkind IN ('r', 'p', 'v')
	   AND c.relname ~ '^(segment|campaign|scoring|score_rule|activity_rule|fit_rule|point_group|loyalty_rule|reward)';
	IF marketing IS NOT NULL THEN
		EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO crm_marketing', marketing);
		object := marketing; done := 'granted to crm_marketing'; RETURN NEXT;
	END IF;
	GRANT USAGE ON ALL SEQUENCES IN SCHEMA crm TO crm_marketing;

	-- analyst: the k-anonymous views only
	GRANT SELECT ON crm.analyst_contact, crm.analyst_activity, crm.analyst_order, crm.analyst_deal TO crm_analyst;
	REVOKE ALL ON crm.contact FROM crm_analyst;

	-- row-level security: the contact table by owner ...
	ALTER TABLE crm.contact ENABLE ROW LEVEL SECURITY;
	IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'crm' AND tablename = 'contact'
					  AND policyname = 'crm_sales_own') THEN
		CREATE POLICY crm_sales_own ON crm.contact TO crm_sales
			USING (owner = ANY ((SELECT crm.my_roles())::text[]))
			WITH CHECK (owner = ANY ((SELECT crm.my_roles())::text[]));
		CREATE POLICY crm_admin_all ON crm.contact TO crm_admin USING (true) WITH CHECK (true);
		CREATE POLICY crm_marketing_read ON crm.contact FOR SELECT TO crm_marketing USING (true);
	END IF;
	object := 'crm.contact'; done := 'row-level security by owner'; RETURN NEXT;
	-- ... and every table that points at contacts, through the contact
	FOR r IN SELECT DISTINCT t.table_name, t.contact_column, c.relname
			   FROM crm.contact_references() t JOIN pg_class c ON c.oid = t.table_name LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.table_name);
		IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.table_name
						  AND p.polname = 'crm_sales_own') THEN
			-- the contact lookup is itself under the contact table's policy
			EXECUTE format('CREATE POLICY crm_sales_own ON %1$s TO crm_sales
								USING (EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = %2$I.%3$I))
								WITH CHECK (EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = %2$I.%3$I))',
						   r.table_name, r.relname, r.contact_column);
			EXECUTE format('CREATE POLICY crm_admin_all ON %s TO crm_admin USING (true) WITH CHECK (true)',
						   r.table_name);
			EXECUTE format('CREATE POLICY crm_marketing_all ON %s TO crm_marketing USING (true) WITH CHECK (true)',
						   r.table_name);
		END IF;
		object := r.table_name::text; done := 'row-level security through the contact'; RETURN NEXT;
	END LOOP;
	-- ... and the tables that name contacts without a foreign key: a rep
	-- reads the companies it owns or has contacts at and changes those it
	-- owns, and reads the merges into and erasures of its contacts
	FOR r IN SELECT * FROM (VALUES
			('crm.company'::regclass,
			 'owner = ANY ((SELECT crm.my_roles())::text[])
			  OR EXISTS (SELECT 1 FROM crm.contact c WHERE c.company_id = company.company_id)',
			 'owner = ANY ((SELECT crm.my_roles())::text[])'),
			('crm.merge_log'::regclass,
			 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = merge_log.kept_id)',
			 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = merge_log.kept_id)'),
			('crm.erasure_log'::regclass,
			 'EXISTS (SELECT 1 FROM crm.contact c WHERE c.contact_id = erasure_log.contact_id)',
			 'false'))
			v(table_name, sales_reads, sales_writes) LOOP
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', r.table_name);
		IF NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.table_name
						  AND p.polname = 'crm_sales_own') THEN
			EXECUTE format('CREATE POLICY crm_sales_read ON %s FOR SELECT TO crm_sales USING (%s)',
						   r.table_name, r.sales_reads);
			EXECUTE format('CREATE POLICY crm_sales_own ON %1$s TO crm_sales USING (%2$s) WITH CHECK (%2$s)',
						   r.table_name, r.sales_writes);
			EXECUTE format('CREATE POLICY crm_admin_all ON %s TO crm_admin USING (true) WITH CHECK (true)',
						   r.table_name);
			EXECUTE format('CREATE POLICY crm_marketing_read ON %s FOR SELECT TO crm_marketing USING (true)',
						   r.table_name);
		END IF;
		object := r.table_name::text; done := 'row-level security through the contacts it names'; RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION crm.setup_roles() IS
	'create or adopt crm_admin, crm_sales, crm_marketing, crm_analyst; grant; row-level security on contacts, every table that points at them, companies and the merge and erasure logs; idempotent, re-run after adding features';

-- Admin functions are not for everyone: setup_roles checks its caller, and
-- erasure is granted to crm_admin by setup_roles.
REVOKE ALL ON FUNCTION crm.setup_roles() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.forget_contact(bigint, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.merge_contacts(bigint, bigint, boolean) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Segmentation: the contact profile, predicate helpers, static and dynamic
-- segments with stored membership, an entry/exit log, and incremental
-- refresh driven by dirty-marking triggers (src/segment.c validates
-- predicates).
-- ---------------------------------------------------------------------------

-- One row per contact: who they are, their company, what they bought and did,
-- how they rank, and what they consented to.  Segment predicates are boolean
-- expressions over these columns.  Every per-contact column is a correlated
-- subquery, so a query that reads a few columns of a few contacts computes
-- only those; the population columns (rfm, rfm_segment, value_rank) come
-- from one grouped pass over the orders that the planner drops when unused.
-- It reads its tables with the reader's privileges and row-level security:
-- a predicate, evaluated as its owner, sees no row its owner could not.
CREATE VIEW crm.contact_profile WITH (security_invoker = true) AS
SELECT c.contact_id, c.email, c.first_name, c.last_name, c.phone, c.city, c.region, c.country,
	   c.birth_date,
	   extract(year FROM age(c.birth_date))::integer AS age,
	   c.income_band, c.job_title, c.lead_source, c.owner, c.stage, c.do_not_contact, c.attrs,
	   c.created_at, c.updated_at,
	   c.company_id, co.name AS company_name, co.domain AS company_domain,
	   co.industry AS company_industry, co.employees AS company_employees,
	   co.annual_revenue AS company_annual_revenue, co.country AS company_country,
	   (SELECT count(*) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS order_count,
	   (SELECT coalesce(sum(o.total), 0) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS lifetime_value,
	   (SELECT min(o.ordered_at) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS first_order_at,
	   (SELECT max(o.ordered_at) FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS last_order_at,
	   (SELECT floor(extract(epoch FROM now() OPERATOR(pg_catalog.-) max(o.ordered_at)) / 86400)::integer
		  FROM crm."order" o
		 WHERE o.contact_id OPERATOR(pg_catalog.=) c.contact_id
		   AND o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])) AS recency_days,
	   v.rfm, crm.rfm_segment(v.rfm) AS rfm_segment, v.value_rank,
	   (SELECT count(*) FROM crm.activity a
		 WHERE a.contact_id OPERATOR(pg_catalog.=) c.contact_id) AS activity_count,
	   (SELECT max(a.occurred_at) FROM crm.activity a
		 WHERE a.contact_id OPERATOR(pg_catalog.=) c.contact_id) AS last_activity_at,
	   coalesce((SELECT l.status OPERATOR(pg_catalog.=) 'granted'
						AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now())
				   FROM crm.consent l
				  WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.channel OPERATOR(pg_catalog.=) 'email'
					AND l.recorded_at OPERATOR(pg_catalog.<=) now()
				  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false) AS consent_email,
	   coalesce((SELECT l.status OPERATOR(pg_catalog.=) 'granted'
						AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now())
				   FROM crm.consent l
				  WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.channel OPERATOR(pg_catalog.=) 'phone'
					AND l.recorded_at OPERATOR(pg_catalog.<=) now()
				  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false) AS consent_phone,
	   coalesce((SELECT l.status OPERATOR(pg_catalog.=) 'granted'
						AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now())
				   FROM crm.consent l
				  WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.channel OPERATOR(pg_catalog.=) 'sms'
					AND l.recorded_at OPERATOR(pg_catalog.<=) now()
				  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false) AS consent_sms,
	   coalesce((SELECT l.status OPERATOR(pg_catalog.=) 'granted'
						AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now())
				   FROM crm.consent l
				  WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.channel OPERATOR(pg_catalog.=) 'post'
					AND l.recorded_at OPERATOR(pg_catalog.<=) now()
				  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false) AS consent_post,
	   coalesce((SELECT l.status OPERATOR(pg_catalog.=) 'granted'
						AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now())
				   FROM crm.consent l
				  WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.channel OPERATOR(pg_catalog.=) 'profiling'
					AND l.recorded_at OPERATOR(pg_catalog.<=) now()
				  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false) AS consent_profiling,
	   crm.score(c.contact_id, 'engagement') AS engagement_score,
	   crm.score(c.contact_id, 'fit') AS fit_score,
	   crm.grade(c.contact_id) AS grade
  FROM crm.contact c
  LEFT JOIN crm.company co ON co.company_id OPERATOR(pg_catalog.=) c.company_id
  LEFT JOIN (SELECT o.contact_id,
					crm.rfm((1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER ())::integer,
							(1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER ())::integer,
							(1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ())::integer) AS rfm,
					percent_rank() OVER (ORDER BY sum(o.total)) AS value_rank
			   FROM crm."order" o
			  WHERE o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])
			  GROUP BY o.contact_id) v ON v.contact_id OPERATOR(pg_catalog.=) c.contact_id;
COMMENT ON VIEW crm.contact_profile IS
	'one row per contact for segment predicates: contact and company columns, orders, lifetime value, RFM cell and segment, value_rank (percentile of lifetime value among customers), activity counts, consent per channel now';

-- Helpers for predicates ------------------------------------------------------

-- Kind NULL counts every kind; within NULL counts all time.
CREATE FUNCTION crm.activity_count(contact_id bigint, kind text DEFAULT NULL, within interval DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT count(*) FROM crm.activity a
	 WHERE a.contact_id = $1
	   AND ($2 IS NULL OR a.kind = $2)
	   AND ($3 IS NULL OR a.occurred_at > now() - $3)
$$;
COMMENT ON FUNCTION crm.activity_count(bigint, text, interval) IS
	'activities of a contact, of one kind (NULL: any) within a window before now (NULL: all time); not strict, NULL kind or window mean no filter';

CREATE FUNCTION crm.bought_between(contact_id bigint, from_at timestamptz, to_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT 1 FROM crm."order" o
					WHERE o.contact_id = $1 AND o.ordered_at >= $2 AND o.ordered_at < $3
					  AND o.status <> ALL ('{cancelled,refunded}'::text[]))
$$;
COMMENT ON FUNCTION crm.bought_between(bigint, timestamptz, timestamptz) IS
	'did the contact place an order (not cancelled or refunded) in [from_at, to_at)? dates are midnight in the session time zone';

CREATE FUNCTION crm.nth_weekday(year integer, month integer, weekday integer, n integer)
RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	first date;
	d date;
BEGIN
	IF weekday NOT BETWEEN 0 AND 6 OR n NOT BETWEEN 1 AND 5 OR month NOT BETWEEN 1 AND 12 THEN
		RAISE EXCEPTION 'invalid weekday %, month % or occurrence %', weekday, month, n
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'weekday is 0 (Sunday) to 6 (Saturday), month 1 to 12, n 1 to 5.';
	END IF;
	first := make_date(year, month, 1);
	d := first + ((weekday - extract(dow FROM first)::integer + 7) % 7) + 7 * (n - 1);
	IF extract(month FROM d) <> month THEN
		RAISE EXCEPTION '% has no occurrence % of weekday %', to_char(first, 'YYYY-MM'), n, weekday
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN d;
END $$;
COMMENT ON FUNCTION crm.nth_weekday(integer, integer, integer, integer) IS
	'the n-th weekday (0 = Sunday) of a month, e.g. Mother''s Day in the US and Germany: crm.nth_weekday(y, 5, 0, 2)';

-- Segments --------------------------------------------------------------------

CREATE TABLE crm.segment (
	segment_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name		text NOT NULL
		CONSTRAINT name_not_empty CHECK (btrim(name) <> ''),
	kind		text NOT NULL
		CONSTRAINT kind_static_or_dynamic CHECK (kind IN ('static', 'dynamic')),
	predicate	text,
	owner		regrole NOT NULL,
	time_dependent boolean NOT NULL DEFAULT false,
	population_dependent boolean NOT NULL DEFAULT false,
	uses		bigint[] NOT NULL DEFAULT '{}',
	description text,
	created_at	timestamptz NOT NULL DEFAULT now(),
	refreshed_at timestamptz,
	refreshed_snapshot pg_snapshot,
	refreshed_xid xid8,
	last_full	boolean,
	last_evaluated bigint,
	last_entered bigint,
	last_exited bigint,
	CONSTRAINT predicate_iff_dynamic CHECK ((kind = 'dynamic') = (predicate IS NOT NULL)),
	CONSTRAINT segment_name_key UNIQUE (name)
);
COMMENT ON TABLE crm.segment IS
	'named segments: static lists or dynamic predicates over crm.contact_profile, with refresh bookkeeping';
COMMENT ON COLUMN crm.segment.owner IS 'the role that wrote the predicate: refresh evaluates it with this role''s privileges alone, whoever refreshes';
COMMENT ON COLUMN crm.segment.time_dependent IS 'the predicate can change with the clock alone: every refresh re-evaluates every contact';
COMMENT ON COLUMN crm.segment.population_dependent IS 'the predicate ranks a contact among others: a refresh re-evaluates every contact when anything changed';
COMMENT ON COLUMN crm.segment.uses IS 'segments the predicate reads through crm.in_segment';
COMMENT ON COLUMN crm.segment.refreshed_snapshot IS 'snapshot taken by the last refresh: changes not visible in it are the ones to re-evaluate';
COMMENT ON COLUMN crm.segment.refreshed_xid IS 'transaction of the last refresh: its snapshot counts it as seen, so the changes it made after the refresh are re-evaluated too';

-- The owner of a predicate is the role that wrote it.  Writing a predicate
-- (or naming an owner) needs the privileges of the role recorded, so no one
-- can make a predicate run with privileges they do not have: crm_marketing
-- writes crm.segment directly as well as through create_segment.
CREATE FUNCTION crm.segment_owner() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.predicate IS NOT DISTINCT FROM OLD.predicate
	   AND NEW.owner IS NOT DISTINCT FROM OLD.owner THEN
		RETURN NEW;
	END IF;
	IF NEW.owner IS NULL OR (TG_OP = 'UPDATE' AND NEW.owner = OLD.owner) THEN
		-- a new predicate is its writer's
		NEW.owner := (SELECT r.oid FROM pg_roles r WHERE r.rolname = current_user);
	ELSIF NOT pg_has_role(current_user, NEW.owner, 'USAGE') THEN
		RAISE EXCEPTION 'permission denied to record % as the owner of segment "%"', NEW.owner, NEW.name
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A segment''s predicate is evaluated with its owner''s privileges.',
				  HINT = 'Only a role that has the privileges of a role can record it as an owner; write the predicate yourself to own it.';
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION crm.segment_owner() IS
	'trigger: record the writer of a segment''s predicate as its owner; naming another owner needs that role''s privileges';
CREATE TRIGGER segment_owner BEFORE INSERT OR UPDATE OF predicate, owner ON crm.segment
	FOR EACH ROW EXECUTE FUNCTION crm.segment_owner();

CREATE TABLE crm.segment_member (
	contact_id	bigint NOT NULL,
	segment_id	bigint NOT NULL REFERENCES crm.segment ON DELETE CASCADE,
	since		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (contact_id, segment_id)
);
COMMENT ON TABLE crm.segment_member IS 'current members of each segment and since when';
CREATE UNIQUE INDEX segment_member_segment_idx ON crm.segment_member (segment_id, contact_id);

CREATE TABLE crm.segment_log (
	contact_id	bigint NOT NULL,
	log_id		bigint GENERATED BY DEFAULT AS IDENTITY,
	segment_id	bigint NOT NULL REFERENCES crm.segment ON DELETE CASCADE,
	change		text NOT NULL
		CONSTRAINT change_enter_or_exit CHECK (change IN ('enter', 'exit')),
	at			timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (contact_id, log_id)
);
COMMENT ON TABLE crm.segment_log IS 'every entry into and exit from a segment, with the time of the refresh (or list change) that made it';
CREATE INDEX segment_log_segment_idx ON crm.segment_log (segment_id, at);

-- Contacts whose data changed, one row per contact and writing transaction.
-- A refresh reads the rows whose transaction its previous snapshot did not
-- see, so any number of segments share the table, each at its own pace.
CREATE TABLE crm.segment_dirty (
	contact_id	bigint NOT NULL,
	xid			xid8 NOT NULL DEFAULT pg_current_xact_id(),
	PRIMARY KEY (contact_id, xid)
);
COMMENT ON TABLE crm.segment_dirty IS
	'contacts changed since segments were last refreshed, with the writing transaction; maintained by triggers, pruned by refresh';
CREATE INDEX segment_dirty_xid_idx ON crm.segment_dirty (xid);

SELECT pg_catalog.pg_extension_config_dump('crm.segment', '');
SELECT pg_catalog.pg_extension_config_dump('crm.segment_segment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.segment_member', '');
SELECT pg_catalog.pg_extension_config_dump('crm.segment_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm.segment_log_log_id_seq', '');

CREATE FUNCTION crm.in_segment(contact_id bigint, segment_name text) RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT 1 FROM crm.segment_member m JOIN crm.segment s USING (segment_id)
					WHERE s.name = $2 AND m.contact_id = $1)
$$;
COMMENT ON FUNCTION crm.in_segment(bigint, text) IS
	'is the contact a current (stored) member of the named segment? usable in predicates; the name must be a literal there';

CREATE FUNCTION crm.segment_analyze(predicate text, self text,
	OUT time_dependent boolean, OUT population_dependent boolean, OUT uses text[])
	AS 'MODULE_PATHNAME', 'crm_segment_analyze'
	LANGUAGE C STABLE PARALLEL RESTRICTED SET search_path = pg_catalog, crm, pg_temp;
COMMENT ON FUNCTION crm.segment_analyze(text, text) IS
	'validate a segment predicate (errors at its position) and classify it: time dependent, population dependent, segments used; self (may be NULL) is the segment being defined';

-- Not STRICT: NULL candidates means "not known, evaluate everyone".
CREATE FUNCTION crm.segment_evaluate(segment_id bigint, candidates bigint[],
	OUT everyone boolean, OUT time_dependent boolean, OUT population_dependent boolean, OUT members bigint[])
	AS 'MODULE_PATHNAME', 'crm_segment_evaluate'
	LANGUAGE C STABLE PARALLEL UNSAFE;
COMMENT ON FUNCTION crm.segment_evaluate(bigint, bigint[]) IS
	'internal to refresh: validate a segment''s stored predicate again and run it with its owner''s privileges alone (security-restricted); evaluates the candidates, or everyone when candidates is NULL or the predicate is time dependent, or population dependent and candidates are not empty; needs UPDATE on crm.segment';

-- Validate a predicate for a segment and resolve the segments it uses.
CREATE FUNCTION crm.segment_check(segment_name text, predicate text,
	OUT time_dependent boolean, OUT population_dependent boolean, OUT uses bigint[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, crm, pg_temp AS $$
DECLARE
	a record;
	missing text;
BEGIN
	IF predicate IS NULL OR btrim(predicate) = '' THEN
		RAISE EXCEPTION 'a dynamic segment needs a predicate'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give a boolean expression over crm.contact_profile, e.g. country = ''DE'', or use crm.create_static_segment.';
	END IF;
	a := crm.segment_analyze(predicate, segment_name);
	SELECT n INTO missing FROM unnest(a.uses) n
	 WHERE NOT EXISTS (SELECT 1 FROM crm.segment s WHERE s.name = n) LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'segment "%" does not exist', missing
			USING ERRCODE = 'undefined_object',
				  DETAIL = 'The predicate uses it through crm.in_segment.',
				  HINT = 'Create the segment it depends on first.';
	END IF;
	time_dependent := a.time_dependent;
	population_dependent := a.population_dependent;
	uses := ARRAY(SELECT DISTINCT s.segment_id FROM crm.segment s WHERE s.name = ANY (a.uses) ORDER BY 1);
END $$;
COMMENT ON FUNCTION crm.segment_check(text, text) IS
	'validate a dynamic segment predicate and return its classification and the ids of the segments it uses';

CREATE FUNCTION crm.create_segment(name text, predicate text, description text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, crm, pg_temp AS $$
DECLARE
	chk record;
	id bigint;
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'a segment needs a name' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	chk := crm.segment_check(name, predicate);
	INSERT INTO crm.segment (name, kind, predicate, time_dependent, population_dependent, uses, description)
	VALUES (name, 'dynamic', predicate, chk.time_dependent, chk.population_dependent, chk.uses, description)
	RETURNING segment_id INTO id;
	RETURN id;
END $$;
COMMENT ON FUNCTION crm.create_segment(text, text, text) IS
	'create a dynamic segment from a boolean predicate over crm.contact_profile, validated now and owned by the caller (refresh evaluates it with the caller''s privileges); members appear at the first refresh';

CREATE FUNCTION crm.create_static_segment(name text, description text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
	INSERT INTO crm.segment (name, kind, description) VALUES ($1, 'static', $2) RETURNING segment_id
$$;
COMMENT ON FUNCTION crm.create_static_segment(text, text) IS
	'create a static segment (a list): members are added and removed with crm.add_to_segment / crm.remove_from_segment';

-- Look a segment up by name, locking its row, or fail with 42704.
CREATE FUNCTION crm.segment_lock(segment_name text) RETURNS crm.segment
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
BEGIN
	SELECT * INTO s FROM crm.segment g WHERE g.name = segment_name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'segment "%" does not exist', segment_name
			USING ERRCODE = 'undefined_object', HINT = 'Segments are listed in crm.segment.';
	END IF;
	RETURN s;
END $$;
COMMENT ON FUNCTION crm.segment_lock(text) IS 'the named segment''s row, locked against concurrent refreshes and changes (42704 when missing)';

CREATE FUNCTION crm.alter_segment(name text, predicate text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, crm, pg_temp AS $$
DECLARE
	s crm.segment;
	chk record;
BEGIN
	s := crm.segment_lock(name);
	IF s.kind = 'static' THEN
		RAISE EXCEPTION 'segment "%" is a static list', name
			USING ERRCODE = 'wrong_object_type', HINT = 'Only dynamic segments have a predicate.';
	END IF;
	chk := crm.segment_check(name, predicate);
	-- the new edges may not lead back to this segment
	IF EXISTS (WITH RECURSIVE reach(id) AS (
				   SELECT unnest(chk.uses)
				   UNION
				   SELECT unnest(g.uses) FROM crm.segment g JOIN reach ON g.segment_id = reach.id)
			   SELECT 1 FROM reach WHERE id = s.segment_id) THEN
		RAISE EXCEPTION 'segment "%" would depend on itself through crm.in_segment', name
			USING ERRCODE = 'invalid_recursion',
				  DETAIL = 'A segment it uses depends, directly or not, on it.';
	END IF;
	UPDATE crm.segment g
	   SET predicate = alter_segment.predicate, time_dependent = chk.time_dependent,
		   population_dependent = chk.population_dependent, uses = chk.uses,
		   refreshed_snapshot = NULL
	 WHERE g.segment_id = s.segment_id;
END $$;
COMMENT ON FUNCTION crm.alter_segment(text, text) IS
	'change the predicate of a dynamic segment (cycles through crm.in_segment rejected); the caller becomes its owner; the next refresh re-evaluates everyone';

CREATE FUNCTION crm.drop_segment(name text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
	user_name text;
BEGIN
	s := crm.segment_lock(name);
	SELECT g.name INTO user_name FROM crm.segment g WHERE s.segment_id = ANY (g.uses) LIMIT 1;
	IF user_name IS NOT NULL THEN
		RAISE EXCEPTION 'segment "%" is used by segment "%"', name, user_name
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Drop or alter the segments that use it first.';
	END IF;
	DELETE FROM crm.segment g WHERE g.segment_id = s.segment_id;
END $$;
COMMENT ON FUNCTION crm.drop_segment(text) IS 'drop a segment with its membership and log (2BP01 when another segment uses it)';

-- Apply entries and exits to one segment: membership, log, and dirty marks
-- for the segments that use it.
CREATE FUNCTION crm.segment_apply(segment_id bigint, entering bigint[], exiting bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	INSERT INTO crm.segment_member (contact_id, segment_id) SELECT unnest(entering), segment_id;
	DELETE FROM crm.segment_member m WHERE m.segment_id = segment_apply.segment_id AND m.contact_id = ANY (exiting);
	INSERT INTO crm.segment_log (contact_id, segment_id, change)
	SELECT e, segment_id, 'enter' FROM unnest(entering) e
	UNION ALL
	SELECT e, segment_id, 'exit' FROM unnest(exiting) e;
	IF EXISTS (SELECT 1 FROM crm.segment g WHERE segment_apply.segment_id = ANY (g.uses)) THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT unnest(entering) UNION SELECT unnest(exiting)
		ON CONFLICT DO NOTHING;
	END IF;
END $$;
COMMENT ON FUNCTION crm.segment_apply(bigint, bigint[], bigint[]) IS
	'internal: record entries and exits of a segment in its membership and log, and mark the contacts for segments that use it';

CREATE FUNCTION crm.add_to_segment(name text, contact_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
	entering bigint[];
BEGIN
	s := crm.segment_lock(name);
	IF s.kind <> 'static' THEN
		RAISE EXCEPTION 'segment "%" is dynamic', name
			USING ERRCODE = 'wrong_object_type', HINT = 'Its members follow its predicate; change it with crm.alter_segment.';
	END IF;
	entering := ARRAY(SELECT DISTINCT c.contact_id FROM crm.contact c
					   WHERE c.contact_id = ANY (contact_ids)
						 AND NOT EXISTS (SELECT 1 FROM crm.segment_member m
										  WHERE m.segment_id = s.segment_id AND m.contact_id = c.contact_id));
	PERFORM crm.segment_apply(s.segment_id, entering, '{}');
	RETURN cardinality(entering);
END $$;
COMMENT ON FUNCTION crm.add_to_segment(text, bigint[]) IS
	'add existing contacts to a static segment; returns how many entered (unknown ids and current members are skipped)';

CREATE FUNCTION crm.remove_from_segment(name text, contact_ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
	exiting bigint[];
BEGIN
	s := crm.segment_lock(name);
	IF s.kind <> 'static' THEN
		RAISE EXCEPTION 'segment "%" is dynamic', name
			USING ERRCODE = 'wrong_object_type', HINT = 'Its members follow its predicate; change it with crm.alter_segment.';
	END IF;
	exiting := ARRAY(SELECT m.contact_id FROM crm.segment_member m
					  WHERE m.segment_id = s.segment_id AND m.contact_id = ANY (contact_ids));
	PERFORM crm.segment_apply(s.segment_id, '{}', exiting);
	RETURN cardinality(exiting);
END $$;
COMMENT ON FUNCTION crm.remove_from_segment(text, bigint[]) IS 'remove contacts from a static segment; returns how many exited';

-- Refresh ---------------------------------------------------------------------

CREATE FUNCTION crm.refresh_segment(name text, full_refresh boolean DEFAULT false,
	OUT entered bigint, OUT exited bigint)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
	snap pg_snapshot;
	prev pg_snapshot;
	cand bigint[];
	ev record;
	evaluated bigint;
	entering bigint[];
	exiting bigint[];
BEGIN
	-- the row lock serialises refreshes of one segment; once it is granted,
	-- the next statements see what a concurrent refresh committed
	s := crm.segment_lock(name);
	IF s.kind = 'static' THEN
		entered := 0;
		exited := 0;
		RETURN;
	END IF;
	snap := pg_current_snapshot();
	prev := s.refreshed_snapshot;
	-- The contacts to re-evaluate: those marked by transactions the last
	-- refresh's snapshot did not see, and by the last refreshing transaction
	-- itself (a snapshot counts its own transaction as seen once a later one
	-- has completed, and its later changes reuse its marks).  NULL, everyone:
	-- when asked, at the first refresh, when no marks are kept for the
	-- predicate (time dependent), or when the snapshot is from the future (the
	-- xids restarted: pg_restore).  A predicate that ranks contacts among each
	-- other needs everyone as soon as anything changed.
	IF full_refresh OR prev IS NULL OR s.time_dependent
	   OR pg_snapshot_xmax(prev) > pg_snapshot_xmax(snap) THEN
		cand := NULL;
	ELSIF s.population_dependent THEN
		cand := CASE WHEN EXISTS (
					SELECT 1 FROM crm.segment_dirty d
					 WHERE d.xid >= pg_snapshot_xmin(prev)
					   AND (NOT pg_visible_in_snapshot(d.xid, prev) OR d.xid = s.refreshed_xid))
				THEN NULL ELSE '{}' END;
	ELSE
		cand := ARRAY(SELECT DISTINCT d.contact_id FROM crm.segment_dirty d
					   WHERE d.xid >= pg_snapshot_xmin(prev)
						 AND (NOT pg_visible_in_snapshot(d.xid, prev) OR d.xid = s.refreshed_xid));
	END IF;
	-- the predicate runs as the segment's owner, validated again, and its
	-- classification as validated now decides (no contact is read when the
	-- candidates are none and the predicate is not time dependent)
	ev := crm.segment_evaluate(s.segment_id, cand);
	IF ev.everyone THEN
		evaluated := (SELECT count(*) FROM crm.contact);
		WITH fresh AS MATERIALIZED (SELECT unnest(ev.members) AS contact_id),
		mem AS MATERIALIZED (SELECT m.contact_id FROM crm.segment_member m WHERE m.segment_id = s.segment_id)
		SELECT ARRAY(SELECT f.contact_id FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM mem WHERE mem.contact_id = f.contact_id)),
			   ARRAY(SELECT m.contact_id FROM mem m WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.contact_id = m.contact_id))
		  INTO entering, exiting;
	ELSE
		evaluated := cardinality(cand);
		WITH fresh AS MATERIALIZED (SELECT unnest(ev.members) AS contact_id),
		mem AS MATERIALIZED (
			SELECT m.contact_id FROM unnest(cand) c(contact_id)
			  JOIN crm.segment_member m ON m.segment_id = s.segment_id AND m.contact_id = c.contact_id)
		SELECT ARRAY(SELECT f.contact_id FROM fresh f WHERE NOT EXISTS (SELECT 1 FROM mem WHERE mem.contact_id = f.contact_id)),
			   ARRAY(SELECT m.contact_id FROM mem m WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.contact_id = m.contact_id))
		  INTO entering, exiting;
	END IF;
	PERFORM crm.segment_apply(s.segment_id, entering, exiting);
	entered := cardinality(entering);
	exited := cardinality(exiting);
	UPDATE crm.segment g
	   SET refreshed_at = now(), refreshed_snapshot = snap, refreshed_xid = pg_current_xact_id(),
		   last_full = ev.everyone, last_evaluated = evaluated, last_entered = entered, last_exited = exited,
		   time_dependent = ev.time_dependent, population_dependent = ev.population_dependent
	 WHERE g.segment_id = s.segment_id;
	-- dirty rows every incremental segment has seen are no longer needed (a
	-- snapshot's xmin is at most its own transaction's id)
	DELETE FROM crm.segment_dirty d
	 WHERE d.xid < (SELECT min(pg_snapshot_xmin(g.refreshed_snapshot)) FROM crm.segment g
					 WHERE g.kind = 'dynamic' AND NOT g.time_dependent HAVING bool_and(g.refreshed_snapshot IS NOT NULL));
END $$;
COMMENT ON FUNCTION crm.refresh_segment(text, boolean) IS
	'bring a dynamic segment''s membership up to date: re-evaluates, as the segment''s owner, the contacts changed since its last refresh (everyone when the predicate is time or population dependent, or full_refresh); logs entries and exits';

CREATE FUNCTION crm.refresh_segments(OUT segment text, OUT entered bigint, OUT exited bigint)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n text;
BEGIN
	-- a segment comes after every segment it uses (the graph has no cycles)
	FOR n IN
		WITH RECURSIVE depth(segment_id, d) AS (
			SELECT g.segment_id, 0 FROM crm.segment g
			UNION ALL
			SELECT g.segment_id, depth.d + 1 FROM crm.segment g JOIN depth ON depth.segment_id = ANY (g.uses))
		SELECT g.name FROM crm.segment g JOIN depth USING (segment_id)
		 WHERE g.kind = 'dynamic'
		 GROUP BY g.segment_id, g.name ORDER BY max(depth.d), g.name
	LOOP
		segment := n;
		SELECT r.entered, r.exited INTO entered, exited FROM crm.refresh_segment(n) r;
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION crm.refresh_segments() IS
	'refresh every dynamic segment, each after the segments it uses; one row per segment with its entries and exits';

-- Dirty marking ----------------------------------------------------------------
-- Statement-level triggers with transition tables: one INSERT per statement,
-- whatever its size, and nothing at all while no segment needs the marks.

CREATE FUNCTION crm.segment_dirty_new() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM crm.segment g WHERE g.kind = 'dynamic' AND NOT g.time_dependent) THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT DISTINCT n.contact_id FROM new_rows n
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.segment_dirty_new() IS 'trigger: mark the contacts of the inserted or updated rows for segment refresh';

CREATE FUNCTION crm.segment_dirty_old() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM crm.segment g WHERE g.kind = 'dynamic' AND NOT g.time_dependent) THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT DISTINCT o.contact_id FROM old_rows o
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.segment_dirty_old() IS 'trigger: mark the contacts of the deleted rows for segment refresh';

CREATE FUNCTION crm.segment_dirty_both() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM crm.segment g WHERE g.kind = 'dynamic' AND NOT g.time_dependent) THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT n.contact_id FROM new_rows n UNION SELECT o.contact_id FROM old_rows o
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.segment_dirty_both() IS 'trigger: mark the contacts of the updated rows (before and after) for segment refresh';

CREATE FUNCTION crm.segment_dirty_company() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM crm.segment g WHERE g.kind = 'dynamic' AND NOT g.time_dependent) THEN
		INSERT INTO crm.segment_dirty (contact_id)
		SELECT DISTINCT c.contact_id FROM crm.contact c JOIN new_rows n USING (company_id)
		ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION crm.segment_dirty_company() IS 'trigger: mark the contacts of updated companies for segment refresh';

CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_new();
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm.contact
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_both();
CREATE TRIGGER segment_dirty_delete AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_old();
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_company();
CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_new();
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm.activity
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_both();
CREATE TRIGGER segment_dirty_delete AFTER DELETE ON crm.activity
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_old();
CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_new();
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm."order"
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_both();
CREATE TRIGGER segment_dirty_delete AFTER DELETE ON crm."order"
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_old();
CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm.consent
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty_new();

-- ---------------------------------------------------------------------------
-- Campaigns: a segment on a channel, over a window, at a cost.  Targets are
-- the members who may be contacted on the channel now; an optional hold-out
-- share is kept out as a control group, chosen by a hash of (contact,
-- campaign) so the choice is random-like, repeatable and recorded.
-- (Kept in this file because the install script concatenates src/*.sql in
-- name order and campaigns need the segment tables.)
-- ---------------------------------------------------------------------------
CREATE TABLE crm.campaign (
	campaign_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name		text NOT NULL
		CONSTRAINT name_not_empty CHECK (btrim(name) <> ''),
	channel		text NOT NULL REFERENCES crm.channel,
	segment_id	bigint NOT NULL REFERENCES crm.segment,
	starts_at	timestamptz NOT NULL DEFAULT now(),
	ends_at		timestamptz,
	cost		numeric(14, 2) NOT NULL DEFAULT 0
		CONSTRAINT cost_not_negative_nor_nan CHECK (cost >= 0 AND cost <> 'NaN'),
	holdout_share numeric(4, 3) NOT NULL DEFAULT 0
		CONSTRAINT holdout_share_from_0_below_1 CHECK (holdout_share >= 0 AND holdout_share < 1),
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT ends_at_after_starts_at CHECK (ends_at > starts_at),
	CONSTRAINT campaign_name_key UNIQUE (name)
);
COMMENT ON TABLE crm.campaign IS 'campaigns: a segment contacted on a channel between two dates, at a cost, with an optional hold-out share';

CREATE TABLE crm.campaign_target (
	-- a foreign key, so merges move a dropped contact's targets
	contact_id	bigint NOT NULL REFERENCES crm.contact ON DELETE CASCADE,
	campaign_id bigint NOT NULL REFERENCES crm.campaign ON DELETE CASCADE,
	holdout		boolean NOT NULL,
	selected_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (contact_id, campaign_id)
);
COMMENT ON TABLE crm.campaign_target IS 'contacts selected for a campaign, and whether each was held out as control';
CREATE INDEX campaign_target_campaign_idx ON crm.campaign_target (campaign_id, holdout);
SELECT pg_catalog.pg_extension_config_dump('crm.campaign', '');
SELECT pg_catalog.pg_extension_config_dump('crm.campaign_campaign_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.campaign_target', '');

CREATE FUNCTION crm.campaign_holdout(contact_id bigint, campaign_id bigint, share numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT ((hashint8extended($1, $2) & 2147483647)::float8 / 2147483648.0) < $3
$$;
COMMENT ON FUNCTION crm.campaign_holdout(bigint, bigint, numeric) IS
	'is the contact in the campaign''s hold-out group? a hash of (contact, campaign) below the share';

CREATE FUNCTION crm.create_campaign(name text, segment text, channel text DEFAULT 'email',
	starts_at timestamptz DEFAULT now(), ends_at timestamptz DEFAULT NULL,
	cost numeric DEFAULT 0, holdout_share numeric DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	sid bigint;
	id bigint;
BEGIN
	SELECT g.segment_id INTO sid FROM crm.segment g WHERE g.name = create_campaign.segment;
	IF sid IS NULL THEN
		RAISE EXCEPTION 'segment "%" does not exist', segment
			USING ERRCODE = 'undefined_object', HINT = 'Segments are listed in crm.segment.';
	END IF;
	INSERT INTO crm.campaign (name, channel, segment_id, starts_at, ends_at, cost, holdout_share)
	VALUES (name, channel, sid, coalesce(starts_at, now()), ends_at, coalesce(cost, 0), coalesce(holdout_share, 0))
	RETURNING campaign_id INTO id;
	RETURN id;
END $$;
COMMENT ON FUNCTION crm.create_campaign(text, text, text, timestamptz, timestamptz, numeric, numeric) IS
	'create a campaign on a segment (by name) and channel, with window, cost and hold-out share';

CREATE FUNCTION crm.campaign_targets(campaign_id bigint)
RETURNS TABLE (contact_id bigint, email crm.email)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cam crm.campaign;
BEGIN
	SELECT * INTO cam FROM crm.campaign k WHERE k.campaign_id = campaign_targets.campaign_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'campaign % does not exist', campaign_targets.campaign_id
			USING ERRCODE = 'undefined_object', HINT = 'Campaigns are listed in crm.campaign.';
	END IF;
	IF cam.ends_at <= now() THEN
		RAISE EXCEPTION 'campaign "%" has ended', cam.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It ended at %s.', cam.ends_at),
				  HINT = 'Targets are selected while a campaign runs; extend ends_at to select again.';
	END IF;
	-- members with a current grant on the channel and no do-not-contact flag;
	-- a contact already selected keeps the group it was put in
	RETURN QUERY
	WITH eligible AS MATERIALIZED (
		SELECT m.contact_id, c.email,
			   coalesce(t.holdout, crm.campaign_holdout(m.contact_id, cam.campaign_id, cam.holdout_share)) AS holdout,
			   t.contact_id IS NULL AS new
		  FROM crm.segment_member m
		  JOIN crm.contact c ON c.contact_id = m.contact_id
		  LEFT JOIN crm.campaign_target t ON t.contact_id = m.contact_id AND t.campaign_id = cam.campaign_id
		 WHERE m.segment_id = cam.segment_id
		   AND c.do_not_contact IS NULL
		   AND coalesce((SELECT l.status = 'granted' AND (l.valid_until IS NULL OR l.valid_until > now())
						   FROM crm.consent l
						  WHERE l.contact_id = m.contact_id AND l.channel = cam.channel AND l.recorded_at <= now()
						  ORDER BY l.recorded_at DESC, l.consent_id DESC LIMIT 1), false)),
	recorded AS (
		INSERT INTO crm.campaign_target (contact_id, campaign_id, holdout)
		SELECT e.contact_id, cam.campaign_id, e.holdout FROM eligible e WHERE e.new
		ON CONFLICT DO NOTHING)
	SELECT e.contact_id, e.email FROM eligible e
	 WHERE NOT e.holdout ORDER BY e.contact_id;
END $$;
COMMENT ON FUNCTION crm.campaign_targets(bigint) IS
	'contacts to send a campaign to now: stored members of its segment with unexpired consent on its channel and no do-not-contact flag, minus the hold-out group; records every selected contact (and its group) in crm.campaign_target';

CREATE FUNCTION crm.campaign_report(campaign_id bigint)
RETURNS TABLE (campaign text, targeted bigint, held_out bigint, responded bigint, response_rate numeric,
			   holdout_responded bigint, holdout_response_rate numeric, revenue numeric,
			   holdout_revenue numeric, cost numeric, return_on_cost numeric, lift numeric)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
	WITH cam AS (
		SELECT k.*, coalesce(k.ends_at, now()) AS until FROM crm.campaign k WHERE k.campaign_id = $1),
	per_contact AS (
		SELECT t.holdout,
			   (SELECT sum(o.total) FROM crm."order" o
				 WHERE o.contact_id = t.contact_id AND o.ordered_at >= cam.starts_at AND o.ordered_at < cam.until
				   AND o.status <> ALL ('{cancelled,refunded}'::text[])) AS spent,
			   EXISTS (SELECT 1 FROM crm.activity a
						WHERE a.contact_id = t.contact_id AND a.occurred_at >= cam.starts_at AND a.occurred_at < cam.until
						  AND a.properties @> jsonb_build_object('campaign_id', cam.campaign_id)) AS acted
		  FROM cam JOIN crm.campaign_target t ON t.campaign_id = cam.campaign_id),
	agg AS (
		SELECT count(*) FILTER (WHERE NOT holdout) AS targeted,
			   count(*) FILTER (WHERE holdout) AS held_out,
			   count(*) FILTER (WHERE NOT holdout AND (spent IS NOT NULL OR acted)) AS responded,
			   count(*) FILTER (WHERE holdout AND (spent IS NOT NULL OR acted)) AS holdout_responded,
			   coalesce(sum(spent) FILTER (WHERE NOT holdout), 0) AS revenue,
			   coalesce(sum(spent) FILTER (WHERE holdout), 0) AS holdout_revenue
		  FROM per_contact)
	SELECT cam.name, agg.targeted, agg.held_out, agg.responded,
		   round(agg.responded::numeric / nullif(agg.targeted, 0), 4),
		   agg.holdout_responded,
		   round(agg.holdout_responded::numeric / nullif(agg.held_out, 0), 4),
		   agg.revenue, agg.holdout_revenue, cam.cost,
		   round((agg.revenue - cam.cost) / nullif(cam.cost, 0), 4),
		   round((agg.responded::numeric / nullif(agg.targeted, 0))
				 / nullif(agg.holdout_responded::numeric / nullif(agg.held_out, 0), 0) - 1, 4)
	  FROM cam, agg
$$;
COMMENT ON FUNCTION crm.campaign_report(bigint) IS
	'campaign results: targeted and held-out contacts, responders (an order, or an activity tagged {"campaign_id": id}, within the window), response rates, revenue, cost, return on cost ((revenue - cost) / cost) and lift of the response rate over the hold-out group';

-- ---------------------------------------------------------------------------
-- Who owns what (last in the install script).  crm is a trusted extension:
-- a role with CREATE on the database (its owner, by default) may install it,
-- and the script then runs as the bootstrap superuser.  That superuser keeps
-- the schema, the C functions, types and operators, so the installer cannot
-- redefine code that runs inside the server nor add objects to schema crm;
-- the data (tables, their sequences, views) goes to the role that ran
-- CREATE EXTENSION, which can then load, grant, secure, dump and restore it
-- like its own tables.  The C units check the types of the columns they
-- read (crm_require_type), since that role may alter its tables.  When a
-- superuser installs crm everything stays its own and nothing here runs.
-- ---------------------------------------------------------------------------
DO $$
DECLARE
	installer regrole := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'crm');
	r record;
BEGIN
	IF installer = (SELECT a.oid FROM pg_catalog.pg_roles a WHERE a.rolname = current_user) THEN
		RETURN;
	END IF;
	-- a sequence owned by a column follows its table
	FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_catalog.pg_class c
			  WHERE c.relnamespace = 'crm'::regnamespace
				AND (c.relkind IN ('r', 'p', 'v', 'm')
					 OR (c.relkind = 'S' AND NOT EXISTS (
							SELECT 1 FROM pg_catalog.pg_depend d
							 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
							   AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i'))))
			  ORDER BY c.oid
	LOOP
		EXECUTE format('ALTER %s %s OWNER TO %s',
					   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
									  WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.rel, installer);
	END LOOP;
	-- to hand on to the crm roles (crm.setup_roles), and to run the
	-- functions revoked from PUBLIC (setup_roles, merges, erasure)
	EXECUTE format('GRANT USAGE ON SCHEMA crm TO %s WITH GRANT OPTION', installer);
	EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA crm TO %s WITH GRANT OPTION', installer);
END $$;
