/*
 * roles.c
 *		The tests of crm's row-level security policies (src/roles.sql).
 *
 * Citus refuses a policy with a subquery on a distributed or reference
 * table (it sends the policy to every shard), so the policies call these
 * functions instead of reading crm.my_roles() or crm.contact in a sublink.
 * On one node and on a Citus worker they answer the same: a contact's own
 * rows are read through the co-located shard (src/shard.c), under the
 * contact table's own policy, as the sublinks were.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "crm.h"
#include "shard.h"

/* contact id -> may the current user see it (a query's answers so far) */
typedef struct VisibleEntry
{
	int64		contact_id;
	char		status;
	bool		visible;
} VisibleEntry;

#define SH_PREFIX		visible
#define SH_ELEMENT_TYPE	VisibleEntry
#define SH_KEY_TYPE		int64
#define SH_KEY			contact_id
#define SH_HASH_KEY(tb, k)	hash_id(k)
#define SH_EQUAL(tb, a, b)	((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* A scan of a million activities should not keep a million answers */
#define VISIBLE_CACHE_MAX	65536

/* Is the current user a member of the role named owner (directly or not)? */
PG_FUNCTION_INFO_V1(crm_owned_by_me);
Datum
crm_owned_by_me(PG_FUNCTION_ARGS)
{
	char	   *owner = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			role = get_role_oid(owner, true);

	/* as pg_has_role(..., 'MEMBER'), which crm.my_roles() asks: superusers too */
	PG_RETURN_BOOL(OidIsValid(role) && is_member_of_role(GetUserId(), role));
}

/* Does the kept query find a row? */
static bool
row_found(SPIPlanPtr *plan, const char *sql, Oid *types, Datum *args)
{
	if (SPI_execute_plan(kept_plan(plan, sql, 1, types), args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read crm.contact");
	return SPI_processed > 0;
}

/* The same, in the contact's shard scope */
static bool
contact_row_found(int64 id, SPIPlanPtr *plan, const char *sql, Oid *types, Datum *args)
{
	volatile bool found = false;

	WITH_CONTACT_SCOPE(id, {
		found = row_found(plan, sql, types, args);
	});
	return found;
}

/*
 * Does the query find a row for the id, as the current user (under the
 * contact table's policy)?  On a Citus worker the contact's rows are in the
 * shards co-located with the row being checked.
 */
static bool
readable(SPIPlanPtr *plan, const char *sql, int64 id, bool contact_id)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(id)};
	int			pinned;
	bool		found;

	pinned = spi_connect_pinned();
	found = contact_id ? contact_row_found(id, plan, sql, types, args) : row_found(plan, sql, types, args);
	spi_finish_pinned(pinned);
	return found;
}

/*
 * The answer for an id, looked up once per id and query: the cache lasts as
 * long as the expression of the plan that calls the function
 */
static bool
cached_answer(FunctionCallInfo fcinfo, SPIPlanPtr *plan, const char *sql, bool contact_id)
{
	int64		id = PG_GETARG_INT64(0);
	visible_hash *cache = (visible_hash *) fcinfo->flinfo->fn_extra;
	VisibleEntry *e;
	bool		visible;
	bool		found;

	if (cache == NULL || cache->members >= VISIBLE_CACHE_MAX)
	{
		if (cache != NULL)
			visible_destroy(cache);
		cache = visible_create(fcinfo->flinfo->fn_mcxt, 256, NULL);
		fcinfo->flinfo->fn_extra = cache;
	}
	e = visible_lookup(cache, id);
	if (e != NULL)
		return e->visible;
	visible = readable(plan, sql, id, contact_id);
	e = visible_insert(cache, id, &found);
	e->visible = visible;
	return visible;
}

/* A row of a per-contact table is visible when its contact is */
PG_FUNCTION_INFO_V1(crm_contact_visible);
Datum
crm_contact_visible(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	PG_RETURN_BOOL(cached_answer(fcinfo, &plan, "SELECT 1 FROM {crm.contact} WHERE contact_id = $1", true));
}

/* A company is visible to a rep with a contact there */
PG_FUNCTION_INFO_V1(crm_company_has_my_contact);
Datum
crm_company_has_my_contact(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;

	PG_RETURN_BOOL(cached_answer(fcinfo, &plan, "SELECT 1 FROM crm.contact WHERE company_id = $1 LIMIT 1", false));
}
