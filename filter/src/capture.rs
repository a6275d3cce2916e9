//! Per-request capture: what one proxied request becomes in the buffer, read at end of stream.
//!
//! A [`Captured`] request holds metadata only: method, host, path with query values dropped
//! (parameter names kept), status, sizes, timing, the hashed consumer, client address, user
//! agent, content types and a label. Its texts sit in one allocation, each capped in length, so
//! a buffered record stays small. Header values are bytes and may be any bytes at all.
//!
//! Cost matters here (it runs for every request): the two header maps are read whole, one host
//! call each; sizes and timing come from the stream callbacks ([`StreamFacts`]); the only
//! property read per request is the peer address, and `response.code_details` only when the
//! response headers leave open whether the reply was local. When decisions are held, the HTTP
//! context reads the request headers, consumer and client earlier (to enforce), and hands them
//! over in [`Early`], so they are not read twice.

use crate::config::{ClientAddress, Settings};
use crate::host::{Headers, RequestView};
use crate::identity;
use plumbline_wire::{flags, Addr, ConsumerId, MAX_PATH_BYTES, MAX_TEXT_BYTES};
use std::net::{IpAddr, SocketAddr};

/// The texts of a record, in the order they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Method,
    Host,
    /// The path with query values dropped: `/a/b?name1&name2`.
    Path,
    UserAgent,
    RequestType,
    ResponseType,
    Label,
}

const FIELDS: usize = 7;

impl Field {
    fn index(self) -> usize {
        match self {
            Field::Method => 0,
            Field::Host => 1,
            Field::Path => 2,
            Field::UserAgent => 3,
            Field::RequestType => 4,
            Field::ResponseType => 5,
            Field::Label => 6,
        }
    }
}

/// One request, captured at end of stream and waiting in the buffer to be batched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Unix milliseconds at which the request started.
    pub start_ms: u64,
    texts: Box<[u8]>,
    ends: [u16; FIELDS],
    /// Response status; 0 when the stream ended without one.
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub duration_us: u32,
    pub consumer: Option<ConsumerId>,
    pub client: Option<Addr>,
    /// Bits from [`plumbline_wire::flags`] known at capture (e.g. local reply).
    pub flags: u8,
    pub weight: u32,
}

impl Captured {
    /// A text of the record; empty when absent.
    pub fn text(&self, field: Field) -> &[u8] {
        let i = field.index();
        let start = match i.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.texts
            .get(usize::from(start)..usize::from(end))
            .unwrap_or_default()
    }

    /// A text that may be absent: `None` when empty.
    pub fn optional_text(&self, field: Field) -> Option<&[u8]> {
        Some(self.text(field)).filter(|t| !t.is_empty())
    }
}

/// Packs texts into one allocation in [`Field`] order, capping each one.
#[derive(Default)]
struct TextPacker {
    bytes: Vec<u8>,
    ends: [u16; FIELDS],
    next: usize,
}

impl TextPacker {
    fn with_capacity(capacity: usize) -> Self {
        TextPacker {
            bytes: Vec::with_capacity(capacity),
            ..TextPacker::default()
        }
    }

    fn push(&mut self, text: Option<&[u8]>) {
        let text = text.unwrap_or_default();
        let kept = text.get(..MAX_TEXT_BYTES).unwrap_or(text);
        self.bytes.extend_from_slice(kept);
        self.end_field();
    }

    fn push_path(&mut self, raw: Option<&[u8]>) {
        strip_query_values(raw.unwrap_or_default(), &mut self.bytes, MAX_PATH_BYTES);
        self.end_field();
    }

    fn end_field(&mut self) {
        let end = u16::try_from(self.bytes.len()).unwrap_or(u16::MAX);
        if let Some(slot) = self.ends.get_mut(self.next) {
            *slot = end;
        }
        self.next += 1;
    }

    fn finish(self) -> (Box<[u8]>, [u16; FIELDS]) {
        (self.bytes.into_boxed_slice(), self.ends)
    }
}

