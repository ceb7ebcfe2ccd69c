/*
 * crm.c
 *		Module magic and small helpers shared by every crm unit.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "crm.h"
#include "shard.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Module load: define the settings */
void
_PG_init(void)
{
	define_restore_settings();
}

/* Convert a server-encoded string to a freshly palloc'd UTF-8 copy */
char *
server_to_utf8(const char *s, int len, int *outlen)
{
	char	   *res;

	res = (char *) pg_do_encoding_conversion((unsigned char *) s, len,
											 GetDatabaseEncoding(), PG_UTF8);
	if (res == s)
	{
		res = palloc(len + 1);
		memcpy(res, s, len);
		res[len] = '\0';
	}
	*outlen = strlen(res);
	return res;
}

/* Convert a UTF-8 string back to the server encoding */
char *
utf8_to_server(const char *s, int len)
{
	char	   *res;

	res = (char *) pg_do_encoding_conversion((unsigned char *) s, len,
											 PG_UTF8, GetDatabaseEncoding());
	if (res == s)
		res = pnstrdup(s, len);
	return res;
}

/*
 * The path crm's own SQL runs under, as every crm SQL function's SET clause
 * gives it: a function, operator or type planted in a schema on the caller's
 * path (CVE-2018-1058) cannot capture a name, and temporary objects come
 * last.  crm's tables are always named with their schema.
 */
#define CRM_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Connect to SPI and pin the search path until spi_finish_pinned(), the way a
 * function's SET clause does (a GUC nest level, undone by the matching
 * finish or by the abort of an error).  Kept plans stay valid: the plan
 * cache replans when the path differs from the one a plan was made under.
 */
int
spi_connect_pinned(void)
{
	int			pinned;

	SPI_connect();
	pinned = NewGUCNestLevel();
	(void) set_config_option("search_path", CRM_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return pinned;
}

void
spi_finish_pinned(int pinned)
{
	AtEOXact_GUC(true, pinned);
	SPI_finish();
}

/*
 * A query prepared on first use and kept for the life of the backend (for
 * queries run once per row or per contact).  The plan cache replans it when
 * the tables it reads change.  Must be called inside SPI.
 */
SPIPlanPtr
kept_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	/* in a trigger on a Citus shard the tables are that shard's */
	if (shard_scope_active())
		return shard_plan(colocated_sql(sql), nargs, argtypes);
	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(colocated_sql(sql), nargs, argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result));
		*slot = plan;
	}
	return *slot;
}

/*
 * The role that installs crm owns its tables (src/ownership.sql) and may
 * alter them.  The C units read some columns as a fixed type (a pointer to
 * jsonb, text, an int8 written into a row); they check it first, so that an
 * altered column makes an error, not a read of the wrong memory.
 */
void
require_column_type(Oid actual, Oid expected, const char *column)
{
	if (actual != expected)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column %s has type %s, not %s", column,
						format_type_be(actual), format_type_be(expected)),
				 errdetail("crm reads this column as %s.", format_type_be(expected)),
				 errhint("Give the column back the type CREATE EXTENSION crm made it with.")));
}

/* The smallest and largest id of an int8[] (crm.h) */
void
id_range(Datum ids, int64 *lo, int64 *hi)
{
	ArrayType  *a = DatumGetArrayTypeP(ids);
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(a, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	*lo = *hi = 0;
	for (int i = 0, first = 1; i < n; i++)
	{
		int64		v;

		if (nulls[i])
			continue;
		v = DatumGetInt64(elems[i]);
		if (first || v < *lo)
			*lo = v;
		if (first || v > *hi)
			*hi = v;
		first = 0;
	}
	pfree(elems);
	pfree(nulls);
}
