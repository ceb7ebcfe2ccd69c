// A BI tool's session through pgjdbc (what Metabase, Superset's JDBC
// bridge and most BI tools use): DatabaseMetaData introspection, generated
// SELECTs with bound parameters, read-only transactions, as a superuser,
// an analyst and a sales rep.  Prints TAP; every failure is a "not ok".
//   java -cp postgresql.jar BiClient.java HOST PORT DB
import java.sql.*;
import java.util.*;

public class BiClient {
	static int n = 0, failed = 0;
	static String host, port, db;

	static void ok(boolean cond, String what) {
		n++;
		if (!cond) failed++;
		System.out.println((cond ? "ok " : "not ok ") + n + " - " + what);
	}

	static Connection connect(String user, String password, String prepareThreshold) throws SQLException {
		Properties p = new Properties();
		p.setProperty("user", user);
		p.setProperty("password", password);
		p.setProperty("prepareThreshold", prepareThreshold);
		return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + port + "/" + db, p);
	}

	/* bind as a BI tool does: setString, setLong, setDouble, setTimestamp */
	static void bind(PreparedStatement s, Object... args) throws SQLException {
		for (int i = 0; i < args.length; i++) {
			Object a = args[i];
			if (a instanceof String) s.setString(i + 1, (String) a);
			else if (a instanceof Long) s.setLong(i + 1, (Long) a);
			else if (a instanceof Double) s.setDouble(i + 1, (Double) a);
			else if (a instanceof Timestamp) s.setTimestamp(i + 1, (Timestamp) a);
			else s.setObject(i + 1, a);
		}
	}

	/* the first column of the first row as text, or the error */
	static String value(Connection c, String sql, Object... args) {
		try (PreparedStatement s = c.prepareStatement(sql)) {
			bind(s, args);
			try (ResultSet r = s.executeQuery()) {
				return r.next() ? r.getString(1) : "(no row)";
			}
		} catch (SQLException e) {
			return e.getSQLState() + " " + e.getMessage().split("\n")[0];
		}
	}

	static void is(String got, String want, String what) {
		if (!want.equals(got)) System.out.println("# got: " + got + ", want: " + want);
		ok(want.equals(got), what);
	}

	static long count(Connection c, String sql, Object... args) throws SQLException {
		try (PreparedStatement s = c.prepareStatement(sql)) {
			bind(s, args);
			try (ResultSet r = s.executeQuery()) {
				long rows = 0;
				while (r.next()) rows++;
				return rows;
			}
		}
	}

	/* run sql, true when it raised nothing; the error goes to the TAP stream */
	static boolean runs(Connection c, String sql, Object... args) {
		try {
			count(c, sql, args);
			return true;
		} catch (SQLException e) {
			System.out.println("# " + sql + ": " + e.getSQLState() + " " + e.getMessage().split("\n")[0]);
			return false;
		}
	}

	static long scalar(Connection c, String sql, Object... args) throws SQLException {
		try (PreparedStatement s = c.prepareStatement(sql)) {
			for (int i = 0; i < args.length; i++) s.setString(i + 1, (String) args[i]);
			try (ResultSet r = s.executeQuery()) {
				r.next();
				return r.getLong(1);
			}
		}
	}

	/* SQLSTATE of a query, "" when it runs */
	static String state(Connection c, String sql, Object... args) {
		try {
			count(c, sql, args);
			return "";
		} catch (SQLException e) {
			return e.getSQLState();
		}
	}

	static final Set<String> PERSON_VIEWS = new HashSet<>(Arrays.asList("contacts", "activity_daily", "orders", "deals",
		"stage_transitions", "customer_clv", "scores", "segment_membership", "campaign_results"));

	/* crm_bi as a role sees it, read-only: every view read with LIMIT, or refused with 42501 */
	static void readBiViews(Connection c, String who, String mode, Set<String> refused) throws SQLException {
		c.setReadOnly(true);
		c.setAutoCommit(false);
		List<String> views = new ArrayList<>();
		try (ResultSet r = c.getMetaData().getTables(null, "crm_bi", "%", new String[] {"VIEW"})) {
			while (r.next()) views.add(r.getString("TABLE_NAME"));
		}
		boolean all = views.size() == 21;
		for (String v : views) {
			String st = state(c, "SELECT * FROM crm_bi." + v + " LIMIT 10");
			c.rollback();
			boolean want = refused.contains(v) ? st.equals("42501") : st.isEmpty();
			if (!want) System.out.println("# " + who + " crm_bi." + v + ": " + (st.isEmpty() ? "read" : st));
			all &= want;
		}
		ok(all, mode + ": " + who + " reads the crm_bi views it is granted, read-only with LIMIT, and gets 42501 on the others ("
		   + views.size() + " views, " + refused.size() + " refused)");
	}

	/* the README's dashboard queries, with bound parameters, in a read-only transaction */
	static void dashboard(Connection c, String who, String mode, boolean persons) throws SQLException {
		c.setReadOnly(true);
		c.setAutoCommit(false);
		Timestamp yearAgo = new Timestamp(System.currentTimeMillis() - 365L * 86400000L);
		boolean all = runs(c, "SELECT month, stage, contacts, share FROM crm_bi.funnel_monthly WHERE month >= ? ORDER BY month, stage_rank", yearAgo)
			& runs(c, "SELECT cohort_month, months_since, customers, active, retention FROM crm_bi.cohort_retention WHERE months_since <= ? ORDER BY 1, 2", 12L)
			& runs(c, "SELECT segment, contacts, share FROM crm_bi.rfm_segments WHERE segment <> ? ORDER BY contacts DESC", "Lost")
			& runs(c, "SELECT decile, customers, clv_from, clv_to FROM crm_bi.clv_distribution WHERE decile >= ? ORDER BY decile", 1L)
			& runs(c, "SELECT campaign, starts_on, targeted, lift FROM crm_bi.campaign_lift WHERE starts_on >= ? ORDER BY starts_on DESC", yearAgo)
			& runs(c, "SELECT pipeline_stage, deals, amount FROM crm_bi.pipeline WHERE pipeline_stage = ?", "proposal");
		if (persons)
			all &= runs(c, "SELECT rfm_r, rfm_f, count(*) FROM crm_bi.contacts WHERE rfm IS NOT NULL AND stage = ? GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC", "customer")
				& runs(c, "SELECT width_bucket(clv_1y, 0, 500, 10), count(*) FROM crm_bi.customer_clv WHERE clv_1y IS NOT NULL GROUP BY 1 ORDER BY 1")
				& runs(c, "SELECT activity_on, kind, sum(activities) FROM crm_bi.activity_daily WHERE activity_on >= ? AND kind = ? GROUP BY 1, 2 ORDER BY 1, 2", yearAgo, "page_view")
				& runs(c, "SELECT contact_id, email FROM crm_bi.contacts WHERE email_domain = ? AND email LIKE ? LIMIT 100", "example.org", "%e%")
				& runs(c, "SELECT order_id, total FROM crm_bi.orders WHERE contact_id = ? AND ordered_on >= ?", 1L, yearAgo);
		c.rollback();
		ok(all, mode + ": " + who + ": the README's dashboard queries with setTimestamp, setLong, setString, read-only");
	}

	public static void main(String[] argv) throws Exception {
		host = argv[0]; port = argv[1]; db = argv[2];
		String superPw = System.getenv("PGPASSWORD");
		for (String threshold : new String[] {"0", "1"}) {
			String mode = threshold.equals("0") ? "simple protocol" : "server-side prepared";
			try (Connection su = connect(System.getenv("PGUSER"), superPw, threshold)) {
				// metadata: every column of crm's tables and views has REMARKS
				DatabaseMetaData md = su.getMetaData();
				int cols = 0, bare = 0;
				try (ResultSet r = md.getColumns(null, "crm", "%", "%")) {
					while (r.next()) {
						cols++;
						if (r.getString("REMARKS") == null) {
							bare++;
							System.out.println("# no REMARKS: " + r.getString("TABLE_NAME") + "." + r.getString("COLUMN_NAME"));
						}
					}
				}
				ok(cols > 250 && bare == 0, mode + ": getColumns on schema crm: " + cols + " columns, all with REMARKS");
				// e-mail filters as generated, repeated past the prepare threshold
				boolean same = true;
				for (int i = 0; i < 6; i++)
					same &= count(su, "SELECT contact_id FROM crm.contact WHERE email = ? LIMIT 100", "Ann.Lee@EXAMPLE.org") == 1;
				ok(same, mode + ": email = ? (setString), any spelling, six times");
				ok(count(su, "SELECT contact_id FROM crm.contact WHERE email = ?", "ann.lee") == 0,
				   mode + ": email = ? with a partial address finds nothing");
				ok(count(su, "SELECT contact_id FROM crm.contact WHERE email ILIKE ? LIMIT 100", "%LEE%") == 1,
				   mode + ": email ILIKE ? (the contains filter)");
				ok(runs(su, "SELECT min(email), max(lower(email)), max(length(email)) FROM crm.contact"),
				   mode + ": min(email), lower(email), length(email)");
				ok(count(su, "SELECT contact_id FROM crm.contact WHERE stage = ? LIMIT 100", "lead") == 2,
				   mode + ": stage = ? (setString)");
				ok(runs(su, "SELECT date_trunc('month', created_at) AS m, count(*) FROM crm.contact WHERE created_at >= ? GROUP BY 1 ORDER BY 1 LIMIT 1000",
						new Timestamp(0)), mode + ": GROUP BY date_trunc with setTimestamp");
				// RFM cells and typed e-mail parameters; the read-only campaign preview
				String cell = value(su, "SELECT r.rfm::text FROM crm.rfm_scores() r JOIN crm.contact c USING (contact_id) WHERE c.email = ?", "eve@example.org");
				is(value(su, "SELECT count(*)::text FROM crm.rfm_scores() r JOIN crm.contact c USING (contact_id) WHERE r.rfm = ? AND c.email = ?", cell, "eve@example.org"),
				   "1", mode + ": rfm = ? (setString '" + cell + "')");
				is(value(su, "SELECT count(*)::text FROM crm.rfm_scores() r JOIN crm.contact c USING (contact_id) WHERE r.rfm = ?::crm.rfm AND c.email = ?", cell, "eve@example.org"),
				   "1", mode + ": rfm = ?::crm.rfm");
				ok(count(su, "SELECT contact_id FROM crm.contact WHERE email = ?::crm.email", "BOB@example.org") == 1,
				   mode + ": email = ?::crm.email");
				long camp = Long.parseLong(value(su, "SELECT campaign_id::text FROM crm.campaign WHERE name = ?", "bi camp"));
				su.setReadOnly(true);
				su.setAutoCommit(false);
				ok(count(su, "SELECT * FROM crm.campaign_targets_preview(?)", camp) == 2, mode + ": crm.campaign_targets_preview(setLong) in a read-only transaction");
				su.rollback();
				is(state(su, "SELECT * FROM crm.campaign_targets(?)", camp), "25006", mode + ": crm.campaign_targets (it records) in a read-only transaction: 25006");
				su.rollback();
				su.setReadOnly(false);
				su.setAutoCommit(true);
				// schema crm_bi: REMARKS on every column, only standard JDBC types
				int bicols = 0, other = 0, unremarked = 0;
				try (ResultSet r = md.getColumns(null, "crm_bi", "%", "%")) {
					while (r.next()) {
						bicols++;
						if (r.getString("REMARKS") == null) unremarked++;
						if (r.getInt("DATA_TYPE") == Types.OTHER || r.getInt("DATA_TYPE") == Types.STRUCT
							|| r.getInt("DATA_TYPE") == Types.ARRAY) {
							other++;
							System.out.println("# crm_bi." + r.getString("TABLE_NAME") + "." + r.getString("COLUMN_NAME")
											   + " is " + r.getString("TYPE_NAME"));
						}
					}
				}
				ok(bicols > 200 && other == 0 && unremarked == 0,
				   mode + ": getColumns on schema crm_bi: " + bicols + " columns, all with REMARKS, none Types.OTHER, STRUCT or ARRAY");
				readBiViews(su, "superuser", mode, new HashSet<>());
				dashboard(su, "superuser", mode, true);
				su.setReadOnly(false);
				su.setAutoCommit(true);
				// function arguments as the driver binds them (issue 14, point 3)
				Timestamp from = Timestamp.valueOf("2026-01-01 00:00:00"), to = Timestamp.valueOf("2026-04-01 00:00:00");
				is(value(su, "SELECT string_agg(active::text, ',' ORDER BY period_start) FROM crm.churn_rate(?, ?, ?)", "1 month", from, to),
				   "2,1", mode + ": crm.churn_rate(setString, setTimestamp, setTimestamp)");
				is(value(su, "SELECT sum(active)::text FROM crm.retention_cohorts(?)", "1 month"),
				   "3", mode + ": crm.retention_cohorts(setString)");
				is(value(su, "SELECT crm.activity_count(contact_id, ?, ?)::text FROM crm.contact WHERE email = ?", "page_view", "7 days", "dan@example.org"),
				   "1", mode + ": crm.activity_count(.., setString, setString)");
				is(value(su, "SELECT crm.activity_count(?, ?, ?)::text", 0L, "page_view", "7 days"),
				   "0", mode + ": crm.activity_count(setLong, setString, setString)");
				is(value(su, "SELECT crm.btyd_summary(ordered_at, total, ?, ?)::text FROM crm.\"order\" o JOIN crm.contact c USING (contact_id) WHERE c.email = ? GROUP BY contact_id",
						 to, "7 days", "eve@example.org"),
				   "(1,5.14,11.57,15.0000000000000000)", mode + ": crm.btyd_summary(.., setTimestamp, setString)");
				is(value(su, "SELECT crm.rfm(?, ?, ?)::text", 5L, 4L, 3L), "5-4-3", mode + ": crm.rfm(setLong x 3)");
				is(value(su, "SELECT crm.nth_weekday(?, ?, ?, ?)::text", 2026L, 5L, 0L, 2L), "2026-05-10", mode + ": crm.nth_weekday(setLong x 4)");
				is(value(su, "SELECT crm.simple_clv(?, ?, ?)::text", 100.0, 0.8, 0.1), "266.6666666666666667", mode + ": crm.simple_clv(setDouble x 3)");
				is(value(su, "SELECT crm.rfm(?, ?, ?)::text", 6L, 1L, 1L).substring(0, 5), "22023", mode + ": crm.rfm out of range: 22023");
			}
			// the analyst: every analyst view, in a read-only transaction, with LIMIT
			try (Connection an = connect("bi_analyst", "bi-analyst-pw", threshold)) {
				an.setReadOnly(true);
				an.setAutoCommit(false);
				List<String> views = new ArrayList<>();
				try (ResultSet r = an.getMetaData().getTables(null, "crm", "analyst%", new String[] {"VIEW"})) {
					while (r.next()) views.add(r.getString("TABLE_NAME"));
				}
				boolean all = !views.isEmpty();
				for (String v : views) all &= runs(an, "SELECT * FROM crm." + v + " LIMIT 10");
				ok(all && views.size() >= 13, mode + ": analyst reads every analyst view read-only (" + views.size() + ")");
				ok(runs(an, "SELECT stage, sum(contacts) FROM crm.analyst_funnel WHERE month >= ? GROUP BY stage LIMIT 100",
						new Timestamp(0)), mode + ": analyst: funnel by stage since a setTimestamp date");
				ok(!runs(an, "SELECT count(*) FROM crm.contact"), mode + ": analyst cannot read crm.contact");
				an.rollback();
				readBiViews(an, "analyst", mode, PERSON_VIEWS);
				dashboard(an, "analyst", mode, false);
			}
			// the sales rep: the same filters, under row-level security
			try (Connection rep = connect("bi_rep", "bi-rep-pw", threshold)) {
				ok(count(rep, "SELECT contact_id FROM crm.contact WHERE email = ?", "BOB@example.org") == 1,
				   mode + ": sales rep: email = ? finds its contact");
				ok(count(rep, "SELECT contact_id FROM crm.contact WHERE email = ?", "carl@example.org") == 0,
				   mode + ": sales rep: another rep's contact stays hidden");
				ok(count(rep, "SELECT contact_id FROM crm_bi.contacts WHERE stage = ? OR stage = ?", "lead", "customer") == 2,
				   mode + ": sales rep: crm_bi.contacts holds its own two contacts only (row-level security through the invoker view)");
				readBiViews(rep, "sales rep", mode, new HashSet<>(Arrays.asList("segment_membership", "campaign_results")));
				dashboard(rep, "sales rep", mode, true);
			}
		}
		System.out.println("1.." + n);
		System.exit(failed == 0 ? 0 : 1);
	}
}
