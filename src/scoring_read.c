/*
 * scoring_read.c
 *		The score readers, crm.score, crm.explain_score and crm.scores_of,
 *		and the one contribution reader behind them: it decodes ledger rows
 *		(decayed to the time asked for, or a replay of the history when a row
 *		is newer than that time) and windowed matches (the window and the
 *		"once" rule), for one contact rule by rule or for many contacts as
 *		totals.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "crm.h"
#include "scoring.h"
#include "shard.h"

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

/* What a read gathers for one contact */
typedef struct ContactScore
{
	int64		contact_id;
	char		status;			/* used by lib/simplehash.h */
	bool		replay;			/* a ledger row is newer than "at" */
	int64		last_once_rule; /* windowed once rule whose match counted */
	double		total;			/* running sum, when rules are not kept */
	List	   *rules;			/* a Contribution per rule, when kept */
} ContactScore;

/* The contacts of a crm.scores_of call: lib/simplehash.h, per call */
#define SH_PREFIX		contacts
#define SH_ELEMENT_TYPE	ContactScore
#define SH_KEY_TYPE		int64
#define SH_KEY			contact_id
#define SH_HASH_KEY(tb, k)	hash_id(k)
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* A read: which rules, which contacts, at what time, in how much detail */
typedef struct ScoreRead
{
	RuleCache  *rc;
	int			group;			/* -1: every group */
	TimestampTz at;
	ContactScore *only;			/* the one contact read, or NULL: */
	contacts_hash *contacts;	/* the contacts read */
	bool		per_rule;		/* keep a Contribution per rule, else totals */
} ScoreRead;

/* The contact a row belongs to, or NULL when it was not asked for */
static inline ContactScore *
read_contact(ScoreRead *rd, int64 contact_id)
{
	if (rd->only != NULL)
		return rd->only->contact_id == contact_id ? rd->only : NULL;
	return contacts_lookup(rd->contacts, contact_id);
}

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
	c->rule = scoring_find_rule(rc, rule_id);
	c->group = group;
	*list = lappend(*list, c);
	return c;
}

/* Adds one row of SPI_tuptable to its contact, one the read asked for */
typedef void (*RowAdder) (ScoreRead *rd, ContactScore *cs, int64 rule_id,
						  HeapTuple tup, TupleDesc desc);

/*
 * Hand add_row each row of the query in SPI_tuptable, (contact_id, rule_id,
 * ...), whose contact the read asked for
 */
static void
read_rows(ScoreRead *rd, RowAdder add_row)
{
	TupleDesc	desc = SPI_tuptable->tupdesc;

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		ContactScore *cs = read_contact(rd, DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)));

		if (cs != NULL)
			add_row(rd, cs, DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)), tup, desc);
	}
}

/*
 * Add a row of a ledger query: (contact_id, rule_id, score_group or NULL
 * when the query kept only the read's group, hits, raw_points, value, as_of,
 * half_life_us).  A row of an activity rule that is newer than "at" marks
 * its contact for a replay instead.
 */
static void
add_ledger_row(ScoreRead *rd, ContactScore *cs, int64 rule_id, HeapTuple tup, TupleDesc desc)
{
	RuleCache  *rc = rd->rc;
	bool		isnull;
	char	   *gname = SPI_getvalue(tup, desc, 3);
	int			g = rd->group;
	int			ri;
	TimestampTz as_of;
	double		value;

	if (gname != NULL)
		g = scoring_find_group(rc, gname);
	if (g < 0 || (rd->group >= 0 && g != rd->group))
		return;
	ri = scoring_find_rule(rc, rule_id);
	as_of = DatumGetTimestampTz(SPI_getbinval(tup, desc, 7, &isnull));
	if (as_of > rd->at && !(ri >= 0 && rc->rules[ri].is_fit))
	{
		cs->replay = true;
		return;
	}
	value = DatumGetFloat8(SPI_getbinval(tup, desc, 6, &isnull));
	if (as_of <= rd->at)
		value *= score_decay(DatumGetFloat8(SPI_getbinval(tup, desc, 8, &isnull)),
							 (double) (rd->at - as_of));
	if (rd->per_rule)
	{
		Contribution *c = contribution_for(&cs->rules, rc, rule_id, g);

		c->matches = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		c->raw = DatumGetFloat8(SPI_getbinval(tup, desc, 5, &isnull));
		c->value = value;
	}
	else
		cs->total += value;
}

