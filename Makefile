# Strongroom: one entry point for setting up, running, testing and measuring.
#
# On a fresh Debian 12 machine, as root, `make test` installs everything that is
# missing: Debian packages (apt-get update only when one is missing), the
# virtualenv (pip re-run only when setup.cfg or pyproject.toml changes) and
# the consul binary (into tools/, see scripts/install-consul.sh).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.strongroom-deps.stamp
PYTEST_ARGS ?=

# Everything the tests, the dev cluster and the benchmarks use from Debian.
DEBS := python3-venv python3-dev build-essential haproxy prometheus wrk iproute2 curl ca-certificates \
	podman runc debootstrap vagrant

# Benchmarks run by `make bench`, each also runnable alone as `.venv/bin/python -m bench.NAME`.
BENCHES := kv failover stale_read reads cluster_writes haproxy_cost login transit

# Tests and tools find consul through CONSUL_BIN, else on PATH (DESIGN.md).
CONSUL_TOOL := $(CURDIR)/tools/consul/usr/bin/consul
ifeq ($(origin CONSUL_BIN),undefined)
ifeq ($(shell command -v consul 2>/dev/null),)
export CONSUL_BIN := $(CONSUL_TOOL)
endif
endif

.PHONY: help deps debs venv consul python-check run dev check format test test-quick bench clean distclean cluster cluster-down

help:
	@echo "make deps        install Debian packages, .venv and consul (idempotent)"
	@echo "make run         3-node dev cluster in run/cluster"
	@echo "make dev         one in-memory, unsealed dev node on 127.0.0.1:8200"
	@echo "make check       lint (ruff), format check (ruff format), types (mypy), layer contracts (lint-imports)"
	@echo "make format      rewrite the tree in ruff's format and apply ruff's safe fixes"
	@echo "make test        make check, then the whole test suite"
	@echo "make test-quick  the suite without tests marked slow"
	@echo "make bench       every benchmark in bench/ (results in bench/results/)"
	@echo "make cluster     podman systemd hosts provisioned by ansible/site.yml + operator-init.yml; prints how to reach them"
	@echo "make cluster-down remove that cluster (containers, network, its secrets)"
	@echo "make clean       caches and run/ (make cluster-down first);  make distclean  also .venv and tools/"

deps: debs venv consul

debs:
	@scripts/install-debs.sh $(DEBS)

python-check: | debs
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	    echo "error: '$(PYTHON)' not found on PATH; Strongroom needs Python >= 3.11 (make PYTHON=/path/to/python3.11)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	    echo "error: Strongroom needs Python >= 3.11, but $$(command -v $(PYTHON)) is $$($(PYTHON) -V 2>&1);" \
	         "put a newer python3 first on PATH or run make PYTHON=/path/to/python3.11" >&2; exit 1; }

venv: $(VENV_STAMP)

# A missing or dangling .venv/bin/python (its base interpreter gone) means a new venv.
$(VENV_PY): | python-check
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): setup.cfg pyproject.toml | $(VENV_PY)
	$(VENV_PY) -m pip install -q -e '.[test,bench,check,deploy,monitoring]'
	touch $@

consul: | debs
	@scripts/install-consul.sh

run: deps
	$(VENV)/bin/strongroom dev-cluster --nodes 3 --dir run/cluster --base-port 8200

dev: deps
	$(VENV)/bin/strongroom server -dev

# The same checks as .pre-commit-config.yaml; `make test` (and so CI) runs them first.
check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: deps
	@$(MAKE) --no-print-directory check
	$(VENV)/bin/pytest -q tests $(PYTEST_ARGS)

test-quick: deps
	@$(MAKE) --no-print-directory check
	$(VENV)/bin/pytest -q -m "not slow" tests $(PYTEST_ARGS)

bench: deps
	@for b in $(BENCHES); do \
	    echo "== bench/$$b"; \
	    $(VENV_PY) -m bench.$$b; \
	done

# A cluster on podman systemd hosts (3 nodes with Consul servers, 1 HAProxy +
# Prometheus host) provisioned by ansible/site.yml and operator-init.yml;
# state, secrets and playbook logs in run/containers (tests/helpers/container_cluster.py).
cluster: deps
	$(VENV_PY) -m tests.helpers.container_cluster up run/containers $(if $(TLS),--tls)

cluster-down: | venv
	$(VENV_PY) -m tests.helpers.container_cluster down run/containers

clean:
	rm -rf run .pytest_cache .hypothesis .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -path ./tools -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) tools
