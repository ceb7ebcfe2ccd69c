/*
 * scoring_ledger.c
 *		The ledger writer: the statement triggers that score inserted
 *		activities (crm.score_activities) and refit changed contacts and
 *		companies (crm.score_contacts), crm.rescore, and crm.decayed_sum,
 *		which merges two decayed sums inside the ledger upsert.  Matches are
 *		summed in memory in a batch (one hash entry per contact and rule) and
 *		written with one statement per table; see scoring.h for the
 *		arithmetic.
 */
#include "postgres.h"

#include <stdlib.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "crm.h"
#include "lifecycle.h"
#include "scoring.h"
#include "shard.h"

/* Hash of a (contact, rule) key */
static inline uint32
ledger_key_hash(LedgerKey key)
{
	uint64		c = (uint64) key.contact_id;
	uint64		r = (uint64) key.rule_id;

	return hash_combine(murmurhash32((uint32) (c ^ (c >> 32))),
						murmurhash32((uint32) (r ^ (r >> 32))));
}

/* The batch's hash table of ledger entries: lib/simplehash.h, per statement */
#define SH_PREFIX		ledger
#define SH_ELEMENT_TYPE	LedgerEntry
#define SH_KEY_TYPE		LedgerKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	ledger_key_hash(k)
#define SH_EQUAL(tb, a, b)	((a).contact_id == (b).contact_id && (a).rule_id == (b).rule_id)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* A batch: aggregated ledger entries plus windowed matches */
struct ScoreBatch
{
	MemoryContext cxt;
	ledger_hash *ledger;
	int			nevents;
	int			maxevents;
	int64	   *ev_contact;
	int64	   *ev_rule;
	TimestampTz *ev_at;
};

/* Start an empty batch in its own memory context */
ScoreBatch *
scoring_batch_create(void)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "crm score batch",
											  ALLOCSET_DEFAULT_SIZES);
	ScoreBatch *b = MemoryContextAllocZero(cxt, sizeof(ScoreBatch));

	b->cxt = cxt;
	b->ledger = ledger_create(cxt, 1024, NULL);
	b->maxevents = 1024;
	b->ev_contact = MemoryContextAlloc(cxt, sizeof(int64) * b->maxevents);
	b->ev_rule = MemoryContextAlloc(cxt, sizeof(int64) * b->maxevents);
	b->ev_at = MemoryContextAlloc(cxt, sizeof(TimestampTz) * b->maxevents);
	return b;
}

/* Release a batch and everything in it */
void
scoring_batch_free(ScoreBatch *b)
{
	MemoryContextDelete(b->cxt);
}

/* Keep one match of a windowed rule, for crm.score_event */
static void
batch_add_event(ScoreBatch *b, int64 contact_id, int64 rule_id, TimestampTz t)
{
	if (b->nevents == b->maxevents)
	{
		b->maxevents *= 2;
		b->ev_contact = repalloc(b->ev_contact, sizeof(int64) * b->maxevents);
		b->ev_rule = repalloc(b->ev_rule, sizeof(int64) * b->maxevents);
		b->ev_at = repalloc(b->ev_at, sizeof(TimestampTz) * b->maxevents);
	}
	b->ev_contact[b->nevents] = contact_id;
	b->ev_rule[b->nevents] = rule_id;
	b->ev_at[b->nevents] = t;
	b->nevents++;
}

