#!/usr/bin/env bash
# TAP: every member of the crm extension (schema, types, tables, views,
# functions, aggregates) has a COMMENT, and the README's reference section is
# exactly what test/doc/reference.sh generates from those COMMENTs, so an
# object missing from the reference, or described there in other words than
# its COMMENT, fails.  Fix: add the COMMENT (in src/ and the update script),
# then run `bash test/doc/reference.sh` and commit README.md.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gen=$here/../doc/reference.sh
readme=$here/../../README.md
out=$(mktemp -d)

echo "1..3"
if bash "$gen" --missing > "$out/missing.txt" 2> "$out/missing.err" && [ ! -s "$out/missing.txt" ]; then
	echo "ok 1 - every crm object has a COMMENT"
else
	echo "not ok 1 - every crm object has a COMMENT"
	sed 's/^/# no COMMENT: /' "$out/missing.txt"; sed 's/^/# /' "$out/missing.err"
fi

start='<!-- reference:start -->' end='<!-- reference:end -->'
if [ "$(grep -cxF "$start" "$readme")" = 1 ] && [ "$(grep -cxF "$end" "$readme")" = 1 ]; then
	echo "ok 2 - README.md has one reference section"
else
	echo "not ok 2 - README.md has one reference section (one line '$start', one line '$end')"
fi

# what the README has between the markers, against what the script prints
sed -n "/^$start\$/,/^$end\$/p" "$readme" | sed '1d;$d' > "$out/readme.md"
if bash "$gen" --print > "$out/generated.md" 2> "$out/generated.err" &&
	diff -u "$out/readme.md" "$out/generated.md" > "$out/diff.txt"; then
	echo "ok 3 - the README's reference is what test/doc/reference.sh generates"
else
	echo "not ok 3 - the README's reference is what test/doc/reference.sh generates (run it and commit README.md)"
	sed 's/^/# /' "$out/generated.err" "$out/diff.txt" | head -60
fi
rm -rf "$out"
