/*
 * restore.c
 *		Loading a dump of crm: the markers that tell the triggers which rows
 *		are crm's own state coming back, not new events.
 *
 * A dump holds every crm table, the derived ones (stage history, score
 * ledger and events) included, and pg_restore (or psql) loads them after
 * CREATE EXTENSION has made the triggers.  Deriving those rows again while
 * the contacts, activities, deals and orders load would write them twice
 * and move stages a second time (a churned customer revived by his old
 * orders).  So pg_dump writes two markers around crm's data: pg_dump orders
 * the data of an extension's tables by name, moving a table only after the
 * tables its foreign keys point at, so crm._dump_begin (no foreign key, the
 * first name) comes before every other crm table and crm.zz_dump_end after
 * them.  Each holds one row; loading that row turns the derivation off, then
 * on again, in the session that loads it.  Nothing but a dump writes those
 * tables, so no application session ever runs with derivation off.  The
 * begin marker also removes the built-in rows the install script wrote, for
 * the dump brings them back as they were.
 *
 * The switch is the setting crm.loading_dump, which only the markers can
 * turn on: so it is undone with the transaction that set it if that aborts,
 * RESET ALL and DISCARD ALL (a pooler handing the connection on) turn it
 * off, and SHOW tells whether a session is loading.
 */
#include "postgres.h"

#include "access/parallel.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/guc.h"

#include "crm.h"

bool		loading_dump = false;

/* Set while a marker trigger changes the setting */
static bool marker_active = false;

/* crm.loading_dump may be turned on by a marker only (or copied into a parallel worker) */
static bool
check_loading_dump(bool *newval, void **extra, GucSource source)
{
	if (!*newval || marker_active || InitializingParallelWorker)
		return true;
	GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
	GUC_check_errmsg("crm.loading_dump is turned on by loading a dump of crm, not by hand");
	GUC_check_errhint("Restore with pg_restore or psql -f: the dump's row of crm._dump_begin turns it on.");
	return false;
}

/* Define crm.loading_dump (called from _PG_init) */
void
define_restore_settings(void)
{
	DefineCustomBoolVariable("crm.loading_dump",
							 "Whether this session is loading a dump of crm (its triggers then derive nothing).",
							 "Turned on and off by the marker rows of a dump; it cannot be turned on by hand.",
							 &loading_dump, false, PGC_USERSET,
							 GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							 check_loading_dump, NULL, NULL);
}

/*
 * The install script writes built-in rows (channels, lead sources, score
 * groups: the crm tables with a "builtin" column), and a dump holds every
 * row of those tables as the user left them, built-in ones edited or
 * deleted.  A load starts from the dump's rows: the script's go first.
 * Nothing points at them yet when the marker, first of crm's data, loads
 * (and if something does, the foreign key makes the load fail loudly).
 */
static void
drop_builtin_rows(void)
{
	int			pinned;
	uint64		n;
	char	  **stmts;

	pinned = spi_connect_pinned();
	if (SPI_execute("SELECT pg_catalog.format('DELETE FROM %I.%I WHERE builtin', n.nspname, c.relname) "
					"  FROM pg_catalog.pg_extension e CROSS JOIN LATERAL pg_catalog.unnest(e.extconfig) x(oid) "
					"  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.oid "
					"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
					"  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid "
					"   AND a.attname OPERATOR(pg_catalog.=) 'builtin' AND NOT a.attisdropped "
					" WHERE e.extname OPERATOR(pg_catalog.=) 'crm' ORDER BY c.relname",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the crm tables with built-in rows");
	n = SPI_processed;
	stmts = palloc(sizeof(char *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		stmts[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	for (uint64 i = 0; i < n; i++)
		if (SPI_execute(stmts[i], false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not run \"%s\"", stmts[i]);
	spi_finish_pinned(pinned);
}

/*
 * BEFORE INSERT FOR EACH ROW on crm._dump_begin ('begin') and
 * crm.zz_dump_end ('end').  The row is not stored: the table keeps the one
 * the install script made, and the next dump carries the marker again.
 */
PG_FUNCTION_INFO_V1(crm_dump_marker);
Datum
crm_dump_marker(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		begin;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event) ||
		td->tg_trigger->tgnargs != 1)
		elog(ERROR, "crm.dump_marker() must be a BEFORE INSERT row trigger with argument 'begin' or 'end'");
	begin = strcmp(td->tg_trigger->tgargs[0], "begin") == 0;
	if (begin)
		drop_builtin_rows();
	marker_active = true;
	PG_TRY();
	{
		(void) set_config_option("crm.loading_dump", begin ? "on" : "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
	}
	PG_FINALLY();
	{
		marker_active = false;
	}
	PG_END_TRY();
	return PointerGetDatum(NULL);
}
