//! One request read from a log, and how entries become a batch: the same record a filter
//! would send, so log files and live traffic feed one pipeline.

use super::LineError;
use plumbline_wire::{Addr, Batch, BatchBuilder, ConsumerId, Record};
use std::net::IpAddr;
use std::ops::Range;

/// One request from a log line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    pub time_ms: u64,
    pub method: String,
    pub host: String,
    /// The request target without its query.
    pub path: String,
    /// Names of the query parameters, values dropped.
    pub query: Vec<String>,
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub duration_us: u32,
    pub consumer: Option<ConsumerId>,
    pub label: Option<String>,
    pub client: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Splits a request target into path and query parameter names. An absolute URL
/// (`http://host/path`) gives its host too.
pub fn split_target(target: &str) -> Result<(Option<&str>, &str, Vec<String>), LineError> {
    let (authority, rest) = match target.split_once("://") {
        Some((_, after)) => match after.find('/') {
            Some(i) => (Some(&after[..i]), &after[i..]),
            None => (Some(after), "/"),
        },
        None => (None, target),
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.split_once('#').map_or(path, |(p, _)| p);
    if !(path.starts_with('/') || path == "*") {
        return Err(LineError::Invalid {
            field: "request target",
            value: target.chars().take(80).collect(),
        });
    }
    let names = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map_or(pair, |(name, _)| name)
                .to_string()
        })
        .collect();
    Ok((authority, path, names))
}

/// A method token: upper-case letters, as HTTP methods are.
pub fn check_method(method: &str) -> Result<(), LineError> {
    let ok = method
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_uppercase)
        && method.len() <= 24
        && method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(LineError::Invalid {
            field: "method",
            value: method.chars().take(24).collect(),
        })
    }
}

/// Packs entries, in their order, into batches whose base time is each one's earliest entry
/// (see [`batch_ranges`]).
pub fn to_batches(entries: &[Entry]) -> Vec<Batch> {
    batch_ranges(entries)
        .into_iter()
        .map(|range| to_batch(&entries[range]))
        .collect()
}

/// Where [`to_batches`] cuts: a record keeps its time as an offset of at most `u32::MAX` ms
/// (49.7 days) from its batch's base, so a chunk spanning more is cut where it would not fit
/// (one range when it fits, and one empty range for no entries).
pub fn batch_ranges(entries: &[Entry]) -> Vec<Range<usize>> {
    let span = u64::from(u32::MAX);
    let mut ranges = Vec::new();
    let mut start = 0;
    let (mut low, mut high) = (u64::MAX, 0);
    for (i, e) in entries.iter().enumerate() {
        let (l, h) = (low.min(e.time_ms), high.max(e.time_ms));
        if h - l > span {
            ranges.push(start..i);
            start = i;
            (low, high) = (e.time_ms, e.time_ms);
        } else {
            (low, high) = (l, h);
        }
    }
    if start < entries.len() || ranges.is_empty() {
        ranges.push(start..entries.len());
    }
    ranges
}

/// Packs entries into one batch whose base time is the earliest entry's (times more than
/// `u32::MAX` ms after it are clamped: [`to_batches`] splits a chunk so none is).
pub fn to_batch(entries: &[Entry]) -> Batch {
    let base = entries.iter().map(|e| e.time_ms).min().unwrap_or(0);
    let mut b = BatchBuilder::new(base);
    for entry in entries {
        let record = record(&mut b, entry);
        b.push(record);
    }
    b.finish()
}

fn record(b: &mut BatchBuilder, e: &Entry) -> Record {
    let (path, flags) = b.path(&e.path);
    Record {
        offset_ms: b.offset_ms(e.time_ms),
        method: b.method(e.method.as_bytes()),
        host: b.intern(&e.host),
        path,
        query: e.query.iter().map(|q| b.intern(q)).collect(),
        status: e.status,
        request_bytes: e.request_bytes,
        response_bytes: e.response_bytes,
        duration_us: e.duration_us,
        consumer: e.consumer.map(|c| b.consumer(c)),
        label: e.label.as_deref().map(|l| b.intern(l)),
        client: e.client.map(|c| b.addr(Addr::from(c))),
        user_agent: e.user_agent.as_deref().map(|u| b.intern(u)),
        request_type: None,
        response_type: None,
        flags,
        weight: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_dropped_and_names_kept() {
        let (host, path, names) = split_target("/search?q=secret&page=2&flag").unwrap();
        assert_eq!((host, path), (None, "/search"));
        assert_eq!(names, ["q", "page", "flag"]);
    }

    #[test]
    fn an_absolute_target_gives_its_host() {
        let (host, path, _) = split_target("http://api.example.com:8080/v1/x?y=1").unwrap();
        assert_eq!((host, path), (Some("api.example.com:8080"), "/v1/x"));
    }

    #[test]
    fn a_target_that_is_not_a_path_is_refused() {
        assert!(split_target("\\x16\\x03\\x01").is_err());
        assert!(split_target("*").is_ok());
    }

    fn sample(time_ms: u64) -> Entry {
        Entry {
            time_ms,
            method: "GET".into(),
            host: "h".into(),
            path: "/a/b".into(),
            ..Entry::default()
        }
    }

    #[test]
    fn entries_months_apart_go_into_batches_that_keep_their_times() {
        let day = 86_400_000;
        let times = [2_000, 60 * day, 3_000, 61 * day, 200 * day];
        let entries: Vec<Entry> = times.iter().map(|t| sample(*t)).collect();
        let batches = to_batches(&entries);
        let back: Vec<u64> = batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| b.time_ms(r)))
            .collect();
        assert_eq!(back, times);
        assert_eq!(batches.len(), 5);
        assert_eq!(to_batches(&entries[..1]).len(), 1);
        assert_eq!(to_batches(&[]).len(), 1);
    }

    #[test]
    fn entries_become_a_batch_with_real_times() {
        let batch = to_batch(&[sample(5_000), sample(2_000)]);
        assert_eq!(batch.base_time_ms, 2_000);
        assert_eq!(batch.time_ms(&batch.records[0]), 5_000);
        assert_eq!(batch.path(&batch.records[1]), "/a/b");
    }
}
