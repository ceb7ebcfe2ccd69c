/*
 * scoring_timeline.c
 *		A contact's score after each of its activities, by a replay of its
 *		history in time order: what crm.rebuild_stage_history needs to date a
 *		score-threshold promotion at the activity that pushed the score over.
 *
 * Decay, windows and deductions only lower a score between activities, so
 * a threshold is first reached at an activity's time; the replay applies
 * the rules as the ledger and the windowed matches do (scoring.h,
 * scoring_read.c) and the group's cap, with the fit rows as they are now
 * (fit has no history).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "crm.h"
#include "scoring.h"
#include "shard.h"

/* One activity rule's state while a contact's history is replayed */
typedef struct RuleState
{
	bool		hit;			/* matched at least once */
	double		value;			/* unwindowed: decayed sum as of as_of */
	TimestampTz as_of;
	int			nmatches;		/* windowed: match times, oldest first */
	int			maxmatches;
	TimestampTz *matches;
} RuleState;

/* Add a match of rule r at t */
static void
rule_state_add(RuleState *s, ScoreRule *r, double half_life_us, TimestampTz t)
{
	if (r->window_us > 0)
	{
		if (s->nmatches == s->maxmatches)
		{
			s->maxmatches = s->maxmatches ? s->maxmatches * 2 : 8;
			s->matches = s->matches ? repalloc(s->matches, sizeof(TimestampTz) * s->maxmatches)
				: palloc(sizeof(TimestampTz) * s->maxmatches);
		}
		s->matches[s->nmatches++] = t;
	}
	else if (!s->hit)
	{
		s->value = r->points;
		s->as_of = t;
	}
	else if (!r->once)
	{
		/* time order: t >= as_of */
		s->value = s->value * score_decay(half_life_us, (double) (t - s->as_of)) + r->points;
		s->as_of = t;
	}
	s->hit = true;
}

/*
 * The rule's contribution at t: unwindowed, the decayed sum; windowed, the
 * matches inside (t - window, t], only the latest of a "once" rule
 */
static double
rule_state_value(RuleState *s, ScoreRule *r, double half_life_us, TimestampTz t)
{
	double		v = 0;

	if (!s->hit)
		return 0;
	if (r->window_us <= 0)
		return s->value * score_decay(half_life_us, (double) (t - s->as_of));
	for (int i = s->nmatches - 1; i >= 0 && s->matches[i] > t - r->window_us; i--)
	{
		v += r->points * score_decay(half_life_us, (double) (t - s->matches[i]));
		if (r->once)
			break;
	}
	return v;
}

/*
 * The fit contributions of the contacts (rows of the fit query, ordered by
 * contact, from *next on) to contact's score: fit has no history, so as now
 */
static double
fit_total(RuleCache *rc, SPITupleTable *fits, uint64 nfits, uint64 *next, int64 contact)
{
	double		total = 0;
	bool		isnull;

	for (; *next < nfits; (*next)++)
	{
		HeapTuple	tup = fits->vals[*next];
		int64		id = DatumGetInt64(SPI_getbinval(tup, fits->tupdesc, 1, &isnull));
		int			ri;

		if (id > contact)
			break;
		ri = scoring_find_rule(rc, DatumGetInt64(SPI_getbinval(tup, fits->tupdesc, 2, &isnull)));
		if (id == contact && ri >= 0 && rc->rules[ri].is_fit)
			total += DatumGetFloat8(SPI_getbinval(tup, fits->tupdesc, 3, &isnull));
	}
	return total;
}

/* Report a contact's capped score at t */
static void
report(RuleCache *rc, int g, RuleState *states, double fit, int64 contact_id, TimestampTz t,
	   ScoreTimelineFn fn, void *arg)
{
	ScoreGroup *grp = &rc->groups[g];
	double		total = fit;

	for (int i = 0; i < rc->nrules; i++)
		if (!rc->rules[i].is_fit && rc->rules[i].group == g)
			total += rule_state_value(&states[i], &rc->rules[i], grp->half_life_us, t);
	if (grp->has_cap && total > grp->cap)
		total = grp->cap;
	fn(arg, contact_id, t, total);
}

