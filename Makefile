# The README's two commands: `make demo` and `make test`. Both work from a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Keep serving after the demo prediction with: make demo KEEP=1
KEEP    ?=

.PHONY: demo test lint install browser kubectl bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the browser tests comes from Debian (playwright must not download its own).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q chromium fonts-liberation; }

# kubectl for the test that renders the deploy folder with `kubectl kustomize` (Debian's
# kubernetes-client package when no kubectl is on PATH).
kubectl:
	@command -v kubectl >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q kubernetes-client; }

demo: $(STAMP)
	$(BIN)/python -m tfserve_magic.demo $(if $(KEEP),--keep-serving,)

# The lint gate: ruff (rules in pyproject.toml) on everything Python, mypy --strict on the package.
lint: $(STAMP)
	$(BIN)/ruff check tfserve_magic tests benchmarks
	$(BIN)/mypy

# Two workers: most tests wait on a server subprocess importing TensorFlow, one core each. A test
# file stays on one worker, and the browser tests go first, together (tests/conftest.py).
test: lint browser kubectl
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --no-loadscope-reorder --durations=25 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/rest_overhead.py

clean:
	rm -rf $(VENV) demo_models dist build