/* Add one match of rule ri for a contact at time t to the batch */
static void
batch_add(ScoreBatch *b, RuleCache *rc, int ri, int64 contact_id, TimestampTz t)
{
	ScoreRule  *r = &rc->rules[ri];
	double		h = rc->groups[r->group].half_life_us;
	LedgerKey	key;
	LedgerEntry *e;
	bool		found;

	if (r->window_us > 0)
	{
		batch_add_event(b, contact_id, r->rule_id, t);
		return;
	}

	key.contact_id = contact_id;
	key.rule_id = r->rule_id;
	e = ledger_insert(b->ledger, key, &found);
	if (!found)
	{
		e->rule = ri;
		e->hits = 1;
		e->raw = r->points;
		e->value = r->points;
		e->as_of = t;
		return;
	}
	e->hits++;
	if (r->once)
	{
		/* once: the earliest match is the one that counts */
		if (t < e->as_of)
			e->as_of = t;
		return;
	}
	e->raw += r->points;
	if (t > e->as_of)
	{
		e->value = e->value * score_decay(h, (double) (t - e->as_of)) + r->points;
		e->as_of = t;
	}
	else
		e->value += r->points * score_decay(h, (double) (e->as_of - t));
}

/*
 * Score one activity against every active activity rule (of one group
 * when only_group >= 0).  Works in the batch's memory.
 */
void
scoring_batch_activity(ScoreBatch *b, RuleCache *rc, int64 contact_id, const char *kind,
					   TimestampTz at, Jsonb *props, int only_group)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);

	for (int i = 0; i < rc->nrules; i++)
	{
		ScoreRule  *r = &rc->rules[i];

		if (r->is_fit || !r->active)
			continue;
		if (only_group >= 0 && r->group != only_group)
			continue;
		if (r->kind != NULL && strcmp(r->kind, kind) != 0)
			continue;
		if (scoring_rule_matches(r, props))
			batch_add(b, rc, i, contact_id, at);
	}
	MemoryContextSwitchTo(old);
}

/* qsort comparator: ledger entries by (contact_id, rule_id) */
static int
ledger_entry_cmp(const void *a, const void *b)
{
	const LedgerEntry *x = *(LedgerEntry *const *) a;
	const LedgerEntry *y = *(LedgerEntry *const *) b;

	if (x->key.contact_id != y->key.contact_id)
		return x->key.contact_id < y->key.contact_id ? -1 : 1;
	if (x->key.rule_id != y->key.rule_id)
		return x->key.rule_id < y->key.rule_id ? -1 : 1;
	return 0;
}

/*
 * The batch's ledger entries in (contact_id, rule_id) order, palloc'd in
 * the batch's memory; valid until the batch changes.
 */
LedgerEntry **
scoring_batch_sorted(ScoreBatch *b, uint32 *n)
{
	LedgerEntry **sorted = MemoryContextAlloc(b->cxt, sizeof(LedgerEntry *) * Max(b->ledger->members, 1));
	ledger_iterator it;
	LedgerEntry *e;
	uint32		i = 0;

	ledger_start_iterate(b->ledger, &it);
	while ((e = ledger_iterate(b->ledger, &it)) != NULL)
		sorted[i++] = e;
	qsort(sorted, i, sizeof(LedgerEntry *), ledger_entry_cmp);
	*n = i;
	return sorted;
}

/* Build a one-dimensional array datum of a by-value type */
static Datum
make_array(Datum *elems, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_array(elems, n, type, typlen, typbyval, typalign));
}

