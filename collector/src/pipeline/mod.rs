//! A validated batch through every stage: the sender's sequence window (a retry is
//! acknowledged, not counted), then each record into the inventory and the consumers, and,
//! once templated, into detection when it runs ([`crate::detect`]).
//!
//! The pipeline holds all in-memory state; the store loads it at start and writes what changed
//! after each batch. Time comes in as `now_ms` (the collector's clock at receipt, used only for
//! the filter's last batch); record times come from the records.

use crate::consumers::{Consumers, Enforced};
use crate::detect::Detection;
use crate::filters::{BatchHeader, Filters};
use crate::inventory::endpoint::Hit;
use crate::inventory::tree::Rules;
use crate::inventory::{Inventory, Request};
use plumbline_wire::{flags, Batch, Record};

/// Caps and rules of the in-memory state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub rules: Rules,
    pub max_hosts: usize,
    pub max_consumers: usize,
    pub max_filters: usize,
    /// Caps on decisions and their audit log.
    pub decisions: crate::decide::Limits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules: Rules::default(),
            max_hosts: 1_000,
            max_consumers: 1_000_000,
            max_filters: 10_000,
            decisions: crate::decide::Limits::default(),
        }
    }
}

/// What happened to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Records counted.
    pub accepted: u32,
    /// The batch had been counted before.
    pub duplicate: bool,
    /// Records not counted (whole or in part) because a cap was reached.
    pub over_cap: u32,
}

/// Counters since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub records: u64,
    pub over_cap: u64,
    /// Requests filters answered themselves by a decision, or would have in monitor mode.
    pub enforced: Enforced,
}

/// Inventory, consumers, filters and detection.
#[derive(Debug)]
pub struct Pipeline {
    pub inventory: Inventory,
    pub consumers: Consumers,
    pub filters: Filters,
    pub totals: Totals,
    /// Started by [`crate::detect::flow::enable`]; `None` when detection does not run.
    pub detect: Option<Detection>,
}

impl Pipeline {
    pub fn new(settings: Settings) -> Self {
        Pipeline {
            inventory: Inventory::new(settings.rules, settings.max_hosts),
            consumers: Consumers::new(settings.max_consumers),
            filters: Filters::new(settings.max_filters),
            totals: Totals::default(),
            detect: None,
        }
    }

    /// A batch from a filter: checked against its sender's window, then counted.
    pub fn apply_batch(&mut self, batch: &Batch, now_ms: u64) -> Outcome {
        let header = BatchHeader {
            node: &batch.node,
            instance: batch.instance,
            seq: batch.seq,
            records: batch.records.len() as u64,
            dropped: batch.dropped,
        };
        if !self.filters.batch(header, now_ms) {
            return Outcome {
                duplicate: true,
                ..Outcome::default()
            };
        }
        self.apply_records(batch)
    }

    /// The records of a batch, without sender bookkeeping (log files ingested offline).
    pub fn apply_records(&mut self, batch: &Batch) -> Outcome {
        let mut outcome = Outcome::default();
        if let Some(detect) = self.detect.as_mut() {
            detect.start_batch(batch);
        }
        for record in &batch.records {
            if self.apply_record(batch, record) {
                outcome.accepted += 1;
            } else {
                outcome.over_cap += 1;
            }
        }
        self.totals.records += u64::from(outcome.accepted);
        self.totals.over_cap += u64::from(outcome.over_cap);
        outcome
    }

    /// Counts one record; `false` when a cap kept part of it out.
    fn apply_record(&mut self, batch: &Batch, record: &Record) -> bool {
        let weight = u64::from(record.weight.max(1));
        let time_ms = batch.time_ms(record);
        let mut complete = true;
        self.totals.enforced.count(record.flags, weight);

        let id = batch.consumer(record);
        let consumer = match id {
            Some(id) => {
                let idx = self.consumers.resolve(id);
                complete &= idx.is_some();
                idx
            }
            None => None,
        };
        if let Some(idx) = consumer {
            self.consumers
                .call(idx, batch.label(record), weight, time_ms);
            self.consumers.enforced(idx, record.flags, weight);
        }

        let request = Request {
            host: batch.host(record),
            method: batch.method(record),
            raw_path: record.flags & flags::RAW_PATH != 0,
            hit: Hit {
                status: record.status,
                weight,
                time_ms,
                consumer,
            },
        };
        match self.inventory.observe(request, batch.segments(record)) {
            Some(counted) => {
                if let (true, Some(idx)) = (counted.new_consumer, consumer) {
                    self.consumers.gained_endpoint(idx);
                }
                if let (Some(detect), Some(id)) = (self.detect.as_mut(), id) {
                    if let Some(endpoint) = self.inventory.endpoints().get(counted.endpoint) {
                        detect.observe(batch, record, id, counted.endpoint, endpoint);
                    }
                }
            }
            None => complete = false,
        }
        self.settle_merges();
        complete
    }

