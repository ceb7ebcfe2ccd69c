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
SQL
java -cp "$jar" "$(dirname "$0")/../bi/BiClient.java" "${PGHOST:-localhost}" "${PGPORT:-5432}" "$db"
status=$?
dropdb "$db"
psql -X -q -c "DROP ROLE IF EXISTS bi_analyst, bi_rep"
exit $status
