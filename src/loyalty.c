/*
 * loyalty.c
 *		Loyalty points: earning and reversal in the transaction of the order
 *		(a statement trigger on crm."order"), redemption under a lock of the
 *		contact's balance, and expiry dated at each lot's expiry (with the
 *		review of the tiers whose period ended, src/loyalty_tier.c).
 *
 * Every credit is a lot (crm.points_lot) and every debit names the lots it
 * draws from (crm.points_draw), soonest-expiring first.  Whatever changes a
 * contact's lots first locks that contact's balance row, so redemptions,
 * reversals and expiries of one contact take turns and never spend a point
 * twice.  The SQL runs on the co-located shards on Citus (src/shard.c): a
 * contact's rows are written where they are, with entry ids taken from the
 * identity's sequence by name (a shard has no identity default).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "crm.h"
#include "loyalty.h"
#include "shard.h"

/* Run an expanded statement; elog on failure; the rows it returned */
uint64
loyalty_run(const char *tmpl, int nargs, Oid *types, Datum *args, const char *nulls)
{
	int			rc = SPI_execute_with_args(colocated_sql(tmpl), nargs, types, args, nulls, false, 0);

	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", tmpl, SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * The ledger is written as the owner of crm.points_ledger, the way
 * PostgreSQL's foreign-key triggers run as a table's owner: a role that
 * writes orders or redeems for its contacts reads their points (row-level
 * security) but has no right to write the ledger itself, which would let it
 * mint points.  What runs so is crm's own SQL, with parameters.  An error
 * restores the caller (the transaction's abort does).
 */
CallerScope
become_ledger_owner(void)
{
	CallerScope caller;
	Oid			rel = get_relname_relid("points_ledger", get_namespace_oid("crm", false));
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "crm.points_ledger is missing");
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	GetUserIdAndSecContext(&caller.user, &caller.sec);
	SetUserIdAndSecContext(owner, caller.sec | SECURITY_LOCAL_USERID_CHANGE);
	return caller;
}

void
back_to_caller(CallerScope caller)
{
	SetUserIdAndSecContext(caller.user, caller.sec);
}

/* A column of a result row, or def when NULL */
int64
loyalty_int64_at(uint64 row, int col, int64 def)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? def : DatumGetInt64(d);
}

/* Lock the contact's balance in a programme (the row is made when missing) */
static int64
lock_balance(int64 contact, int64 program)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(contact), Int64GetDatum(program)};

	loyalty_run("INSERT INTO {crm.points_balance} (contact_id, program_id) VALUES ($1, $2) "
			"ON CONFLICT (contact_id, program_id) DO NOTHING", 2, types, args, NULL);
	if (loyalty_run("SELECT b.balance FROM {crm.points_balance} b "
				" WHERE b.contact_id = $1 AND b.program_id = $2 FOR UPDATE", 2, types, args, NULL) != 1)
		elog(ERROR, "balance of contact " INT64_FORMAT " vanished", contact);
	return loyalty_int64_at(0, 1, 0);
}

/*
 * Take up to amount points for a debit from the contact's lots: the lot of
 * credit first (0: none, and it is taken even past its expiry: its points
 * are the ones being taken back), then, when others, the other lots not
 * expired at "at", soonest-expiring first, or only those of the credits in
 * only (when not NULL).  Returns the points taken.
 */
