
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
-- only those; the consent columns come from one pass over the contact's
-- ledger (written once for the five channels), and the population columns
-- (rfm, rfm_segment, value_rank) from one grouped pass over the orders: the
-- planner drops either join when its columns are unused.  The consent join
-- comes first: a left join listed after it would no longer be dropped.
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
	   coalesce(cs.email, false) AS consent_email, coalesce(cs.phone, false) AS consent_phone,
	   coalesce(cs.sms, false) AS consent_sms, coalesce(cs.post, false) AS consent_post,
	   coalesce(cs.profiling, false) AS consent_profiling,
	   crm.score(c.contact_id, 'engagement') AS engagement_score,
	   crm.score(c.contact_id, 'fit') AS fit_score,
	   crm.grade(c.contact_id) AS grade,
	   lp.balance AS points_balance, lp.tier AS loyalty_tier, lp.expiring AS points_expiring_30d
  FROM crm.contact c
  -- consent now, per channel: the latest row recorded by now, granted and
  -- unexpired; one pass over the contact's ledger (consent_current_idx)
  LEFT JOIN LATERAL (
	SELECT bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'email') AS email,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'phone') AS phone,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'sms') AS sms,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'post') AS post,
		   bool_or(l.granted) FILTER (WHERE l.channel OPERATOR(pg_catalog.=) 'profiling') AS profiling
	  FROM (SELECT DISTINCT ON (l.channel) l.channel,
				   l.status OPERATOR(pg_catalog.=) 'granted'
				   AND (l.valid_until IS NULL OR l.valid_until OPERATOR(pg_catalog.>) now()) AS granted
			  FROM crm.consent l
			 WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.recorded_at OPERATOR(pg_catalog.<=) now()
			 ORDER BY l.channel, l.recorded_at DESC, l.consent_id DESC) l) cs ON true
  LEFT JOIN crm.company co ON co.company_id OPERATOR(pg_catalog.=) c.company_id
  LEFT JOIN (SELECT o.contact_id,
					crm.rfm(1 + 5 * (rank() OVER (ORDER BY max(o.ordered_at)) - 1) / count(*) OVER (),
							1 + 5 * (rank() OVER (ORDER BY count(*)) - 1) / count(*) OVER (),
							1 + 5 * (rank() OVER (ORDER BY sum(o.total)) - 1) / count(*) OVER ()) AS rfm,
					percent_rank() OVER (ORDER BY sum(o.total)) AS value_rank
			   FROM crm."order" o
			  WHERE o.status OPERATOR(pg_catalog.<>) ALL ('{cancelled,refunded}'::text[])
			  GROUP BY o.contact_id) v ON v.contact_id OPERATOR(pg_catalog.=) c.contact_id
  -- loyalty (src/loyalty.sql): the points of every programme, the highest
  -- tier held, the points whose lots expire within 30 days
  LEFT JOIN LATERAL (
	SELECT sum(b.balance)::bigint AS balance,
		   (pg_catalog.array_agg(b.tier ORDER BY t.qualifying_points DESC) FILTER (WHERE b.tier IS NOT NULL))[1] AS tier,
		   (SELECT coalesce(sum(l.remaining), 0)::bigint FROM crm.points_lot l
			 WHERE l.contact_id OPERATOR(pg_catalog.=) c.contact_id AND l.remaining OPERATOR(pg_catalog.>) 0
			   AND l.expires_at OPERATOR(pg_catalog.>) now()
			   AND l.expires_at OPERATOR(pg_catalog.<=) (now() OPERATOR(pg_catalog.+) interval '30 days')) AS expiring
	  FROM crm.points_balance b
	  LEFT JOIN crm.loyalty_tier t ON t.program_id OPERATOR(pg_catalog.=) b.program_id AND t.tier OPERATOR(pg_catalog.=) b.tier
	 WHERE b.contact_id OPERATOR(pg_catalog.=) c.contact_id
	HAVING count(*) OPERATOR(pg_catalog.>) 0) lp ON true;
COMMENT ON VIEW crm.contact_profile IS
	'one row per contact for segment predicates: contact and company columns, orders, lifetime value, RFM cell and segment, value_rank (percentile of lifetime value among customers), activity counts, consent per channel now, scores, loyalty points, tier and points expiring soon';

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
-- The window as text, as a driver binds a string ('30 days'); a literal
-- window resolves here too and means the same.  A SQL-standard body: bound
-- at CREATE time and inlined, so it adds no call of its own.
CREATE FUNCTION crm.activity_count(contact_id bigint, kind text, within text)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN crm.activity_count(contact_id, kind, within::interval);
COMMENT ON FUNCTION crm.activity_count(bigint, text, text) IS
	'crm.activity_count with the window given as text (''30 days''), as a BI tool binds a string parameter';

CREATE FUNCTION crm.bought_between(contact_id bigint, from_at timestamptz, to_at timestamptz)
RETURNS boolean
LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT 1 FROM crm."order" o
					WHERE o.contact_id = $1 AND o.ordered_at >= $2 AND o.ordered_at < $3
					  AND o.status <> ALL ('{cancelled,refunded}'::text[]))
$$;
COMMENT ON FUNCTION crm.bought_between(bigint, timestamptz, timestamptz) IS
	'did the contact place an order (not cancelled or refunded) in [from_at, to_at)? dates are midnight in the session time zone';

-- bigint arguments, so that a driver's 64-bit parameters bind
CREATE FUNCTION crm.nth_weekday(year bigint, month bigint, weekday bigint, n bigint)
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
	first := make_date(year::integer, month::integer, 1);
	d := first + ((weekday - extract(dow FROM first)::integer + 7) % 7)::integer + 7 * (n - 1)::integer;
	IF extract(month FROM d) <> month THEN
		RAISE EXCEPTION '% has no occurrence % of weekday %', to_char(first, 'YYYY-MM'), n, weekday
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN d;
END $$;
COMMENT ON FUNCTION crm.nth_weekday(bigint, bigint, bigint, bigint) IS
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

-- The same for a static segment (a list), or fail with 42809: only lists
-- take members by hand.
CREATE FUNCTION crm.static_segment_lock(segment_name text) RETURNS crm.segment
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s crm.segment;
BEGIN
	s := crm.segment_lock(segment_name);
	IF s.kind <> 'static' THEN
		RAISE EXCEPTION 'segment "%" is dynamic', segment_name
			USING ERRCODE = 'wrong_object_type', HINT = 'Its members follow its predicate; change it with crm.alter_segment.';
	END IF;
	RETURN s;
END $$;
COMMENT ON FUNCTION crm.static_segment_lock(text) IS 'the named static segment''s row, locked as by crm.segment_lock (42704 when missing, 42809 when dynamic)';

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
	s := crm.static_segment_lock(name);
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
	s := crm.static_segment_lock(name);
	exiting := ARRAY(SELECT m.contact_id FROM crm.segment_member m
					  WHERE m.segment_id = s.segment_id AND m.contact_id = ANY (contact_ids));
	PERFORM crm.segment_apply(s.segment_id, '{}', exiting);
	RETURN cardinality(exiting);
END $$;
COMMENT ON FUNCTION crm.remove_from_segment(text, bigint[]) IS 'remove contacts from a static segment; returns how many exited';

-- Refresh ---------------------------------------------------------------------

CREATE FUNCTION crm.refresh_segment(name text, full_refresh boolean DEFAULT false,
	OUT entered bigint, OUT exited bigint)
LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp
SET citus.multi_shard_modify_mode = 'sequential' AS $$
DECLARE
	s crm.segment;
	snap pg_snapshot;
	prev pg_snapshot;
	cand bigint[];
	ev record;
	evaluated bigint;
	entering bigint[];
	exiting bigint[];
	distributed boolean := pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL;
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
	-- On Citus the marks are written on the workers, with the workers' own
	-- transaction ids, which the coordinator's snapshot cannot order: every
	-- refresh there is a full one until the marks carry a cluster-wide order.
	IF distributed THEN
		EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
								 WHERE p.logicalrelid OPERATOR(pg_catalog.=) ''crm.segment_dirty''::pg_catalog.regclass)'
		   INTO distributed;
	END IF;
	IF full_refresh OR prev IS NULL OR s.time_dependent OR distributed
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
	entered := cardinality(entering);
	exited := cardinality(exiting);
	-- On Citus crm.segment is a reference table, which a transaction may
	-- not write after a parallel operation on distributed tables: the
	-- function runs its multi-shard statements one connection at a time
	-- (citus.multi_shard_modify_mode, a placeholder setting off Citus)
	UPDATE crm.segment g
	   SET refreshed_at = now(), refreshed_snapshot = snap, refreshed_xid = pg_current_xact_id(),
		   last_full = ev.everyone, last_evaluated = evaluated, last_entered = entered, last_exited = exited,
		   time_dependent = ev.time_dependent, population_dependent = ev.population_dependent
	 WHERE g.segment_id = s.segment_id;
	PERFORM crm.segment_apply(s.segment_id, entering, exiting);
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
-- whatever its size, and nothing at all while no segment needs the marks
-- (src/segment_dirty.c).  The argument is the logical table (src/shard.c).

CREATE FUNCTION crm.segment_dirty() RETURNS trigger
	AS 'MODULE_PATHNAME', 'crm_segment_dirty' LANGUAGE C;
COMMENT ON FUNCTION crm.segment_dirty() IS
	'trigger: mark for segment refresh the contacts of the inserted, deleted or updated rows (before and after), or on company, the contacts of the updated companies; the argument names the table';

CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm.contact
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('contact');
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm.contact
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('contact');
CREATE TRIGGER segment_dirty_delete AFTER DELETE ON crm.contact
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('contact');
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm.company
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('company');
CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm.activity
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('activity');
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm.activity
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('activity');
CREATE TRIGGER segment_dirty_delete AFTER DELETE ON crm.activity
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('activity');
CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm."order"
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('order');
CREATE TRIGGER segment_dirty_update AFTER UPDATE ON crm."order"
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('order');
CREATE TRIGGER segment_dirty_delete AFTER DELETE ON crm."order"
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('order');
CREATE TRIGGER segment_dirty_insert AFTER INSERT ON crm.consent
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.segment_dirty('consent');
