/*
 * lifecycle_promote.c
 *		The automatic lifecycle transitions, decided here: MQL and SQL by the
 *		policy's score thresholds and sales-acceptance activities, opportunity
 *		by an open deal, customer by a won deal or an order (reviving churned
 *		contacts when the policy says so), churned by a customer's inactivity.
 *
 * Each runs as one set-based UPDATE through run_move (lifecycle.c), so the
 * guard and the transition log see crm's own moves for what they are.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "crm.h"
#include "lifecycle.h"
#include "shard.h"

/*
 * When each contact's event happened: sql returns one row of two arrays,
 * contact ids and times (NULL, NULL for none), copied out of SPI's result
 */
static MoveTimes
times_of(const char *sql, int nargs, Oid *types, Datum *args)
{
	MoveTimes	t = {0};
	bool		isnull;
	Datum		ids;

	if (SPI_execute_with_args(colocated_sql(sql), nargs, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the times of the events");
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return t;
	t.ids = PointerGetDatum(PG_DETOAST_DATUM_COPY(ids));
	t.at = PointerGetDatum(PG_DETOAST_DATUM_COPY(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)));
	return t;
}

/*
 * Promote the given contacts whose scores pass the policy's SQL or MQL
 * rule.  Scores are read set-based with crm.scores_of as of "at", only for contacts in a stage the rules can move; each move is dated
 * by times.  Returns how many moved.
 */
static uint64
promote_by_scores(Datum ids, TimestampTz at, MoveTimes times)
{
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		args[2] = {ids, TimestampTzGetDatum(at)};
	bool		isnull;
	uint64		n;

	/*
	 * Narrow the ids first, in a statement of its own: an id array that is a
	 * column of a relation in the UPDATE's FROM would be copied into every
	 * joined row (UPDATE keeps whole rows of its other relations), which is
	 * quadratic in the number of contacts.  Not read-only: the rows the
	 * triggering statement inserted must be visible.
	 */
	if (SPI_execute_with_args(colocated_sql("SELECT array_agg(k.contact_id) FROM {crm.contact} k "
									  "  JOIN unnest($1) u(id) ON k.contact_id = u.id "
									  " WHERE k.stage IN ('subscriber', 'lead', 'mql')"),
							  1, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read contact stages");
	args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return 0;

	/* one statement for both rules: the scores are read once */
	n = run_move_at("WITH p AS (SELECT * FROM crm.policy()), "
					"     e AS (SELECT s.* FROM crm.scores_of($1, (SELECT p.engagement_group FROM p), $2) s), "
					"     f AS (SELECT s.* FROM crm.scores_of($1, (SELECT p.fit_group FROM p), $2) s), "
					"     target AS ( "
					"       SELECT e.contact_id, "
					"              CASE WHEN (p.sql_min_engagement IS NOT NULL OR p.sql_min_fit IS NOT NULL) "
					"                    AND (p.sql_min_engagement IS NULL OR e.score >= p.sql_min_engagement) "
					"                    AND (p.sql_min_fit IS NULL OR f.score >= p.sql_min_fit) THEN 'sql' "
					"                   WHEN (p.mql_min_engagement IS NOT NULL OR p.mql_min_fit IS NOT NULL) "
					"                    AND (p.mql_min_engagement IS NULL OR e.score >= p.mql_min_engagement) "
					"                    AND (p.mql_min_fit IS NULL OR f.score >= p.mql_min_fit) THEN 'mql' "
					"              END::crm.stage AS stage "
					"         FROM e JOIN f USING (contact_id), p) "
					"UPDATE {crm.contact} t SET stage = target.stage FROM target "
					" WHERE t.contact_id = target.contact_id AND target.stage IS NOT NULL "
					"   AND t.stage IN ('subscriber', 'lead', 'mql') AND t.stage < target.stage",
					2, types, args, NULL, true, false, times);
	return n;
}

/*
 * A move caused by deals or orders: which rows of the source cause it, the
 * time of the event (the first one; for a revival, the last), from which
 * stages to which, and why
 */
typedef struct EventMove
{
	const char *rows;			/* condition on x (the source) and p (the policy) */
	const char *time;			/* aggregate over x: when it happened */
	const char *from;			/* the stages it moves out of */
	const char *to;
	const char *reason;
	bool		force;
} EventMove;

#define BEFORE_OPPORTUNITY "'subscriber', 'lead', 'mql', 'sql'"
#define BEFORE_CUSTOMER BEFORE_OPPORTUNITY ", 'opportunity'"

static const EventMove deal_moves[] = {
	/* every deal was open from its creation, whatever it is now */
	{"true", "min(x.created_at)", BEFORE_OPPORTUNITY, "opportunity", REASON_DEAL_OPENED, false},
	{"x.status = 'won'", "min(x.closed_at)", BEFORE_CUSTOMER, "customer", REASON_DEAL_WON, false},
	{"x.status = 'won' AND p.revive_churned", "max(x.closed_at)", "'churned'", "customer", REASON_DEAL_REVIVED, true},
};
static const EventMove activity_moves[] = {
	{"x.kind = ANY(p.sql_acceptance_kinds)", "min(x.occurred_at)", "'subscriber', 'lead', 'mql'", "sql",
	 REASON_ACCEPTANCE, false},
};
static const EventMove order_moves[] = {
	{"true", "min(x.ordered_at)", BEFORE_CUSTOMER, "customer", REASON_ORDER, false},
	{"p.revive_churned", "max(x.ordered_at)", "'churned'", "customer", REASON_ORDER_REVIVED, true},
};

/* Run moves whose causes are rows of source (SQL with nargs int8[] args) */
static uint64
run_event_moves(const EventMove *moves, int nmoves, const char *source, int nargs, Datum *args)
{
	Oid			types[1] = {INT8ARRAYOID};
	StringInfoData sql;
	uint64		n = 0;

	initStringInfo(&sql);
	for (int i = 0; i < nmoves; i++)
	{
		MoveTimes	times;
		Datum		ids[1];

		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "SELECT array_agg(s.contact_id), array_agg(s.t) FROM ( "
						 "SELECT x.contact_id, %s AS t FROM %s x, crm.policy() p WHERE %s GROUP BY x.contact_id) s",
						 moves[i].time, source, moves[i].rows);
		times = times_of(sql.data, nargs, types, args);
		if (times.ids == (Datum) 0)
			continue;
		ids[0] = times.ids;
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE {crm.contact} t SET stage = '%s' FROM unnest($1) u(id) "
						 " WHERE t.contact_id = u.id AND t.stage IN (%s)", moves[i].to, moves[i].from);
		n += run_move_at(sql.data, 1, types, ids, moves[i].reason, true, moves[i].force, times);
	}
	return n;
}

/* Open deals make opportunities; won deals and orders make customers */
static uint64
promote_by_deals_and_orders(const char *deals, const char *orders, int nargs, Datum *args)
{
	uint64		n = 0;

	if (deals)
		n += run_event_moves(deal_moves, lengthof(deal_moves), deals, nargs, args);
	if (orders)
		n += run_event_moves(order_moves, lengthof(order_moves), orders, nargs, args);
	return n;
}

static void promote_touched(const char *table, Datum ids, bool inserted);
static const MoveTimes no_times = {0};

/*
 * Score promotions caused by new activities: the scores as of the latest
 * of them (not later than now), each contact's move dated by its latest
 * activity then, so that events loaded one at a time in time order give the
 * history live traffic would have.  Older activities arriving late can also
 * lift today's score: a second pass at now, dated now, for those.
 */
static void
promote_by_activity_scores(Datum ids)
{
	MoveTimes	times;
	bool		isnull;
	Datum		at;

	if (SPI_execute("SELECT least(max(occurred_at), now()) FROM new_rows", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the transition table");
	at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return;
	times = times_of("SELECT array_agg(s.contact_id), array_agg(s.t) FROM ( "
					 "SELECT contact_id, max(occurred_at) AS t FROM new_rows "
					 " WHERE occurred_at <= now() GROUP BY contact_id) s", 0, NULL, NULL);
	promote_by_scores(ids, DatumGetTimestampTz(at), times);
	if (DatumGetTimestampTz(at) < GetCurrentTransactionStartTimestamp())
		promote_by_scores(ids, GetCurrentTransactionStartTimestamp(), no_times);
}

/* AFTER INSERT/UPDATE FOR EACH STATEMENT: apply the policy to touched contacts */
PG_FUNCTION_INFO_V1(crm_stage_promote);
Datum
crm_stage_promote(PG_FUNCTION_ARGS)
{
	int			pinned;
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *table;
	Datum		ids;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_newtable == NULL)
		elog(ERROR, "crm.stage_promote() must be a statement trigger with a NEW TABLE");
	/* our own stage updates fire the contact triggers again: nothing to do */
	if (move_running())
		return PointerGetDatum(NULL);
	/* a dump's stages are loaded as they were (src/restore.c) */
	if (loading_dump)
		return PointerGetDatum(NULL);
	table = trigger_table(td);

	pinned = spi_connect_pinned();
	SPI_register_trigger_data(td);
	if (SPI_execute("SELECT array_agg(DISTINCT contact_id) FROM new_rows", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the transition table");
	{
		bool		isnull;

		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
		{
			spi_finish_pinned(pinned);
			return PointerGetDatum(NULL);
		}
		ids = PointerGetDatum(PG_DETOAST_DATUM_COPY(ids));
	}

	WITH_SHARD_SCOPE(td, {
		promote_touched(table, ids, TRIGGER_FIRED_BY_INSERT(td->tg_event));
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/*
 * The contacts of the statement with an event older than a transition the
 * policy made: moved by the set-based rules, such an event would be dated
 * at that transition, so their history is rebuilt from the events instead.
 * Not when the event is also older than a row no rule wrote other than the
 * first (a manual move, a merge): that decision stands, and the move comes
 * after it.  time: the
 * column of new_rows that dates the event.
 */
static Datum
late_contacts(const char *time)
{
	StringInfoData sql;
	bool		isnull;
	Datum		ids;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT array_agg(n.contact_id) FROM ( "
					 "SELECT contact_id, min(%s) AS t FROM new_rows GROUP BY contact_id) n "
					 " WHERE EXISTS (SELECT 1 FROM {crm.stage_history} h WHERE h.contact_id = n.contact_id "
					 "                 AND h.changed_at > n.t AND h.automatic) "
					 "   AND NOT EXISTS (SELECT 1 FROM {crm.stage_history} h WHERE h.contact_id = n.contact_id "
					 "                     AND h.changed_at > n.t AND NOT h.automatic AND h.from_stage IS NOT NULL)", time);
	if (SPI_execute(colocated_sql(sql.data), false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not compare the events with the history");
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(ids));
}

/*
 * The statement's contacts split in two: those whose history is rebuilt
 * from the events, and the rest, which the set-based rules move.  Rebuilt:
 * the contacts with several activities in the statement that may move,
 * that is still in a stage the activity rules move, with a sales-acceptance
 * activity or positive points adding up to a threshold (no score of theirs
 * ever went higher).  The set-based rules would date a score promotion at
 * the contact's last activity of the statement (and miss one whose score
 * has decayed below the threshold since); the rebuild dates it at the
 * activity that crossed it.  Not those with a row no rule wrote after the
 * activities (a manual move, a merge: the moves come after it, as
 * late_contacts says).  Of the rest, the score rules need to read only
 * those whose points can reach a threshold (unless a rule needs no
 * engagement).  Not read-only: the statement's rows and scores must be
 * visible.
 */
typedef struct BatchSplit
{
	Datum		rebuild;		/* int8[], or 0 for none */
	Datum		rest;
	Datum		scored;			/* of the rest, those a score rule may move */
} BatchSplit;

/* Column col of SPI's one-row result, an array copied out (0 for NULL) */
static Datum
array_column(int col)
{
	bool		isnull;
	Datum		a = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(a));
}

static BatchSplit
split_batch(void)
{
	BatchSplit	b;

	if (SPI_execute(colocated_sql(
		"SELECT array_agg(n.contact_id) FILTER (WHERE c.rebuild), "
		"       array_agg(n.contact_id) FILTER (WHERE c.rebuild IS NOT TRUE), "
		"       array_agg(n.contact_id) FILTER (WHERE c.rebuild IS NOT TRUE AND c.may_score) FROM ( "
		"  SELECT x.contact_id, count(*) AS n, min(x.occurred_at) AS t, "
		"         bool_or(x.kind = ANY(p.sql_acceptance_kinds)) AS accepted "
		"    FROM new_rows x, crm.policy() p GROUP BY x.contact_id) n "
		"JOIN {crm.contact} k ON k.contact_id = n.contact_id, crm.policy() p, "
		"LATERAL (SELECT k.stage IN ('subscriber', 'lead', 'mql') AS movable) m, "
		"LATERAL (SELECT CASE WHEN m.movable THEN "
		"           (SELECT coalesce(sum(greatest(l.raw_points, 0)), 0) FROM {crm.score_ledger} l "
		"             WHERE l.contact_id = k.contact_id AND l.score_group = p.engagement_group) "
		"         + (SELECT coalesce(sum(greatest(e.points, 0)), 0) FROM {crm.score_event} e "
		"             WHERE e.contact_id = k.contact_id AND e.score_group = p.engagement_group) "
		"           >= least(p.mql_min_engagement, p.sql_min_engagement) END AS enough) s, "
		"LATERAL (SELECT n.n > 1 AND m.movable AND (n.accepted OR s.enough) "
		"   AND NOT EXISTS (SELECT 1 FROM {crm.stage_history} h WHERE h.contact_id = n.contact_id "
		"                     AND h.changed_at > n.t AND NOT h.automatic AND h.from_stage IS NOT NULL) AS rebuild, "
		"   m.movable AND (p.mql_min_engagement IS NULL OR p.sql_min_engagement IS NULL OR s.enough) AS may_score) c"),
		false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the statement's contacts");
	b.rebuild = array_column(1);
	b.rest = array_column(2);
	b.scored = array_column(3);
	return b;
}

/* Rebuild the union of two id lists (either 0 for none) */
static void
rebuild_either(Datum a, Datum b)
{
	if (a != (Datum) 0)
		rebuild_contacts(a);
	if (b != (Datum) 0)
		rebuild_contacts(b);
}

/* The policy for the contacts a statement on the logical table touched */
static void
promote_touched(const char *table, Datum ids, bool inserted)
{
	if (strcmp(table, "activity") == 0)
	{
		Datum		late = late_contacts("occurred_at");
		BatchSplit	batch = split_batch();

		if (batch.rest != (Datum) 0)
		{
			run_event_moves(activity_moves, lengthof(activity_moves),
							"(SELECT * FROM new_rows WHERE contact_id = ANY($1))", 1, &batch.rest);
		}
		if (batch.scored != (Datum) 0)
			promote_by_activity_scores(batch.scored);
		rebuild_either(late, batch.rebuild);
	}
	else if (strcmp(table, "deal") == 0)
	{
		/* a new deal was opened at created_at; an updated one matters if closed */
		Datum		late = late_contacts(inserted ? "least(created_at, closed_at)" : "closed_at");

		promote_by_deals_and_orders("new_rows", NULL, 0, NULL);
		rebuild_either(late, (Datum) 0);
	}
	else if (strcmp(table, "order") == 0)
	{
		Datum		late = late_contacts("ordered_at");

		promote_by_deals_and_orders(NULL, "new_rows", 0, NULL);
		rebuild_either(late, (Datum) 0);
	}
	else if (strcmp(table, "contact") == 0 && inserted)
		/* a new contact's fit can make it an MQL from its creation */
		promote_by_scores(ids, GetCurrentTransactionStartTimestamp(),
						  times_of("SELECT array_agg(contact_id), array_agg(least(created_at, now())) "
								   "  FROM new_rows", 0, NULL, NULL));
	else if (strcmp(table, "contact") == 0)
		promote_by_scores(ids, GetCurrentTransactionStartTimestamp(), no_times);
}

/* Re-evaluate the policy for some or all contacts */
PG_FUNCTION_INFO_V1(crm_apply_lifecycle);
Datum
crm_apply_lifecycle(PG_FUNCTION_ARGS)
{
	int			pinned;
	Datum		ids;
	uint64		n;
	bool		isnull;

	pinned = spi_connect_pinned();
	if (PG_ARGISNULL(0))
	{
		SPI_execute(colocated_sql("SELECT coalesce(array_agg(contact_id), '{}') FROM {crm.contact}"), true, 0);
		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		ids = PointerGetDatum(PG_DETOAST_DATUM_COPY(ids));
	}
	else
		ids = PG_GETARG_DATUM(0);
	{
		Datum		args[1] = {ids};

		n = run_event_moves(activity_moves, lengthof(activity_moves),
							"(SELECT * FROM {crm.activity} WHERE contact_id = ANY($1))", 1, args);
		n += promote_by_scores(ids, GetCurrentTransactionStartTimestamp(), no_times);
		n += promote_by_deals_and_orders("(SELECT * FROM {crm.deal} WHERE contact_id = ANY($1))",
										 "(SELECT * FROM {crm.order} WHERE contact_id = ANY($1))",
										 1, args);
	}
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) n);
}

/* Is crm.churn_contacts there? (not in 0.1.0's SQL) */
static bool
churn_contacts_installed(void)
{
	Oid			argtypes[3] = {INT8OID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};

	return OidIsValid(LookupFuncName(list_make2(makeString("crm"), makeString("churn_contacts")),
									 3, argtypes, true));
}

/* Customers without an order (or won deal) inside the churn window */
PG_FUNCTION_INFO_V1(crm_detect_churn);
Datum
crm_detect_churn(PG_FUNCTION_ARGS)
{
	int			pinned;
	Datum		args[1] = {PG_GETARG_DATUM(0)};
	Oid			types[1] = {TIMESTAMPTZOID};
	uint64		n;
	MoveTimes	times;

	if (TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite time")));
	pinned = spi_connect_pinned();
	/*
	 * Each churn is dated at the end of the customer's inactivity window:
	 * the last purchase (an order or a won deal) plus churn_after, no later
	 * than as_of (a customer with no purchase on record: as_of)
	 */
	times = times_of("SELECT array_agg(s.contact_id), array_agg(s.t) FROM ( "
					 "SELECT t.contact_id, least($1, coalesce(greatest( "
					 "         (SELECT max(o.ordered_at) FROM {crm.order} o WHERE o.contact_id = t.contact_id AND o.ordered_at <= $1), "
					 "         (SELECT max(d.closed_at) FROM {crm.deal} d WHERE d.contact_id = t.contact_id "
					 "             AND d.status = 'won' AND d.closed_at <= $1)) + p.churn_after, $1)) AS t "
					 "  FROM {crm.contact} t, crm.policy() p "
					 " WHERE t.stage IN ('customer', 'evangelist') "
					 "   AND NOT EXISTS (SELECT 1 FROM {crm.order} o WHERE o.contact_id = t.contact_id "
					 "                      AND o.ordered_at > $1 - p.churn_after AND o.ordered_at <= $1) "
					 "   AND NOT EXISTS (SELECT 1 FROM {crm.deal} d WHERE d.contact_id = t.contact_id "
					 "                      AND d.status = 'won' AND d.closed_at > $1 - p.churn_after "
					 "                      AND d.closed_at <= $1)) s",
					 1, types, args);
	/*
	 * The moves run through crm.churn_contacts, in a query Citus pushes to
	 * the contacts' shards: the move's reason and time must be known in
	 * the backend whose triggers log it, a worker's on Citus
	 */
	if (times.ids == (Datum) 0)
		n = 0;
	else if (!churn_contacts_installed())
	{
		/* 0.1.0's SQL, run by this library before its update: one UPDATE */
		Datum		ids[1] = {times.ids};
		Oid			idtypes[1] = {INT8ARRAYOID};

		n = run_move_at("UPDATE {crm.contact} t SET stage = 'churned' FROM unnest($1) u(id) "
						" WHERE t.contact_id = u.id AND t.stage IN ('customer', 'evangelist')",
						1, idtypes, ids, REASON_CHURN, true, false, times);
	}
	else
	{
		Datum		moves[2] = {times.ids, times.at};
		Oid			movetypes[2] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID};
		bool		isnull;

		if (SPI_execute_with_args("SELECT coalesce(sum(crm.churn_contacts(t.contact_id, $1, $2)), 0)::bigint "
								  "  FROM crm.contact t "
								  " WHERE t.contact_id = ANY ($1) AND t.stage IN ('customer', 'evangelist')",
								  2, movetypes, moves, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not move churned customers");
		n = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) n);
}

/*
 * crm.detect_churn's move, run where the contacts' rows are: called per
 * contact in a query Citus pushes to the shards, the first call of a shard
 * moves every listed contact of that shard (one UPDATE; on one node, the
 * first call moves them all) at its time, and returns how many moved
 */
PG_FUNCTION_INFO_V1(crm_churn_contacts);
Datum
crm_churn_contacts(PG_FUNCTION_ARGS)
{
	int			pinned;
	int64		here = PG_GETARG_INT64(0);
	Datum		ids = PG_GETARG_DATUM(1);
	MoveTimes	times = {PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
	Oid			types[1] = {INT8ARRAYOID};
	ArrayType  *idarr = PG_GETARG_ARRAYTYPE_P(1);
	ArrayType  *timearr = PG_GETARG_ARRAYTYPE_P(2);
	volatile uint64 n = 0;

	if (ArrayGetNItems(ARR_NDIM(idarr), ARR_DIMS(idarr)) != ArrayGetNItems(ARR_NDIM(timearr), ARR_DIMS(timearr)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("contact_ids and times must have as many elements")));
	pinned = spi_connect_pinned();
	WITH_CONTACT_SCOPE(here, {
		/* a time later than now is logged at the clock, as any move (crm.stage_log) */
		if (shard_first_call(fcinfo, shard_scope_shard()))
			n = run_move_at("UPDATE {crm.contact} t SET stage = 'churned' FROM unnest($1) u(id) "
							" WHERE t.contact_id = u.id AND t.stage IN ('customer', 'evangelist')",
							1, types, &ids, REASON_CHURN, true, false, times);
	});
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) n);
}
