/*
 * predict_nbayes.c
 *		Naive Bayes over field values, as an aggregate: crm.nb_fit(outcome,
 *		features jsonb [, alpha]) counts, per feature and value, the rows of
 *		each outcome (sums in the state: no shared frequency table updated
 *		per event, so no lock), and the model it returns (crm.nbayes) gives
 *		the log-odds as the prior's plus each feature's, with Laplace
 *		smoothing: P(v | class) = (n(class, v) + alpha) / (n(class) + alpha k),
 *		k the feature's number of values, n(class) its rows of the class.
 *
 * Every value is a category: a string as it is, a number or a boolean as
 * its text; JSON null is missing.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "predict.h"

typedef struct NbState
{
	MemoryContext cxt;
	fv_hash   *values;
	double		pos;
	double		neg;
	double		alpha;
	bool		alpha_set;
} NbState;

static NbState *
nb_new(MemoryContext cxt)
{
	NbState    *s = MemoryContextAllocZero(cxt, sizeof(NbState));

	s->cxt = cxt;
	s->values = fv_create(cxt, 64, NULL);
	s->alpha = 1;
	return s;
}

static void
nb_add(NbState *s, FvKey k, double pos, double neg)
{
	bool		found;
	FvEntry    *e = fv_insert(s->values, k, &found);

	if (!found)
	{
		e->key.bytes = MemoryContextAlloc(s->cxt, k.len);
		memcpy(e->key.bytes, k.bytes, k.len);
		e->key.len = k.len;
		e->pos = 0;
		e->neg = 0;
	}
	e->pos += pos;
	e->neg += neg;
}

static void
nb_set_alpha(NbState *s, double alpha)
{
	if (isnan(alpha) || isinf(alpha) || alpha <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be a finite number above 0, not %g", alpha),
				 errhint("1 is Laplace smoothing; smaller values trust the counts more.")));
	if (s->alpha_set && s->alpha != alpha)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be the same on every row of a fit")));
	s->alpha = alpha;
	s->alpha_set = true;
}

PG_FUNCTION_INFO_V1(crm_nb_trans);
Datum
crm_nb_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	NbState    *s;
	Jsonb	   *doc;
	bool		y;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *name = NULL;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_nb_trans called in non-aggregate context");
	s = PG_ARGISNULL(0) ? nb_new(aggcxt) : (NbState *) PG_GETARG_POINTER(0);
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
		nb_set_alpha(s, PG_GETARG_FLOAT8(3));
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	y = PG_GETARG_BOOL(1);
	doc = PG_GETARG_JSONB_P(2);
	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a JSON object of feature names and values")));
	it = JsonbIteratorInit(&doc->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			char	   *value = predict_category(name, &v);

			if (value != NULL)
			{
				FvKey		k = predict_fv_key(name, value);

				nb_add(s, k, y ? 1 : 0, y ? 0 : 1);
				pfree(k.bytes);
				pfree(value);
			}
			pfree(name);
		}
	}
	if (y)
		s->pos += 1;
	else
		s->neg += 1;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(crm_nb_combine);
Datum
crm_nb_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	NbState    *a,
			   *b;
	fv_iterator it;
	FvEntry    *e;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_nb_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (NbState *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? nb_new(aggcxt) : (NbState *) PG_GETARG_POINTER(0);
	if (b->alpha_set)
		nb_set_alpha(a, b->alpha);
	fv_start_iterate(b->values, &it);
	while ((e = fv_iterate(b->values, &it)) != NULL)
		nb_add(a, e->key, e->pos, e->neg);
	a->pos += b->pos;
	a->neg += b->neg;
	PG_RETURN_POINTER(a);
}

/* float8 pos, neg, alpha, int8 alpha_set, int64 entries, each: pos, neg, int32 len, bytes */
PG_FUNCTION_INFO_V1(crm_nb_serialize);
Datum
crm_nb_serialize(PG_FUNCTION_ARGS)
{
	NbState    *s = (NbState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	fv_iterator it;
	FvEntry    *e;

	pq_begintypsend(&buf);
	pq_sendfloat8(&buf, s->pos);
	pq_sendfloat8(&buf, s->neg);
	pq_sendfloat8(&buf, s->alpha);
	pq_sendbyte(&buf, s->alpha_set ? 1 : 0);
	pq_sendint64(&buf, s->values->members);
	fv_start_iterate(s->values, &it);
	while ((e = fv_iterate(s->values, &it)) != NULL)
	{
		pq_sendfloat8(&buf, e->pos);
		pq_sendfloat8(&buf, e->neg);
		pq_sendint32(&buf, e->key.len);
		pq_sendbytes(&buf, e->key.bytes, e->key.len);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(crm_nb_deserialize);
Datum
crm_nb_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *flat = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	StringInfoData buf;
	NbState    *s;
	int64		n;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_nb_deserialize called in non-aggregate context");
	s = nb_new(aggcxt);
	predict_reader(&buf, flat);
	s->pos = pq_getmsgfloat8(&buf);
	s->neg = pq_getmsgfloat8(&buf);
	s->alpha = pq_getmsgfloat8(&buf);
	s->alpha_set = pq_getmsgbyte(&buf) != 0;
	n = pq_getmsgint64(&buf);
	for (int64 i = 0; i < n; i++)
	{
		double		pos = pq_getmsgfloat8(&buf);
		double		neg = pq_getmsgfloat8(&buf);
		FvKey		k;

		k.len = pq_getmsgint(&buf, 4);
		k.bytes = (char *) pq_getmsgbytes(&buf, k.len);
		nb_add(s, k, pos, neg);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

static int
cmp_nb(const void *a, const void *b)
{
	const FvKey *x = &(*(FvEntry *const *) a)->key;
	const FvKey *y = &(*(FvEntry *const *) b)->key;
	int			c = strcmp(x->bytes, y->bytes);	/* the feature */

	if (c != 0)
		return c;
	c = memcmp(x->bytes, y->bytes, Min(x->len, y->len));
	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* crm.nbayes: feature[], value[], positives[], negatives[] (sorted), positives, negatives, alpha */
PG_FUNCTION_INFO_V1(crm_nb_final);
Datum
crm_nb_final(PG_FUNCTION_ARGS)
{
	NbState    *s;
	FvEntry   **es;
	FvEntry    *e;
	fv_iterator it;
	int			n = 0;
	TupleDesc	desc;
	char	  **feature,
			  **value;
	double	   *pos,
			   *neg;
	Datum		values[7];
	bool		nulls[7] = {0};

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (NbState *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "crm.nb_fit must return crm.nbayes");
	if (s->pos == 0 || s->neg == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the outcome is %s in every row (%.0f rows): there is nothing to tell apart",
						s->pos > 0 ? "true" : "false", s->pos + s->neg),
				 errhint("A fit needs rows of both outcomes.")));
	es = palloc(sizeof(FvEntry *) * Max(s->values->members, 1));
	fv_start_iterate(s->values, &it);
	while ((e = fv_iterate(s->values, &it)) != NULL)
		es[n++] = e;
	qsort(es, n, sizeof(FvEntry *), cmp_nb);
	feature = palloc(sizeof(char *) * Max(n, 1));
	value = palloc(sizeof(char *) * Max(n, 1));
	pos = palloc(sizeof(double) * Max(n, 1));
	neg = palloc(sizeof(double) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			fl = strlen(es[i]->key.bytes);

		feature[i] = es[i]->key.bytes;
		value[i] = pnstrdup(es[i]->key.bytes + fl + 1, es[i]->key.len - fl - 1);
		pos[i] = es[i]->pos;
		neg[i] = es[i]->neg;
	}
	values[0] = predict_text_array(feature, NULL, n);
	values[1] = predict_text_array(value, NULL, n);
	values[2] = predict_float8_array(pos, n);
	values[3] = predict_float8_array(neg, n);
	values[4] = Float8GetDatum(s->pos);
	values[5] = Float8GetDatum(s->neg);
	values[6] = Float8GetDatum(s->alpha);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* ---- applying the model -------------------------------------------------- */

typedef struct NbModel
{
	int			n;
	char	  **feature;
	char	  **value;
	double	   *pos;
	double	   *neg;
	double		class_pos;
	double		class_neg;
	double		alpha;
} NbModel;

static NbModel
read_nb(HeapTupleHeader t)
{
	NbModel		m;
	bool		isnull;
	Datum	   *d[4];
	bool	   *dn[4];
	int			n[4];
	Oid			types[4] = {TEXTOID, TEXTOID, FLOAT8OID, FLOAT8OID};

	for (int a = 0; a < 4; a++)
	{
		Datum		x = GetAttributeByNum(t, a + 1, &isnull);

		if (isnull)
			goto bad;
		if (types[a] == TEXTOID)
			deconstruct_array(DatumGetArrayTypeP(x), TEXTOID, -1, false, TYPALIGN_INT, &d[a], &dn[a], &n[a]);
		else
			deconstruct_array(DatumGetArrayTypeP(x), FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d[a], &dn[a], &n[a]);
		if (n[a] != n[0])
			goto bad;
	}
	m.n = n[0];
	m.feature = palloc(sizeof(char *) * Max(m.n, 1));
	m.value = palloc(sizeof(char *) * Max(m.n, 1));
	m.pos = palloc(sizeof(double) * Max(m.n, 1));
	m.neg = palloc(sizeof(double) * Max(m.n, 1));
	for (int i = 0; i < m.n; i++)
	{
		if (dn[0][i] || dn[1][i] || dn[2][i] || dn[3][i])
			goto bad;
		m.feature[i] = TextDatumGetCString(d[0][i]);
		m.value[i] = TextDatumGetCString(d[1][i]);
		m.pos[i] = DatumGetFloat8(d[2][i]);
		m.neg[i] = DatumGetFloat8(d[3][i]);
	}
	m.class_pos = DatumGetFloat8(GetAttributeByNum(t, 5, &isnull));
	if (isnull)
		goto bad;
	m.class_neg = DatumGetFloat8(GetAttributeByNum(t, 6, &isnull));
	if (isnull)
		goto bad;
	m.alpha = DatumGetFloat8(GetAttributeByNum(t, 7, &isnull));
	if (isnull || !(m.alpha > 0) || !(m.class_pos > 0) || !(m.class_neg > 0))
		goto bad;
	return m;
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("not a fitted crm.nbayes model"),
			 errhint("Use the value crm.nb_fit returns.")));
	pg_unreachable();
}

/*
 * A feature's contribution to the log-odds for a value: the smoothed
 * likelihood ratio, with the feature's rows of each class and its number
 * of values; a feature the model never saw contributes nothing (false)
 */
static bool
nb_term(const NbModel *m, const char *feature, const char *value, double *out)
{
	double		fpos = 0,
				fneg = 0,
				vpos = 0,
				vneg = 0;
	int			k = 0;

	for (int i = 0; i < m->n; i++)
	{
		if (strcmp(m->feature[i], feature) != 0)
			continue;
		k++;
		fpos += m->pos[i];
		fneg += m->neg[i];
		if (strcmp(m->value[i], value) == 0)
		{
			vpos = m->pos[i];
			vneg = m->neg[i];
		}
	}
	if (k == 0)
		return false;
	*out = log((vpos + m->alpha) / (fpos + m->alpha * k)) - log((vneg + m->alpha) / (fneg + m->alpha * k));
	return true;
}

typedef struct NbTerm
{
	char	   *feature;
	char	   *value;
	double		contribution;
} NbTerm;

static NbTerm *
nb_terms(const NbModel *m, Jsonb *doc, int *nterms)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	NbTerm	   *terms;
	char	   *name = NULL;
	int			n = 0;

	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a JSON object of feature names and values")));
	terms = palloc(sizeof(NbTerm) * Max(JsonContainerSize(&doc->root), 1));
	it = JsonbIteratorInit(&doc->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			char	   *value = predict_category(name, &v);

			if (value != NULL && nb_term(m, name, value, &terms[n].contribution))
			{
				terms[n].feature = name;
				terms[n].value = value;
				n++;
			}
		}
	}
	*nterms = n;
	return terms;
}