/*
 * Add a row of a windowed-match query: (contact_id, rule_id, occurred_at,
 * points), occurred_at up to "at", the rows ordered by contact, rule and
 * newest first.  A match counts inside (at - window, at]; of a "once" rule
 * only the latest one does.
 */
static void
add_event_row(ScoreRead *rd, ContactScore *cs, int64 rule_id, HeapTuple tup, TupleDesc desc)
{
	RuleCache  *rc = rd->rc;
	bool		isnull;
	TimestampTz t = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
	double		p = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
	int			ri = scoring_find_rule(rc, rule_id);
	ScoreRule  *r;
	Contribution *c = NULL;
	double		value;

	if (ri < 0)
		return;
	r = &rc->rules[ri];
	if ((rd->group >= 0 && r->group != rd->group) || t <= rd->at - r->window_us)
		return;
	if (rd->per_rule)
	{
		c = contribution_for(&cs->rules, rc, rule_id, r->group);
		c->matches++;
	}
	if (r->once)
	{
		if (cs->last_once_rule == rule_id)
			return;
		cs->last_once_rule = rule_id;
	}
	value = p * score_decay(rc->groups[r->group].half_life_us, (double) (rd->at - t));
	if (c != NULL)
	{
		c->raw += p;
		c->value += value;
	}
	else
		cs->total += value;
}

/* The per-contact look-ups of read_contact_rules(), prepared once per backend */
static SPIPlanPtr ledger_plan = NULL;
static SPIPlanPtr replay_plan = NULL;
static SPIPlanPtr event_plan = NULL;

/* Run one of those plans for (contact_id, at), read-only */
static void
run_contact_plan(SPIPlanPtr *slot, const char *sql, Datum *args)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};

	SPI_execute_plan(kept_plan(slot, sql, 2, types), args, NULL, true, 0);
}

/*
 * Replace a contact's activity-rule contributions by a replay of its
 * history up to "at", which is exact for past times.  Fit rows are kept.
 */
static void
replay_history(ScoreRead *rd, ContactScore *cs, Datum *args)
{
	RuleCache  *rc = rd->rc;
	List	   *kept = NIL;
	ListCell   *lc;
	ScoreBatch *b = scoring_batch_create();
	LedgerEntry **entries;
	uint32		n;

	foreach(lc, cs->rules)
	{
		Contribution *c = lfirst(lc);

		if (c->rule >= 0 && rc->rules[c->rule].is_fit)
			kept = lappend(kept, c);
	}
	cs->rules = kept;
	run_contact_plan(&replay_plan,
					 "SELECT kind, occurred_at, properties FROM {crm.activity} "
					 "WHERE contact_id OPERATOR(pg_catalog.=) $1 "
					 "AND occurred_at OPERATOR(pg_catalog.<=) $2", args);
	if (SPI_processed > 0)
		require_column_type(SPI_gettypeid(SPI_tuptable->tupdesc, 3), JSONBOID, "properties");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		scoring_batch_activity(b, rc, cs->contact_id, SPI_getvalue(tup, desc, 1),
							   DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull)),
							   DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)), rd->group);
	}
	entries = scoring_batch_sorted(b, &n);
	for (uint32 i = 0; i < n; i++)
	{
		LedgerEntry *e = entries[i];
		ScoreRule  *r = &rc->rules[e->rule];
		Contribution *c = contribution_for(&cs->rules, rc, r->rule_id, r->group);

		c->matches = e->hits;
		c->raw = e->raw;
		c->value = e->value * score_decay(rc->groups[r->group].half_life_us,
										  (double) (rd->at - e->as_of));
	}
	scoring_batch_free(b);
}

