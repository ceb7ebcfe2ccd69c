/*
 * clv_fit.c
 *		The fit state: transition, combine and final-state functions of the
 *		CLV fitting aggregates.
 *
 * The transition functions check each row (clv_prepare.c) and add it to
 * the state's distinct-row tables (clv_rows.c); the combine function
 * merges sorted runs, so combining the partial states of a parallel plan
 * (or Citus) is a linear merge.
 *
 * The state's SQL type is bytea, not internal: Citus computes a partial
 * aggregate on its workers only for a transition type it can send as text
 * (worker_partial_agg / coord_combine_agg), never for internal.  In memory
 * the state is an expanded object (utils/expandeddatum.h) owned by the
 * aggregate's context, changed in place by the transition and combine
 * functions and passed between calls as the same read-write pointer, so no
 * row copies a state; its flat form (clv_serial.c) is made only when the
 * state leaves the process: a parallel worker's tuple to the leader, a Citus
 * worker's partial state to the coordinator.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "utils/expandeddatum.h"
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

/* The state as an expanded object: its rows, and its flat form once made */
typedef struct ClvState
{
	ExpandedObjectHeader hdr;
	ClvRows    *rows;			/* in hdr.eoh_context */
	bytea	   *flat;			/* NULL until asked for, and after a change */
} ClvState;

static Size state_flat_size(ExpandedObjectHeader *eohptr);
static void state_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

static const ExpandedObjectMethods state_methods = {
	state_flat_size,
	state_flatten_into
};

/* The flat form's size (made here, kept for the flatten_into that follows) */
static Size
state_flat_size(ExpandedObjectHeader *eohptr)
{
	ClvState   *cs = (ClvState *) eohptr;

	if (cs->flat == NULL)
	{
		/* made in the caller's context (the sorts' scratch dies with it), kept in the state's */
		bytea	   *flat = clv_rows_flatten(cs->rows);

		cs->flat = MemoryContextAlloc(cs->hdr.eoh_context, VARSIZE(flat));
		memcpy(cs->flat, flat, VARSIZE(flat));
		pfree(flat);
	}
	return VARSIZE(cs->flat);
}

/* Write the flat form made by state_flat_size */
static void
state_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	ClvState   *cs = (ClvState *) eohptr;

	if (cs->flat == NULL || VARSIZE(cs->flat) != allocated_size)
		elog(ERROR, "CLV state flattened without its size");
	memcpy(result, cs->flat, allocated_size);
}

/* The state is about to change: its flat form no longer holds */
static void
state_changed(ClvState *cs)
{
	if (cs->flat)
		pfree(cs->flat);
	cs->flat = NULL;
}

/* A new empty state owned by the aggregate's context cxt */
static ClvState *
state_new(MemoryContext cxt, int kind)
{
	MemoryContext own = AllocSetContextCreate(cxt, "crm CLV fit state", ALLOCSET_DEFAULT_SIZES);
	ClvState   *cs = MemoryContextAllocZero(own, sizeof(ClvState));

	EOH_init_header(&cs->hdr, &state_methods, own);
	cs->rows = clv_rows_new(own, kind);
	return cs;
}

/* Is d a state of ours in expanded form (read-write or read-only)? */
static inline bool
is_expanded_state(Datum d)
{
	return VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d))
		&& DatumGetEOHP(d)->eoh_methods == &state_methods;
}

/* A new state of cxt holding the rows of the flat form d */
static ClvState *
state_from_flat(Datum d, MemoryContext cxt)
{
	bytea	   *flat = DatumGetByteaPP(d);
	ClvState   *cs = state_new(cxt, 0);

	clv_rows_read_flat(cs->rows, VARDATA_ANY(flat), VARSIZE_ANY_EXHDR(flat));
	return cs;
}

/*
 * The state in argument argno, to be changed in place: the aggregate's own
 * read-write state as it is, anything else (a flat form; a state not owned
 * by this aggregate) copied into a new one
 */
static ClvState *
state_arg(FunctionCallInfo fcinfo, int argno, MemoryContext cxt)
{
	Datum		d = PG_GETARG_DATUM(argno);

	if (is_expanded_state(d) && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d))
		&& MemoryContextGetParent(DatumGetEOHP(d)->eoh_context) == cxt)
		return (ClvState *) DatumGetEOHP(d);
	return state_from_flat(d, cxt);
}