static double
nb_log_odds(const NbModel *m, const NbTerm *terms, int n)
{
	double		eta = log(m->class_pos / m->class_neg);

	for (int i = 0; i < n; i++)
		eta += terms[i].contribution;
	return eta;
}

PG_FUNCTION_INFO_V1(crm_nb_predict);
Datum
crm_nb_predict(PG_FUNCTION_ARGS)
{
	NbModel		m = read_nb(PG_GETARG_HEAPTUPLEHEADER(0));
	int			n;
	NbTerm	   *terms = nb_terms(&m, PG_GETARG_JSONB_P(1), &n);

	PG_RETURN_FLOAT8(1 / (1 + exp(-nb_log_odds(&m, terms, n))));
}

PG_FUNCTION_INFO_V1(crm_nb_log_odds);
Datum
crm_nb_log_odds(PG_FUNCTION_ARGS)
{
	NbModel		m = read_nb(PG_GETARG_HEAPTUPLEHEADER(0));
	int			n;
	NbTerm	   *terms = nb_terms(&m, PG_GETARG_JSONB_P(1), &n);

	PG_RETURN_FLOAT8(nb_log_odds(&m, terms, n));
}

PG_FUNCTION_INFO_V1(crm_nb_explain);
Datum
crm_nb_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	NbModel		m = read_nb(PG_GETARG_HEAPTUPLEHEADER(0));
	int			n;
	NbTerm	   *terms = nb_terms(&m, PG_GETARG_JSONB_P(1), &n);

	InitMaterializedSRF(fcinfo, 0);
	predict_emit_reason(rsinfo, "(prior)", NULL, log(m.class_pos / m.class_neg));
	for (int i = 0; i < n; i++)
		predict_emit_reason(rsinfo, terms[i].feature, terms[i].value, terms[i].contribution);
	return (Datum) 0;
}
