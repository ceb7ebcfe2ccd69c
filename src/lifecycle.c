/*
 * lifecycle.c
 *		Lifecycle stages: the forward-only guard, the transition log, and the
 *		automatic promotions (MQL, SQL, opportunity, customer, churn).
 *
 * Who may move a stage backwards is decided here, not by a setting a user
 * could change: crm.set_stage and the automation set a backend-local move
 * context around their own UPDATE, and the guard trigger reads it.
 */
#include "postgres.h"

#include "access/htup_details.h"
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

#define ERRCODE_CRM_BACKWARD_STAGE	MAKE_SQLSTATE('C','R','0','0','1')

/* Who is moving stages right now, set only by this file's own callers */
typedef struct StageMove
{
	const char *reason;			/* NULL with automatic: the score rules */
	bool		automatic;
	bool		force;
} StageMove;

static StageMove *current_move = NULL;

/* Promotion depth: our own UPDATEs must not re-run the promotion triggers */
static int	promotion_depth = 0;

/* Funnel rank of a stage label; exits are negative */
static int
stage_rank(const char *label)
{
	static const char *const funnel[] = {"subscriber", "lead", "mql", "sql",
	"opportunity", "customer", "evangelist"};

	for (int i = 0; i < lengthof(funnel); i++)
		if (strcmp(label, funnel[i]) == 0)
			return i;
	if (strcmp(label, "disqualified") == 0)
		return -1;
	return -2;					/* churned */
}

#define RANK_CUSTOMER	5
#define RANK_DISQUALIFIED	(-1)
#define RANK_CHURNED	(-2)

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

/* Is a move between two stages forward (allowed without force)? */
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

