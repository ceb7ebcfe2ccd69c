/*
 * shard.c
 *		Which table a trigger fired on, and which tables its SQL reads and
 *		writes, on one node and on Citus.
 *
 * On one node crm's triggers fire on crm's tables.  On Citus they fire on a
 * shard (crm.activity_102079) in a worker's backend, where the distributed
 * table's name plans a distributed query, which Citus refuses inside a
 * shard.  So a trigger names its logical table in its argument (never its
 * relation's name), and while it runs (shard_scope_enter ... _leave) the
 * per-contact tables its SQL names as {crm.contact} expand to the shards
 * co-located with its own: the same contacts' rows, on the same node.
 * Outside a shard the placeholders expand to the tables themselves, so one
 * node and Citus run the same SQL.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/array.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "crm.h"
#include "shard.h"

/* The shard the running trigger fired on (0: not on a shard) */
static int64 scope_shard = 0;
static int	scope_depth = 0;

/* Co-located shards found so far: (shard, logical table) -> shard */
typedef struct ColocatedShard
{
	int64		shard;
	char		logical[NAMEDATALEN];
	int64		colocated;
} ColocatedShard;

static ColocatedShard *colocated = NULL;
static int	ncolocated = 0,
			capcolocated = 0;

/*
 * The logical table of a trigger: its first argument when it has one (the
 * triggers of crm 0.2.0 all do), else its relation's name (a 0.1.0 schema
 * not yet updated, which cannot be distributed).
 */
const char *
trigger_table(TriggerData *td)
{
	if (td->tg_trigger->tgnargs >= 1)
		return td->tg_trigger->tgargs[0];
	return RelationGetRelationName(td->tg_relation);
}

/* The shard id in a relation name "logical_<digits>", or 0 */
static int64
shard_of_name(const char *relname, const char *logical)
{
	size_t		len = strlen(logical);
	const char *p;
	int64		id = 0;

	if (strncmp(relname, logical, len) != 0 || relname[len] != '_' || relname[len + 1] == '\0')
		return 0;
	for (p = relname + len + 1; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return 0;
		id = id * 10 + (*p - '0');
	}
	return id;
}

void
shard_scope_enter(TriggerData *td, ShardScope *saved)
{
	saved->shard = scope_shard;
	scope_shard = shard_of_name(RelationGetRelationName(td->tg_relation), trigger_table(td));
	scope_depth++;
}

/*
 * Is crm distributed here?  Without Citus no catalog lookup is needed (the
 * relation is missing); a positive answer is kept for the backend.
 */
bool
tables_distributed(void)
{
	static bool distributed = false;
	bool		isnull;

	if (distributed)
		return true;
	if (!OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		return false;
	if (SPI_execute("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p "
					" WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass)",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read Citus' metadata");
	distributed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return distributed;
}

/*
 * This node's placement of a reference table (its one shard), or 0 when the
 * table is not one or has no placement here.  A function that Citus pushed
 * into a query on a shard reads configuration through it, since a query on
 * the table itself would be a distributed query inside the shard's.  Kept
 * for the backend.
 */
static int64
reference_placement(const char *logical)
{
	static struct
	{
		char		logical[NAMEDATALEN];
		int64		shard;
	}			known[32];
	static int	nknown = 0;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	int64		shard = 0;

	for (int i = 0; i < nknown; i++)
		if (strcmp(known[i].logical, logical) == 0)
			return known[i].shard;
	args[0] = CStringGetTextDatum(quote_qualified_identifier("crm", logical));
	if (SPI_execute_with_args("SELECT s.shardid FROM pg_catalog.pg_dist_shard s "
							  "  JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid "
							  "  JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
							  " WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							  "   AND t.partmethod OPERATOR(pg_catalog.=) 'n' "
							  "   AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group)",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read Citus' metadata");
	if (SPI_processed == 1)
		shard = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (nknown < lengthof(known))
	{
		strlcpy(known[nknown].logical, logical, NAMEDATALEN);
		known[nknown++].shard = shard;
	}
	return shard;
}

/*
 * Around the reads of one contact's rows by a function Citus may have
 * pushed to a worker with a query on a shard (crm.score over crm.contact):
 * when this node holds the contact's shard, {crm.name} expands to the
 * co-located shards, as in a trigger; elsewhere (one node, the
 * coordinator) to the tables.  Must be called inside SPI.
 */
void
contact_scope_enter(int64 contact_id, ShardScope *saved)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(contact_id)};
	bool		isnull;

	saved->shard = scope_shard;
	scope_depth++;
	if (!tables_distributed())
		return;
	/* the shard whose hash range holds the id (Citus hashes bigint with hashint8) */
	if (SPI_execute_with_args("SELECT s.shardid FROM pg_catalog.pg_dist_shard s "
							  "  JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
							  " WHERE s.logicalrelid OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass "
							  "   AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group) "
							  "   AND pg_catalog.hashint8($1) BETWEEN s.shardminvalue::integer AND s.shardmaxvalue::integer",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read Citus' metadata");
	if (SPI_processed == 1)
		scope_shard = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

bool
shard_scope_active(void)
{
	return scope_depth > 0 && scope_shard != 0;
}

/* The shard of the scope (0: none, one node) */
int64
shard_scope_shard(void)
{
	return shard_scope_active() ? scope_shard : 0;
}

void
shard_scope_leave(ShardScope *saved)
{
	scope_shard = saved->shard;
	scope_depth--;
}

/* The shard of a logical table co-located with shard, from Citus' metadata */
static int64
colocated_shard(int64 shard, const char *logical)
{
	int			i;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	bool		isnull;
	int64		found;

	for (i = 0; i < ncolocated; i++)
		if (colocated[i].shard == shard && strcmp(colocated[i].logical, logical) == 0)
			return colocated[i].colocated;

	args[0] = Int64GetDatum(shard);
	args[1] = CStringGetTextDatum(quote_qualified_identifier("crm", logical));
	/*
	 * The same hash range of the other table (Citus keeps co-located shards
	 * on one node), or a reference table's one shard (on every node)
	 */
	if (SPI_execute_with_args("SELECT o.shardid FROM pg_catalog.pg_dist_shard o "
							  "  JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid OPERATOR(pg_catalog.=) o.logicalrelid "
							  " WHERE o.logicalrelid OPERATOR(pg_catalog.=) $2::pg_catalog.regclass "
							  "   AND (t.partmethod OPERATOR(pg_catalog.=) 'n' OR o.shardminvalue OPERATOR(pg_catalog.=) "
							  "        (SELECT s.shardminvalue FROM pg_catalog.pg_dist_shard s WHERE s.shardid OPERATOR(pg_catalog.=) $1))",
							  2, types, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no shard of crm.%s is co-located with shard " INT64_FORMAT, logical, shard),
				 errhint("Distribute crm's tables with crm.distribute(), which co-locates them with crm.contact.")));
	found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

	if (ncolocated == capcolocated)
	{
		capcolocated = capcolocated ? capcolocated * 2 : 16;
		colocated = colocated
			? repalloc(colocated, sizeof(ColocatedShard) * capcolocated)
			: MemoryContextAlloc(TopMemoryContext, sizeof(ColocatedShard) * capcolocated);
	}
	colocated[ncolocated].shard = shard;
	strlcpy(colocated[ncolocated].logical, logical, NAMEDATALEN);
	colocated[ncolocated].colocated = found;
	ncolocated++;
	return found;
}

/* Is the shard one of a reference table (one placement per node)? */
static bool
is_reference_shard(int64 shard)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(shard)};

	if (SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_dist_shard s "
							  "  JOIN pg_catalog.pg_dist_partition t ON t.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid "
							  " WHERE s.shardid OPERATOR(pg_catalog.=) $1 AND t.partmethod OPERATOR(pg_catalog.=) 'n'",
							  1, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read Citus' metadata");
	return SPI_processed > 0;
}

/*
 * Run a statement over per-contact tables ({crm.name}) for every contact a
 * trigger's node holds.  Off Citus, and in a trigger on a distributed
 * table's shard, that is one run.  A trigger on a reference table fires on
 * each node's placement of it (crm.scoring_rule_102010), so there the
 * statement runs once for each shard group of crm.contact on this node:
 * together the nodes cover every contact, each once.  Must be called inside
 * SPI.  Returns the rows processed.
 */
uint64
run_for_local_contacts(const char *tmpl, int nargs, Oid *types, Datum *args)
{
	int64		saved = scope_shard;
	int64	   *shards;
	volatile uint64 n = 0;
	uint64		nshards;
	bool		isnull;

	if (!shard_scope_active() || !is_reference_shard(scope_shard))
	{
		if (SPI_execute_with_args(colocated_sql(tmpl), nargs, types, args, NULL, false, 0) < 0)
			elog(ERROR, "could not run \"%s\"", tmpl);
		return SPI_processed;
	}
	if (SPI_execute("SELECT s.shardid FROM pg_catalog.pg_dist_shard s "
					"  JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid "
					" WHERE s.logicalrelid OPERATOR(pg_catalog.=) 'crm.contact'::pg_catalog.regclass "
					"   AND p.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group) "
					" ORDER BY s.shardid", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the shards of crm.contact on this node");
	nshards = SPI_processed;
	shards = palloc(sizeof(int64) * Max(nshards, 1));
	for (uint64 i = 0; i < nshards; i++)
		shards[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	PG_TRY();
	{
		for (uint64 i = 0; i < nshards; i++)
		{
			scope_shard = shards[i];
			if (SPI_execute_with_args(colocated_sql(tmpl), nargs, types, args, NULL, false, 0) < 0)
				elog(ERROR, "could not run \"%s\"", tmpl);
			n += SPI_processed;
		}
	}
	PG_FINALLY();
	{
		scope_shard = saved;
	}
	PG_END_TRY();
	return n;
}

/*
 * The qualified name to use for crm's logical table: the table itself, or
 * inside a trigger on a shard, its co-located shard.  Must be called inside
 * SPI.
 */
char *
colocated_rel(const char *logical)
{
	int64		placement;

	if (scope_depth > 0 && scope_shard != 0)
		return quote_qualified_identifier("crm", psprintf("%s_" INT64_FORMAT, logical,
														  colocated_shard(scope_shard, logical)));
	placement = tables_distributed() ? reference_placement(logical) : 0;
	if (placement != 0)
		return quote_qualified_identifier("crm", psprintf("%s_" INT64_FORMAT, logical, placement));
	return quote_qualified_identifier("crm", logical);
}

/*
 * Expand every {crm.name} in a SQL text to colocated_rel(name).  Only a brace, the
 * schema "crm.", a lower-case identifier and a brace are a placeholder, so
 * array literals ('{a,b}') and JSON pass unchanged.
 */
char *
colocated_sql(const char *tmpl)
{
	StringInfoData out;
	const char *p = tmpl;

	initStringInfo(&out);
	while (*p)
	{
		const char *q = p + 5;

		if (strncmp(p, "{crm.", 5) == 0)
		{
			while ((*q >= 'a' && *q <= 'z') || *q == '_')
				q++;
			if (*q == '}' && q > p + 5)
			{
				appendStringInfoString(&out, colocated_rel(pnstrdup(p + 5, q - (p + 5))));
				p = q + 1;
				continue;
			}
		}
		appendStringInfoChar(&out, *p++);
	}
	return out.data;
}

/*
 * One bigint column of one or two transition tables (the old and new rows;
 * either may be NULL) as an array datum.  Read in C, not with SQL over the
 * transition tables, which Citus cannot run inside a shard.
 */
Datum
transition_ids(Tuplestorestate *ts1, Tuplestorestate *ts2, TupleDesc desc, const char *column)
{
	int			attno = SPI_fnumber(desc, column);
	TupleTableSlot *slot;
	ArrayBuildState *astate = NULL;
	Tuplestorestate *stores[2] = {ts1, ts2};

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", column);
	require_column_type(SPI_gettypeid(desc, attno), INT8OID, column);
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	for (int i = 0; i < 2; i++)
	{
		if (stores[i] == NULL)
			continue;
		tuplestore_rescan(stores[i]);
		while (tuplestore_gettupleslot(stores[i], true, false, slot))
		{
			bool		isnull;
			Datum		d = slot_getattr(slot, attno, &isnull);

			astate = accumArrayResult(astate, d, isnull, INT8OID, CurrentMemoryContext);
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	if (astate == NULL)
		return PointerGetDatum(construct_empty_array(INT8OID));
	return makeArrayResult(astate, CurrentMemoryContext);
}

/* Plans of kept_plan's queries on shards, one per expanded text */
typedef struct ShardPlan
{
	char	   *sql;
	SPIPlanPtr	plan;
} ShardPlan;

static ShardPlan *shard_plans = NULL;
static int	nshard_plans = 0,
			capshard_plans = 0;

/*
 * kept_plan inside a shard scope: a plan per expanded text (per shard),
 * kept for the backend like the others, so a bulk load into a shard
 * prepares each query once.
 */
SPIPlanPtr
shard_plan(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	for (int i = 0; i < nshard_plans; i++)
		if (strcmp(shard_plans[i].sql, sql) == 0)
			return shard_plans[i].plan;
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (nshard_plans == capshard_plans)
	{
		capshard_plans = capshard_plans ? capshard_plans * 2 : 16;
		shard_plans = shard_plans
			? repalloc(shard_plans, sizeof(ShardPlan) * capshard_plans)
			: MemoryContextAlloc(TopMemoryContext, sizeof(ShardPlan) * capshard_plans);
	}
	shard_plans[nshard_plans].sql = MemoryContextStrdup(TopMemoryContext, sql);
	shard_plans[nshard_plans].plan = plan;
	return shard_plans[nshard_plans++].plan;
}

/* The shards a call site has done its work in */
typedef struct DoneShards
{
	int			n;
	int64		shards[FLEXIBLE_ARRAY_MEMBER];
} DoneShards;

#define DONE_SHARDS_MAX	1024

/*
 * For a function called per row of a query Citus pushes to the shards (or
 * run on one node, shard 0) whose first call in a shard does the work for
 * the whole shard: is this that first call?  Marks the shard done.
 */
bool
shard_first_call(FunctionCallInfo fcinfo, int64 shard)
{
	DoneShards *done = (DoneShards *) fcinfo->flinfo->fn_extra;

	if (done == NULL)
	{
		done = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									  offsetof(DoneShards, shards) + sizeof(int64) * DONE_SHARDS_MAX);
		fcinfo->flinfo->fn_extra = done;
	}
	for (int i = 0; i < done->n; i++)
		if (done->shards[i] == shard)
			return false;
	if (done->n >= DONE_SHARDS_MAX)
		elog(ERROR, "a per-shard call ran over more than %d shards in one query", DONE_SHARDS_MAX);
	done->shards[done->n++] = shard;
	return true;
}
