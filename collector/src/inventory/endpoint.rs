//! The endpoint table: one row per (host, method, path template) with its counters and its
//! exact set of consumers, plus the bookkeeping the store needs to write only what changed.
//!
//! Endpoint indices are stable for the life of the data directory and never reused, so the
//! store can key rows by them. Merging two endpoints (after a position became a parameter)
//! keeps the target's index and removes the source.

use hashbrown::HashSet;

/// Index of an endpoint in the table (and its row id in the store).
pub type EndpointIdx = u32;
/// Index of a consumer in [`crate::consumers::Consumers`].
pub type ConsumerIdx = u32;

/// Calls per status class: 2xx, 3xx, 4xx, 5xx.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts(pub [u64; 4]);

impl StatusCounts {
    /// Adds `weight` calls answered with `status`; other classes (1xx, 0) are not counted.
    pub fn add(&mut self, status: u16, weight: u64) {
        if let 200..=599 = status {
            let class = usize::from(status / 100 - 2);
            self.0[class] = self.0[class].saturating_add(weight);
        }
    }

    fn merge(&mut self, other: &StatusCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }
}

/// One endpoint: host + method + path template and what was seen of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: Box<str>,
    pub method: Box<str>,
    pub path: String,
    /// Sum of record weights.
    pub calls: u64,
    pub status: StatusCounts,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub consumers: HashSet<ConsumerIdx>,
    dirty: bool,
}

impl Endpoint {
    pub fn new(host: &str, method: &str, path: String) -> Self {
        Endpoint {
            host: host.into(),
            method: method.into(),
            path,
            calls: 0,
            status: StatusCounts::default(),
            first_seen_ms: u64::MAX,
            last_seen_ms: 0,
            consumers: HashSet::new(),
            dirty: true,
        }
    }

    fn touch(&mut self, time_ms: u64) {
        self.first_seen_ms = self.first_seen_ms.min(time_ms);
        self.last_seen_ms = self.last_seen_ms.max(time_ms);
    }
}

/// What one request adds to an endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub status: u16,
    pub weight: u64,
    pub time_ms: u64,
    pub consumer: Option<ConsumerIdx>,
}

/// All endpoints, with change tracking for the store.
#[derive(Debug, Default)]
pub struct EndpointTable {
    slots: Vec<Option<Endpoint>>,
    live: usize,
    dirty: Vec<EndpointIdx>,
    removed: Vec<EndpointIdx>,
    new_pairs: Vec<(EndpointIdx, ConsumerIdx)>,
    lost: Vec<ConsumerIdx>,
    /// Endpoints whose template changed `(idx, idx)` or that were merged `(from, into)`.
    renamed: Vec<(EndpointIdx, EndpointIdx)>,
}

