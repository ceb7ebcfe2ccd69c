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

/*
 * When the moves happened in the world: two arrays, contact ids (int8[])
 * and their times (timestamptz[]); ids 0 for none (the clock).  A contact
 * not in them moves at the clock.
 */
typedef struct MoveTimes
{
	Datum		ids;
	Datum		at;
} MoveTimes;

/* run_move, each contact's move dated by times */
extern uint64 run_move_at(const char *sql, int nargs, Oid *types, Datum *values,
						  const char *reason, bool automatic, bool force, MoveTimes times);

/* Is one of our own moves running? (its UPDATE fires the triggers again) */
extern bool move_running(void);

#endif							/* LIFECYCLE_H */
