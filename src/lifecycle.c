/*
 * lifecycle.c
 *		Lifecycle stages: the stage facts (the one place the order of stages is
 *		written), the forward-only guard, the transition log and manual moves.
 *		The automatic transitions are in lifecycle_promote.c.
 *
 * Who may move a stage backwards is decided here, not by a setting a user
 * could change: crm.set_stage and the automation set a backend-local move
 * context around their own UPDATE, and the guard trigger reads it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "crm.h"
#include "lifecycle.h"
#include "shard.h"

#define ERRCODE_CRM_BACKWARD_STAGE	MAKE_SQLSTATE('C','R','0','0','1')

/*
 * The stages, with the two orders crm uses.  The funnel rank decides which
 * moves are forward (exits negative: out of one is never forward).  The
 * merge rank decides which stage a merge keeps: the more advanced, with
 * churned just below customer (it was one) and disqualified lowest.
 */
/* Funnel ranks of the stages the guard's rules name; exits are negative */
#define RANK_CUSTOMER		5
#define RANK_DISQUALIFIED	(-1)
#define RANK_CHURNED		(-2)

typedef struct StageFacts
{
	const char *label;
	int			funnel;
	float4		merge;
} StageFacts;

static const StageFacts stage_facts[] = {
	{"subscriber", 0, 1},
	{"lead", 1, 2},
	{"mql", 2, 3},
	{"sql", 3, 4},
	{"opportunity", 4, 5},
	{"customer", RANK_CUSTOMER, 6},
	{"evangelist", 6, 7},
	{"disqualified", RANK_DISQUALIFIED, 0},
	{"churned", RANK_CHURNED, 5.5},
};

/* Who is moving stages right now, set only by run_move */
typedef struct StageMove
{
	const char *reason;			/* NULL with automatic: the score rules */
	bool		automatic;
	bool		force;
	MoveTimes	times;			/* when each move happened (none: now) */
	bool		unlogged;		/* the mover writes the history itself */
} StageMove;

static StageMove *current_move = NULL;

/* Move depth: our own UPDATEs must not re-run the promotion triggers */
static int	move_depth = 0;

static const StageFacts *
stage_facts_of(const char *label)
{
	for (int i = 0; i < lengthof(stage_facts); i++)
		if (strcmp(label, stage_facts[i].label) == 0)
			return &stage_facts[i];
	elog(ERROR, "unknown lifecycle stage \"%s\"", label);
	return NULL;				/* keep the compiler quiet */
}

/* Funnel rank of a stage label (lifecycle.h) */
int
stage_funnel_rank(const char *label)
{
	return stage_facts_of(label)->funnel;
}

/* Label of a crm.stage enum value */
static char *
stage_label(Datum value)
{
	HeapTuple	tup = SearchSysCache1(ENUMOID, value);
	char	   *label;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for enum value %u", DatumGetObjectId(value));
	label = pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel));
	ReleaseSysCache(tup);
	return label;
}

/* Is a move between two funnel ranks forward (allowed without force)? */
static bool
move_is_forward(int from, int to)
{
	if (from >= 0 && to >= 0)
		return to > from;
	if (to == RANK_DISQUALIFIED)
		return from >= 0 && from < RANK_CUSTOMER;
	if (to == RANK_CHURNED)
		return from >= RANK_CUSTOMER;
	return false;				/* out of an exit */
}

/* Would the guard let a move between two stage labels through? (lifecycle.h) */
bool
stage_move_forward(const char *from, const char *to)
{
	return move_is_forward(stage_funnel_rank(from), stage_funnel_rank(to));
}

bool
move_running(void)
{
	return move_depth > 0;
}

/* Run one UPDATE of stages with a move context, at the clock (lifecycle.h) */
uint64
run_move(const char *sql, int nargs, Oid *types, Datum *values, const char *reason,
		 bool automatic, bool force)
{
	MoveTimes	now = {0};

	return run_move_at(sql, nargs, types, values, reason, automatic, force, now);
}

/* Run one UPDATE of stages with a move context */
static uint64
run_stage_update(const char *sql, int nargs, Oid *types, Datum *values, StageMove move)
{
	StageMove  *saved = current_move;
	uint64		n;

	current_move = &move;
	move_depth++;
	PG_TRY();
	{
		if (SPI_execute_with_args(colocated_sql(sql), nargs, types, values, NULL, false, 0) < 0)
			elog(ERROR, "could not run lifecycle update");
		n = SPI_processed;
	}
	PG_FINALLY();
	{
		current_move = saved;
		move_depth--;
	}
	PG_END_TRY();
	return n;
}

/* Run one UPDATE of stages with a move context, each contact's move at its time */
uint64
run_move_at(const char *sql, int nargs, Oid *types, Datum *values, const char *reason,
			bool automatic, bool force, MoveTimes times)
{
	StageMove	move = {reason, automatic, force, times, false};

	return run_stage_update(sql, nargs, types, values, move);
}

