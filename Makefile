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

.PHONY: install test test-free test-jax test-tensorflow test-torch test-floor-free test-floor-jax \
	lint experiments compare bench clean fixtures

# Where torch comes from. PyPI's Linux torch brings multi-GB CUDA libraries, so the default
# ("auto") is torch's CPU wheels (TORCH_CPU_INDEX), unless pip finds torch $(TORCH_VERSION)
# without any index, in a wheel directory of its configuration (find-links: a CI image's).
# For a GPU, name the CUDA build's index, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cu128
# (pytorch.org lists the CUDA versions of each torch); TORCH_INDEX=pypi takes PyPI's build.
TORCH_VERSION   := $(shell sed -n 's/^torch==\([0-9.]*\).*/\1/p' constraints.txt)
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX     ?= auto

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@index='$(TORCH_INDEX)'; \
	if [ "$$index" = auto ]; then \
	  if $(PIP) install -q --dry-run --ignore-installed --no-index --no-deps \
	       "torch==$(TORCH_VERSION)" >/dev/null 2>&1; then \
	    index=; echo "make install: torch $(TORCH_VERSION) from pip's local wheels"; \
	  else index='$(TORCH_CPU_INDEX)'; fi; \
	elif [ "$$index" = pypi ]; then index=; fi; \
	echo "$(PIP) install -q -c constraints.txt $${index:+--extra-index-url $$index }-e \".[all,dev]\""; \
	$(PIP) install -q -c constraints.txt $${index:+--extra-index-url "$$index"} -e ".[all,dev]"
	@touch $(STAMP)

$(FLOOR_STAMP): pyproject.toml | install
	rm -rf $(FLOOR_DIR)
	$(PIP) install -q --no-deps --target $(FLOOR_DIR) keras==$(FLOOR_KERAS)
	@touch $@

# Backend-free tests once, the backend tests once per backend, each in its own process; then
# the backend-free and the JAX tests again with the oldest keras kclf declares (the shipped
# captures are keyed by the keras version they were made with: not that one). The passes run
# TEST_JOBS at a time (each is one mostly single-threaded process), the longest first (torch:
# the 2026 lecture's 706 stroke epochs); each pass's output is printed whole when it ends.
TEST_JOBS ?= 2
TEST_PASSES := test-torch test-tensorflow test-free test-jax test-floor-free test-floor-jax

test: install $(FLOOR_STAMP)
	@$(MAKE) --no-print-directory -k -j$(TEST_JOBS) -O $(TEST_PASSES) \
	  && echo "make test: all passed" || { echo "make test: FAILED"; exit 1; }

test-free:
	@echo "== tests without a backend"
	@$(PY) -m pytest -q -m "not backend"

test-jax test-tensorflow test-torch: test-%:
	@echo "== backend tests under KERAS_BACKEND=$*"
	@KERAS_BACKEND=$* $(PY) -m pytest -q -m backend

test-floor-free test-floor-jax: test-floor-%:
	@echo "== keras $(FLOOR_KERAS) (the declared floor): $(if $(filter free,$*),tests without a backend,backend tests under KERAS_BACKEND=jax)"
	@PYTHONPATH=$(FLOOR_DIR) $(if $(filter jax,$*),KERAS_BACKEND=jax) $(PY) -m pytest -q \
	  -p no:cacheprovider -m "$(if $(filter free,$*),not backend and not browser,backend)"

lint: install
	$(VENV)/bin/ruff check kclf experiments tests

experiments: install
	@for b in $(BACKENDS); do \
	  for e in $$($(VENV)/bin/kclf list --names); do \
	    echo "== $$e on $$b"; $(VENV)/bin/kclf run $$e --backend $$b || exit 1; \
	  done; \
	done

# The stroke demo reads the Kaggle "Stroke Prediction Dataset" file when one is named:
# make compare STROKE_CSV=path/to/healthcare-dataset-stroke-data.csv (or KCLF_STROKE_CSV);
# without it, kclf's synthetic stand-in, which the report names as such.
STROKE_CSV ?= $(KCLF_STROKE_CSV)

compare: install
	$(VENV)/bin/kclf compare all --jobs $(JOBS)$(if $(STROKE_CSV), --data "$(STROKE_CSV)")

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