/*
 * Call fn(arg, contact, t, score) for each contact of ids (int8[]), in id
 * order, at each distinct time of its activities up to now, with its capped
 * score in group g after the activities at that time.  Inside SPI; fn must
 * not use SPI_tuptable.  Not read-only: inside a trigger, the rows of the
 * triggering statement must be visible.
 */
void
score_timeline(Datum ids, int g, ScoreTimelineFn fn, void *arg)
{
	RuleCache  *rc = scoring_rules();
	double		h = rc->groups[g].half_life_us;
	Oid			types[4] = {INT8ARRAYOID, TEXTOID, INT8OID, INT8OID};
	Datum		args[4] = {ids, CStringGetTextDatum(rc->groups[g].name)};
	int64		lo,
				hi;
	SPITupleTable *acts,
			   *fits;
	uint64		nacts,
				nfits,
				nextfit = 0;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "score timeline",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RuleState  *states = palloc0(sizeof(RuleState) * Max(rc->nrules, 1));
	int64		contact = 0;
	double		fit = 0;

	id_range(ids, &lo, &hi);
	args[2] = Int64GetDatum(lo);
	args[3] = Int64GetDatum(hi);
	if (SPI_execute_with_args(colocated_sql("SELECT l.contact_id, l.rule_id, l.value "
											"  FROM {crm.score_ledger} l JOIN unnest($1) u(id) ON l.contact_id = u.id "
											" WHERE l.score_group = $2 AND l.contact_id BETWEEN $3 AND $4 ORDER BY l.contact_id"),
							  4, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the fit scores");
	fits = SPI_tuptable;
	nfits = SPI_processed;
	if (SPI_execute_with_args(colocated_sql("SELECT a.contact_id, a.kind, a.occurred_at, a.properties "
											"  FROM {crm.activity} a JOIN unnest($1) u(id) ON a.contact_id = u.id "
											" WHERE a.occurred_at <= now() AND a.contact_id BETWEEN $3 AND $4 "
											" ORDER BY a.contact_id, a.occurred_at"),
							  4, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the activities to replay");
	acts = SPI_tuptable;
	nacts = SPI_processed;
	for (uint64 i = 0; i < nacts; i++)
	{
		HeapTuple	tup = acts->vals[i];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, acts->tupdesc, 1, &isnull));
		char	   *kind = SPI_getvalue(tup, acts->tupdesc, 2);
		TimestampTz t = DatumGetTimestampTz(SPI_getbinval(tup, acts->tupdesc, 3, &isnull));
		Jsonb	   *props = DatumGetJsonbP(SPI_getbinval(tup, acts->tupdesc, 4, &isnull));

		if (i == 0 || id != contact)
		{
			/* a new contact: its own rule states, its fit as it is now */
			MemSet(states, 0, sizeof(RuleState) * rc->nrules);
			contact = id;
			fit = fit_total(rc, fits, nfits, &nextfit, id);
		}
		for (int r = 0; r < rc->nrules; r++)
		{
			ScoreRule  *rule = &rc->rules[r];

			if (rule->is_fit || !rule->active || rule->group != g)
				continue;
			if (rule->kind != NULL && strcmp(rule->kind, kind) != 0)
				continue;
			if (scoring_rule_matches(rule, props))
				rule_state_add(&states[r], rule, h, t);
		}
		/* after the last activity of this contact at this time */
		if (i + 1 == nacts ||
			DatumGetInt64(SPI_getbinval(acts->vals[i + 1], acts->tupdesc, 1, &isnull)) != id ||
			DatumGetTimestampTz(SPI_getbinval(acts->vals[i + 1], acts->tupdesc, 3, &isnull)) != t)
			report(rc, g, states, fit, id, t, fn, arg);
	}
	SPI_freetuptable(acts);
	SPI_freetuptable(fits);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