static int64
draw_lots(int64 contact, int64 program, int64 debit, int64 amount, int64 first,
		  bool others, TimestampTz at, Datum only)
{
	Oid			types[8] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, BOOLOID, TIMESTAMPTZOID, INT8ARRAYOID};
	Datum		args[8] = {Int64GetDatum(contact), Int64GetDatum(program), Int64GetDatum(debit),
	Int64GetDatum(amount), Int64GetDatum(first), BoolGetDatum(others), TimestampTzGetDatum(at), only};
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', only == (Datum) 0 ? 'n' : ' '};
	int64		taken = 0;
	uint64		n;

	n = loyalty_run("WITH cand AS ("
				"  SELECT l.credit_id, l.remaining,"
				"         sum(l.remaining) OVER (ORDER BY l.credit_id = $5 DESC, l.expires_at NULLS LAST, l.credit_id"
				"                                ROWS UNBOUNDED PRECEDING) AS upto"
				"    FROM {crm.points_lot} l"
				"   WHERE l.contact_id = $1 AND l.program_id = $2 AND l.remaining > 0"
				"     AND (l.credit_id = $5 OR ($6 AND (l.expires_at IS NULL OR l.expires_at > $7)"
				"                               AND ($8::bigint[] IS NULL OR l.credit_id = ANY ($8))))),"
				" take AS ("
				"  SELECT c.credit_id, least(c.remaining, $4 - (c.upto - c.remaining)) AS points"
				"    FROM cand c WHERE c.upto - c.remaining < $4),"
				" lots AS ("
				"  UPDATE {crm.points_lot} l SET remaining = l.remaining - t.points FROM take t"
				"   WHERE l.contact_id = $1 AND l.credit_id = t.credit_id) "
				"INSERT INTO {crm.points_draw} (contact_id, debit_id, credit_id, points) "
				"SELECT $1, $3, t.credit_id, t.points FROM take t RETURNING points",
				8, types, args, nulls);
	for (uint64 i = 0; i < n; i++)
		taken += loyalty_int64_at(i, 1, 0);
	return taken;
}

/* Write a debit; its entry id */
static int64
write_debit(int64 contact, int64 program, const char *kind, int64 points, Datum order, Datum rule, TimestampTz at)
{
	Oid			types[7] = {INT8OID, INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, TIMESTAMPTZOID};
	Datum		args[7] = {Int64GetDatum(contact), Int64GetDatum(program), CStringGetTextDatum(kind),
	Int64GetDatum(-points), order, rule, TimestampTzGetDatum(at)};
	char		nulls[7] = {' ', ' ', ' ', ' ', order == (Datum) 0 ? 'n' : ' ', rule == (Datum) 0 ? 'n' : ' ', ' '};

	loyalty_run("INSERT INTO {crm.points_ledger} (entry_id, contact_id, program_id, kind, points, order_id, rule_id, occurred_at) "
			"VALUES (nextval('crm.points_ledger_entry_id_seq'), $1, $2, $3, $4, $5, $6, $7) RETURNING entry_id",
			7, types, args, nulls);
	return loyalty_int64_at(0, 1, 0);
}

/*
 * Expire the lots due by as_of (of one contact when contact is not 0),
 * each with a debit dated at its expiry that draws what it had left.  The
 * balances are locked first, as every other writer of lots does; the lots
 * are then read FOR UPDATE, so their remaining points are current.
 */
