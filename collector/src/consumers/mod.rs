//! Consumers: one profile per consumer id (the keyed hash the filter computed), with its label
//! when one was seen, calls, the number of distinct endpoints used, first/last seen, and the
//! requests a filter answered itself because of a decision ([`Enforced`]).
//!
//! Requests without a consumer are unauthenticated and have no profile here. Consumers are
//! kept up to `max_consumers`; requests of consumers past the cap are counted as over it.
//! Only counts: no clock, no I/O.

use crate::inventory::endpoint::ConsumerIdx;
use hashbrown::HashMap;
use plumbline_wire::{flags, ConsumerId};

/// Requests a filter answered itself because of a decision, or would have in monitor mode,
/// counted by weight from the records' flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enforced {
    pub blocked: u64,
    pub throttled: u64,
    pub would_block: u64,
}

impl Enforced {
    /// Counts a record with `record_flags` standing for `weight` requests; answers whether it
    /// was enforced at all.
    pub fn count(&mut self, record_flags: u8, weight: u64) -> bool {
        let mut counted = false;
        for (flag, total) in [
            (flags::BLOCKED, &mut self.blocked),
            (flags::THROTTLED, &mut self.throttled),
            (flags::WOULD_BLOCK, &mut self.would_block),
        ] {
            if record_flags & flag != 0 {
                *total = total.saturating_add(weight);
                counted = true;
            }
        }
        counted
    }
}

/// What is known of one consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: ConsumerId,
    /// Last readable label seen with this consumer.
    pub label: Option<Box<str>>,
    /// Sum of record weights.
    pub calls: u64,
    /// Distinct endpoints used (exact; kept in step with the inventory's consumer sets).
    pub endpoints: u32,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub enforced: Enforced,
    dirty: bool,
}

impl Consumer {
    pub fn new(id: ConsumerId) -> Self {
        Consumer {
            id,
            label: None,
            calls: 0,
            endpoints: 0,
            first_seen_ms: u64::MAX,
            last_seen_ms: 0,
            enforced: Enforced::default(),
            dirty: true,
        }
    }
}

/// All consumers, indexed for the inventory's consumer sets, with change tracking.
#[derive(Debug)]
pub struct Consumers {
    max: usize,
    index: HashMap<ConsumerId, ConsumerIdx>,
    list: Vec<Consumer>,
    dirty: Vec<ConsumerIdx>,
}

