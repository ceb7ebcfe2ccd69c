-- ---------------------------------------------------------------------------
-- Predictive models (src/predict_*.c): logistic regression as an aggregate,
-- its model type, predictions with reasons that add up, and the measures of
-- a score (AUC, log loss, Brier score).  Pure functions of their arguments:
-- PUBLIC may call them.
-- ---------------------------------------------------------------------------
CREATE TYPE crm.logit AS (
	feature		text[],
	level		text[],
	coefficient double precision[],
	std_error	double precision[],
	dropped		text[],
	log_likelihood double precision,
	n			double precision,
	positives	double precision,
	vectors		bigint,
	iterations	integer,
	converged	boolean,
	l2			double precision
);
COMMENT ON TYPE crm.logit IS
	'a fitted logistic regression (crm.logit_fit): per column its feature, level (NULL: numeric), coefficient and standard error, the intercept first; the aliased columns dropped; log-likelihood, weight of all and of the positive rows, distinct feature vectors, iterations, converged, the L2 penalty';

CREATE FUNCTION crm.logit_trans(internal, boolean, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.logit_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_logit_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.logit_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_logit_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.logit_final(internal)
RETURNS crm.logit AS 'MODULE_PATHNAME', 'crm_logit_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.logit_trans(internal, boolean, jsonb) IS 'crm.logit_fit''s transition: adds the row''s outcome to its feature vector''s counts';
COMMENT ON FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision) IS 'crm.logit_fit''s transition, with a weight';
COMMENT ON FUNCTION crm.logit_trans(internal, boolean, jsonb, double precision, double precision) IS 'crm.logit_fit''s transition, with a weight and the L2 penalty';
COMMENT ON FUNCTION crm.logit_combine(internal, internal) IS 'crm.logit_fit''s combine: adds two partial states (parallel workers, Citus workers)';
COMMENT ON FUNCTION crm.logit_serialize(internal) IS 'crm.logit_fit''s state as bytes';
COMMENT ON FUNCTION crm.logit_deserialize(bytea, internal) IS 'crm.logit_fit''s state from bytes';
COMMENT ON FUNCTION crm.logit_final(internal) IS 'crm.logit_fit''s final: encodes the distinct vectors, drops aliased columns, fits by Newton''s method';

