/*
 * predict_common.c
 *		What the predictive units share: feature values as categories and
 *		as hash keys, the arrays of a model, the reader of a flat state, and
 *		one row of an explanation.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "predict.h"

FvKey
predict_fv_key(const char *feature, const char *value)
{
	int			fl = strlen(feature),
				vl = strlen(value);
	FvKey		k;

	k.len = fl + 1 + vl;
	k.bytes = palloc(k.len);
	memcpy(k.bytes, feature, fl);
	k.bytes[fl] = '\0';
	memcpy(k.bytes + fl + 1, value, vl);
	return k;
}

/* A value's category text: strings as they are, numbers and booleans as text; NULL for JSON null */
char *
predict_category(const char *feature, JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature \"%s\" is not a number, a string or a boolean", feature),
					 errhint("Flatten nested values into features of their own; JSON null means missing.")));
	}
	pg_unreachable();
}

Datum
predict_text_array(char **items, bool *nulls, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
		d[i] = nulls && nulls[i] ? (Datum) 0 : CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

Datum
predict_float8_array(double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Read a serialised state in place */
void
predict_reader(StringInfo buf, bytea *flat)
{
	buf->data = VARDATA_ANY(flat);
	buf->len = VARSIZE_ANY_EXHDR(flat);
	buf->maxlen = buf->len;
	buf->cursor = 0;
}

/* One row of crm.explain_prediction (value NULL for the intercept or prior) */
void
predict_emit_reason(ReturnSetInfo *rsinfo, const char *feature, const char *value, double contribution)
{
	Datum		values[3];
	bool		nulls[3] = {false, value == NULL, false};

	values[0] = CStringGetTextDatum(feature);
	values[1] = value ? CStringGetTextDatum(value) : (Datum) 0;
	values[2] = Float8GetDatum(contribution);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}
