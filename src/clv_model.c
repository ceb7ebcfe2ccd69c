/*
 * clv_model.c
 *		The CLV model types (crm.bgnbd, crm.paretonbd, crm.mbgnbd,
 *		crm.gammagamma, crm.bgbb): text and binary I/O and accessors.
 *
 * All five share one fixed-length layout (ClvModel in clv.h) and one set of
 * static helpers; each SQL type has thin wrappers that pass its kind.  The
 * text form is  name(p1=v1,...,ll=v,n=v[,se_p1=v...][,converged=false]);
 * parameters, ll and n print exactly (shortest round-trip form), so a model
 * survives dump and restore unchanged.  On input ll, n, the standard errors
 * and converged are optional, so a model can be written by hand.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "clv.h"

static const ClvKindInfo kinds[] = {
	{NULL, 0, {NULL}},
	{"bgnbd", 4, {"r", "alpha", "a", "b"}},
	{"paretonbd", 4, {"r", "alpha", "s", "beta"}},
	{"mbgnbd", 4, {"r", "alpha", "a", "b"}},
	{"gammagamma", 3, {"p", "q", "gamma"}},
	{"bgbb", 4, {"alpha", "beta", "gamma", "delta"}},
};

/* Name and parameter names of a model kind */
const ClvKindInfo *
clv_kind_info(int kind)
{
	if (kind < CLV_BGNBD || kind > CLV_BGBB)
		elog(ERROR, "unknown CLV model kind %d", kind);
	return &kinds[kind];
}

/* Fetch a model argument and check it is of the expected kind */
ClvModel *
clv_model_arg(FunctionCallInfo fcinfo, int argno, int kind)
{
	ClvModel   *m = (ClvModel *) PG_GETARG_POINTER(argno);

	if (m->kind != kind || m->version != CLV_MODEL_VERSION)
		elog(ERROR, "model value of kind %d version %d where kind %d was expected",
			 m->kind, m->version, kind);
	return m;
}

#define MODEL_SYNTAX_ERROR(kind, input, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), \
			 errmsg("invalid input syntax for type %s: \"%s\"", kinds[kind].name, input), \
			 errdetail(__VA_ARGS__), \
			 errhint("Write the model as %s(%s=...,...), every parameter positive.", \
					 kinds[kind].name, kinds[kind].params[0])))

