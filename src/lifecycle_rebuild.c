/*
 * lifecycle_rebuild.c
 *		crm.rebuild_stage_history: a contact's automatic transitions
 *		recomputed from its events, for after a late or unordered import.
 *
 * The events of each contact are walked in time order through the rules
 * the triggers apply (lifecycle_promote.c): sales acceptance and score
 * thresholds (the score after each activity, scoring_timeline.c), deals
 * opened and won, orders, revivals.  The rows nobody's rule wrote (a new
 * contact's first stage, manual and forced moves, a merge's) are kept and
 * set the stage at their time; a churn crm detected is kept while no
 * purchase falls inside its window.  The automatic rows are then replaced
 * by the walk's, and the contact's stage set to where the walk ends.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "crm.h"
#include "lifecycle.h"
#include "scoring.h"
#include "shard.h"

/* Contacts rebuilt per round: bounds the events held in memory */
#define REBUILD_CHUNK 2000

/* What an event does, in the order events at one time apply */
typedef enum EventKind
{
	EV_KEPT = 0,				/* a row no rule wrote: the stage it names */
	EV_CHURN,					/* a churn crm detected, still valid */
	EV_ACCEPTANCE,				/* a sales-acceptance activity */
	EV_SCORE,					/* the scores after an activity (or at creation) */
	EV_DEAL_OPENED,
	EV_DEAL_WON,
	EV_ORDER
} EventKind;

typedef struct Event
{
	int64		contact_id;
	TimestampTz at;
	EventKind	kind;
	int64		seq;			/* EV_KEPT: its history_id, for rows at one time */
	bool		forced;			/* EV_KEPT: a forced move */
	int			rank;			/* EV_KEPT: its stage; EV_SCORE: the level reached */
	char	   *stage;			/* EV_KEPT: its stage's label */
} Event;

/* The policy's score thresholds (NaN: not required) and revival rule */
typedef struct Policy
{
	char	   *engagement_group;
	char	   *fit_group;
	double		mql_engagement,
				mql_fit,
				sql_engagement,
				sql_fit;
	bool		revive;
} Policy;

/* The walk's output: the rows to write, the stage to end at */
typedef struct Rebuilt
{
	int			n,
				max;
	Datum	   *contact,
			   *from,
			   *to,
			   *at,
			   *reason,
			   *forced;
	int			nfinal;
	Datum	   *final_contact,
			   *final_stage;
} Rebuilt;

/* A growing array of events */
typedef struct Events
{
	int			n,
				max;
	Event	   *ev;
} Events;

static Event *
events_add(Events *es)
{
	if (es->n == es->max)
	{
		es->max = es->max ? es->max * 2 : 1024;
		es->ev = es->ev ? repalloc_huge(es->ev, sizeof(Event) * es->max) : palloc(sizeof(Event) * es->max);
	}
	return &es->ev[es->n++];
}