/* Run one UPDATE of stages with a move context; returns rows changed */
static uint64
run_move(const char *sql, int nargs, Oid *types, Datum *values, const char *reason,
		 bool automatic, bool force)
{
	StageMove	move = {reason, automatic, force};
	StageMove  *saved = current_move;
	uint64		n;

	current_move = &move;
	promotion_depth++;
	PG_TRY();
	{
		if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0) < 0)
			elog(ERROR, "could not run lifecycle update");
		n = SPI_processed;
	}
	PG_FINALLY();
	{
		current_move = saved;
		promotion_depth--;
	}
	PG_END_TRY();
	return n;
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
	if (!move_is_forward(stage_rank(from), stage_rank(to)))
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
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	Oid			types[3] = {TEXTOID, BOOLOID, BOOLOID};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		elog(ERROR, "crm.stage_log() must be a statement trigger on crm.contact");
	/* a dump brings its history with it (src/restore.c) */
	if (loading_dump)
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		sql = "INSERT INTO crm.stage_history (contact_id, from_stage, to_stage, changed_at, reason, automatic, forced) "
			"SELECT n.contact_id, NULL, n.stage, least(n.created_at, now()), coalesce($1, 'created'), $2, $3 "
			"  FROM new_rows n ORDER BY n.contact_id";
	else
		sql = "INSERT INTO crm.stage_history (contact_id, from_stage, to_stage, changed_at, reason, automatic, forced) "
			"SELECT n.contact_id, o.stage, n.stage, clock_timestamp(), "
			"       CASE WHEN $1 IS NOT NULL OR NOT $2 THEN $1 "
			"            WHEN n.stage = 'sql' THEN 'SQL rule: engagement and fit scores reached the SQL thresholds' "
			"            ELSE 'MQL rule: engagement and fit scores reached the MQL thresholds' END, $2, $3 "
			"  FROM old_rows o JOIN new_rows n ON n.contact_id = o.contact_id "
			" WHERE o.stage IS DISTINCT FROM n.stage ORDER BY n.contact_id";
	if (current_move != NULL && current_move->reason != NULL)
		args[0] = CStringGetTextDatum(current_move->reason);
	else
		nulls[0] = 'n';
	args[1] = BoolGetDatum(current_move != NULL && current_move->automatic);
	args[2] = BoolGetDatum(current_move != NULL && current_move->force);

	pinned = spi_connect_pinned();
	SPI_register_trigger_data(td);
	if (SPI_execute_with_args(sql, 3, types, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write crm.stage_history");
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/*
 * Promote the given contacts whose scores pass the policy's SQL or MQL
 * rule.  Scores are read set-based with crm.scores_of, only for contacts in
 * a stage the rules can move.  Returns how many moved.
 */
static uint64
promote_by_scores(Datum ids)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1] = {ids};
	bool		isnull;

	/*
	 * Narrow the ids first, in a statement of its own: an id array that is a
	 * column of a relation in the UPDATE's FROM would be copied into every
	 * joined row (UPDATE keeps whole rows of its other relations), which is
	 * quadratic in the number of contacts.  Not read-only: the rows the
	 * triggering statement inserted must be visible.
	 */
	if (SPI_execute_with_args("SELECT array_agg(k.contact_id) FROM crm.contact k "
							  "  JOIN unnest($1) u(id) ON k.contact_id = u.id "
							  " WHERE k.stage IN ('subscriber', 'lead', 'mql')",
							  1, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read contact stages");
	args[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return 0;

	/* one statement for both rules: the scores are read once */
	return run_move("WITH p AS (SELECT * FROM crm.policy()), "
					"     e AS (SELECT s.* FROM crm.scores_of($1, (SELECT p.engagement_group FROM p)) s), "
					"     f AS (SELECT s.* FROM crm.scores_of($1, (SELECT p.fit_group FROM p)) s), "
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
					"UPDATE crm.contact t SET stage = target.stage FROM target "
					" WHERE t.contact_id = target.contact_id AND target.stage IS NOT NULL "
					"   AND t.stage IN ('subscriber', 'lead', 'mql') AND t.stage < target.stage",
					1, types, args, NULL, true, false);
}

/* Open deals make opportunities; won deals and orders make customers */
static uint64
promote_by_deals_and_orders(const char *deals, const char *orders, int nargs, Datum *args)
{
	Oid			types[1] = {INT8ARRAYOID};
	StringInfoData sql;
	uint64		n = 0;

	initStringInfo(&sql);
	if (deals)
	{
		appendStringInfo(&sql,
						 "UPDATE crm.contact t SET stage = 'opportunity' "
						 "  FROM (SELECT DISTINCT d.contact_id FROM %s d WHERE d.status = 'open') s "
						 " WHERE t.contact_id = s.contact_id AND t.stage IN ('subscriber', 'lead', 'mql', 'sql')", deals);
		n += run_move(sql.data, nargs, types, args, "deal opened", true, false);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE crm.contact t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT d.contact_id FROM %s d WHERE d.status = 'won') s "
						 " WHERE t.contact_id = s.contact_id AND t.stage IN ('subscriber', 'lead', 'mql', 'sql', 'opportunity')", deals);
		n += run_move(sql.data, nargs, types, args, "deal won", true, false);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE crm.contact t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT d.contact_id FROM %s d, crm.policy() p "
						 "         WHERE d.status = 'won' AND p.revive_churned) s "
						 " WHERE t.contact_id = s.contact_id AND t.stage = 'churned'", deals);
		n += run_move(sql.data, nargs, types, args, "deal won after churn: revived", true, true);
	}
	if (orders)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE crm.contact t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT o.contact_id FROM %s o) s "
						 " WHERE t.contact_id = s.contact_id AND t.stage IN ('subscriber', 'lead', 'mql', 'sql', 'opportunity')", orders);
		n += run_move(sql.data, nargs, types, args, "order placed", true, false);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE crm.contact t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT o.contact_id FROM %s o, crm.policy() p WHERE p.revive_churned) s "
						 " WHERE t.contact_id = s.contact_id AND t.stage = 'churned'", orders);
		n += run_move(sql.data, nargs, types, args, "order after churn: revived", true, true);
	}
	return n;
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
	Oid			types[1] = {INT8ARRAYOID};

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_newtable == NULL)
		elog(ERROR, "crm.stage_promote() must be a statement trigger with a NEW TABLE");
	/* our own stage updates fire the contact triggers again: nothing to do */
	if (promotion_depth > 0)
		return PointerGetDatum(NULL);
	/* a dump's stages are loaded as they were (src/restore.c) */
	if (loading_dump)
		return PointerGetDatum(NULL);
	table = RelationGetRelationName(td->tg_relation);

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

	if (strcmp(table, "activity") == 0)
	{
		Datum		args[1] = {ids};

		/* a join, not a correlated subquery: the transition table is scanned once */
		run_move("UPDATE crm.contact t SET stage = 'sql' "
				 "  FROM (SELECT DISTINCT a.contact_id FROM new_rows a, crm.policy() p "
				 "         WHERE a.kind = ANY(p.sql_acceptance_kinds)) a "
				 " WHERE t.contact_id = a.contact_id AND t.stage IN ('subscriber', 'lead', 'mql')",
				 0, types, args, "sales acceptance activity", true, false);
		promote_by_scores(ids);
	}
	else if (strcmp(table, "contact") == 0)
		promote_by_scores(ids);
	else if (strcmp(table, "deal") == 0)
		promote_by_deals_and_orders("new_rows", NULL, 0, NULL);
	else if (strcmp(table, "order") == 0)
		promote_by_deals_and_orders(NULL, "new_rows", 0, NULL);
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
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
	SPI_execute_with_args("SELECT stage FROM crm.contact WHERE contact_id = $1 FOR UPDATE",
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
		run_move("UPDATE crm.contact SET stage = $2 WHERE contact_id = $1",
				 2, types, args, reason, false, force);
	spi_finish_pinned(pinned);
	PG_RETURN_DATUM(stage);
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
		SPI_execute("SELECT coalesce(array_agg(contact_id), '{}') FROM crm.contact", true, 0);
		ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		ids = PointerGetDatum(PG_DETOAST_DATUM_COPY(ids));
	}
	else
		ids = PG_GETARG_DATUM(0);
	{
		Datum		args[1] = {ids};
		Oid			types[1] = {INT8ARRAYOID};

		n = run_move("UPDATE crm.contact t SET stage = 'sql' FROM crm.policy() p "
					 " WHERE t.contact_id = ANY($1) AND t.stage IN ('subscriber', 'lead', 'mql') AND EXISTS "
					 "       (SELECT 1 FROM crm.activity a WHERE a.contact_id = t.contact_id "
					 "           AND a.kind = ANY(p.sql_acceptance_kinds))",
					 1, types, args, "sales acceptance activity", true, false);
		n += promote_by_scores(ids);
		n += promote_by_deals_and_orders("(SELECT * FROM crm.deal WHERE contact_id = ANY($1))",
										 "(SELECT * FROM crm.\"order\" WHERE contact_id = ANY($1))",
										 1, args);
	}
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) n);
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

	if (TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite time")));
	pinned = spi_connect_pinned();
	n = run_move("UPDATE crm.contact t SET stage = 'churned' FROM crm.policy() p "
				 " WHERE t.stage IN ('customer', 'evangelist') "
				 "   AND NOT EXISTS (SELECT 1 FROM crm.\"order\" o WHERE o.contact_id = t.contact_id "
				 "                      AND o.ordered_at > $1 - p.churn_after AND o.ordered_at <= $1) "
				 "   AND NOT EXISTS (SELECT 1 FROM crm.deal d WHERE d.contact_id = t.contact_id "
				 "                      AND d.status = 'won' AND d.closed_at > $1 - p.churn_after "
				 "                      AND d.closed_at <= $1)",
				 1, types, args, "no purchase within the churn window", true, false);
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) n);
}

/* Would the guard let this move through without force? (merges log it) */
PG_FUNCTION_INFO_V1(crm_stage_move_is_forward);
Datum
crm_stage_move_is_forward(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(move_is_forward(stage_rank(stage_label(PG_GETARG_DATUM(0))),
								   stage_rank(stage_label(PG_GETARG_DATUM(1)))));
}
