/*
 * scoring.h
 *		Shared pieces of the lead-scoring units: the compiled rules
 *		(scoring_rules.c), the in-memory ledger batch that the triggers and
 *		the history replay fill (scoring_ledger.c), and the decay both use.
 *		The readers (scoring_read.c) build on them.
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
#ifndef SCORING_H
#define SCORING_H

#include "postgres.h"

#include <math.h>

#include "utils/jsonb.h"
#include "utils/jsonpath.h"
#include "utils/timestamp.h"

/* A score group as the rules see it */
typedef struct ScoreGroup
{
	char	   *name;
	double		half_life_us;	/* 0 = no decay */
	bool		has_cap;
	double		cap;
	int			nlabels;		/* grade labels, best first (NULL: none) */
	char	  **labels;
	int			nthresholds;	/* descending minimum scores of labels[0..n-1] */
	double	   *thresholds;
	bool	   *threshold_null;
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

/* Every group and rule, compiled once per backend (scoring_rules.c) */
typedef struct RuleCache
{
	bool		valid;
	MemoryContext cxt;
	Oid			relids[3];
	int			ngroups;
	ScoreGroup *groups;			/* in crm.score_group order */
	int			nrules;
	ScoreRule  *rules;			/* sorted by rule_id */
	int			nactivity;		/* active activity rules */
	int			nfit;			/* active fit rules */
	bool		fit_reads_stage;	/* an active fit rule may read stage or updated_at */
} RuleCache;

/* scoring_rules.c: the rule cache */
extern RuleCache *scoring_rules(void);
extern int	scoring_find_group(RuleCache *rc, const char *name);
extern int	scoring_group_or_error(RuleCache *rc, const char *name);
extern int	scoring_find_rule(RuleCache *rc, int64 rule_id);
extern bool scoring_rule_matches(ScoreRule *r, Jsonb *doc);

/* Key and state of one (contact, rule) while a batch is scored */
typedef struct LedgerKey
{
	int64		contact_id;
	int64		rule_id;
} LedgerKey;

typedef struct LedgerEntry
{
	LedgerKey	key;
	char		status;			/* used by lib/simplehash.h */
	int			rule;			/* index into rules */
	int64		hits;
	double		raw;
	double		value;
	TimestampTz as_of;
} LedgerEntry;

/* scoring_ledger.c: ledger rows summed in memory before they are written */
typedef struct ScoreBatch ScoreBatch;

extern ScoreBatch *scoring_batch_create(void);
extern void scoring_batch_activity(ScoreBatch *b, RuleCache *rc, int64 contact_id,
								   const char *kind, TimestampTz at, Jsonb *props,
								   int only_group);
extern LedgerEntry **scoring_batch_sorted(ScoreBatch *b, uint32 *n);
extern void scoring_batch_free(ScoreBatch *b);

/* scoring_timeline.c: a contact's score after each of its activities */
typedef void (*ScoreTimelineFn) (void *arg, int64 contact_id, TimestampTz at, double score);
extern void score_timeline(Datum ids, int group, ScoreTimelineFn fn, void *arg);

/* Decay factor over dt microseconds for a half-life (0 = none) */
static inline double
score_decay(double half_life_us, double dt_us)
{
	if (half_life_us <= 0)
		return 1.0;
	return exp2(-dt_us / half_life_us);
}

#endif							/* SCORING_H */
