#!/usr/bin/env bash
# Benchmark harness: builds and installs crm, starts a throwaway cluster and
# runs the named benchmarks (all when none is named).  Each benchmark is
# test/bench/<name>.sh; it runs with PG* variables pointing at the fresh
# cluster and prints a markdown report, which is written, with the date,
# machine and PostgreSQL version, to test/bench/results/<name>.md; the part
# of that file from a "## Notes" heading on is kept.
#   bash test/bench/run.sh [name ...]
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
cd "$CRM_ROOT"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in test/bench/*.sh; do
		[ "$(basename "$f")" = run.sh ] || names+=("$(basename "$f" .sh)")
	done
fi
export CRM_ROOT
for name in "${names[@]}"; do
	out="test/bench/results/$name.md"
	tmp=$(mktemp)
	echo "== benchmark $name"
	pg_virtualenv -t -o 'shared_buffers=2GB' -o 'max_wal_size=8GB' -o 'checkpoint_timeout=30min' \
		-o 'work_mem=64MB' -o 'maintenance_work_mem=1GB' \
		bash -c "psql -X -q -c 'CREATE EXTENSION crm' && bash test/bench/$name.sh" > "$tmp"
	# the file's "## Notes" part (run history, analysis) is kept across runs
	notes=$(sed -n '/^## Notes/,$p' "$out" 2>/dev/null || true)
	{
		echo "# Benchmark: $name"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
		echo "- PostgreSQL: $(pg_config --version)"
		echo "- command: \`bash test/bench/run.sh $name\`"
		echo "- settings: shared_buffers=2GB, max_wal_size=8GB, work_mem=64MB; other settings default"
		echo
		grep -v -E '^(Creating new PostgreSQL cluster|Dropping cluster)' "$tmp"
		[ -z "$notes" ] || printf '\n%s\n' "$notes"
	} > "$out"
	rm -f "$tmp"
	cat "$out"
done
