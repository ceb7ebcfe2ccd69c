/*
 * loyalty.h
 *		What the loyalty units share: crm's SQL run where the contact's rows
 *		are (src/shard.c), and the switch to the ledger's owner.
 */
#ifndef CRM_LOYALTY_H
#define CRM_LOYALTY_H

#include "postgres.h"

#include "utils/timestamp.h"

/* the role crm's loyalty SQL runs as, and the caller to return to */
typedef struct CallerScope
{
	Oid			user;
	int			sec;
} CallerScope;

extern uint64 loyalty_run(const char *tmpl, int nargs, Oid *types, Datum *args, const char *nulls);
extern int64 loyalty_int64_at(uint64 row, int col, int64 def);
extern CallerScope become_ledger_owner(void);
extern void back_to_caller(CallerScope caller);

/* src/loyalty.c */
extern void loyalty_settle_debt(int64 contact, int64 program, Datum credits);

/* src/loyalty_earn.c: what earning looks at, read once per statement */
typedef struct EarnRules
{
	bool		programs;		/* any programme at all */
	bool		activity;		/* active activity rules */
	bool		reduce;			/* category rules with a multiplier below 1 */
	bool		bonus;			/* category rules with a multiplier above 1 */
	bool		capped;			/* rules with a cap */
} EarnRules;

extern EarnRules loyalty_read_rules(void);
extern void loyalty_earn_orders(bool inserted, const EarnRules *rules);
extern void loyalty_earn_activities(const EarnRules *rules);

/* src/loyalty_tier.c */
extern void loyalty_upgrade_tiers(int64 program, Datum contacts, Datum since);
extern int64 loyalty_review_tiers(TimestampTz as_of);

#endif