/*
 * Per-rule contributions to a contact's scores at time "at" (all groups when
 * group < 0).  From the ledger when every stored row is as of "at" or
 * earlier; otherwise the activity rules are replayed over the history.
 * Must be called inside SPI.
 */
static List *
read_contact_rules(RuleCache *rc, int64 contact_id, int group, TimestampTz at)
{
	ContactScore cs = {.contact_id = contact_id};
	ScoreRead	rd = {.rc = rc, .group = group, .at = at, .only = &cs, .per_rule = true};
	Datum		args[2];

	args[0] = Int64GetDatum(contact_id);
	args[1] = TimestampTzGetDatum(at);

	/* one call per contact of a view like crm.contact_profile: plans are kept */
	run_contact_plan(&ledger_plan,
					 "SELECT contact_id, rule_id, score_group, hits, raw_points, value, as_of, half_life_us "
					 "FROM {crm.score_ledger} WHERE contact_id OPERATOR(pg_catalog.=) $1 "
					 "ORDER BY rule_id", args);
	read_rows(&rd, add_ledger_row);
	if (cs.replay)
		replay_history(&rd, &cs, args);
	run_contact_plan(&event_plan,
					 "SELECT contact_id, rule_id, occurred_at, points FROM {crm.score_event} "
					 "WHERE contact_id OPERATOR(pg_catalog.=) $1 "
					 "AND occurred_at OPERATOR(pg_catalog.<=) $2 ORDER BY rule_id, occurred_at DESC", args);
	read_rows(&rd, add_event_row);
	return cs.rules;
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

/*
 * Totals of many contacts in one group at time "at", set-based: two
 * queries in all, not one per contact.  A contact whose ledger holds rows
 * newer than "at" is read again rule by rule, with the exact replay.  Must
 * be called inside SPI.
 */
static void
read_contact_totals(ScoreRead *rd, Datum ids, const char *gname)
{
	Datum		args[5];
	Oid			types[5] = {INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID, INT8OID, INT8OID};
	contacts_iterator it;
	ContactScore *cs;
	int64		lo,
				hi;

	args[0] = ids;
	args[1] = PointerGetDatum(cstring_to_text(gname));
	args[2] = TimestampTzGetDatum(rd->at);
	id_range(ids, &lo, &hi);
	args[3] = Int64GetDatum(lo);
	args[4] = Int64GetDatum(hi);
	/* joins with unnest, not "= ANY": the id list may be long */
	SPI_execute_with_args(colocated_sql("SELECT l.contact_id, l.rule_id, NULL::text, l.hits, l.raw_points, l.value, l.as_of, l.half_life_us "
								  "FROM {crm.score_ledger} l JOIN unnest($1) u(id) ON l.contact_id = u.id "
								  "WHERE l.score_group = $2 AND l.contact_id BETWEEN $4 AND $5"),
						  5, types, args, NULL, true, 0);
	read_rows(rd, add_ledger_row);
	SPI_execute_with_args(colocated_sql("SELECT e.contact_id, e.rule_id, e.occurred_at, e.points "
								  "FROM {crm.score_event} e JOIN unnest($1) u(id) ON e.contact_id = u.id "
								  "WHERE e.score_group = $2 AND e.occurred_at <= $3 AND e.contact_id BETWEEN $4 AND $5 "
								  "ORDER BY e.contact_id, e.rule_id, e.occurred_at DESC"),
						  5, types, args, NULL, true, 0);
	read_rows(rd, add_event_row);

	contacts_start_iterate(rd->contacts, &it);
	while ((cs = contacts_iterate(rd->contacts, &it)) != NULL)
		if (cs->replay)
			cs->total = group_total(read_contact_rules(rd->rc, cs->contact_id, rd->group, rd->at),
									rd->group);
}

/* A group's total with its cap applied */
static double
capped(ScoreGroup *grp, double total)
{
	return grp->has_cap && total > grp->cap ? grp->cap : total;
}

/* The capped score of a contact in a group (inside SPI); not inlined into a PG_TRY */
static pg_noinline double
contact_score(int64 contact_id, const char *gname, TimestampTz at)
{
	RuleCache  *rc = scoring_rules();
	int			g = scoring_group_or_error(rc, gname);

	return capped(&rc->groups[g], group_total(read_contact_rules(rc, contact_id, g, at), g));
}

/* Score of a contact in a group at a time */
PG_FUNCTION_INFO_V1(crm_score);
Datum
crm_score(PG_FUNCTION_ARGS)
{
	int			pinned;
	int64		contact_id = PG_GETARG_INT64(0);
	char	   *gname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	volatile double total = 0;

	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("score time must be finite")));
	pinned = spi_connect_pinned();
	/* called per contact in a query Citus may push to the contact's shard */
	WITH_CONTACT_SCOPE(contact_id, {
		total = contact_score(contact_id, gname, at);
	});
	spi_finish_pinned(pinned);
	PG_RETURN_FLOAT8(total);
}