static int64
expire_due(TimestampTz as_of, int64 contact)
{
	Oid			types[2] = {TIMESTAMPTZOID, INT8OID};
	Datum		args[2] = {TimestampTzGetDatum(as_of), Int64GetDatum(contact)};
	const char *which = contact != 0 ? " AND l.contact_id = $2" : " AND $2 = 0";
	char	   *sql;

	sql = psprintf("SELECT 1 FROM {crm.points_balance} b "
				   " WHERE (b.contact_id, b.program_id) IN (SELECT l.contact_id, l.program_id FROM {crm.points_lot} l"
				   "                                         WHERE l.remaining > 0 AND l.expires_at <= $1%s) "
				   " ORDER BY b.contact_id, b.program_id FOR UPDATE OF b", which);
	if (loyalty_run(sql, 2, types, args, NULL) == 0)
		return 0;
	sql = psprintf("WITH due AS MATERIALIZED ("
				   "  SELECT l.contact_id, l.credit_id, l.program_id, l.remaining, l.expires_at,"
				   "         nextval('crm.points_ledger_entry_id_seq') AS entry_id"
				   "    FROM {crm.points_lot} l WHERE l.remaining > 0 AND l.expires_at <= $1%s"
				   "     FOR UPDATE),"
				   " debit AS ("
				   "  INSERT INTO {crm.points_ledger} (contact_id, entry_id, program_id, kind, points, occurred_at)"
				   "  SELECT d.contact_id, d.entry_id, d.program_id, 'expire', -d.remaining, d.expires_at FROM due d),"
				   " drawn AS ("
				   "  INSERT INTO {crm.points_draw} (contact_id, debit_id, credit_id, points)"
				   "  SELECT d.contact_id, d.entry_id, d.credit_id, d.remaining FROM due d),"
				   " emptied AS ("
				   "  UPDATE {crm.points_lot} l SET remaining = 0 FROM due d"
				   "   WHERE l.contact_id = d.contact_id AND l.credit_id = d.credit_id),"
				   " bal AS ("
				   "  UPDATE {crm.points_balance} b"
				   "     SET balance = b.balance - s.points, expired = b.expired + s.points, updated_at = clock_timestamp()"
				   "    FROM (SELECT d.contact_id, d.program_id, sum(d.remaining) AS points FROM due d GROUP BY 1, 2) s"
				   "   WHERE b.contact_id = s.contact_id AND b.program_id = s.program_id) "
				   "SELECT coalesce(sum(d.remaining), 0)::bigint FROM due d", which);
	loyalty_run(sql, 2, types, args, NULL);
	return loyalty_int64_at(0, 1, 0);
}

/*
 * Pay a debt (reversals that found the points already spent) from the
 * credits just written: the debits drawn oldest first
 */
void
loyalty_settle_debt(int64 contact, int64 program, Datum credits)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(contact), Int64GetDatum(program)};
	uint64		n;
	int64	   *debits,
			   *owed;
	int64		paid = 0;

	lock_balance(contact, program);
	n = loyalty_run("SELECT d.entry_id, (-d.points - coalesce(sum(w.points), 0))::bigint "
				"  FROM {crm.points_ledger} d"
				"  LEFT JOIN {crm.points_draw} w ON w.contact_id = d.contact_id AND w.debit_id = d.entry_id"
				" WHERE d.contact_id = $1 AND d.program_id = $2 AND d.kind = 'reverse'"
				" GROUP BY d.entry_id, d.points HAVING -d.points > coalesce(sum(w.points), 0)"
				" ORDER BY d.entry_id", 2, types, args, NULL);
	debits = palloc(sizeof(int64) * Max(n, 1));
	owed = palloc(sizeof(int64) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		debits[i] = loyalty_int64_at(i, 1, 0);
		owed[i] = loyalty_int64_at(i, 2, 0);
	}
	for (uint64 i = 0; i < n; i++)
	{
		int64		got = draw_lots(contact, program, debits[i], owed[i], 0, true,
									GetCurrentStatementStartTimestamp(), credits);

		paid += got;
		if (got < owed[i])
			break;
	}
	if (paid > 0)
	{
		Oid			t3[3] = {INT8OID, INT8OID, INT8OID};
		Datum		a3[3] = {Int64GetDatum(contact), Int64GetDatum(program), Int64GetDatum(paid)};

		loyalty_run("UPDATE {crm.points_balance} b SET debt = b.debt - $3, updated_at = clock_timestamp() "
				" WHERE b.contact_id = $1 AND b.program_id = $2", 3, t3, a3, NULL);
	}
}

/* One order's reversal in one programme */
typedef struct Reversal
{
	int64		contact;
	int64		program;
	int64		order;
	Datum		rule;			/* the credit's earning rule, or 0 */
	int64		credit;
	int64		points;
	bool		others;
	TimestampTz at;
} Reversal;

/*
 * A refund or cancellation takes back what the order earned (in proportion
 * to the refunded amount for a partial refund; never more than it earned,
 * nor the points that already expired): its own lot first, then by the
 * programme's policy other lots, and what is left becomes a debt
 */
