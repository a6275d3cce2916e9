//! One request read from a log, and how entries become a batch: the same record a filter
//! would send, so log files and live traffic feed one pipeline.

use super::LineError;
use plumbline_wire::{Addr, Batch, BatchBuilder, ConsumerId, Record};
use std::net::IpAddr;

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

/// Packs entries into one batch whose base time is the earliest entry's.
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

    #[test]
    fn entries_become_a_batch_with_real_times() {
        let entry = |time_ms| Entry {
            time_ms,
            method: "GET".into(),
            host: "h".into(),
            path: "/a/b".into(),
            ..Entry::default()
        };
        let batch = to_batch(&[entry(5_000), entry(2_000)]);
        assert_eq!(batch.base_time_ms, 2_000);
        assert_eq!(batch.time_ms(&batch.records[0]), 5_000);
        assert_eq!(batch.path(&batch.records[1]), "/a/b");
    }
}
