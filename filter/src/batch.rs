//! Turns buffered records into one wire [`Batch`]: strings, consumers and addresses interned,
//! offsets counted from the earliest record, header filled in.
//!
//! Pure and deterministic: the shipper decides when, this module only decides what. The output
//! always passes the collector's default [`plumbline_wire::Limits`].

use crate::capture::{Captured, Field};
use plumbline_wire::{cap_segments, Batch, BatchBuilder, Record, MAX_SEGMENTS};

/// Who sends a batch and what it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader<'a> {
    pub node: &'a str,
    pub instance: u64,
    pub seq: u64,
    pub dropped: u64,
    pub decisions_version: u64,
}

/// Builds the batch for `records` (which may be empty).
pub fn build_batch(records: &[Captured], header: &BatchHeader<'_>) -> Batch {
    let base = records.iter().map(|r| r.start_ms).min().unwrap_or(0);
    let mut builder = BatchBuilder::new(base);
    for captured in records {
        let record = to_record(&mut builder, captured);
        builder.push(record);
    }
    let mut batch = builder.finish();
    batch.node = header.node.to_string();
    batch.instance = header.instance;
    batch.seq = header.seq;
    batch.dropped = header.dropped;
    batch.decisions_version = header.decisions_version;
    batch
}

fn to_record(b: &mut BatchBuilder, c: &Captured) -> Record {
    let (path_part, names) = split_path(c.text(Field::Path));
    let path_text = String::from_utf8_lossy(path_part);
    let (path, path_flags) = b.path(cap_segments(&path_text, MAX_SEGMENTS));
    let query = names
        .take(MAX_SEGMENTS)
        .map(|n| b.intern_bytes(n))
        .collect();
    let mut optional = |field| c.optional_text(field).map(|t| b.intern_bytes(t));
    let label = optional(Field::Label);
    let user_agent = optional(Field::UserAgent);
    let request_type = optional(Field::RequestType);
    let response_type = optional(Field::ResponseType);
    Record {
        offset_ms: b.offset_ms(c.start_ms),
        method: b.method(c.text(Field::Method)),
        host: b.intern_bytes(c.text(Field::Host)),
        path,
        query,
        status: c.status,
        request_bytes: c.request_bytes,
        response_bytes: c.response_bytes,
        duration_us: c.duration_us,
        consumer: c.consumer.map(|id| b.consumer(id)),
        label,
        client: c.client.map(|a| b.addr(a)),
        user_agent,
        request_type,
        response_type,
        flags: c.flags | path_flags,
        weight: c.weight,
    }
}

/// Splits a captured path (`/a/b?n1&n2`) into the path and its query names.
fn split_path(text: &[u8]) -> (&[u8], impl Iterator<Item = &[u8]>) {
    let (path, query) = match text.iter().position(|b| *b == b'?') {
        Some(at) => (text.get(..at).unwrap_or_default(), text.get(at + 1..)),
        None => (text, None),
    };
    let names = query
        .into_iter()
        .flat_map(|q| q.split(|b| *b == b'&'))
        .filter(|n| !n.is_empty());
    (path, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{capture, StreamFacts};
    use crate::config::Settings;
    use crate::host::tests::FakeView;
    use plumbline_wire::{consumer_id, flags, Addr, Limits, Method};

    const SALT: &[u8] = b"0123456789abcdef";

    fn settings() -> Settings {
        let json = r#"{"collector_cluster": "c", "ingest_token": "t",
            "hash_salt": "0123456789abcdef", "label_header": "x-partner"}"#;
        Settings::from_json(json.as_bytes()).unwrap()
    }

    fn request(path: &[u8], start_ms: i64, key: &[u8]) -> Captured {
        let view = FakeView::default()
            .header(":method", b"GET")
            .header(":authority", b"api.example.com")
            .header(":path", path)
            .header("x-api-key", key)
            .header("user-agent", &[0xff, b'u', b'a'])
            .header("x-partner", b"acme")
            .response_header(":status", b"200")
            .property(&["source", "address"], b"192.0.2.1:4000");
        let start_ns = u64::try_from(start_ms).unwrap() * 1_000_000;
        let facts = StreamFacts {
            start_ns,
            end_ns: start_ns,
            ..StreamFacts::default()
        };
        capture(&view, &settings(), &facts, 1).unwrap()
    }

    fn header() -> BatchHeader<'static> {
        BatchHeader {
            node: "node-a",
            instance: 99,
            seq: 4,
            dropped: 2,
            decisions_version: 0,
        }
    }

    fn round_trip(records: &[Captured]) -> Batch {
        let bytes = build_batch(records, &header()).encode();
        Batch::decode(&bytes, &Limits::default()).unwrap()
    }

    #[test]
    fn a_batch_round_trips_and_reads_back_as_captured() {
        let records = [
            request(b"/v1/orders/1?page=2", 1_000_005, b"k1"),
            request(b"/v1/orders/2", 1_000_001, b"k2"),
        ];
        let batch = round_trip(&records);
        assert_eq!((batch.node.as_str(), batch.instance), ("node-a", 99));
        assert_eq!(
            (batch.seq, batch.dropped, batch.decisions_version),
            (4, 2, 0)
        );
        assert_eq!(batch.base_time_ms, 1_000_001);
        let [first, second] = &batch.records[..] else {
            panic!("two records expected");
        };
        assert_eq!(batch.time_ms(first), 1_000_005);
        assert_eq!(batch.time_ms(second), 1_000_001);
        assert_eq!(batch.path(first), "/v1/orders/1");
        assert_eq!(batch.str(first.query[0]), "page");
        assert_eq!(first.method, Method::Get);
        assert_eq!(batch.host(first), "api.example.com");
        assert_eq!(batch.consumer(first), Some(consumer_id(SALT, b"k1")));
        assert_eq!(batch.consumer(second), Some(consumer_id(SALT, b"k2")));
        assert_eq!(batch.label(first), Some("acme"));
        assert_eq!(batch.user_agent(first), Some("\u{fffd}ua"));
        assert_eq!(batch.client(first), Some(Addr::V4([192, 0, 2, 1])));
        assert_eq!(batch.consumers.len(), 2);
        assert_eq!(batch.addrs.len(), 1);
    }

    #[test]
    fn paths_that_are_not_utf8_or_not_absolute_still_encode() {
        let records = [
            request(&[b'/', 0xc3, b'x'], 1, b"k"),
            request(b"*", 1, b"k"),
        ];
        let batch = round_trip(&records);
        assert_eq!(batch.path(&batch.records[0]), "/\u{fffd}x");
        assert_eq!(batch.path(&batch.records[1]), "*");
        assert_eq!(batch.records[1].flags & flags::RAW_PATH, flags::RAW_PATH);
    }

    #[test]
    fn records_with_too_many_segments_or_names_are_cut_to_the_wire_limit() {
        let path = format!("/{}?{}", "s/".repeat(100), "n=1&".repeat(100));
        let batch = round_trip(&[request(path.as_bytes(), 1, b"k")]);
        assert_eq!(batch.records[0].path.len(), MAX_SEGMENTS);
        assert_eq!(batch.records[0].query.len(), MAX_SEGMENTS);
    }

    #[test]
    fn an_empty_batch_is_still_a_valid_batch() {
        let batch = round_trip(&[]);
        assert!(batch.records.is_empty());
        assert_eq!(batch.seq, 4);
    }
}
