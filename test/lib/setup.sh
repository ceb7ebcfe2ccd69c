# Sourced by test/test.sh, test/demo.sh and test/bench/run.sh: installs what
# is missing on a Debian 12 machine (as root), then builds and installs crm.
set -euo pipefail

CRM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# the throwaway cluster picks its own port and sets these; values from the
# caller's shell (a development cluster's port, say) would collide with it
unset PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGCLUSTER PGSERVICE
CRM_PACKAGES="build-essential pkg-config libicu-dev postgresql-15 postgresql-server-dev-15
	postgresql-contrib postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-cron
	libpostgresql-jdbc-java default-jdk-headless"
export CRM_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers"

crm_install_packages() {
	local missing=()
	for p in $CRM_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

crm_build_install() {
	make -C "$CRM_ROOT" -s clean
	make -C "$CRM_ROOT" -s PG_CFLAGS="${PG_CFLAGS:-$CRM_CFLAGS}"
	make -C "$CRM_ROOT" -s install >/dev/null
}

# One build-install-test at a time on a machine: the installed crm.so and
# install script are shared by every cluster here.
exec 9>/tmp/crm-build.lock
flock 9

crm_install_packages
crm_build_install