impl EndpointTable {
    /// Number of endpoints.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn get(&self, idx: EndpointIdx) -> Option<&Endpoint> {
        self.slots.get(idx as usize).and_then(Option::as_ref)
    }

    pub fn iter(&self) -> impl Iterator<Item = (EndpointIdx, &Endpoint)> {
        let live = self.slots.iter().enumerate();
        live.filter_map(|(i, e)| Some((i as EndpointIdx, e.as_ref()?)))
    }

    /// Adds an endpoint and returns its index.
    pub fn create(&mut self, endpoint: Endpoint) -> EndpointIdx {
        let idx = self.slots.len() as EndpointIdx;
        self.slots.push(Some(endpoint));
        self.live += 1;
        self.dirty.push(idx);
        idx
    }

    /// Puts back an endpoint read from the store under its stored index.
    pub fn restore(&mut self, idx: EndpointIdx, mut endpoint: Endpoint) {
        let slot = idx as usize;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        endpoint.dirty = false;
        if self.slots[slot].replace(endpoint).is_none() {
            self.live += 1;
        }
    }

    /// Puts back a stored (endpoint, consumer) pair; answers whether it was new.
    pub fn restore_pair(&mut self, idx: EndpointIdx, consumer: ConsumerIdx) -> bool {
        match self.slots.get_mut(idx as usize).and_then(Option::as_mut) {
            Some(endpoint) => endpoint.consumers.insert(consumer),
            None => false,
        }
    }

    /// Counts a request; answers whether its consumer is new to this endpoint.
    pub fn hit(&mut self, idx: EndpointIdx, hit: Hit) -> bool {
        let Some(endpoint) = self.slots.get_mut(idx as usize).and_then(Option::as_mut) else {
            return false;
        };
        endpoint.calls = endpoint.calls.saturating_add(hit.weight);
        endpoint.status.add(hit.status, hit.weight);
        endpoint.touch(hit.time_ms);
        mark(&mut self.dirty, endpoint, idx);
        let Some(consumer) = hit.consumer else {
            return false;
        };
        let new = endpoint.consumers.insert(consumer);
        if new {
            self.new_pairs.push((idx, consumer));
        }
        new
    }

    /// Folds endpoint `from` into `into`: sums, time bounds, union of consumers. A consumer
    /// that used both now uses one endpoint fewer; it is reported by [`Self::take_lost`].
    pub fn merge(&mut self, from: EndpointIdx, into: EndpointIdx) {
        if from == into {
            return;
        }
        let Some(source) = self.slots.get_mut(from as usize).and_then(Option::take) else {
            return;
        };
        self.live -= 1;
        self.removed.push(from);
        let Some(target) = self.slots.get_mut(into as usize).and_then(Option::as_mut) else {
            return;
        };
        target.calls = target.calls.saturating_add(source.calls);
        target.status.merge(&source.status);
        target.first_seen_ms = target.first_seen_ms.min(source.first_seen_ms);
        target.last_seen_ms = target.last_seen_ms.max(source.last_seen_ms);
        for consumer in source.consumers {
            if target.consumers.insert(consumer) {
                self.new_pairs.push((into, consumer));
            } else {
                self.lost.push(consumer);
            }
        }
        mark(&mut self.dirty, target, into);
        self.renamed.push((from, into));
    }

    /// Gives an endpoint its (re-rendered) template.
    pub fn set_path(&mut self, idx: EndpointIdx, path: &str) {
        if let Some(endpoint) = self.slots.get_mut(idx as usize).and_then(Option::as_mut) {
            if endpoint.path != path {
                endpoint.path.clear();
                endpoint.path.push_str(path);
                mark(&mut self.dirty, endpoint, idx);
                self.renamed.push((idx, idx));
            }
        }
    }

    /// Consumers that lost an endpoint through merges since the last call.
    pub fn take_lost(&mut self) -> Vec<ConsumerIdx> {
        std::mem::take(&mut self.lost)
    }

    /// Whether merges left anything to report.
    pub fn has_lost(&self) -> bool {
        !self.lost.is_empty()
    }

    /// Endpoints renamed since the last call: `(idx, idx)` for a template that changed,
    /// `(from, into)` for an endpoint merged into another (named by `into` now).
    pub fn take_renamed(&mut self) -> Vec<(EndpointIdx, EndpointIdx)> {
        std::mem::take(&mut self.renamed)
    }

    pub fn has_renamed(&self) -> bool {
        !self.renamed.is_empty()
    }

    /// The changes since the last call, for the store: changed endpoints (live ones), removed
    /// indices, and new (endpoint, consumer) pairs whose endpoint still exists.
    pub fn take_changes(&mut self) -> Changes<'_> {
        let dirty = std::mem::take(&mut self.dirty);
        for idx in &dirty {
            if let Some(Some(endpoint)) = self.slots.get_mut(*idx as usize) {
                endpoint.dirty = false;
            }
        }
        let mut pairs = std::mem::take(&mut self.new_pairs);
        pairs.retain(|(e, _)| matches!(self.slots.get(*e as usize), Some(Some(_))));
        let removed = std::mem::take(&mut self.removed);
        Changes {
            table: self,
            dirty,
            removed,
            pairs,
        }
    }
}

/// Changes handed to the store; `table` resolves the changed indices.
pub struct Changes<'a> {
    pub table: &'a EndpointTable,
    pub dirty: Vec<EndpointIdx>,
    pub removed: Vec<EndpointIdx>,
    pub pairs: Vec<(EndpointIdx, ConsumerIdx)>,
}

fn mark(dirty: &mut Vec<EndpointIdx>, endpoint: &mut Endpoint, idx: EndpointIdx) {
    if !endpoint.dirty {
        endpoint.dirty = true;
        dirty.push(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(consumer: Option<ConsumerIdx>, status: u16) -> Hit {
        Hit {
            status,
            weight: 1,
            time_ms: 1_000,
            consumer,
        }
    }

    #[test]
    fn status_classes_count_2xx_to_5xx_and_ignore_others() {
        let mut counts = StatusCounts::default();
        for status in [200, 204, 301, 404, 503, 0, 101, 600] {
            counts.add(status, 1);
        }
        assert_eq!(counts.0, [2, 1, 1, 1]);
    }

    #[test]
    fn merging_sums_calls_and_unions_consumers() {
        let mut table = EndpointTable::default();
        let a = table.create(Endpoint::new("h", "GET", "/a".into()));
        let b = table.create(Endpoint::new("h", "GET", "/b".into()));
        table.hit(a, hit(Some(1), 200));
        table.hit(b, hit(Some(1), 500));
        table.hit(b, hit(Some(2), 200));
        table.merge(b, a);
        let merged = table.get(a).unwrap();
        assert_eq!(merged.calls, 3);
        assert_eq!(merged.status.0, [2, 0, 0, 1]);
        assert_eq!(merged.consumers.len(), 2);
        assert_eq!(table.take_lost(), vec![1]);
        assert_eq!(table.take_renamed(), vec![(b, a)]);
        assert!(table.get(b).is_none());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn changes_skip_pairs_of_removed_endpoints() {
        let mut table = EndpointTable::default();
        let a = table.create(Endpoint::new("h", "GET", "/a".into()));
        let b = table.create(Endpoint::new("h", "GET", "/b".into()));
        table.hit(b, hit(Some(7), 200));
        table.merge(b, a);
        let changes = table.take_changes();
        assert_eq!(changes.removed, vec![b]);
        assert_eq!(changes.pairs, vec![(a, 7)]);
    }
}
