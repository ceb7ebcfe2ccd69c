/*
 * clv_fit.c
 *		The fit state: transition, combine and final-state functions of the
 *		CLV fitting aggregates.
 *
 * The transition functions check each row (clv_prepare.c) and add it to
 * the state's distinct-row tables (clv_rows.c); the combine function
 * merges sorted runs, so combining the partial states of a parallel plan
 * (or Citus) is a linear merge.  The serial forms are in clv_serial.c.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "utils/memutils.h"

#include "clv_rows.h"

/* The input families: what a row of each aggregate means */
#define FAMILY_RFM			1	/* frequency, recency, T (continuous time) */
#define FAMILY_SPEND		2	/* frequency, monetary value */
#define FAMILY_DISCRETE		3	/* frequency, recency, n (opportunities) */

/* The aggregate's memory context, or an error outside an aggregate */
MemoryContext
clv_agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

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

/*
 * The common case of clv_check_rfm in a few comparisons (no libm
 * call): a small whole x, 0 <= t_x <= T finite, t_x = 0 when x = 0.  When
 * false, the full check decides (and names the problem).
 */
static inline bool
rfm_plainly_valid(double x, double tx, double T)
{
	return x >= 0 && x < 1e15 && x == (double) (int64) x
		&& tx >= 0 && tx <= T && T <= DBL_MAX && (x != 0 || tx == 0);
}

/* Add one row to the state, creating it on the first call */
static Datum
rows_transition(FunctionCallInfo fcinfo, int family, const double *k, double w)
{
	MemoryContext cxt = clv_agg_context(fcinfo, "clv fit transition");
	ClvRows    *st = PG_ARGISNULL(0) ? clv_rows_new(cxt, family) : (ClvRows *) PG_GETARG_POINTER(0);

	st->rows_in++;
	if (w > 0)
		clv_rows_add(st, k, w);
	PG_RETURN_POINTER(st);
}

/*
 * The first nkeys data arguments (after the state) into k; false, k
 * untouched, when any data argument is NULL (the row is skipped)
 */
static bool
read_keys(FunctionCallInfo fcinfo, int nkeys, double *k)
{
	int			i;

	for (i = 1; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			return false;
	for (i = 0; i < nkeys; i++)
		k[i] = PG_GETARG_FLOAT8(i + 1);
	return true;
}

/* The state as it came in, for a skipped row */
static Datum
state_unchanged(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_POINTER(PG_GETARG_POINTER(0));
}

/*
 * Transition of the three-key families: (frequency, recency, T or n
 * [, weight]), checked as the family's rows must be
 */
static Datum
history_transition(FunctionCallInfo fcinfo, int family)
{
	double		k[3];

	if (!read_keys(fcinfo, 3, k))
		return state_unchanged(fcinfo);
	if (family == FAMILY_DISCRETE)
		clv_check_discrete(k[0], k[1], k[2]);
	else if (!rfm_plainly_valid(k[0], k[1], k[2]))
		clv_check_rfm(k[0], k[1], k[2]);
	return rows_transition(fcinfo, family, k, check_weight(fcinfo, 4));
}

PG_FUNCTION_INFO_V1(crm_clv_rfm_trans);
/* Transition: (frequency, recency, T [, weight]) for the continuous-time models */
Datum
crm_clv_rfm_trans(PG_FUNCTION_ARGS)
{
	return history_transition(fcinfo, FAMILY_RFM);
}

PG_FUNCTION_INFO_V1(crm_clv_spend_trans);
/* Transition: (frequency, monetary_value [, weight]) for Gamma-Gamma; x = 0 rows carry nothing */
Datum
crm_clv_spend_trans(PG_FUNCTION_ARGS)
{
	double		k[3] = {0, 0, 0};

	if (!read_keys(fcinfo, 2, k))
		return state_unchanged(fcinfo);
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
	return history_transition(fcinfo, FAMILY_DISCRETE);
}

PG_FUNCTION_INFO_V1(crm_clv_rows_combine);
/*
 * Combine two states (the second may be a deserialised worker state): the
 * rows of b, sorted, are merged into a's sorted run, so combining the
 * partial states of a parallel plan costs a linear merge, not a rehash.
 */
Datum
crm_clv_rows_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = clv_agg_context(fcinfo, "crm_clv_rows_combine");
	ClvRows    *a = PG_ARGISNULL(0) ? NULL : (ClvRows *) PG_GETARG_POINTER(0);
	ClvRows    *b = PG_ARGISNULL(1) ? NULL : (ClvRows *) PG_GETARG_POINTER(1);
	MemoryContext old;
	const ClvRow *brows;
	int64		nb;

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = clv_rows_new(cxt, b->kind);
	if (a->kind != b->kind)
		elog(ERROR, "cannot combine CLV states of families %d and %d", a->kind, b->kind);
	brows = clv_rows_parts(b, &nb);
	clv_frac_merge_in(a, b->frun, b->nfrun);
	if (a->run == NULL && b->cxt == a->cxt && b->run == brows)
	{
		/* the first state in: take its run (in this context) as it is */
		a->run = b->run;
		a->nrun = nb;
		b->run = NULL;
		b->nrun = 0;
		a->rows_in += b->rows_in;
		PG_RETURN_POINTER(a);
	}
	old = MemoryContextSwitchTo(a->cxt);
	/* grown in place (no fresh pages for what a holds), merged from the back */
	if (a->run == NULL)
		a->run = palloc_extended(sizeof(ClvRow) * Max(nb, 1), MCXT_ALLOC_HUGE);
	else
		a->run = repalloc_huge(a->run, sizeof(ClvRow) * Max(a->nrun + nb, 1));
	MemoryContextSwitchTo(old);
	a->nrun = clv_merge_runs_in_place(a->run, a->nrun, brows, nb);
	if (b->cxt == a->cxt && b->run == brows && brows != NULL)
	{
		/* a deserialised run lives in this context: free it now, not at the end */
		pfree(b->run);
		b->run = NULL;
		b->nrun = 0;
	}
	a->rows_in += b->rows_in;
	PG_RETURN_POINTER(a);
}

/* The state at the final function; an empty input is an error */
ClvRows *
clv_final_state(FunctionCallInfo fcinfo, const char *what)
{
	ClvRows    *st = PG_ARGISNULL(0) ? NULL : (ClvRows *) PG_GETARG_POINTER(0);

	clv_agg_context(fcinfo, what);
	if (st == NULL || clv_rows_empty(st))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit %s: no customers in the input", what),
				 errdetail("%lld rows were read, none of them usable (NULL, zero weight, or no repeat purchase for a spend model).",
						   (long long) (st ? st->rows_in : 0)),
				 errhint("Fit the model over a non-empty set of customers.")));
	return st;
}
