//! The per-request HTTP context. When the request headers arrive it samples the request, reads
//! its headers and enforces the decisions its VM holds; it counts the body bytes that pass; at
//! end of stream (`on_log`) it captures the request and hands the record to its VM's pipeline.
//!
//! The request headers are read once, when they arrive (so a record shows the request as the
//! client sent it, before any route rewrite), for a sampled request or when decisions are held.
//! With decisions held it also hashes the consumer and, when a decision is about addresses,
//! reads the client address; capture reuses all of it, so a recorded request of a consumer
//! without a decision makes no more host calls than without enforcement. A refused request gets
//! a local reply and is never forwarded upstream.

use crate::capture::{self, capture_with, Early, StreamFacts};
use crate::config::Settings;
use crate::enforce::{judge, local_reply, Held, LocalReply, Verdict};
use crate::host::{self, now_ns, Headers, HostView};
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
    /// `Some(weight)` when the request is to be recorded.
    weight: Option<u32>,
}

impl RequestCapture {
    pub fn new(shared: Option<Shared>) -> Self {
        RequestCapture {
            shared,
            stream: StreamFacts::default(),
            early: Early::default(),
            weight: None,
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

/// `Some(weight)` when the request is to be recorded.
fn sample(pipeline: &RefCell<Pipeline>) -> Option<u32> {
    pipeline.try_borrow_mut().ok().and_then(|mut p| p.sample())
}

/// Carries out a verdict: answers a refused request in place of the upstream, flags the
/// request's record and counts it. A reply Envoy refuses lets the request through unflagged.
fn apply(
    verdict: Verdict,
    request: Option<&Headers>,
    stream: &mut StreamFacts,
    pipeline: &RefCell<Pipeline>,
) -> Action {
    let request_id = request.and_then(|headers| headers.get("x-request-id"));
    let reply = local_reply(verdict, request_id);
    if reply.as_ref().is_some_and(|reply| !send(reply)) {
        return Action::Continue;
    }
    stream.flags |= verdict.flags();
    count(pipeline, verdict);
    if reply.is_some() {
        Action::Pause
    } else {
        Action::Continue
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
        self.weight = sample(&shared.pipeline);

        let now_ms = self.stream.start_ns / 1_000_000;
        let judged = match shared.held.try_borrow() {
            Ok(held) if !held.index.is_empty() => {
                Some(identify_and_judge(&held, &shared.settings, now_ms))
            }
            _ => None,
        };
        let Some((early, verdict)) = judged else {
            if self.weight.is_some() {
                self.early.request = Some(host::map(MapType::HttpRequestHeaders));
            }
            return Action::Continue;
        };

        self.early = early;
        let request = self.early.request.as_ref();
        apply(verdict, request, &mut self.stream, &shared.pipeline)
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
        // A filter before this one may have answered before our request-headers step ran (a
        // 401 from jwt_authn, say): that request is sampled and read now, as a whole.
        let weight = if self.stream.start_ns == 0 {
            shared
                .pipeline
                .try_borrow_mut()
                .ok()
                .and_then(|mut p| p.sample())
        } else {
            self.weight
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
