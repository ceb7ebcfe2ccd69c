/*
 * clv_summary.c
 *		crm.btyd_summary: one customer's transactions to the BTYD summary
 *		(frequency, recency, T, monetary_value).
 *
 * Conventions (those of the published CDNOW summary and of R BTYD):
 * - a transaction's day is its date in the session time zone; transactions
 *   on the same day merge into one (amounts summed); transactions after the
 *   observation end's day are ignored;
 * - frequency x = number of distinct days after the first one;
 * - recency = (last day - first day) / unit, 0 when x = 0;
 *   T = (observation end day - first day) / unit; both are rounded to two
 *   decimals, exactly as the published file (days / 7, two decimals);
 * - monetary_value = mean of the day-merged repeat transactions (the first
 *   day left out), 0 when x = 0, NULL when an amount is NULL.
 * A unit of a day or more must be whole days.  A unit shorter than a day
 * (an hour, 15 minutes) must divide the day, and takes the place of the day
 * above: transactions merge within one unit of local time (counted from
 * local midnight) and recency and T are whole numbers of units.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "clv.h"

typedef struct SummaryTx
{
	int64		period;			/* local day, or local unit when shorter */
	bool		isnull;
	Datum		amount;			/* numeric */
} SummaryTx;

typedef struct SummaryState
{
	int64		end_period;
	int64		period_usecs;	/* what merges: a day, or a shorter unit */
	int64		per_unit;		/* periods in a unit */
	int			n;
	int			cap;
	SummaryTx  *tx;
} SummaryState;

/*
 * Check a unit and set the merging period and the periods a unit holds:
 * a whole number of days (a day, counted in days), or a divisor of a day
 * (itself, counted in ones)
 */
static void
unit_periods(Interval *unit, int64 *period_usecs, int64 *per_unit)
{
	int64		usecs;

	if (unit->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit must not contain months"),
				 errdetail("Months have no fixed length."),
				 errhint("Use '30 days', '7 days', '1 day' or '1 hour'.")));
	if (unit->day < -36500 || unit->day > 36500 || unit->time < -36500 * USECS_PER_DAY
		|| unit->time > 36500 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit must be between 1 second and 36500 days")));
	usecs = unit->day * USECS_PER_DAY + unit->time;
	if (usecs < USECS_PER_SEC || usecs > 36500 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit must be between 1 second and 36500 days")));
	if (usecs >= USECS_PER_DAY)
	{
		if (usecs % USECS_PER_DAY != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a unit longer than a day must be a whole number of days"),
					 errdetail("Purchases merge by day; recency and T count days divided by the unit."),
					 errhint("Use '1 day', '7 days' or '30 days'.")));
		*period_usecs = USECS_PER_DAY;
		*per_unit = usecs / USECS_PER_DAY;
	}
	else
	{
		if (USECS_PER_DAY % usecs != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a unit shorter than a day must divide the day evenly"),
					 errdetail("Purchases merge within one unit counted from local midnight."),
					 errhint("Use '1 hour', '30 minutes' or '15 minutes'.")));
		*period_usecs = usecs;
		*per_unit = 1;
	}
}

/* The cached reading of a unit given as text */
typedef struct UnitText
{
	text	   *source;			/* the last text read, NULL before the first */
	Interval	unit;
} UnitText;

/*
 * The unit argument (4): an interval, or its text ('7 days') as a driver
 * binds a string parameter.  The text is read once per value, not per row.
 */
static Interval *
unit_arg(FunctionCallInfo fcinfo)
{
	UnitText   *cache = fcinfo->flinfo->fn_extra;
	text	   *t;

	if (get_fn_expr_argtype(fcinfo->flinfo, 4) != TEXTOID)
		return PG_GETARG_INTERVAL_P(4);
	t = PG_GETARG_TEXT_PP(4);
	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(UnitText));
	if (cache->source == NULL || VARSIZE_ANY_EXHDR(cache->source) != VARSIZE_ANY_EXHDR(t) ||
		memcmp(VARDATA_ANY(cache->source), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) != 0)
	{
		Interval   *unit = DatumGetIntervalP(DirectFunctionCall3(interval_in,
																CStringGetDatum(text_to_cstring(t)),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));

		cache->unit = *unit;
		if (cache->source)
			pfree(cache->source);
		cache->source = (text *) MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, VARSIZE_ANY(t));
		memcpy(cache->source, t, VARSIZE_ANY(t));
	}
	return &cache->unit;
}