/// Appends `raw` (a request target) to `out` with query values dropped: `/p?a=1&b` → `/p?a&b`.
/// Empty names are skipped; nothing past `cap` bytes of output is written.
pub fn strip_query_values(raw: &[u8], out: &mut Vec<u8>, cap: usize) {
    let limit = out.len().saturating_add(cap);
    let (path, query) = match raw.iter().position(|b| *b == b'?') {
        Some(at) => (raw.get(..at).unwrap_or_default(), raw.get(at + 1..)),
        None => (raw, None),
    };
    out.extend_from_slice(path.get(..cap).unwrap_or(path));
    let names = query
        .into_iter()
        .flat_map(|q| q.split(|b| *b == b'&'))
        .map(|pair| pair.split(|b| *b == b'=').next().unwrap_or_default())
        .filter(|name| !name.is_empty());
    let mut separator = b'?';
    for name in names {
        if out.len() + 1 + name.len() > limit {
            break;
        }
        out.push(separator);
        out.extend_from_slice(name);
        separator = b'&';
    }
}

/// What the HTTP context saw of the stream itself, without asking the host.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamFacts {
    /// Unix nanoseconds when the request headers reached the filter (0 if they never did).
    pub start_ns: u64,
    /// Unix nanoseconds at end of stream.
    pub end_ns: u64,
    /// Body bytes that passed the filter in each direction.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Bits from [`plumbline_wire::flags`] that enforcement set (blocked, throttled, ...).
    pub flags: u8,
}

/// What the HTTP context already read when the request headers arrived; `None` fields are read
/// at capture.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Early {
    pub request: Option<Headers>,
    pub consumer: Option<Option<ConsumerId>>,
    pub client: Option<Option<Addr>>,
}

impl StreamFacts {
    /// Start time in Unix milliseconds and duration in microseconds.
    fn timing(&self) -> (u64, u32) {
        let start_ns = if self.start_ns == 0 {
            self.end_ns
        } else {
            self.start_ns
        };
        let duration_ns = self.end_ns.saturating_sub(start_ns);
        let duration_us = u32::try_from(duration_ns / 1000).unwrap_or(u32::MAX);
        (start_ns / 1_000_000, duration_us)
    }
}

/// Reads one finished request into a record standing for `weight` requests. A stream whose
/// request headers never arrived (e.g. one Envoy's codec refused) is not an API call: `None`.
pub fn capture(
    view: &impl RequestView,
    settings: &Settings,
    stream: &StreamFacts,
    weight: u32,
) -> Option<Captured> {
    capture_with(view, settings, stream, weight, Early::default())
}

/// [`capture`], reusing what was read `early`.
pub fn capture_with(
    view: &impl RequestView,
    settings: &Settings,
    stream: &StreamFacts,
    weight: u32,
    early: Early,
) -> Option<Captured> {
    let request = early.request.unwrap_or_else(|| view.request_headers());
    request.get(":method")?;
    let response = view.response_headers();
    let status = status(&response);
    let label = settings
        .label_header
        .as_deref()
        .and_then(|name| request.get(name));
    let texts = [
        request.get(":method"),
        request.get(":authority"),
        request.get(":path"),
        request.get("user-agent"),
        request.get("content-type"),
        response.get("content-type"),
        label,
    ];
    let (start_ms, duration_us) = stream.timing();
    let packed = pack(texts);
    Some(Captured {
        start_ms,
        texts: packed.0,
        ends: packed.1,
        status,
        request_bytes: stream.request_bytes,
        response_bytes: stream.response_bytes,
        duration_us,
        consumer: early.consumer.unwrap_or_else(|| {
            identity::resolve(&settings.identity, &settings.hasher, &request, view)
        }),
        client: early
            .client
            .unwrap_or_else(|| client(&request, view, &settings.client_address)),
        flags: stream.flags | reply_flags(status, &response, view, stream.flags),
        weight,
    })
}

/// The texts of a record, in [`Field`] order, in one allocation, and where each one ends.
fn pack(texts: [Option<&[u8]>; FIELDS]) -> (Box<[u8]>, [u16; FIELDS]) {
    let capacity = texts
        .iter()
        .map(|t| t.map_or(0, <[u8]>::len).min(MAX_PATH_BYTES))
        .sum();
    let mut packer = TextPacker::with_capacity(capacity);
    for (i, text) in texts.into_iter().enumerate() {
        if i == Field::Path.index() {
            packer.push_path(text);
        } else {
            packer.push(text);
        }
    }
    packer.finish()
}

