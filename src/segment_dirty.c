/*
 * segment_dirty.c
 *		Dirty marking: the contacts a write touched, recorded in
 *		crm.segment_dirty for the next incremental segment refresh.
 *
 * One statement trigger per table and operation.  The contact ids are read
 * from the transition tables in C and inserted with one statement, into the
 * co-located shard on Citus (src/shard.c); nothing at all is written while
 * no segment refreshes incrementally.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "crm.h"
#include "shard.h"

/* Does any dynamic segment refresh incrementally (and so read the marks)? */
static bool
marks_needed(void)
{
	if (SPI_execute("SELECT 1 FROM crm.segment g "
					" WHERE g.kind OPERATOR(pg_catalog.=) 'dynamic' AND NOT g.time_dependent LIMIT 1",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm.segment");
	return SPI_processed > 0;
}

/* Mark the contacts with these ids, or (company) the contacts of these companies */
static void
mark(Datum ids, bool company)
{
	Oid			types[1] = {INT8ARRAYOID};

	if (SPI_execute_with_args(colocated_sql(company
											? "INSERT INTO {crm.segment_dirty} (contact_id) "
											"SELECT DISTINCT c.contact_id FROM {crm.contact} c "
											" WHERE c.company_id OPERATOR(pg_catalog.=) ANY ($1) "
											"ON CONFLICT DO NOTHING"
											: "INSERT INTO {crm.segment_dirty} (contact_id) "
											"SELECT DISTINCT u.id FROM pg_catalog.unnest($1) u(id) "
											" WHERE u.id IS NOT NULL "
											"ON CONFLICT DO NOTHING"),
							  1, types, &ids, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write crm.segment_dirty");
}

/* AFTER INSERT/UPDATE/DELETE FOR EACH STATEMENT, the argument the logical table */
PG_FUNCTION_INFO_V1(crm_segment_dirty);
Datum
crm_segment_dirty(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		company;
	Datum		ids;
	int			pinned;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		(td->tg_newtable == NULL && td->tg_oldtable == NULL))
		elog(ERROR, "crm.segment_dirty() must be a statement trigger with transition tables");
	company = strcmp(trigger_table(td), "company") == 0;

	pinned = spi_connect_pinned();
	if (!marks_needed())
	{
		spi_finish_pinned(pinned);
		return PointerGetDatum(NULL);
	}
	/* an update marks the contacts before and after (a row may move) */
	ids = transition_ids(td->tg_oldtable, td->tg_newtable, RelationGetDescr(td->tg_relation),
						 company ? "company_id" : "contact_id");
	WITH_SHARD_SCOPE(td, {
		mark(ids, company);
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}