static void
reverse(bool inserted, bool deleted)
{
	Oid			types[1] = {BOOLOID};
	Datum		args[1] = {BoolGetDatum(inserted)};
	uint64		n;
	Reversal   *rs;

	/* a deleted order is a cancelled one: what it earned goes back */
	const char *source = deleted
		? "(SELECT o.contact_id, o.order_id, 'cancelled'::text AS status, o.total, o.refunded, o.ordered_at"
		  "   FROM old_rows o)"
		: "(SELECT * FROM new_rows WHERE status IN ('cancelled', 'refunded') OR refunded > 0)";

	n = loyalty_run(psprintf("SELECT n.contact_id, e.program_id, n.order_id, e.entry_id,"
				"       least(t.target - coalesce(r.reversed, 0),"
				"             e.points - coalesce(x.expired, 0) - coalesce(r.reversed, 0))::bigint AS points,"
				"       p.spent_reversal = 'other_lots',"
				"       CASE WHEN $1 THEN least(n.ordered_at, statement_timestamp()) ELSE statement_timestamp() END,"
				"       e.rule_id"
				"  FROM %s n"
				"  JOIN {crm.points_ledger} e ON e.contact_id = n.contact_id AND e.order_id = n.order_id AND e.kind = 'earn'"
				"  JOIN {crm.loyalty_program} p ON p.program_id = e.program_id"
				" CROSS JOIN LATERAL (SELECT CASE WHEN n.status = ANY (p.reverse_statuses) OR n.refunded >= n.total"
				"                                 THEN e.points"
				"                                 ELSE floor(e.points * n.refunded / n.total)::bigint END AS target) t"
				"  LEFT JOIN LATERAL (SELECT -sum(v.points) AS reversed FROM {crm.points_ledger} v"
				"                      WHERE v.contact_id = n.contact_id AND v.order_id = n.order_id"
				"                        AND v.program_id = e.program_id AND v.kind = 'reverse'"
				"                        AND v.rule_id IS NOT DISTINCT FROM e.rule_id) r ON true"
				"  LEFT JOIN LATERAL (SELECT sum(d.points) AS expired FROM {crm.points_draw} d"
				"                       JOIN {crm.points_ledger} v ON v.contact_id = d.contact_id AND v.entry_id = d.debit_id"
				"                      WHERE d.contact_id = n.contact_id AND d.credit_id = e.entry_id"
				"                        AND v.kind = 'expire') x ON true"
				" ORDER BY n.contact_id, e.program_id, n.order_id, e.rule_id NULLS FIRST", source),
				1, types, args, NULL);
	rs = palloc(sizeof(Reversal) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;

		rs[i].contact = loyalty_int64_at(i, 1, 0);
		rs[i].program = loyalty_int64_at(i, 2, 0);
		rs[i].order = loyalty_int64_at(i, 3, 0);
		rs[i].credit = loyalty_int64_at(i, 4, 0);
		rs[i].points = loyalty_int64_at(i, 5, 0);
		rs[i].others = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 6, &isnull));
		rs[i].at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 7, &isnull));
		rs[i].rule = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 8, &isnull);
		if (isnull)
			rs[i].rule = (Datum) 0;
	}
	for (uint64 i = 0; i < n; i++)
	{
		Reversal   *r = &rs[i];
		int64		debit,
					taken;
		Oid			t4[4] = {INT8OID, INT8OID, INT8OID, INT8OID};
		Datum		a4[4];

		if (r->points <= 0)
			continue;
		lock_balance(r->contact, r->program);
		debit = write_debit(r->contact, r->program, "reverse", r->points, Int64GetDatum(r->order), r->rule, r->at);
		taken = draw_lots(r->contact, r->program, debit, r->points, r->credit, r->others, r->at, (Datum) 0);
		a4[0] = Int64GetDatum(r->contact);
		a4[1] = Int64GetDatum(r->program);
		a4[2] = Int64GetDatum(r->points);
		a4[3] = Int64GetDatum(r->points - taken);
		loyalty_run("UPDATE {crm.points_balance} b SET balance = b.balance - $3, reversed = b.reversed + $3,"
				"       debt = b.debt + $4, updated_at = clock_timestamp()"
				" WHERE b.contact_id = $1 AND b.program_id = $2", 4, t4, a4, NULL);
	}
}