/* Parse the text form of a model of the given kind */
static ClvModel *
model_parse(const char *input, int kind)
{
	const ClvKindInfo *ki = &kinds[kind];
	ClvModel   *m = palloc0(sizeof(ClvModel));
	bool		seen[CLV_MAX_PARAMS] = {false};
	const char *p = input;
	int			namelen = strlen(ki->name);
	int			i;

	m->version = CLV_MODEL_VERSION;
	m->kind = kind;
	m->flags = CLV_FLAG_CONVERGED;
	m->nparams = ki->nparams;
	m->ll = NAN;
	m->n = 0;
	for (i = 0; i < CLV_MAX_PARAMS; i++)
		m->se[i] = NAN;

	while (isspace((unsigned char) *p))
		p++;
	if (pg_strncasecmp(p, ki->name, namelen) != 0)
		MODEL_SYNTAX_ERROR(kind, input, "The value must start with \"%s(\".", ki->name);
	p += namelen;
	while (isspace((unsigned char) *p))
		p++;
	if (*p++ != '(')
		MODEL_SYNTAX_ERROR(kind, input, "The value must start with \"%s(\".", ki->name);
	for (;;)
	{
		char		key[32];
		int			klen = 0;
		char	   *end;
		double		v;

		while (isspace((unsigned char) *p))
			p++;
		if (*p == ')' && klen == 0)
			break;
		while (isalpha((unsigned char) *p) || *p == '_')
		{
			if (klen < (int) sizeof(key) - 1)
				key[klen++] = *p;
			p++;
		}
		key[klen] = '\0';
		while (isspace((unsigned char) *p))
			p++;
		if (klen == 0 || *p != '=')
			MODEL_SYNTAX_ERROR(kind, input, "Expected name=value at \"%s\".", p);
		p++;
		while (isspace((unsigned char) *p))
			p++;
		if (strcmp(key, "converged") == 0)
		{
			if (pg_strncasecmp(p, "true", 4) == 0)
			{
				m->flags |= CLV_FLAG_CONVERGED;
				p += 4;
			}
			else if (pg_strncasecmp(p, "false", 5) == 0)
			{
				m->flags &= ~CLV_FLAG_CONVERGED;
				p += 5;
			}
			else
				MODEL_SYNTAX_ERROR(kind, input, "converged must be true or false.");
		}
		else
		{
			/*
			 * strtod, not float8in_internal: on PostgreSQL 15 the latter
			 * throws its own errors (double precision syntax, out of range)
			 * and accepts subnormal values, where a model literal has
			 * always been rejected with the model's syntax error on any
			 * ERANGE; keeping the input exactly as it was needs strtod.
			 */
			errno = 0;
			v = strtod(p, &end);
			if (end == p || errno != 0)
				MODEL_SYNTAX_ERROR(kind, input, "Invalid number for %s.", key);
			p = end;
			if (strcmp(key, "ll") == 0)
			{
				if (isinf(v))
					MODEL_SYNTAX_ERROR(kind, input, "ll must be a finite log-likelihood.");
				m->ll = v;
			}
			else if (strcmp(key, "n") == 0)
			{
				if (!(isfinite(v) && v >= 0))
					MODEL_SYNTAX_ERROR(kind, input, "n must be a non-negative number.");
				m->n = v;
			}
			else
			{
				bool		found = false;

				for (i = 0; i < ki->nparams; i++)
				{
					if (strcmp(key, ki->params[i]) == 0)
					{
						if (seen[i])
							MODEL_SYNTAX_ERROR(kind, input, "Parameter %s is given twice.", key);
						if (!(isfinite(v) && v > 0))
							MODEL_SYNTAX_ERROR(kind, input, "Parameter %s must be positive and finite.", key);
						m->p[i] = v;
						seen[i] = found = true;
						break;
					}
					if (strncmp(key, "se_", 3) == 0 && strcmp(key + 3, ki->params[i]) == 0)
					{
						if (!(v >= 0) && !isnan(v))
							MODEL_SYNTAX_ERROR(kind, input, "Standard error %s must not be negative.", key);
						m->se[i] = v;
						found = true;
						break;
					}
				}
				if (!found)
					MODEL_SYNTAX_ERROR(kind, input, "Unknown field \"%s\".", key);
			}
		}
		while (isspace((unsigned char) *p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ')')
			break;
		MODEL_SYNTAX_ERROR(kind, input, "Expected \",\" or \")\" at \"%s\".", p);
	}
	p++;
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		MODEL_SYNTAX_ERROR(kind, input, "Unexpected text after \")\".");
	for (i = 0; i < ki->nparams; i++)
		if (!seen[i])
			MODEL_SYNTAX_ERROR(kind, input, "Parameter %s is missing.", ki->params[i]);
	return m;
}

/* The text form of a model */
static char *
model_format(const ClvModel *m)
{
	const ClvKindInfo *ki = clv_kind_info(m->kind);
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s(", ki->name);
	for (i = 0; i < m->nparams; i++)
		appendStringInfo(&buf, "%s=%s,", ki->params[i], float8out_internal(m->p[i]));
	appendStringInfo(&buf, "ll=%s,n=%s", float8out_internal(m->ll), float8out_internal(m->n));
	for (i = 0; i < m->nparams; i++)
		if (!isnan(m->se[i]))
			appendStringInfo(&buf, ",se_%s=%.4g", ki->params[i], m->se[i]);
	if (!(m->flags & CLV_FLAG_CONVERGED))
		appendStringInfoString(&buf, ",converged=false");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* Read the binary form, validating every field */
static ClvModel *
model_recv(StringInfo buf, int kind)
{
	ClvModel   *m = palloc0(sizeof(ClvModel));
	int			i;

	m->version = pq_getmsgint(buf, 1);
	m->kind = pq_getmsgint(buf, 1);
	m->flags = pq_getmsgint(buf, 2);
	m->nparams = pq_getmsgint(buf, 4);
	if (m->version != CLV_MODEL_VERSION || m->kind != kind ||
		m->nparams != kinds[kind].nparams || (m->flags & ~CLV_FLAG_CONVERGED) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external %s value", kinds[kind].name),
				 errdetail("Version %d, kind %d, %d parameters, flags %d.",
						   m->version, m->kind, m->nparams, m->flags)));
	m->n = pq_getmsgfloat8(buf);
	m->ll = pq_getmsgfloat8(buf);
	for (i = 0; i < CLV_MAX_PARAMS; i++)
		m->p[i] = pq_getmsgfloat8(buf);
	for (i = 0; i < CLV_MAX_PARAMS; i++)
		m->se[i] = pq_getmsgfloat8(buf);
	for (i = 0; i < m->nparams; i++)
		if (!(isfinite(m->p[i]) && m->p[i] > 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid external %s value", kinds[kind].name),
					 errdetail("Parameter %s is %g.", kinds[kind].params[i], m->p[i])));
	if (!(isfinite(m->n) && m->n >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external %s value", kinds[kind].name),
				 errdetail("n is %g.", m->n)));
	return m;
}

/* Write the binary form */
static bytea *
model_send(const ClvModel *m)
{
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint8(&buf, m->version);
	pq_sendint8(&buf, m->kind);
	pq_sendint16(&buf, m->flags);
	pq_sendint32(&buf, m->nparams);
	pq_sendfloat8(&buf, m->n);
	pq_sendfloat8(&buf, m->ll);
	for (i = 0; i < CLV_MAX_PARAMS; i++)
		pq_sendfloat8(&buf, m->p[i]);
	for (i = 0; i < CLV_MAX_PARAMS; i++)
		pq_sendfloat8(&buf, m->se[i]);
	return pq_endtypsend(&buf);
}

#define MODEL_IO(name, KIND) \
PG_FUNCTION_INFO_V1(crm_##name##_in); \
Datum crm_##name##_in(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_POINTER(model_parse(PG_GETARG_CSTRING(0), KIND)); \
} \
PG_FUNCTION_INFO_V1(crm_##name##_out); \
Datum crm_##name##_out(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_CSTRING(model_format(clv_model_arg(fcinfo, 0, KIND))); \
} \
PG_FUNCTION_INFO_V1(crm_##name##_recv); \
Datum crm_##name##_recv(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_POINTER(model_recv((StringInfo) PG_GETARG_POINTER(0), KIND)); \
} \
PG_FUNCTION_INFO_V1(crm_##name##_send); \
Datum crm_##name##_send(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BYTEA_P(model_send(clv_model_arg(fcinfo, 0, KIND))); \
}

/* Text and binary I/O of the five model types */
MODEL_IO(bgnbd, CLV_BGNBD)
MODEL_IO(paretonbd, CLV_PARETONBD)
MODEL_IO(mbgnbd, CLV_MBGNBD)
MODEL_IO(gammagamma, CLV_GAMMAGAMMA)
MODEL_IO(bgbb, CLV_BGBB)

/* Push a key of an object being built */
static void
push_key(JsonbParseState **js, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(js, WJB_KEY, &v);
}

/*
 * Push a number as a value: the numeric that jsonb_in makes of the float8's
 * shortest exact text, so the value reads back as the same float8; null
 * when not finite (JSON has no NaN or infinity)
 */
static void
push_number(JsonbParseState **js, double d)
{
	JsonbValue	v;

	if (isfinite(d))
	{
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
															CStringGetDatum(float8out_internal(d)),
															ObjectIdGetDatum(InvalidOid),
															Int32GetDatum(-1)));
	}
	else
		v.type = jbvNull;
	pushJsonbValue(js, WJB_VALUE, &v);
}

