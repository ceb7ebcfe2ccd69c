
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
CREATE FUNCTION crm.find_duplicates(min_score double precision DEFAULT 0.9, max_block bigint DEFAULT 100)
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
COMMENT ON FUNCTION crm.find_duplicates(double precision, bigint) IS
	'candidate duplicate contacts found by blocking on e-mail handle, phone, birth date, name key + company, name key + city and company + initial; scored 0..1 with reasons';
