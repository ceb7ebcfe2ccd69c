/*
 * predict_eval.c
 *		How good a score is, as aggregates: crm.auc(score, label) (the
 *		Mann-Whitney statistic with average ranks for ties), crm.log_loss(p,
 *		label) and crm.brier(p, label), each with the combine and serial
 *		functions of parallel query and Citus.
 *
 * The AUC keeps the (score, label) pairs and sorts them at the end: an
 * exact rank statistic, not a binned one.  Log loss clips p to [1e-15,
 * 1 - 1e-15], as scikit-learn does, so a confident mistake costs 34.5, not
 * infinity.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "predict.h"

typedef struct Scored
{
	double		score;
	bool		label;
} Scored;

typedef struct AucState
{
	int64		n;
	int64		cap;
	Scored	   *rows;
} AucState;

static AucState *
auc_new(MemoryContext cxt)
{
	AucState   *s = MemoryContextAllocZero(cxt, sizeof(AucState));

	s->cap = 1024;
	s->rows = MemoryContextAllocHuge(cxt, sizeof(Scored) * s->cap);
	return s;
}

static void
auc_push(AucState *s, double score, bool label)
{
	if (s->n == s->cap)
	{
		s->cap *= 2;
		s->rows = repalloc_huge(s->rows, sizeof(Scored) * s->cap);
	}
	s->rows[s->n].score = score;
	s->rows[s->n].label = label;
	s->n++;
}

PG_FUNCTION_INFO_V1(crm_auc_trans);
Datum
crm_auc_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	AucState   *s;
	double		score;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_auc_trans called in non-aggregate context");
	s = PG_ARGISNULL(0) ? auc_new(aggcxt) : (AucState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	score = PG_GETARG_FLOAT8(1);
	if (isnan(score))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a score is NaN"),
				 errhint("Scores are ranked: give every row a number, or NULL to leave it out.")));
	auc_push(s, score, PG_GETARG_BOOL(2));
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(crm_auc_combine);
Datum
crm_auc_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	AucState   *a,
			   *b;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_auc_combine called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (AucState *) PG_GETARG_POINTER(1);
	a = PG_ARGISNULL(0) ? auc_new(aggcxt) : (AucState *) PG_GETARG_POINTER(0);
	for (int64 i = 0; i < b->n; i++)
		auc_push(a, b->rows[i].score, b->rows[i].label);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(crm_auc_serialize);
Datum
crm_auc_serialize(PG_FUNCTION_ARGS)
{
	AucState   *s = (AucState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, s->n);
	for (int64 i = 0; i < s->n; i++)
	{
		pq_sendfloat8(&buf, s->rows[i].score);
		pq_sendbyte(&buf, s->rows[i].label ? 1 : 0);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(crm_auc_deserialize);
Datum
crm_auc_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *flat = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	StringInfoData buf;
	AucState   *s;
	int64		n;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_auc_deserialize called in non-aggregate context");
	s = auc_new(aggcxt);
	predict_reader(&buf, flat);
	n = pq_getmsgint64(&buf);
	for (int64 i = 0; i < n; i++)
	{
		double		score = pq_getmsgfloat8(&buf);

		auc_push(s, score, pq_getmsgbyte(&buf) != 0);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

static int
cmp_scored(const void *a, const void *b)
{
	double		x = ((const Scored *) a)->score,
				y = ((const Scored *) b)->score;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * (sum of the positives' ranks - n1 (n1 + 1) / 2) / (n1 n0), ties ranked
 * at their average; NULL when one class is missing
 */
PG_FUNCTION_INFO_V1(crm_auc_final);
Datum
crm_auc_final(PG_FUNCTION_ARGS)
{
	AucState   *s;
	double		rank_sum = 0,
				n1 = 0;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (AucState *) PG_GETARG_POINTER(0);
	qsort(s->rows, s->n, sizeof(Scored), cmp_scored);
	for (int64 i = 0; i < s->n;)
	{
		int64		j = i;
		int64		pos = 0;

		while (j < s->n && s->rows[j].score == s->rows[i].score)
			pos += s->rows[j++].label ? 1 : 0;
		/* ranks i+1 .. j: their average */
		rank_sum += pos * ((double) (i + 1 + j) / 2);
		n1 += pos;
		i = j;
	}
	if (n1 == 0 || n1 == s->n)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((rank_sum - n1 * (n1 + 1) / 2) / (n1 * (s->n - n1)));
}

/* ---- log loss and Brier score: a mean, in a float8[2] (sum, n) ---------- */

typedef struct MeanState
{
	double		sum;
	double		n;
} MeanState;

static MeanState *
mean_state(FunctionCallInfo fcinfo)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm mean aggregate called in non-aggregate context");
	if (PG_ARGISNULL(0))
		return MemoryContextAllocZero(aggcxt, sizeof(MeanState));
	return (MeanState *) PG_GETARG_POINTER(0);
}

static double
probability_arg(FunctionCallInfo fcinfo)
{
	double		p = PG_GETARG_FLOAT8(1);

	if (isnan(p) || p < 0 || p > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a probability must be between 0 and 1, not %g", p)));
	return p;
}

PG_FUNCTION_INFO_V1(crm_log_loss_trans);
Datum
crm_log_loss_trans(PG_FUNCTION_ARGS)
{
	MeanState  *s = mean_state(fcinfo);
	double		p;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	p = Min(Max(probability_arg(fcinfo), 1e-15), 1 - 1e-15);
	s->sum += PG_GETARG_BOOL(2) ? -log(p) : -log1p(-p);
	s->n += 1;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(crm_brier_trans);
Datum
crm_brier_trans(PG_FUNCTION_ARGS)
{
	MeanState  *s = mean_state(fcinfo);
	double		d;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);
	d = probability_arg(fcinfo) - (PG_GETARG_BOOL(2) ? 1 : 0);
	s->sum += d * d;
	s->n += 1;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(crm_mean_combine);
Datum
crm_mean_combine(PG_FUNCTION_ARGS)
{
	MeanState  *a = mean_state(fcinfo);

	if (!PG_ARGISNULL(1))
	{
		MeanState  *b = (MeanState *) PG_GETARG_POINTER(1);

		a->sum += b->sum;
		a->n += b->n;
	}
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(crm_mean_serialize);
Datum
crm_mean_serialize(PG_FUNCTION_ARGS)
{
	MeanState  *s = (MeanState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendfloat8(&buf, s->sum);
	pq_sendfloat8(&buf, s->n);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(crm_mean_deserialize);
Datum
crm_mean_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *flat = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	StringInfoData buf;
	MeanState  *s;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_mean_deserialize called in non-aggregate context");
	s = MemoryContextAllocZero(aggcxt, sizeof(MeanState));
	predict_reader(&buf, flat);
	s->sum = pq_getmsgfloat8(&buf);
	s->n = pq_getmsgfloat8(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(crm_mean_final);
Datum
crm_mean_final(PG_FUNCTION_ARGS)
{
	MeanState  *s;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (MeanState *) PG_GETARG_POINTER(0);
	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s->sum / s->n);
}
