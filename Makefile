# The two commands of the quick start: `make demo` and `make test`.
# Each creates .venv and installs unitscope into it when that is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UNITSCOPE_HOME ?= $(CURDIR)/.unitscope

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	UNITSCOPE_HOME=$(UNITSCOPE_HOME) $(BIN)/unitscope demo --out $(UNITSCOPE_HOME)/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(UNITSCOPE_HOME) build dist src/*.egg-info
