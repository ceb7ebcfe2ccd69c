#!/usr/bin/env bash
# A/B benchmark: runs benchmarks on two builds in the same session, the builds
# alternating round by round, so that a machine that is faster or slower today
# moves both alike.  A is a git revision (built from a temporary worktree), B
# is this checkout's working tree.  The report goes to
# test/bench/results/ab-LABEL.md.
#   bash test/bench/ab.sh [-r ROUNDS] [-l LABEL] REV name ...
# Sizes follow the benchmarks' own variables (BENCH_ACTIVITIES=200000 ...).
set -euo pipefail
rounds=2 label=""
while getopts 'r:l:' o; do
	case $o in
	r) rounds=$OPTARG ;;
	l) label=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-l LABEL] REV name ..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || { echo "usage: $0 [-r ROUNDS] [-l LABEL] REV name ..." >&2; exit 2; }
rev=$1; shift
names=("$@")
source "$(dirname "$0")/../lib/setup.sh"	# builds and installs B, takes the machine lock
cd "$CRM_ROOT"
a_rev=$(git rev-parse --short "$rev")
b_rev="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Makefile crm.control || echo '+changes')"
label=${label:-$a_rev-vs-$b_rev}

a_dir=$(mktemp -d)
trap 'git worktree remove --force "$a_dir" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$a_dir" "$rev"
make -C "$a_dir" -s PG_CFLAGS="$CRM_CFLAGS" >/dev/null

install_build() {
	if [ "$1" = A ]; then make -C "$a_dir" -s install >/dev/null; else make -C "$CRM_ROOT" -s install >/dev/null; fi
}

out="test/bench/results/ab-$label.md"
body=$(mktemp)
export CRM_ROOT
for round in $(seq "$rounds"); do
	for build in A B; do
		install_build "$build"
		for name in "${names[@]}"; do
			echo "== round $round, build $build, benchmark $name" >&2
			{
				echo "## $name, build $build, round $round"
				echo
				# the benchmark scripts are B's, so both builds run the same workload
				pg_virtualenv -t -o 'shared_buffers=2GB' -o 'max_wal_size=8GB' -o 'checkpoint_timeout=30min' \
					-o 'work_mem=64MB' -o 'maintenance_work_mem=1GB' \
					bash -c "psql -X -q -c 'CREATE EXTENSION crm' && bash test/bench/$name.sh" |
					grep -v -E '^(Creating new PostgreSQL cluster|Dropping cluster)'
				echo
			} >> "$body"
		done
	done
done
install_build B
{
	echo "# A/B benchmark: $label"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "- PostgreSQL: $(pg_config --version)"
	echo "- builds: A = $a_rev, B = $b_rev; rounds: $rounds, A then B in each"
	echo "- command: \`bash test/bench/ab.sh -r $rounds $rev ${names[*]}\`$(env | grep -E '^(CLV_)?BENCH_' | sed 's/^/ with /' | tr '\n' ' ')"
	echo "- settings: shared_buffers=2GB, max_wal_size=8GB, work_mem=64MB; other settings default"
	echo
	cat "$body"
} > "$out"
rm -f "$body"
echo "written: $out"
