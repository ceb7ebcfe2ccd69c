/*
 * privacy.c
 *		The row trigger that keeps inserts aimed at merged contacts (see
 *		crm.merge_contacts in src/privacy.sql).
 *
 * It runs once per inserted activity, order, deal, task and consent row, so
 * it is written in C: a PL/pgSQL version with a pinned search_path cost
 * about 25 us a row, more than the foreign key check itself, on a bulk load.
 * The lookups are prepared once per backend; the names in them are
 * schema-qualified, so the caller's search_path does not matter.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "crm.h"
#include "shard.h"

/* Prepared once per backend, kept across transactions */
static SPIPlanPtr lock_plan = NULL;		/* waits for a merge holding the row */
static SPIPlanPtr look_plan = NULL;		/* for roles that may not lock it */
static SPIPlanPtr follow_plan = NULL;	/* where a merged-away id went */

/*
 * Contacts this backend holds KEY SHARE on in the current subtransaction.
 * The lock lasts until the subtransaction ends and keeps other sessions
 * from deleting or merging the row, so a bulk load of many rows per
 * contact locks each contact once.  Entries carry the generation they were
 * made in; a new (sub)transaction, or a delete or truncate of contacts in
 * this backend (a merge in the same transaction), starts a new generation.
 */
typedef struct LockedContact
{
	int64		contact_id;		/* hash key */
	uint64		gen;
} LockedContact;

#define LOCKED_MAX		131072	/* entries (about 6 MB) before the table starts over */
#define LOCKED_KEEP		8192	/* a larger table is freed when a transaction ends */

static HTAB *locked = NULL;
static uint64 locked_gen = 1;
static LocalTransactionId locked_lxid = InvalidLocalTransactionId;
static SubTransactionId locked_subxid = InvalidSubTransactionId;

/* Does this (sub)transaction hold the lock on contact id already? */
static bool
locked_held(int64 id)
{
	LockedContact *e;

	if (MyProc->lxid != locked_lxid || GetCurrentSubTransactionId() != locked_subxid)
	{
		/* a bulk load's table is not kept for the rest of the session */
		if (MyProc->lxid != locked_lxid && locked != NULL &&
			hash_get_num_entries(locked) > LOCKED_KEEP)
		{
			hash_destroy(locked);
			locked = NULL;
		}
		locked_lxid = MyProc->lxid;
		locked_subxid = GetCurrentSubTransactionId();
		locked_gen++;
	}
	if (locked == NULL)
		return false;
	e = hash_search(locked, &id, HASH_FIND, NULL);
	return e != NULL && e->gen == locked_gen;
}

