# The verbs a user types. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.kclf-installed
BACKENDS := jax tensorflow torch
JOBS     ?= 2

.PHONY: install test test-fast lint experiments compare bench clean fixtures

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e ".[all,dev]"
	@touch $(STAMP)

# Backend-free tests once, then the backend tests once per backend, each in its own process.
test: install
	@status=0; \
	echo "== tests without a backend"; \
	$(PY) -m pytest -q -m "not backend" || status=1; \
	for b in $(BACKENDS); do \
	  echo "== backend tests under KERAS_BACKEND=$$b"; \
	  KERAS_BACKEND=$$b $(PY) -m pytest -q -m backend || status=1; \
	done; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED"; else echo "make test: all passed"; fi; \
	exit $$status

lint: install
	$(VENV)/bin/ruff check kclf experiments tests

experiments: install
	@for b in $(BACKENDS); do \
	  for e in $$($(VENV)/bin/kclf list --names); do \
	    echo "== $$e on $$b"; $(VENV)/bin/kclf run $$e --backend $$b || exit 1; \
	  done; \
	done

compare: install
	$(VENV)/bin/kclf compare all --jobs $(JOBS)

bench: install
	$(VENV)/bin/kclf bench

clean:
	rm -rf results .pytest_cache .ruff_cache *.egg-info

# The TensorFlow lecture runs' initial weights and batch orders shipped for --start tensorflow
# (kclf/demos/fixtures): remake them after changing the pinned keras or TensorFlow.
fixtures: install
	$(PY) -m kclf.demos.start --ship $${KCLF_STROKE_CSV:?set KCLF_STROKE_CSV to the Kaggle stroke CSV}