/* Upsert the batch's ledger entries into crm.score_ledger, in key order */
static void
flush_ledger(ScoreBatch *b, RuleCache *rc)
{
	uint32		n;
	LedgerEntry **sorted = scoring_batch_sorted(b, &n);
	Datum	   *c = palloc(sizeof(Datum) * n),
			   *r = palloc(sizeof(Datum) * n),
			   *g = palloc(sizeof(Datum) * n),
			   *hi = palloc(sizeof(Datum) * n),
			   *raw = palloc(sizeof(Datum) * n),
			   *v = palloc(sizeof(Datum) * n),
			   *at = palloc(sizeof(Datum) * n),
			   *once = palloc(sizeof(Datum) * n),
			   *hl = palloc(sizeof(Datum) * n);
	Datum		args[9];
	Oid			types[9] = {INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
		FLOAT8ARRAYOID, FLOAT8ARRAYOID, TIMESTAMPTZARRAYOID, BOOLARRAYOID, FLOAT8ARRAYOID};

	for (uint32 i = 0; i < n; i++)
	{
		ScoreRule  *rule = &rc->rules[sorted[i]->rule];

		c[i] = Int64GetDatum(sorted[i]->key.contact_id);
		r[i] = Int64GetDatum(sorted[i]->key.rule_id);
		g[i] = CStringGetTextDatum(rc->groups[rule->group].name);
		hi[i] = Int64GetDatum(sorted[i]->hits);
		raw[i] = Float8GetDatum(sorted[i]->raw);
		v[i] = Float8GetDatum(sorted[i]->value);
		at[i] = TimestampTzGetDatum(sorted[i]->as_of);
		once[i] = BoolGetDatum(rule->once);
		hl[i] = Float8GetDatum(rc->groups[rule->group].half_life_us);
	}
	args[0] = make_array(c, n, INT8OID);
	args[1] = make_array(r, n, INT8OID);
	args[2] = PointerGetDatum(construct_array(g, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[3] = make_array(hi, n, INT8OID);
	args[4] = make_array(raw, n, FLOAT8OID);
	args[5] = make_array(v, n, FLOAT8OID);
	args[6] = make_array(at, n, TIMESTAMPTZOID);
	args[7] = make_array(once, n, BOOLOID);
	args[8] = make_array(hl, n, FLOAT8OID);
	if (SPI_execute_with_args(colocated_sql(
									  "INSERT INTO {crm.score_ledger} AS l "
							  "  (contact_id, rule_id, score_group, hits, raw_points, value, as_of, once, half_life_us) "
							  "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9) "
							  "ON CONFLICT (contact_id, rule_id) DO UPDATE SET "
							  "  hits = l.hits + excluded.hits, "
							  "  raw_points = CASE WHEN l.once THEN l.raw_points ELSE l.raw_points + excluded.raw_points END, "
							  "  value = CASE WHEN l.once THEN l.value "
							  "          ELSE crm.decayed_sum(l.value, l.as_of, excluded.value, excluded.as_of, l.half_life_us) END, "
							  "  as_of = CASE WHEN l.once THEN least(l.as_of, excluded.as_of) "
							  "          ELSE greatest(l.as_of, excluded.as_of) END"),
							  9, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update crm.score_ledger");
	ledger_reset(b->ledger);
}

/* Insert the batch's windowed matches into crm.score_event */
static void
flush_events(ScoreBatch *b)
{
	Datum	   *c = palloc(sizeof(Datum) * b->nevents),
			   *r = palloc(sizeof(Datum) * b->nevents),
			   *at = palloc(sizeof(Datum) * b->nevents);
	Datum		args[3];
	Oid			types[3] = {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};

	for (int i = 0; i < b->nevents; i++)
	{
		c[i] = Int64GetDatum(b->ev_contact[i]);
		r[i] = Int64GetDatum(b->ev_rule[i]);
		at[i] = TimestampTzGetDatum(b->ev_at[i]);
	}
	args[0] = make_array(c, b->nevents, INT8OID);
	args[1] = make_array(r, b->nevents, INT8OID);
	args[2] = make_array(at, b->nevents, TIMESTAMPTZOID);
	if (SPI_execute_with_args(colocated_sql(
									  "INSERT INTO {crm.score_event} (contact_id, rule_id, score_group, occurred_at, points) "
							  "SELECT u.c, u.r, s.score_group, u.t, s.points "
							  "  FROM unnest($1, $2, $3) AS u(c, r, t) "
							  "  JOIN crm.scoring_rule s ON s.rule_id = u.r"),
							  3, types, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into crm.score_event");
	b->nevents = 0;
}

/*
 * Merge a batch into crm.score_ledger and crm.score_event with one statement
 * each, and empty it.  Rows go in (contact_id, rule_id) order, so concurrent
 * sessions lock ledger rows in the same order and cannot deadlock on them.
 * Must be called inside SPI.
 */
static void
batch_flush(ScoreBatch *b, RuleCache *rc)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);

	if (b->ledger->members > 0)
		flush_ledger(b, rc);
	if (b->nevents > 0)
		flush_events(b);
	MemoryContextSwitchTo(old);
}

/* Attribute number of a column by name, checked to be of a type, or error */
static int
column_number(TupleDesc desc, const char *name, Oid type)
{
	int			attno = SPI_fnumber(desc, name);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	require_column_type(SPI_gettypeid(desc, attno), type, name);
	return attno;
}

/* Where the columns score_slot reads are in rows of crm.activity */
typedef struct ActivityColumns
{
	int			contact_id;
	int			kind;
	int			occurred_at;
	int			properties;
} ActivityColumns;

static ActivityColumns
activity_columns(TupleDesc desc)
{
	ActivityColumns cols;

	cols.contact_id = column_number(desc, "contact_id", INT8OID);
	cols.kind = column_number(desc, "kind", TEXTOID);
	cols.occurred_at = column_number(desc, "occurred_at", TIMESTAMPTZOID);
	cols.properties = column_number(desc, "properties", JSONBOID);
	return cols;
}

/* Score one activity row held in a slot; rowcxt is current and is reset */
static void
score_slot(ScoreBatch *b, RuleCache *rc, TupleTableSlot *slot, ActivityColumns *cols,
		   MemoryContext rowcxt)
{
	bool		isnull;
	int64		contact_id = DatumGetInt64(slot_getattr(slot, cols->contact_id, &isnull));
	char	   *kind = TextDatumGetCString(slot_getattr(slot, cols->kind, &isnull));
	TimestampTz at = DatumGetTimestampTz(slot_getattr(slot, cols->occurred_at, &isnull));
	Jsonb	   *props = DatumGetJsonbP(slot_getattr(slot, cols->properties, &isnull));

	scoring_batch_activity(b, rc, contact_id, kind, at, props, -1);
	MemoryContextReset(rowcxt);
}

/* A memory context for one activity row's detoasted values */
static MemoryContext
row_context(void)
{
	return AllocSetContextCreate(CurrentMemoryContext, "crm score row", ALLOCSET_SMALL_SIZES);
}

/* AFTER INSERT FOR EACH STATEMENT on crm.activity: score the new rows */
PG_FUNCTION_INFO_V1(crm_score_activities);
Datum
crm_score_activities(PG_FUNCTION_ARGS)
{
	int			pinned;
	TriggerData *td = (TriggerData *) fcinfo->context;
	RuleCache  *rc;
	ScoreBatch *b;
	TupleTableSlot *slot;
	ActivityColumns cols;
	TupleDesc	desc;
	MemoryContext rowcxt;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(td->tg_event) || td->tg_newtable == NULL)
		elog(ERROR, "crm.score_activities() must be an AFTER INSERT statement trigger with a NEW TABLE");
	/* a dump brings its ledger with it (src/restore.c) */
	if (loading_dump)
		return PointerGetDatum(NULL);

	rc = scoring_rules();
	if (rc->nactivity == 0)
		return PointerGetDatum(NULL);

	desc = RelationGetDescr(td->tg_relation);
	cols = activity_columns(desc);

	b = scoring_batch_create();
	rowcxt = row_context();
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(td->tg_newtable);
	while (tuplestore_gettupleslot(td->tg_newtable, true, false, slot))
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);

		score_slot(b, rc, slot, &cols, rowcxt);
		MemoryContextSwitchTo(old);
	}
	ExecDropSingleTupleTableSlot(slot);

	pinned = spi_connect_pinned();
	WITH_SHARD_SCOPE(td, {
		batch_flush(b, rc);
	});
	spi_finish_pinned(pinned);
	scoring_batch_free(b);
	MemoryContextDelete(rowcxt);
	return PointerGetDatum(NULL);
}

/*
 * Recompute the fit ledger rows of the contacts selected by a query that
 * returns (contact_id, profile jsonb).  Must be called inside SPI.
 */
static uint64
refit_contacts(RuleCache *rc, const char *where, Datum arg, Oid argtype)
{
	StringInfoData sql;
	Datum	   *fit_ids = palloc(sizeof(Datum) * Max(rc->nrules, 1));
	int			nfit = 0;
	ScoreBatch *b;
	Portal		portal;
	uint64		ncontacts = 0;
	Datum		args[2];
	Oid			types[2] = {argtype, INT8ARRAYOID};
	TimestampTz now = GetCurrentStatementStartTimestamp();

	for (int i = 0; i < rc->nrules; i++)
		if (rc->rules[i].is_fit)
			fit_ids[nfit++] = Int64GetDatum(rc->rules[i].rule_id);
	if (nfit == 0)
		return 0;

	/* drop the old fit rows of these contacts, then add what matches now */
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM {crm.score_ledger} l USING {crm.contact} c "
					 "WHERE l.contact_id = c.contact_id AND l.rule_id = ANY($2) AND %s", where);
	args[0] = arg;
	args[1] = make_array(fit_ids, nfit, INT8OID);
	SPI_execute_with_args(colocated_sql(sql.data), 2, types, args, NULL, false, 0);

	if (rc->nfit == 0)
		return 0;
	b = scoring_batch_create();
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT c.contact_id, to_jsonb(c) || jsonb_build_object('company', to_jsonb(co)) "
					 "  FROM {crm.contact} c LEFT JOIN crm.company co ON co.company_id = c.company_id "
					 " WHERE %s", where);
	/* not read-only: the trigger must see the rows its statement wrote */
	portal = SPI_cursor_open_with_args(NULL, colocated_sql(sql.data), 1, types, args, NULL, false, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			HeapTuple	tup = SPI_tuptable->vals[i];
			int64		contact_id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			Jsonb	   *profile = DatumGetJsonbP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
			MemoryContext old = MemoryContextSwitchTo(b->cxt);

			for (int r = 0; r < rc->nrules; r++)
				if (rc->rules[r].is_fit && rc->rules[r].active &&
					scoring_rule_matches(&rc->rules[r], profile))
					batch_add(b, rc, r, contact_id, now);
			MemoryContextSwitchTo(old);
			ncontacts++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	batch_flush(b, rc);
	scoring_batch_free(b);
	return ncontacts;
}

