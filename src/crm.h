/*
 * crm.h
 *		Declarations shared by the C units of the crm extension.
 */
#ifndef CRM_H
#define CRM_H

#include "postgres.h"

#include "common/hashfn.h"
#include "executor/spi.h"

#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* Convert a server-encoded string to a freshly palloc'd UTF-8 copy */
extern char *server_to_utf8(const char *s, int len, int *outlen);

/* Convert a UTF-8 string back to the server encoding */
extern char *utf8_to_server(const char *s, int len);

/*
 * SPI_connect / SPI_finish with the search_path pinned in between: crm's SQL
 * texts name PostgreSQL's functions, operators and types unqualified, so
 * they must resolve in pg_catalog whatever the caller's path holds.
 */
extern int	spi_connect_pinned(void);
extern void spi_finish_pinned(int pinned);

/* A query prepared on first use into *slot and kept for the backend */
extern SPIPlanPtr kept_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes);

/*
 * The smallest and largest id of an int8[] of contact ids (0, 0 when empty):
 * a range predicate beside a join with the array lets the statement use the
 * contact_id indexes instead of scanning a table per batch of ids
 */
extern void id_range(Datum ids, int64 *lo, int64 *hi);

/* A hash of an id, for lib/simplehash.h tables keyed by contact or product */
static inline uint32
hash_id(int64 id)
{
	uint64		u = (uint64) id;

	return murmurhash32((uint32) (u ^ (u >> 32)));
}

/* Refuse a column whose type is not the one the C code reads it as */
extern void require_column_type(Oid actual, Oid expected, const char *column);

/* Is this session loading a crm dump? (the setting crm.loading_dump, src/restore.c) */
extern bool loading_dump;
extern void define_restore_settings(void);

#endif							/* CRM_H */
