//! Plumbline's proxy-wasm counters. Envoy shows each one in `/stats` under the `wasmcustom.`
//! prefix, e.g. `wasmcustom.plumbline.records_shipped`.
//!
//! Counts are tallied in plain memory and handed to Envoy from the root context (on each tick
//! and after each collector answer), so the request path makes no metric host call.

use log::debug;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub const RECORDS_CAPTURED: &str = "plumbline.records_captured";
pub const RECORDS_SHIPPED: &str = "plumbline.records_shipped";
pub const RECORDS_DROPPED: &str = "plumbline.records_dropped";
pub const BATCHES_SHIPPED: &str = "plumbline.batches_shipped";
pub const BATCHES_FAILED: &str = "plumbline.batches_failed";
pub const REQUESTS_BLOCKED: &str = "plumbline.requests_blocked";
pub const REQUESTS_WOULD_BLOCK: &str = "plumbline.requests_would_block";
pub const REQUESTS_THROTTLED: &str = "plumbline.requests_throttled";
pub const DECISION_SETS_APPLIED: &str = "plumbline.decision_sets_applied";
pub const DECISIONS_IGNORED: &str = "plumbline.decisions_ignored";

/// Counts not yet handed to Envoy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub records_captured: u64,
    pub records_shipped: u64,
    pub records_dropped: u64,
    pub batches_shipped: u64,
    pub batches_failed: u64,
    /// Requests answered with a block decision's status.
    pub requests_blocked: u64,
    /// Requests a decision would have refused (monitor mode or `"enforce": false`).
    pub requests_would_block: u64,
    /// Requests answered 429 by a throttle decision.
    pub requests_throttled: u64,
    /// Decision sets a VM started enforcing (each VM counts each set it adopts).
    pub decision_sets_applied: u64,
    /// Decisions left out of a set past `max_decisions` or with an invalid prefix.
    pub decisions_ignored: u64,
}

impl Tally {
    /// The counts paired with their metric names, leaving the tally at zero.
    pub fn drain(&mut self) -> [(&'static str, u64); 10] {
        let taken = std::mem::take(self);
        [
            (RECORDS_CAPTURED, taken.records_captured),
            (RECORDS_SHIPPED, taken.records_shipped),
            (RECORDS_DROPPED, taken.records_dropped),
            (BATCHES_SHIPPED, taken.batches_shipped),
            (BATCHES_FAILED, taken.batches_failed),
            (REQUESTS_BLOCKED, taken.requests_blocked),
            (REQUESTS_WOULD_BLOCK, taken.requests_would_block),
            (REQUESTS_THROTTLED, taken.requests_throttled),
            (DECISION_SETS_APPLIED, taken.decision_sets_applied),
            (DECISIONS_IGNORED, taken.decisions_ignored),
        ]
    }
}

/// Envoy's ids for the counters, defined once per VM.
#[derive(Debug)]
pub struct Metrics {
    ids: Vec<(&'static str, u32)>,
}

impl Metrics {
    /// Defines the counters; one that Envoy refuses is left out (and logged at debug).
    pub fn define() -> Metrics {
        let names = Tally::default().drain().map(|(name, _)| name);
        let ids = names
            .into_iter()
            .filter_map(
                |name| match hostcalls::define_metric(MetricType::Counter, name) {
                    Ok(id) => Some((name, id)),
                    Err(status) => {
                        debug!("defining counter {name} failed: {status:?}");
                        None
                    }
                },
            )
            .collect();
        Metrics { ids }
    }

    /// Adds the tally to Envoy's counters and resets it.
    pub fn publish(&self, tally: &mut Tally) {
        for (name, count) in tally.drain() {
            let Ok(offset) = i64::try_from(count) else {
                continue;
            };
            // Envoy refuses a zero increment of a counter.
            if offset == 0 {
                continue;
            }
            let id = self.ids.iter().find(|(n, _)| *n == name).map(|(_, id)| *id);
            if let Some(id) = id {
                if let Err(status) = hostcalls::increment_metric(id, offset) {
                    debug!("incrementing counter {name} failed: {status:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_a_tally_names_every_counter_and_resets_it() {
        let mut tally = Tally {
            records_captured: 3,
            batches_failed: 1,
            requests_blocked: 2,
            decisions_ignored: 4,
            ..Tally::default()
        };
        let drained = tally.drain();
        assert_eq!(drained[0], ("plumbline.records_captured", 3));
        assert_eq!(drained[4], ("plumbline.batches_failed", 1));
        assert_eq!(drained[5], ("plumbline.requests_blocked", 2));
        assert_eq!(drained[9], ("plumbline.decisions_ignored", 4));
        assert_eq!(tally, Tally::default());
    }
}
