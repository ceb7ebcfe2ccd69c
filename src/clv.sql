
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
CREATE FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz, text)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_btyd_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.btyd_summary_trans(internal, timestamptz, numeric, timestamptz, text) IS 'transition of crm.btyd_summary with the unit as text (read as an interval once per value)';
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
-- The unit as text ('7 days'), as a driver binds a string parameter; a
-- literal unit resolves here too and means the same
CREATE AGGREGATE crm.btyd_summary(occurred_at timestamptz, amount numeric, observation_end timestamptz, unit text) (
	SFUNC = crm.btyd_summary_trans, STYPE = internal, FINALFUNC = crm.btyd_summary_final,
	COMBINEFUNC = crm.btyd_summary_combine, SERIALFUNC = crm.btyd_summary_serialize,
	DESERIALFUNC = crm.btyd_summary_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.btyd_summary(timestamptz, numeric, timestamptz, text) IS 'crm.btyd_summary with the unit as text (''7 days''), as a BI tool binds a string parameter';

-- Model types: fixed length (88 bytes), text form name(param=value,...).
-- One shape for every model: a shell type, its four I/O functions (C
-- symbols crm_<model>_in/out/recv/send), the type, and their comments,
-- made by one loop (schema-qualified: no search_path dependence).
DO $models$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM (VALUES
		('bgnbd', 'fitted BG/NBD model (Fader, Hardie & Lee 2005): r, alpha, a, b, log-likelihood, customers, standard errors, converged'),
		('mbgnbd', 'fitted MBG/NBD model (Batislam et al. 2007): r, alpha, a, b, log-likelihood, customers, standard errors, converged'),
		('paretonbd', 'fitted Pareto/NBD model (Schmittlein, Morrison & Colombo 1987): r, alpha, s, beta, log-likelihood, customers, standard errors, converged'),
		('gammagamma', 'fitted Gamma-Gamma spend model (Fader, Hardie & Lee 2005): p, q, gamma, log-likelihood, customers, standard errors, converged'),
		('bgbb', 'fitted BG/BB model for discrete opportunities (Fader, Hardie & Shang 2010): alpha, beta, gamma, delta, log-likelihood, customers, standard errors, converged')
	) AS v(name, about)
	LOOP
		-- %1$s: the model's name, a fixed lower-case identifier from the list above
		EXECUTE pg_catalog.format($sql$
			CREATE TYPE crm.%1$I;
			CREATE FUNCTION crm.%1$s_in(cstring) RETURNS crm.%1$I AS 'MODULE_PATHNAME', 'crm_%1$s_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			CREATE FUNCTION crm.%1$s_out(crm.%1$I) RETURNS cstring AS 'MODULE_PATHNAME', 'crm_%1$s_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			CREATE FUNCTION crm.%1$s_recv(internal) RETURNS crm.%1$I AS 'MODULE_PATHNAME', 'crm_%1$s_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			CREATE FUNCTION crm.%1$s_send(crm.%1$I) RETURNS bytea AS 'MODULE_PATHNAME', 'crm_%1$s_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			CREATE TYPE crm.%1$I (INPUT = crm.%1$s_in, OUTPUT = crm.%1$s_out, RECEIVE = crm.%1$s_recv,
				SEND = crm.%1$s_send, INTERNALLENGTH = 88, ALIGNMENT = double);
			COMMENT ON TYPE crm.%1$I IS %2$L;
			COMMENT ON FUNCTION crm.%1$s_in(cstring) IS 'text input of crm.%1$s';
			COMMENT ON FUNCTION crm.%1$s_out(crm.%1$I) IS 'text output of crm.%1$s';
			COMMENT ON FUNCTION crm.%1$s_recv(internal) IS 'binary input of crm.%1$s';
			COMMENT ON FUNCTION crm.%1$s_send(crm.%1$I) IS 'binary output of crm.%1$s';
			$sql$, m.name, m.about);
	END LOOP;
END
$models$;

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

-- Fitting aggregates: a state of distinct rows, as bytea (its flat form):
-- Citus computes partial aggregates on its workers only for a state type
-- it can send, never for internal.  In memory the state is an expanded
-- object changed in place (src/clv_fit.c); it is flattened only when it
-- leaves the process (a parallel worker's or a Citus worker's partial state).
CREATE FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8) IS 'transition of the (frequency, recency, T) fits (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rfm_trans(bytea, float8, float8, float8, float8) IS 'transition of the weighted (frequency, recency, T) fits (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_spend_trans(bytea, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_spend_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_spend_trans(bytea, float8, float8) IS 'transition of crm.gammagamma_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_spend_trans(bytea, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_spend_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_spend_trans(bytea, float8, float8, float8) IS 'transition of the weighted crm.gammagamma_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_discrete_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8) IS 'transition of crm.bgbb_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8, float8)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_discrete_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_discrete_trans(bytea, float8, float8, float8, float8) IS 'transition of the weighted crm.bgbb_fit (not STRICT: rows with a NULL are skipped; only inside an aggregate)';
CREATE FUNCTION crm.clv_rows_combine(bytea, bytea)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_clv_rows_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.clv_rows_combine(bytea, bytea) IS 'combine function of the CLV fits: merges sorted distinct rows (not STRICT: either state may be empty; only inside an aggregate)';

-- Fitting: one final function and two aggregates (unweighted, and with a
-- weight: the number of customers a row stands for) per model, the same
-- shape for all five, made by one loop (schema-qualified like the types).
DO $fits$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM (VALUES
		('bgnbd', 'clv_rfm_trans', 'frequency float8, recency float8, t float8',
		 'fit a BG/NBD model to customers (frequency, recency, T) by maximum likelihood',
		 'fit a BG/NBD model to weighted rows (frequency, recency, T, number of customers)'),
		('mbgnbd', 'clv_rfm_trans', 'frequency float8, recency float8, t float8',
		 'fit an MBG/NBD model to customers (frequency, recency, T) by maximum likelihood',
		 'fit an MBG/NBD model to weighted rows (frequency, recency, T, number of customers)'),
		('paretonbd', 'clv_rfm_trans', 'frequency float8, recency float8, t float8',
		 'fit a Pareto/NBD model to customers (frequency, recency, T) by maximum likelihood',
		 'fit a Pareto/NBD model to weighted rows (frequency, recency, T, number of customers)'),
		('gammagamma', 'clv_spend_trans', 'frequency float8, monetary_value float8',
		 'fit a Gamma-Gamma spend model to customers (frequency, mean repeat spend); rows with frequency 0 are ignored',
		 'fit a Gamma-Gamma spend model to weighted rows; rows with frequency 0 are ignored'),
		('bgbb', 'clv_discrete_trans', 'frequency float8, recency float8, n float8',
		 'fit a BG/BB model to customers (frequency, recency, n opportunities)',
		 'fit a BG/BB model to weighted rows (frequency, recency, n, number of customers)')
	) AS v(name, trans, args, about, weighted_about)
	LOOP
		-- %1$s model, %2$s transition function, %3$s the aggregate's arguments
		EXECUTE pg_catalog.format($sql$
			CREATE FUNCTION crm.%1$s_final(bytea) RETURNS crm.%1$I
				AS 'MODULE_PATHNAME', 'crm_%1$s_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
			COMMENT ON FUNCTION crm.%1$s_final(bytea) IS
				'final function of crm.%1$s_fit: maximum likelihood (not STRICT: an empty input is an error; only inside an aggregate)';
			CREATE AGGREGATE crm.%1$s_fit(%3$s) (
				SFUNC = crm.%2$s, STYPE = bytea, SSPACE = 8192, FINALFUNC = crm.%1$s_final,
				COMBINEFUNC = crm.clv_rows_combine, PARALLEL = SAFE);
			COMMENT ON AGGREGATE crm.%1$s_fit(%3$s) IS %4$L;
			CREATE AGGREGATE crm.%1$s_fit(%3$s, weight float8) (
				SFUNC = crm.%2$s, STYPE = bytea, SSPACE = 8192, FINALFUNC = crm.%1$s_final,
				COMBINEFUNC = crm.clv_rows_combine, PARALLEL = SAFE);
			COMMENT ON AGGREGATE crm.%1$s_fit(%3$s, weight float8) IS %5$L;
			$sql$, m.name, m.trans, m.args, m.about, m.weighted_about);
	END LOOP;
END
$fits$;

-- Predictions of the three continuous-time models (BG/NBD, MBG/NBD,
-- Pareto/NBD): the same functions and comments for each, and their
-- discounted CLV with a Gamma-Gamma spend model.  MBG/NBD shares BG/NBD's C
-- functions (c below).
DO $predictions$
DECLARE
	m record;
BEGIN
	FOR m IN SELECT * FROM (VALUES
		('bgnbd', 'bgnbd', 'BG/NBD'),
		('mbgnbd', 'bgnbd', 'MBG/NBD'),
		('paretonbd', 'paretonbd', 'Pareto/NBD')
	) AS v(name, c, label)
	LOOP
		-- %1$s model, %2$s prefix of its C symbols, %3$s its label (in comments)
		EXECUTE pg_catalog.format($sql$
			CREATE FUNCTION crm.expected_purchases(model crm.%1$I, t float8, frequency float8, recency float8, "T" float8)
			RETURNS float8 AS 'MODULE_PATHNAME', 'crm_%2$s_expected_conditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			COMMENT ON FUNCTION crm.expected_purchases(crm.%1$I, float8, float8, float8, float8) IS
				'%3$s: expected purchases in the next t units of a customer with (frequency, recency, T)';
			CREATE FUNCTION crm.expected_purchases(model crm.%1$I, t float8)
			RETURNS float8 AS 'MODULE_PATHNAME', 'crm_%2$s_expected_unconditional' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			COMMENT ON FUNCTION crm.expected_purchases(crm.%1$I, float8) IS
				'%3$s: expected repeat purchases in the first t units of a new customer';
			CREATE FUNCTION crm.p_alive(model crm.%1$I, frequency float8, recency float8, "T" float8)
			RETURNS float8 AS 'MODULE_PATHNAME', 'crm_%2$s_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			COMMENT ON FUNCTION crm.p_alive(crm.%1$I, float8, float8, float8) IS
				'%3$s: probability that a customer with (frequency, recency, T) is still active';
			CREATE FUNCTION crm.prob_purchases(model crm.%1$I, n float8, t float8)
			RETURNS float8 AS 'MODULE_PATHNAME', 'crm_%2$s_prob_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			COMMENT ON FUNCTION crm.prob_purchases(crm.%1$I, float8, float8) IS
				'%3$s: probability of exactly n repeat purchases in the first t units of a new customer';
			CREATE FUNCTION crm.log_likelihood(model crm.%1$I, frequency float8, recency float8, "T" float8)
			RETURNS float8 AS 'MODULE_PATHNAME', 'crm_%2$s_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			COMMENT ON FUNCTION crm.log_likelihood(crm.%1$I, float8, float8, float8) IS
				'%3$s: log-likelihood of one customer';
			CREATE FUNCTION crm.clv(transaction_model crm.%1$I, spend_model crm.gammagamma, frequency float8, recency float8,
				"T" float8, monetary_value float8, horizon float8, discount_rate float8, unit float8)
			RETURNS float8 AS 'MODULE_PATHNAME', 'crm_clv_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
			COMMENT ON FUNCTION crm.clv(crm.%1$I, crm.gammagamma, float8, float8, float8, float8, float8, float8, float8) IS
				'discounted CLV over horizon periods of unit model-time each, discount_rate per period (%3$s x Gamma-Gamma)';
			$sql$, m.name, m.c, m.label);
	END LOOP;
END
$predictions$;

-- Gamma-Gamma spend
CREATE FUNCTION crm.expected_spend(model crm.gammagamma, frequency float8, monetary_value float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_gammagamma_expected_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.expected_spend(crm.gammagamma, float8, float8) IS 'Gamma-Gamma: conditional expected mean spend per transaction (population mean when frequency is 0); needs q > 1';
CREATE FUNCTION crm.log_likelihood(model crm.gammagamma, frequency float8, monetary_value float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_gammagamma_loglik' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_likelihood(crm.gammagamma, float8, float8) IS 'Gamma-Gamma: log-likelihood of one customer with repeat purchases';

-- BG/BB
CREATE FUNCTION crm.prob_purchases(model crm.bgbb, x float8, n float8)
RETURNS float8 AS 'MODULE_PATHNAME', 'crm_bgbb_prob_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.prob_purchases(crm.bgbb, float8, float8) IS 'BG/BB: probability of exactly x transactions in the first n opportunities of a new customer';
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
