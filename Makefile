# Dockyard: `make dev` runs a local control plane with the operator and the examples;
# `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: help install tools binaries crds dev test unit integration typecheck lint bench clean

help:
	@echo "make dev         local control plane (real node if root, else kwok) + CRDs + operator + examples (Ctrl-C stops it)"
	@echo "make test        install dependencies, build the control plane if needed, run all tests"
	@echo "make unit        unit tests only (no cluster)"
	@echo "make crds        regenerate crds/ from operator/dockyard/models"
	@echo "make typecheck   mypy --strict on the operator"
	@echo "make lint        ruff (lint + format check) and the import contracts (lint-imports)"
	@echo "make bench       benchmarks at full scale (~1 h); quick try:"
	@echo "                 make bench BENCH_ARGS='--registries 100 --webhooks 100 --idle-seconds 60'"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# The real registry (CNCF distribution 2.8) and a real client, from Debian.
tools:
	@command -v docker-registry >/dev/null && command -v skopeo >/dev/null || { \
	  echo "installing docker-registry and skopeo from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry skopeo >/dev/null; }

binaries:
	bash hack/build-control-plane.sh >/dev/null
	bash hack/build-tools.sh >/dev/null
	bash hack/build-node.sh >/dev/null

crds: install
	$(PY) -m dockyard.crdgen crds

dev: install
	$(PY) hack/dev.py

test: install tools binaries lint typecheck
	$(PY) -m pytest tests

unit: install
	$(PY) -m pytest tests/unit

integration: install tools binaries
	$(PY) -m pytest tests/integration

typecheck: install
	$(PY) -m mypy

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# 1,000 Registries and 1,000 Webhooks at once, then 10 minutes idle; see hack/bench_registry.py --help.
BENCH_ARGS ?= --registries 1000 --webhooks 1000 --idle-seconds 600

bench: install binaries
	$(PY) hack/bench_registry.py $(BENCH_ARGS)
	$(PY) hack/bench_webhooks.py
	$(PY) hack/bench_dispatch.py
	$(PY) hack/bench_builds.py
	$(PY) hack/bench_triggers.py
	$(PY) hack/bench_tokens.py
	$(PY) hack/bench_replication.py

clean:
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache
