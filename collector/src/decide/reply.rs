//! Batch replies without re-encoding the decision set: the set is encoded once per version and
//! every reply that carries it is a short header followed by a copy of those bytes.
//!
//! This relies on postcard's documented, stable format: a struct is its fields in order, and an
//! `Option` is a `0` byte for `None` or a `1` byte followed by the value. The tests check the
//! bytes equal [`BatchReply::encode`]'s.

use plumbline_wire::{DecisionSet, FORMAT_VERSION};
use std::sync::Arc;

/// A decision set's postcard encoding at one version.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    pub version: u64,
    pub bytes: Arc<[u8]>,
}

impl EncodedSet {
    pub fn of(set: &DecisionSet) -> Self {
        let bytes = postcard::to_allocvec(set).unwrap_or_default();
        EncodedSet {
            version: set.version,
            bytes: bytes.into(),
        }
    }
}

/// The encoded [`plumbline_wire::BatchReply`]: counts, the current version, and the encoded
/// set when the filter holds another version.
pub fn encode(accepted: u32, duplicate: bool, version: u64, set: Option<&[u8]>) -> Vec<u8> {
    let header = (FORMAT_VERSION, accepted, duplicate, version);
    let mut out = postcard::to_allocvec(&header).unwrap_or_default();
    match set {
        Some(bytes) => {
            out.reserve_exact(1 + bytes.len());
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_wire::{Action, Addr, BatchReply, ConsumerId, Decision, Mode, Subject};

    fn set(n: u64) -> DecisionSet {
        let decisions = (0..n)
            .map(|i| Decision {
                id: i + 1,
                subject: if i % 2 == 0 {
                    Subject::Consumer(ConsumerId([i as u8; 16]))
                } else {
                    Subject::Prefix {
                        addr: Addr::V4([10, 0, 0, i as u8]),
                        bits: 32,
                    }
                },
                action: Action::Block { status: 403 },
                expires_at_ms: 1_700_000_000_000 + i,
            })
            .collect();
        DecisionSet {
            version: 1_700_000_000_123,
            mode: Mode::Enforce,
            decisions,
        }
    }

    #[test]
    fn a_reply_with_the_cached_set_is_byte_for_byte_the_wire_encoding() {
        let set = set(5);
        let cached = EncodedSet::of(&set);
        let fast = encode(300, false, set.version, Some(&cached.bytes));
        let mut reply = BatchReply::new(300, false, set.version);
        reply.decisions = Some(set);
        assert_eq!(fast, reply.encode());
        assert_eq!(BatchReply::decode(&fast), Ok(reply));
    }

    #[test]
    fn a_reply_without_a_set_is_byte_for_byte_the_wire_encoding() {
        let fast = encode(0, true, u64::MAX, None);
        assert_eq!(fast, BatchReply::new(0, true, u64::MAX).encode());
    }
}
