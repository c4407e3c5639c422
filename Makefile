# The README's two commands: `make demo` and `make test`. Both work from a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Keep serving after the demo prediction with: make demo KEEP=1
KEEP    ?=

.PHONY: demo test lint install browser kubectl bench clean dist test-envs

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
	$(BIN)/ruff check tfserve_magic tests benchmarks labextension_build.py
	$(BIN)/mypy

# Two workers: most tests wait on a server subprocess importing TensorFlow, one core each. A test
# file stays on one worker, and the browser tests go first, together (tests/conftest.py). tests/envs
# runs in `make test-envs`, in the environments it builds.
test: lint browser kubectl
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --no-loadscope-reorder --durations=25 --ignore=tests/envs tests

# Release artefacts: sdist and wheel in dist/ (the lab extension built with npm once, here), their
# metadata checked by twine and their contents by tests/envs/check_dist.py. Build tools come from
# constraints.txt, in a venv of their own.
TOOLS   := .envs/tools
$(TOOLS)/.installed: constraints.txt
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q -c constraints.txt build twine packaging
	touch $@

dist: $(TOOLS)/.installed
	rm -rf dist
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(TOOLS)/bin/python -m build --outdir dist .
	$(TOOLS)/bin/twine check --strict dist/*
	$(TOOLS)/bin/python tests/envs/check_dist.py dist

# The install matrix beside `make test` (.ci/run runs both): the sdist, the wheel and a source tree
# without Node.js; Colab's published package set (= our dependency floors) on Python 3.13 as on
# Colab; the newest versions' kernel run. Environments live in .envs/ (pip's cache makes reruns quick).
COLAB_PY ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13) $(PY))
test-envs: dist $(STAMP)
	$(BIN)/python tests/envs/install_envs.py --python $(PY) --colab-python $(COLAB_PY) all

bench: $(STAMP)
	$(BIN)/python benchmarks/rest_overhead.py

clean:
	rm -rf $(VENV) demo_models dist build .envs