PG_FUNCTION_INFO_V1(crm_clv_model_jsonb);
/* Parameters, standard errors, ll, n and converged of any model, as jsonb */
Datum
crm_clv_model_jsonb(PG_FUNCTION_ARGS)
{
	ClvModel   *m = (ClvModel *) PG_GETARG_POINTER(0);
	const ClvKindInfo *ki = clv_kind_info(m->kind);
	JsonbParseState *js = NULL;
	JsonbValue	v;
	JsonbValue *res;
	int			i;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	push_key(&js, "model");
	v.type = jbvString;
	v.val.string.val = (char *) ki->name;
	v.val.string.len = strlen(ki->name);
	pushJsonbValue(&js, WJB_VALUE, &v);
	for (i = 0; i < m->nparams; i++)
	{
		push_key(&js, ki->params[i]);
		push_number(&js, m->p[i]);
	}
	push_key(&js, "ll");
	push_number(&js, m->ll);
	push_key(&js, "n");
	push_number(&js, m->n);
	push_key(&js, "converged");
	v.type = jbvBool;
	v.val.boolean = (m->flags & CLV_FLAG_CONVERGED) != 0;
	pushJsonbValue(&js, WJB_VALUE, &v);
	push_key(&js, "se");
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < m->nparams; i++)
	{
		push_key(&js, ki->params[i]);
		push_number(&js, m->se[i]);
	}
	pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}

PG_FUNCTION_INFO_V1(crm_clv_model_record);
/* Parameters, then ll, n and converged, as the declared OUT record */
Datum
crm_clv_model_record(PG_FUNCTION_ARGS)
{
	ClvModel   *m = (ClvModel *) PG_GETARG_POINTER(0);
	TupleDesc	tupdesc;
	Datum		values[CLV_MAX_PARAMS + 3];
	bool		nulls[CLV_MAX_PARAMS + 3] = {false};
	int			i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != m->nparams + 3)
		elog(ERROR, "result row has %d columns, expected %d", tupdesc->natts, m->nparams + 3);
	for (i = 0; i < m->nparams; i++)
		values[i] = Float8GetDatum(m->p[i]);
	values[i] = Float8GetDatum(m->ll);
	nulls[i] = isnan(m->ll);
	values[i + 1] = Float8GetDatum(m->n);
	values[i + 2] = BoolGetDatum((m->flags & CLV_FLAG_CONVERGED) != 0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * The model of a finished fit of kind: parameters exp(theta), each times
 * scale[i] when scale is not NULL (times were fitted in scaled units), and
 * log-likelihood -fmin * n - ll_shift (the scaling's Jacobian term).  Warns
 * when the fit did not converge.
 */
ClvModel *
clv_fit_model(int kind, const ClvFitResult *res, const double *theta,
			  const double *scale, double ll_shift, double n)
{
	ClvModel   *m = palloc0(sizeof(ClvModel));
	const ClvKindInfo *ki = clv_kind_info(kind);
	double		ll = -res->fmin * n - ll_shift;
	double		params[CLV_MAX_PARAMS];
	int			i;

	for (i = 0; i < ki->nparams; i++)
	{
		params[i] = exp(theta[i]);
		if (scale)
			params[i] *= scale[i];
	}
	m->kind = kind;
	m->version = CLV_MODEL_VERSION;
	m->nparams = ki->nparams;
	m->ll = ll;
	m->n = n;
	m->flags = res->converged ? CLV_FLAG_CONVERGED : 0;
	for (i = 0; i < m->nparams; i++)
	{
		m->p[i] = params[i];
		/* delta method: se(p) = p * se(log p) */
		m->se[i] = params[i] * res->se[i];
	}
	for (i = m->nparams; i < CLV_MAX_PARAMS; i++)
		m->p[i] = m->se[i] = 0;
	elog(DEBUG1, "%s fit: %d iterations, %d log-likelihood evaluations, ll %.6f, converged %d",
		 ki->name, res->iterations, res->evaluations, ll, (int) res->converged);
	if (!res->converged)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("%s fit did not converge", ki->name),
				 errdetail("After %d iterations the log-likelihood is %g; the estimate is at a boundary, a saddle point or not yet optimal, and the model is marked converged=false.",
						   res->iterations, ll),
				 errhint("Check the input: too few customers, no repeat purchases, or data the model cannot describe.")));
	return m;
}
