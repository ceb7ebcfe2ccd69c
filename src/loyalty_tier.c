/*
 * loyalty_tier.c
 *		Loyalty tiers: a contact moves up at the earning that brings its
 *		qualifying points (earned less reversed in the programme's
 *		tier_window up to that earning) to a tier's threshold, and is
 *		reviewed at the end of the tier's period: kept for another period,
 *		or lowered to what the window then justifies.  Every change is
 *		logged in crm.tier_history at the time it happened in the world.
 *
 * Both run as the ledger's owner on the contact's shard (src/shard.c),
 * called from the earning trigger and from crm.expire_points
 * (src/loyalty.c).  The window is a frame offset, which SQL takes only as a
 * constant: each programme's is written into its statement.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "loyalty.h"

/* The programme's tier window as an SQL constant */
static char *
tier_window(int64 program)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(program)};
	bool		isnull;
	Datum		w;

	if (loyalty_run("SELECT p.tier_window::text FROM {crm.loyalty_program} p WHERE p.program_id = $1",
					1, types, args, NULL) != 1)
		elog(ERROR, "loyalty programme " INT64_FORMAT " is missing", program);
	w = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return psprintf("%s::interval", quote_literal_cstr(TextDatumGetCString(w)));
}

/* The programme's tiers ranked by their thresholds (1 = the lowest) */
#define TIERS_CTE \
	"tiers AS (SELECT t.tier, t.qualifying_points," \
	"                 row_number() OVER (ORDER BY t.qualifying_points) AS rank" \
	"            FROM {crm.loyalty_tier} t WHERE t.program_id = $3)"

/*
 * The contacts (bigint[]) that earned in the programme, each from its first
 * new credit's time (timestamptz[]) on: at each earning since then, the
 * highest tier the window's qualifying points reach; each step up is
 * logged at that earning's time (never before the tier held then was
 * reached), and the last one is held from then for a tier window
 */
void
loyalty_upgrade_tiers(int64 program, Datum contacts, Datum since)
{
	Oid			types[3] = {INT8ARRAYOID, TIMESTAMPTZARRAYOID, INT8OID};
	Datum		args[3] = {contacts, since, Int64GetDatum(program)};
	char	   *window = tier_window(program);

	loyalty_run(psprintf(
		"WITH c AS (SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) AS c(contact_id, since)),"
		" " TIERS_CTE ","
		" b AS (SELECT b.contact_id, b.tier_since,"
		"              coalesce((SELECT t.rank FROM tiers t WHERE t.tier = b.tier), 0) AS cur"
		"         FROM {crm.points_balance} b JOIN c ON c.contact_id = b.contact_id WHERE b.program_id = $3),"
		" r AS (SELECT l.contact_id, l.entry_id, l.occurred_at, l.kind, c.since,"
		"              sum(l.points) OVER (PARTITION BY l.contact_id ORDER BY l.occurred_at"
		"                                  RANGE BETWEEN %s PRECEDING AND CURRENT ROW) AS q"
		"         FROM {crm.points_ledger} l JOIN c ON c.contact_id = l.contact_id"
		"        WHERE l.program_id = $3 AND l.kind IN ('earn', 'reverse') AND l.occurred_at >= c.since - %s),"
		" at_earning AS (SELECT r.*, coalesce((SELECT max(t.rank) FROM tiers t WHERE t.qualifying_points <= r.q), 0) AS rank"
		"                  FROM r WHERE r.kind = 'earn' AND r.occurred_at >= r.since),"
		" reach AS (SELECT e.contact_id, e.entry_id, e.occurred_at, e.q, b.cur, b.tier_since,"
		"                  greatest(b.cur, max(e.rank) OVER (PARTITION BY e.contact_id ORDER BY e.occurred_at, e.entry_id"
		"                                                    ROWS UNBOUNDED PRECEDING)) AS reached"
		"             FROM at_earning e JOIN b ON b.contact_id = e.contact_id),"
		" steps AS (SELECT x.*, lag(x.reached, 1, x.cur) OVER (PARTITION BY x.contact_id ORDER BY x.occurred_at, x.entry_id) AS before"
		"             FROM reach x),"
		" up AS (SELECT s.contact_id, s.entry_id, greatest(s.occurred_at, s.tier_since) AS at, s.before, s.reached, s.q"
		"          FROM steps s WHERE s.reached > s.before),"
		" logged AS ("
		"  INSERT INTO {crm.tier_history} (contact_id, history_id, program_id, from_tier, to_tier, qualifying_points, changed_at, reason)"
		"  SELECT u.contact_id, nextval('crm.tier_history_history_id_seq'), $3, f.tier, t.tier, u.q, u.at, 'upgrade'"
		"    FROM up u LEFT JOIN tiers f ON f.rank = u.before JOIN tiers t ON t.rank = u.reached"
		"   ORDER BY u.contact_id, u.at, u.entry_id),"
		" last AS (SELECT DISTINCT ON (u.contact_id) u.contact_id, u.at, u.reached FROM up u"
		"           ORDER BY u.contact_id, u.at DESC, u.reached DESC) "
		"UPDATE {crm.points_balance} b SET tier = t.tier, tier_since = last.at, tier_until = last.at + %s,"
		"       updated_at = clock_timestamp()"
		"  FROM last JOIN tiers t ON t.rank = last.reached"
		" WHERE b.contact_id = last.contact_id AND b.program_id = $3",
		window, window, window), 3, types, args, NULL);
}

/*
 * One pass over the programme's tiers whose period ended by as_of: the
 * qualifying points of the window up to the period's end keep the tier
 * (for another period) or lower it, logged at the period's end.  The
 * balances are locked first, in contact order, as every writer of lots
 * does.  Returns the tiers reviewed.
 */
static uint64
review_pass(int64 program, TimestampTz as_of, const char *window)
{
	Oid			types[3] = {TIMESTAMPTZOID, INT8OID, INT8OID};
	Datum		args[3] = {TimestampTzGetDatum(as_of), Int64GetDatum(program), Int64GetDatum(program)};

	if (loyalty_run("SELECT 1 FROM {crm.points_balance} b WHERE b.program_id = $2 AND b.tier_until <= $1"
					" ORDER BY b.contact_id FOR UPDATE", 2, types, args, NULL) == 0)
		return 0;
	return loyalty_run(psprintf(
		"WITH " TIERS_CTE ","
		" due AS (SELECT b.contact_id, b.tier, b.tier_until AS at,"
		"                coalesce((SELECT t.rank FROM tiers t WHERE t.tier = b.tier), 0) AS cur"
		"           FROM {crm.points_balance} b WHERE b.program_id = $2 AND b.tier_until <= $1),"
		" q AS (SELECT d.*, coalesce((SELECT sum(l.points) FROM {crm.points_ledger} l"
		"                             WHERE l.contact_id = d.contact_id AND l.program_id = $2"
		"                               AND l.kind IN ('earn', 'reverse')"
		"                               AND l.occurred_at >= d.at - %s AND l.occurred_at <= d.at), 0)::bigint AS q"
		"         FROM due d),"
		" nw AS (SELECT q.*, least(q.cur, coalesce((SELECT max(t.rank) FROM tiers t WHERE t.qualifying_points <= q.q), 0)) AS kept"
		"          FROM q),"
		" logged AS ("
		"  INSERT INTO {crm.tier_history} (contact_id, history_id, program_id, from_tier, to_tier, qualifying_points, changed_at, reason)"
		"  SELECT n.contact_id, nextval('crm.tier_history_history_id_seq'), $2, n.tier, t.tier, n.q, n.at, 'review'"
		"    FROM nw n LEFT JOIN tiers t ON t.rank = n.kept"
		"   WHERE t.tier IS DISTINCT FROM n.tier ORDER BY n.contact_id) "
		"UPDATE {crm.points_balance} b SET tier = t.tier,"
		"       tier_since = CASE WHEN t.tier IS NULL THEN NULL WHEN t.tier = n.tier THEN b.tier_since ELSE n.at END,"
		"       tier_until = CASE WHEN t.tier IS NULL THEN NULL ELSE n.at + %s END,"
		"       updated_at = clock_timestamp()"
		"  FROM nw n LEFT JOIN tiers t ON t.rank = n.kept"
		" WHERE b.contact_id = n.contact_id AND b.program_id = $2",
		window, window), 3, types, args, NULL);
}

/*
 * Review every tier here whose period ended by as_of, period after period
 * (a contact reviewed at the end of one period may be due again); the
 * tiers reviewed
 */
int64
loyalty_review_tiers(TimestampTz as_of)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(as_of)};
	uint64		n;
	int64	   *programs;
	int64		reviewed = 0;

	n = loyalty_run("SELECT DISTINCT b.program_id FROM {crm.points_balance} b WHERE b.tier_until <= $1 ORDER BY 1",
					1, types, args, NULL);
	programs = palloc(sizeof(int64) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		programs[i] = loyalty_int64_at(i, 1, 0);
	for (uint64 i = 0; i < n; i++)
	{
		char	   *window = tier_window(programs[i]);
		uint64		pass;

		while ((pass = review_pass(programs[i], as_of, window)) > 0)
		{
			reviewed += pass;
			CHECK_FOR_INTERRUPTS();
		}
	}
	return reviewed;
}
