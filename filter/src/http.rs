//! The per-request HTTP context: at end of stream (`on_log`) it samples, captures the request and
//! hands the record to its VM's pipeline. It never pauses, changes or fails a request.

use crate::capture::capture;
use crate::config::Settings;
use crate::host::HostView;
use crate::pipeline::Pipeline;
use proxy_wasm::traits::{Context, HttpContext};
use std::cell::RefCell;
use std::rc::Rc;

/// What a request context shares with its root context.
#[derive(Clone)]
pub struct Shared {
    pub settings: Rc<Settings>,
    pub pipeline: Rc<RefCell<Pipeline>>,
}

/// Captures one request; does nothing when the plugin has no configuration.
pub struct RequestCapture {
    shared: Option<Shared>,
}

impl RequestCapture {
    pub fn new(shared: Option<Shared>) -> Self {
        RequestCapture { shared }
    }
}

impl Context for RequestCapture {}

impl HttpContext for RequestCapture {
    fn on_log(&mut self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let weight = match shared.pipeline.try_borrow_mut() {
            Ok(mut pipeline) => pipeline.sample(),
            Err(_) => None,
        };
        let Some(weight) = weight else {
            return;
        };
        let record = capture(&HostView, &shared.settings, weight);
        if let Ok(mut pipeline) = shared.pipeline.try_borrow_mut() {
            pipeline.record(record);
        }
    }
}