CREATE AGGREGATE crm.logit_fit(outcome boolean, features jsonb) (
	SFUNC = crm.logit_trans, STYPE = internal, FINALFUNC = crm.logit_final,
	COMBINEFUNC = crm.logit_combine, SERIALFUNC = crm.logit_serialize,
	DESERIALFUNC = crm.logit_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE crm.logit_fit(outcome boolean, features jsonb, weight double precision) (
	SFUNC = crm.logit_trans, STYPE = internal, FINALFUNC = crm.logit_final,
	COMBINEFUNC = crm.logit_combine, SERIALFUNC = crm.logit_serialize,
	DESERIALFUNC = crm.logit_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE crm.logit_fit(outcome boolean, features jsonb, weight double precision, l2 double precision) (
	SFUNC = crm.logit_trans, STYPE = internal, FINALFUNC = crm.logit_final,
	COMBINEFUNC = crm.logit_combine, SERIALFUNC = crm.logit_serialize,
	DESERIALFUNC = crm.logit_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.logit_fit(boolean, jsonb) IS
	'logistic regression of outcome on the features (numbers and booleans as given, strings one-hot with the first level as baseline, null missing), by Newton''s method over the distinct feature vectors; aliased columns dropped; 22023 when the outcome has one value';
COMMENT ON AGGREGATE crm.logit_fit(boolean, jsonb, double precision) IS
	'crm.logit_fit with a weight per row (0 or more)';
COMMENT ON AGGREGATE crm.logit_fit(boolean, jsonb, double precision, double precision) IS
	'crm.logit_fit with a weight per row and an L2 penalty on the coefficients but the intercept (the same on every row)';

CREATE FUNCTION crm.predict(model crm.logit, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_logit_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict(crm.logit, jsonb) IS
	'the model''s probability for the features: an unseen string level adds nothing, an unknown numeric feature is refused (22023)';
CREATE FUNCTION crm.predict_log_odds(model crm.logit, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_logit_log_odds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict_log_odds(crm.logit, jsonb) IS
	'the model''s log-odds for the features: the sum of crm.explain_prediction''s contributions';
CREATE FUNCTION crm.explain_prediction(model crm.logit, features jsonb)
RETURNS TABLE (feature text, value text, contribution double precision)
	AS 'MODULE_PATHNAME', 'crm_logit_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION crm.explain_prediction(crm.logit, jsonb) IS
	'the intercept and each feature''s contribution to the log-odds (coefficient x value); in this order they add up to crm.predict_log_odds';

CREATE FUNCTION crm.auc_trans(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_auc_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.auc_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_auc_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.auc_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_auc_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.auc_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_auc_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.auc_final(internal)
RETURNS double precision AS 'MODULE_PATHNAME', 'crm_auc_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.auc_trans(internal, double precision, boolean) IS 'crm.auc''s transition: keeps the (score, label) pair';
COMMENT ON FUNCTION crm.auc_combine(internal, internal) IS 'crm.auc''s combine';
COMMENT ON FUNCTION crm.auc_serialize(internal) IS 'crm.auc''s state as bytes';
COMMENT ON FUNCTION crm.auc_deserialize(bytea, internal) IS 'crm.auc''s state from bytes';
COMMENT ON FUNCTION crm.auc_final(internal) IS 'crm.auc''s final: sorts the scores, ranks ties at their average';
CREATE AGGREGATE crm.auc(score double precision, label boolean) (
	SFUNC = crm.auc_trans, STYPE = internal, FINALFUNC = crm.auc_final,
	COMBINEFUNC = crm.auc_combine, SERIALFUNC = crm.auc_serialize,
	DESERIALFUNC = crm.auc_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.auc(double precision, boolean) IS
	'area under the ROC curve of score for label: the Mann-Whitney statistic with average ranks for ties; NULL when one class is missing';

CREATE FUNCTION crm.log_loss_trans(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_log_loss_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.brier_trans(internal, double precision, boolean)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_brier_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.mean_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_mean_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.mean_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_mean_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mean_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_mean_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.mean_final(internal)
RETURNS double precision AS 'MODULE_PATHNAME', 'crm_mean_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.log_loss_trans(internal, double precision, boolean) IS 'crm.log_loss''s transition';
COMMENT ON FUNCTION crm.brier_trans(internal, double precision, boolean) IS 'crm.brier''s transition';
COMMENT ON FUNCTION crm.mean_combine(internal, internal) IS 'crm.log_loss''s and crm.brier''s combine';
COMMENT ON FUNCTION crm.mean_serialize(internal) IS 'crm.log_loss''s and crm.brier''s state as bytes';
COMMENT ON FUNCTION crm.mean_deserialize(bytea, internal) IS 'crm.log_loss''s and crm.brier''s state from bytes';
COMMENT ON FUNCTION crm.mean_final(internal) IS 'crm.log_loss''s and crm.brier''s final: the mean';
CREATE AGGREGATE crm.log_loss(p double precision, label boolean) (
	SFUNC = crm.log_loss_trans, STYPE = internal, FINALFUNC = crm.mean_final,
	COMBINEFUNC = crm.mean_combine, SERIALFUNC = crm.mean_serialize,
	DESERIALFUNC = crm.mean_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.log_loss(double precision, boolean) IS
	'mean negative log-likelihood of the probabilities p for label, p clipped to [1e-15, 1 - 1e-15]';
CREATE AGGREGATE crm.brier(p double precision, label boolean) (
	SFUNC = crm.brier_trans, STYPE = internal, FINALFUNC = crm.mean_final,
	COMBINEFUNC = crm.mean_combine, SERIALFUNC = crm.mean_serialize,
	DESERIALFUNC = crm.mean_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.brier(double precision, boolean) IS
	'mean squared difference of the probabilities p from label (1 or 0)';

-- Naive Bayes over field values (src/predict_nbayes.c)
CREATE TYPE crm.nbayes AS (
	feature		text[],
	value		text[],
	positives	double precision[],
	negatives	double precision[],
	class_positives double precision,
	class_negatives double precision,
	alpha		double precision
);
COMMENT ON TYPE crm.nbayes IS
	'a naive Bayes model (crm.nb_fit): per feature and value the positive and negative rows with it (sorted by feature and value), the rows of each class, the smoothing alpha';
CREATE FUNCTION crm.nb_trans(internal, boolean, jsonb)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.nb_trans(internal, boolean, jsonb, double precision)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.nb_combine(internal, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION crm.nb_serialize(internal)
RETURNS bytea AS 'MODULE_PATHNAME', 'crm_nb_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.nb_deserialize(bytea, internal)
RETURNS internal AS 'MODULE_PATHNAME', 'crm_nb_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION crm.nb_final(internal)
RETURNS crm.nbayes AS 'MODULE_PATHNAME', 'crm_nb_final' LANGUAGE C PARALLEL SAFE;
COMMENT ON FUNCTION crm.nb_trans(internal, boolean, jsonb) IS 'crm.nb_fit''s transition: counts the row''s values in its class';
COMMENT ON FUNCTION crm.nb_trans(internal, boolean, jsonb, double precision) IS 'crm.nb_fit''s transition, with alpha';
COMMENT ON FUNCTION crm.nb_combine(internal, internal) IS 'crm.nb_fit''s combine: adds the counts';
COMMENT ON FUNCTION crm.nb_serialize(internal) IS 'crm.nb_fit''s state as bytes';
COMMENT ON FUNCTION crm.nb_deserialize(bytea, internal) IS 'crm.nb_fit''s state from bytes';
COMMENT ON FUNCTION crm.nb_final(internal) IS 'crm.nb_fit''s final: the counts, sorted, as a crm.nbayes';
CREATE AGGREGATE crm.nb_fit(outcome boolean, features jsonb) (
	SFUNC = crm.nb_trans, STYPE = internal, FINALFUNC = crm.nb_final,
	COMBINEFUNC = crm.nb_combine, SERIALFUNC = crm.nb_serialize,
	DESERIALFUNC = crm.nb_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE crm.nb_fit(outcome boolean, features jsonb, alpha double precision) (
	SFUNC = crm.nb_trans, STYPE = internal, FINALFUNC = crm.nb_final,
	COMBINEFUNC = crm.nb_combine, SERIALFUNC = crm.nb_serialize,
	DESERIALFUNC = crm.nb_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE crm.nb_fit(boolean, jsonb) IS
	'naive Bayes over field values (every value a category, null missing) with Laplace smoothing alpha = 1 and the prior of the class frequencies';
COMMENT ON AGGREGATE crm.nb_fit(boolean, jsonb, double precision) IS
	'crm.nb_fit with the smoothing alpha (above 0; the same on every row)';
CREATE FUNCTION crm.predict(model crm.nbayes, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_nb_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict(crm.nbayes, jsonb) IS
	'the naive Bayes probability for the features; a feature the model never saw adds nothing, an unseen value of a known one its smoothed likelihood';
CREATE FUNCTION crm.predict_log_odds(model crm.nbayes, features jsonb) RETURNS double precision
	AS 'MODULE_PATHNAME', 'crm_nb_log_odds' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.predict_log_odds(crm.nbayes, jsonb) IS
	'the naive Bayes log-odds: the sum of crm.explain_prediction''s contributions';
CREATE FUNCTION crm.explain_prediction(model crm.nbayes, features jsonb)
RETURNS TABLE (feature text, value text, contribution double precision)
	AS 'MODULE_PATHNAME', 'crm_nb_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION crm.explain_prediction(crm.nbayes, jsonb) IS
	'the prior''s log-odds and each feature''s log likelihood ratio; in this order they add up to crm.predict_log_odds';
