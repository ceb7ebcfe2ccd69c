/*
 * predict_apply.c
 *		A logistic model (crm.logit) applied to one contact's features:
 *		crm.predict gives the probability, crm.explain_prediction the
 *		contribution of each feature on the log-odds scale; the
 *		contributions add up, in the order listed, to the log-odds the
 *		probability comes from.
 *
 * A number or boolean meets its feature's coefficient; a string meets the
 * coefficient of its level, and a level the model did not see (or its
 * baseline) adds nothing; a feature the model has no column for adds
 * nothing when it is a string and is refused when it is a number (a
 * numeric effect cannot be guessed); JSON null and absent features add
 * nothing.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "predict.h"

/* The model's columns, unpacked */
typedef struct Model
{
	int			n;
	char	  **feature;
	char	  **level;			/* NULL: numeric */
	double	   *coef;
	int			ndropped;
	char	  **dropped;		/* aliased columns: "feature" or "feature=level" */
} Model;

static Model
read_model(HeapTupleHeader t)
{
	Model		m;
	bool		isnull;
	Datum	   *fd,
			   *ld,
			   *cd;
	bool	   *fn,
			   *ln,
			   *cn;
	int			nf,
				nl,
				nc;
	Datum		f = GetAttributeByNum(t, LOGIT_FEATURE + 1, &isnull);
	Datum		l,
				c;

	if (isnull)
		goto bad;
	l = GetAttributeByNum(t, LOGIT_LEVEL + 1, &isnull);
	if (isnull)
		goto bad;
	c = GetAttributeByNum(t, LOGIT_COEF + 1, &isnull);
	if (isnull)
		goto bad;
	deconstruct_array(DatumGetArrayTypeP(f), TEXTOID, -1, false, TYPALIGN_INT, &fd, &fn, &nf);
	deconstruct_array(DatumGetArrayTypeP(l), TEXTOID, -1, false, TYPALIGN_INT, &ld, &ln, &nl);
	deconstruct_array(DatumGetArrayTypeP(c), FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &cd, &cn, &nc);
	if (nf != nl || nf != nc || nf == 0 || fn[0])
		goto bad;
	m.n = nf;
	m.feature = palloc(sizeof(char *) * nf);
	m.level = palloc(sizeof(char *) * nf);
	m.coef = palloc(sizeof(double) * nf);
	for (int i = 0; i < nf; i++)
	{
		if (fn[i] || cn[i])
			goto bad;
		m.feature[i] = TextDatumGetCString(fd[i]);
		m.level[i] = ln[i] ? NULL : TextDatumGetCString(ld[i]);
		m.coef[i] = DatumGetFloat8(cd[i]);
	}
	m.ndropped = 0;
	m.dropped = NULL;
	f = GetAttributeByNum(t, LOGIT_DROPPED + 1, &isnull);
	if (!isnull)
	{
		deconstruct_array(DatumGetArrayTypeP(f), TEXTOID, -1, false, TYPALIGN_INT, &fd, &fn, &nf);
		m.dropped = palloc(sizeof(char *) * Max(nf, 1));
		for (int i = 0; i < nf; i++)
			if (!fn[i])
				m.dropped[m.ndropped++] = TextDatumGetCString(fd[i]);
	}
	return m;
bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("not a fitted crm.logit model: feature, level and coefficient must be arrays of one length, the intercept first"),
			 errhint("Use the value crm.logit_fit returns.")));
	pg_unreachable();
}

/* One feature's term: the model's column for it (or -1) and its value */
typedef struct Term
{
	char	   *feature;
	char	   *value;			/* as given, for the explanation */
	int			column;
	double		x;
} Term;

static int
find_column(const Model *m, const char *feature, const char *level)
{
	for (int i = 1; i < m->n; i++)
		if (strcmp(m->feature[i], feature) == 0 &&
			(level == NULL ? m->level[i] == NULL : (m->level[i] != NULL && strcmp(m->level[i], level) == 0)))
			return i;
	return -1;
}