/* One row per contributing rule, and a "(cap)" row per capped group */
PG_FUNCTION_INFO_V1(crm_explain_score);
Datum
crm_explain_score(PG_FUNCTION_ARGS)
{
	int			pinned;
	int64		contact_id = PG_GETARG_INT64(0);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RuleCache  *rc = scoring_rules();
	List	   *contribs;
	ListCell   *lc;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	pinned = spi_connect_pinned();
	contribs = read_contact_rules(rc, contact_id, -1, at);
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

/* The distinct ids of a bigint[] as the contacts of a read */
static contacts_hash *
contacts_of(Datum ids)
{
	ArrayType  *arr = DatumGetArrayTypeP(ids);
	contacts_hash *contacts = contacts_create(CurrentMemoryContext, 1024, NULL);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	/* C callers pass arrays built from the contact_id of a crm table */
	require_column_type(ARR_ELEMTYPE(arr), INT8OID, "contact_id");
	deconstruct_array(arr, INT8OID, 8, true, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		bool		found;
		ContactScore *cs;

		if (nulls[i])
			continue;
		cs = contacts_insert(contacts, DatumGetInt64(elems[i]), &found);
		if (!found)
		{
			cs->replay = false;
			cs->last_once_rule = 0;
			cs->total = 0;
			cs->rules = NIL;
		}
	}
	return contacts;
}

/* Scores of many contacts in one group at one time, set-based */
PG_FUNCTION_INFO_V1(crm_scores_of);
Datum
crm_scores_of(PG_FUNCTION_ARGS)
{
	int			pinned;
	char	   *gname = text_to_cstring(PG_GETARG_TEXT_PP(1));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RuleCache  *rc = scoring_rules();
	ScoreRead	rd = {.rc = rc, .group = scoring_group_or_error(rc, gname),
	.at = PG_GETARG_TIMESTAMPTZ(2), .per_rule = false};
	contacts_iterator it;
	ContactScore *cs;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	rd.contacts = contacts_of(PG_GETARG_DATUM(0));
	pinned = spi_connect_pinned();
	read_contact_totals(&rd, PG_GETARG_DATUM(0), gname);
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	contacts_start_iterate(rd.contacts, &it);
	while ((cs = contacts_iterate(rd.contacts, &it)) != NULL)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(cs->contact_id);
		values[1] = Float8GetDatum(capped(&rc->groups[rd.group], cs->total));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	MemoryContextSwitchTo(old);
	spi_finish_pinned(pinned);
	return (Datum) 0;
}
