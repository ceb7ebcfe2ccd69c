# crm: PGXS build. The version is read from crm.control, nowhere else.
EXTENSION  = crm
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" crm.control)

MODULE_big = crm
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is built from one SQL file per feature, kept beside its
# C unit.  The core files come first in this order (types before the tables
# that use them); every other src/*.sql follows in name order, and
# src/ownership.sql (which hands the tables to the installing role) last.
SQL_CORE   = src/header.sql src/email.sql src/schema.sql src/consent.sql \
             src/scoring.sql src/lifecycle.sql
SQL_LAST   = src/ownership.sql
SQL_PARTS  = $(SQL_CORE) $(filter-out $(SQL_CORE) $(SQL_LAST),$(sort $(wildcard src/*.sql))) $(SQL_LAST)
# Released versions: each one's install script is frozen in src/releases/
# (never rebuilt, never cleaned) and every step between versions is an update
# script in src/updates/.  src/ builds the version under development.
DATA_built = crm--$(EXTVERSION).sql
DATA       = $(wildcard src/releases/crm--*.sql) $(wildcard src/updates/crm--*--*.sql)

PG_CPPFLAGS += -I$(srcdir)/src $(shell pkg-config --cflags icu-uc icu-i18n)
SHLIB_LINK  += $(shell pkg-config --libs icu-uc icu-i18n) -lm

# pg_regress: sql/ and expected/ at the top level; isolation specs in test/.
REGRESS       = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS  = --load-extension=crm
ISOLATION     = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --load-extension=crm

EXTRA_CLEAN = crm--$(EXTVERSION).sql results regression.diffs regression.out output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

crm--$(EXTVERSION).sql: $(SQL_PARTS) crm.control
	cat $(SQL_PARTS) > $@