/*
 * AFTER INSERT / UPDATE / DELETE FOR EACH STATEMENT on crm."order", and
 * AFTER INSERT on crm.activity (argument 'activity')
 */
PG_FUNCTION_INFO_V1(crm_loyalty_orders);
Datum
crm_loyalty_orders(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		inserted;
	bool		deleted;
	bool		activities;
	int			pinned;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		(td->tg_newtable == NULL && td->tg_oldtable == NULL))
		elog(ERROR, "crm.loyalty_orders() must be a statement trigger with a transition table");
	/* a dump's ledger is loaded as it was (src/restore.c) */
	if (loading_dump)
		return PointerGetDatum(NULL);
	inserted = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	deleted = TRIGGER_FIRED_BY_DELETE(td->tg_event);
	/* the logical table, from the trigger's argument (a shard has another name) */
	activities = td->tg_trigger->tgnargs > 0 && strcmp(td->tg_trigger->tgargs[0], "activity") == 0;
	pinned = spi_connect_pinned();
	SPI_register_trigger_data(td);
	WITH_SHARD_SCOPE(td, {
		CallerScope caller = become_ledger_owner();
		EarnRules	rules = loyalty_read_rules();

		if (rules.programs && activities)
			loyalty_earn_activities(&rules);
		else if (rules.programs)
		{
			if (!deleted)
				loyalty_earn_orders(inserted, &rules);
			reverse(inserted, deleted);
		}
		back_to_caller(caller);
	});
	spi_finish_pinned(pinned);
	return PointerGetDatum(NULL);
}

/* A reward and its programme, as redeem_points needs them */
typedef struct Reward
{
	int64		program;
	int64		points;
	bool		discount;
	bool		active;
	int			max_discounts;
	int			vouchers;
} Reward;

static Reward
read_reward(int64 reward_id)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(reward_id)};
	Reward		r;
	bool		isnull;

	if (loyalty_run("SELECT r.program_id, r.points, r.kind = 'discount', r.active AND p.active,"
				"       p.max_discounts_per_order, coalesce(r.vouchers, 0)"
				"  FROM {crm.loyalty_reward} r JOIN {crm.loyalty_program} p ON p.program_id = r.program_id"
				" WHERE r.reward_id = $1", 1, types, args, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("reward " INT64_FORMAT " does not exist", reward_id),
				 errhint("The rewards are the rows of crm.loyalty_reward.")));
	r.program = loyalty_int64_at(0, 1, 0);
	r.points = loyalty_int64_at(0, 2, 0);
	r.discount = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	r.active = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	r.max_discounts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	r.vouchers = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull));
	return r;
}

/* A discount's order: the contact's, not reversed, with room for one more discount */
static void
check_discount_order(int64 contact, int64 order, const Reward *r)
{
	Oid			types[3] = {INT8OID, INT8OID, INT8OID};
	Datum		args[3] = {Int64GetDatum(contact), Int64GetDatum(order), Int64GetDatum(r->program)};
	bool		isnull;
	int64		taken;

	if (loyalty_run("SELECT o.status IN ('cancelled', 'refunded'),"
				"       (SELECT count(*) FROM {crm.points_ledger} l"
				"         WHERE l.contact_id = $1 AND l.order_id = $2 AND l.kind = 'redeem'"
				"           AND l.discount_percent IS NOT NULL)"
				"  FROM {crm.order} o WHERE o.contact_id = $1 AND o.order_id = $2",
				3, types, args, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("order " INT64_FORMAT " of contact " INT64_FORMAT " does not exist", order, contact)));
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("order " INT64_FORMAT " is cancelled or refunded: it takes no discount", order)));
	taken = loyalty_int64_at(0, 2, 0);
	if (taken >= r->max_discounts)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("order " INT64_FORMAT " already has " INT64_FORMAT " discount%s; the programme allows %d per order",
						order, taken, taken == 1 ? "" : "s", r->max_discounts),
				 errhint("Raise crm.loyalty_program.max_discounts_per_order to let discounts stack.")));
}

/* The result of a redemption, for the caller or a replay of its key */
typedef struct Redeemed
{
	int64		entry;
	int64		points;
	int64		balance;
	Datum		vouchers;		/* text[], or 0 */
} Redeemed;

/* An earlier redemption with this key, into *out; false when none */
static bool
find_redemption(int64 contact, int64 reward_id, text *key, Redeemed *out)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2] = {Int64GetDatum(contact), PointerGetDatum(key)};
	bool		isnull;
	int64		used_for;

	if (loyalty_run("SELECT l.entry_id, -l.points, l.reward_id,"
				"       (SELECT array_agg(v.code ORDER BY v.code) FROM {crm.loyalty_voucher} v"
				"         WHERE v.contact_id = l.contact_id AND v.redemption_id = l.entry_id),"
				"       (SELECT b.balance FROM {crm.points_balance} b"
				"         WHERE b.contact_id = l.contact_id AND b.program_id = l.program_id)"
				"  FROM {crm.points_ledger} l WHERE l.contact_id = $1 AND l.idempotency_key = $2",
				2, types, args, NULL) == 0)
		return false;
	used_for = loyalty_int64_at(0, 3, 0);
	if (used_for != reward_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key \"%s\" was used for reward " INT64_FORMAT ", not " INT64_FORMAT,
						text_to_cstring(key), used_for, reward_id),
				 errhint("Use a new key for a new redemption.")));
	out->entry = loyalty_int64_at(0, 1, 0);
	out->points = loyalty_int64_at(0, 2, 0);
	out->balance = loyalty_int64_at(0, 5, 0);
	out->vouchers = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull);
	out->vouchers = isnull ? (Datum) 0 : SPI_datumTransfer(out->vouchers, false, -1);
	return true;
}

/* Write the redemption: the debit, its draws, the balance, the vouchers */
static Redeemed
redeem(int64 contact, int64 reward_id, const Reward *r, Datum order, text *key)
{
	Oid			types[6] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		args[6] = {Int64GetDatum(contact), Int64GetDatum(r->program), Int64GetDatum(reward_id),
	Int64GetDatum(-r->points), order, PointerGetDatum(key)};
	char		nulls[6] = {' ', ' ', ' ', ' ', order == (Datum) 0 ? 'n' : ' ', key == NULL ? 'n' : ' '};
	Redeemed	out;
	bool		isnull;
	TimestampTz now = GetCurrentStatementStartTimestamp();

	loyalty_run("INSERT INTO {crm.points_ledger} (entry_id, contact_id, program_id, kind, points, reward_id, order_id,"
			"                                 idempotency_key, discount_percent, occurred_at)"
			"SELECT nextval('crm.points_ledger_entry_id_seq'), $1, $2, 'redeem', $4, $3, $5, $6, r.discount_percent,"
			"       statement_timestamp()"
			"  FROM {crm.loyalty_reward} r WHERE r.reward_id = $3 RETURNING entry_id",
			6, types, args, nulls);
	out.entry = loyalty_int64_at(0, 1, 0);
	out.points = r->points;
	if (draw_lots(contact, r->program, out.entry, r->points, 0, true, now, (Datum) 0) != r->points)
		elog(ERROR, "the lots of contact " INT64_FORMAT " hold less than its balance", contact);
	args[2] = Int64GetDatum(r->points);
	loyalty_run("UPDATE {crm.points_balance} b SET balance = b.balance - $3, redeemed = b.redeemed + $3,"
			"       updated_at = clock_timestamp()"
			" WHERE b.contact_id = $1 AND b.program_id = $2 RETURNING b.balance", 3, types, args, NULL);
	out.balance = loyalty_int64_at(0, 1, 0);
	out.vouchers = (Datum) 0;
	if (r->vouchers > 0)
	{
		args[1] = Int64GetDatum(out.entry);
		args[2] = Int64GetDatum(reward_id);
		/* 128 random bits: a code that cannot be guessed from another */
		loyalty_run("WITH v AS ("
				"  INSERT INTO {crm.loyalty_voucher} (contact_id, code, redemption_id, reward_id, partner, value, expires_at)"
				"  SELECT $1, upper(replace(gen_random_uuid()::text, '-', '')), $2, r.reward_id, r.partner,"
				"         r.voucher_value, statement_timestamp() + r.voucher_valid_for"
				"    FROM {crm.loyalty_reward} r, generate_series(1, r.vouchers)"
				"   WHERE r.reward_id = $3 RETURNING code) "
				"SELECT array_agg(v.code ORDER BY v.code) FROM v", 3, types, args, NULL);
		out.vouchers = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		out.vouchers = isnull ? (Datum) 0 : SPI_datumTransfer(out.vouchers, false, -1);
	}
	return out;
}

