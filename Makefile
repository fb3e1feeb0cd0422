# tracuu: `make run` serves the search page, `make test` runs the tests (both set up .venv first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INDEX ?= data/index
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test index lint bench fuzz clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
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

# Schema-driven fuzzing of the OpenAPI spec (schemathesis): any 5xx fails.
fuzz: $(VENV)/.installed-test
	$(PY) -m pip install --quiet 'schemathesis>=4.0'
	TRACUU_FUZZ=1 $(PY) -m pytest -q tests/test_fuzz.py

bench: $(VENV)/.installed-test
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) data/index