/* Set stages whose history the caller writes: forced, not logged (lifecycle.h) */
uint64
run_move_unlogged(const char *sql, int nargs, Oid *types, Datum *values)
{
	StageMove	move = {NULL, true, true, {0}, true};

	return run_stage_update(sql, nargs, types, values, move);
}

/* BEFORE UPDATE OF stage FOR EACH ROW on crm.contact */
PG_FUNCTION_INFO_V1(crm_stage_guard);
Datum
crm_stage_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	int			attno;
	bool		oldnull,
				newnull;
	Datum		oldv,
				newv;
	char	   *from,
			   *to;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		elog(ERROR, "crm.stage_guard() must be a BEFORE UPDATE row trigger on crm.contact");
	desc = RelationGetDescr(td->tg_relation);
	attno = SPI_fnumber(desc, "stage");
	oldv = heap_getattr(td->tg_trigtuple, attno, desc, &oldnull);
	newv = heap_getattr(td->tg_newtuple, attno, desc, &newnull);
	if (oldnull || newnull || DatumGetObjectId(oldv) == DatumGetObjectId(newv))
		return PointerGetDatum(td->tg_newtuple);
	if (current_move != NULL && current_move->force)
		return PointerGetDatum(td->tg_newtuple);

	from = stage_label(oldv);
	to = stage_label(newv);
	if (!move_is_forward(stage_funnel_rank(from), stage_funnel_rank(to)))
	{
		bool		isnull;
		int64		id = DatumGetInt64(heap_getattr(td->tg_trigtuple, SPI_fnumber(desc, "contact_id"),
												   desc, &isnull));

		ereport(ERROR,
				(errcode(ERRCODE_CRM_BACKWARD_STAGE),
				 errmsg("cannot move contact %lld back from stage \"%s\" to \"%s\"",
						(long long) id, from, to),
				 errdetail("Lifecycle stages only move forward (subscriber, lead, mql, sql, opportunity, customer, evangelist); disqualified and churned are exits."),
				 errhint("To move it back on purpose, call crm.set_stage(%lld, '%s', reason => 'why', force => true); the move is logged.",
						 (long long) id, to)));
	}
	return PointerGetDatum(td->tg_newtuple);
}

