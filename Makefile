# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install, build the lab extension, run the example sprint on the
#               default ledger, show ls + diff (then `make lab` opens JupyterLab with the sidebar)
#   make test   create .venv, install, run every test
# and, while working:
#   make test-fast  the tests that start no kernel, Jupyter server or browser, nor Spark or MLflow (under a minute)
#   make lint       ruff check + ruff format --check and mypy on the Python, eslint + prettier --check on the lab extension
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOK := example_notebooks/01-one-day-sprint.ipynb

LABEXT_SRC := $(shell find labextension/src labextension/style -type f) labextension/package.json
LABEXT_BUILT := nbexp/labextension/static/style.js

.PHONY: env demo test test-fast lint bench clean chromium java postgres lab

env: $(STAMP) $(LABEXT_BUILT)

# pip builds the lab extension through hatch-jupyter-builder (node + jlpm from JupyterLab);
# `jupyter-builder develop` links it into the venv so `jupyter lab` loads it.
$(STAMP): pyproject.toml labextension/package.json labextension/yarn.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/jupyter-builder develop --overwrite .
	touch $(STAMP)

# rebuild the extension when its TypeScript or CSS changed since the last build
$(LABEXT_BUILT): $(LABEXT_SRC) $(STAMP)
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm install && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm build
	touch $@

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser)
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# a Java runtime for local Spark (the Spark DataFrame tests)
java:
	@command -v java >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null)

# PostgreSQL for the live-sync test (tests/test_sync.py runs its own cluster under a temp dir and an MLflow
# server on it; Debian's package, found under /usr/lib/postgresql/VERSION/bin)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)

lab: env
	$(VENV)/bin/jupyter lab

demo: env
	$(VENV)/bin/jupyter execute $(NOTEBOOK)
	$(VENV)/bin/nbexp ls --sprint today
	$(VENV)/bin/nbexp diff latest~1 latest

test: env chromium java postgres
	$(PY) -m pytest

# the markers are declared in pyproject.toml; a test that needs one of these parts carries its marker
test-fast: env
	$(PY) -m pytest -m "not kernel and not server and not browser and not slow"

# `jlpm lint` in labextension/ and `$(VENV)/bin/ruff format` + `ruff check --fix` fix most findings
LINTED := nbexp tests bench scripts
lint: env
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	cd labextension && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" jlpm lint:check

bench: env .venv-whylogs/.installed
	$(PY) bench/bench_core.py
	$(PY) bench/bench_system.py
	$(PY) bench/bench_data.py
	$(PY) bench/bench_server.py
	$(PY) bench/bench_export.py

# whylogs 1.6 needs NumPy < 2: a reference for bench_data.py, in its own venv
.venv-whylogs/.installed:
	$(PYTHON) -m venv .venv-whylogs
	.venv-whylogs/bin/pip install --quiet whylogs 'numpy<2' 'pandas<2.3'
	touch $@

clean:
	rm -rf $(VENV) .venv-whylogs build dist *.egg-info .pytest_cache nbexp/labextension labextension/lib \
		labextension/node_modules labextension/.yarn