    /// Consumers whose endpoints were merged use fewer endpoints now, and detection names
    /// renamed and merged endpoints by their current template (so no replaced raw value
    /// stays in its evidence).
    fn settle_merges(&mut self) {
        if self.inventory.endpoints().has_lost() {
            for idx in self.inventory.take_lost() {
                self.consumers.lost_endpoint(idx);
            }
        }
        if self.inventory.endpoints().has_renamed() {
            let renamed = self.inventory.endpoints_mut().take_renamed();
            if let Some(detect) = self.detect.as_mut() {
                let table = self.inventory.endpoints();
                for (idx, now) in renamed {
                    if let Some(endpoint) = table.get(now) {
                        detect.describe(idx, endpoint);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use plumbline_wire::{consumer_id, BatchBuilder, Method, Record};

    pub(crate) fn batch_of(paths: &[(&str, &[u8])], seq: u64) -> Batch {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        for (i, (path, key)) in paths.iter().enumerate() {
            let (segments, path_flags) = b.path(path);
            let consumer = (!key.is_empty()).then(|| b.consumer(consumer_id(b"salt", key)));
            let record = Record {
                offset_ms: b.offset_ms(1_700_000_000_000 + i as u64),
                method: Method::Get,
                host: b.intern("api.example.com"),
                path: segments,
                query: vec![],
                status: 200,
                request_bytes: 0,
                response_bytes: 10,
                duration_us: 100,
                consumer,
                label: None,
                client: None,
                user_agent: None,
                request_type: None,
                response_type: None,
                flags: path_flags,
                weight: 1,
            };
            b.push(record);
        }
        let mut batch = b.finish();
        batch.node = "node-a".into();
        batch.instance = 9;
        batch.seq = seq;
        batch
    }

    #[test]
    fn a_duplicate_batch_is_acknowledged_and_counted_once() {
        let mut pipeline = Pipeline::new(Settings::default());
        let batch = batch_of(&[("/users/1", b"k1"), ("/users/2", b"k2")], 1);
        assert_eq!(pipeline.apply_batch(&batch, 5).accepted, 2);
        let again = pipeline.apply_batch(&batch, 6);
        assert!(again.duplicate);
        assert_eq!(again.accepted, 0);
        let (_, endpoint) = pipeline.inventory.endpoints().iter().next().unwrap();
        assert_eq!(endpoint.calls, 2);
        assert_eq!(pipeline.filters.iter().next().unwrap().batches, 1);
    }

    #[test]
    fn blocked_throttled_and_would_block_records_are_counted_by_weight_in_total_and_per_consumer() {
        // Before, the collector read no flag but RAW_PATH: enforcement outcomes reached no
        // metric, and no consumer's profile showed it had been blocked.
        let mut batch = batch_of(
            &[("/a", b"k1"), ("/a", b"k1"), ("/a", b"k2"), ("/a", b"k2")],
            1,
        );
        let marks = [
            flags::BLOCKED | flags::LOCAL_REPLY,
            flags::THROTTLED,
            flags::WOULD_BLOCK,
            0,
        ];
        for (record, (mark, weight)) in batch.records.iter_mut().zip(marks.iter().zip([1, 2, 4, 8]))
        {
            record.flags |= mark;
            record.weight = weight;
        }
        let mut pipeline = Pipeline::new(Settings::default());
        pipeline.apply_batch(&batch, 0);

        let total = pipeline.totals.enforced;
        assert_eq!(
            (total.blocked, total.throttled, total.would_block),
            (1, 2, 4)
        );
        let of = |key: &[u8]| {
            let id = consumer_id(b"salt", key);
            pipeline.consumers.find(&id).unwrap().enforced
        };
        let (k1, k2) = (of(b"k1"), of(b"k2"));
        assert_eq!((k1.blocked, k1.throttled, k1.would_block), (1, 2, 0));
        assert_eq!((k2.blocked, k2.throttled, k2.would_block), (0, 0, 4));
        assert_eq!(
            pipeline
                .consumers
                .find(&consumer_id(b"salt", b"k2"))
                .unwrap()
                .calls,
            12
        );
    }

    #[test]
    fn requests_without_a_consumer_count_calls_but_make_no_consumer() {
        let mut pipeline = Pipeline::new(Settings::default());
        pipeline.apply_batch(&batch_of(&[("/a", b""), ("/a", b"k")], 1), 0);
        assert_eq!(pipeline.consumers.len(), 1);
        let (_, endpoint) = pipeline.inventory.endpoints().iter().next().unwrap();
        assert_eq!((endpoint.calls, endpoint.consumers.len()), (2, 1));
    }

    #[test]
    fn consumer_endpoint_counts_follow_merges() {
        let mut pipeline = Pipeline::new(Settings::default());
        let letters = b"abcdefghijklmnopqrstuvwxyz";
        let name = |i: usize| {
            format!(
                "/things/{}{}item",
                letters[i % 26] as char,
                letters[i / 26] as char
            )
        };
        let names: Vec<String> = (0..30).map(name).collect();
        let mut paths: Vec<(&str, &[u8])> = names.iter().map(|p| (p.as_str(), &b"k"[..])).collect();
        paths.push(("/other", b"k"));
        pipeline.apply_batch(&batch_of(&paths, 1), 0);
        let consumer = pipeline.consumers.iter().next().unwrap().1;
        assert_eq!(pipeline.inventory.endpoints().len(), 2);
        assert_eq!(consumer.endpoints, 2);
    }
}
