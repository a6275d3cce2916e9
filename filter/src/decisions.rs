//! The decisions one VM enforces, indexed for the request path: a hash map by consumer id and,
//! per prefix length present, a hash map by masked client address. A lookup costs one hash
//! probe for the consumer plus one per distinct prefix length held (a handful in practice), so
//! it stays constant with 10,000 decisions. Expiry is checked on every lookup against the time
//! passed in, so a decision ends on time whatever the collector does.
//!
//! Pure: no host calls, time is an argument. Built from a wire [`DecisionSet`]'s decisions.

use hashbrown::HashMap;
use plumbline_wire::{Action, Addr, ConsumerId, Decision, Subject};
use std::cmp::Reverse;
use std::hash::Hash;

/// Where a subject's decisions sit in [`DecisionIndex::decisions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

/// A subject normalised for grouping: prefixes masked to their length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Consumer([u8; 16]),
    V4 { bits: u8, net: u32 },
    V6 { bits: u8, net: u128 },
}

/// Decisions of one VM, grouped by subject and indexed.
#[derive(Debug, Default)]
pub struct DecisionIndex {
    /// Every live decision, those of one subject next to each other.
    decisions: Vec<Decision>,
    consumers: HashMap<ConsumerId, Span>,
    /// One map per IPv4 prefix length present, longest first.
    v4: Vec<(u8, HashMap<u32, Span>)>,
    v6: Vec<(u8, HashMap<u128, Span>)>,
    /// Earliest `expires_at_ms` held; `u64::MAX` when empty.
    next_expiry_ms: u64,
}

/// An index and how many decisions of its set were left out.
#[derive(Debug)]
pub struct Built {
    pub index: DecisionIndex,
    /// Decisions past the cap or with a prefix length longer than their address.
    pub ignored: u64,
    /// Decisions already expired at build time.
    pub expired: u64,
}

impl DecisionIndex {
    /// Indexes the decisions still live at `now_ms`, keeping at most `max` of them.
    ///
    /// The index keeps the given vector, filtered and sorted in place: a set of 10,000
    /// decisions is never copied while it is indexed, so a VM's memory (which never shrinks)
    /// stays near one copy of the set and its maps.
    pub fn build(mut decisions: Vec<Decision>, now_ms: u64, max: usize) -> Built {
        let (mut ignored, mut expired, mut kept) = (0u64, 0u64, 0usize);
        decisions.retain(|decision| {
            if decision.expires_at_ms <= now_ms {
                expired += 1;
                false
            } else if kept >= max || key_of(&decision.subject).is_none() {
                ignored += 1;
                false
            } else {
                kept += 1;
                true
            }
        });
        // Stable: decisions of one subject keep the order they came in.
        decisions.sort_by_key(|d| key_of(&d.subject));
        let index = Self::group(decisions);
        Built {
            index,
            ignored,
            expired,
        }
    }

    /// Builds the maps over decisions sorted by key, each of which has one.
    fn group(decisions: Vec<Decision>) -> DecisionIndex {
        let consumers = decisions
            .iter()
            .filter(|d| matches!(d.subject, Subject::Consumer(_)))
            .count();
        let mut index = DecisionIndex {
            next_expiry_ms: decisions
                .iter()
                .map(|d| d.expires_at_ms)
                .min()
                .unwrap_or(u64::MAX),
            consumers: HashMap::with_capacity(consumers),
            ..DecisionIndex::default()
        };
        let mut run: Option<(Key, Span)> = None;
        for (at, decision) in decisions.iter().enumerate() {
            let Some(key) = key_of(&decision.subject) else {
                continue;
            };
            let at = u32::try_from(at).unwrap_or(u32::MAX);
            run = match run {
                Some((k, span)) if k == key => Some((
                    k,
                    Span {
                        len: span.len + 1,
                        ..span
                    },
                )),
                Some((k, span)) => {
                    index.insert(k, span);
                    Some((key, Span { start: at, len: 1 }))
                }
                None => Some((key, Span { start: at, len: 1 })),
            };
        }
        if let Some((k, span)) = run {
            index.insert(k, span);
        }
        index.decisions = decisions;
        index.v4.sort_by_key(|(bits, _)| Reverse(*bits));
        index.v6.sort_by_key(|(bits, _)| Reverse(*bits));
        index
    }

    fn insert(&mut self, key: Key, span: Span) {
        match key {
            Key::Consumer(id) => {
                self.consumers.insert(ConsumerId(id), span);
            }
            Key::V4 { bits, net } => insert_prefix(&mut self.v4, bits, net, span),
            Key::V6 { bits, net } => insert_prefix(&mut self.v6, bits, net, span),
        }
    }

