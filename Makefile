# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install, run the example sprint on the default ledger, show ls + diff
#   make test   create .venv, install, run every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOK := example_notebooks/01-one-day-sprint.ipynb

.PHONY: env demo test bench clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: env
	$(VENV)/bin/jupyter execute $(NOTEBOOK)
	$(VENV)/bin/nbexp ls --sprint today
	$(VENV)/bin/nbexp diff latest~1 latest

test: env
	$(PY) -m pytest

bench: env .venv-whylogs/.installed
	$(PY) bench/bench_core.py
	$(PY) bench/bench_system.py
	$(PY) bench/bench_data.py

# whylogs 1.6 needs NumPy < 2: a reference for bench_data.py, in its own venv
.venv-whylogs/.installed:
	$(PYTHON) -m venv .venv-whylogs
	.venv-whylogs/bin/pip install --quiet whylogs 'numpy<2' 'pandas<2.3'
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
