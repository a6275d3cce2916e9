#!/usr/bin/env bash
# `make bench`, decision propagation: the time from a block decision's POST to every worker of a
# four-worker Envoy enforcing it, with 1 and with 10,000 decisions held, in several rounds.
# The work is done by the `bench-propagation` program (tests/src/bin/bench-propagation.rs),
# which starts its own collector, demo upstream and Envoy on free loopback ports and stops
# them when it ends. Arguments go to it (`--help` lists them); BENCH_PROPAGATION_ROUNDS sets
# the rounds (default 7). Needs what `make build` builds and Envoy (ENVOY, default
# .venv/bin/envoy).
set -euo pipefail
cd "$(dirname "$0")/.."

export ENVOY=${ENVOY:-$PWD/.venv/bin/envoy}
cargo build --quiet -p plumbline-collector --bin plumbline
cargo build --quiet -p plumbline-tests --bins
cargo build --quiet -p plumbline-filter --target wasm32-wasip1 --profile wasm
cargo run --quiet -p plumbline-tests --bin bench-propagation -- "$@"
