//! The JSON shapes of `GET /v1/inventory`, `/v1/consumers` and `/v1/filters`, built from the
//! pipeline and read back by the CLI. Lists are sorted by calls (filters by records),
//! highest first; times are RFC 3339 in UTC, to the second.

use crate::pipeline::Pipeline;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryView {
    pub endpoints: Vec<EndpointView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointView {
    pub host: String,
    pub method: String,
    pub path: String,
    pub calls: u64,
    /// Distinct consumers.
    pub consumers: u64,
    pub status: StatusView,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumersView {
    pub consumers: Vec<ConsumerView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerView {
    /// The consumer id: 32 hex digits of the keyed hash.
    pub id: String,
    pub label: Option<String>,
    pub calls: u64,
    /// Number of distinct endpoints used.
    pub endpoints: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// Requests a filter answered with a block, with a throttle's 429, or would have blocked
    /// in monitor mode; these requests are counted in `calls` as well.
    #[serde(default)]
    pub blocked: u64,
    #[serde(default)]
    pub throttled: u64,
    #[serde(default)]
    pub would_block: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiltersView {
    pub filters: Vec<FilterView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterView {
    pub node: String,
    /// The instance id, 16 hex digits.
    pub instance: String,
    pub last_batch: String,
    pub records: u64,
    pub dropped: u64,
    pub batches: u64,
}

/// Unix milliseconds as RFC 3339 UTC, to the second.
pub fn rfc3339(ms: u64) -> String {
    let seconds = i64::try_from(ms / 1000).unwrap_or(0);
    let time = OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    time.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl InventoryView {
    pub fn of(pipeline: &Pipeline) -> Self {
        let mut endpoints: Vec<EndpointView> = pipeline
            .inventory
            .endpoints()
            .iter()
            .map(|(_, e)| EndpointView {
                host: e.host.to_string(),
                method: e.method.to_string(),
                path: e.path.clone(),
                calls: e.calls,
                consumers: e.consumers.len() as u64,
                status: StatusView {
                    s2xx: e.status.0[0],
                    s3xx: e.status.0[1],
                    s4xx: e.status.0[2],
                    s5xx: e.status.0[3],
                },
                first_seen: rfc3339(e.first_seen_ms),
                last_seen: rfc3339(e.last_seen_ms),
            })
            .collect();
        endpoints.sort_by(|a, b| {
            let key = |e: &EndpointView| (Reverse(e.calls), e.host.clone(), e.path.clone());
            key(a).cmp(&key(b)).then_with(|| a.method.cmp(&b.method))
        });
        InventoryView { endpoints }
    }
}

impl ConsumersView {
    pub fn of(pipeline: &Pipeline) -> Self {
        let mut consumers: Vec<ConsumerView> = pipeline
            .consumers
            .iter()
            .map(|(_, c)| ConsumerView {
                id: c.id.to_string(),
                label: c.label.as_deref().map(str::to_string),
                calls: c.calls,
                endpoints: u64::from(c.endpoints),
                first_seen: rfc3339(c.first_seen_ms),
                last_seen: rfc3339(c.last_seen_ms),
                blocked: c.enforced.blocked,
                throttled: c.enforced.throttled,
                would_block: c.enforced.would_block,
            })
            .collect();
        consumers.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.id.cmp(&b.id)));
        ConsumersView { consumers }
    }
}

impl FiltersView {
    pub fn of(pipeline: &Pipeline) -> Self {
        let mut filters: Vec<FilterView> = pipeline
            .filters
            .iter()
            .map(|f| FilterView {
                node: f.node.clone(),
                instance: format!("{:016x}", f.instance),
                last_batch: rfc3339(f.last_batch_ms),
                records: f.records,
                dropped: f.dropped,
                batches: f.batches,
            })
            .collect();
        filters.sort_by(|a, b| {
            let key = |f: &FilterView| (Reverse(f.records), f.node.clone(), f.instance.clone());
            key(a).cmp(&key(b))
        });
        FiltersView { filters }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_to_the_second() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn status_classes_serialise_under_their_class_names() {
        let status = StatusView {
            s2xx: 1,
            s3xx: 2,
            s4xx: 3,
            s5xx: 4,
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, r#"{"2xx":1,"3xx":2,"4xx":3,"5xx":4}"#);
    }
}