/* The whole redemption, under the lock of the contact's balance */
static Redeemed
redeem_locked(int64 contact, int64 reward_id, Datum order, text *key)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(contact)};
	Reward		r = read_reward(reward_id);
	Redeemed	out;
	int64		balance;
	CallerScope caller;

	if (!r.active)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("reward " INT64_FORMAT " or its programme is not active", reward_id)));
	if (r.discount && order == (Datum) 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reward " INT64_FORMAT " is a discount: it needs the order it applies to", reward_id),
				 errhint("Pass order_id => the order the discount is taken on.")));
	/* as the caller: a rep redeems for the contacts it sees */
	if (loyalty_run("SELECT 1 FROM {crm.contact} c WHERE c.contact_id = $1", 1, types, args, NULL) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("contact " INT64_FORMAT " does not exist", contact)));
	caller = become_ledger_owner();
	lock_balance(contact, r.program);
	/* under the lock: a concurrent call with the same key has committed or not started */
	if (key != NULL && find_redemption(contact, reward_id, key, &out))
	{
		back_to_caller(caller);
		return out;
	}
	expire_due(GetCurrentStatementStartTimestamp(), contact);
	balance = lock_balance(contact, r.program);
	if (balance < r.points)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("contact " INT64_FORMAT " has " INT64_FORMAT " points; reward " INT64_FORMAT " needs " INT64_FORMAT,
						contact, balance, reward_id, r.points),
				 errdetail("Nothing was written.")));
	if (r.discount)
		check_discount_order(contact, DatumGetInt64(order), &r);
	out = redeem(contact, reward_id, &r, order, key);
	back_to_caller(caller);
	return out;
}

/* On Citus the call is delegated to the contact's node (crm.distribute) */
static void
redeem_in_scope(int64 contact, int64 reward_id, Datum order, text *key, ReturnSetInfo *rsinfo)
{
	WITH_CONTACT_SCOPE(contact, {
		Redeemed	out = redeem_locked(contact, reward_id, order, key);
		Datum		values[4] = {Int64GetDatum(out.entry), Int64GetDatum(out.points),
		Int64GetDatum(out.balance), out.vouchers};
		bool		nulls[4] = {false, false, false, out.vouchers == (Datum) 0};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	});
}

PG_FUNCTION_INFO_V1(crm_redeem_points);
Datum
crm_redeem_points(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		contact;
	int64		reward_id;
	Datum		order = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	text	   *key = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	int			pinned;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("contact_id and reward_id must not be NULL")));
	contact = PG_GETARG_INT64(0);
	reward_id = PG_GETARG_INT64(1);
	if (key != NULL && VARSIZE_ANY_EXHDR(key) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency_key must not be empty"),
				 errhint("Pass NULL for no key, or a key unique to this redemption.")));
	InitMaterializedSRF(fcinfo, 0);
	pinned = spi_connect_pinned();
	redeem_in_scope(contact, reward_id, order, key, rsinfo);
	spi_finish_pinned(pinned);
	return (Datum) 0;
}

