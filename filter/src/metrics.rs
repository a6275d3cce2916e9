//! Plumbline's proxy-wasm counters. Envoy shows each one in `/stats` under the `wasmcustom.`
//! prefix, e.g. `wasmcustom.plumbline.records_shipped`.
//!
//! Counts are tallied in plain memory and handed to Envoy from the root context (on each tick
//! and after each collector answer), so the request path makes no metric host call.
//!
//! Two gauges show the filter's memory: `plumbline.vm_memory_bytes` is the sum of every
//! Plumbline VM's wasm linear memory (its heap, which a wasm VM never gives back, so this is
//! each VM's high-water mark) and `plumbline.vms` the number of VMs that run (one per worker and
//! one on Envoy's main thread; a VM that Envoy only configures and never runs is not counted);
//! their quotient is the memory per VM. Each VM adds its own change on its tick and takes its
//! share back when it stops.

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
pub const VM_MEMORY_BYTES: &str = "plumbline.vm_memory_bytes";
pub const VMS: &str = "plumbline.vms";

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

/// Envoy's ids for the counters and gauges, defined once per VM.
#[derive(Debug)]
pub struct Metrics {
    ids: Vec<(&'static str, u32)>,
    memory: Option<u32>,
    vms: Option<u32>,
    /// This VM's memory as last added to the memory gauge.
    memory_reported: u64,
}

impl Metrics {
    /// Defines the counters and gauges; one that Envoy refuses is left out (and logged at debug).
    pub fn define() -> Metrics {
        let names = Tally::default().drain().map(|(name, _)| name);
        let ids = names
            .into_iter()
            .filter_map(|name| Some((name, metric(MetricType::Counter, name)?)))
            .collect();
        Metrics {
            ids,
            memory: metric(MetricType::Gauge, VM_MEMORY_BYTES),
            vms: metric(MetricType::Gauge, VMS),
            memory_reported: 0,
        }
    }

    /// Adds the change in this VM's memory (`now_bytes`) since the last report to the gauge;
    /// the first report also counts the VM.
    pub fn report_memory(&mut self, now_bytes: u64) {
        let change = memory_change(self.memory_reported, now_bytes);
        if change == 0 {
            return;
        }
        if self.memory_reported == 0 {
            add(self.vms, VMS, 1);
        }
        add(self.memory, VM_MEMORY_BYTES, change);
        self.memory_reported = now_bytes;
    }

    /// Takes this VM's share out of the gauges: the VM is stopping.
    pub fn withdraw(&mut self) {
        if self.memory_reported > 0 {
            let change = memory_change(self.memory_reported, 0);
            add(self.memory, VM_MEMORY_BYTES, change);
            add(self.vms, VMS, -1);
            self.memory_reported = 0;
        }
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

/// Envoy's id for a new metric; `None` when Envoy refuses it (logged at debug).
fn metric(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, name) {
        Ok(id) => Some(id),
        Err(status) => {
            debug!("defining {kind:?} {name} failed: {status:?}");
            None
        }
    }
}

/// The signed change from `before` to `after` bytes, clamped to what a gauge offset holds.
fn memory_change(before: u64, after: u64) -> i64 {
    let up = i64::try_from(after.saturating_sub(before)).unwrap_or(i64::MAX);
    let down = i64::try_from(before.saturating_sub(after)).unwrap_or(i64::MAX);
    up - down
}

/// Adds `offset` to a gauge (Envoy subtracts a negative offset).
fn add(id: Option<u32>, name: &str, offset: i64) {
    if let Some(id) = id {
        if let Err(status) = hostcalls::increment_metric(id, offset) {
            debug!("changing gauge {name} by {offset} failed: {status:?}");
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

    #[test]
    fn memory_changes_are_signed_differences() {
        assert_eq!(memory_change(0, 1 << 20), 1 << 20);
        assert_eq!(memory_change(3 << 20, 1 << 20), -(2 << 20));
        assert_eq!(memory_change(5, 5), 0);
    }
}
