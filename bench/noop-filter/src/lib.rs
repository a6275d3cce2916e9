//! A proxy-wasm HTTP filter that does nothing.
//!
//! `make bench` runs Envoy with this filter and with Plumbline's, built with the same profile and
//! loaded the same way, so the difference between the two is the cost of Plumbline's own work and
//! not the cost of having a wasm VM in the request path at all.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopStream))
    }
}

struct NoopStream;

impl Context for NoopStream {}

impl HttpContext for NoopStream {}
