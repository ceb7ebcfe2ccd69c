/*
 * shard.h
 *		The logical table of a trigger and the co-located shards of its SQL
 *		(src/shard.c): one code path for one node and Citus.
 */
#ifndef CRM_SHARD_H
#define CRM_SHARD_H

#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"

/* What shard_scope_enter replaced, for shard_scope_leave */
typedef struct ShardScope
{
	int64		shard;
} ShardScope;

/* Is crm distributed on Citus here (a coordinator or a worker)? */
extern bool tables_distributed(void);

/* The logical table a trigger fired on ("activity"), from its argument */
extern const char *trigger_table(TriggerData *td);

/*
 * Around a trigger's SQL: {crm.name} then expands to the shard of crm.name
 * co-located with the trigger's shard (or to crm.name off a shard).  Leave
 * in PG_FINALLY, so an error does not leave the scope set.
 */
extern void shard_scope_enter(TriggerData *td, ShardScope *saved);
extern void shard_scope_leave(ShardScope *saved);

/*
 * Run the statements (a braced block) inside a scope that enter (a call
 * with &scope_ as its last argument) sets up, left however they end
 */
#define WITH_SCOPE(enter, ...) \
	do { \
		ShardScope	scope_; \
		enter; \
		PG_TRY(); \
		{ \
			__VA_ARGS__ \
		} \
		PG_FINALLY(); \
		{ \
			shard_scope_leave(&scope_); \
		} \
		PG_END_TRY(); \
	} while (0)

/* ... the trigger's shard scope */
#define WITH_SHARD_SCOPE(td, ...) WITH_SCOPE(shard_scope_enter((td), &scope_), __VA_ARGS__)

extern bool shard_scope_active(void);
extern int64 shard_scope_shard(void);

/* The same for one contact's rows, read by a function Citus may push to a worker */
extern void contact_scope_enter(int64 contact_id, ShardScope *saved);

/* ... one contact's shard scope */
#define WITH_CONTACT_SCOPE(contact_id, ...) WITH_SCOPE(contact_scope_enter((contact_id), &scope_), __VA_ARGS__)

/* crm.name or its co-located shard; colocated_sql expands every {crm.name} of a text */
extern char *colocated_rel(const char *logical);
extern char *colocated_sql(const char *tmpl);

/* kept_plan's plan of an expanded text inside a shard scope (src/crm.c) */
extern SPIPlanPtr shard_plan(const char *sql, int nargs, Oid *argtypes);

/*
 * Run a statement over per-contact tables for every contact of the trigger's
 * node: once, or on a reference table's placement once per local shard group
 */
extern uint64 run_for_local_contacts(const char *tmpl, int nargs, Oid *types, Datum *args);

/* A bigint column of one or two transition tables (either may be NULL) as an array */
extern Datum transition_ids(Tuplestorestate *ts1, Tuplestorestate *ts2, TupleDesc desc,
							const char *column);

/* Is this the first call of a per-row function in the shard (0: one node)? */
extern bool shard_first_call(FunctionCallInfo fcinfo, int64 shard);

#endif							/* CRM_SHARD_H */