/* The read-write datum of a state */
static inline Datum
state_datum(ClvState *cs)
{
	return EOHPGetRWDatum(&cs->hdr);
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
	ClvState   *cs = PG_ARGISNULL(0) ? state_new(cxt, family) : state_arg(fcinfo, 0, cxt);

	state_changed(cs);
	cs->rows->rows_in++;
	if (w > 0)
		clv_rows_add(cs->rows, k, w);
	PG_RETURN_DATUM(state_datum(cs));
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
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
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
 * Combine two states (the second may be the flat form of a worker's): the
 * rows of b, sorted, are merged into a's sorted run, so combining the
 * partial states of a parallel plan costs a linear merge, not a rehash.
 */
Datum
crm_clv_rows_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = clv_agg_context(fcinfo, "crm_clv_rows_combine");
	ClvState   *acs;
	ClvRows    *a,
			   *b;
	MemoryContext old;
	const ClvRow *brows;
	int64		nb;
	bool		b_own;			/* b is a copy of ours, in a's context */

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	if (PG_ARGISNULL(0) && !is_expanded_state(PG_GETARG_DATUM(1)))
	{
		/* the first state in: its flat form read straight into a new state */
		PG_RETURN_DATUM(state_datum(state_from_flat(PG_GETARG_DATUM(1), cxt)));
	}
	if (is_expanded_state(PG_GETARG_DATUM(1)))
	{
		b = ((ClvState *) DatumGetEOHP(PG_GETARG_DATUM(1)))->rows;
		acs = PG_ARGISNULL(0) ? state_new(cxt, b->kind) : state_arg(fcinfo, 0, cxt);
		b_own = false;
	}
	else
	{
		bytea	   *flat = PG_GETARG_BYTEA_PP(1);

		acs = state_arg(fcinfo, 0, cxt);
		/* the run in a's context: the merge below adopts or frees it */
		b = clv_rows_new(CurrentMemoryContext, 0);
		b->cxt = acs->rows->cxt;
		clv_rows_read_flat(b, VARDATA_ANY(flat), VARSIZE_ANY_EXHDR(flat));
		b_own = true;
	}
	state_changed(acs);
	a = acs->rows;
	if (a->kind != b->kind)
		elog(ERROR, "cannot combine CLV states of families %d and %d", a->kind, b->kind);
	brows = clv_rows_parts(b, &nb);
	clv_frac_merge_in(a, b->frun, b->nfrun);
	if (b_own && b->frun)
		pfree(b->frun);
	if (a->run == NULL && b_own && b->run == brows)
	{
		/* nothing merged in yet: take b's run (in this context) as it is */
		a->run = b->run;
		a->nrun = nb;
		a->rows_in += b->rows_in;
		PG_RETURN_DATUM(state_datum(acs));
	}
	old = MemoryContextSwitchTo(a->cxt);
	/* grown in place (no fresh pages for what a holds), merged from the back */
	if (a->run == NULL)
		a->run = palloc_extended(sizeof(ClvRow) * Max(nb, 1), MCXT_ALLOC_HUGE);
	else
		a->run = repalloc_huge(a->run, sizeof(ClvRow) * Max(a->nrun + nb, 1));
	MemoryContextSwitchTo(old);
	a->nrun = clv_merge_runs_in_place(a->run, a->nrun, brows, nb);
	if (b_own && b->run == brows && brows != NULL)
		pfree(b->run);			/* read into this context: freed now, not at the end */
	a->rows_in += b->rows_in;
	PG_RETURN_DATUM(state_datum(acs));
}

/*
 * Serial forms for the install script of crm 0.1.0, whose fits have an
 * internal state with SERIALFUNC and DESERIALFUNC: a database still at
 * 0.1.0 runs them with this library until ALTER EXTENSION crm UPDATE
 * replaces those aggregates.  The internal datum is the same expanded
 * state (its read-write pointer), so the other functions serve both.
 */
PG_FUNCTION_INFO_V1(crm_clv_rows_serialize);
/* 0.1.0's SERIALFUNC: the state's flat form */
Datum
crm_clv_rows_serialize(PG_FUNCTION_ARGS)
{
	clv_agg_context(fcinfo, "crm_clv_rows_serialize");
	if (!is_expanded_state(PG_GETARG_DATUM(0)))
		elog(ERROR, "crm_clv_rows_serialize called without a CLV state");
	PG_RETURN_BYTEA_P(clv_rows_flatten(((ClvState *) DatumGetEOHP(PG_GETARG_DATUM(0)))->rows));
}

PG_FUNCTION_INFO_V1(crm_clv_rows_deserialize);
/* 0.1.0's DESERIALFUNC: a state from its flat form */
Datum
crm_clv_rows_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = clv_agg_context(fcinfo, "crm_clv_rows_deserialize");

	PG_RETURN_DATUM(state_datum(state_from_flat(PG_GETARG_DATUM(0), cxt)));
}

/* The state at the final function; an empty input is an error */
ClvRows *
clv_final_state(FunctionCallInfo fcinfo, const char *what)
{
	MemoryContext cxt = clv_agg_context(fcinfo, what);
	ClvRows    *st = NULL;

	if (!PG_ARGISNULL(0) && is_expanded_state(PG_GETARG_DATUM(0)))
	{
		ClvState   *cs = (ClvState *) DatumGetEOHP(PG_GETARG_DATUM(0));

		/* the final functions sort the rows in place: the same rows, but not the same memory */
		state_changed(cs);
		st = cs->rows;
	}
	else if (!PG_ARGISNULL(0))
		st = state_from_flat(PG_GETARG_DATUM(0), cxt)->rows;
	if (st == NULL || clv_rows_empty(st))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot fit %s: no customers in the input", what),
				 errdetail("%lld rows were read, none of them usable (NULL, zero weight, or no repeat purchase for a spend model).",
						   (long long) (st ? st->rows_in : 0)),
				 errhint("Fit the model over a non-empty set of customers.")));
	return st;
}
