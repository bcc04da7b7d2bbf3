# The project's commands. `make demo` and `make test` are the two that matter; both install what
# they need into .venv first (Python 3.11+, Java 17+, Maven 3.8+ and Go 1.26+ must be on the machine).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install lock fetch tools promtool browser screenshots up down status demo chaos bench lint test unit integration clean

# Exactly the versions of the lock (with their hashes; pip checks that it lacks no dependency),
# then our own package, editable, built by the locked setuptools (no download at build time).
DEV_LOCK := requirements/dev.lock
$(INSTALLED): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(INSTALLED)

install: $(INSTALLED)

LOCK_ARGS ?=
lock: install             ## regenerate requirements/*.lock from pyproject.toml (LOCK_ARGS=--upgrade: newest allowed)
	$(PY) -m devstack.lock $(LOCK_ARGS)

# Tools the test suite runs against the deploy/ files: kustomize and the KEDA CRD from the Go module
# proxy, promtool (and prometheus, for the metrics end-to-end test) from Debian's packages.
TOOLS := .tools
KUSTOMIZE := $(TOOLS)/bin/kustomize
KEDA_CRD := $(TOOLS)/keda/keda.sh_scaledobjects.yaml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(KUSTOMIZE):
	GOBIN=$(abspath $(TOOLS)/bin) GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1

$(KEDA_CRD):
	mkdir -p $(TOOLS)/keda
	dir=$$(cd $(TOOLS) && GOFLAGS=-mod=mod go mod download -json github.com/kedacore/keda/v2@v2.17.0 \
	  | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') && \
	  cp "$$dir/config/crd/bases/keda.sh_scaledobjects.yaml" $@

promtool:
	@{ command -v promtool && command -v prometheus; } >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
	  || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; }

# Debian's Chromium and its chromedriver, for the web pages' browser test
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver \
	  || { $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; }

tools: $(KUSTOMIZE) $(KEDA_CRD) promtool browser

fetch: install            ## resolve and cache the Kafka and DynamoDB Local jars; build the object store (SeaweedFS)
	$(PY) -m devstack fetch

up: install               ## start Kafka, DynamoDB Local, provision, start the four services
	$(PY) -m devstack up

down:                     ## stop everything `make up` started
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "nothing to stop (no .venv)"; fi

status: install
	$(PY) -m devstack status

demo: up                  ## publish a sample workload and print what came out
	$(PY) -m devstack.demo

CHAOS_ARGS ?= --messages 20000 --rate 150
chaos: install            ## fault-injection run on a stack of its own, then reconcile and replay check
	$(PY) -m devstack fetch
	$(PY) -m devstack.chaos $(CHAOS_ARGS)

BENCH_ARGS ?=
bench: install            ## ceiling (relay) vs pipeline: throughput, latency at fixed loads, CPU; writes BENCHMARKS.md
	$(PY) -m devstack fetch
	$(PY) -m devstack.bench $(BENCH_ARGS)

screenshots: install browser ## the README's screenshots of the web pages (docs/ui-*.png), from the browser test
	$(PY) -m devstack fetch
	CAF_SCREENSHOT_DIR=docs $(PY) -m pytest -q tests/integration/test_query_pages.py

lint: install             ## ruff (lint + format check) and mypy strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

test: lint tools          ## everything CI runs: lint, types, and the whole test suite on real infrastructure
	$(PY) -m devstack fetch
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

clean: down
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache
