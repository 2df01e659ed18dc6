# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck install clean bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/portal init || echo "portal init reported catalog problems (see above); serving anyway"
	$(BIN)/portal serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check portal tests benchmarks templates
	$(BIN)/ruff format --check portal tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/python -m pip check
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/catalog.py
	$(BIN)/python benchmarks/scaffold.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
