# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov lives in its own virtualenv: its botocore pins a python-dateutil the portal's
# kubernetes dependencies cannot share (pip check stays clean in .venv).
CHECKOV_VERSION := 3.3.30
CHECKOV := .tools/checkov/bin/checkov
CHECKOV_STAMP := .tools/checkov/.installed-$(CHECKOV_VERSION)
export PORTAL_CHECKOV_PATH ?= $(CURDIR)/$(CHECKOV)

.PHONY: run test lint typecheck install tools clean bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(CHECKOV_STAMP):
	test -x .tools/checkov/bin/python || $(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet --upgrade pip
	.tools/checkov/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV_STAMP)

tools: $(CHECKOV_STAMP)

run: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/portal init || echo "portal init reported catalog problems (see above); serving anyway"
	$(BIN)/portal serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check portal tests benchmarks templates
	$(BIN)/ruff format --check portal tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(CHECKOV_STAMP) lint typecheck
	$(BIN)/python -m pip check
	$(BIN)/python -m pytest

bench: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python benchmarks/catalog.py
	$(BIN)/python benchmarks/scaffold.py
	$(BIN)/python benchmarks/slo.py
	$(BIN)/python benchmarks/slo_pages.py
	$(BIN)/python benchmarks/air_quality.py

clean:
	rm -rf $(VENV) .tools var .mypy_cache .ruff_cache .pytest_cache
