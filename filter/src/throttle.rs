//! Throttle decisions: one token bucket per throttled subject per Envoy instance, kept in shared
//! data so every worker VM draws from the same bucket, updated by compare-and-swap.
//!
//! Rates are whole requests an hour (`10/s` is 36,000, `2/m` is 120, `90/h` is 90), so a slow
//! partner quota is as exact as a fast one. The bucket holds [`UNITS`] (3,600,000) units per
//! token: at `per_hour` tokens an hour it refills by exactly `per_hour` units each millisecond,
//! so the arithmetic stays in integers. It starts full (`burst` tokens). A request takes one
//! token or is refused with the time until the next one. A refusal writes nothing; a take is
//! written with the CAS token of the state it was computed from, and recomputed when another
//! worker wrote first.
//!
//! Tolerance: a take never succeeds twice on one state, so across workers the rate holds
//! exactly, with two exceptions. When two workers create a subject's bucket at the same moment
//! (the write to an absent key cannot be conditional), one extra request may pass. When a worker
//! loses the CAS race [`MAX_ATTEMPTS`] times in a row, the request is refused: under that much
//! contention the subject is far over its rate. Keys are per subject and stay for the life of
//! the Envoy process (shared data has no delete): 16 bytes of value each.

use crate::shared::{SetError, SharedStore};
use log::debug;
use plumbline_wire::Subject;

/// CAS attempts before a request is refused.
pub const MAX_ATTEMPTS: usize = 4;
/// `Retry-After` for a throttle whose rate is zero, in seconds.
const RETRY_AFTER_WHEN_ZERO_RATE_S: u32 = 3600;
/// Units of a bucket in one token: the milliseconds of an hour, so `per_hour` units refill a
/// millisecond.
pub const UNITS: u64 = 3_600_000;

/// A bucket's state: units left, as of Unix millisecond `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub units: u64,
    pub at_ms: u64,
}

impl Bucket {
    fn encode(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        let (tokens, at) = out.split_at_mut(8);
        tokens.copy_from_slice(&self.units.to_le_bytes());
        at.copy_from_slice(&self.at_ms.to_le_bytes());
        out
    }