/* Remember that this (sub)transaction now holds the lock on contact id */
static void
locked_remember(int64 id)
{
	LockedContact *e;

	if (locked == NULL || hash_get_num_entries(locked) >= LOCKED_MAX)
	{
		HASHCTL		ctl;

		if (locked)
			hash_destroy(locked);
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(LockedContact);
		locked = hash_create("crm locked contacts", 1024, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(locked, &id, HASH_ENTER, NULL);
	e->gen = locked_gen;
}

PG_FUNCTION_INFO_V1(crm_forget_locked_contacts);
/* AFTER DELETE or TRUNCATE FOR EACH STATEMENT on crm.contact: lock anew */
Datum
crm_forget_locked_contacts(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "crm.forget_locked_contacts() must be a trigger");
	locked_gen++;
	return PointerGetDatum(NULL);
}

/* Is there a contact with this id (in the co-located shard on Citus)? */
static bool
contact_here(Datum id, bool lock)
{
	Oid			types[1] = {INT8OID};

	if (SPI_execute_plan(lock ?
						 kept_plan(&lock_plan, "SELECT 1 FROM {crm.contact} c "
								   "WHERE c.contact_id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE", 1, types) :
						 kept_plan(&look_plan, "SELECT 1 FROM {crm.contact} c "
								   "WHERE c.contact_id OPERATOR(pg_catalog.=) $1", 1, types),
						 &id, NULL, false, 1) < 0)
		elog(ERROR, "could not look up contact");
	return SPI_processed > 0;
}

/*
 * The row, redirected when its contact was merged away (inside SPI).  On
 * Citus the row was routed to its contact's shard before triggers ran: a
 * kept contact on another shard cannot take it there, so that is an error,
 * not a row on the wrong shard.
 */
static HeapTuple
redirect_row(TriggerData *td, HeapTuple tuple, int attno, Datum id, bool can_lock)
{
	Oid			types[1] = {INT8OID};
	Datum		target;
	bool		isnull;

	if (contact_here(id, can_lock))
	{
		if (can_lock)
			locked_remember(DatumGetInt64(id));
		return tuple;
	}
	if (SPI_execute_plan(kept_plan(&follow_plan, "SELECT crm.merged_into($1)", 1, types),
						 &id, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not follow crm.merge_log");
	target = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return tuple;
	if (shard_scope_active() && !contact_here(target, false))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("contact " INT64_FORMAT " was merged into contact " INT64_FORMAT ", whose rows are on another shard",
						DatumGetInt64(id), DatumGetInt64(target)),
				 errdetail("On Citus a row is routed to its contact's shard before triggers run, so it cannot be redirected there."),
				 errhint("Write the row with contact_id " INT64_FORMAT ".", DatumGetInt64(target))));
	/* SPI_modifytuple allocates in the trigger's own context */
	tuple = SPI_modifytuple(td->tg_relation, tuple, 1, &attno, &target, NULL);
	if (tuple == NULL)
		elog(ERROR, "could not redirect the row: %s", SPI_result_code_string(SPI_result));
	return tuple;
}

/*
 * BEFORE INSERT FOR EACH ROW on tables with a contact_id.  Taking KEY SHARE
 * on the contact row makes the insert wait for a merge that holds it FOR
 * UPDATE; if the row is gone afterwards and crm.merge_log says where it went,
 * the new row is redirected to the kept contact.  An id that never existed is
 * left alone and fails the foreign key check as usual.  A role without
 * UPDATE on crm.contact cannot take the lock: it only looks.
 */
PG_FUNCTION_INFO_V1(crm_redirect_merged_contact);
Datum
crm_redirect_merged_contact(PG_FUNCTION_ARGS)
{
	int			pinned;
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	tuple;
	int			attno;
	bool		isnull;
	Datum		id;
	Oid			contact_rel;
	bool		can_lock;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		elog(ERROR, "crm.redirect_merged_contact() must be a BEFORE INSERT row trigger");

	tuple = td->tg_trigtuple;
	/* a dump's rows point at contacts it holds, and nothing merges meanwhile */
	if (loading_dump)
		return PointerGetDatum(tuple);
	desc = RelationGetDescr(td->tg_relation);
	attno = SPI_fnumber(desc, "contact_id");
	if (attno <= 0)
		elog(ERROR, "table \"%s\" has no contact_id column", RelationGetRelationName(td->tg_relation));
	/* the redirect writes an int8 into the row */
	require_column_type(TupleDescAttr(desc, attno - 1)->atttypid, INT8OID, "contact_id");
	id = heap_getattr(tuple, attno, desc, &isnull);
	if (isnull)
		return PointerGetDatum(tuple);	/* NOT NULL or the foreign key decides */

	contact_rel = get_relname_relid("contact", get_namespace_oid("crm", false));
	can_lock = pg_class_aclcheck(contact_rel, GetUserId(), ACL_UPDATE) == ACLCHECK_OK;
	if (can_lock && locked_held(DatumGetInt64(id)))
		return PointerGetDatum(tuple);	/* locked by an earlier row: it is there */

	pinned = spi_connect_pinned();
	WITH_SHARD_SCOPE(td, {
		tuple = redirect_row(td, tuple, attno, id, can_lock);
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(tuple);
}