/* AFTER INSERT/UPDATE FOR EACH STATEMENT on crm.contact: log transitions */
PG_FUNCTION_INFO_V1(crm_stage_log);
Datum
crm_stage_log(PG_FUNCTION_ARGS)
{
	int			pinned;
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *sql;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', 'n', 'n'};
	Oid			types[5] = {TEXTOID, BOOLOID, BOOLOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		elog(ERROR, "crm.stage_log() must be a statement trigger on crm.contact");
	/* a dump brings its history with it (src/restore.c) */
	if (loading_dump || (current_move != NULL && current_move->unlogged))
		return PointerGetDatum(NULL);
	/*
	 * history_id from the identity's sequence by name: a Citus shard has no
	 * identity of its own (the node's copy of the sequence has its own range)
	 */
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		sql = "INSERT INTO {crm.stage_history} (history_id, contact_id, from_stage, to_stage, changed_at, reason, automatic, forced) "
			"SELECT nextval('crm.stage_history_history_id_seq'), s.* FROM ( "
			"SELECT n.contact_id, NULL::crm.stage, n.stage, least(n.created_at, now()), coalesce($1, 'created'), $2, $3 "
			"  FROM new_rows n ORDER BY n.contact_id) s";
	else
		/*
		 * The move's time is the event's (the mover says it per contact),
		 * never later than the clock nor earlier than the contact's
		 * previous transition; otherwise the clock (later than any
		 * transition already written); recorded_at (the clock) by
		 * its default, as the 0.1.0 schema has no such column
		 */
		sql = "INSERT INTO {crm.stage_history} (history_id, contact_id, from_stage, to_stage, changed_at, reason, automatic, forced) "
			"SELECT nextval('crm.stage_history_history_id_seq'), s.* FROM ( "
			"SELECT n.contact_id, o.stage, n.stage, "
			"       CASE WHEN ev.at IS NULL THEN clock_timestamp() "
			"            ELSE greatest(least(ev.at, clock_timestamp()), "
			"                          (SELECT h.changed_at FROM {crm.stage_history} h WHERE h.contact_id = n.contact_id "
			"                            ORDER BY h.changed_at DESC, h.history_id DESC LIMIT 1)) END, "
			"       CASE WHEN $1 IS NOT NULL OR NOT $2 THEN $1 "
			"            WHEN n.stage = 'sql' THEN '" REASON_SQL_SCORE "' "
			"            ELSE '" REASON_MQL_SCORE "' END, $2, $3 "
			"  FROM old_rows o JOIN new_rows n ON n.contact_id = o.contact_id "
			"  LEFT JOIN ROWS FROM (unnest($4), unnest($5)) ev(id, at) ON ev.id = n.contact_id "
			" WHERE o.stage IS DISTINCT FROM n.stage ORDER BY n.contact_id) s";
	if (current_move != NULL && current_move->reason != NULL)
		args[0] = CStringGetTextDatum(current_move->reason);
	else
		nulls[0] = 'n';
	args[1] = BoolGetDatum(current_move != NULL && current_move->automatic);
	args[2] = BoolGetDatum(current_move != NULL && current_move->force);
	if (current_move != NULL && current_move->times.ids != (Datum) 0)
	{
		args[3] = current_move->times.ids;
		args[4] = current_move->times.at;
		nulls[3] = nulls[4] = ' ';
	}

	pinned = spi_connect_pinned();
	SPI_register_trigger_data(td);
	WITH_SHARD_SCOPE(td, {
		if (SPI_execute_with_args(colocated_sql(sql), 5, types, args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write crm.stage_history");
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/* One contact's move at a time, as MoveTimes (lifecycle.h) */
MoveTimes
move_time_of(int64 contact_id, TimestampTz at)
{
	Datum		id = Int64GetDatum(contact_id);
	Datum		a = TimestampTzGetDatum(at);
	MoveTimes	t;

	t.ids = PointerGetDatum(construct_array(&id, 1, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	t.at = PointerGetDatum(construct_array(&a, 1, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	return t;
}

/*
 * The time of a manual move (argument 4): none given, the clock (as any
 * move without an event); given, it must not be in the future nor before
 * the contact's last transition (which the caller has locked)
 */
static MoveTimes
manual_move_time(FunctionCallInfo fcinfo, int64 contact_id)
{
	TimestampTz at;
	Datum		id = Int64GetDatum(contact_id);
	Oid			types[1] = {INT8OID};
	MoveTimes	t = {0};
	bool		isnull;
	Datum		last;

	/* 0.1.0's crm.set_stage has no such argument */
	if (PG_NARGS() <= 4 || PG_ARGISNULL(4))
		return t;
	at = PG_GETARG_TIMESTAMPTZ(4);

	if (TIMESTAMP_NOT_FINITE(at) || at > GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the time of a stage move must be a finite time, not in the future"),
				 errhint("Pass at => the time the move happened, or leave it out for now.")));
	SPI_execute_with_args(colocated_sql("SELECT max(changed_at) FROM {crm.stage_history} WHERE contact_id = $1"),
						  1, types, &id, NULL, true, 1);
	last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull && at < DatumGetTimestampTz(last))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot date a stage move of contact %lld at %s, before its last transition at %s",
						(long long) contact_id, pstrdup(timestamptz_to_str(at)),
						pstrdup(timestamptz_to_str(DatumGetTimestampTz(last)))),
				 errhint("A history goes forward in time: date the move at or after that time.")));
	return move_time_of(contact_id, at);
}

/* Manual move; backward needs force and a reason */
PG_FUNCTION_INFO_V1(crm_set_stage);
Datum
crm_set_stage(PG_FUNCTION_ARGS)
{
	int			pinned;
	int64		contact_id;
	Datum		stage;
	char	   *reason = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	bool		force = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);
	Datum		args[2];
	Oid			types[2] = {INT8OID, InvalidOid};
	bool		isnull;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("contact_id and stage must not be NULL")));
	contact_id = PG_GETARG_INT64(0);
	stage = PG_GETARG_DATUM(1);
	if (force && (reason == NULL || reason[strspn(reason, " \t\n")] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a forced stage move needs a reason"),
				 errhint("Say why in the reason argument; it is kept in crm.stage_history.")));

	types[1] = get_fn_expr_argtype(fcinfo->flinfo, 1);
	args[0] = Int64GetDatum(contact_id);
	args[1] = stage;
	pinned = spi_connect_pinned();
	SPI_execute_with_args(colocated_sql("SELECT stage FROM {crm.contact} WHERE contact_id = $1 FOR UPDATE"),
						  1, types, args, NULL, false, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("contact %lld does not exist", (long long) contact_id)));
	if (DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) ==
		DatumGetObjectId(stage))
		ereport(NOTICE,
				(errmsg("contact %lld is already at stage \"%s\"", (long long) contact_id,
						stage_label(stage))));
	else
		run_move_at("UPDATE {crm.contact} SET stage = $2 WHERE contact_id = $1",
					2, types, args, reason, false, force, manual_move_time(fcinfo, contact_id));
	spi_finish_pinned(pinned);
	PG_RETURN_DATUM(stage);
}

/* Would the guard let this move through without force? (merges log it) */
PG_FUNCTION_INFO_V1(crm_stage_move_is_forward);
Datum
crm_stage_move_is_forward(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(move_is_forward(stage_funnel_rank(stage_label(PG_GETARG_DATUM(0))),
								   stage_funnel_rank(stage_label(PG_GETARG_DATUM(1)))));
}

/* How advanced a stage is for merges: crm.stage_rank */
PG_FUNCTION_INFO_V1(crm_stage_rank);
Datum
crm_stage_rank(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT4(stage_facts_of(stage_label(PG_GETARG_DATUM(0)))->merge);
}
