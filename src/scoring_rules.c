/*
 * scoring_rules.c
 *		The compiled scoring rules: crm.score_group, crm.scoring_rule and
 *		crm.fit_rule read once per backend into a cache, dropped by a
 *		relcache invalidation when any of those tables changes, and the
 *		look-ups and the jsonpath match that the writer and readers share.
 */
#include "postgres.h"

#include <stdlib.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/float.h"
#include "utils/builtins.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "crm.h"
#include "scoring.h"
#include "shard.h"

static RuleCache rule_cache;
static bool callback_registered = false;

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

/*
 * Might the path read the profile's stage or updated_at, the columns crm's
 * own stage moves change?  From its text: a key named so, or any key
 * (wildcards, keyvalue()); a mention anywhere else only errs on the safe side.
 */
static bool
path_may_read_stage(JsonPath *jp)
{
	char	   *text = DatumGetCString(DirectFunctionCall1(jsonpath_out, PointerGetDatum(jp)));

	return strstr(text, "stage") || strstr(text, "updated_at") || strchr(text, '*') ||
		strstr(text, "keyvalue");
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

/* Index of a score group by name, or -1 (groups are few: a linear search) */
int
scoring_find_group(RuleCache *rc, const char *name)
{
	for (int i = 0; i < rc->ngroups; i++)
		if (strcmp(rc->groups[i].name, name) == 0)
			return i;
	return -1;
}

/* Group index for a user-supplied name, or 22023 */
int
scoring_group_or_error(RuleCache *rc, const char *name)
{
	int			g = scoring_find_group(rc, name);

	if (g < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown score group \"%s\"", name),
				 errhint("Score groups are listed in crm.score_group.")));
	return g;
}

/* A group's grade labels and thresholds (columns 4 and 5), in the current context */
static void
load_grades(ScoreGroup *g, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	require_column_type(SPI_gettypeid(desc, 4), TEXTARRAYOID, "grade_labels");
	require_column_type(SPI_gettypeid(desc, 5), FLOAT8ARRAYOID, "grade_thresholds");
	deconstruct_array_builtin(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)), TEXTOID,
							  &elems, &nulls, &n);
	g->nlabels = n;
	g->labels = palloc0(sizeof(char *) * Max(n, 1));
	for (int k = 0; k < n; k++)
		g->labels[k] = nulls[k] ? NULL : TextDatumGetCString(elems[k]);
	deconstruct_array_builtin(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull)), FLOAT8OID,
							  &elems, &nulls, &n);
	g->nthresholds = n;
	g->thresholds = palloc0(sizeof(double) * Max(n, 1));
	g->threshold_null = palloc0(sizeof(bool) * Max(n, 1));
	for (int k = 0; k < n; k++)
	{
		g->threshold_null[k] = nulls[k];
		g->thresholds[k] = nulls[k] ? 0 : DatumGetFloat8(elems[k]);
	}
}

/* Read crm.score_group into the cache (inside SPI) */
static void
load_groups(RuleCache *rc)
{
	MemoryContext old;

	if (SPI_execute(colocated_sql("SELECT score_group, coalesce(date_part('epoch', half_life) * 1e6, 0), cap, "
								  "       grade_labels, grade_thresholds "
								  "FROM {crm.score_group} ORDER BY score_group"), true, 0) != SPI_OK_SELECT)
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
		load_grades(&rc->groups[i], tup, desc);
	}
	MemoryContextSwitchTo(old);
}

/* Read crm.scoring_rule and crm.fit_rule into the cache, by rule_id (inside SPI) */
static void
load_rule_rows(RuleCache *rc)
{
	MemoryContext old;

	if (SPI_execute(colocated_sql("SELECT rule_id, name, false, active, score_group, activity_kind, condition, points, once, "
								  "       coalesce(date_part('epoch', \"window\") * 1e6, 0)::int8 "
								  "  FROM {crm.scoring_rule} "
								  "UNION ALL "
								  "SELECT rule_id, name, true, active, score_group, NULL, condition, points, false, 0 "
								  "  FROM {crm.fit_rule} ORDER BY 1"), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm.scoring_rule and crm.fit_rule");
	require_column_type(SPI_gettypeid(SPI_tuptable->tupdesc, 7), JSONPATHOID, "condition");
	old = MemoryContextSwitchTo(rc->cxt);
	rc->nrules = SPI_processed;
	rc->rules = palloc0(sizeof(ScoreRule) * Max(rc->nrules, 1));
	rc->nactivity = rc->nfit = 0;
	rc->fit_reads_stage = false;
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
		r->group = scoring_find_group(rc, group);
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
			{
				rc->nfit++;
				rc->fit_reads_stage |= r->cond != NULL && path_may_read_stage(r->cond);
			}
			else
				rc->nactivity++;
		}
	}
	MemoryContextSwitchTo(old);
}

