/*
 * scoring.c
 *		Lead scoring: rules compiled once per backend, set-based triggers on
 *		activity and contact, exact exponential decay, score/explain/rescore.
 *
 * A score is the sum over rules of each rule's contribution.  For a rule
 * without a window the ledger keeps (value, as_of): the decayed sum of its
 * points as of as_of.  Adding points p at time t is exact in any order:
 *		t >= as_of:  value = value * 2^-((t - as_of) / h) + p,  as_of = t
 *		t <  as_of:  value = value + p * 2^-((as_of - t) / h)
 * and the value at a later time T is value * 2^-((T - as_of) / h).  The same
 * combination merges a batch computed in memory into the stored row inside
 * INSERT ... ON CONFLICT DO UPDATE, which re-reads the latest row version, so
 * concurrent sessions lose no points.  "once" rules keep the earliest
 * matching activity.  Windowed rules keep their matches in crm.score_event.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/jsonpath.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "crm.h"

/* A score group as the rules see it */
typedef struct ScoreGroup
{
	char	   *name;
	double		half_life_us;	/* 0 = no decay */
	bool		has_cap;
	double		cap;
} ScoreGroup;

/* A compiled activity or fit rule */
typedef struct ScoreRule
{
	int64		rule_id;
	char	   *name;
	bool		is_fit;
	bool		active;
	int			group;			/* index into groups */
	char	   *kind;			/* NULL = any kind */
	JsonPath   *cond;			/* NULL = always */
	bool		predicate;		/* cond is a predicate: use @@, else @? */
	double		points;
	bool		once;
	int64		window_us;		/* 0 = no window */
} ScoreRule;

typedef struct RuleCache
{
	bool		valid;
	MemoryContext cxt;
	Oid			relids[3];
	int			ngroups;
	ScoreGroup *groups;
	int			nrules;
	ScoreRule  *rules;
	int			nactivity;		/* active activity rules */
	int			nfit;			/* active fit rules */
} RuleCache;

static RuleCache rule_cache;
static bool callback_registered = false;

/* Key and state of one (contact, rule) while a batch is scored */
typedef struct LedgerKey
{
	int64		contact_id;
	int64		rule_id;
} LedgerKey;

typedef struct LedgerEntry
{
	LedgerKey	key;
	int			rule;			/* index into rules */
	int64		hits;
	double		raw;
	double		value;
	TimestampTz as_of;
} LedgerEntry;

/* A batch: aggregated ledger entries plus windowed matches */
typedef struct ScoreBatch
{
	MemoryContext cxt;
	HTAB	   *ledger;
	int			nevents;
	int			maxevents;
	int64	   *ev_contact;
	int64	   *ev_rule;
	TimestampTz *ev_at;
} ScoreBatch;

/* Decay factor over dt microseconds for a half-life (0 = none) */
static inline double
decay(double half_life_us, double dt_us)
{
	if (half_life_us <= 0)
		return 1.0;
	return exp2(-dt_us / half_life_us);
}

/* Forget the compiled rules when a rule table changes in any backend */
static void
rules_inval_callback(Datum arg, Oid relid)
{
	if (!rule_cache.valid)
		return;
	if (relid == InvalidOid || relid == rule_cache.relids[0] ||
		relid == rule_cache.relids[1] || relid == rule_cache.relids[2])
		rule_cache.valid = false;
}

/* Is the compiled jsonpath a predicate (true/false/unknown result)? */
static bool
jsonpath_is_predicate(JsonPath *jp)
{
	JsonPathItem v;

	jspInit(&v, jp);
	switch (v.type)
	{
		case jpiAnd:
		case jpiOr:
		case jpiNot:
		case jpiIsUnknown:
		case jpiEqual:
		case jpiNotEqual:
		case jpiLess:
		case jpiGreater:
		case jpiLessOrEqual:
		case jpiGreaterOrEqual:
		case jpiExists:
		case jpiStartsWith:
		case jpiLikeRegex:
		case jpiBool:
			return true;
		default:
			return false;
	}
}

/* Index of a score group by name, or -1 */
static int
find_group(RuleCache *rc, const char *name)
{
	for (int i = 0; i < rc->ngroups; i++)
		if (strcmp(rc->groups[i].name, name) == 0)
			return i;
	return -1;
}