/* Was the feature a numeric column the fit dropped as aliased (it adds nothing)? */
static bool
dropped_numeric(const Model *m, const char *feature)
{
	for (int i = 0; i < m->ndropped; i++)
		if (strcmp(m->dropped[i], feature) == 0)
			return true;
	return false;
}

static bool
has_feature(const Model *m, const char *feature, bool numeric)
{
	for (int i = 1; i < m->n; i++)
		if (strcmp(m->feature[i], feature) == 0 && (m->level[i] == NULL) == numeric)
			return true;
	return false;
}

/* The terms of a document, in its key order */
static Term *
read_terms(const Model *m, Jsonb *doc, int *nterms)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	Term	   *terms;
	int			n = 0;
	char	   *name = NULL;

	if (!JB_ROOT_IS_OBJECT(doc) || JB_ROOT_IS_SCALAR(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a JSON object of feature names and values")));
	terms = palloc(sizeof(Term) * Max(JsonContainerSize(&doc->root), 1));
	it = JsonbIteratorInit(&doc->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Term	   *t;

		if (tok == WJB_KEY)
		{
			name = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || v.type == jbvNull)
			continue;
		t = &terms[n];
		t->feature = name;
		if (v.type == jbvString)
		{
			t->value = pnstrdup(v.val.string.val, v.val.string.len);
			if (has_feature(m, name, true))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is a number in the model, not a string", name)));
			t->column = find_column(m, name, t->value);
			t->x = 1;
		}
		else if (v.type == jbvNumeric || v.type == jbvBool)
		{
			t->x = v.type == jbvBool ? (v.val.boolean ? 1 : 0)
				: DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v.val.numeric)));
			t->value = v.type == jbvBool ? (v.val.boolean ? "true" : "false")
				: DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
			if (isnan(t->x) || isinf(t->x))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is not a finite number", name)));
			t->column = find_column(m, name, NULL);
			if (t->column < 0 && !dropped_numeric(m, name))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the model has no numeric feature \"%s\"", name),
						 errhint(has_feature(m, name, false)
								 ? "The model saw it as a string: pass it as text."
								 : "Leave it out, or fit the model with it.")));
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature \"%s\" is not a number, a string or a boolean", name)));
		n++;
	}
	*nterms = n;
	return terms;
}

/* The log-odds: the intercept, then each term in order (as explained) */
static double
log_odds(const Model *m, const Term *terms, int n)
{
	double		eta = m->coef[0];

	for (int i = 0; i < n; i++)
		if (terms[i].column >= 0)
			eta += m->coef[terms[i].column] * terms[i].x;
	return eta;
}

PG_FUNCTION_INFO_V1(crm_logit_predict);
Datum
crm_logit_predict(PG_FUNCTION_ARGS)
{
	Model		m = read_model(PG_GETARG_HEAPTUPLEHEADER(0));
	int			n;
	Term	   *terms = read_terms(&m, PG_GETARG_JSONB_P(1), &n);

	PG_RETURN_FLOAT8(1 / (1 + exp(-log_odds(&m, terms, n))));
}

PG_FUNCTION_INFO_V1(crm_logit_log_odds);
Datum
crm_logit_log_odds(PG_FUNCTION_ARGS)
{
	Model		m = read_model(PG_GETARG_HEAPTUPLEHEADER(0));
	int			n;
	Term	   *terms = read_terms(&m, PG_GETARG_JSONB_P(1), &n);

	PG_RETURN_FLOAT8(log_odds(&m, terms, n));
}

PG_FUNCTION_INFO_V1(crm_logit_explain);
Datum
crm_logit_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Model		m = read_model(PG_GETARG_HEAPTUPLEHEADER(0));
	int			n;
	Term	   *terms = read_terms(&m, PG_GETARG_JSONB_P(1), &n);

	InitMaterializedSRF(fcinfo, 0);
	predict_emit_reason(rsinfo, "(intercept)", NULL, m.coef[0]);
	for (int i = 0; i < n; i++)
		if (terms[i].column >= 0)
			predict_emit_reason(rsinfo, terms[i].feature, terms[i].value,
								m.coef[terms[i].column] * terms[i].x);
	return (Datum) 0;
}
