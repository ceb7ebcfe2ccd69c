# Helpers for benchmark scripts (sourced).
# ms "SQL": runs SQL in one psql session and prints its elapsed milliseconds.
ms() {
	psql -X -q -At -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | awk '/^Time: / {t += $2} END {printf "%.1f", t}'
}
# best N "SQL": the fastest of N runs, in milliseconds
best() {
	local n=$1 sql=$2 b="" t
	for _ in $(seq "$n"); do
		t=$(ms "$sql")
		if [ -z "$b" ] || awk "BEGIN {exit !($t < $b)}"; then b=$t; fi
	done
	echo "$b"
}
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
