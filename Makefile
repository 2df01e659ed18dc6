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
# MLflow, the model registry: `portal serve` starts it on loopback when PORTAL_MLFLOW_URL is
# unset, and the tests start it as a real server. Its own virtualenv too: several hundred
# MB of dependencies with pins of their own that the portal does not need.
MLFLOW_VERSION := 3.17.2
MLFLOW_STAMP := .tools/mlflow/.installed-$(MLFLOW_VERSION)
# Every template's generated service installs from its own locks (templates/*/template/
# requirements*.lock). The suite runs each service's tests in a fresh venv installed from
# them offline, from this wheelhouse: the download happens here because tests never reach
# the registry. The stamp is named after the locks' hash, so a changed lock downloads again.
TEMPLATE_LOCKS := $(sort $(wildcard templates/*/template/requirements*.lock))
WHEELHOUSE := .tools/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.stamp-$(shell cat $(TEMPLATE_LOCKS) </dev/null | sha256sum | cut -c1-16)
# The review check `rag eval` runs a RAG service's own evaluator with the Python of a venv
# holding the RAG template's runtime lock, installed offline from the wheelhouse; the stamp
# is named after the lock's hash, so a changed lock rebuilds it.
RAG_EVAL_LOCK := templates/rag-llm-service/template/requirements.lock
RAG_EVAL_STAMP := .tools/rag-eval/.installed-$(shell cat $(RAG_EVAL_LOCK) </dev/null 2>/dev/null | sha256sum | cut -c1-16)
# pip-compile (pip-tools) re-resolves the locks: `make template-locks`, never part of a test.
PIP_TOOLS_VERSION := 7.7.0
# The suite mostly waits on subprocesses (git, kustomize, promtool, Prometheus, Chromium): on
# two workers (pytest-xdist) the two cores were busy 63 to 77% of the time, so it runs on
# three; a file's tests stay on one worker so a module's fixture (a live Prometheus, a
# browser) starts once. PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 3
PIP_COMPILE := .tools/pip-tools/bin/pip-compile

.PHONY: run test lint typecheck install tools clean bench wheelhouse template-locks

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# $(call tool-venv,NAME,REQUIREMENT): the virtualenv .tools/NAME holding one pinned tool.
define tool-venv
	test -x .tools/$(1)/bin/python || $(PYTHON) -m venv .tools/$(1)
	.tools/$(1)/bin/python -m pip install --quiet --upgrade pip
	.tools/$(1)/bin/python -m pip install --quiet '$(2)'
	touch $@
endef

$(CHECKOV_STAMP):
	$(call tool-venv,checkov,checkov==$(CHECKOV_VERSION))

$(MLFLOW_STAMP):
	$(call tool-venv,mlflow,mlflow==$(MLFLOW_VERSION))

$(RAG_EVAL_STAMP): $(RAG_EVAL_LOCK) $(WHEELHOUSE_STAMP)
	rm -rf .tools/rag-eval
	$(BIN)/python -m venv .tools/rag-eval
	PIP_CONFIG_FILE=/dev/null .tools/rag-eval/bin/python -m pip install --quiet --no-index \
	  --find-links $(WHEELHOUSE) --no-deps --require-hashes -r $(RAG_EVAL_LOCK)
	touch $@

tools: $(CHECKOV_STAMP) $(MLFLOW_STAMP) $(RAG_EVAL_STAMP)

$(WHEELHOUSE_STAMP): $(TEMPLATE_LOCKS) | $(STAMP)
	rm -f $(WHEELHOUSE)/.stamp-*
	for lock in $(TEMPLATE_LOCKS); do \
	  $(BIN)/python -m pip download --quiet --no-deps --require-hashes --only-binary :all: \
	    --dest $(WHEELHOUSE) -r "$$lock" || exit 1; \
	done
	touch $@

wheelhouse: $(WHEELHOUSE_STAMP)

$(PIP_COMPILE):
	test -x .tools/pip-tools/bin/python || $(PYTHON) -m venv .tools/pip-tools
	.tools/pip-tools/bin/python -m pip install --quiet 'pip-tools==$(PIP_TOOLS_VERSION)'

# After changing a template's dependencies: render it and re-resolve its locks with hashes
# (the runtime lock first; the test lock within it, plus the test extra and the build
# backend, so CI builds the service offline), then `make test`. Existing pins are kept
# unless LOCK_FLAGS=--upgrade (or --upgrade-package NAME) asks for newer ones.
LOCK_FLAGS ?=
COMPILE_LOCK := $(CURDIR)/$(PIP_COMPILE) --quiet --generate-hashes --allow-unsafe \
  --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)
template-locks: $(STAMP) $(PIP_COMPILE)
	set -e; for template in templates/*/template; do \
	  out=.tools/lock-render/$$(basename $$(dirname $$template)); rm -rf $$out; \
	  $(BIN)/copier copy --quiet --defaults --data name=service --data owner=platform-team \
	    --data description=service $$(dirname $$template) $$out; \
	  (cd $$out && $(COMPILE_LOCK) --output-file requirements.lock pyproject.toml \
	    && $(COMPILE_LOCK) --extra test --build-deps-for editable \
	      --constraint requirements.lock --output-file requirements-test.lock pyproject.toml); \
	  cp $$out/requirements.lock $$out/requirements-test.lock $$template/; \
	done

run: $(STAMP) $(CHECKOV_STAMP) $(MLFLOW_STAMP) $(RAG_EVAL_STAMP)
	$(BIN)/portal init || echo "portal init reported catalog problems (see above); serving anyway"
	$(BIN)/portal serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check portal tests benchmarks templates
	$(BIN)/ruff format --check portal tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(CHECKOV_STAMP) $(MLFLOW_STAMP) $(RAG_EVAL_STAMP) $(WHEELHOUSE_STAMP) lint typecheck
	$(BIN)/python -m pip check
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=30

bench: $(STAMP) $(CHECKOV_STAMP) $(MLFLOW_STAMP) $(RAG_EVAL_STAMP)
	$(BIN)/python benchmarks/catalog.py
	$(BIN)/python benchmarks/scaffold.py
	$(BIN)/python benchmarks/fleet.py
	$(BIN)/python benchmarks/slo.py
	$(BIN)/python benchmarks/slo_pages.py
	$(BIN)/python benchmarks/air_quality.py
	$(BIN)/python benchmarks/cost.py
	$(BIN)/python benchmarks/aiops.py
	$(BIN)/python benchmarks/rag.py

clean:
	rm -rf $(VENV) .tools var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
