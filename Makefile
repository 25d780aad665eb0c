# The two commands a fresh machine needs: `make run` and `make test`. Everything else is
# installed by these targets from the project's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json
DBT_FILES := $(shell find dbt_project -type f ! -path 'dbt_project/target/*' ! -path 'dbt_project/logs/*')

.PHONY: run test dev setup prepare bench screenshots clean

$(STAMP): setup.py pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(STAMP) $(MANIFEST)

# Parse the dbt project into a manifest, so loading the code location never re-parses it: again
# only when a file of the project (or the installed packages) changed; `make prepare` forces it.
$(MANIFEST): $(STAMP) $(DBT_FILES)
	$(BIN)/netflix-elt prepare

prepare: $(STAMP)
	$(BIN)/netflix-elt prepare

run: setup
	$(BIN)/netflix-elt run

# The browser tests and the README's pictures drive Debian's Chromium through Playwright
# (never `playwright install`).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# The production-topology test starts PostgreSQL 15 from its server binaries (as the `postgres`
# user when run as root); no cluster of the package's own is created or started.
PG_INITDB := /usr/lib/postgresql/15/bin/initdb

$(PG_INITDB):
	mkdir -p /etc/postgresql-common
	grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15

test: setup $(CHROMIUM) $(PG_INITDB)
	$(BIN)/python -m pytest

dev: setup
	$(BIN)/netflix-elt dev

# The README's pictures (docs/*.png, docs/pictures.json) from a fresh build: a throwaway home,
# `netflix-elt run`, the UI over it, Playwright on Debian's Chromium. See docs/dev-tools.md.
screenshots: setup $(CHROMIUM)
	$(BIN)/python tools/screenshots.py $(SCREENSHOTS_ARGS)

# Figures, not tests: the whole pipeline at ml-25m scale against a bare-DuckDB floor.
bench: setup
	$(BIN)/python benchmarks/run_benchmarks.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .netflix_elt_home dbt_project/target dbt_project/logs
