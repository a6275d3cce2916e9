//! The per-VM record buffer: captured requests waiting to be batched, capped in count.
//!
//! When full, the oldest record is dropped and counted, so memory stays bounded whatever the
//! collector does. The drop count since the last batch travels in the next batch's header.

use crate::capture::Captured;
use std::collections::VecDeque;

/// Records waiting to be shipped, oldest first.
#[derive(Debug)]
pub struct RecordBuffer {
    records: VecDeque<Captured>,
    capacity: usize,
    dropped_since_batch: u64,
}

impl RecordBuffer {
    pub fn new(capacity: usize) -> Self {
        RecordBuffer {
            records: VecDeque::new(),
            capacity: capacity.max(1),
            dropped_since_batch: 0,
        }
    }

    /// Adds a record; returns how many old records were dropped to make room (0 or 1).
    pub fn push(&mut self, record: Captured) -> u64 {
        let mut dropped = 0;
        while self.records.len() >= self.capacity {
            self.records.pop_front();
            dropped += 1;
        }
        // Grow by doubling, but never past the cap: a full buffer of 10,000 records holds room
        // for 10,000, not for the next power of two (16,384), and a VM's memory never shrinks.
        let len = self.records.len();
        if len == self.records.capacity() {
            let room = len.saturating_mul(2).clamp(16, self.capacity.max(16));
            self.records.reserve_exact(room.saturating_sub(len).max(1));
        }
        self.records.push_back(record);
        self.dropped_since_batch += dropped;
        dropped
    }

    /// Changes the cap, dropping the oldest records past it; returns how many were dropped.
    pub fn set_capacity(&mut self, capacity: usize) -> u64 {
        self.capacity = capacity.max(1);
        let excess = self.records.len().saturating_sub(self.capacity);
        self.records.drain(..excess);
        let dropped = u64::try_from(excess).unwrap_or(u64::MAX);
        self.dropped_since_batch += dropped;
        dropped
    }

    /// Removes up to `max` of the oldest records, and the drop count they are to report.
    pub fn take(&mut self, max: usize) -> (Vec<Captured>, u64) {
        let n = max.min(self.records.len());
        let taken = self.records.drain(..n).collect();
        (taken, std::mem::take(&mut self.dropped_since_batch))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Records the buffer has room for without growing.
    #[cfg(test)]
    fn room(&self) -> usize {
        self.records.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{capture, StreamFacts};
    use crate::config::Settings;
    use crate::host::tests::FakeView;

    fn record(start_ms: u64) -> Captured {
        let settings = Settings::from_json(
            br#"{"collector_cluster": "c", "ingest_token": "t", "hash_salt": "0123456789abcdef"}"#,
        )
        .unwrap();
        let facts = StreamFacts {
            start_ns: start_ms * 1_000_000,
            end_ns: start_ms * 1_000_000,
            ..StreamFacts::default()
        };
        let view = FakeView::default().header(":method", b"GET");
        capture(&view, &settings, &facts, 1).unwrap()
    }

    fn starts(records: &[Captured]) -> Vec<u64> {
        records.iter().map(|r| r.start_ms).collect()
    }

    #[test]
    fn records_come_out_oldest_first_in_batches_of_at_most_max() {
        let mut b = RecordBuffer::new(10);
        for t in 1..=5 {
            b.push(record(t));
        }
        let (first, dropped) = b.take(3);
        assert_eq!((starts(&first), dropped), (vec![1, 2, 3], 0));
        assert_eq!(starts(&b.take(3).0), vec![4, 5]);
        assert!(b.is_empty());
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_it() {
        let mut b = RecordBuffer::new(3);
        let dropped: u64 = (1..=5).map(|t| b.push(record(t))).sum();
        assert_eq!(dropped, 2);
        let (kept, reported) = b.take(10);
        assert_eq!((starts(&kept), reported), (vec![3, 4, 5], 2));
    }

    #[test]
    fn the_drop_count_is_reported_once_then_starts_again_from_zero() {
        let mut b = RecordBuffer::new(1);
        b.push(record(1));
        b.push(record(2));
        assert_eq!(b.take(1).1, 1);
        b.push(record(3));
        assert_eq!(b.take(1).1, 0);
    }

    #[test]
    fn a_full_buffer_has_room_for_its_cap_and_no_more() {
        let mut b = RecordBuffer::new(1000);
        let one = record(1);
        for _ in 0..1500 {
            b.push(one.clone());
        }
        assert_eq!(b.len(), 1000);
        assert_eq!(b.room(), 1000, "not the next power of two");
    }

    #[test]
    fn shrinking_the_cap_drops_the_oldest_past_it() {
        let mut b = RecordBuffer::new(5);
        for t in 1..=5 {
            b.push(record(t));
        }
        assert_eq!(b.set_capacity(2), 3);
        let (kept, reported) = b.take(10);
        assert_eq!((starts(&kept), reported), (vec![4, 5], 3));
    }
}
