/*
 * clv_fit.c
 *		The compressed state of the CLV fitting aggregates.
 *
 * Every fitting aggregate (crm.bgnbd_fit, crm.paretonbd_fit, ...) keeps an
 * open-addressing hash table of its distinct input rows, e.g. (x, t_x, T),
 * with the summed weight of each, so memory grows with the number of
 * distinct rows and not with the number of customers.  The state combines
 * (parallel query, Citus) and serialises; the final functions sort the rows
 * before optimising, so a fit does not depend on row order or plan shape.
 * This file also holds the input checks shared by the transition functions.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/memutils.h"

#include "clv.h"

/* The input families: what a row of each aggregate means */
#define FAMILY_RFM			1	/* frequency, recency, T (continuous time) */
#define FAMILY_SPEND		2	/* frequency, monetary value */
#define FAMILY_DISCRETE		3	/* frequency, recency, n (opportunities) */

/* Bit mixer (splitmix64 finaliser) */
static inline uint64
mix64(uint64 z)
{
	z = (z ^ (z >> 30)) * UINT64CONST(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Hash of a key triple */
static inline uint64
row_hash(const double *k)
{
	uint64		h = 0;
	int			i;

	for (i = 0; i < 3; i++)
	{
		uint64		b;

		memcpy(&b, &k[i], sizeof(b));
		h = mix64(h ^ (b + UINT64CONST(0x9e3779b97f4a7c15) * (i + 1)));
	}
	return h;
}

/* A new empty state in the given context */
ClvRows *
crm_clv_rows_new(MemoryContext cxt, int kind)
{
	ClvRows    *st = MemoryContextAllocZero(cxt, sizeof(ClvRows));

	st->kind = kind;
	st->size = 256;
	st->slots = MemoryContextAllocHuge(cxt, sizeof(ClvRow) * st->size);
	memset(st->slots, 0, sizeof(ClvRow) * st->size);
	return st;
}

/* Insert a row into the table (no growth check) */
static void
rows_put(ClvRow *slots, int64 size, const double *k, double w, int64 *used)
{
	uint64		mask = size - 1;
	uint64		i = row_hash(k) & mask;

	for (;;)
	{
		ClvRow	   *s = &slots[i];

		if (s->w == 0)
		{
			memcpy(s->k, k, sizeof(s->k));
			s->w = w;
			(*used)++;
			return;
		}
		if (s->k[0] == k[0] && s->k[1] == k[1] && s->k[2] == k[2])
		{
			s->w += w;
			return;
		}
		i = (i + 1) & mask;
	}
}

/* Add weight w to the row with keys k */
void
crm_clv_rows_add(ClvRows *st, const double *k, double w)
{
	double		kk[3];
	int			i;

	/* one representation of zero, so -0 and +0 land in one row */
	for (i = 0; i < 3; i++)
		kk[i] = (k[i] == 0) ? 0.0 : k[i];
	if ((st->used + 1) * 10 > st->size * 7)
	{
		int64		nsize = st->size * 2;
		ClvRow	   *ns = MemoryContextAllocHuge(GetMemoryChunkContext(st->slots),
												sizeof(ClvRow) * nsize);
		int64		used = 0;
		int64		j;

		memset(ns, 0, sizeof(ClvRow) * nsize);
		for (j = 0; j < st->size; j++)
			if (st->slots[j].w != 0)
				rows_put(ns, nsize, st->slots[j].k, st->slots[j].w, &used);
		pfree(st->slots);
		st->slots = ns;
		st->size = nsize;
	}
	rows_put(st->slots, st->size, kk, w, &st->used);
	st->total_w += w;
}

/* Order rows by their keys */
static int
row_cmp(const void *a, const void *b)
{
	const ClvRow *x = a;
	const ClvRow *y = b;
	int			i;

	for (i = 0; i < 3; i++)
	{
		if (x->k[i] < y->k[i])
			return -1;
		if (x->k[i] > y->k[i])
			return 1;
	}
	return 0;
}

/* The distinct rows, sorted by key, in a palloc'd array */
ClvRow *
crm_clv_rows_sorted(ClvRows *st, int64 *n)
{
	ClvRow	   *out = palloc_extended(sizeof(ClvRow) * Max(st->used, 1), MCXT_ALLOC_HUGE);
	int64		j,
				m = 0;

	for (j = 0; j < st->size; j++)
		if (st->slots[j].w != 0)
			out[m++] = st->slots[j];
	qsort(out, m, sizeof(ClvRow), row_cmp);
	*n = m;
	return out;
}

/* The aggregate's memory context, or an error outside an aggregate */
static MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

#define BAD_ROW(...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), __VA_ARGS__))

/* Check a weight: positive finite, or zero (row ignored) */
static double
check_weight(FunctionCallInfo fcinfo, int argno)
{
	double		w;

	if (PG_NARGS() <= argno)
		return 1.0;
	w = PG_GETARG_FLOAT8(argno);
	if (!(isfinite(w) && w >= 0))
		BAD_ROW(errmsg("weight must be a non-negative finite number, not %g", w),
				errhint("A weight is the number of customers with this row."));
	return w;
}

/* Is v a non-negative integer? */
static inline bool
is_count(double v)
{
	return isfinite(v) && v >= 0 && v == floor(v);
}

/* Check one customer's (frequency, recency, T) in continuous time */
void
crm_clv_check_rfm(double x, double tx, double T)
{
	double		k[3] = {x, tx, T};

	if (!is_count(k[0]))
		BAD_ROW(errmsg("frequency must be a non-negative integer, not %g", k[0]),
				errdetail("Frequency is the number of repeat purchases."));
	if (!(isfinite(k[1]) && k[1] >= 0 && isfinite(k[2]) && k[2] >= 0))
		BAD_ROW(errmsg("recency and T must be non-negative and finite, not %g and %g", k[1], k[2]));
	if (k[1] > k[2])
		BAD_ROW(errmsg("recency %g is greater than T %g", k[1], k[2]),
				errdetail("The last purchase cannot be after the end of observation."));
	if (k[0] == 0 && k[1] != 0)
		BAD_ROW(errmsg("recency must be 0 when frequency is 0, not %g", k[1]),
				errhint("Recency is the time of the last repeat purchase; without one it is 0."));
}

/* Check one customer's (frequency, recency, n) in discrete time */
void
crm_clv_check_discrete(double x, double tx, double n)
{
	double		k[3] = {x, tx, n};

	if (!is_count(k[0]) || !is_count(k[1]) || !is_count(k[2]))
		BAD_ROW(errmsg("frequency, recency and n must be non-negative integers, not %g, %g, %g",
					   k[0], k[1], k[2]),
				errdetail("BG/BB counts transaction opportunities."));
	if (k[2] < 1 || k[2] > 100000)
		BAD_ROW(errmsg("n must be between 1 and 100000, not %g", k[2]));
	if (k[0] > k[1] || k[1] > k[2] || (k[0] == 0) != (k[1] == 0))
		BAD_ROW(errmsg("invalid BG/BB row: frequency %g, recency %g, n %g", k[0], k[1], k[2]),
				errdetail("It must hold that frequency <= recency <= n, and recency is 0 exactly when frequency is 0."));
}

/* Add one row to the state, creating it on the first call */
static Datum
rows_transition(FunctionCallInfo fcinfo, int family, const double *k, double w)
{
	MemoryContext cxt = agg_context(fcinfo, "clv fit transition");
	ClvRows    *st = PG_ARGISNULL(0) ? crm_clv_rows_new(cxt, family) : (ClvRows *) PG_GETARG_POINTER(0);

	st->rows_in++;
	if (w > 0)
		crm_clv_rows_add(st, k, w);
	PG_RETURN_POINTER(st);
}

/* True when any of the first n data arguments (after the state) is NULL */
static bool
any_null(FunctionCallInfo fcinfo)
{
	int			i;

	for (i = 1; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(crm_clv_rfm_trans);
/* Transition: (frequency, recency, T [, weight]) for the continuous-time models */
Datum
crm_clv_rfm_trans(PG_FUNCTION_ARGS)
{
	double		k[3];

	if (any_null(fcinfo))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k[0] = PG_GETARG_FLOAT8(1);
	k[1] = PG_GETARG_FLOAT8(2);
	k[2] = PG_GETARG_FLOAT8(3);
	crm_clv_check_rfm(k[0], k[1], k[2]);
	return rows_transition(fcinfo, FAMILY_RFM, k, check_weight(fcinfo, 4));
}

PG_FUNCTION_INFO_V1(crm_clv_spend_trans);
/* Transition: (frequency, monetary_value [, weight]) for Gamma-Gamma; x = 0 rows carry nothing */
Datum
crm_clv_spend_trans(PG_FUNCTION_ARGS)
{
	double		k[3] = {0, 0, 0};

	if (any_null(fcinfo))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k[0] = PG_GETARG_FLOAT8(1);
	k[1] = PG_GETARG_FLOAT8(2);
	if (!is_count(k[0]))
		BAD_ROW(errmsg("frequency must be a non-negative integer, not %g", k[0]),
				errdetail("Frequency is the number of repeat purchases."));
	if (k[0] > 0 && !(isfinite(k[1]) && k[1] > 0))
		BAD_ROW(errmsg("monetary value must be positive and finite, not %g", k[1]),
				errdetail("The Gamma-Gamma model describes positive spend."),
				errhint("Leave out customers whose repeat purchases sum to zero."));
	return rows_transition(fcinfo, FAMILY_SPEND, k, k[0] > 0 ? check_weight(fcinfo, 3) : 0);
}

PG_FUNCTION_INFO_V1(crm_clv_discrete_trans);
/* Transition: (frequency, recency, n [, weight]) for BG/BB */
Datum
crm_clv_discrete_trans(PG_FUNCTION_ARGS)
{
	double		k[3];

	if (any_null(fcinfo))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	k[0] = PG_GETARG_FLOAT8(1);
	k[1] = PG_GETARG_FLOAT8(2);
	k[2] = PG_GETARG_FLOAT8(3);
	crm_clv_check_discrete(k[0], k[1], k[2]);
	return rows_transition(fcinfo, FAMILY_DISCRETE, k, check_weight(fcinfo, 4));
}

PG_FUNCTION_INFO_V1(crm_clv_rows_combine);
/* Combine two states (the second may be a deserialised worker state) */
Datum
crm_clv_rows_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = agg_context(fcinfo, "crm_clv_rows_combine");
	ClvRows    *a = PG_ARGISNULL(0) ? NULL : (ClvRows *) PG_GETARG_POINTER(0);
	ClvRows    *b = PG_ARGISNULL(1) ? NULL : (ClvRows *) PG_GETARG_POINTER(1);
	int64		j;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = crm_clv_rows_new(cxt, b->kind);
	if (a->kind != b->kind)
		elog(ERROR, "cannot combine CLV states of families %d and %d", a->kind, b->kind);
	for (j = 0; j < b->size; j++)
		if (b->slots[j].w != 0)
			crm_clv_rows_add(a, b->slots[j].k, b->slots[j].w);
	a->rows_in += b->rows_in;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(crm_clv_rows_serialize);
/* Serialise a state to bytea (sorted, so equal states give equal bytes) */
Datum
crm_clv_rows_serialize(PG_FUNCTION_ARGS)
{
	ClvRows    *st = (ClvRows *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	ClvRow	   *rows;
	int64		n,
				j;

	agg_context(fcinfo, "crm_clv_rows_serialize");
	rows = crm_clv_rows_sorted(st, &n);
	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->kind);
	pq_sendint64(&buf, st->rows_in);
	pq_sendint64(&buf, n);
	for (j = 0; j < n; j++)
	{
		pq_sendfloat8(&buf, rows[j].k[0]);
		pq_sendfloat8(&buf, rows[j].k[1]);
		pq_sendfloat8(&buf, rows[j].k[2]);
		pq_sendfloat8(&buf, rows[j].w);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(crm_clv_rows_deserialize);
/* Rebuild a state from its serialised form */
Datum
crm_clv_rows_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	ClvRows    *st;
	int64		n,
				j;
	int			kind;

	agg_context(fcinfo, "crm_clv_rows_deserialize");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	kind = pq_getmsgint(&buf, 4);
	st = crm_clv_rows_new(CurrentMemoryContext, kind);
	st->rows_in = pq_getmsgint64(&buf);
	n = pq_getmsgint64(&buf);
	for (j = 0; j < n; j++)
	{
		double		k[3],
					w;

		k[0] = pq_getmsgfloat8(&buf);
		k[1] = pq_getmsgfloat8(&buf);
		k[2] = pq_getmsgfloat8(&buf);
		w = pq_getmsgfloat8(&buf);
		crm_clv_rows_add(st, k, w);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/* The state at the final function; an empty input is an error */
ClvRows *
crm_clv_final_state(FunctionCallInfo fcinfo, const char *what)
{
	ClvRows    *st = PG_ARGISNULL(0) ? NULL : (ClvRows *) PG_GETARG_POINTER(0);

	agg_context(fcinfo, what);
	if (st == NULL || st->used == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit %s: no customers in the input", what),
				 errdetail("%lld rows were read, none of them usable (NULL, zero weight, or no repeat purchase for a spend model).",
						   (long long) (st ? st->rows_in : 0)),
				 errhint("Fit the model over a non-empty set of customers.")));
	return st;
}

/* Sort the distinct rows and, for continuous time, divide times by max T */
ClvData *
crm_clv_prepare(ClvRows *st, bool scale_times)
{
	ClvData    *d = palloc0(sizeof(ClvData));
	int64		j;
	double		maxT = 0;

	d->rows = crm_clv_rows_sorted(st, &d->n);
	d->scale = 1.0;
	for (j = 0; j < d->n; j++)
	{
		d->total_w += d->rows[j].w;
		d->sum_wx += d->rows[j].w * d->rows[j].k[0];
		maxT = Max(maxT, d->rows[j].k[2]);
	}
	if (scale_times && maxT > 0)
	{
		d->scale = maxT;
		for (j = 0; j < d->n; j++)
		{
			d->rows[j].k[1] /= maxT;
			d->rows[j].k[2] /= maxT;
		}
	}
	return d;
}

/* Order doubles */
static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Position of v in the sorted array t[0..n-1] (v is there) */
static int32
find_time(const double *t, int64 n, double v)
{
	int64		lo = 0,
				hi = n - 1;

	while (lo < hi)
	{
		int64		mid = (lo + hi) / 2;

		if (t[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int32) lo;
}

/*
 * Index the distinct time values of the rows, so an objective computes
 * log(alpha + t) once per distinct t instead of once per row (real data
 * has times on a day grid: a few hundred values for any number of rows).
 */
void
crm_clv_index_times(ClvData *d)
{
	double	   *all = palloc_extended(sizeof(double) * Max(2 * d->n, 1), MCXT_ALLOC_HUGE);
	int64		j,
				m = 0;

	for (j = 0; j < d->n; j++)
	{
		all[2 * j] = d->rows[j].k[1];
		all[2 * j + 1] = d->rows[j].k[2];
	}
	qsort(all, 2 * d->n, sizeof(double), double_cmp);
	for (j = 0; j < 2 * d->n; j++)
		if (m == 0 || all[j] != all[m - 1])
			all[m++] = all[j];
	d->times = all;
	d->ntimes = m;
	d->itx = palloc_extended(sizeof(int32) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	d->iT = palloc_extended(sizeof(int32) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	for (j = 0; j < d->n; j++)
	{
		d->itx[j] = find_time(all, m, d->rows[j].k[1]);
		d->iT[j] = find_time(all, m, d->rows[j].k[2]);
	}
}
