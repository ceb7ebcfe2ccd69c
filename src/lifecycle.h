/*
 * lifecycle.h
 *		What lifecycle.c gives lifecycle_promote.c: the move context through
 *		which crm's own stage UPDATEs pass the guard trigger and are logged.
 */
#ifndef LIFECYCLE_H
#define LIFECYCLE_H

#include "postgres.h"

/*
 * Run one UPDATE of crm.contact stages as crm's own move (the guard lets a
 * forced one through; the log records reason, automatic, forced); returns
 * the rows changed.
 */
extern uint64 run_move(const char *sql, int nargs, Oid *types, Datum *values,
					   const char *reason, bool automatic, bool force);

/* Is one of our own moves running? (its UPDATE fires the triggers again) */
extern bool move_running(void);

#endif							/* LIFECYCLE_H */
