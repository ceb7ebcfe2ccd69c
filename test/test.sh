#!/usr/bin/env bash
# Runs every test against a throwaway cluster: pg_regress (sql/, expected/),
# isolation specs (test/specs), pgTAP files (test/pgtap, with pg_prove) and
# shell TAP scripts (test/t, with prove).  Prints "N passed, N failed" last
# and exits non-zero on any failure.
#
#   bash test/test.sh            every test
#   bash test/test.sh PATTERN    only the tests whose file name matches the
#                                extended regular expression (a quick loop
#                                while working on one feature)
set -euo pipefail
only=${1:-}
source "$(dirname "$0")/lib/setup.sh"
cd "$CRM_ROOT"

log=$(mktemp -d)
# pg_regress writes into the tree; pg_virtualenv's server runs as postgres
chmod -R a+rX "$CRM_ROOT"

# pick NAME...: the names matching $only (all when it is empty)
pick() { printf '%s\n' "$@" | grep -E -- "${only:-.}" | tr '\n' ' ' || true; }
regress=$(pick $(basename -s .sql sql/*.sql))
isolation=$(pick $(basename -s .spec test/specs/*.spec))
pgtap=$(pick test/pgtap/*.sql)
tap=$(pick test/t/*.sh)

run_all() {
	status=0
	: > "$log/regress.txt"
	if [ -n "$regress" ]; then
		make -s installcheck REGRESS="$regress" ISOLATION= >> "$log/regress.txt" 2>&1 || status=1
	fi
	if [ -n "$isolation" ]; then
		make -s installcheck REGRESS= ISOLATION="$isolation" >> "$log/regress.txt" 2>&1 || status=1
	fi
	if [ -n "$pgtap" ]; then
		pg_prove -v $pgtap > "$log/pgtap.txt" 2>&1 || status=1
	fi
	if [ -n "$tap" ]; then
		prove -v --exec bash $tap > "$log/tap.txt" 2>&1 || status=1
	fi
	return $status
}
export -f run_all
export log regress isolation pgtap tap

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
# a "not ok ... # TODO" is a known failure (TAP TODO): shown above, not counted
failed=$(( $(count '\.\.\. FAILED|\.\.\. failed' "$log/regress.txt")
		 + $(count '^\s*not ok [0-9]+' "$log/pgtap.txt" "$log/tap.txt")
		 - $(count '^\s*not ok [0-9]+.*# TODO' "$log/pgtap.txt" "$log/tap.txt") ))
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1	# a runner died without reporting a failed test
fi
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
