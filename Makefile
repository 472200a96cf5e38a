# The verbs a user types. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.kclf-installed
BACKENDS := jax tensorflow torch
JOBS     ?= 2

# The oldest keras pyproject.toml declares: make test runs the backend-free and the JAX tests
# against it too, from a folder that shadows the venv's keras (keras is pure Python).
FLOOR_KERAS := $(shell sed -n 's/.*"keras>=\([0-9.]*\).*/\1/p' pyproject.toml)
FLOOR_DIR   := .venv-floor-keras
FLOOR_STAMP := $(FLOOR_DIR)/.keras-$(FLOOR_KERAS)

.PHONY: install test test-fast lint experiments compare bench clean fixtures

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e ".[all,dev]"
	@touch $(STAMP)

$(FLOOR_STAMP): pyproject.toml | install
	rm -rf $(FLOOR_DIR)
	$(PIP) install -q --no-deps --target $(FLOOR_DIR) keras==$(FLOOR_KERAS)
	@touch $@

# Backend-free tests once, then the backend tests once per backend, each in its own process;
# then the backend-free and the JAX tests again with the oldest keras kclf declares (the
# shipped TensorFlow captures are keyed by the keras version they were made with: not that one).
test: install $(FLOOR_STAMP)
	@status=0; \
	echo "== tests without a backend"; \
	$(PY) -m pytest -q -m "not backend" || status=1; \
	for b in $(BACKENDS); do \
	  echo "== backend tests under KERAS_BACKEND=$$b"; \
	  KERAS_BACKEND=$$b $(PY) -m pytest -q -m backend || status=1; \
	done; \
	echo "== keras $$(PYTHONPATH=$(FLOOR_DIR) $(PY) -c 'import keras; print(keras.__version__)') (the declared floor): tests without a backend, then JAX"; \
	PYTHONPATH=$(FLOOR_DIR) $(PY) -m pytest -q -p no:cacheprovider -m "not backend" || status=1; \
	PYTHONPATH=$(FLOOR_DIR) KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider -m backend || status=1; \
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
	rm -rf results .pytest_cache .ruff_cache *.egg-info $(FLOOR_DIR)

# What kclf/demos/fixtures ships: the lecture runs' initial weights and batch orders for
# --start torch-2026 (torch) and --start tensorflow-2025 (TensorFlow), and torch's generator
# state where the 2026 lecture's iris demo began (kclf run iris restores it). Remake them
# after changing the pinned keras, torch or TensorFlow (about 25 minutes: the stroke demos).
fixtures: install
	$(PY) -m kclf.demos.cache --ship $${KCLF_STROKE_CSV:?set KCLF_STROKE_CSV to the Kaggle stroke CSV}
