#!/usr/bin/env bash
# The demo: builds and installs crm, starts a throwaway PostgreSQL cluster,
# generates a synthetic CRM (100k contacts, 1M activities by default), loads
# the real CDNOW transactions, and prints a report of the extension at work.
#   bash test/demo.sh [contacts] [activities]
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"
cd "$CRM_ROOT"
export DEMO_CONTACTS=${1:-100000} DEMO_ACTIVITIES=${2:-1000000}

demo() {
	set -e
	echo "== Generating $DEMO_CONTACTS contacts and $DEMO_ACTIVITIES activities, loading CDNOW"
	psql -X -q -c 'CREATE EXTENSION crm' >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -f test/demo/rules.sql >/dev/null
	time psql -X -q -v seed=42 -v contacts="$DEMO_CONTACTS" -v activities="$DEMO_ACTIVITIES" \
		-f test/demo/generate.sql >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 -f test/demo/loyalty.sql >/dev/null
	psql -X -q -f test/demo/load_cdnow.sql >/dev/null
	for f in test/demo/report.d/*.sql; do
		psql -X -q -P pager=off -f "$f"
	done
}
export -f demo
pg_virtualenv -t bash -c demo
