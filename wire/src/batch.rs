//! Batches: a header saying who sent it and what it holds, per-batch tables of interned
//! strings, consumer ids and addresses, then the records.
//!
//! [`BatchBuilder`] interns as records are added (the filter's side); [`Batch::decode`] checks
//! version, size limits and every index before a collector trusts the batch.

use crate::record::{flags, Addr, Method, Record, StrRef};
use crate::{ConsumerId, FORMAT_VERSION};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

/// A batch of records from one filter instance (one Envoy worker VM).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub format: u16,
    /// Envoy node id of the proxy.
    pub node: String,
    /// Random id picked by the VM at start; Envoy exposes no worker index.
    pub instance: u64,
    /// Per-instance sequence number; a retried batch keeps its number.
    pub seq: u64,
    /// Records dropped by this instance since its previous batch (buffer overflow).
    pub dropped: u64,
    /// Version of the decision set the instance holds.
    pub decisions_version: u64,
    /// Unix time in milliseconds that record offsets count from.
    pub base_time_ms: u64,
    pub strings: Vec<String>,
    pub consumers: Vec<ConsumerId>,
    pub addrs: Vec<Addr>,
    pub records: Vec<Record>,
}

/// Bounds a collector applies to a batch before trusting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_records: usize,
    pub max_strings: usize,
    pub max_string_len: usize,
    pub max_segments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: 100_000,
            max_strings: 400_000,
            max_string_len: 4096,
            max_segments: crate::MAX_SEGMENTS,
        }
    }
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("batch is not valid postcard: {0}")]
    Malformed(String),
    #[error("batch has {0} trailing bytes after its end")]
    TrailingBytes(usize),
    #[error("batch format {found} is not supported (this collector reads format {supported})")]
    Format { found: u16, supported: u16 },
    #[error("batch has {found} {what}, more than the limit of {limit}")]
    TooMany {
        what: &'static str,
        found: usize,
        limit: usize,
    },
    #[error("record {record} refers to {what} {index}, but the batch has {len}")]
    BadIndex {
        record: usize,
        what: &'static str,
        index: u32,
        len: usize,
    },
}

impl Batch {
    /// Encodes with postcard.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these plain types into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes and validates: format version, limits, and that every index is in range.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Batch, DecodeError> {
        let (batch, rest): (Batch, _) =
            postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()));
        }
        if batch.format != FORMAT_VERSION {
            return Err(DecodeError::Format {
                found: batch.format,
                supported: FORMAT_VERSION,
            });
        }
        batch.validate(limits)?;
        Ok(batch)
    }

    fn validate(&self, limits: &Limits) -> Result<(), DecodeError> {
        too_many("records", self.records.len(), limits.max_records)?;
        too_many("strings", self.strings.len(), limits.max_strings)?;
        let longest = self.strings.iter().map(String::len).max().unwrap_or(0);
        too_many("bytes in one string", longest, limits.max_string_len)?;
        for (i, record) in self.records.iter().enumerate() {
            too_many("path segments", record.path.len(), limits.max_segments)?;
            too_many("query names", record.query.len(), limits.max_segments)?;
            self.check_indices(i, record)?;
        }
        Ok(())
    }

    fn check_indices(&self, record: usize, r: &Record) -> Result<(), DecodeError> {
        let check = |what, index: u32, len: usize| {
            if (index as usize) < len {
                Ok(())
            } else {
                Err(DecodeError::BadIndex {
                    record,
                    what,
                    index,
                    len,
                })
            }
        };
        let strings = self.strings.len();
        if let Method::Other(s) = r.method {
            check("string", s, strings)?;
        }
        check("string", r.host, strings)?;
        for s in r.path.iter().chain(&r.query) {
            check("string", *s, strings)?;
        }
        let optional = [r.label, r.user_agent, r.request_type, r.response_type];
        for s in optional.into_iter().flatten() {
            check("string", s, strings)?;
        }
        if let Some(c) = r.consumer {
            check("consumer", c, self.consumers.len())?;
        }
        if let Some(a) = r.client {
            check("address", a, self.addrs.len())?;
        }
        Ok(())
    }

    /// The interned string; empty for an index out of range (impossible after `decode`).
    pub fn str(&self, index: StrRef) -> &str {
        self.strings
            .get(index as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    fn opt_str(&self, index: Option<StrRef>) -> Option<&str> {
        index.map(|i| self.str(i))
    }

    /// Unix time in milliseconds of a record.
    pub fn time_ms(&self, r: &Record) -> u64 {
        self.base_time_ms.saturating_add(u64::from(r.offset_ms))
    }

    pub fn method<'a>(&'a self, r: &Record) -> &'a str {
        match r.method {
            Method::Other(s) => self.str(s),
            known => known.name().unwrap_or(""),
        }
    }

    pub fn host<'a>(&'a self, r: &Record) -> &'a str {
        self.str(r.host)
    }

    /// The path segments of a record (after the leading `/`).
    pub fn segments<'a>(&'a self, r: &'a Record) -> impl Iterator<Item = &'a str> + 'a {
        r.path.iter().map(move |s| self.str(*s))
    }

    /// The path as the client sent it, query stripped.
    pub fn path(&self, r: &Record) -> String {
        if r.flags & flags::RAW_PATH != 0 {
            return self.segments(r).collect();
        }
        let mut out = String::new();
        for segment in self.segments(r) {
            out.push('/');
            out.push_str(segment);
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    pub fn consumer(&self, r: &Record) -> Option<ConsumerId> {
        r.consumer
            .and_then(|c| self.consumers.get(c as usize).copied())
    }

    pub fn client(&self, r: &Record) -> Option<Addr> {
        r.client.and_then(|a| self.addrs.get(a as usize).copied())
    }

    pub fn label<'a>(&'a self, r: &Record) -> Option<&'a str> {
        self.opt_str(r.label)
    }

    pub fn user_agent<'a>(&'a self, r: &Record) -> Option<&'a str> {
        self.opt_str(r.user_agent)
    }

    pub fn request_type<'a>(&'a self, r: &Record) -> Option<&'a str> {
        self.opt_str(r.request_type)
    }

    pub fn response_type<'a>(&'a self, r: &Record) -> Option<&'a str> {
        self.opt_str(r.response_type)
    }
}