/*
 * Load groups and rules with SPI into the cache's own memory context.  In a
 * shard scope (src/shard.c) the tables are read through this node's copy
 * of each reference table: a query on the table itself would be a
 * distributed query inside the shard's, which Citus refuses.
 */
static void
load_rules(RuleCache *rc)
{
	int			pinned;
	Oid			nsp = get_namespace_oid("crm", false);

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
	load_groups(rc);
	load_rule_rows(rc);
	spi_finish_pinned(pinned);
	rc->valid = true;
}

/* The compiled rules, loaded on first use and after any rule change */
RuleCache *
scoring_rules(void)
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

/* bsearch comparator: a rule id against a rule */
static int
rule_id_cmp(const void *key, const void *elem)
{
	int64		id = *(const int64 *) key;
	int64		other = ((const ScoreRule *) elem)->rule_id;

	return id < other ? -1 : id > other ? 1 : 0;
}

/* Index of a rule by id, or -1 (the rules are sorted by id) */
int
scoring_find_rule(RuleCache *rc, int64 rule_id)
{
	ScoreRule  *r = bsearch(&rule_id, rc->rules, rc->nrules, sizeof(ScoreRule), rule_id_cmp);

	return r == NULL ? -1 : (int) (r - rc->rules);
}

/* Does a rule's condition hold for a jsonb document? */
bool
scoring_rule_matches(ScoreRule *r, Jsonb *doc)
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

/*
 * crm.condition_holds(doc, condition): a rule's condition tested as the
 * scoring triggers test it, for the rules written in SQL (loyalty's
 * activity rules) and for a marketer checking a condition
 */
PG_FUNCTION_INFO_V1(crm_condition_holds);
Datum
crm_condition_holds(PG_FUNCTION_ARGS)
{
	ScoreRule	r = {0};

	r.cond = PG_GETARG_JSONPATH_P(1);
	r.predicate = jsonpath_is_predicate(r.cond);
	PG_RETURN_BOOL(scoring_rule_matches(&r, PG_GETARG_JSONB_P(0)));
}

/* Invalidate the compiled rules everywhere when a rule table changes */
PG_FUNCTION_INFO_V1(crm_rules_changed);
Datum
crm_rules_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			relid;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "crm.rules_changed() must be called as a trigger");
	/*
	 * The cache watches the logical tables.  On Citus the trigger fires on
	 * each node's placement of the reference table (scoring_rule_102010),
	 * so invalidate the logical table of that node, which every backend of
	 * the node watches, not the placement.
	 */
	relid = get_relname_relid(trigger_table(td), get_namespace_oid("crm", false));
	CacheInvalidateRelcacheByRelid(OidIsValid(relid) ? relid : RelationGetRelid(td->tg_relation));
	return PointerGetDatum(NULL);
}

/*
 * crm.grade_of(group, score): the group's label for the score, labels[1 +
 * the number of thresholds the score is below], NULL for an unknown group
 * or a missing label.  From the cache, so that it reads no table inside a
 * query Citus pushed to a shard.
 */
PG_FUNCTION_INFO_V1(crm_grade_of);
Datum
crm_grade_of(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	double		score = PG_GETARG_FLOAT8(1);
	RuleCache  *rc = scoring_rules();
	ScoreGroup *g = NULL;
	int			below = 0;

	for (int i = 0; i < rc->ngroups; i++)
		if (strcmp(rc->groups[i].name, name) == 0)
			g = &rc->groups[i];
	if (g == NULL)
		PG_RETURN_NULL();
	for (int k = 0; k < g->nthresholds; k++)
		/* score < t in SQL: NaN sorts above every number, a NULL t counts no */
		if (!g->threshold_null[k] && float8_lt(score, g->thresholds[k]))
			below++;
	if (below >= g->nlabels || g->labels[below] == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(g->labels[below]));
}
