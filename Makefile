# crm: PGXS build. The version is read from crm.control, nowhere else.
EXTENSION  = crm
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" crm.control)

MODULE_big = crm
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is built from one SQL file per feature, kept beside its
# C unit, concatenated in this order: each file after the ones whose objects
# it needs when it is created (types before the tables that use them, tables
# before the views and SQL functions that read them), crm.setup_roles after
# every object it grants on, and src/ownership.sql (which hands the tables to
# the installing role) last.  Every src/*.sql is listed once: "make
# check-sql-parts" (run by every build of the script, and by
# test/t/sql_parts.sh) fails on a file missing from the list, listed twice,
# or listed and absent.
SQL_PARTS  = src/header.sql \
             src/email.sql \
             src/schema.sql \
             src/consent.sql \
             src/rfm.sql \
             src/scoring.sql \
             src/lifecycle.sql \
             src/loyalty.sql \
             src/identity.sql \
             src/privacy.sql \
             src/restore.sql \
             src/segment.sql \
             src/campaign.sql \
             src/basket.sql \
             src/clv.sql \
             src/clv_retention.sql \
             src/predict.sql \
             src/schedule.sql \
             src/distribute.sql \
             src/roles.sql \
             src/analyst.sql \
             src/bi_views.sql \
             src/columns.sql \
             src/bi.sql \
             src/ownership.sql
# Released versions: each one's install script is frozen in src/releases/
# (never rebuilt, never cleaned) and every step between versions is an update
# script in src/updates/.  src/ builds the version under development.
DATA_built = crm--$(EXTVERSION).sql
DATA       = $(wildcard src/releases/crm--*.sql) $(wildcard src/updates/crm--*--*.sql)

PG_CPPFLAGS += -I$(srcdir)/src $(shell pkg-config --cflags icu-uc icu-i18n)
SHLIB_LINK  += $(shell pkg-config --libs icu-uc icu-i18n) -lm
# exported: the module hooks and the crm_ entry points; everything else local
SHLIB_EXPORTS = src/exports.txt

# pg_regress: sql/ and expected/ at the top level; isolation specs in test/.
REGRESS       = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS  = --load-extension=crm
ISOLATION     = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --load-extension=crm

EXTRA_CLEAN = crm--$(EXTVERSION).sql src/exports.list results regression.diffs regression.out output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every src/*.sql is a prerequisite (and the Makefile, which orders them): a
# new file rebuilds the script, and the check rejects it until it is listed.
crm--$(EXTVERSION).sql: $(SQL_PARTS) $(wildcard src/*.sql) Makefile crm.control | check-sql-parts
	cat $(SQL_PARTS) > $@

# SQL_PARTS against src/*.sql: each file listed exactly once.
.PHONY: check-sql-parts
check-sql-parts:
	@bad=0; \
	for f in $(sort $(wildcard src/*.sql)); do \
		case " $(strip $(SQL_PARTS)) " in *" $$f "*) ;; \
		*) echo "Makefile: $$f is not in SQL_PARTS (add it where its dependencies are met)" >&2; bad=1;; esac; \
	done; \
	for f in $$(printf '%s\n' $(SQL_PARTS) | sort | uniq -d); do \
		echo "Makefile: $$f is listed more than once in SQL_PARTS" >&2; bad=1; \
	done; \
	for f in $(SQL_PARTS); do \
		[ -f "$$f" ] || { echo "Makefile: $$f is in SQL_PARTS but does not exist" >&2; bad=1; }; \
	done; \
	exit $$bad