fn too_many(what: &'static str, found: usize, limit: usize) -> Result<(), DecodeError> {
    if found > limit {
        return Err(DecodeError::TooMany { what, found, limit });
    }
    Ok(())
}

/// Builds a batch, interning strings, consumer ids and addresses as records are added.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    batch: Batch,
    strings: HashMap<String, StrRef>,
    consumers: HashMap<ConsumerId, u32>,
    addrs: HashMap<Addr, u32>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            format: FORMAT_VERSION,
            node: String::new(),
            instance: 0,
            seq: 0,
            dropped: 0,
            decisions_version: 0,
            base_time_ms: 0,
            strings: Vec::new(),
            consumers: Vec::new(),
            addrs: Vec::new(),
            records: Vec::new(),
        }
    }
}

impl BatchBuilder {
    /// A builder whose record offsets count from `base_time_ms` (the earliest record's time).
    pub fn new(base_time_ms: u64) -> Self {
        let batch = Batch {
            base_time_ms,
            ..Batch::default()
        };
        BatchBuilder {
            batch,
            ..BatchBuilder::default()
        }
    }

    pub fn intern(&mut self, text: &str) -> StrRef {
        if let Some(index) = self.strings.get(text) {
            return *index;
        }
        let index = u32::try_from(self.batch.strings.len()).unwrap_or(u32::MAX);
        self.batch.strings.push(text.to_string());
        self.strings.insert(text.to_string(), index);
        index
    }

    /// Interns bytes that may not be UTF-8 (invalid sequences become U+FFFD).
    pub fn intern_bytes(&mut self, bytes: &[u8]) -> StrRef {
        self.intern(&String::from_utf8_lossy(bytes))
    }

    pub fn method(&mut self, name: &[u8]) -> Method {
        Method::known(name).unwrap_or_else(|| Method::Other(self.intern_bytes(name)))
    }

    /// Segments of a path (query already stripped) and the flag to set on its record.
    pub fn path(&mut self, path: &str) -> (Vec<StrRef>, u8) {
        match path.strip_prefix('/') {
            Some("") => (Vec::new(), 0),
            Some(rest) => (rest.split('/').map(|s| self.intern(s)).collect(), 0),
            None => (vec![self.intern(path)], flags::RAW_PATH),
        }
    }

    pub fn consumer(&mut self, id: ConsumerId) -> u32 {
        let next = u32::try_from(self.batch.consumers.len()).unwrap_or(u32::MAX);
        let index = *self.consumers.entry(id).or_insert(next);
        if index == next {
            self.batch.consumers.push(id);
        }
        index
    }

    pub fn addr(&mut self, addr: Addr) -> u32 {
        let next = u32::try_from(self.batch.addrs.len()).unwrap_or(u32::MAX);
        let index = *self.addrs.entry(addr).or_insert(next);
        if index == next {
            self.batch.addrs.push(addr);
        }
        index
    }

    /// Offset of an absolute time from the base, clamped to the field's range.
    pub fn offset_ms(&self, time_ms: u64) -> u32 {
        let offset = time_ms.saturating_sub(self.batch.base_time_ms);
        u32::try_from(offset).unwrap_or(u32::MAX)
    }

