/*
 * loyalty_earn.c
 *		Earning points, in the statement that writes the orders or the
 *		activities: an order that reaches an earning status earns its
 *		programme's points per currency unit (less for the lines of
 *		categories whose multiplier is below 1) and a bonus credit per
 *		category rule above 1; an activity earns the points of each activity
 *		rule whose kind and jsonpath condition it meets.  A rule's bonus may
 *		be capped per contact and calendar period.
 *
 * Every credit is written once: the unique indexes of crm.points_ledger
 * (order and rule, activity and rule) make a replay, a status update or a
 * second path a no-op.  Each credit becomes a lot; the balance is added to
 * in the same statement; debts are paid and tiers reviewed after it
 * (src/loyalty.c, src/loyalty_tier.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "loyalty.h"

/* What earning must look at, read once per statement */
EarnRules
loyalty_read_rules(void)
{
	EarnRules	r = {false, false, false, false, false};
	bool		isnull;

	loyalty_run("SELECT EXISTS (SELECT 1 FROM {crm.loyalty_program} p),"
				"       EXISTS (SELECT 1 FROM {crm.earning_rule} r WHERE r.active AND r.kind = 'activity'),"
				"       EXISTS (SELECT 1 FROM {crm.earning_rule} r WHERE r.active AND r.kind = 'category' AND r.multiplier < 1),"
				"       EXISTS (SELECT 1 FROM {crm.earning_rule} r WHERE r.active AND r.kind = 'category' AND r.multiplier > 1),"
				"       EXISTS (SELECT 1 FROM {crm.earning_rule} r WHERE r.active AND r.cap_points IS NOT NULL)",
				0, NULL, NULL, NULL);
	r.programs = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	r.activity = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	r.reduce = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	r.bonus = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	r.capped = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	return r;
}

/*
 * The candidate credits of the statement's orders, as cand(contact_id,
 * source_id, program_id, rule_id, at, points, cap_points, cap_period,
 * expiry, expires_after): the order's own points (rule_id NULL), and its
 * bonus per category rule.  An insert is dated at the order's time (never
 * later than now); an update that makes it earn, now.
 */
static char *
order_candidates(const EarnRules *rules)
{
	const char *earning =
		"  FROM new_rows n"
		"  JOIN {crm.loyalty_program} p ON p.active AND p.currency = n.currency"
		"   AND n.status = ANY (p.earn_statuses) AND n.total >= p.min_order_total"
		" CROSS JOIN LATERAL (SELECT CASE WHEN $1 THEN least(n.ordered_at, statement_timestamp())"
		"                                 ELSE statement_timestamp() END AS at) x";
	/* the lines of categories that earn less take their share off the order */
	const char *reduced = !rules->reduce ? "0" :
		"(SELECT coalesce(sum(ol.quantity * ol.unit_price * (1 - r.multiplier)), 0)"
		"   FROM {crm.order_line} ol"
		"   JOIN {crm.product} pr ON pr.product_id = ol.product_id"
		"   JOIN {crm.earning_rule} r ON r.program_id = p.program_id AND r.active AND r.kind = 'category'"
		"    AND r.multiplier < 1 AND r.category = pr.category"
		"  WHERE ol.contact_id = n.contact_id AND ol.order_id = n.order_id)";
	char	   *sql;

	sql = psprintf("SELECT n.contact_id, n.order_id AS source_id, p.program_id, NULL::bigint AS rule_id, x.at,"
				   "       (CASE p.rounding WHEN 'floor' THEN floor(v.amount * p.points_per_unit)"
				   "                        WHEN 'ceil' THEN ceil(v.amount * p.points_per_unit)"
				   "                        ELSE round(v.amount * p.points_per_unit) END)::bigint AS points,"
				   "       NULL::bigint AS cap_points, NULL::text AS cap_period, p.expiry, p.expires_after"
				   "%s"
				   " CROSS JOIN LATERAL (SELECT greatest(n.total - %s, 0) AS amount) v",
				   earning, reduced);
	if (rules->bonus)
		sql = psprintf("%s UNION ALL "
					   "SELECT n.contact_id, n.order_id, p.program_id, r.rule_id, x.at,"
					   "       floor(sum(ol.quantity * ol.unit_price) * p.points_per_unit * (r.multiplier - 1))::bigint,"
					   "       r.cap_points, r.cap_period, p.expiry, p.expires_after"
					   "%s"
					   "  JOIN {crm.order_line} ol ON ol.contact_id = n.contact_id AND ol.order_id = n.order_id"
					   "  JOIN {crm.product} pr ON pr.product_id = ol.product_id"
					   "  JOIN {crm.earning_rule} r ON r.program_id = p.program_id AND r.active AND r.kind = 'category'"
					   "   AND r.multiplier > 1 AND r.category = pr.category"
					   " GROUP BY n.contact_id, n.order_id, p.program_id, r.rule_id, x.at, p.points_per_unit,"
					   "          r.multiplier, r.cap_points, r.cap_period, p.expiry, p.expires_after",
					   sql, earning);
	return sql;
}

