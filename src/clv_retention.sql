
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

-- float8 arguments, so that a driver's doubles (JDBC setDouble) bind and
-- numeric ones are cast implicitly; the arithmetic stays numeric
CREATE FUNCTION crm.simple_clv(margin float8, retention float8, discount float8)
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
	RETURN margin::numeric * retention::numeric / (1 + discount::numeric - retention::numeric);
END
$$;
COMMENT ON FUNCTION crm.simple_clv(float8, float8, float8) IS 'simple CLV: margin * r / (1 + d - r) for a margin per period, retention r and discount rate d per period';

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

-- The period as text ('1 month'), as a driver binds a string parameter; a
-- literal period resolves to these too and means the same.  SQL-standard
-- bodies: bound at CREATE time and inlined, so they add no call of their own.
CREATE FUNCTION crm.period_index(ts timestamptz, period text) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
RETURN crm.period_index(ts, period::interval);
CREATE FUNCTION crm.period_start(idx bigint, period text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN crm.period_start(idx, period::interval);
CREATE FUNCTION crm.churn_rate(period text, "from" timestamptz, "to" timestamptz)
RETURNS TABLE (period_start timestamptz, active bigint, churned bigint, churn_rate numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT * FROM crm.churn_rate(period::interval, "from", "to");
END;
CREATE FUNCTION crm.retention_cohorts(period text)
RETURNS TABLE (cohort timestamptz, periods_since integer, customers bigint, active bigint, retention numeric)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT * FROM crm.retention_cohorts(period::interval);
END;
COMMENT ON FUNCTION crm.period_index(timestamptz, text) IS 'crm.period_index with the period as text (''1 month''), as a BI tool binds a string parameter';
COMMENT ON FUNCTION crm.period_start(bigint, text) IS 'crm.period_start with the period as text (''1 month''), as a BI tool binds a string parameter';
COMMENT ON FUNCTION crm.churn_rate(text, timestamptz, timestamptz) IS 'crm.churn_rate with the period as text (''1 month''), as a BI tool binds a string parameter';
COMMENT ON FUNCTION crm.retention_cohorts(text) IS 'crm.retention_cohorts with the period as text (''1 month''), as a BI tool binds a string parameter';