    pub fn push(&mut self, record: Record) {
        self.batch.records.push(record);
    }

    /// The time record offsets count from.
    pub fn base_time_ms(&self) -> u64 {
        self.batch.base_time_ms
    }

    pub fn len(&self) -> usize {
        self.batch.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.records.is_empty()
    }

    /// The finished batch; the caller fills in the header fields.
    pub fn finish(self) -> Batch {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer_id;

    fn sample_batch(records: usize) -> Batch {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        let consumer = b.consumer(consumer_id(b"salt", b"key"));
        for i in 0..records {
            let (path, path_flags) = b.path(&format!("/v1/orders/{}", 1000 + i));
            let record = Record {
                offset_ms: b.offset_ms(1_700_000_000_000 + i as u64 * 3),
                method: b.method(b"GET"),
                host: b.intern("api.example.com"),
                path,
                query: vec![b.intern("page")],
                status: 200,
                request_bytes: 0,
                response_bytes: 1832,
                duration_us: 2400,
                consumer: Some(consumer),
                label: Some(b.intern("acme")),
                client: Some(b.addr(Addr::V4([10, 0, 0, 7]))),
                user_agent: Some(b.intern("partner-sdk/2.1")),
                request_type: None,
                response_type: Some(b.intern("application/json")),
                flags: path_flags,
                weight: 1,
            };
            b.push(record);
        }
        let mut batch = b.finish();
        batch.node = "node-a".into();
        batch.instance = 42;
        batch.seq = 7;
        batch
    }

    #[test]
    fn batch_round_trips_through_postcard() {
        let batch = sample_batch(3);
        let decoded = Batch::decode(&batch.encode(), &Limits::default()).unwrap();
        assert_eq!(decoded, batch);
        let r = &decoded.records[2];
        assert_eq!(decoded.path(r), "/v1/orders/1002");
        assert_eq!(decoded.method(r), "GET");
        assert_eq!(decoded.time_ms(r), 1_700_000_000_006);
        assert_eq!(decoded.client(r).unwrap().to_string(), "10.0.0.7");
    }

    #[test]
    fn records_with_ids_in_paths_encode_within_forty_bytes_each() {
        let batch = sample_batch(500);
        let per_record = batch.encode().len() / 500;
        assert!(per_record <= 40, "{per_record} bytes per record");
    }

    #[test]
    fn root_trailing_slash_and_raw_paths_are_rebuilt_exactly() {
        for path in ["/", "/a/b/", "//x", "*", "/users/v1/alice"] {
            let mut b = BatchBuilder::new(0);
            let (segments, path_flags) = b.path(path);
            let host = b.intern("h");
            b.push(Record {
                offset_ms: 0,
                method: Method::Options,
                host,
                path: segments,
                query: vec![],
                status: 0,
                request_bytes: 0,
                response_bytes: 0,
                duration_us: 0,
                consumer: None,
                label: None,
                client: None,
                user_agent: None,
                request_type: None,
                response_type: None,
                flags: path_flags,
                weight: 1,
            });
            let batch = b.finish();
            assert_eq!(batch.path(&batch.records[0]), path);
        }
    }

    #[test]
    fn garbage_is_refused_as_malformed() {
        let err = Batch::decode(
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            &Limits::default(),
        );
        assert!(matches!(err, Err(DecodeError::Malformed(_))), "{err:?}");
    }

    #[test]
    fn an_index_past_the_string_table_is_refused() {
        let mut batch = sample_batch(1);
        batch.records[0].host = 999;
        let err = Batch::decode(&batch.encode(), &Limits::default()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::BadIndex {
                what: "string",
                index: 999,
                ..
            }
        ));
    }

    #[test]
    fn an_index_past_the_consumer_table_is_refused() {
        let mut batch = sample_batch(1);
        batch.records[0].consumer = Some(5);
        let err = Batch::decode(&batch.encode(), &Limits::default()).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::BadIndex {
                what: "consumer",
                ..
            }
        ));
    }

    #[test]
    fn another_format_version_is_refused_with_both_versions_named() {
        let mut batch = sample_batch(1);
        batch.format = 9;
        let err = Batch::decode(&batch.encode(), &Limits::default()).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Format {
                found: 9,
                supported: FORMAT_VERSION
            }
        );
    }

    #[test]
    fn more_records_than_the_limit_are_refused() {
        let limits = Limits {
            max_records: 2,
            ..Limits::default()
        };
        let err = Batch::decode(&sample_batch(3).encode(), &limits).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::TooMany {
                what: "records",
                found: 3,
                limit: 2
            }
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = sample_batch(1).encode();
        bytes.push(0);
        let err = Batch::decode(&bytes, &Limits::default()).unwrap_err();
        assert_eq!(err, DecodeError::TrailingBytes(1));
    }
}
