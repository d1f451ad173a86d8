# Every target sets up .venv by itself, so a fresh machine needs only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SEGMENTS_DB ?= var/segments.db
PORT ?= 8000

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@echo "+ $(PYTHON) -m venv $(VENV) && pip install -e '.[test]'"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	@mkdir -p $(dir $(SEGMENTS_DB))
	@echo "+ SEGMENTS_DB=$(SEGMENTS_DB) $(BIN)/python -m api.serve --port $(PORT)"
	@SEGMENTS_DB=$(SEGMENTS_DB) $(BIN)/python -m api.serve --port $(PORT)

test: $(STAMP)
	@echo "+ $(BIN)/python -m pytest"
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@echo "+ $(BIN)/ruff check ."
	@$(BIN)/ruff check .

bench: $(STAMP)
	@for b in bench/store.py bench/grammar.py bench/engine.py bench/api.py; do \
		test -f $$b || continue; echo "+ $(BIN)/python $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var/*.db* .pytest_cache .hypothesis