static int
event_cmp(const void *a, const void *b)
{
	const Event *x = a,
			   *y = b;

	if (x->contact_id != y->contact_id)
		return x->contact_id < y->contact_id ? -1 : 1;
	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	if (x->kind != y->kind)
		return (int) x->kind - (int) y->kind;
	return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

static double
float_or_nan(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? get_float8_nan() : DatumGetFloat8(d);
}

static Policy
read_policy(void)
{
	Policy		p;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	if (SPI_execute("SELECT engagement_group, fit_group, mql_min_engagement, mql_min_fit, "
					"       sql_min_engagement, sql_min_fit, revive_churned FROM crm.policy()",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the lifecycle policy");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	p.engagement_group = SPI_getvalue(tup, desc, 1);
	p.fit_group = SPI_getvalue(tup, desc, 2);
	p.mql_engagement = float_or_nan(tup, desc, 3);
	p.mql_fit = float_or_nan(tup, desc, 4);
	p.sql_engagement = float_or_nan(tup, desc, 5);
	p.sql_fit = float_or_nan(tup, desc, 6);
	p.revive = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
	return p;
}

/* Does a rule with these thresholds hold? (as the trigger's CASE) */
static bool
rule_holds(double min_e, double min_f, double e, double f)
{
	if (isnan(min_e) && isnan(min_f))
		return false;
	return (isnan(min_e) || e >= min_e) && (isnan(min_f) || f >= min_f);
}

/* The stage the score rules reach: 3 (sql), 2 (mql) or 0 */
static int
score_level(const Policy *p, double engagement, double fit)
{
	if (rule_holds(p->sql_engagement, p->sql_fit, engagement, fit))
		return 3;
	if (rule_holds(p->mql_engagement, p->mql_fit, engagement, fit))
		return 2;
	return 0;
}

/* Where score_timeline's calls land: the events, the fit of each contact */
typedef struct TimelineSink
{
	Events	   *events;
	const Policy *policy;
	int64	   *ids;			/* the chunk's contacts, sorted */
	double	   *fit;			/* their fit scores */
	int			n;
} TimelineSink;

static double
fit_of(TimelineSink *s, int64 id)
{
	int			lo = 0,
				hi = s->n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (s->ids[mid] == id)
			return s->fit[mid];
		if (s->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

static void
add_score_event(void *arg, int64 contact_id, TimestampTz at, double score)
{
	TimelineSink *s = arg;
	int			level = score_level(s->policy, score, fit_of(s, contact_id));
	Event	   *e;

	if (level == 0)
		return;
	e = events_add(s->events);
	e->contact_id = contact_id;
	e->at = Min(at, GetCurrentTransactionStartTimestamp());
	e->kind = EV_SCORE;
	e->seq = 0;
	e->forced = false;
	e->rank = level;
	e->stage = NULL;
}

/* The rows nobody's rule wrote, valid churns, and the deal, order and activity events */
static void
read_events(Events *es, Datum ids, int64 lo, int64 hi)
{
	Oid			types[3] = {INT8ARRAYOID, INT8OID, INT8OID};
	Datum		args[3] = {ids, Int64GetDatum(lo), Int64GetDatum(hi)};

	if (SPI_execute_with_args(colocated_sql(
		"SELECT e.contact_id, CASE WHEN e.kind <= 1 THEN e.at ELSE least(e.at, now()) END, e.kind, e.stage, e.seq, "
		"       e.forced FROM ( "
		"  SELECT h.contact_id, h.changed_at AS at, 0 AS kind, h.to_stage::text AS stage, h.history_id AS seq, "
		"         h.forced "
		"    FROM {crm.stage_history} h JOIN unnest($1) u(id) ON h.contact_id = u.id AND h.contact_id BETWEEN $2 AND $3 "
		"   WHERE NOT h.automatic AND h.merged_from IS NULL "
		"  UNION ALL "
		"  SELECT h.contact_id, h.changed_at, 1, NULL, 0, false "
		"    FROM {crm.stage_history} h JOIN unnest($1) u(id) ON h.contact_id = u.id AND h.contact_id BETWEEN $2 AND $3, crm.policy() p "
		"   WHERE h.automatic AND h.merged_from IS NULL AND h.to_stage = 'churned' "
		"     AND NOT EXISTS (SELECT 1 FROM {crm.order} o WHERE o.contact_id = h.contact_id "
		"                        AND o.ordered_at > h.changed_at - p.churn_after AND o.ordered_at <= h.changed_at) "
		"     AND NOT EXISTS (SELECT 1 FROM {crm.deal} d WHERE d.contact_id = h.contact_id AND d.status = 'won' "
		"                        AND d.closed_at > h.changed_at - p.churn_after AND d.closed_at <= h.changed_at) "
		"  UNION ALL "
		"  SELECT a.contact_id, a.occurred_at, 2, NULL, 0, false "
		"    FROM {crm.activity} a JOIN unnest($1) u(id) ON a.contact_id = u.id AND a.contact_id BETWEEN $2 AND $3, crm.policy() p "
		"   WHERE a.kind = ANY(p.sql_acceptance_kinds) "
		"  UNION ALL "
		"  SELECT k.contact_id, k.created_at, 3, NULL, 0, false "
		"    FROM {crm.contact} k JOIN unnest($1) u(id) ON k.contact_id = u.id AND k.contact_id BETWEEN $2 AND $3 "
		"  UNION ALL "
		"  SELECT d.contact_id, d.created_at, 4, NULL, 0, false FROM {crm.deal} d JOIN unnest($1) u(id) ON d.contact_id = u.id AND d.contact_id BETWEEN $2 AND $3 "
		"  UNION ALL "
		"  SELECT d.contact_id, d.closed_at, 5, NULL, 0, false FROM {crm.deal} d JOIN unnest($1) u(id) ON d.contact_id = u.id AND d.contact_id BETWEEN $2 AND $3 "
		"   WHERE d.status = 'won' "
		"  UNION ALL "
		"  SELECT o.contact_id, o.ordered_at, 6, NULL, 0, false FROM {crm.order} o JOIN unnest($1) u(id) ON o.contact_id = u.id AND o.contact_id BETWEEN $2 AND $3 "
		") e"), 3, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the events to rebuild from");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Event	   *e = events_add(es);

		e->contact_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		e->at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
		e->kind = (EventKind) DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		e->stage = SPI_getvalue(tup, desc, 4);
		e->seq = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		e->forced = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		e->rank = e->stage ? stage_funnel_rank(e->stage) : -100;
	}
	SPI_freetuptable(SPI_tuptable);
}

static void
rebuilt_add(Rebuilt *r, int64 contact, const char *from, const char *to, TimestampTz at,
			const char *reason, bool forced)
{
	if (r->n == r->max)
	{
		r->max = r->max ? r->max * 2 : 1024;
#define GROW(a) (a = r->n ? repalloc_huge(a, sizeof(Datum) * r->max) : palloc(sizeof(Datum) * r->max))
		GROW(r->contact);
		GROW(r->from);
		GROW(r->to);
		GROW(r->at);
		GROW(r->reason);
		GROW(r->forced);
#undef GROW
	}
	r->contact[r->n] = Int64GetDatum(contact);
	r->from[r->n] = CStringGetTextDatum(from);
	r->to[r->n] = CStringGetTextDatum(to);
	r->at[r->n] = TimestampTzGetDatum(at);
	r->reason[r->n] = CStringGetTextDatum(reason);
	r->forced[r->n] = BoolGetDatum(forced);
	r->n++;
}

static const char *const stage_by_rank[] = {
	"subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist"
};

/*
 * Walk one contact's events (es[0..n), in order) through the policy's
 * rules; returns the label of the stage it ends at (NULL: no kept row, so
 * no known first stage, and the contact is left as it is)
 */
static const char *
walk_contact(const Event *es, int n, const Policy *p, Rebuilt *out)
{
	const char *stage = NULL;
	int			rank = 0;
	TimestampTz last = DT_NOBEGIN;
	const char *last_reason = "rebuilt from the events";
	int			first;

	/*
	 * The walk starts at the contact's first row; events older than it (an
	 * import of a history older than the contact's created_at) move it at
	 * that time, as the triggers do
	 */
	for (first = 0; first < n && es[first].kind != EV_KEPT; first++)
		;
	if (first == n)
		return NULL;
	stage = es[first].stage;
	rank = es[first].rank;
	last = es[first].at;
	for (int i = 0; i < n; i++)
	{
		const Event *e = &es[i];
		const char *to = NULL;
		const char *reason = NULL;
		bool		forced = false;

		if (i == first)
			continue;
		if (e->kind == EV_KEPT)
		{
			last = Max(last, e->at);
			if (e->forced || strcmp(stage, e->stage) == 0 || stage_move_forward(stage, e->stage))
			{
				stage = e->stage;
				rank = e->rank;
			}
			else
			{
				/*
				 * A move made by hand (or a merge's) that the events now
				 * dated before it have overtaken: the guard would have
				 * refused it.  It stays as recorded, and the contact goes
				 * on from it to where the events had taken it, as a
				 * trigger would have moved it right after.
				 */
				rebuilt_add(out, e->contact_id, e->stage, stage, last, last_reason,
							!stage_move_forward(e->stage, stage));
			}
			continue;
		}
		switch (e->kind)
		{
			case EV_CHURN:
				if (rank >= 5)
					to = "churned", reason = REASON_CHURN;
				break;
			case EV_ACCEPTANCE:
				if (rank >= 0 && rank < 3)
					to = "sql", reason = REASON_ACCEPTANCE;
				break;
			case EV_SCORE:
				if (rank >= 0 && rank < e->rank)
					to = stage_by_rank[e->rank], reason = e->rank == 3 ? REASON_SQL_SCORE : REASON_MQL_SCORE;
				break;
			case EV_DEAL_OPENED:
				if (rank >= 0 && rank < 4)
					to = "opportunity", reason = REASON_DEAL_OPENED;
				break;
			case EV_DEAL_WON:
			case EV_ORDER:
				if (rank >= 0 && rank < 5)
					to = "customer", reason = e->kind == EV_ORDER ? REASON_ORDER : REASON_DEAL_WON;
				else if (rank == stage_funnel_rank("churned") && p->revive)
					to = "customer", forced = true,
						reason = e->kind == EV_ORDER ? REASON_ORDER_REVIVED : REASON_DEAL_REVIVED;
				break;
			default:
				break;
		}
		if (to == NULL)
			continue;
		last = Max(last, e->at);
		rebuilt_add(out, e->contact_id, stage, to, last, reason, forced);
		last_reason = reason;
		stage = to;
		rank = stage_funnel_rank(to);
	}
	return stage;
}

/*
 * Replace the automatic history of the contacts the walk ended for (those
 * with a first row: the others are left as they are) by the walk's rows
 */
static void
write_rebuilt(Rebuilt *r)
{
	Oid			types[6] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
	TEXTARRAYOID, BOOLARRAYOID};
	Oid			range_types[4] = {INT8ARRAYOID, INT8OID, INT8OID, TEXTARRAYOID};
	Datum		lo,
				hi;
	Datum		args[6];

	if (r->nfinal == 0)
		return;
	args[0] = PointerGetDatum(construct_array(r->final_contact, r->nfinal, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	/* the range of ids lets the statements use the contact_id indexes */
	lo = args[1] = r->final_contact[0];
	hi = args[2] = r->final_contact[r->nfinal - 1];
	if (SPI_execute_with_args(colocated_sql("DELETE FROM {crm.stage_history} h USING unnest($1) u(id) "
											" WHERE h.contact_id = u.id AND h.automatic AND h.merged_from IS NULL "
											"   AND h.contact_id BETWEEN $2 AND $3"),
							  3, range_types, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not remove the automatic history");
	if (r->n > 0)
	{
		args[0] = PointerGetDatum(construct_array(r->contact, r->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[1] = PointerGetDatum(construct_array(r->from, r->n, TEXTOID, -1, false, TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(r->to, r->n, TEXTOID, -1, false, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(r->at, r->n, TIMESTAMPTZOID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[4] = PointerGetDatum(construct_array(r->reason, r->n, TEXTOID, -1, false, TYPALIGN_INT));
		args[5] = PointerGetDatum(construct_array(r->forced, r->n, BOOLOID, 1, true, TYPALIGN_CHAR));
		/* the same columns the stage_log trigger writes; recorded_at by its default */
		if (SPI_execute_with_args(colocated_sql(
			"INSERT INTO {crm.stage_history} (history_id, contact_id, from_stage, to_stage, changed_at, reason, automatic, forced) "
			"SELECT nextval('crm.stage_history_history_id_seq'), r.c, r.f, r.t, r.a, r.r, true, r.x "
			"  FROM ROWS FROM (unnest($1), unnest($2::crm.stage[]), unnest($3::crm.stage[]), unnest($4), unnest($5), unnest($6)) "
			"       WITH ORDINALITY r(c, f, t, a, r, x, i) ORDER BY r.i"),
			6, types, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the rebuilt history");
	}
	{
		Datum		uargs[4];

		uargs[0] = PointerGetDatum(construct_array(r->final_contact, r->nfinal, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		uargs[1] = lo;
		uargs[2] = hi;
		uargs[3] = PointerGetDatum(construct_array(r->final_stage, r->nfinal, TEXTOID, -1, false, TYPALIGN_INT));
		/* the stages cast as a parameter: Citus refuses a STABLE cast of a column in an UPDATE */
		run_move_unlogged("UPDATE {crm.contact} k SET stage = r.s "
						  "  FROM ROWS FROM (unnest($1), unnest($4::crm.stage[])) r(c, s) "
						  " WHERE k.contact_id = r.c AND k.contact_id BETWEEN $2 AND $3 "
						  "   AND k.stage IS DISTINCT FROM r.s",
						  4, range_types, uargs);
	}
}

/* Rebuild one chunk of contacts (ids sorted, unique); returns how many had a first row */
static int
rebuild_chunk(int64 *idv, int n, const Policy *p)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	Datum		ids;
	Events		es = {0};
	Rebuilt		out = {0};
	TimelineSink sink = {&es, p, idv, palloc0(sizeof(double) * n), n};
	RuleCache  *rc = scoring_rules();
	Oid			types[2] = {INT8ARRAYOID, TEXTOID};
	Datum		args[2];

	for (int i = 0; i < n; i++)
		elems[i] = Int64GetDatum(idv[i]);
	ids = PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	/* the fit scores now (fit has no history), in id order */
	args[0] = ids;
	args[1] = CStringGetTextDatum(p->fit_group);
	SPI_execute_with_args("SELECT s.contact_id, s.score FROM crm.scores_of($1, $2, now()) s ORDER BY 1",
						  2, types, args, NULL, false, 0);
	for (uint64 i = 0, j = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		while (j < (uint64) n && idv[j] < id)
			j++;
		if (j < (uint64) n && idv[j] == id)
			sink.fit[j] = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);

	read_events(&es, ids, idv[0], idv[n - 1]);
	/* the creation rows (EV_SCORE without a level): the scores before any activity */
	for (int i = 0; i < es.n; i++)
		if (es.ev[i].kind == EV_SCORE)
			es.ev[i].rank = score_level(p, 0, fit_of(&sink, es.ev[i].contact_id));
	score_timeline(ids, scoring_group_or_error(rc, p->engagement_group), add_score_event, &sink);
	qsort(es.ev, es.n, sizeof(Event), event_cmp);

	out.final_contact = palloc(sizeof(Datum) * n);
	out.final_stage = palloc(sizeof(Datum) * n);
	for (int i = 0; i < es.n;)
	{
		int			j = i;
		const char *final;

		while (j < es.n && es.ev[j].contact_id == es.ev[i].contact_id)
			j++;
		final = walk_contact(&es.ev[i], j - i, p, &out);
		if (final != NULL)
		{
			out.final_contact[out.nfinal] = Int64GetDatum(es.ev[i].contact_id);
			out.final_stage[out.nfinal] = CStringGetTextDatum(final);
			out.nfinal++;
		}
		i = j;
	}
	write_rebuilt(&out);
	return out.nfinal;
}

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Rebuild the history of the contacts in ids (int8[], any order, locked by
 * the caller or by the statement that touched them); returns how many had a
 * history to rebuild (lifecycle.h)
 */
int64
rebuild_contacts(Datum ids)
{
	ArrayType  *arr = DatumGetArrayTypeP(ids);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				m = 0;
	int64	   *idv;
	int64		done = 0;
	Policy		p;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "rebuild_stage_history",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	idv = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
		if (!nulls[i])
			idv[m++] = DatumGetInt64(elems[i]);
	qsort(idv, m, sizeof(int64), int64_cmp);
	n = m;
	m = 0;
	for (int i = 0; i < n; i++)
		if (m == 0 || idv[m - 1] != idv[i])
			idv[m++] = idv[i];
	p = read_policy();
	for (int i = 0; i < m; i += REBUILD_CHUNK)
	{
		MemoryContext round = AllocSetContextCreate(cxt, "rebuild round", ALLOCSET_DEFAULT_SIZES);

		MemoryContextSwitchTo(round);
		CHECK_FOR_INTERRUPTS();
		done += rebuild_chunk(&idv[i], Min(REBUILD_CHUNK, m - i), &p);
		MemoryContextSwitchTo(cxt);
		MemoryContextDelete(round);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return done;
}

/*
 * Lock the contacts (sorted ids) in id order, as every writer of stages
 * does.  On Citus a locking query must stay on one shard: one per contact.
 */
static void
lock_contacts(Datum ids)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1] = {ids};
	bool		isnull;
	bool		distributed;

	SPI_execute("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL", true, 1);
	distributed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (distributed)
	{
		SPI_execute("SELECT count(*) > 0 FROM pg_catalog.pg_dist_partition "
					" WHERE logicalrelid OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass", true, 1);
		distributed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (!distributed)
	{
		if (SPI_execute_with_args("SELECT count(*) FROM (SELECT 1 FROM crm.contact k "
								  " WHERE k.contact_id = ANY($1) ORDER BY k.contact_id FOR UPDATE) l",
								  1, types, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the contacts");
		return;
	}
	{
		static SPIPlanPtr plan = NULL;
		Oid			one[1] = {INT8OID};
		ArrayType  *a = DatumGetArrayTypeP(ids);
		Datum	   *elems;
		bool	   *enulls;
		int			n;

		deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &enulls, &n);
		for (int i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			SPI_execute_plan(kept_plan(&plan, "SELECT 1 FROM crm.contact WHERE contact_id = $1 FOR UPDATE", 1, one),
							 &elems[i], NULL, false, 0);
		}
	}
}

/* crm.rebuild_stage_history(contact_ids bigint[] DEFAULT NULL) */
PG_FUNCTION_INFO_V1(crm_rebuild_stage_history);
Datum
crm_rebuild_stage_history(PG_FUNCTION_ARGS)
{
	int			pinned = spi_connect_pinned();
	Oid			types[1] = {INT8ARRAYOID};
	Datum		args[1];
	char		nulls[1] = {' '};
	bool		isnull;
	Datum		ids;
	int64		done = 0;

	if (PG_ARGISNULL(0))
		nulls[0] = 'n';
	else
		args[0] = PG_GETARG_DATUM(0);
	if (SPI_execute_with_args(colocated_sql("SELECT array_agg(k.contact_id ORDER BY k.contact_id) FROM {crm.contact} k "
											" WHERE $1 IS NULL OR k.contact_id = ANY($1)"),
							  1, types, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the contacts");
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		ids = PointerGetDatum(PG_DETOAST_DATUM_COPY(ids));
		lock_contacts(ids);
		done = rebuild_contacts(ids);
	}
	spi_finish_pinned(pinned);
	PG_RETURN_INT64(done);
}