impl Consumers {
    pub fn new(max: usize) -> Self {
        Consumers {
            max,
            index: HashMap::new(),
            list: Vec::new(),
            dirty: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, idx: ConsumerIdx) -> Option<&Consumer> {
        self.list.get(idx as usize)
    }

    pub fn find(&self, id: &ConsumerId) -> Option<&Consumer> {
        self.index.get(id).and_then(|idx| self.get(*idx))
    }

    pub fn iter(&self) -> impl Iterator<Item = (ConsumerIdx, &Consumer)> {
        (0..).zip(self.list.iter())
    }

    /// The index of a consumer, added if new; `None` past the cap.
    pub fn resolve(&mut self, id: ConsumerId) -> Option<ConsumerIdx> {
        if let Some(idx) = self.index.get(&id) {
            return Some(*idx);
        }
        if self.list.len() >= self.max {
            return None;
        }
        let idx = ConsumerIdx::try_from(self.list.len()).ok()?;
        self.list.push(Consumer::new(id));
        self.index.insert(id, idx);
        self.dirty.push(idx);
        Some(idx)
    }

    /// Counts `weight` calls by a consumer at `time_ms`, with the label the request carried.
    pub fn call(&mut self, idx: ConsumerIdx, label: Option<&str>, weight: u64, time_ms: u64) {
        let Some(consumer) = self.list.get_mut(idx as usize) else {
            return;
        };
        consumer.calls = consumer.calls.saturating_add(weight);
        consumer.first_seen_ms = consumer.first_seen_ms.min(time_ms);
        consumer.last_seen_ms = consumer.last_seen_ms.max(time_ms);
        if let Some(label) = label.filter(|l| consumer.label.as_deref() != Some(*l)) {
            consumer.label = Some(label.into());
        }
        mark(&mut self.dirty, consumer, idx);
    }

    /// Counts a request of the consumer that a decision answered (or would have), from the
    /// record's flags; other records change nothing.
    pub fn enforced(&mut self, idx: ConsumerIdx, record_flags: u8, weight: u64) {
        let Some(consumer) = self.list.get_mut(idx as usize) else {
            return;
        };
        if consumer.enforced.count(record_flags, weight) {
            mark(&mut self.dirty, consumer, idx);
        }
    }

    /// The consumer started using one more endpoint.
    pub fn gained_endpoint(&mut self, idx: ConsumerIdx) {
        self.adjust_endpoints(idx, |n| n.saturating_add(1));
    }

    /// Two endpoints the consumer used were merged into one.
    pub fn lost_endpoint(&mut self, idx: ConsumerIdx) {
        self.adjust_endpoints(idx, |n| n.saturating_sub(1));
    }

    fn adjust_endpoints(&mut self, idx: ConsumerIdx, change: impl Fn(u32) -> u32) {
        if let Some(consumer) = self.list.get_mut(idx as usize) {
            consumer.endpoints = change(consumer.endpoints);
            mark(&mut self.dirty, consumer, idx);
        }
    }

    /// Puts back a consumer read from the store; indices must come in order from 0.
    pub fn restore(&mut self, mut consumer: Consumer) -> ConsumerIdx {
        consumer.dirty = false;
        let idx = self.list.len() as ConsumerIdx;
        self.index.insert(consumer.id, idx);
        self.list.push(consumer);
        idx
    }

    /// Counts a stored (endpoint, consumer) pair, without marking the consumer changed.
    pub fn restore_endpoint(&mut self, idx: ConsumerIdx) {
        if let Some(consumer) = self.list.get_mut(idx as usize) {
            consumer.endpoints = consumer.endpoints.saturating_add(1);
        }
    }

    /// Consumers changed since the last call, for the store.
    pub fn take_dirty(&mut self) -> Vec<ConsumerIdx> {
        let dirty = std::mem::take(&mut self.dirty);
        for idx in &dirty {
            if let Some(consumer) = self.list.get_mut(*idx as usize) {
                consumer.dirty = false;
            }
        }
        dirty
    }
}

fn mark(dirty: &mut Vec<ConsumerIdx>, consumer: &mut Consumer, idx: ConsumerIdx) {
    if !consumer.dirty {
        consumer.dirty = true;
        dirty.push(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_wire::consumer_id;

    #[test]
    fn calls_labels_and_times_accumulate_per_consumer() {
        let mut consumers = Consumers::new(10);
        let id = consumer_id(b"salt", b"key-a");
        let idx = consumers.resolve(id).unwrap();
        consumers.call(idx, None, 2, 500);
        consumers.call(idx, Some("acme"), 1, 100);
        let consumer = consumers.find(&id).unwrap();
        assert_eq!(consumer.calls, 3);
        assert_eq!(consumer.label.as_deref(), Some("acme"));
        assert_eq!((consumer.first_seen_ms, consumer.last_seen_ms), (100, 500));
    }

    #[test]
    fn consumers_past_the_cap_are_refused() {
        let mut consumers = Consumers::new(1);
        assert!(consumers.resolve(consumer_id(b"s", b"a")).is_some());
        assert!(consumers.resolve(consumer_id(b"s", b"b")).is_none());
        assert!(consumers.resolve(consumer_id(b"s", b"a")).is_some());
    }

    #[test]
    fn a_consumer_is_found_by_hashing_its_raw_key_with_the_salt() {
        let mut consumers = Consumers::new(10);
        consumers.resolve(consumer_id(b"shared-salt", b"partner-key-1"));
        let looked_up = consumer_id(b"shared-salt", b"partner-key-1");
        assert!(consumers.find(&looked_up).is_some());
        assert!(consumers
            .find(&consumer_id(b"other-salt", b"partner-key-1"))
            .is_none());
    }
}
