/*
 * clv_prepare.c
 *		Data preparation for the CLV fits: the checks of input rows, the
 *		sorted and time-scaled rows a fit reads, the index of distinct
 *		times, and the deterministic sample a large fit starts from.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "clv_rows.h"

/* Check one customer's (frequency, recency, T) in continuous time */
void
clv_check_rfm(double x, double tx, double T)
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
clv_check_discrete(double x, double tx, double n)
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

/* Check a forecast horizon t: non-negative and finite */
double
clv_check_horizon(double t)
{
	if (!(isfinite(t) && t >= 0))
		BAD_ROW(errmsg("forecast horizon t must be non-negative and finite, not %g", t));
	return t;
}

/* Check a count argument (purchases, opportunities): a whole number in [0, max] */
double
clv_check_count(double v, const char *what, double max)
{
	if (!(isfinite(v) && v >= 0 && v == floor(v) && v <= max))
		BAD_ROW(errmsg("%s must be an integer between 0 and %.0f, not %g", what, max, v));
	return v;
}

/* Total weight (customers) and weighted frequency of d's rows, scale 1; returns the largest T */
static double
data_sums(ClvData *d)
{
	double		maxT = 0;
	int64		j;

	d->scale = 1.0;
	for (j = 0; j < d->n; j++)
	{
		d->total_w += d->rows[j].w;
		d->sum_wx += d->rows[j].w * d->rows[j].k[0];
		maxT = Max(maxT, d->rows[j].k[2]);
	}
	return maxT;
}

/* Sort the distinct rows and, for continuous time, divide times by max T */
ClvData *
clv_prepare(ClvRows *st, bool scale_times)
{
	ClvData    *d = palloc0(sizeof(ClvData));
	const ClvRow *rows = clv_rows_sorted(st, &d->n);
	int64		j;
	double		maxT;

	/* a copy: the fits scale it, and the state may be finalised again */
	d->rows = palloc_extended(sizeof(ClvRow) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	memcpy(d->rows, rows, sizeof(ClvRow) * d->n);
	maxT = data_sums(d);
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

/*
 * The rows for a fit that reads the times only through the time index
 * (BG/NBD, MBG/NBD): the state's own run, not copied, and the distinct
 * times scaled rather than every row (the same divisions, the same
 * numbers).  The rows must not be changed.
 */
ClvData *
clv_prepare_indexed(ClvRows *st)
{
	ClvData    *d = palloc0(sizeof(ClvData));
	int64		j;
	double		maxT;

	d->rows = (ClvRow *) clv_rows_sorted(st, &d->n);
	maxT = data_sums(d);
	clv_index_times(d);
	if (maxT > 0)
	{
		d->scale = maxT;
		for (j = 0; j < d->ntimes; j++)
			d->times[j] /= maxT;
	}
	return d;
}

/*
 * Is row j of d in the sample, and with what weight?  Rows heavier than
 * heavy are all kept; of the others one in k, chosen by a hash of the
 * keys, with k times the weight.
 */
static inline bool
sample_keeps(const ClvData *d, int64 j, double heavy, uint64 k, double *w)
{
	const ClvRow *r = &d->rows[j];

	*w = r->w;
	if (r->w >= heavy)
		return true;
	*w = r->w * k;
	return row_hash(r->k) % k == 0;
}

/*
 * A deterministic sample of about target rows of d, for a starting point
 * (see sample_keeps): its log-likelihood estimates the whole one without
 * bias.  The rows stay sorted, and keep their time indexes when d has them
 * (the sample shares d's time table).
 */
ClvData *
clv_sample(const ClvData *d, int64 target)
{
	ClvData    *s = palloc0(sizeof(ClvData));
	double		heavy = d->total_w / target,
				w;
	uint64		k = 1;
	int64		j,
				cap = 0;

	while ((int64) k * target < d->n)
		k *= 2;
	for (j = 0; j < d->n; j++)
		cap += sample_keeps(d, j, heavy, k, &w);
	*s = *d;
	s->rows = palloc_extended(sizeof(ClvRow) * Max(cap, 1), MCXT_ALLOC_HUGE);
	if (d->itx)
	{
		s->itx = palloc_extended(sizeof(int32) * Max(cap, 1), MCXT_ALLOC_HUGE);
		s->iT = palloc_extended(sizeof(int32) * Max(cap, 1), MCXT_ALLOC_HUGE);
	}
	s->n = 0;
	s->total_w = 0;
	s->sum_wx = 0;
	for (j = 0; j < d->n; j++)
	{
		if (!sample_keeps(d, j, heavy, k, &w))
			continue;
		s->rows[s->n] = d->rows[j];
		s->rows[s->n].w = w;
		if (d->itx)
		{
			s->itx[s->n] = d->itx[j];
			s->iT[s->n] = d->iT[j];
		}
		s->total_w += w;
		s->sum_wx += w * d->rows[j].k[0];
		s->n++;
	}
	return s;
}

/*
 * Index the distinct time values of the rows, so an objective computes
 * log(alpha + t) once per distinct t instead of once per row (real data
 * has times on a day grid: a few hundred values for any number of rows).
 * d->times is sorted, so the index does not depend on the row order.
 */
void
clv_index_times(ClvData *d)
{
	ValueSet	vs;
	int32	   *rank;
	int64		j;

	if (d->n > PG_INT32_MAX / 2)
		elog(ERROR, "too many distinct rows to index: %lld", (long long) d->n);
	clv_value_set_init(&vs, CurrentMemoryContext);
	d->itx = palloc_extended(sizeof(int32) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	d->iT = palloc_extended(sizeof(int32) * Max(d->n, 1), MCXT_ALLOC_HUGE);
	for (j = 0; j < d->n; j++)
	{
		/* rows sorted by (x, t_x, T): t_x mostly repeats the last row's */
		if (j > 0 && d->rows[j].k[1] == d->rows[j - 1].k[1])
			d->itx[j] = d->itx[j - 1];
		else
			d->itx[j] = value_set_index(&vs, d->rows[j].k[1]);
		d->iT[j] = value_set_index(&vs, d->rows[j].k[2]);
	}
	rank = clv_value_set_ranks(&vs, &d->times);
	d->ntimes = vs.n;
	for (j = 0; j < d->n; j++)
	{
		d->itx[j] = rank[d->itx[j]];
		d->iT[j] = rank[d->iT[j]];
	}
	pfree(rank);
	clv_value_set_free(&vs);
}
