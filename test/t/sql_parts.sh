#!/usr/bin/env bash
# TAP: the install script's parts.  The Makefile lists every src/*.sql once,
# in dependency order (SQL_PARTS); "make check-sql-parts" rejects a file that
# is not listed, one listed twice and one listed but absent, and the built
# crm--VERSION.sql is the listed files, concatenated in that order.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
n=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..5"

parts=$(make -s -C "$root" --no-print-directory -f Makefile -f - print-sql-parts <<'MK'
print-sql-parts:
	@echo $(SQL_PARTS)
MK
)
check() { make -s -C "$root" --no-print-directory check-sql-parts "$@" > "$out/check.txt" 2>&1; }

check; ok $? "every src/*.sql is listed once in SQL_PARTS, and every listed file exists"
[ $? = 0 ] || sed 's/^/# /' "$out/check.txt"

without=$(echo "$parts" | sed 's| src/consent.sql||')
! check SQL_PARTS="$without" && grep -q 'src/consent.sql is not in SQL_PARTS' "$out/check.txt"
ok $? "a file left out of SQL_PARTS fails the check, named"

! check SQL_PARTS="$parts src/rfm.sql" && grep -q 'src/rfm.sql is listed more than once' "$out/check.txt"
ok $? "a file listed twice fails the check, named"

! check SQL_PARTS="$parts src/no_such_part.sql" && grep -q 'src/no_such_part.sql is in SQL_PARTS but does not exist' "$out/check.txt"
ok $? "a listed file that does not exist fails the check, named"

version=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$root/crm.control")
make -s -C "$root" --no-print-directory "crm--$version.sql" > "$out/build.txt" 2>&1 &&
	(cd "$root" && cat $parts) | cmp -s - "$root/crm--$version.sql"
ok $? "crm--$version.sql is SQL_PARTS concatenated in order ($(echo $parts | wc -w) files, header first, ownership last)"
rm -rf "$out"
