//! How one VM comes to hold a decision set, and how the VMs of one Envoy agree on it.
//!
//! A set arrives in a collector reply to one VM; that VM publishes it to shared data
//! ([`crate::shared`]) and indexes it. Every VM reads the shared head on each tick (at most
//! every 100 ms) and adopts a newer set from there, so all workers enforce the same set shortly
//! after any one of them hears of it. A VM that holds a newer set than the head (its own
//! publication lost a race) publishes it again, at most once a second. Expired decisions are
//! dropped from the index at most once a second; lookups ignore them in between anyway.
//!
//! When the collector, asked by a batch that said "I hold version X", answers with a set whose
//! version is below X, its decision store went back (it was reset): the VM takes that set under
//! the next epoch, so it replaces the old numbering everywhere. Host-free: time is an argument
//! and shared data goes through [`SharedStore`].

use crate::decisions::DecisionIndex;
use crate::enforce::Held;
use crate::metrics::Tally;
use crate::shared::{encode_set, publish, read_head, read_set, Published, SharedStore, Stamp};
use log::{debug, info, warn};
use plumbline_wire::DecisionSet;
use std::cell::RefCell;
use std::rc::Rc;

/// Least time between two republications of this VM's set, or two expiry sweeps.
const HOUSEKEEPING_MS: u64 = 1000;

/// Decision-set state of one VM.
#[derive(Debug)]
pub struct DecisionSync {
    held: Rc<RefCell<Held>>,
    max_decisions: usize,
    last_heal_ms: u64,
    last_sweep_ms: u64,
    /// A head whose set could not be read, and when; retried after [`HOUSEKEEPING_MS`].
    unreadable: Option<(Stamp, u64)>,
}

impl DecisionSync {
    pub fn new(max_decisions: usize) -> Self {
        DecisionSync {
            held: Rc::new(RefCell::new(Held::default())),
            max_decisions,
            last_heal_ms: 0,
            last_sweep_ms: 0,
            unreadable: None,
        }
    }

    /// The set request contexts read.
    pub fn held(&self) -> Rc<RefCell<Held>> {
        Rc::clone(&self.held)
    }

    pub fn set_max_decisions(&mut self, max: usize) {
        self.max_decisions = max;
    }

    pub fn stamp(&self) -> Stamp {
        self.held.try_borrow().map(|h| h.stamp).unwrap_or_default()
    }

    /// The version batches report as held.
    pub fn version(&self) -> u64 {
        self.stamp().version
    }

    /// Takes the set of a collector reply to a batch that reported `batch_version` as held.
    pub fn on_reply(
        &mut self,
        set: DecisionSet,
        batch_version: u64,
        now_ms: u64,
        store: &impl SharedStore,
        tally: &mut Tally,
    ) {
        let local = self.stamp();
        let stamp = if set.version > local.version {
            Stamp {
                epoch: local.epoch,
                version: set.version,
            }
        } else if set.version < batch_version && set.version != local.version {
            let head_epoch = read_head(store).map_or(0, |h| h.epoch);
            let epoch = local.epoch.max(head_epoch).saturating_add(1);
            info!(
                "the collector's decision set went back from version {batch_version} to {} (its store was reset?); taking it as epoch {epoch}",
                set.version
            );
            Stamp {
                epoch,
                version: set.version,
            }
        } else {
            debug!(
                "ignoring decision set {} (holding {})",
                set.version, local.version
            );
            return;
        };
        match publish(store, stamp, &encode_set(stamp, &set)) {
            Published::AlreadyHeld(shared) if shared > stamp => {
                debug!(
                    "shared data holds a newer decision set than the reply's; adopting it on tick"
                );
                return;
            }
            Published::Contended | Published::Failed => {
                debug!("decision set {} not shared yet; this worker enforces it, the next tick shares it", set.version);
            }
            Published::Written | Published::AlreadyHeld(_) => {}
        }
        self.adopt(stamp, set, now_ms, tally);
    }

    /// Periodic work: expiry sweep, adopting a newer shared set, republishing a lost one.
    pub fn on_tick(&mut self, now_ms: u64, store: &impl SharedStore, tally: &mut Tally) {
        self.sweep(now_ms);
        let local = self.stamp();
        match read_head(store) {
            Some(head) if head > local => self.adopt_shared(head, now_ms, store, tally),
            Some(head) if head < local => self.republish(now_ms, store),
            None if local > Stamp::default() => self.republish(now_ms, store),
            _ => {}
        }
    }

    fn adopt_shared(
        &mut self,
        head: Stamp,
        now_ms: u64,
        store: &impl SharedStore,
        tally: &mut Tally,
    ) {
        if let Some((stamp, at)) = self.unreadable {
            if stamp == head && now_ms < at.saturating_add(HOUSEKEEPING_MS) {
                return;
            }
        }
        if let Some((stamp, set)) = read_set(store) {
            if stamp > self.stamp() {
                self.adopt(stamp, set, now_ms, tally);
            }
        }
        self.unreadable = (self.stamp() < head).then_some((head, now_ms));
    }

