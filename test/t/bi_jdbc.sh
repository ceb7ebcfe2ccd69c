#!/usr/bin/env bash
# TAP: a real client.  test/bi/BiClient.java drives crm through pgjdbc
# (Debian's libpostgresql-jdbc-java) as a BI tool does, as a superuser, an
# analyst and a sales rep, with and without server-side prepared statements.
set -uo pipefail
jar=/usr/share/java/postgresql.jar
if [ ! -r "$jar" ] || ! command -v java >/dev/null; then
	echo "1..1"
	echo "not ok 1 - pgjdbc ($jar) and java are needed: apt-get install libpostgresql-jdbc-java default-jdk-headless"
	exit 1
fi
db=crm_bi_jdbc$$
createdb "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm;
SELECT * FROM crm.setup_roles();
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bi_analyst') THEN
		CREATE ROLE bi_analyst LOGIN PASSWORD 'bi-analyst-pw' IN ROLE crm_analyst;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bi_rep') THEN
		CREATE ROLE bi_rep LOGIN PASSWORD 'bi-rep-pw' IN ROLE crm_sales;
	END IF;
END $$;
INSERT INTO crm.contact (email, owner, stage) VALUES
	('Ann.Lee@Example.ORG', 'bi_rep', 'lead'), ('bob@example.org', 'bi_rep', 'customer'),
	('carl@example.org', current_user, 'lead');
-- two customers who are nobody's leads: orders for the churn, cohort and
-- summary calls (dan and eve in January, eve again in February), a page view
INSERT INTO crm.contact (email, owner) VALUES ('dan@example.org', current_user), ('eve@example.org', current_user);
INSERT INTO crm."order" (contact_id, ordered_at, total, status)
SELECT c.contact_id, o.at::timestamptz, o.total, 'paid'
  FROM crm.contact c JOIN (VALUES ('dan@example.org', '2026-01-05', 10), ('eve@example.org', '2026-01-10', 40),
								  ('eve@example.org', '2026-02-15', 15)) o(email, at, total) ON c.email = o.email::crm.email;
INSERT INTO crm.activity (contact_id, kind, occurred_at)
SELECT contact_id, 'page_view', now() - interval '2 days' FROM crm.contact WHERE email = 'dan@example.org';
-- a campaign on a static segment of dan and eve (who agreed to e-mail), for the read-only preview
INSERT INTO crm.consent (contact_id, channel, status)
SELECT contact_id, 'email', 'granted' FROM crm.contact WHERE email IN ('dan@example.org', 'eve@example.org');
SELECT crm.create_static_segment('bi seg', 'the JDBC test''s customers');
SELECT crm.add_to_segment('bi seg', ARRAY(SELECT contact_id FROM crm.contact WHERE email IN ('dan@example.org', 'eve@example.org')));
SELECT crm.create_campaign('bi camp', 'bi seg');
SQL
java -cp "$jar" "$(dirname "$0")/../bi/BiClient.java" "${PGHOST:-localhost}" "${PGPORT:-5432}" "$db"
status=$?
dropdb "$db"
psql -X -q -c "DROP ROLE IF EXISTS bi_analyst, bi_rep"
exit $status