    /// The decision that applies to a request at `now_ms`, if any. When several match (the
    /// consumer's and its address prefixes'), the most severe wins: a block over a throttle, and
    /// between throttles the lowest rate.
    pub fn lookup(
        &self,
        consumer: Option<ConsumerId>,
        client: Option<Addr>,
        now_ms: u64,
    ) -> Option<&Decision> {
        let mut best: Option<&Decision> = None;
        if let Some(span) = consumer.and_then(|c| self.consumers.get(&c)) {
            best = self.strongest(best, *span, now_ms);
        }
        match client {
            Some(Addr::V4(octets)) if !self.v4.is_empty() => {
                let addr = u32::from_be_bytes(octets);
                for (bits, map) in &self.v4 {
                    if let Some(span) = map.get(&(addr & mask_v4(*bits))) {
                        best = self.strongest(best, *span, now_ms);
                    }
                }
            }
            Some(Addr::V6(octets)) if !self.v6.is_empty() => {
                let addr = u128::from_be_bytes(octets);
                for (bits, map) in &self.v6 {
                    if let Some(span) = map.get(&(addr & mask_v6(*bits))) {
                        best = self.strongest(best, *span, now_ms);
                    }
                }
            }
            _ => {}
        }
        best
    }

    fn strongest<'a>(
        &'a self,
        best: Option<&'a Decision>,
        span: Span,
        now_ms: u64,
    ) -> Option<&'a Decision> {
        let start = usize::try_from(span.start).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(span.len).unwrap_or(0));
        let candidates = self.decisions.get(start..end).unwrap_or_default();
        candidates
            .iter()
            .filter(|d| d.expires_at_ms > now_ms)
            .fold(best, |best, d| match best {
                Some(b) if severity(&b.action) >= severity(&d.action) => Some(b),
                _ => Some(d),
            })
    }

    /// No decision held: the request path skips enforcement entirely.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// Whether any decision is about client addresses (the request path then needs the client).
    pub fn has_prefixes(&self) -> bool {
        !self.v4.is_empty() || !self.v6.is_empty()
    }

    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    /// The decisions held, grouped by subject.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Whether some decision has expired at `now_ms` (time to [`DecisionIndex::without_expired`]).
    pub fn has_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.next_expiry_ms
    }

    /// The same index without the decisions expired at `now_ms`, and how many those were.
    pub fn without_expired(self, now_ms: u64) -> (DecisionIndex, u64) {
        let before = self.decisions.len();
        let built = DecisionIndex::build(self.decisions, now_ms, before);
        (built.index, built.expired)
    }
}

/// Adds a prefix to the map of its length, creating that map when absent.
fn insert_prefix<K: Hash + Eq>(
    tables: &mut Vec<(u8, HashMap<K, Span>)>,
    bits: u8,
    net: K,
    span: Span,
) {
    if let Some((_, map)) = tables.iter_mut().find(|(b, _)| *b == bits) {
        map.insert(net, span);
        return;
    }
    let mut map = HashMap::new();
    map.insert(net, span);
    tables.push((bits, map));
}

/// How strongly an action restricts: a block beats any throttle; a lower rate beats a higher.
fn severity(action: &Action) -> (u8, u32) {
    match action {
        Action::Block { .. } => (2, 0),
        Action::Throttle { per_hour, .. } => (1, u32::MAX - per_hour),
    }
}

/// The grouping key of a subject; `None` for a prefix longer than its address.
fn key_of(subject: &Subject) -> Option<Key> {
    Some(match *subject {
        Subject::Consumer(id) => Key::Consumer(id.0),
        Subject::Prefix {
            addr: Addr::V4(octets),
            bits,
        } if bits <= 32 => Key::V4 {
            bits,
            net: u32::from_be_bytes(octets) & mask_v4(bits),
        },
        Subject::Prefix {
            addr: Addr::V6(octets),
            bits,
        } if bits <= 128 => Key::V6 {
            bits,
            net: u128::from_be_bytes(octets) & mask_v6(bits),
        },
        Subject::Prefix { .. } => return None,
    })
}

fn mask_v4(bits: u8) -> u32 {
    u32::MAX
        .checked_shl(32u32.saturating_sub(u32::from(bits)))
        .unwrap_or(0)
}

fn mask_v6(bits: u8) -> u128 {
    u128::MAX
        .checked_shl(128u32.saturating_sub(u32::from(bits)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn consumer(n: u32) -> ConsumerId {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        ConsumerId(id)
    }

    fn decision(id: u64, subject: Subject, action: Action, expires_at_ms: u64) -> Decision {
        Decision {
            id,
            subject,
            action,
            expires_at_ms,
        }
    }

    fn block(id: u64, subject: Subject) -> Decision {
        decision(id, subject, Action::Block { status: 403 }, NOW + 60_000)
    }

    fn throttle(id: u64, subject: Subject, per_hour: u32) -> Decision {
        let action = Action::Throttle { per_hour, burst: 1 };
        decision(id, subject, action, NOW + 60_000)
    }

    fn v4(a: [u8; 4], bits: u8) -> Subject {
        Subject::Prefix {
            addr: Addr::V4(a),
            bits,
        }
    }

    fn v6(text: &str, bits: u8) -> Subject {
        let ip: std::net::Ipv6Addr = text.parse().unwrap();
        Subject::Prefix {
            addr: Addr::V6(ip.octets()),
            bits,
        }
    }

    fn addr6(text: &str) -> Addr {
        Addr::V6(text.parse::<std::net::Ipv6Addr>().unwrap().octets())
    }

    fn index(decisions: Vec<Decision>) -> DecisionIndex {
        DecisionIndex::build(decisions, NOW, 100_000).index
    }

    fn found(index: &DecisionIndex, c: Option<ConsumerId>, a: Option<Addr>) -> Option<u64> {
        index.lookup(c, a, NOW).map(|d| d.id)
    }

    #[test]
    fn a_blocked_consumer_is_found_and_other_consumers_are_not() {
        let idx = index(vec![block(1, Subject::Consumer(consumer(1)))]);
        assert_eq!(found(&idx, Some(consumer(1)), None), Some(1));
        assert_eq!(found(&idx, Some(consumer(2)), None), None);
        assert_eq!(found(&idx, None, Some(Addr::V4([10, 0, 0, 1]))), None);
        assert!(!idx.has_prefixes());
    }

    #[test]
    fn a_decision_applies_until_its_expiry_and_not_from_that_millisecond_on() {
        let d = decision(
            1,
            Subject::Consumer(consumer(1)),
            Action::Block { status: 403 },
            NOW + 10,
        );
        let idx = index(vec![d]);
        assert!(idx.lookup(Some(consumer(1)), None, NOW + 9).is_some());
        assert!(idx.lookup(Some(consumer(1)), None, NOW + 10).is_none());
        assert!(idx.has_expired(NOW + 10) && !idx.has_expired(NOW + 9));
    }

    #[test]
    fn decisions_already_expired_are_left_out_and_counted() {
        let d = decision(
            1,
            Subject::Consumer(consumer(1)),
            Action::Block { status: 403 },
            NOW,
        );
        let built =
            DecisionIndex::build(vec![d, block(2, Subject::Consumer(consumer(2)))], NOW, 10);
        assert_eq!((built.index.len(), built.expired, built.ignored), (1, 1, 0));
    }

    #[test]
    fn an_ipv4_prefix_matches_every_address_inside_it_and_none_outside() {
        let idx = index(vec![block(1, v4([192, 0, 2, 77], 24))]);
        for last in [0, 1, 77, 255] {
            assert_eq!(
                found(&idx, None, Some(Addr::V4([192, 0, 2, last]))),
                Some(1)
            );
        }
        assert_eq!(found(&idx, None, Some(Addr::V4([192, 0, 3, 1]))), None);
        assert_eq!(
            found(&idx, None, Some(addr6("::ffff:c000:201"))),
            None,
            "v6 never matches v4"
        );
        assert!(idx.has_prefixes());
    }

    #[test]
    fn an_ipv4_host_route_matches_only_that_address() {
        let idx = index(vec![block(1, v4([127, 0, 0, 1], 32))]);
        assert_eq!(found(&idx, None, Some(Addr::V4([127, 0, 0, 1]))), Some(1));
        assert_eq!(found(&idx, None, Some(Addr::V4([127, 0, 0, 2]))), None);
    }

    #[test]
    fn an_ipv6_prefix_matches_inside_it_including_across_a_byte_boundary() {
        let idx = index(vec![
            block(1, v6("2001:db8:abcd::", 44)),
            block(2, v6("::1", 128)),
        ]);
        assert_eq!(
            found(&idx, None, Some(addr6("2001:db8:abcf:ffff::1"))),
            Some(1)
        );
        assert_eq!(found(&idx, None, Some(addr6("2001:db8:abd0::1"))), None);
        assert_eq!(found(&idx, None, Some(addr6("::1"))), Some(2));
        assert_eq!(found(&idx, None, Some(addr6("::2"))), None);
        assert_eq!(found(&idx, None, Some(Addr::V4([32, 1, 13, 184]))), None);
    }

    #[test]
    fn a_zero_length_prefix_matches_every_address_of_its_family() {
        let idx = index(vec![block(1, v4([0, 0, 0, 0], 0))]);
        assert_eq!(found(&idx, None, Some(Addr::V4([8, 8, 8, 8]))), Some(1));
        assert_eq!(found(&idx, None, Some(addr6("2001:db8::1"))), None);
    }

    #[test]
    fn a_prefix_longer_than_its_address_is_ignored_and_counted() {
        let built = DecisionIndex::build(
            vec![block(1, v4([10, 0, 0, 0], 33)), block(2, v6("::", 129))],
            NOW,
            10,
        );
        assert_eq!((built.index.len(), built.ignored), (0, 2));
        assert!(built.index.is_empty());
    }

    #[test]
    fn decisions_past_the_cap_are_ignored_and_counted() {
        let all = (0..10)
            .map(|i| block(i, Subject::Consumer(consumer(i as u32))))
            .collect();
        let built = DecisionIndex::build(all, NOW, 4);
        assert_eq!((built.index.len(), built.ignored), (4, 6));
    }

    #[test]
    fn a_block_wins_over_a_throttle_whichever_subject_carries_it() {
        let idx = index(vec![
            throttle(1, Subject::Consumer(consumer(1)), 10),
            block(2, v4([10, 0, 0, 0], 8)),
        ]);
        let hit = found(&idx, Some(consumer(1)), Some(Addr::V4([10, 1, 2, 3])));
        assert_eq!(hit, Some(2));
        let outside = found(&idx, Some(consumer(1)), Some(Addr::V4([11, 1, 2, 3])));
        assert_eq!(outside, Some(1));
    }

    #[test]
    fn between_throttles_the_lowest_rate_wins() {
        let idx = index(vec![
            throttle(1, Subject::Consumer(consumer(1)), 50),
            throttle(2, Subject::Consumer(consumer(1)), 5),
            throttle(3, v4([10, 0, 0, 0], 16), 20),
        ]);
        assert_eq!(
            found(&idx, Some(consumer(1)), Some(Addr::V4([10, 0, 9, 9]))),
            Some(2)
        );
    }

    #[test]
    fn when_the_stronger_decision_expires_the_weaker_one_applies() {
        let c = Subject::Consumer(consumer(1));
        let short_block = decision(1, c, Action::Block { status: 403 }, NOW + 100);
        let idx = index(vec![short_block, throttle(2, c, 5)]);
        assert_eq!(
            idx.lookup(Some(consumer(1)), None, NOW).map(|d| d.id),
            Some(1)
        );
        assert_eq!(
            idx.lookup(Some(consumer(1)), None, NOW + 100).map(|d| d.id),
            Some(2)
        );
    }

    #[test]
    fn removing_expired_decisions_keeps_the_others_and_can_empty_the_index() {
        let c = Subject::Consumer(consumer(1));
        let soon = decision(1, c, Action::Block { status: 403 }, NOW + 100);
        let later = decision(
            2,
            v4([10, 0, 0, 1], 32),
            Action::Block { status: 403 },
            NOW + 200,
        );
        let idx = index(vec![soon, later]);
        let (idx, removed) = idx.without_expired(NOW + 150);
        assert_eq!((idx.len(), removed), (1, 1));
        assert_eq!(found(&idx, None, Some(Addr::V4([10, 0, 0, 1]))), Some(2));
        let (idx, removed) = idx.without_expired(NOW + 200);
        assert_eq!((idx.len(), removed), (0, 1));
        assert!(idx.is_empty() && !idx.has_prefixes());
    }

    #[test]
    fn ten_thousand_decisions_are_all_found_with_one_probe_per_prefix_length() {
        let mut all: Vec<Decision> = (0..9_000)
            .map(|i| block(u64::from(i), Subject::Consumer(consumer(i))))
            .collect();
        all.extend((0..1_000u32).map(|i| {
            let [_, _, b, c] = i.to_be_bytes();
            block(100_000 + u64::from(i), v4([10, 9, b, c], 32))
        }));
        let idx = index(all);
        assert_eq!(idx.len(), 10_000);
        assert_eq!(idx.v4.len(), 1, "one table for all the /32s");
        for i in (0..9_000).step_by(97) {
            assert_eq!(found(&idx, Some(consumer(i)), None), Some(u64::from(i)));
        }
        assert_eq!(
            found(&idx, None, Some(Addr::V4([10, 9, 3, 231]))),
            Some(100_999)
        );
        assert_eq!(
            found(&idx, Some(consumer(9_001)), Some(Addr::V4([10, 9, 4, 0]))),
            None
        );
    }
}
