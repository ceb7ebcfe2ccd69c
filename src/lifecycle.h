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

/* One contact's move at a time */
extern MoveTimes move_time_of(int64 contact_id, TimestampTz at);

/* run_move, each contact's move dated by times */
extern uint64 run_move_at(const char *sql, int nargs, Oid *types, Datum *values,
						  const char *reason, bool automatic, bool force, MoveTimes times);

/* Set stages as crm's own forced move without logging it (the caller does) */
extern uint64 run_move_unlogged(const char *sql, int nargs, Oid *types, Datum *values);

/*
 * lifecycle_rebuild.c: replace the automatic history of the contacts
 * (int8[]) by the one their events imply; inside SPI
 */
extern int64 rebuild_contacts(Datum ids);

/* Funnel rank of a stage label: subscriber 0 .. evangelist 6; exits negative */
extern int	stage_funnel_rank(const char *label);

/* Would the guard let a move between two stage labels through without force? */
extern bool stage_move_forward(const char *from, const char *to);

/* Why the policy moved a contact: the same words live and rebuilt */
#define REASON_SQL_SCORE	"SQL rule: engagement and fit scores reached the SQL thresholds"
#define REASON_MQL_SCORE	"MQL rule: engagement and fit scores reached the MQL thresholds"
#define REASON_ACCEPTANCE	"sales acceptance activity"
#define REASON_DEAL_OPENED	"deal opened"
#define REASON_DEAL_WON		"deal won"
#define REASON_DEAL_REVIVED	"deal won after churn: revived"
#define REASON_ORDER		"order placed"
#define REASON_ORDER_REVIVED "order after churn: revived"
#define REASON_CHURN		"no purchase within the churn window"

/* Is one of our own moves running? (its UPDATE fires the triggers again) */
extern bool move_running(void);

#endif							/* LIFECYCLE_H */
