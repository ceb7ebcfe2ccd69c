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
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "crm.h"
#include "lifecycle.h"
#include "shard.h"

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
	if (SPI_execute_with_args(colocated_sql("SELECT array_agg(k.contact_id) FROM {crm.contact} k "
									  "  JOIN unnest($1) u(id) ON k.contact_id = u.id "
									  " WHERE k.stage IN ('subscriber', 'lead', 'mql')"),
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
					"UPDATE {crm.contact} t SET stage = target.stage FROM target "
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
						 "UPDATE {crm.contact} t SET stage = 'opportunity' "
						 "  FROM (SELECT DISTINCT d.contact_id FROM %s d WHERE d.status = 'open') s "
						 " WHERE t.contact_id = s.contact_id AND t.stage IN ('subscriber', 'lead', 'mql', 'sql')", deals);
		n += run_move(sql.data, nargs, types, args, "deal opened", true, false);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE {crm.contact} t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT d.contact_id FROM %s d WHERE d.status = 'won') s "
						 " WHERE t.contact_id = s.contact_id AND t.stage IN ('subscriber', 'lead', 'mql', 'sql', 'opportunity')", deals);
		n += run_move(sql.data, nargs, types, args, "deal won", true, false);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE {crm.contact} t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT d.contact_id FROM %s d, crm.policy() p "
						 "         WHERE d.status = 'won' AND p.revive_churned) s "
						 " WHERE t.contact_id = s.contact_id AND t.stage = 'churned'", deals);
		n += run_move(sql.data, nargs, types, args, "deal won after churn: revived", true, true);
	}
	if (orders)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE {crm.contact} t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT o.contact_id FROM %s o) s "
						 " WHERE t.contact_id = s.contact_id AND t.stage IN ('subscriber', 'lead', 'mql', 'sql', 'opportunity')", orders);
		n += run_move(sql.data, nargs, types, args, "order placed", true, false);
		resetStringInfo(&sql);
		appendStringInfo(&sql,
						 "UPDATE {crm.contact} t SET stage = 'customer' "
						 "  FROM (SELECT DISTINCT o.contact_id FROM %s o, crm.policy() p WHERE p.revive_churned) s "
						 " WHERE t.contact_id = s.contact_id AND t.stage = 'churned'", orders);
		n += run_move(sql.data, nargs, types, args, "order after churn: revived", true, true);
	}
	return n;
}

static void promote_touched(const char *table, Datum ids);

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
		promote_touched(table, ids);
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/* The policy for the contacts a statement on the logical table touched */
static void
promote_touched(const char *table, Datum ids)
{
	Oid			types[1] = {INT8ARRAYOID};

	if (strcmp(table, "activity") == 0)
	{
		Datum		args[1] = {ids};

		/* a join, not a correlated subquery: the transition table is scanned once */
		run_move("UPDATE {crm.contact} t SET stage = 'sql' "
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
		Oid			types[1] = {INT8ARRAYOID};

		n = run_move("UPDATE {crm.contact} t SET stage = 'sql' FROM crm.policy() p "
					 " WHERE t.contact_id = ANY($1) AND t.stage IN ('subscriber', 'lead', 'mql') AND EXISTS "
					 "       (SELECT 1 FROM {crm.activity} a WHERE a.contact_id = t.contact_id "
					 "           AND a.kind = ANY(p.sql_acceptance_kinds))",
					 1, types, args, "sales acceptance activity", true, false);
		n += promote_by_scores(ids);
		n += promote_by_deals_and_orders("(SELECT * FROM {crm.deal} WHERE contact_id = ANY($1))",
										 "(SELECT * FROM {crm.order} WHERE contact_id = ANY($1))",
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
	n = run_move("UPDATE {crm.contact} t SET stage = 'churned' FROM crm.policy() p "
				 " WHERE t.stage IN ('customer', 'evangelist') "
				 "   AND NOT EXISTS (SELECT 1 FROM {crm.order} o WHERE o.contact_id = t.contact_id "
				 "                      AND o.ordered_at > $1 - p.churn_after AND o.ordered_at <= $1) "
				 "   AND NOT EXISTS (SELECT 1 FROM {crm.deal} d WHERE d.contact_id = t.contact_id "
				 "                      AND d.status = 'won' AND d.closed_at > $1 - p.churn_after "
				 "                      AND d.closed_at <= $1)",
				 1, types, args, "no purchase within the churn window", true, false);
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) n);
}