/* The time crm.expire_points may expire up to: not later than now */
static void
check_as_of(TimestampTz as_of)
{
	if (TIMESTAMP_NOT_FINITE(as_of) || as_of > GetCurrentStatementStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be a finite time not later than now"),
				 errhint("Points expire when their time has come; a later time would log expiries that have not happened.")));
}

PG_FUNCTION_INFO_V1(crm_expire_points);
Datum
crm_expire_points(PG_FUNCTION_ARGS)
{
	TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(0);
	int			pinned;
	int64		n;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		args[1] = {TimestampTzGetDatum(as_of)};

	check_as_of(as_of);
	pinned = spi_connect_pinned();
	if (!tables_distributed())
	{
		CallerScope caller = become_ledger_owner();

		n = expire_due(as_of, 0);
		loyalty_review_tiers(as_of);
		back_to_caller(caller);
	}
	else
	{
		/*
		 * each shard's first call expires that shard's lots and reviews its
		 * tiers, on its worker: the shards with due lots, then those with
		 * due tiers (whose lots are then already expired)
		 */
		loyalty_run("SELECT coalesce(sum(crm.expire_lots(l.contact_id, $1)), 0)::bigint FROM crm.points_lot l"
				" WHERE l.remaining > 0 AND l.expires_at <= $1", 1, types, args, NULL);
		n = loyalty_int64_at(0, 1, 0);
		loyalty_run("SELECT coalesce(sum(crm.expire_lots(b.contact_id, $1)), 0)::bigint FROM crm.points_balance b"
				" WHERE b.tier_until <= $1", 1, types, args, NULL);
		n += loyalty_int64_at(0, 1, 0);
	}
	spi_finish_pinned(pinned);
	PG_RETURN_INT64(n);
}

PG_FUNCTION_INFO_V1(crm_expire_lots);
Datum
crm_expire_lots(PG_FUNCTION_ARGS)
{
	int64		here = PG_GETARG_INT64(0);
	TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(1);
	int			pinned;
	volatile int64 n = 0;

	check_as_of(as_of);
	pinned = spi_connect_pinned();
	WITH_CONTACT_SCOPE(here, {
		if (shard_first_call(fcinfo, shard_scope_shard()))
		{
			CallerScope caller = become_ledger_owner();

			n = expire_due(as_of, 0);
			loyalty_review_tiers(as_of);
			back_to_caller(caller);
		}
	});
	spi_finish_pinned(pinned);
	PG_RETURN_INT64(n);
}

/*
 * crm.merge_contacts' step for loyalty: a caller who sees both contacts,
 * inside their merge, has the dropped contact's points moved onto the kept
 * one (crm.move_points, as the ledger's owner)
 */
PG_FUNCTION_INFO_V1(crm_merge_points);
Datum
crm_merge_points(PG_FUNCTION_ARGS)
{
	int64		keep = PG_GETARG_INT64(0);
	int64		drop = PG_GETARG_INT64(1);
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		args[2] = {Int64GetDatum(keep), Int64GetDatum(drop)};
	int			pinned = spi_connect_pinned();
	CallerScope caller;

	if (loyalty_run("SELECT 1 FROM crm.contact c WHERE c.contact_id IN ($1, $2)", 2, types, args, NULL) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("contacts " INT64_FORMAT " and " INT64_FORMAT " are not both visible to you", keep, drop),
				 errhint("Points move with crm.merge_contacts of two contacts you may change.")));
	if (loyalty_run("SELECT 1 FROM crm.merge_log m WHERE m.kept_id = $1 AND m.dropped_id = $2 AND m.in_progress",
				2, types, args, NULL) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no merge of contact " INT64_FORMAT " into " INT64_FORMAT " is in progress", drop, keep),
				 errhint("Call crm.merge_contacts(keep, drop): it moves the points.")));
	caller = become_ledger_owner();
	loyalty_run("SELECT crm.move_points($1, $2)", 2, types, args, NULL);
	back_to_caller(caller);
	spi_finish_pinned(pinned);
	PG_RETURN_VOID();
}
