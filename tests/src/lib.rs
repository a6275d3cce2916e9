//! Plumbline's end-to-end test harness and the demo programs' shared code.
//!
//! [`harness`] starts a real stack (demo upstream, collector, Envoy with the wasm filter) on free
//! loopback ports for one test and stops every process it started, also when the test panics.
//! [`traffic`] turns GitHub's REST API description into partner traffic for `make demo`.
//! Nothing here talks to anything but 127.0.0.1.

pub mod harness;
pub mod traffic;