/* The statement's activities that meet an activity rule, as candidates */
static const char *
activity_candidates(void)
{
	return "SELECT a.contact_id, a.activity_id AS source_id, p.program_id, r.rule_id,"
		"       least(a.occurred_at, statement_timestamp()) AS at, r.points,"
		"       r.cap_points, r.cap_period, p.expiry, p.expires_after"
		"  FROM new_rows a"
		"  JOIN {crm.earning_rule} r ON r.active AND r.kind = 'activity'"
		"   AND (r.activity_kind IS NULL OR r.activity_kind = a.kind)"
		"   AND (r.condition IS NULL OR crm.condition_holds(a.properties, r.condition))"
		"  JOIN {crm.loyalty_program} p ON p.program_id = r.program_id AND p.active";
}

/*
 * Capped rules count what they credited in the candidate's calendar period
 * (UTC), so the credits of one contact and rule must not be computed by two
 * transactions at once: lock the balances first, in contact order (the
 * statement that follows sees what the transactions before it committed)
 */
static void
lock_capped(const char *cand, Oid *types, Datum *args, int nargs)
{
	loyalty_run(psprintf("WITH cand AS (%s),"
						 " k AS (SELECT DISTINCT c.contact_id, c.program_id FROM cand c WHERE c.cap_points IS NOT NULL),"
						 " made AS (INSERT INTO {crm.points_balance} (contact_id, program_id)"
						 "          SELECT k.contact_id, k.program_id FROM k ORDER BY 1, 2"
						 "          ON CONFLICT (contact_id, program_id) DO NOTHING) "
						 "SELECT 1 FROM {crm.points_balance} b JOIN k ON k.contact_id = b.contact_id AND k.program_id = b.program_id"
						 " ORDER BY b.contact_id, b.program_id FOR UPDATE OF b", cand),
				nargs, types, args, NULL);
}

/*
 * The candidates as allowed: a capped rule credits at most what is left of
 * its cap in the period, the statement's credits taken in time order (the
 * running sum, clipped to what is left, differenced)
 */
static const char *
capped_credits(const EarnRules *rules)
{
	if (!rules->capped)
		return "capped AS (SELECT c.*, c.points AS allowed FROM cand c)";
	return "capped AS ("
		"  SELECT c.*, CASE WHEN c.cap_points IS NULL THEN c.points"
		"                   ELSE least(c.room, c.run) - least(c.room, c.run - c.points) END AS allowed"
		"    FROM (SELECT c.*, k.period_start,"
		"                 sum(c.points) OVER (PARTITION BY c.contact_id, c.rule_id, k.period_start"
		"                                     ORDER BY c.at, c.source_id ROWS UNBOUNDED PRECEDING) AS run,"
		"                 greatest(c.cap_points - coalesce(u.used, 0), 0) AS room"
		"            FROM cand c"
		"            LEFT JOIN LATERAL (SELECT date_trunc(c.cap_period, c.at, 'UTC') AS period_start,"
		"                                      CASE c.cap_period WHEN 'quarter' THEN interval '3 months'"
		"                                           ELSE ('1 ' || c.cap_period)::interval END AS period) k"
		"              ON c.cap_points IS NOT NULL"
		"            LEFT JOIN LATERAL (SELECT sum(l.points) AS used FROM {crm.points_ledger} l"
		"                                WHERE l.contact_id = c.contact_id AND l.rule_id = c.rule_id AND l.kind = 'earn'"
		"                                  AND l.occurred_at >= k.period_start"
		"                                  AND l.occurred_at < k.period_start + k.period) u"
		"              ON c.cap_points IS NOT NULL) c)";
}

/*
 * Write the allowed credits (once: the conflict target is the unique index
 * of the source), their lots and balances; after_inactivity programmes move
 * the contact's open lots' expiry on.  Returns, ordered by programme, a row
 * per contact and programme in debt with the new credits (contact, program,
 * credits) and a row per programme with tiers with its earners (NULL,
 * program, NULL, contacts, since).
 */