    /// `None` for a value that is not 16 bytes (treated as a new, full bucket).
    fn decode(value: &[u8]) -> Option<Bucket> {
        let tokens: [u8; 8] = value.get(..8)?.try_into().ok()?;
        let at: [u8; 8] = value.get(8..16)?.try_into().ok()?;
        (value.len() == 16).then_some(Bucket {
            units: u64::from_le_bytes(tokens),
            at_ms: u64::from_le_bytes(at),
        })
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Passes; the bucket becomes this state.
    Allowed(Bucket),
    /// Over the rate; the next token comes in this many seconds (at least 1).
    Denied { retry_after_s: u32 },
}

/// Takes one token at `now_ms` from `state` (`None`: a new bucket, full).
pub fn take(state: Option<Bucket>, per_hour: u32, burst: u32, now_ms: u64) -> Take {
    let capacity = u64::from(burst.max(1)) * UNITS;
    let rate = u64::from(per_hour);
    let (units, at_ms) = match state {
        None => (capacity, now_ms),
        Some(b) => {
            let elapsed = now_ms.saturating_sub(b.at_ms);
            let refilled = b.units.saturating_add(elapsed.saturating_mul(rate));
            (refilled.min(capacity), b.at_ms.max(now_ms))
        }
    };
    if units >= UNITS {
        return Take::Allowed(Bucket {
            units: units - UNITS,
            at_ms,
        });
    }
    Take::Denied {
        retry_after_s: retry_after_s(UNITS - units, rate),
    }
}

/// Whole seconds until `missing` units refill at `rate` units a millisecond.
fn retry_after_s(missing: u64, rate: u64) -> u32 {
    if rate == 0 {
        return RETRY_AFTER_WHEN_ZERO_RATE_S;
    }
    let ms = missing.div_ceil(rate);
    u32::try_from(ms.div_ceil(1000).max(1)).unwrap_or(u32::MAX)
}

/// The shared-data key of a subject's bucket.
pub fn bucket_key(subject: &Subject) -> String {
    match subject {
        Subject::Consumer(id) => format!("plumbline.bucket.v2.{id}"),
        Subject::Prefix { addr, bits } => format!("plumbline.bucket.v2.{addr}/{bits}"),
    }
}

/// Takes a token from the subject's shared bucket at `now_ms`.
pub fn take_shared(
    store: &impl SharedStore,
    subject: &Subject,
    per_hour: u32,
    burst: u32,
    now_ms: u64,
) -> Take {
    let key = bucket_key(subject);
    for _ in 0..MAX_ATTEMPTS {
        let (value, cas) = store.get(&key);
        let state = value.as_deref().and_then(Bucket::decode);
        let bucket = match take(state, per_hour, burst, now_ms) {
            Take::Allowed(bucket) => bucket,
            denied => return denied,
        };
        match store.set(&key, &bucket.encode(), cas) {
            Ok(()) => return Take::Allowed(bucket),
            Err(SetError::CasMismatch) => continue,
            Err(SetError::Refused(e)) => {
                // Shared data refused: decide from this worker's view rather than fail traffic.
                debug!("writing throttle bucket {key} failed: {e}");
                return Take::Allowed(bucket);
            }
        }
    }
    Take::Denied { retry_after_s: 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::FakeStore;
    use plumbline_wire::{Addr, ConsumerId};

    fn allowed(t: Take) -> Bucket {
        match t {
            Take::Allowed(b) => b,
            Take::Denied { .. } => panic!("denied"),
        }
    }

    /// Requests an hour at `n` a second.
    const fn per_s(n: u32) -> u32 {
        n * 3600
    }

    /// How many of `requests` evenly spread over `ms` pass a bucket.
    fn passed(per_hour: u32, burst: u32, requests: u64, ms: u64) -> u64 {
        let mut state = None;
        let mut passed = 0;
        for i in 0..requests {
            if let Take::Allowed(b) = take(state, per_hour, burst, i * ms / requests) {
                state = Some(b);
                passed += 1;
            }
        }
        passed
    }

    #[test]
    fn a_new_bucket_starts_full_and_lets_a_burst_through() {
        let mut state = None;
        for _ in 0..5 {
            state = Some(allowed(take(state, per_s(1), 5, 0)));
        }
        assert_eq!(
            take(state, per_s(1), 5, 0),
            Take::Denied { retry_after_s: 1 }
        );
    }

    #[test]
    fn over_ten_seconds_the_rate_holds_to_the_token() {
        // 10 a second with a burst of 10, hammered 1000 times a second for 10 s.
        assert_eq!(passed(per_s(10), 10, 10_000, 10_000), 10 + 100 - 1);
        assert_eq!(passed(per_s(3), 1, 10_000, 10_000), 1 + 30 - 1);
    }

    #[test]
    fn rates_below_one_a_second_hold_too() {
        // 30 a minute, hammered once a second for 10 minutes: the burst, then one every 2 s.
        assert_eq!(passed(1800, 1, 600, 600_000), 1 + 300 - 1);
        // 90 an hour with a burst of 3, asked every 10 s for 2 hours.
        assert_eq!(passed(90, 3, 720, 7_200_000), 3 + 180 - 1);
        // The next of 30 a minute is 2 s away; of 1 an hour, an hour.
        let empty = Some(Bucket { units: 0, at_ms: 0 });
        assert_eq!(take(empty, 1800, 1, 0), Take::Denied { retry_after_s: 2 });
        assert_eq!(
            take(empty, 1, 1, 0),
            Take::Denied {
                retry_after_s: 3600
            }
        );
    }

    #[test]
    fn a_bucket_refills_at_the_rate_and_never_past_the_burst() {
        let b = Bucket { units: 0, at_ms: 0 };
        let later = allowed(take(Some(b), per_s(4), 2, 250));
        assert_eq!(later.units, 0, "250 ms at 4/s is one token");
        let idle = allowed(take(Some(b), per_s(4), 2, 3_600_000));
        assert_eq!(
            idle.units, UNITS,
            "capped at the burst, minus the one taken"
        );
    }

    #[test]
    fn retry_after_counts_whole_seconds_to_the_next_token() {
        let empty = Some(Bucket { units: 0, at_ms: 0 });
        assert_eq!(
            take(empty, per_s(10), 1, 0),
            Take::Denied { retry_after_s: 1 }
        );
        assert_eq!(
            take(empty, per_s(1), 1, 0),
            Take::Denied { retry_after_s: 1 }
        );
        // A rate of 0 (never made by the collector) waits an hour.
        assert_eq!(
            take(empty, 0, 1, 0),
            Take::Denied {
                retry_after_s: 3600
            }
        );
    }

    #[test]
    fn a_clock_behind_the_bucket_refills_nothing_and_keeps_the_later_time() {
        let b = Bucket {
            units: 5 * UNITS / 2,
            at_ms: 1000,
        };
        let after = allowed(take(Some(b), per_s(100), 5, 900));
        assert_eq!(
            after,
            Bucket {
                units: 3 * UNITS / 2,
                at_ms: 1000
            }
        );
    }

    #[test]
    fn a_burst_of_zero_still_lets_one_request_through() {
        assert!(matches!(take(None, per_s(5), 0, 0), Take::Allowed(_)));
    }

    #[test]
    fn bucket_state_round_trips_and_garbage_reads_as_a_new_bucket() {
        let b = Bucket {
            units: 1234,
            at_ms: 1_700_000_000_000,
        };
        assert_eq!(Bucket::decode(&b.encode()), Some(b));
        assert_eq!(Bucket::decode(b"short"), None);
        assert_eq!(Bucket::decode(&[0u8; 17]), None);
    }

    #[test]
    fn workers_sharing_a_bucket_get_the_rate_between_them() {
        let store = FakeStore::default();
        let subject = Subject::Consumer(ConsumerId([1; 16]));
        let mut passed = 0;
        // Four workers, each sending 250 requests a second for 4 s, interleaved.
        for ms in 0..4000u64 {
            if matches!(
                take_shared(&store, &subject, per_s(5), 5, ms),
                Take::Allowed(_)
            ) {
                passed += 1;
            }
        }
        assert_eq!(passed, 5 + 20 - 1);
    }

    #[test]
    fn a_write_by_another_worker_in_between_is_seen_and_not_double_spent() {
        let store = FakeStore::default();
        let subject = Subject::Consumer(ConsumerId([1; 16]));
        assert!(matches!(
            take_shared(&store, &subject, per_s(1), 2, 0),
            Take::Allowed(_)
        ));
        let key = bucket_key(&subject);
        // Another worker takes the last token between this worker's read and write.
        let raced = key.clone();
        *store.interfere.borrow_mut() = Some(Box::new(move |s: &FakeStore| {
            let (value, _) = s.get(&raced);
            let state = value.as_deref().and_then(Bucket::decode);
            if let Take::Allowed(b) = take(state, per_s(1), 2, 0) {
                s.raw_set(&raced, &b.encode());
            }
        }));
        let outcome = take_shared(&store, &subject, per_s(1), 2, 0);
        *store.interfere.borrow_mut() = None;
        assert!(matches!(outcome, Take::Denied { .. }), "{outcome:?}");
    }

    #[test]
    fn a_worker_that_keeps_losing_the_race_refuses_the_request() {
        let store = FakeStore::default();
        let subject = Subject::Consumer(ConsumerId([2; 16]));
        take_shared(&store, &subject, per_s(100), 100, 0);
        let key = bucket_key(&subject);
        *store.interfere.borrow_mut() = Some(Box::new(move |s: &FakeStore| {
            let value = s.get(&key).0.unwrap_or_default();
            s.raw_set(&key, &value);
        }));
        assert_eq!(
            take_shared(&store, &subject, per_s(100), 100, 1),
            Take::Denied { retry_after_s: 1 }
        );
    }

    #[test]
    fn subjects_get_distinct_readable_bucket_keys() {
        let consumer = bucket_key(&Subject::Consumer(ConsumerId([0xab; 16])));
        assert_eq!(consumer, format!("plumbline.bucket.v2.{}", "ab".repeat(16)));
        let prefix = bucket_key(&Subject::Prefix {
            addr: Addr::V4([10, 0, 0, 0]),
            bits: 8,
        });
        assert_eq!(prefix, "plumbline.bucket.v2.10.0.0.0/8");
    }
}
