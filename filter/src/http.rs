//! The per-request HTTP context. When the request headers arrive it enforces the decisions its
//! VM holds; it notes when the request started and how many body bytes passed; at end of stream
//! (`on_log`) it samples, captures the request and hands the record to its VM's pipeline.
//!
//! While no decision is held, the request-headers step only reads the clock. With decisions
//! held, it reads the request headers (one host call), hashes the consumer and, when a decision
//! is about addresses, reads the client address; capture then reuses all three, so a recorded
//! request of a consumer without a decision makes no more host calls than before. A refused
//! request gets a local reply and is never forwarded upstream.

use crate::capture::{self, capture_with, Early, StreamFacts};
use crate::config::Settings;
use crate::enforce::{judge, local_reply, Held, LocalReply, Verdict};
use crate::host::{self, now_ns, HostView};
use crate::identity;
use crate::pipeline::Pipeline;
use crate::shared::HostStore;
use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};
use std::cell::RefCell;
use std::rc::Rc;

/// What a request context shares with its root context.
#[derive(Clone)]
pub struct Shared {
    pub settings: Rc<Settings>,
    pub pipeline: Rc<RefCell<Pipeline>>,
    pub held: Rc<RefCell<Held>>,
}

/// Enforces decisions on one request and captures it; does nothing without a configuration.
pub struct RequestCapture {
    shared: Option<Shared>,
    stream: StreamFacts,
    early: Early,
}

impl RequestCapture {
    pub fn new(shared: Option<Shared>) -> Self {
        RequestCapture {
            shared,
            stream: StreamFacts::default(),
            early: Early::default(),
        }
    }
}

/// Reads what enforcement needs and judges the request at `now_ms`.
fn identify_and_judge(held: &Held, settings: &Settings, now_ms: u64) -> (Early, Verdict) {
    let request = host::map(MapType::HttpRequestHeaders);
    let consumer = identity::resolve(&settings.identity, &settings.hasher, &request, &HostView);
    let client = held
        .index
        .has_prefixes()
        .then(|| capture::client(&request, &HostView, &settings.client_address));
    let verdict = judge(
        held,
        settings.enforce,
        consumer,
        client.flatten(),
        now_ms,
        &HostStore,
    );
    let early = Early {
        request: Some(request),
        consumer: Some(consumer),
        client,
    };
    (early, verdict)
}

/// Answers the request in place of the upstream; `false` if Envoy refused.
fn send(reply: &LocalReply) -> bool {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(seconds) = &reply.retry_after {
        headers.push(("retry-after", seconds.as_str()));
    }
    let status = u32::from(reply.status);
    match hostcalls::send_http_response(status, headers, Some(&reply.body)) {
        Ok(()) => true,
        Err(status) => {
            warn!("cannot answer a refused request ({status:?}); it goes upstream");
            false
        }
    }
}

/// Adds a verdict to the VM's counters.
fn count(pipeline: &RefCell<Pipeline>, verdict: Verdict) {
    let Ok(mut pipeline) = pipeline.try_borrow_mut() else {
        return;
    };
    let tally = &mut pipeline.tally;
    match verdict {
        Verdict::Pass => {}
        Verdict::WouldBlock { .. } => tally.requests_would_block += 1,
        Verdict::Block { .. } => tally.requests_blocked += 1,
        Verdict::Throttle { .. } => tally.requests_throttled += 1,
    }
}

impl Context for RequestCapture {}

impl HttpContext for RequestCapture {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.stream.start_ns == 0 {
            self.stream.start_ns = now_ns();
        }
        let Some(shared) = &self.shared else {
            return Action::Continue;
        };
        let (early, verdict) = match shared.held.try_borrow() {
            Ok(held) if !held.index.is_empty() => {
                identify_and_judge(&held, &shared.settings, self.stream.start_ns / 1_000_000)
            }
            _ => return Action::Continue,
        };
        let request_id = early
            .request
            .as_ref()
            .and_then(|headers| headers.get("x-request-id"));
        let reply = local_reply(verdict, request_id);
        self.early = early;
        let answered = reply.as_ref().is_some_and(send);
        if reply.is_some() && !answered {
            return Action::Continue;
        }
        self.stream.flags |= verdict.flags();
        count(&shared.pipeline, verdict);
        if answered {
            Action::Pause
        } else {
            Action::Continue
        }
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
        let early = std::mem::take(&mut self.early);
        let settings = &shared.settings;
        let Some(record) = capture_with(&HostView, settings, &self.stream, weight, early) else {
            return;
        };
        if let Ok(mut pipeline) = shared.pipeline.try_borrow_mut() {
            pipeline.record(record);
        }
    }
}
