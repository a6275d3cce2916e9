//! Reporting filter instances (one per Envoy worker VM): node, instance id, last batch time,
//! records, drops and batches, and the sequence window that recognises a retried batch.
//!
//! Each instance keeps its highest sequence number and which of the [`WINDOW`] numbers below
//! it were seen, so a batch retried after a lost reply is acknowledged without being counted
//! twice. A sequence number older than the window is taken as a duplicate too: counting a
//! batch twice is worse than missing a very late one. Instances are kept up to a cap; the one
//! that reported least recently is forgotten first.

use hashbrown::HashMap;

/// Sequence numbers remembered below the highest one.
pub const WINDOW: u64 = 64;

/// Which recent sequence numbers an instance has sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqWindow {
    /// Highest sequence number seen plus one (0: none yet).
    pub next: u64,
    /// Bit `i` set: sequence number `next - 1 - i` was seen.
    pub seen: u64,
}

impl SeqWindow {
    /// Marks `seq` as seen; answers whether it was new.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq >= self.next {
            let shift = (seq - self.next).saturating_add(1);
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.next = seq.saturating_add(1);
            return true;
        }
        let age = self.next - 1 - seq;
        if age >= WINDOW {
            return false;
        }
        let bit = 1u64 << age;
        let new = self.seen & bit == 0;
        self.seen |= bit;
        new
    }
}

/// One reporting filter instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub node: String,
    pub instance: u64,
    /// When the collector last stored a batch from it (Unix ms, the collector's clock).
    pub last_batch_ms: u64,
    pub records: u64,
    pub dropped: u64,
    pub batches: u64,
    pub window: SeqWindow,
    dirty: bool,
}

impl Filter {
    pub fn new(node: &str, instance: u64) -> Self {
        Filter {
            node: node.to_string(),
            instance,
            last_batch_ms: 0,
            records: 0,
            dropped: 0,
            batches: 0,
            window: SeqWindow::default(),
            dirty: false,
        }
    }
}

/// What a batch header says about its sender.
#[derive(Debug, Clone, Copy)]
pub struct BatchHeader<'a> {
    pub node: &'a str,
    pub instance: u64,
    pub seq: u64,
    pub records: u64,
    pub dropped: u64,
}

/// All instances, keyed by (node, instance id).
#[derive(Debug)]
pub struct Filters {
    max: usize,
    map: HashMap<(String, u64), Filter>,
    dirty: Vec<(String, u64)>,
    forgotten: Vec<(String, u64)>,
}

impl Filters {
    pub fn new(max: usize) -> Self {
        Filters {
            max: max.max(1),
            map: HashMap::new(),
            dirty: Vec::new(),
            forgotten: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Filter> {
        self.map.values()
    }

    pub fn get(&self, node: &str, instance: u64) -> Option<&Filter> {
        self.map.get(&(node.to_string(), instance))
    }

    /// Records a batch at `now_ms`; answers `false` (and changes nothing) for a duplicate.
    pub fn batch(&mut self, header: BatchHeader<'_>, now_ms: u64) -> bool {
        let key = (header.node.to_string(), header.instance);
        if !self.map.contains_key(&key) {
            self.make_room();
        }
        let filter = self
            .map
            .entry(key.clone())
            .or_insert_with(|| Filter::new(header.node, header.instance));
        if !filter.window.accept(header.seq) {
            return false;
        }
        filter.last_batch_ms = filter.last_batch_ms.max(now_ms);
        filter.records = filter.records.saturating_add(header.records);
        filter.dropped = filter.dropped.saturating_add(header.dropped);
        filter.batches = filter.batches.saturating_add(1);
        if !filter.dirty {
            filter.dirty = true;
            self.dirty.push(key);
        }
        true
    }

    fn make_room(&mut self) {
        if self.map.len() < self.max {
            return;
        }
        let oldest = self.map.iter().min_by_key(|(_, f)| f.last_batch_ms);
        if let Some(key) = oldest.map(|(k, _)| k.clone()) {
            self.map.remove(&key);
            self.forgotten.push(key);
        }
    }

    /// Puts back an instance read from the store.
    pub fn restore(&mut self, mut filter: Filter) {
        filter.dirty = false;
        self.map
            .insert((filter.node.clone(), filter.instance), filter);
    }

    /// Instances changed and instances forgotten since the last call, for the store.
    pub fn take_changes(&mut self) -> (Vec<&Filter>, Vec<(String, u64)>) {
        let dirty = std::mem::take(&mut self.dirty);
        let forgotten = std::mem::take(&mut self.forgotten);
        for key in &dirty {
            if let Some(filter) = self.map.get_mut(key) {
                filter.dirty = false;
            }
        }
        let changed = dirty.iter().filter_map(|k| self.map.get(k)).collect();
        (changed, forgotten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64) -> BatchHeader<'static> {
        BatchHeader {
            node: "envoy-1",
            instance: 0xabc,
            seq,
            records: 10,
            dropped: 1,
        }
    }

    #[test]
    fn a_retried_batch_is_recognised_and_not_counted_twice() {
        let mut filters = Filters::new(10);
        assert!(filters.batch(header(1), 100));
        assert!(filters.batch(header(2), 200));
        assert!(!filters.batch(header(2), 300));
        assert!(!filters.batch(header(1), 300));
        let filter = filters.get("envoy-1", 0xabc).unwrap();
        assert_eq!((filter.records, filter.dropped, filter.batches), (20, 2, 2));
        assert_eq!(filter.last_batch_ms, 200);
    }

    #[test]
    fn batches_arriving_out_of_order_within_the_window_are_all_counted() {
        let mut window = SeqWindow::default();
        for seq in [5, 3, 4, 10, 6, 0] {
            assert!(window.accept(seq), "{seq}");
        }
        assert!(!window.accept(4));
        assert!(window.accept(200));
        assert!(!window.accept(100), "older than the window counts as seen");
    }

    #[test]
    fn the_least_recent_instance_is_forgotten_past_the_cap() {
        let mut filters = Filters::new(2);
        for (instance, now) in [(1, 10), (2, 20), (3, 30)] {
            let h = BatchHeader {
                instance,
                ..header(0)
            };
            filters.batch(h, now);
        }
        assert_eq!(filters.len(), 2);
        assert!(filters.get("envoy-1", 1).is_none());
        let (_, forgotten) = filters.take_changes();
        assert_eq!(forgotten, vec![("envoy-1".to_string(), 1)]);
    }
}