static uint64
write_credits(const char *cand, const EarnRules *rules, const char *source_column, const char *conflict,
			  Oid *types, Datum *args, int nargs)
{
	return loyalty_run(psprintf(
		"WITH cand AS (%s), %s,"
		" e AS ("
		"  INSERT INTO {crm.points_ledger} AS l (entry_id, contact_id, program_id, kind, points, %s, rule_id, occurred_at, expires_at)"
		"  SELECT nextval('crm.points_ledger_entry_id_seq'), c.contact_id, c.program_id, 'earn', c.allowed, c.source_id,"
		"         c.rule_id, c.at, CASE WHEN c.expiry <> 'never' THEN c.at + c.expires_after END"
		"    FROM capped c WHERE c.allowed > 0"
		"   ORDER BY c.contact_id, c.source_id, c.rule_id NULLS FIRST"
		"  ON CONFLICT %s DO NOTHING"
		"  RETURNING l.contact_id, l.entry_id, l.program_id, l.points, l.expires_at, l.occurred_at),"
		" lots AS ("
		"  INSERT INTO {crm.points_lot} (contact_id, credit_id, program_id, expires_at, remaining)"
		"  SELECT e.contact_id, e.entry_id, e.program_id, e.expires_at, e.points FROM e),"
		" bal AS ("
		"  INSERT INTO {crm.points_balance} AS b (contact_id, program_id, balance, earned, last_earned_at)"
		"  SELECT e.contact_id, e.program_id, sum(e.points), sum(e.points), max(e.occurred_at)"
		"    FROM e GROUP BY 1, 2 ORDER BY 1, 2"
		"  ON CONFLICT (contact_id, program_id) DO UPDATE"
		"     SET balance = b.balance + excluded.balance, earned = b.earned + excluded.earned,"
		"         last_earned_at = greatest(b.last_earned_at, excluded.last_earned_at),"
		"         updated_at = clock_timestamp()"
		"  RETURNING b.contact_id, b.program_id, b.debt, b.last_earned_at),"
		" moved AS ("
		"  UPDATE {crm.points_lot} t SET expires_at = bal.last_earned_at + p.expires_after"
		"    FROM bal JOIN {crm.loyalty_program} p ON p.program_id = bal.program_id AND p.expiry = 'after_inactivity'"
		"   WHERE t.contact_id = bal.contact_id AND t.program_id = bal.program_id AND t.remaining > 0"
		"     AND t.expires_at > bal.last_earned_at AND t.expires_at < bal.last_earned_at + p.expires_after) "
		"SELECT bal.contact_id, bal.program_id,"
		"       (SELECT array_agg(e.entry_id) FROM e"
		"         WHERE e.contact_id = bal.contact_id AND e.program_id = bal.program_id),"
		"       NULL::bigint[], NULL::timestamptz[]"
		"  FROM bal WHERE bal.debt > 0 "
		"UNION ALL "
		"SELECT NULL, s.program_id, NULL, array_agg(s.contact_id ORDER BY s.contact_id),"
		"       array_agg(s.since ORDER BY s.contact_id)"
		"  FROM (SELECT e.contact_id, e.program_id, min(e.occurred_at) AS since FROM e"
		"         WHERE e.program_id IN (SELECT t.program_id FROM {crm.loyalty_tier} t) GROUP BY 1, 2) s"
		" GROUP BY s.program_id "
		"ORDER BY 2, 1",
		cand, capped_credits(rules), source_column, conflict), nargs, types, args, NULL);
}

/* After the credits: pay the debts from them, move earners up a tier */
static void
after_credits(uint64 n)
{
	int64	   *contacts,
			   *programs;
	Datum	   *credits,
			   *tiered,
			   *since;

	if (n == 0)
		return;
	contacts = palloc(sizeof(int64) * n);
	programs = palloc(sizeof(int64) * n);
	credits = palloc(sizeof(Datum) * n);
	tiered = palloc(sizeof(Datum) * n);
	since = palloc(sizeof(Datum) * n);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		contacts[i] = loyalty_int64_at(i, 1, 0);
		programs[i] = loyalty_int64_at(i, 2, 0);
		credits[i] = SPI_getbinval(row, desc, 3, &isnull);
		credits[i] = isnull ? (Datum) 0 : SPI_datumTransfer(credits[i], false, -1);
		tiered[i] = SPI_getbinval(row, desc, 4, &isnull);
		tiered[i] = isnull ? (Datum) 0 : SPI_datumTransfer(tiered[i], false, -1);
		since[i] = SPI_getbinval(row, desc, 5, &isnull);
		since[i] = isnull ? (Datum) 0 : SPI_datumTransfer(since[i], false, -1);
	}
	for (uint64 i = 0; i < n; i++)
	{
		if (tiered[i] != (Datum) 0)
			loyalty_upgrade_tiers(programs[i], tiered[i], since[i]);
		else
			loyalty_settle_debt(contacts[i], programs[i], credits[i]);
	}
}

/* The statement's orders that reached an earning status (inserted: dated at the order) */
void
loyalty_earn_orders(bool inserted, const EarnRules *rules)
{
	Oid			types[1] = {BOOLOID};
	Datum		args[1] = {BoolGetDatum(inserted)};
	char	   *cand = order_candidates(rules);

	if (rules->capped)
		lock_capped(cand, types, args, 1);
	after_credits(write_credits(cand, rules, "order_id",
								"(contact_id, program_id, order_id, (coalesce(rule_id, 0)))"
								" WHERE kind = 'earn' AND order_id IS NOT NULL",
								types, args, 1));
}

/* The statement's activities that meet an activity rule */
void
loyalty_earn_activities(const EarnRules *rules)
{
	const char *cand = activity_candidates();

	if (!rules->activity)
		return;
	if (rules->capped)
		lock_capped(cand, NULL, NULL, 0);
	after_credits(write_credits(cand, rules, "activity_id",
								"(contact_id, program_id, activity_id, rule_id)"
								" WHERE kind = 'earn' AND activity_id IS NOT NULL",
								NULL, NULL, 0));
}
