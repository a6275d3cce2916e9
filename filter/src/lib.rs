//! Plumbline's proxy-wasm filter for Envoy and Istio.
//!
//! Each Envoy worker runs its own VM. Per request, at end of stream, the filter records metadata
//! (never payload values or raw secrets: consumers are keyed hashes), buffers records per VM
//! with a cap, and ships them as postcard batches from the root context to the collector with
//! `dispatch_http_call`, on a timer or when a batch is full. Collector replies bring decision
//! sets, shared by all VMs of an Envoy through proxy-wasm shared data; a request of a blocked or
//! over-rate subject is answered locally, never forwarded. Nothing else pauses, changes or fails
//! a proxied request; a bad configuration is refused at load.
//!
//! Modules, in data-flow order: [`config`] (plugin JSON), [`host`] (the only reads from Envoy),
//! [`identity`] (consumer hashing), [`capture`] (one request → one record), [`sampling`],
//! [`buffer`] (capped, drop-oldest), [`batch`] (records → wire batch), [`shipper`] (delivery,
//! retries, backoff), [`pipeline`] (ties those together per VM), [`metrics`] (Envoy counters);
//! for decisions: [`decisions`] (the index), [`shared`] (shared-data layout and CAS),
//! [`sync`] (how a VM learns sets), [`throttle`] (shared token buckets), [`enforce`] (the verdict
//! on one request); then the proxy-wasm contexts [`root`] and [`http`].

pub mod batch;
pub mod buffer;
pub mod capture;
pub mod config;
pub mod decisions;
pub mod enforce;
pub mod host;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod pipeline;
pub mod root;
pub mod sampling;
pub mod shared;
pub mod shipper;
pub mod sync;
pub mod throttle;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(root::PlumblineRoot::new()) });
}}