/* Load groups and rules with SPI into the cache's own memory context */
static void
load_rules(RuleCache *rc)
{
	int			pinned;
	Oid			nsp = get_namespace_oid("crm", false);
	MemoryContext old;
	int			ret;

	if (rc->cxt == NULL)
		rc->cxt = AllocSetContextCreate(TopMemoryContext, "crm scoring rules",
										ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(rc->cxt);
	rc->valid = false;
	rc->relids[0] = get_relname_relid("score_group", nsp);
	rc->relids[1] = get_relname_relid("scoring_rule", nsp);
	rc->relids[2] = get_relname_relid("fit_rule", nsp);

	pinned = spi_connect_pinned();
	ret = SPI_execute("SELECT score_group, coalesce(date_part('epoch', half_life) * 1e6, 0), cap "
					  "FROM crm.score_group ORDER BY score_group", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read crm.score_group");
	old = MemoryContextSwitchTo(rc->cxt);
	rc->ngroups = SPI_processed;
	rc->groups = palloc0(sizeof(ScoreGroup) * Max(rc->ngroups, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		rc->groups[i].name = SPI_getvalue(tup, desc, 1);
		rc->groups[i].half_life_us = DatumGetFloat8(SPI_getbinval(tup, desc, 2, &isnull));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		rc->groups[i].has_cap = !isnull;
		rc->groups[i].cap = isnull ? 0 : DatumGetFloat8(d);
	}
	MemoryContextSwitchTo(old);

	ret = SPI_execute("SELECT rule_id, name, false, active, score_group, activity_kind, condition, points, once, "
					  "       coalesce(date_part('epoch', \"window\") * 1e6, 0)::int8 "
					  "  FROM crm.scoring_rule "
					  "UNION ALL "
					  "SELECT rule_id, name, true, active, score_group, NULL, condition, points, false, 0 "
					  "  FROM crm.fit_rule ORDER BY 1", true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read crm.scoring_rule and crm.fit_rule");
	require_column_type(SPI_gettypeid(SPI_tuptable->tupdesc, 7), JSONPATHOID, "condition");
	old = MemoryContextSwitchTo(rc->cxt);
	rc->nrules = SPI_processed;
	rc->rules = palloc0(sizeof(ScoreRule) * Max(rc->nrules, 1));
	rc->nactivity = rc->nfit = 0;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ScoreRule  *r = &rc->rules[i];
		bool		isnull;
		Datum		d;
		char	   *group;

		r->rule_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		r->name = SPI_getvalue(tup, desc, 2);
		r->is_fit = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		r->active = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		group = SPI_getvalue(tup, desc, 5);
		r->group = find_group(rc, group);
		if (r->group < 0)
			elog(ERROR, "rule %lld refers to missing score group \"%s\"",
				 (long long) r->rule_id, group);
		r->kind = SPI_getvalue(tup, desc, 6);
		d = SPI_getbinval(tup, desc, 7, &isnull);
		if (!isnull)
		{
			r->cond = DatumGetJsonPathPCopy(d);
			r->predicate = jsonpath_is_predicate(r->cond);
		}
		r->points = DatumGetFloat8(SPI_getbinval(tup, desc, 8, &isnull));
		r->once = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
		r->window_us = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
		if (r->active)
		{
			if (r->is_fit)
				rc->nfit++;
			else
				rc->nactivity++;
		}
	}
	MemoryContextSwitchTo(old);
	spi_finish_pinned(pinned);
	rc->valid = true;
}

/* The compiled rules, loaded on first use and after any rule change */
static RuleCache *
get_rules(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(rules_inval_callback, (Datum) 0);
		callback_registered = true;
	}
	if (!rule_cache.valid)
		load_rules(&rule_cache);
	return &rule_cache;
}

/* Index of a rule by id, or -1 (binary search: rules are sorted by id) */
static int
find_rule(RuleCache *rc, int64 rule_id)
{
	int			lo = 0,
				hi = rc->nrules - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (rc->rules[mid].rule_id == rule_id)
			return mid;
		if (rc->rules[mid].rule_id < rule_id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Does a rule's condition hold for a jsonb document? */
static bool
rule_matches(ScoreRule *r, Jsonb *doc)
{
	LOCAL_FCINFO(fcinfo, 2);
	Datum		res;

	if (r->cond == NULL)
		return true;
	InitFunctionCallInfoData(*fcinfo, NULL, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(doc);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = PointerGetDatum(r->cond);
	fcinfo->args[1].isnull = false;
	/* the operator forms are silent: a structural error is "no match" */
	if (r->predicate)
		res = jsonb_path_match_opr(fcinfo);
	else
		res = jsonb_path_exists_opr(fcinfo);
	return !fcinfo->isnull && DatumGetBool(res);
}

/* Start an empty batch in its own memory context */
static ScoreBatch *
batch_create(void)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "crm score batch",
											  ALLOCSET_DEFAULT_SIZES);
	ScoreBatch *b = MemoryContextAllocZero(cxt, sizeof(ScoreBatch));
	HASHCTL		ctl;

	b->cxt = cxt;
	ctl.keysize = sizeof(LedgerKey);
	ctl.entrysize = sizeof(LedgerEntry);
	ctl.hcxt = cxt;
	b->ledger = hash_create("crm score ledger batch", 1024, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	b->maxevents = 1024;
	b->ev_contact = MemoryContextAlloc(cxt, sizeof(int64) * b->maxevents);
	b->ev_rule = MemoryContextAlloc(cxt, sizeof(int64) * b->maxevents);
	b->ev_at = MemoryContextAlloc(cxt, sizeof(TimestampTz) * b->maxevents);
	return b;
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
		if (b->nevents == b->maxevents)
		{
			b->maxevents *= 2;
			b->ev_contact = repalloc(b->ev_contact, sizeof(int64) * b->maxevents);
			b->ev_rule = repalloc(b->ev_rule, sizeof(int64) * b->maxevents);
			b->ev_at = repalloc(b->ev_at, sizeof(TimestampTz) * b->maxevents);
		}
		b->ev_contact[b->nevents] = contact_id;
		b->ev_rule[b->nevents] = r->rule_id;
		b->ev_at[b->nevents] = t;
		b->nevents++;
		return;
	}

	key.contact_id = contact_id;
	key.rule_id = r->rule_id;
	e = hash_search(b->ledger, &key, HASH_ENTER, &found);
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
		e->value = e->value * decay(h, (double) (t - e->as_of)) + r->points;
		e->as_of = t;
	}
	else
		e->value += r->points * decay(h, (double) (e->as_of - t));
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

/*
 * Merge a batch into crm.score_ledger and crm.score_event with one statement
 * each.  Rows go in (contact_id, rule_id) order, so concurrent sessions lock
 * ledger rows in the same order and cannot deadlock on them.
 */
static void
batch_flush(ScoreBatch *b, RuleCache *rc)
{
	long		n = hash_get_num_entries(b->ledger);
	MemoryContext old = MemoryContextSwitchTo(b->cxt);

	if (n > 0)
	{
		LedgerEntry **sorted = palloc(sizeof(LedgerEntry *) * n);
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
		HASH_SEQ_STATUS seq;
		LedgerEntry *e;
		long		i = 0;

		hash_seq_init(&seq, b->ledger);
		while ((e = hash_seq_search(&seq)) != NULL)
			sorted[i++] = e;
		qsort(sorted, n, sizeof(LedgerEntry *), ledger_entry_cmp);
		for (i = 0; i < n; i++)
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
		if (SPI_execute_with_args(
								  "INSERT INTO crm.score_ledger AS l "
								  "  (contact_id, rule_id, score_group, hits, raw_points, value, as_of, once, half_life_us) "
								  "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9) "
								  "ON CONFLICT (contact_id, rule_id) DO UPDATE SET "
								  "  hits = l.hits + excluded.hits, "
								  "  raw_points = CASE WHEN l.once THEN l.raw_points ELSE l.raw_points + excluded.raw_points END, "
								  "  value = CASE WHEN l.once THEN l.value "
								  "          ELSE crm.decayed_sum(l.value, l.as_of, excluded.value, excluded.as_of, l.half_life_us) END, "
								  "  as_of = CASE WHEN l.once THEN least(l.as_of, excluded.as_of) "
								  "          ELSE greatest(l.as_of, excluded.as_of) END",
								  9, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not update crm.score_ledger");
		hash_destroy(b->ledger);
		{
			HASHCTL		ctl;

			ctl.keysize = sizeof(LedgerKey);
			ctl.entrysize = sizeof(LedgerEntry);
			ctl.hcxt = b->cxt;
			b->ledger = hash_create("crm score ledger batch", 1024, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		}
	}
	if (b->nevents > 0)
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
		if (SPI_execute_with_args(
								  "INSERT INTO crm.score_event (contact_id, rule_id, score_group, occurred_at, points) "
								  "SELECT u.c, u.r, s.score_group, u.t, s.points "
								  "  FROM unnest($1, $2, $3) AS u(c, r, t) "
								  "  JOIN crm.scoring_rule s ON s.rule_id = u.r",
								  3, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into crm.score_event");
		b->nevents = 0;
	}
	MemoryContextSwitchTo(old);
}

/* Attribute number of a column by name, checked to be of a type, or error */
static int
column_number(TupleDesc desc, const char *name, Oid type)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
		{
			require_column_type(att->atttypid, type, name);
			return i + 1;
		}
	}
	elog(ERROR, "column \"%s\" not found", name);
	return 0;					/* keep compiler quiet */
}

/* Score one activity against every active activity rule */
static void
score_activity(ScoreBatch *b, RuleCache *rc, int64 contact_id, const char *kind,
			   TimestampTz at, Jsonb *props, int only_group)
{
	for (int i = 0; i < rc->nrules; i++)
	{
		ScoreRule  *r = &rc->rules[i];

		if (r->is_fit || !r->active)
			continue;
		if (only_group >= 0 && r->group != only_group)
			continue;
		if (r->kind != NULL && strcmp(r->kind, kind) != 0)
			continue;
		if (rule_matches(r, props))
			batch_add(b, rc, i, contact_id, at);
	}
}

/* Feed every row of an activity tuple slot source into a batch */
typedef struct ActivityColumns
{
	int			contact_id;
	int			kind;
	int			occurred_at;
	int			properties;
} ActivityColumns;

/* Where the columns score_slot reads are in rows of crm.activity */
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

/* Score one activity row held in a slot */
static void
score_slot(ScoreBatch *b, RuleCache *rc, TupleTableSlot *slot, ActivityColumns *cols,
		   MemoryContext rowcxt)
{
	bool		isnull;
	int64		contact_id = DatumGetInt64(slot_getattr(slot, cols->contact_id, &isnull));
	char	   *kind = TextDatumGetCString(slot_getattr(slot, cols->kind, &isnull));
	TimestampTz at = DatumGetTimestampTz(slot_getattr(slot, cols->occurred_at, &isnull));
	Jsonb	   *props = DatumGetJsonbP(slot_getattr(slot, cols->properties, &isnull));
	MemoryContext old = MemoryContextSwitchTo(b->cxt);

	score_activity(b, rc, contact_id, kind, at, props, -1);
	MemoryContextSwitchTo(old);
	MemoryContextReset(rowcxt);
}

/* Invalidate the compiled rules everywhere when a rule table changes */
PG_FUNCTION_INFO_V1(crm_rules_changed);
Datum
crm_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "crm.rules_changed() must be called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
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

	rc = get_rules();
	if (rc->nactivity == 0)
		return PointerGetDatum(NULL);

	desc = RelationGetDescr(td->tg_relation);
	cols = activity_columns(desc);

	b = batch_create();
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "crm score row", ALLOCSET_SMALL_SIZES);
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
	batch_flush(b, rc);
	spi_finish_pinned(pinned);
	MemoryContextDelete(b->cxt);
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
	appendStringInfo(&sql, "DELETE FROM crm.score_ledger l USING crm.contact c "
					 "WHERE l.contact_id = c.contact_id AND l.rule_id = ANY($2) AND %s", where);
	args[0] = arg;
	args[1] = make_array(fit_ids, nfit, INT8OID);
	SPI_execute_with_args(sql.data, 2, types, args, NULL, false, 0);

	if (rc->nfit == 0)
		return 0;
	b = batch_create();
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT c.contact_id, to_jsonb(c) || jsonb_build_object('company', to_jsonb(co)) "
					 "  FROM crm.contact c LEFT JOIN crm.company co ON co.company_id = c.company_id "
					 " WHERE %s", where);
	/* not read-only: the trigger must see the rows its statement wrote */
	portal = SPI_cursor_open_with_args(NULL, sql.data, 1, types, args, NULL, false, 0);
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
					rule_matches(&rc->rules[r], profile))
					batch_add(b, rc, r, contact_id, now);
			MemoryContextSwitchTo(old);
			ncontacts++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	batch_flush(b, rc);
	MemoryContextDelete(b->cxt);
	return ncontacts;
}

/* Collect one bigint column of a transition table into an array datum */
static Datum
transition_ids(Tuplestorestate *ts, TupleDesc desc, const char *column)
{
	int			attno = column_number(desc, column, INT8OID);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	ArrayBuildState *astate = NULL;

	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, attno, &isnull);

		astate = accumArrayResult(astate, d, isnull, INT8OID, CurrentMemoryContext);
	}
	ExecDropSingleTupleTableSlot(slot);
	if (astate == NULL)
		return PointerGetDatum(construct_empty_array(INT8OID));
	return makeArrayResult(astate, CurrentMemoryContext);
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
	if (SPI_execute_with_args("SELECT 1 FROM crm.contact c "
							  "WHERE c.company_id OPERATOR(pg_catalog.=) ANY ($1) "
							  "ORDER BY c.contact_id FOR SHARE",
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

	rc = get_rules();
	if (rc->nfit == 0)
		return PointerGetDatum(NULL);
	is_company = strcmp(RelationGetRelationName(td->tg_relation), "company") == 0;
	ids = transition_ids(td->tg_newtable, RelationGetDescr(td->tg_relation),
						 is_company ? "company_id" : "contact_id");
	pinned = spi_connect_pinned();
	if (is_company)
		lock_company_contacts(ids);
	refit_contacts(rc, is_company ? "c.company_id = ANY($1)" : "c.contact_id = ANY($1)",
				   ids, INT8ARRAYOID);
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/* One rule's share of a contact's score at a time */
typedef struct Contribution
{
	int64		rule_id;
	int			rule;			/* index into rules, -1 if the rule is gone */
	int			group;
	int64		matches;
	double		raw;
	double		value;
} Contribution;

/* Find or add the contribution slot of a rule in a list */
static Contribution *
contribution_for(List **list, RuleCache *rc, int64 rule_id, int group)
{
	ListCell   *lc;
	Contribution *c;

	foreach(lc, *list)
	{
		c = lfirst(lc);
		if (c->rule_id == rule_id)
			return c;
	}
	c = palloc0(sizeof(Contribution));
	c->rule_id = rule_id;
	c->rule = find_rule(rc, rule_id);
	c->group = group;
	*list = lappend(*list, c);
	return c;
}

/* The per-contact look-ups of contributions(), prepared once per backend */
static SPIPlanPtr ledger_plan = NULL;
static SPIPlanPtr replay_plan = NULL;
static SPIPlanPtr event_plan = NULL;

/* Those plans take (contact_id, at) */
static SPIPlanPtr
contact_plan(SPIPlanPtr *slot, const char *sql)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};

	return kept_plan(slot, sql, 2, types);
}

/*
 * Per-rule contributions to a contact's scores at time "at" (all groups when
 * group < 0).  From the ledger when every stored row is as of "at" or
 * earlier; otherwise the activity rules are replayed over the history up to
 * "at", which is exact for past times.  Must be called inside SPI.
 */
static List *
contributions(RuleCache *rc, int64 contact_id, int group, TimestampTz at)
{
	List	   *result = NIL;
	Datum		args[2];
	bool		replay = false;

	args[0] = Int64GetDatum(contact_id);
	args[1] = TimestampTzGetDatum(at);

	/* one call per contact of a view like crm.contact_profile: plans are kept */
	SPI_execute_plan(contact_plan(&ledger_plan,
								  "SELECT rule_id, score_group, hits, raw_points, value, as_of, half_life_us "
								  "FROM crm.score_ledger WHERE contact_id OPERATOR(pg_catalog.=) $1 "
								  "ORDER BY rule_id"),
					 args, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		rule_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int			g = find_group(rc, SPI_getvalue(tup, desc, 2));
		int			ri = find_rule(rc, rule_id);
		TimestampTz as_of = DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull));
		double		hl = DatumGetFloat8(SPI_getbinval(tup, desc, 7, &isnull));
		Contribution *c;

		if (g < 0 || (group >= 0 && g != group))
			continue;
		if (as_of > at && !(ri >= 0 && rc->rules[ri].is_fit))
		{
			replay = true;
			continue;
		}
		c = contribution_for(&result, rc, rule_id, g);
		c->matches = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
		c->raw = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		c->value = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &isnull)) *
			(as_of > at ? 1.0 : decay(hl, (double) (at - as_of)));
	}

	if (replay)
	{
		/* keep fit rows, recompute activity rules from history up to "at" */
		List	   *kept = NIL;
		ListCell   *lc;
		ScoreBatch *b = batch_create();
		HASH_SEQ_STATUS seq;
		LedgerEntry *e;

		foreach(lc, result)
		{
			Contribution *c = lfirst(lc);

			if (c->rule >= 0 && rc->rules[c->rule].is_fit)
				kept = lappend(kept, c);
		}
		result = kept;
		SPI_execute_plan(contact_plan(&replay_plan,
									  "SELECT kind, occurred_at, properties FROM crm.activity "
									  "WHERE contact_id OPERATOR(pg_catalog.=) $1 "
									  "AND occurred_at OPERATOR(pg_catalog.<=) $2"),
						 args, NULL, true, 0);
		if (SPI_processed > 0)
			require_column_type(SPI_gettypeid(SPI_tuptable->tupdesc, 3), JSONBOID, "properties");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			MemoryContext old = MemoryContextSwitchTo(b->cxt);

			score_activity(b, rc, contact_id, SPI_getvalue(tup, desc, 1),
						   DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull)),
						   DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)), group);
			MemoryContextSwitchTo(old);
		}
		hash_seq_init(&seq, b->ledger);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			ScoreRule  *r = &rc->rules[e->rule];
			Contribution *c = contribution_for(&result, rc, r->rule_id, r->group);

			c->matches = e->hits;
			c->raw = e->raw;
			c->value = e->value * decay(rc->groups[r->group].half_life_us, (double) (at - e->as_of));
		}
	}

	/* windowed rules: matches inside (at - window, at] */
	SPI_execute_plan(contact_plan(&event_plan,
								  "SELECT rule_id, occurred_at, points FROM crm.score_event "
								  "WHERE contact_id OPERATOR(pg_catalog.=) $1 "
								  "AND occurred_at OPERATOR(pg_catalog.<=) $2 ORDER BY rule_id, occurred_at DESC"),
					 args, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		rule_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		TimestampTz t = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
		double		p = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		int			ri = find_rule(rc, rule_id);
		ScoreRule  *r;
		Contribution *c;

		if (ri < 0)
			continue;
		r = &rc->rules[ri];
		if ((group >= 0 && r->group != group) || t <= at - r->window_us)
			continue;
		c = contribution_for(&result, rc, rule_id, r->group);
		/* once: only the latest match inside the window counts */
		if (r->once && c->matches > 0)
		{
			c->matches++;
			continue;
		}
		c->matches++;
		c->raw += p;
		c->value += p * decay(rc->groups[r->group].half_life_us, (double) (at - t));
	}
	return result;
}

/* Sum of contributions of one group, before the cap */
static double
group_total(List *contribs, int group)
{
	ListCell   *lc;
	double		total = 0;

	foreach(lc, contribs)
	{
		Contribution *c = lfirst(lc);

		if (c->group == group)
			total += c->value;
	}
	return total;
}

/* Group index for a user-supplied name, or 22023 */
static int
group_or_error(RuleCache *rc, const char *name)
{
	int			g = find_group(rc, name);

	if (g < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown score group \"%s\"", name),
				 errhint("Score groups are listed in crm.score_group.")));
	return g;
}

PG_FUNCTION_INFO_V1(crm_score);
Datum
crm_score(PG_FUNCTION_ARGS)
{
	int			pinned;
	int64		contact_id = PG_GETARG_INT64(0);
	char	   *gname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	RuleCache  *rc = get_rules();
	int			g = group_or_error(rc, gname);
	double		total;

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("score time must be finite")));
	pinned = spi_connect_pinned();
	total = group_total(contributions(rc, contact_id, g, at), g);
	spi_finish_pinned(pinned);
	if (rc->groups[g].has_cap && total > rc->groups[g].cap)
		total = rc->groups[g].cap;
	PG_RETURN_FLOAT8(total);
}

PG_FUNCTION_INFO_V1(crm_explain_score);
Datum
crm_explain_score(PG_FUNCTION_ARGS)
{
	int			pinned;
	int64		contact_id = PG_GETARG_INT64(0);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RuleCache  *rc = get_rules();
	List	   *contribs;
	ListCell   *lc;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	pinned = spi_connect_pinned();
	contribs = contributions(rc, contact_id, -1, at);
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	foreach(lc, contribs)
	{
		Contribution *c = lfirst(lc);
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = Int64GetDatum(c->rule_id);
		if (c->rule >= 0)
			values[1] = CStringGetTextDatum(rc->rules[c->rule].name);
		else
			nulls[1] = true;
		values[2] = CStringGetTextDatum(rc->groups[c->group].name);
		values[3] = Int64GetDatum(c->matches);
		values[4] = Float8GetDatum(c->raw);
		values[5] = Float8GetDatum(c->value);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	/* a cap shows as its own row so the rows still add up to the score */
	for (int g = 0; g < rc->ngroups; g++)
	{
		double		total = group_total(contribs, g);

		if (rc->groups[g].has_cap && total > rc->groups[g].cap)
		{
			Datum		values[6];
			bool		nulls[6] = {true, false, false, false, false, false};

			values[1] = CStringGetTextDatum("(cap)");
			values[2] = CStringGetTextDatum(rc->groups[g].name);
			values[3] = Int64GetDatum(0);
			values[4] = Float8GetDatum(0);
			values[5] = Float8GetDatum(rc->groups[g].cap - total);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	MemoryContextSwitchTo(old);
	spi_finish_pinned(pinned);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(crm_rescore);
Datum
crm_rescore(PG_FUNCTION_ARGS)
{
	int			pinned;
	bool		all = PG_ARGISNULL(0);
	Datum		ids = all ? (Datum) 0 : PG_GETARG_DATUM(0);
	RuleCache  *rc = get_rules();
	ScoreBatch *b;
	Portal		portal;
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1];
	const char *where = all ? "true" : "c.contact_id = ANY($1)";
	const char *awhere = all ? "" : " WHERE contact_id = ANY($1)";
	StringInfoData sql;
	ActivityColumns cols;
	uint64		ncontacts;
	MemoryContext rowcxt;

	args[0] = all ? PointerGetDatum(construct_empty_array(INT8OID)) : ids;
	pinned = spi_connect_pinned();
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM crm.score_ledger%s", awhere);
	SPI_execute_with_args(sql.data, 1, types, args, NULL, false, 0);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM crm.score_event%s", awhere);
	SPI_execute_with_args(sql.data, 1, types, args, NULL, false, 0);

	/* engagement: one pass over the activities, flushed in bounded batches */
	if (rc->nactivity > 0)
	{
		b = batch_create();
		rowcxt = AllocSetContextCreate(CurrentMemoryContext, "crm score row", ALLOCSET_SMALL_SIZES);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "SELECT contact_id, kind, occurred_at, properties FROM crm.activity%s", awhere);
		portal = SPI_cursor_open_with_args(NULL, sql.data, 1, types, args, NULL, true, 0);
		for (;;)
		{
			SPI_cursor_fetch(portal, true, 50000);
			if (SPI_processed == 0)
				break;
			{
				TupleTableSlot *slot = MakeSingleTupleTableSlot(SPI_tuptable->tupdesc, &TTSOpsHeapTuple);

				cols = activity_columns(SPI_tuptable->tupdesc);

				for (uint64 i = 0; i < SPI_processed; i++)
				{
					MemoryContext old = MemoryContextSwitchTo(rowcxt);

					ExecStoreHeapTuple(SPI_tuptable->vals[i], slot, false);
					score_slot(b, rc, slot, &cols, rowcxt);
					MemoryContextSwitchTo(old);
				}
				ExecDropSingleTupleTableSlot(slot);
			}
			SPI_freetuptable(SPI_tuptable);
			/* partial sums merge exactly, so memory stays bounded */
			if (hash_get_num_entries(b->ledger) > 500000 || b->nevents > 500000)
				batch_flush(b, rc);
		}
		SPI_cursor_close(portal);
		batch_flush(b, rc);
		MemoryContextDelete(b->cxt);
		MemoryContextDelete(rowcxt);
	}

	/* fit: every selected contact's profile */
	refit_contacts(rc, where, args[0], INT8ARRAYOID);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "SELECT count(*) FROM crm.contact c WHERE %s", where);
	SPI_execute_with_args(sql.data, 1, types, args, NULL, true, 0);
	{
		bool		isnull;

		ncontacts = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	spi_finish_pinned(pinned);
	PG_RETURN_INT64((int64) ncontacts);
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
		PG_RETURN_FLOAT8(v1 * decay(h, (double) (t2 - t1)) + v2);
	PG_RETURN_FLOAT8(v1 + v2 * decay(h, (double) (t1 - t2)));
}

/*
 * Scores of many contacts in one group at one time, set-based: two queries
 * in all, not one per contact.  A contact whose ledger holds rows newer than
 * "at" falls back to the exact per-contact replay.
 */
PG_FUNCTION_INFO_V1(crm_scores_of);
Datum
crm_scores_of(PG_FUNCTION_ARGS)
{
	int			pinned;
	Datum		ids = PG_GETARG_DATUM(0);
	char	   *gname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RuleCache  *rc = get_rules();
	int			g = group_or_error(rc, gname);
	ScoreGroup *grp = &rc->groups[g];
	HTAB	   *totals;
	HASHCTL		ctl;
	Datum		args[3];
	Oid			types[3] = {INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID};
	typedef struct
	{
		int64		contact_id;
		double		total;
		bool		replay;
		int64		last_once_rule;
	} Total;
	Total	   *t;
	HASH_SEQ_STATUS seq;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(Total);
	ctl.hcxt = CurrentMemoryContext;
	totals = hash_create("crm scores", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	{
		ArrayType  *arr = DatumGetArrayTypeP(ids);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		bool		found;

		/* C callers pass arrays built from the contact_id of a crm table */
		require_column_type(ARR_ELEMTYPE(arr), INT8OID, "contact_id");
		deconstruct_array(arr, INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			int64		id;

			if (nulls[i])
				continue;
			id = DatumGetInt64(elems[i]);
			t = hash_search(totals, &id, HASH_ENTER, &found);
			if (!found)
			{
				t->total = 0;
				t->replay = false;
				t->last_once_rule = 0;
			}
		}
	}
	args[0] = ids;
	args[1] = PointerGetDatum(cstring_to_text(gname));
	args[2] = TimestampTzGetDatum(at);

	pinned = spi_connect_pinned();
	/* joins with unnest, not "= ANY": the id list may be long */
	SPI_execute_with_args("SELECT l.contact_id, l.rule_id, l.value, l.as_of, l.half_life_us "
						  "FROM crm.score_ledger l JOIN unnest($1) u(id) ON l.contact_id = u.id "
						  "WHERE l.score_group = $2",
						  2, types, args, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int			ri = find_rule(rc, DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)));
		double		v = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		TimestampTz as_of = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
		double		hl = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &isnull));

		t = hash_search(totals, &id, HASH_FIND, NULL);
		if (t == NULL)
			continue;
		if (as_of > at && !(ri >= 0 && rc->rules[ri].is_fit))
			t->replay = true;
		else
			t->total += v * (as_of > at ? 1.0 : decay(hl, (double) (at - as_of)));
	}
	SPI_execute_with_args("SELECT e.contact_id, e.rule_id, e.occurred_at, e.points "
						  "FROM crm.score_event e JOIN unnest($1) u(id) ON e.contact_id = u.id "
						  "WHERE e.score_group = $2 AND e.occurred_at <= $3 "
						  "ORDER BY e.contact_id, e.rule_id, e.occurred_at DESC",
						  3, types, args, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int64		rule_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		TimestampTz when = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
		double		p = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		int			ri = find_rule(rc, rule_id);

		t = hash_search(totals, &id, HASH_FIND, NULL);
		if (t == NULL || ri < 0 || when <= at - rc->rules[ri].window_us)
			continue;
		/* once: rows come newest first, so the first one per rule counts */
		if (rc->rules[ri].once)
		{
			if (t->last_once_rule == rule_id)
				continue;
			t->last_once_rule = rule_id;
		}
		t->total += p * decay(grp->half_life_us, (double) (at - when));
	}
	hash_seq_init(&seq, totals);
	while ((t = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (t->replay)
			t->total = group_total(contributions(rc, t->contact_id, g, at), g);
		if (grp->has_cap && t->total > grp->cap)
			t->total = grp->cap;
		values[0] = Int64GetDatum(t->contact_id);
		values[1] = Float8GetDatum(t->total);
		old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	spi_finish_pinned(pinned);
	return (Datum) 0;
}
