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
 * The unit must be a whole number of days.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "access/htup_details.h"
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
	int32		day;
	bool		isnull;
	Datum		amount;			/* numeric */
} SummaryTx;

typedef struct SummaryState
{
	int32		end_day;
	int32		unit_days;
	int			n;
	int			cap;
	SummaryTx  *tx;
} SummaryState;

/* Days of a unit interval; it must be a positive whole number of days */
static int32
unit_days(Interval *unit)
{
	int64		days;

	if (unit->month != 0 || unit->time % USECS_PER_DAY != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit must be a whole number of days"),
				 errdetail("Months have no fixed length and purchases merge by day."),
				 errhint("Use '1 day', '7 days' or '30 days'.")));
	days = unit->day + unit->time / USECS_PER_DAY;
	if (days <= 0 || days > 36500)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit must be between 1 and 36500 days, not %lld", (long long) days)));
	return (int32) days;
}

/* The date of a timestamptz in the session time zone */
static int32
day_of(Datum ts)
{
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(ts)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timestamps must be finite")));
	return DatumGetDateADT(DirectFunctionCall1(timestamptz_date, ts));
}

/* Append a transaction to the state */
static void
summary_push(SummaryState *st, int32 day, bool isnull, Datum amount)
{
	if (st->n == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 8;
		st->tx = st->tx ? repalloc(st->tx, sizeof(SummaryTx) * st->cap)
			: palloc(sizeof(SummaryTx) * st->cap);
	}
	st->tx[st->n].day = day;
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
	int32		end_day,
				ud;

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
	end_day = day_of(PG_GETARG_DATUM(3));
	ud = (PG_NARGS() > 4) ? unit_days(PG_GETARG_INTERVAL_P(4)) : 1;
	old = MemoryContextSwitchTo(aggcxt);
	if (st == NULL)
	{
		st = palloc0(sizeof(SummaryState));
		st->end_day = end_day;
		st->unit_days = ud;
	}
	else if (st->end_day != end_day || st->unit_days != ud)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observation end and unit must be the same for all rows of a customer")));
	summary_push(st, day_of(PG_GETARG_DATUM(1)), PG_ARGISNULL(2), PG_GETARG_DATUM(2));
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* Order transactions by day */
static int
tx_cmp(const void *a, const void *b)
{
	const SummaryTx *x = a;
	const SummaryTx *y = b;

	return (x->day > y->day) - (x->day < y->day);
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
	int32		first = 0,
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
			if (st->tx[i].day <= st->end_day)
				tx[n++] = st->tx[i];
		if (n == 0)
			PG_RETURN_NULL();
		qsort(tx, n, sizeof(SummaryTx), tx_cmp);
		first = tx[0].day;
		for (i = 0; i < n; i++)
		{
			if (i == 0 || tx[i].day != prev)
				x++;
			prev = last = tx[i].day;
			if (tx[i].isnull)
				anynull = true;
			else if (tx[i].day != first)
				repeat_sum = DirectFunctionCall2(numeric_add, repeat_sum, tx[i].amount);
		}
	}
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int32GetDatum(x);
	values[1] = Float8GetDatum(x > 0 ? round2((double) (last - first) / st->unit_days) : 0.0);
	values[2] = Float8GetDatum(round2((double) (st->end_day - first) / st->unit_days));
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
		a->end_day = b->end_day;
		a->unit_days = b->unit_days;
	}
	else if (a->end_day != b->end_day || a->unit_days != b->unit_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("observation end and unit must be the same for all rows of a customer")));
	for (i = 0; i < b->n; i++)
		summary_push(a, b->tx[i].day, b->tx[i].isnull, b->tx[i].amount);
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
	pq_sendint32(&buf, st->end_day);
	pq_sendint32(&buf, st->unit_days);
	pq_sendint32(&buf, st->n);
	for (i = 0; i < st->n; i++)
	{
		pq_sendint32(&buf, st->tx[i].day);
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
	st->end_day = pq_getmsgint(&buf, 4);
	st->unit_days = pq_getmsgint(&buf, 4);
	n = pq_getmsgint(&buf, 4);
	for (i = 0; i < n; i++)
	{
		int32		day = pq_getmsgint(&buf, 4);
		bool		isnull = pq_getmsgbyte(&buf) != 0;
		Datum		amt = (Datum) 0;

		if (!isnull)
			amt = DirectFunctionCall3(numeric_in, CStringGetDatum(pq_getmsgstring(&buf)),
									  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		summary_push(st, day, isnull, amt);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}
