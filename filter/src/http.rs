//! The per-request HTTP context: notes when the request started and how many body bytes passed,
//! then at end of stream (`on_log`) samples, captures the request and hands the record to its
//! VM's pipeline. It never pauses, changes or fails a request.

use crate::capture::{capture, StreamFacts};
use crate::config::Settings;
use crate::host::{now_ns, HostView};
use crate::pipeline::Pipeline;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
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
    stream: StreamFacts,
}

impl RequestCapture {
    pub fn new(shared: Option<Shared>) -> Self {
        RequestCapture {
            shared,
            stream: StreamFacts::default(),
        }
    }
}

impl Context for RequestCapture {}

impl HttpContext for RequestCapture {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.stream.start_ns == 0 {
            self.stream.start_ns = now_ns();
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        self.stream.request_bytes += u64::try_from(body_size).unwrap_or(0);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        self.stream.response_bytes += u64::try_from(body_size).unwrap_or(0);
        Action::Continue
    }

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
        self.stream.end_ns = now_ns();
        let Some(record) = capture(&HostView, &shared.settings, &self.stream, weight) else {
            return;
        };
        if let Ok(mut pipeline) = shared.pipeline.try_borrow_mut() {
            pipeline.record(record);
        }
    }
}