/// The response status from `:status`; 0 when there was no response.
fn status(response: &Headers) -> u16 {
    response
        .get(":status")
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `LOCAL_REPLY` when the response did not come from the upstream. The router marks upstream
/// responses with `x-envoy-upstream-service-time`; when that header is absent (or the status is an
/// error, which local replies usually are), Envoy's `response.code_details` decides.
fn reply_flags(status: u16, response: &Headers, view: &impl RequestView, known: u8) -> u8 {
    if known & flags::LOCAL_REPLY != 0 {
        return flags::LOCAL_REPLY;
    }
    let clearly_upstream =
        (100..400).contains(&status) && response.get("x-envoy-upstream-service-time").is_some();
    if clearly_upstream {
        return 0;
    }
    match view.property(&["response", "code_details"]) {
        Some(details) if !details.is_empty() && details != b"via_upstream" => flags::LOCAL_REPLY,
        _ => 0,
    }
}

/// The client address under the configured policy; falls back to the downstream peer.
pub fn client(request: &Headers, view: &impl RequestView, policy: &ClientAddress) -> Option<Addr> {
    let forwarded = match policy {
        ClientAddress::Downstream => None,
        ClientAddress::XForwardedFor { trusted_hops } => request
            .get("x-forwarded-for")
            .and_then(|value| forwarded_client(value, *trusted_hops)),
    };
    forwarded.or_else(|| {
        let peer = view.property(&["source", "address"])?;
        parse_addr(&peer)
    })
}

/// The `trusted_hops`-th address from the right of an `x-forwarded-for` value: with one trusted
/// proxy in front, the address that proxy appended. `None` when there are too few entries or the
/// entry is not an address.
pub fn forwarded_client(value: &[u8], trusted_hops: u32) -> Option<Addr> {
    let hops = usize::try_from(trusted_hops).ok()?.checked_sub(1)?;
    let entry = value.rsplit(|b| *b == b',').nth(hops)?;
    parse_addr(entry)
}

/// An IP address, with or without a port (`1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`).
pub fn parse_addr(text: &[u8]) -> Option<Addr> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Addr::from(ip));
    }
    text.parse::<SocketAddr>()
        .ok()
        .map(|sock| Addr::from(sock.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::tests::FakeView;
    use plumbline_wire::consumer_id;

    const SALT: &str = "0123456789abcdef";
    const START_NS: u64 = 1_700_000_000_123_456_789;

    fn settings(extra: &str) -> Settings {
        let json = format!(
            r#"{{"collector_cluster": "c", "ingest_token": "t", "hash_salt": "{SALT}"{extra}}}"#
        );
        Settings::from_json(json.as_bytes()).unwrap()
    }

    fn stripped(raw: &str, cap: usize) -> String {
        let mut out = Vec::new();
        strip_query_values(raw.as_bytes(), &mut out, cap);
        String::from_utf8(out).unwrap()
    }

    fn stream() -> StreamFacts {
        StreamFacts {
            start_ns: START_NS,
            end_ns: START_NS + 2_500_000,
            request_bytes: 0,
            response_bytes: 1832,
            flags: 0,
        }
    }

    fn full_request() -> FakeView {
        FakeView::default()
            .header(":method", b"GET")
            .header(":authority", b"api.example.com")
            .header(":path", b"/v1/orders/42?page=2&secret=abc")
            .header("user-agent", b"partner-sdk/2.1")
            .header("x-api-key", b"key-1")
            .header("x-partner", b"acme")
            .response_header(":status", b"200")
            .response_header("content-type", b"application/json")
            .response_header("x-envoy-upstream-service-time", b"3")
            .property(&["source", "address"], b"10.0.0.7:52144")
    }

    fn capture_of(view: &FakeView, settings: &Settings) -> Captured {
        capture(view, settings, &stream(), 1).unwrap()
    }

    #[test]
    fn query_values_are_dropped_and_names_kept() {
        assert_eq!(stripped("/a/b?x=1&y=2&flag", 100), "/a/b?x&y&flag");
        assert_eq!(stripped("/a?=v&&z=", 100), "/a?z");
        assert_eq!(stripped("/a?", 100), "/a");
        assert_eq!(stripped("/plain", 100), "/plain");
        assert_eq!(stripped("", 100), "");
    }

    #[test]
    fn a_long_path_is_cut_at_the_cap_and_names_that_do_not_fit_are_left_out() {
        assert_eq!(stripped("/abcdef?x=1", 4), "/abc");
        assert_eq!(stripped("/ab?xy=1&z=2", 6), "/ab?xy");
    }

    #[test]
    fn a_full_request_is_captured_with_every_field() {
        let s = settings(r#", "label_header": "x-partner""#);
        let c = capture_of(&full_request(), &s);
        assert_eq!(c.text(Field::Method), b"GET");
        assert_eq!(c.text(Field::Host), b"api.example.com");
        assert_eq!(c.text(Field::Path), b"/v1/orders/42?page&secret");
        assert_eq!(c.text(Field::UserAgent), b"partner-sdk/2.1");
        assert_eq!(c.optional_text(Field::RequestType), None);
        assert_eq!(c.text(Field::ResponseType), b"application/json");
        assert_eq!(c.text(Field::Label), b"acme");
        assert_eq!(c.start_ms, 1_700_000_000_123);
        assert_eq!(c.duration_us, 2500);
        assert_eq!(
            (c.status, c.request_bytes, c.response_bytes),
            (200, 0, 1832)
        );
        assert_eq!(c.consumer, Some(consumer_id(SALT.as_bytes(), b"key-1")));
        assert_eq!(c.client, Some(Addr::V4([10, 0, 0, 7])));
        assert_eq!((c.flags, c.weight), (0, 1));
    }

    #[test]
    fn no_secret_or_query_value_is_kept_in_a_captured_record() {
        let c = capture_of(&full_request(), &settings(""));
        let text = String::from_utf8_lossy(&c.texts).into_owned();
        assert!(!text.contains("key-1") && !text.contains("abc"), "{text}");
    }

    #[test]
    fn header_values_that_are_not_utf8_are_captured_as_bytes() {
        let view = full_request()
            .header("user-agent", &[0xff, 0xfe, b'x'])
            .header("x-api-key", &[0xff, 0xfe]);
        let c = capture_of(&view, &settings(""));
        assert_eq!(c.text(Field::UserAgent), &[0xff, 0xfe, b'x']);
        assert_eq!(
            c.consumer,
            Some(consumer_id(SALT.as_bytes(), &[0xff, 0xfe]))
        );
    }

    #[test]
    fn a_stream_whose_request_headers_never_arrived_is_not_recorded() {
        let refused = FakeView::default().response_header(":status", b"400");
        assert_eq!(capture(&refused, &settings(""), &stream(), 1), None);
    }

    #[test]
    fn a_request_with_little_readable_is_still_captured() {
        let facts = StreamFacts {
            end_ns: 5_000_000_000,
            ..StreamFacts::default()
        };
        let view = FakeView::default().header(":method", b"GET");
        let c = capture(&view, &settings(""), &facts, 3).unwrap();
        assert_eq!(c.start_ms, 5_000);
        assert_eq!((c.status, c.duration_us, c.weight), (0, 0, 3));
        assert_eq!((c.consumer, c.client), (None, None));
        assert_eq!(c.text(Field::Path), b"");
    }

    #[test]
    fn long_texts_are_capped() {
        let long = vec![b'a'; 5000];
        let view = full_request()
            .header("user-agent", &long)
            .header(":path", &long);
        let c = capture_of(&view, &settings(""));
        assert_eq!(c.text(Field::UserAgent).len(), MAX_TEXT_BYTES);
        assert_eq!(c.text(Field::Path).len(), MAX_PATH_BYTES);
        assert_eq!(c.text(Field::ResponseType), b"application/json");
    }

    #[test]
    fn a_reply_not_from_the_upstream_is_flagged_local() {
        let view = FakeView::default()
            .header(":method", b"GET")
            .response_header(":status", b"404")
            .property(&["response", "code_details"], b"route_not_found");
        assert_eq!(capture_of(&view, &settings("")).flags, flags::LOCAL_REPLY);
        let direct = FakeView::default()
            .header(":method", b"GET")
            .response_header(":status", b"200")
            .property(&["response", "code_details"], b"direct_response");
        assert_eq!(capture_of(&direct, &settings("")).flags, flags::LOCAL_REPLY);
    }

    #[test]
    fn an_upstream_error_is_not_flagged_local() {
        let view = full_request()
            .response_header(":status", b"503")
            .property(&["response", "code_details"], b"via_upstream");
        assert_eq!(capture_of(&view, &settings("")).flags, 0);
    }

    #[test]
    fn the_forwarded_client_is_counted_from_the_right() {
        let xff = b"203.0.113.9, 198.51.100.2:443 ,10.0.0.1";
        assert_eq!(forwarded_client(xff, 1), Some(Addr::V4([10, 0, 0, 1])));
        assert_eq!(forwarded_client(xff, 2), Some(Addr::V4([198, 51, 100, 2])));
        assert_eq!(forwarded_client(xff, 3), Some(Addr::V4([203, 0, 113, 9])));
        assert_eq!(forwarded_client(xff, 4), None);
        assert_eq!(forwarded_client(xff, 0), None);
        assert_eq!(forwarded_client(b"unknown", 1), None);
    }

    #[test]
    fn ipv6_addresses_parse_with_or_without_port_and_mapped_v4_becomes_v4() {
        assert!(matches!(parse_addr(b"[2001:db8::1]:80"), Some(Addr::V6(_))));
        assert!(matches!(parse_addr(b"2001:db8::1"), Some(Addr::V6(_))));
        assert_eq!(parse_addr(b"::ffff:1.2.3.4"), Some(Addr::V4([1, 2, 3, 4])));
        assert_eq!(parse_addr(&[0xff]), None);
    }

    #[test]
    fn x_forwarded_for_falls_back_to_the_downstream_peer_when_too_short() {
        let xff = r#", "client_address": {"source": "x_forwarded_for", "trusted_hops": 2}"#;
        let s = settings(xff);
        let view = full_request().header("x-forwarded-for", b"203.0.113.9");
        assert_eq!(capture_of(&view, &s).client, Some(Addr::V4([10, 0, 0, 7])));
        let view = full_request().header("x-forwarded-for", b"203.0.113.9, 10.1.1.1");
        assert_eq!(
            capture_of(&view, &s).client,
            Some(Addr::V4([203, 0, 113, 9]))
        );
    }

    #[test]
    fn what_was_read_early_is_used_instead_of_reading_again() {
        let early = Early {
            request: Some(full_request().request_headers()),
            consumer: Some(Some(ConsumerId([7; 16]))),
            client: Some(Some(Addr::V4([192, 0, 2, 9]))),
        };
        // The view at end of stream knows nothing of the request: everything comes from `early`.
        let late = FakeView::default().response_header(":status", b"200");
        let c = capture_with(&late, &settings(""), &stream(), 1, early).unwrap();
        assert_eq!(c.text(Field::Path), b"/v1/orders/42?page&secret");
        assert_eq!(c.consumer, Some(ConsumerId([7; 16])));
        assert_eq!(c.client, Some(Addr::V4([192, 0, 2, 9])));
    }

    #[test]
    fn a_request_plumbline_answered_is_flagged_local_without_asking_envoy_why() {
        let facts = StreamFacts {
            flags: flags::BLOCKED | flags::LOCAL_REPLY,
            ..stream()
        };
        let view = full_request().response_header(":status", b"403");
        let c = capture(&view, &settings(""), &facts, 1).unwrap();
        assert_eq!(c.flags, flags::BLOCKED | flags::LOCAL_REPLY);
    }

    #[test]
    fn a_would_block_flag_is_kept_on_an_upstream_response() {
        let facts = StreamFacts {
            flags: flags::WOULD_BLOCK,
            ..stream()
        };
        let c = capture(&full_request(), &settings(""), &facts, 1).unwrap();
        assert_eq!(c.flags, flags::WOULD_BLOCK);
    }
}
