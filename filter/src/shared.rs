//! Envoy's proxy-wasm shared data as the filter uses it: one key/value store per Envoy process
//! (per `vm_id`), seen by every worker VM, with compare-and-swap writes, no delete and no listing.
//!
//! The decision set lives under two fixed keys, so the store never grows with new versions:
//!
//! - [`HEAD_KEY`]: the [`Stamp`] (epoch, version) of the newest set published, 12 bytes that
//!   every VM reads on each tick;
//! - [`SET_KEY`]: that stamp followed by the whole [`DecisionSet`] as the wire encodes it, read
//!   only when the head is newer than what the VM holds.
//!
//! Every write is a compare-and-swap against the value just read, and happens only when the
//! stamp written is newer than the stamp read, so an older set never replaces a newer one.
//! The set key is written before the head; a reader trusts the stamp inside the set value, not
//! the head. Both keys are created empty when a VM starts, before any set can be published,
//! because a write to an absent key cannot be conditional.
//!
//! The host sits behind [`SharedStore`], so all of this runs in native unit tests.

use log::debug;
use plumbline_wire::DecisionSet;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Key of the newest published stamp. The `v1` names this layout.
pub const HEAD_KEY: &str = "plumbline.decisions.v1.head";
/// Key of the newest published set (stamp, then the set).
pub const SET_KEY: &str = "plumbline.decisions.v1.set";
/// Compare-and-swap attempts before a writer gives up for now.
pub const MAX_CAS_ATTEMPTS: usize = 8;

/// Orders decision sets: by epoch, then by the collector's version. The epoch starts at 0 and
/// grows only when a VM sees the collector go back to a lower version (its store was reset), so
/// that the collector's lower-numbered set can still replace the filter's older, higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Stamp {
    pub epoch: u32,
    pub version: u64,
}

impl Stamp {
    /// Encoded size: epoch then version, little-endian.
    pub const LEN: usize = 12;

    pub fn encode(self) -> [u8; Stamp::LEN] {
        let mut out = [0u8; Stamp::LEN];
        let (epoch, version) = out.split_at_mut(4);
        epoch.copy_from_slice(&self.epoch.to_le_bytes());
        version.copy_from_slice(&self.version.to_le_bytes());
        out
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// The value changed since it was read.
    CasMismatch,
    /// Any other refusal by the host.
    Refused(String),
}

/// Shared data as the host offers it.
pub trait SharedStore {
    /// The value and its CAS token; `(None, None)` when absent or unreadable, `(None, Some(_))`
    /// for an empty value.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Writes `value` if the key's token is still `cas` (`None`: unconditionally).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
}

/// Envoy's shared data, through the `hostcalls` functions that return `Result`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match hostcalls::get_shared_data(key) {
            Ok(found) => found,
            Err(status) => {
                debug!("reading shared data {key} failed: {status:?}");
                (None, None)
            }
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(|status| match status {
            Status::CasMismatch => SetError::CasMismatch,
            other => SetError::Refused(format!("{other:?}")),
        })
    }
}

/// Creates the two keys, empty, where they do not exist yet. Called when a VM starts. A key
/// exists when it has a CAS token (Envoy hands an empty value back as no value).
pub fn create_keys(store: &impl SharedStore) {
    for key in [HEAD_KEY, SET_KEY] {
        if store.get(key).1.is_none() {
            if let Err(e) = store.set(key, &[], None) {
                debug!("creating shared data {key} failed: {e:?}");
            }
        }
    }
}

/// The stamp a value starts with; `None` for a value too short to hold one.
pub fn stamp_of(value: &[u8]) -> Option<Stamp> {
    let epoch: [u8; 4] = value.get(..4)?.try_into().ok()?;
    let version: [u8; 8] = value.get(4..Stamp::LEN)?.try_into().ok()?;
    Some(Stamp {
        epoch: u32::from_le_bytes(epoch),
        version: u64::from_le_bytes(version),
    })
}

/// The stamp of the newest published set; `None` when nothing was published.
pub fn read_head(store: &impl SharedStore) -> Option<Stamp> {
    store.get(HEAD_KEY).0.as_deref().and_then(stamp_of)
}

/// The published set with its stamp; `None` when absent or unreadable.
pub fn read_set(store: &impl SharedStore) -> Option<(Stamp, DecisionSet)> {
    let value = store.get(SET_KEY).0?;
    decode_set(&value)
}

/// The value stored under [`SET_KEY`] for a set: the stamp, then the set as the wire encodes it.
pub fn encode_set(stamp: Stamp, set: &DecisionSet) -> Vec<u8> {
    let mut value = stamp.encode().to_vec();
    value.extend_from_slice(&set.encode());
    value
}

/// Reads a [`SET_KEY`] value; a value whose stamp and set disagree is refused.
pub fn decode_set(value: &[u8]) -> Option<(Stamp, DecisionSet)> {
    let stamp = stamp_of(value)?;
    let set = DecisionSet::decode(value.get(Stamp::LEN..)?).ok()?;
    (stamp.version == set.version).then_some((stamp, set))
}

/// What became of a publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// The set is now the shared one.
    Written,
    /// Shared data already held this stamp or a newer one (given).
    AlreadyHeld(Stamp),
    /// Other writers kept changing the value; the next tick tries again.
    Contended,
    /// The host refused the write.
    Failed,
}

/// Publishes an encoded set (from [`encode_set`]) unless shared data holds a newer or equal one,
/// then moves the head forward to it.
pub fn publish(store: &impl SharedStore, stamp: Stamp, value: &[u8]) -> Published {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (current, cas) = store.get(SET_KEY);
        if let Some(held) = current.as_deref().and_then(stamp_of) {
            if held >= stamp {
                advance_head(store, held);
                return Published::AlreadyHeld(held);
            }
        }
        match store.set(SET_KEY, value, cas) {
            Ok(()) => {
                advance_head(store, stamp);
                return Published::Written;
            }
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Refused(e)) => {
                debug!("writing the shared decision set failed: {e}");
                return Published::Failed;
            }
        }
    }
    Published::Contended
}

/// Moves the head to `stamp` unless it already shows that stamp or a newer one.
pub fn advance_head(store: &impl SharedStore, stamp: Stamp) -> bool {
    let value = stamp.encode();
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (current, cas) = store.get(HEAD_KEY);
        if current.as_deref().and_then(stamp_of) >= Some(stamp) {
            return true;
        }
        match store.set(HEAD_KEY, &value, cas) {
            Ok(()) => return true,
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Refused(e)) => {
                debug!("writing the shared decision head failed: {e}");
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use plumbline_wire::{Action, ConsumerId, Decision, Mode, Subject};
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    /// Another worker's writes, run before each write of the worker under test.
    pub type Interference = Box<dyn FnMut(&FakeStore)>;

    /// Shared data as Envoy implements it: a token per write, CAS checked only on existing keys,
    /// a write with no token always accepted, an empty value read back as no value. `interfere` runs before each write, as another
    /// worker writing in between would.
    #[derive(Default)]
    pub struct FakeStore {
        map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        next_cas: Cell<u32>,
        pub interfere: RefCell<Option<Interference>>,
        pub writes: Cell<usize>,
        pub reads: RefCell<HashMap<String, usize>>,
    }

    impl FakeStore {
        pub fn raw_set(&self, key: &str, value: &[u8]) {
            let cas = self.next_cas.get() + 1;
            self.next_cas.set(cas);
            self.map
                .borrow_mut()
                .insert(key.to_string(), (value.to_vec(), cas));
        }
    }

    impl SharedStore for FakeStore {
        fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            *self.reads.borrow_mut().entry(key.to_string()).or_default() += 1;
            match self.map.borrow().get(key) {
                Some((value, cas)) if value.is_empty() => (None, Some(*cas)),
                Some((value, cas)) => (Some(value.clone()), Some(*cas)),
                None => (None, None),
            }
        }

        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
            let hook = self.interfere.borrow_mut().take();
            if let Some(mut hook) = hook {
                hook(self);
                *self.interfere.borrow_mut() = Some(hook);
            }
            let current = self.map.borrow().get(key).map(|(_, c)| *c);
            if let (Some(current), Some(cas)) = (current, cas) {
                if current != cas {
                    return Err(SetError::CasMismatch);
                }
            }
            self.writes.set(self.writes.get() + 1);
            self.raw_set(key, value);
            Ok(())
        }
    }

    pub fn set_of(version: u64, consumers: u8) -> DecisionSet {
        let decisions = (0..consumers)
            .map(|i| Decision {
                id: u64::from(i) + 1,
                subject: Subject::Consumer(ConsumerId([i; 16])),
                action: Action::Block { status: 403 },
                expires_at_ms: u64::MAX,
            })
            .collect();
        DecisionSet {
            version,
            mode: Mode::Enforce,
            decisions,
        }
    }

    fn stamp(epoch: u32, version: u64) -> Stamp {
        Stamp { epoch, version }
    }

    fn publish_set(store: &FakeStore, s: Stamp) -> Published {
        publish(store, s, &encode_set(s, &set_of(s.version, 2)))
    }

    #[test]
    fn stamps_order_by_epoch_first_then_version() {
        assert!(stamp(0, 9) < stamp(0, 10));
        assert!(stamp(0, 900) < stamp(1, 3));
        assert_eq!(Stamp::default(), stamp(0, 0));
    }

    #[test]
    fn a_published_set_reads_back_with_its_stamp_and_moves_the_head() {
        let store = FakeStore::default();
        create_keys(&store);
        assert_eq!(read_head(&store), None, "created keys are empty");
        assert_eq!(publish_set(&store, stamp(0, 3)), Published::Written);
        assert_eq!(read_head(&store), Some(stamp(0, 3)));
        let (s, set) = read_set(&store).unwrap();
        assert_eq!((s, set), (stamp(0, 3), set_of(3, 2)));
    }

    #[test]
    fn an_older_set_never_replaces_a_newer_one() {
        let store = FakeStore::default();
        create_keys(&store);
        publish_set(&store, stamp(0, 7));
        let older = publish_set(&store, stamp(0, 5));
        assert_eq!(older, Published::AlreadyHeld(stamp(0, 7)));
        assert_eq!(read_set(&store).unwrap().0, stamp(0, 7));
        assert_eq!(read_head(&store), Some(stamp(0, 7)));
    }

    #[test]
    fn publishing_the_stamp_already_held_writes_nothing() {
        let store = FakeStore::default();
        create_keys(&store);
        publish_set(&store, stamp(0, 7));
        let writes = store.writes.get();
        assert_eq!(
            publish_set(&store, stamp(0, 7)),
            Published::AlreadyHeld(stamp(0, 7))
        );
        assert_eq!(store.writes.get(), writes);
    }

    #[test]
    fn a_newer_set_written_between_read_and_write_wins_the_race() {
        let store = FakeStore::default();
        create_keys(&store);
        publish_set(&store, stamp(0, 1));
        // Another worker publishes version 9 just before this worker's write of version 5.
        *store.interfere.borrow_mut() = Some(Box::new(|s: &FakeStore| {
            if s.get(SET_KEY).0.as_deref().and_then(stamp_of) < Some(stamp(0, 9)) {
                s.raw_set(SET_KEY, &encode_set(stamp(0, 9), &set_of(9, 1)));
            }
        }));
        let outcome = publish_set(&store, stamp(0, 5));
        *store.interfere.borrow_mut() = None;
        assert_eq!(outcome, Published::AlreadyHeld(stamp(0, 9)));
        assert_eq!(read_set(&store).unwrap().0, stamp(0, 9));
        assert_eq!(
            read_head(&store),
            Some(stamp(0, 9)),
            "the head follows the set"
        );
    }

    #[test]
    fn an_older_head_written_late_does_not_move_the_head_back() {
        let store = FakeStore::default();
        create_keys(&store);
        publish_set(&store, stamp(0, 8));
        assert!(advance_head(&store, stamp(0, 4)));
        assert_eq!(read_head(&store), Some(stamp(0, 8)));
    }

    #[test]
    fn a_writer_that_keeps_losing_the_race_gives_up_without_writing() {
        let store = FakeStore::default();
        create_keys(&store);
        *store.interfere.borrow_mut() = Some(Box::new(|s: &FakeStore| s.raw_set(SET_KEY, b"")));
        assert_eq!(publish_set(&store, stamp(0, 2)), Published::Contended);
    }

    #[test]
    fn a_higher_epoch_replaces_a_higher_version_of_an_older_epoch() {
        let store = FakeStore::default();
        create_keys(&store);
        publish_set(&store, stamp(0, 40));
        assert_eq!(publish_set(&store, stamp(1, 2)), Published::Written);
        assert_eq!(read_head(&store), Some(stamp(1, 2)));
    }

    #[test]
    fn a_second_vm_starting_does_not_rewrite_the_created_keys() {
        let store = FakeStore::default();
        create_keys(&store);
        let writes = store.writes.get();
        create_keys(&store);
        assert_eq!(store.writes.get(), writes);
    }

    #[test]
    fn creating_the_keys_again_keeps_what_was_published() {
        let store = FakeStore::default();
        create_keys(&store);
        publish_set(&store, stamp(0, 3));
        create_keys(&store);
        assert_eq!(read_head(&store), Some(stamp(0, 3)));
        assert!(read_set(&store).is_some());
    }

    #[test]
    fn garbage_or_inconsistent_set_values_are_not_read_as_sets() {
        assert_eq!(decode_set(b"\xff\xff\xff"), None);
        let mismatched = encode_set(stamp(0, 4), &set_of(5, 1));
        assert_eq!(decode_set(&mismatched), None);
        let mut trailing = encode_set(stamp(0, 5), &set_of(5, 1));
        trailing.push(0);
        assert_eq!(decode_set(&trailing), None);
        assert_eq!(stamp_of(b""), None);
        assert_eq!(
            stamp_of(&stamp(3, 1 << 40).encode()),
            Some(stamp(3, 1 << 40))
        );
    }
}