    /// Publishes the held set again: shared data shows an older one.
    fn republish(&mut self, now_ms: u64, store: &impl SharedStore) {
        if now_ms < self.last_heal_ms.saturating_add(HOUSEKEEPING_MS) {
            return;
        }
        self.last_heal_ms = now_ms;
        let Ok(held) = self.held.try_borrow() else {
            return;
        };
        let set = DecisionSet {
            version: held.stamp.version,
            mode: held.mode,
            decisions: held.index.decisions().to_vec(),
        };
        let stamp = held.stamp;
        drop(held);
        let outcome = publish(store, stamp, &encode_set(stamp, &set));
        debug!(
            "shared decision set was older than version {}; published again: {outcome:?}",
            stamp.version
        );
    }

    fn adopt(&mut self, stamp: Stamp, set: DecisionSet, now_ms: u64, tally: &mut Tally) {
        let mode = set.mode;
        // The old index goes before the new one is built, so a VM never holds two large sets
        // at once (its memory never shrinks back). No request runs in between: a VM runs one
        // callback at a time.
        if let Ok(mut held) = self.held.try_borrow_mut() {
            held.index = DecisionIndex::default();
        }
        let built = DecisionIndex::build(set.decisions, now_ms, self.max_decisions);
        tally.decision_sets_applied += 1;
        tally.decisions_ignored += built.ignored;
        if built.ignored > 0 {
            warn!(
                "decision set {}: {} decisions ignored (past max_decisions {} or an invalid prefix)",
                stamp.version, built.ignored, self.max_decisions
            );
        }
        info!(
            "decision set {} applied: {} decisions in force, mode {mode:?}",
            stamp.version,
            built.index.len()
        );
        if let Ok(mut held) = self.held.try_borrow_mut() {
            *held = Held {
                stamp,
                mode,
                index: built.index,
            };
        }
    }

    /// Drops expired decisions from the index, so an all-expired set costs requests nothing.
    fn sweep(&mut self, now_ms: u64) {
        if now_ms < self.last_sweep_ms.saturating_add(HOUSEKEEPING_MS) {
            return;
        }
        self.last_sweep_ms = now_ms;
        let Ok(mut held) = self.held.try_borrow_mut() else {
            return;
        };
        if !held.index.has_expired(now_ms) {
            return;
        }
        let index = std::mem::take(&mut held.index);
        let (index, expired) = index.without_expired(now_ms);
        held.index = index;
        debug!("{expired} decisions expired; {} left", held.index.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::{set_of, FakeStore};
    use crate::shared::{create_keys, SET_KEY};
    use plumbline_wire::{Action, ConsumerId, Decision, Mode, Subject};

    const NOW: u64 = 1_700_000_000_000;

    fn vm() -> DecisionSync {
        DecisionSync::new(100)
    }

    fn store() -> FakeStore {
        let store = FakeStore::default();
        create_keys(&store);
        store
    }

    fn blocks(sync: &DecisionSync, who: u8) -> bool {
        let held = sync.held();
        let held = held.borrow();
        held.index
            .lookup(Some(ConsumerId([who; 16])), None, NOW)
            .is_some()
    }

    #[test]
    fn a_set_in_a_reply_reaches_every_other_vm_on_its_next_tick() {
        let (store, mut tally) = (store(), Tally::default());
        let (mut a, mut b) = (vm(), vm());
        a.on_reply(set_of(3, 2), 0, NOW, &store, &mut tally);
        assert_eq!(a.version(), 3);
        assert!(blocks(&a, 1) && !blocks(&b, 1));
        b.on_tick(NOW + 100, &store, &mut tally);
        assert_eq!(b.version(), 3);
        assert!(blocks(&b, 1));
        assert_eq!(tally.decision_sets_applied, 2);
    }

    #[test]
    fn a_set_not_newer_than_the_one_held_is_ignored() {
        let (store, mut tally) = (store(), Tally::default());
        let mut a = vm();
        a.on_reply(set_of(5, 2), 0, NOW, &store, &mut tally);
        a.on_reply(set_of(5, 0), 5, NOW, &store, &mut tally);
        a.on_reply(set_of(4, 0), 3, NOW, &store, &mut tally);
        assert_eq!(a.version(), 5);
        assert!(blocks(&a, 1));
        assert_eq!(tally.decision_sets_applied, 1);
    }

    #[test]
    fn a_late_reply_with_an_older_set_does_not_replace_a_newer_shared_one() {
        let (store, mut tally) = (store(), Tally::default());
        let (mut a, mut b) = (vm(), vm());
        a.on_reply(set_of(7, 2), 0, NOW, &store, &mut tally);
        // B's batch said it held 0; the reply, written before version 7, arrives late.
        b.on_reply(set_of(6, 0), 0, NOW, &store, &mut tally);
        assert_eq!(crate::shared::read_set(&store).unwrap().0.version, 7);
        b.on_tick(NOW + 100, &store, &mut tally);
        assert_eq!(b.version(), 7);
    }

    #[test]
    fn a_collector_that_went_back_is_followed_under_a_new_epoch_by_every_vm() {
        let (store, mut tally) = (store(), Tally::default());
        let (mut a, mut b) = (vm(), vm());
        a.on_reply(set_of(40, 2), 0, NOW, &store, &mut tally);
        b.on_tick(NOW, &store, &mut tally);
        // A batch that reported 40 is answered with version 2: the collector's store was reset.
        a.on_reply(set_of(2, 0), 40, NOW + 1000, &store, &mut tally);
        assert_eq!(
            a.stamp(),
            Stamp {
                epoch: 1,
                version: 2
            }
        );
        assert!(!blocks(&a, 1));
        b.on_tick(NOW + 1100, &store, &mut tally);
        assert_eq!(
            b.stamp(),
            Stamp {
                epoch: 1,
                version: 2
            }
        );
        assert!(!blocks(&b, 1));
    }

    #[test]
    fn a_vm_that_already_followed_a_reset_does_not_start_another_epoch() {
        let (store, mut tally) = (store(), Tally::default());
        let (mut a, mut b) = (vm(), vm());
        a.on_reply(set_of(40, 2), 0, NOW, &store, &mut tally);
        b.on_tick(NOW, &store, &mut tally);
        a.on_reply(set_of(2, 0), 40, NOW + 1000, &store, &mut tally);
        b.on_tick(NOW + 1100, &store, &mut tally);
        // B's own batch, sent while it held 40, is answered after it followed A.
        b.on_reply(set_of(2, 0), 40, NOW + 1200, &store, &mut tally);
        assert_eq!(
            b.stamp(),
            Stamp {
                epoch: 1,
                version: 2
            }
        );
        assert_eq!(
            crate::shared::read_head(&store),
            Some(Stamp {
                epoch: 1,
                version: 2
            })
        );
    }

    #[test]
    fn a_vm_whose_publication_was_lost_publishes_again_within_a_second() {
        let (store, mut tally) = (store(), Tally::default());
        let mut a = vm();
        a.on_reply(set_of(3, 2), 0, NOW, &store, &mut tally);
        // Another worker's late creation of the keys wiped the set and the head.
        store.raw_set(crate::shared::HEAD_KEY, b"");
        store.raw_set(SET_KEY, b"");
        a.on_tick(NOW + 1000, &store, &mut tally);
        assert_eq!(crate::shared::read_head(&store).map(|s| s.version), Some(3));
        let mut b = vm();
        b.on_tick(NOW + 1100, &store, &mut tally);
        assert!(blocks(&b, 1));
    }

    #[test]
    fn a_shared_set_that_cannot_be_read_is_retried_at_most_once_a_second() {
        let (store, mut tally) = (store(), Tally::default());
        let mut a = vm();
        crate::shared::advance_head(
            &store,
            Stamp {
                epoch: 0,
                version: 9,
            },
        );
        store.raw_set(SET_KEY, b"garbage");
        store.reads.borrow_mut().clear();
        for ms in (0..1000).step_by(100) {
            a.on_tick(NOW + ms, &store, &mut tally);
        }
        assert_eq!(store.reads.borrow().get(SET_KEY), Some(&1));
        a.on_tick(NOW + 1000, &store, &mut tally);
        assert_eq!(store.reads.borrow().get(SET_KEY), Some(&2));
        assert_eq!(a.version(), 0, "nothing readable was adopted");
    }

    #[test]
    fn expired_decisions_are_swept_so_the_index_empties() {
        let (store, mut tally) = (store(), Tally::default());
        let mut a = vm();
        let mut set = set_of(1, 1);
        set.decisions[0].expires_at_ms = NOW + 500;
        a.on_reply(set, 0, NOW, &store, &mut tally);
        assert!(!a.held().borrow().index.is_empty());
        a.on_tick(NOW + 1500, &store, &mut tally);
        assert!(a.held().borrow().index.is_empty());
        assert_eq!(a.version(), 1, "the version held stays");
    }

    #[test]
    fn decisions_past_the_cap_are_counted_as_ignored() {
        let (store, mut tally) = (store(), Tally::default());
        let mut a = DecisionSync::new(3);
        a.on_reply(set_of(1, 10), 0, NOW, &store, &mut tally);
        assert_eq!(a.held().borrow().index.len(), 3);
        assert_eq!(tally.decisions_ignored, 7);
    }

    #[test]
    fn the_mode_travels_with_the_set() {
        let (store, mut tally) = (store(), Tally::default());
        let (mut a, mut b) = (vm(), vm());
        let set = DecisionSet {
            version: 2,
            mode: Mode::Monitor,
            decisions: vec![Decision {
                id: 1,
                subject: Subject::Consumer(ConsumerId([1; 16])),
                action: Action::Block { status: 403 },
                expires_at_ms: u64::MAX,
            }],
        };
        a.on_reply(set, 0, NOW, &store, &mut tally);
        b.on_tick(NOW, &store, &mut tally);
        assert_eq!(b.held().borrow().mode, Mode::Monitor);
    }
}