/* The period of a timestamptz: its local time in the session time zone, floored */
static int64
period_of(Datum ts, int64 period_usecs)
{
	Timestamp	local;

	if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(ts)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timestamps must be finite")));
	local = DatumGetTimestamp(DirectFunctionCall1(timestamptz_timestamp, ts));
	/* floor division: local midnights are multiples of a day */
	return local / period_usecs - (local % period_usecs < 0);
}

/* Append a transaction to the state */
static void
summary_push(SummaryState *st, int64 period, bool isnull, Datum amount)
{
	if (st->n == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 8;
		st->tx = st->tx ? repalloc(st->tx, sizeof(SummaryTx) * st->cap)
			: palloc(sizeof(SummaryTx) * st->cap);
	}
	st->tx[st->n].period = period;
	st->tx[st->n].isnull = isnull;
	st->tx[st->n].amount = isnull ? (Datum) 0 : datumCopy(amount, false, -1);
	st->n++;
}

PG_FUNCTION_INFO_V1(crm_btyd_summary_trans);
/* Transition: remember (day, amount); rows with a NULL time are ignored */
Datum
crm_btyd_summary_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt,
				old;
	SummaryState *st = PG_ARGISNULL(0) ? NULL : (SummaryState *) PG_GETARG_POINTER(0);
	int64		period_usecs = USECS_PER_DAY,
				per_unit = 1,
				end_period;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_btyd_summary_trans called in non-aggregate context");
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	if (PG_ARGISNULL(3) || (PG_NARGS() > 4 && PG_ARGISNULL(4)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("observation end and unit must not be NULL")));
	if (!PG_ARGISNULL(2))
	{
		Numeric		amt = PG_GETARG_NUMERIC(2);

		if (numeric_is_nan(amt) || numeric_is_inf(amt) ||
			DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(amt),
											  DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("transaction amount must be a non-negative finite number"),
					 errhint("Leave refunds out of the transactions.")));
	}
	if (PG_NARGS() > 4)
		unit_periods(unit_arg(fcinfo), &period_usecs, &per_unit);
	end_period = period_of(PG_GETARG_DATUM(3), period_usecs);
	old = MemoryContextSwitchTo(aggcxt);
	if (st == NULL)
	{
		st = palloc0(sizeof(SummaryState));
		st->end_period = end_period;
		st->period_usecs = period_usecs;
		st->per_unit = per_unit;
	}
	else if (st->end_period != end_period || st->period_usecs != period_usecs || st->per_unit != per_unit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observation end and unit must be the same for all rows of a customer")));
	summary_push(st, period_of(PG_GETARG_DATUM(1), period_usecs), PG_ARGISNULL(2), PG_GETARG_DATUM(2));
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* Order transactions by period */
static int
tx_cmp(const void *a, const void *b)
{
	const SummaryTx *x = a;
	const SummaryTx *y = b;

	return (x->period > y->period) - (x->period < y->period);
}

/* Round to two decimals, the published convention */
static double
round2(double v)
{
	return round(v * 100.0) / 100.0;
}

PG_FUNCTION_INFO_V1(crm_btyd_summary_final);
/* Final: the (frequency, recency, t, monetary_value) composite, NULL when no purchase */
Datum
crm_btyd_summary_final(PG_FUNCTION_ARGS)
{
	SummaryState *st = PG_ARGISNULL(0) ? NULL : (SummaryState *) PG_GETARG_POINTER(0);
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false};
	int			i,
				n = 0,
				x = -1;
	int64		first = 0,
				last = 0,
				prev = 0;
	Datum		repeat_sum = DirectFunctionCall1(int4_numeric, Int32GetDatum(0));
	bool		anynull = false;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "crm_btyd_summary_final called in non-aggregate context");
	if (st == NULL)
		PG_RETURN_NULL();
	/* sort a copy: the final function must not change the state */
	{
		SummaryTx  *tx = palloc(sizeof(SummaryTx) * Max(st->n, 1));

		for (i = 0; i < st->n; i++)
			if (st->tx[i].period <= st->end_period)
				tx[n++] = st->tx[i];
		if (n == 0)
			PG_RETURN_NULL();
		qsort(tx, n, sizeof(SummaryTx), tx_cmp);
		first = tx[0].period;
		for (i = 0; i < n; i++)
		{
			if (i == 0 || tx[i].period != prev)
				x++;
			prev = last = tx[i].period;
			if (tx[i].isnull)
				anynull = true;
			else if (tx[i].period != first)
				repeat_sum = DirectFunctionCall2(numeric_add, repeat_sum, tx[i].amount);
		}
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int32GetDatum(x);
	values[1] = Float8GetDatum(x > 0 ? round2((double) (last - first) / st->per_unit) : 0.0);
	values[2] = Float8GetDatum(round2((double) (st->end_period - first) / st->per_unit));
	if (anynull)
		nulls[3] = true;
	else if (x == 0)
		values[3] = repeat_sum;
	else
		values[3] = DirectFunctionCall2(numeric_div, repeat_sum,
										DirectFunctionCall1(int4_numeric, Int32GetDatum(x)));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(crm_btyd_summary_combine);
/* Combine two partial summaries of one customer */
Datum
crm_btyd_summary_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt,
				old;
	SummaryState *a = PG_ARGISNULL(0) ? NULL : (SummaryState *) PG_GETARG_POINTER(0);
	SummaryState *b = PG_ARGISNULL(1) ? NULL : (SummaryState *) PG_GETARG_POINTER(1);
	int			i;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "crm_btyd_summary_combine called in non-aggregate context");
	if (b == NULL)
		PG_RETURN_POINTER(a);
	old = MemoryContextSwitchTo(aggcxt);
	if (a == NULL)
	{
		a = palloc0(sizeof(SummaryState));
		a->end_period = b->end_period;
		a->period_usecs = b->period_usecs;
		a->per_unit = b->per_unit;
	}
	else if (a->end_period != b->end_period || a->period_usecs != b->period_usecs
			 || a->per_unit != b->per_unit)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observation end and unit must be the same for all rows of a customer")));
	for (i = 0; i < b->n; i++)
		summary_push(a, b->tx[i].period, b->tx[i].isnull, b->tx[i].amount);
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(crm_btyd_summary_serialize);
/* Serialise a partial summary */
Datum
crm_btyd_summary_serialize(PG_FUNCTION_ARGS)
{
	SummaryState *st = (SummaryState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	int			i;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "crm_btyd_summary_serialize called in non-aggregate context");
	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->end_period);
	pq_sendint64(&buf, st->period_usecs);
	pq_sendint64(&buf, st->per_unit);
	pq_sendint32(&buf, st->n);
	for (i = 0; i < st->n; i++)
	{
		pq_sendint64(&buf, st->tx[i].period);
		pq_sendbyte(&buf, st->tx[i].isnull ? 1 : 0);
		if (!st->tx[i].isnull)
			pq_sendstring(&buf, DatumGetCString(DirectFunctionCall1(numeric_out, st->tx[i].amount)));
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(crm_btyd_summary_deserialize);
/* Rebuild a partial summary */
Datum
crm_btyd_summary_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	SummaryState *st = palloc0(sizeof(SummaryState));
	int			i,
				n;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "crm_btyd_summary_deserialize called in non-aggregate context");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	st->end_period = pq_getmsgint64(&buf);
	st->period_usecs = pq_getmsgint64(&buf);
	st->per_unit = pq_getmsgint64(&buf);
	n = pq_getmsgint(&buf, 4);
	if (st->period_usecs <= 0 || st->per_unit <= 0 || n < 0)
		elog(ERROR, "corrupt btyd_summary state");
	for (i = 0; i < n; i++)
	{
		int64		period = pq_getmsgint64(&buf);
		bool		isnull = pq_getmsgbyte(&buf) != 0;
		Datum		amt = (Datum) 0;

		if (!isnull)
			amt = DirectFunctionCall3(numeric_in, CStringGetDatum(pq_getmsgstring(&buf)),
									  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		summary_push(st, period, isnull, amt);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}
