#!/usr/bin/env bash
# Runs every test against a throwaway cluster: pg_regress (sql/, expected/),
# isolation specs (test/specs), pgTAP files (test/pgtap, with pg_prove) and
# shell TAP scripts (test/t, with prove).  Prints "N passed, N failed" last
# and exits non-zero on any failure.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"
cd "$CRM_ROOT"

log=$(mktemp -d)
# pg_regress writes into the tree; pg_virtualenv's server runs as postgres
chmod -R a+rX "$CRM_ROOT"

run_all() {
	status=0
	make -s installcheck ISOLATION= > "$log/regress.txt" 2>&1 || status=1
	make -s installcheck REGRESS= >> "$log/regress.txt" 2>&1 || status=1
	pg_prove -v test/pgtap/*.sql > "$log/pgtap.txt" 2>&1 || status=1
	prove -v --exec bash --ext .sh test/t/ > "$log/tap.txt" 2>&1 || status=1
	return $status
}
export -f run_all
export log

rc=0
pg_virtualenv -t -o 'max_worker_processes=16' -o 'max_parallel_workers=8' bash -c run_all || rc=1

[ -f "$log/regress.txt" ] || echo "test.sh: the throwaway cluster did not start; see pg_virtualenv output above" >&2
cat "$log/regress.txt" 2>/dev/null || true
grep -vE '^\s*ok [0-9]+' "$log/pgtap.txt" 2>/dev/null || true
grep -vE '^\s*ok [0-9]+' "$log/tap.txt" 2>/dev/null || true
[ -f regression.diffs ] && cat regression.diffs
[ -f output_iso/regression.diffs ] && cat output_iso/regression.diffs

# count PATTERN FILE...: matching lines, 0 when the files are missing
count() { local p=$1; shift; cat "$@" 2>/dev/null | grep -cE "$p" || true; }
passed=$(( $(count '\.\.\. ok' "$log/regress.txt")
		 + $(count '^\s*ok [0-9]+' "$log/pgtap.txt" "$log/tap.txt") ))
failed=$(( $(count '\.\.\. FAILED|\.\.\. failed' "$log/regress.txt")
		 + $(count '^\s*not ok [0-9]+' "$log/pgtap.txt" "$log/tap.txt") ))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1	# a runner died without reporting a failed test
fi
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