/*
 * Lock the contacts of updated companies before refitting them.  A contact
 * UPDATE, a merge or an erasure holds its contact's row lock while it refits
 * that contact; a company UPDATE holds none, so without this two refits of
 * one contact ran at once, neither deleted the fit rows the other added, and
 * the contact got both sets (or a merged-away contact got rows back).  Once
 * the other refit has committed, ours reads and replaces its rows.  FOR
 * SHARE does not block inserts of activities (KEY SHARE); taking it needs
 * UPDATE on crm.contact, so a role without it refits unlocked, as before.
 */
static void
lock_company_contacts(Datum company_ids)
{
	Oid			types[1] = {INT8ARRAYOID};
	Oid			contact_rel = get_relname_relid("contact", get_namespace_oid("crm", false));

	if (pg_class_aclcheck(contact_rel, GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		return;
	if (SPI_execute_with_args(colocated_sql("SELECT 1 FROM {crm.contact} c "
									  "WHERE c.company_id OPERATOR(pg_catalog.=) ANY ($1) "
									  "ORDER BY c.contact_id FOR SHARE"),
							  1, types, &company_ids, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the contacts of the updated companies");
}

/* AFTER INSERT/UPDATE FOR EACH STATEMENT on contact or company: refit */
PG_FUNCTION_INFO_V1(crm_score_contacts);
Datum
crm_score_contacts(PG_FUNCTION_ARGS)
{
	int			pinned;
	TriggerData *td = (TriggerData *) fcinfo->context;
	RuleCache  *rc;
	bool		is_company;
	Datum		ids;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_newtable == NULL)
		elog(ERROR, "crm.score_contacts() must be a statement trigger with a NEW TABLE");
	/* a dump brings its ledger with it (src/restore.c) */
	if (loading_dump)
		return PointerGetDatum(NULL);

	rc = scoring_rules();
	if (rc->nfit == 0)
		return PointerGetDatum(NULL);
	is_company = strcmp(trigger_table(td), "company") == 0;
	/* crm's own lifecycle moves change a contact's stage and nothing else */
	if (!is_company && move_running() && !rc->fit_reads_stage)
		return PointerGetDatum(NULL);
	ids = transition_ids(td->tg_newtable, NULL, RelationGetDescr(td->tg_relation),
						 is_company ? "company_id" : "contact_id");
	pinned = spi_connect_pinned();
	WITH_SHARD_SCOPE(td, {
		if (is_company)
			lock_company_contacts(ids);
		refit_contacts(rc, is_company ? "c.company_id = ANY($1)" : "c.contact_id = ANY($1)",
					   ids, INT8ARRAYOID);
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/*
 * Rescore the activities of the selected contacts (all when awhere is
 * empty): one pass over crm.activity, flushed in bounded batches.  Must be
 * called inside SPI.
 */
static void
rescore_activities(RuleCache *rc, const char *awhere, Datum *args)
{
	Oid			types[1] = {INT8ARRAYOID};
	ScoreBatch *b = scoring_batch_create();
	MemoryContext rowcxt = row_context();
	StringInfoData sql;
	Portal		portal;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT contact_id, kind, occurred_at, properties FROM {crm.activity}%s", awhere);
	portal = SPI_cursor_open_with_args(NULL, colocated_sql(sql.data), 1, types, args, NULL, true, 0);
	for (;;)
	{
		TupleTableSlot *slot;
		ActivityColumns cols;

		SPI_cursor_fetch(portal, true, 50000);
		if (SPI_processed == 0)
			break;
		slot = MakeSingleTupleTableSlot(SPI_tuptable->tupdesc, &TTSOpsHeapTuple);
		cols = activity_columns(SPI_tuptable->tupdesc);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			ExecStoreHeapTuple(SPI_tuptable->vals[i], slot, false);
			score_slot(b, rc, slot, &cols, rowcxt);
			MemoryContextSwitchTo(old);
		}
		ExecDropSingleTupleTableSlot(slot);
		SPI_freetuptable(SPI_tuptable);
		/* partial sums merge exactly, so memory stays bounded */
		if (b->ledger->members > 500000 || b->nevents > 500000)
			batch_flush(b, rc);
	}
	SPI_cursor_close(portal);
	batch_flush(b, rc);
	scoring_batch_free(b);
	MemoryContextDelete(rowcxt);
}

/* Recompute the ledger of some contacts (all when NULL) from their history */
PG_FUNCTION_INFO_V1(crm_rescore);
Datum
crm_rescore(PG_FUNCTION_ARGS)
{
	int			pinned;
	bool		all = PG_ARGISNULL(0);
	RuleCache  *rc = scoring_rules();
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1];
	const char *where = all ? "true" : "c.contact_id = ANY($1)";
	const char *awhere = all ? "" : " WHERE contact_id = ANY($1)";
	StringInfoData sql;
	bool		isnull;
	int64		ncontacts;

	args[0] = all ? PointerGetDatum(construct_empty_array(INT8OID)) : PG_GETARG_DATUM(0);
	pinned = spi_connect_pinned();
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM {crm.score_ledger}%s", awhere);
	SPI_execute_with_args(colocated_sql(sql.data), 1, types, args, NULL, false, 0);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM {crm.score_event}%s", awhere);
	SPI_execute_with_args(colocated_sql(sql.data), 1, types, args, NULL, false, 0);

	/* engagement: every selected contact's activities */
	if (rc->nactivity > 0)
		rescore_activities(rc, awhere, args);

	/* fit: every selected contact's profile */
	refit_contacts(rc, where, args[0], INT8ARRAYOID);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT count(*) FROM {crm.contact} c WHERE %s", where);
	SPI_execute_with_args(colocated_sql(sql.data), 1, types, args, NULL, true, 0);
	ncontacts = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	spi_finish_pinned(pinned);
	PG_RETURN_INT64(ncontacts);
}

/* Value at max(t1, t2) of two decayed sums stored as of t1 and t2 */
PG_FUNCTION_INFO_V1(crm_decayed_sum);
Datum
crm_decayed_sum(PG_FUNCTION_ARGS)
{
	double		v1 = PG_GETARG_FLOAT8(0);
	TimestampTz t1 = PG_GETARG_TIMESTAMPTZ(1);
	double		v2 = PG_GETARG_FLOAT8(2);
	TimestampTz t2 = PG_GETARG_TIMESTAMPTZ(3);
	double		h = PG_GETARG_FLOAT8(4);

	if (t2 > t1)
		PG_RETURN_FLOAT8(v1 * score_decay(h, (double) (t2 - t1)) + v2);
	PG_RETURN_FLOAT8(v1 + v2 * score_decay(h, (double) (t1 - t2)));
}

/*
 * AFTER DELETE FOR EACH STATEMENT on crm.scoring_rule and crm.fit_rule: a
 * deleted rule takes its points with it, from every contact of this node.
 */
PG_FUNCTION_INFO_V1(crm_forget_rule_points);
Datum
crm_forget_rule_points(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			types[1] = {INT8ARRAYOID};
	Datum		ids;
	int			pinned;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) || td->tg_oldtable == NULL)
		elog(ERROR, "crm.forget_rule_points() must be an AFTER DELETE statement trigger with an OLD TABLE");
	ids = transition_ids(td->tg_oldtable, NULL, RelationGetDescr(td->tg_relation), "rule_id");
	pinned = spi_connect_pinned();
	WITH_SHARD_SCOPE(td, {
		run_for_local_contacts("DELETE FROM {crm.score_ledger} l WHERE l.rule_id = ANY ($1)", 1, types, &ids);
		run_for_local_contacts("DELETE FROM {crm.score_event} e WHERE e.rule_id = ANY ($1)", 1, types, &ids);
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/*
 * AFTER DELETE or TRUNCATE FOR EACH STATEMENT on crm.contact: a deleted
 * contact takes its scores with it (what ON DELETE CASCADE would do, once
 * per statement).  A concurrent activity insert holds a key-share lock on
 * the contact, so the delete waits for it and then sees its rows.
 */
PG_FUNCTION_INFO_V1(crm_forget_contact_points);
Datum
crm_forget_contact_points(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			types[1] = {INT8ARRAYOID};
	Datum		ids = (Datum) 0;
	bool		truncate;
	int			pinned;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		elog(ERROR, "crm.forget_contact_points() must be a statement trigger");
	truncate = TRIGGER_FIRED_BY_TRUNCATE(td->tg_event);
	if (!truncate)
	{
		if (td->tg_oldtable == NULL)
			elog(ERROR, "crm.forget_contact_points() on DELETE needs an OLD TABLE");
		ids = transition_ids(td->tg_oldtable, NULL, RelationGetDescr(td->tg_relation), "contact_id");
	}
	pinned = spi_connect_pinned();
	WITH_SHARD_SCOPE(td, {
		if (truncate)
			SPI_execute(colocated_sql("TRUNCATE {crm.score_ledger}, {crm.score_event}"), false, 0);
		else
		{
			SPI_execute_with_args(colocated_sql("DELETE FROM {crm.score_ledger} l WHERE l.contact_id = ANY ($1)"),
								  1, types, &ids, NULL, false, 0);
			SPI_execute_with_args(colocated_sql("DELETE FROM {crm.score_event} e WHERE e.contact_id = ANY ($1)"),
								  1, types, &ids, NULL, false, 0);
		}
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}
