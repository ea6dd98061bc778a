# Two commands do all the set-up: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODE_INSTALLED := node_modules/.installed

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

# bpmn.io's packages: bpmn-moddle checks that every diagram opens in a modeler;
# bpmn-js draws the diagrams on the case pages (served from node_modules, not committed).
$(NODE_INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_INSTALLED)

run: $(INSTALLED) $(NODE_INSTALLED)
	$(BIN)/casework run --demo

test: $(INSTALLED) $(NODE_INSTALLED)
	$(BIN)/pytest -n 2 -q

# The benchmarks of BENCHMARKS.md (DESIGN §9), each on SQLite and PostgreSQL, one after the
# other, with their figures printed as tables: about 12 minutes, and the figures only mean
# something on an otherwise idle machine.
bench: $(INSTALLED)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/growth.py
	$(BIN)/python bench/inbox.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/stuck.py

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache
