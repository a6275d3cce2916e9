//! What the decisions a VM holds do to one request: pass it, flag it as would-block (monitor
//! mode, or the local kill-switch `"enforce": false`), answer it with a block status, or answer
//! it 429 when its throttle bucket is empty. Also the JSON body of those answers.
//!
//! Host-free: throttle buckets go through a [`SharedStore`] and time is an argument; the HTTP
//! context makes the host calls.

use crate::decisions::DecisionIndex;
use crate::shared::{SharedStore, Stamp};
use crate::throttle::{take_shared, Take};
use plumbline_wire::{flags, Action, Addr, ConsumerId, Mode};
use serde::Serialize;

/// Status of a block whose decision names none usable.
pub const DEFAULT_BLOCK_STATUS: u16 = 403;
/// Status of a throttled request.
pub const THROTTLE_STATUS: u16 = 429;

/// The decision set a VM enforces: what request contexts read.
#[derive(Debug, Default)]
pub struct Held {
    pub stamp: Stamp,
    pub mode: Mode,
    pub index: DecisionIndex,
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A decision would have refused it; it goes on, flagged.
    WouldBlock {
        decision: u64,
    },
    /// Answered with `status`, never forwarded.
    Block {
        decision: u64,
        status: u16,
    },
    /// Answered 429 with `Retry-After`, never forwarded.
    Throttle {
        decision: u64,
        retry_after_s: u32,
    },
}

impl Verdict {
    /// The record flags this verdict sets.
    pub fn flags(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::WouldBlock { .. } => flags::WOULD_BLOCK,
            Verdict::Block { .. } => flags::BLOCKED | flags::LOCAL_REPLY,
            Verdict::Throttle { .. } => flags::THROTTLED | flags::LOCAL_REPLY,
        }
    }
}

/// Judges a request of `consumer` from `client` at `now_ms`. `enforce` is the filter's local
/// switch: when off, nothing is refused whatever the collector's mode.
pub fn judge(
    held: &Held,
    enforce: bool,
    consumer: Option<ConsumerId>,
    client: Option<Addr>,
    now_ms: u64,
    store: &impl SharedStore,
) -> Verdict {
    let Some(decision) = held.index.lookup(consumer, client, now_ms) else {
        return Verdict::Pass;
    };
    let refuse = enforce && held.mode == Mode::Enforce;
    let id = decision.id;
    match decision.action {
        Action::Block { .. } if !refuse => Verdict::WouldBlock { decision: id },
        Action::Block { status } => Verdict::Block {
            decision: id,
            status: block_status(status),
        },
        Action::Throttle { per_hour, burst } => {
            match take_shared(store, &decision.subject, per_hour, burst, now_ms) {
                Take::Allowed(_) => Verdict::Pass,
                Take::Denied { .. } if !refuse => Verdict::WouldBlock { decision: id },
                Take::Denied { retry_after_s } => Verdict::Throttle {
                    decision: id,
                    retry_after_s,
                },
            }
        }
    }
}

/// A block's status: the decision's when it is a 4xx or 5xx, else 403.
fn block_status(status: u16) -> u16 {
    if (400..=599).contains(&status) {
        status
    } else {
        DEFAULT_BLOCK_STATUS
    }
}

/// An answer Plumbline gives instead of the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    decision: String,
    request_id: String,
}

/// The answer for a refusing verdict (`None` for the others). `request_id` is Envoy's
/// `x-request-id`, as bytes that may not be UTF-8.
pub fn local_reply(verdict: Verdict, request_id: Option<&[u8]>) -> Option<LocalReply> {
    let (status, error, decision, retry_after) = match verdict {
        Verdict::Block { decision, status } => (status, "blocked by policy", decision, None),
        Verdict::Throttle {
            decision,
            retry_after_s,
        } => (
            THROTTLE_STATUS,
            "rate limited by policy",
            decision,
            Some(retry_after_s.to_string()),
        ),
        Verdict::Pass | Verdict::WouldBlock { .. } => return None,
    };
    let body = Body {
        error,
        decision: decision.to_string(),
        request_id: String::from_utf8_lossy(request_id.unwrap_or_default()).into_owned(),
    };
    let body = serde_json::to_vec(&body).unwrap_or_else(|_| br#"{"error":"blocked"}"#.to_vec());
    Some(LocalReply {
        status,
        retry_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::tests::FakeStore;
    use plumbline_wire::{Decision, Subject};

    const NOW: u64 = 1_700_000_000_000;
    const BAD: ConsumerId = ConsumerId([1; 16]);
    const GOOD: ConsumerId = ConsumerId([2; 16]);

    fn held(mode: Mode, action: Action) -> Held {
        let decision = Decision {
            id: 42,
            subject: Subject::Consumer(BAD),
            action,
            expires_at_ms: NOW + 60_000,
        };
        Held {
            stamp: Stamp {
                epoch: 0,
                version: 1,
            },
            mode,
            index: DecisionIndex::build(vec![decision], NOW, 10).index,
        }
    }

    fn verdict(h: &Held, enforce: bool, who: ConsumerId, store: &FakeStore) -> Verdict {
        judge(h, enforce, Some(who), None, NOW, store)
    }

    #[test]
    fn in_enforce_mode_a_blocked_consumer_gets_the_decision_status() {
        let h = held(Mode::Enforce, Action::Block { status: 451 });
        let v = verdict(&h, true, BAD, &FakeStore::default());
        assert_eq!(
            v,
            Verdict::Block {
                decision: 42,
                status: 451
            }
        );
        assert_eq!(v.flags(), flags::BLOCKED | flags::LOCAL_REPLY);
    }

    #[test]
    fn a_block_status_that_is_not_an_error_becomes_403() {
        for status in [0, 200, 302, 600] {
            let h = held(Mode::Enforce, Action::Block { status });
            let v = verdict(&h, true, BAD, &FakeStore::default());
            assert_eq!(
                v,
                Verdict::Block {
                    decision: 42,
                    status: 403
                }
            );
        }
    }

    #[test]
    fn other_consumers_pass_unflagged() {
        let h = held(Mode::Enforce, Action::Block { status: 403 });
        let v = verdict(&h, true, GOOD, &FakeStore::default());
        assert_eq!((v, v.flags()), (Verdict::Pass, 0));
        assert_eq!(
            judge(&h, true, None, None, NOW, &FakeStore::default()),
            Verdict::Pass
        );
    }

    #[test]
    fn in_monitor_mode_a_blocked_consumer_passes_flagged_would_block() {
        let h = held(Mode::Monitor, Action::Block { status: 403 });
        let v = verdict(&h, true, BAD, &FakeStore::default());
        assert_eq!(v, Verdict::WouldBlock { decision: 42 });
        assert_eq!(v.flags(), flags::WOULD_BLOCK);
        assert_eq!(local_reply(v, None), None);
    }

    #[test]
    fn the_local_switch_turns_an_enforced_block_into_would_block() {
        let h = held(Mode::Enforce, Action::Block { status: 403 });
        let v = verdict(&h, false, BAD, &FakeStore::default());
        assert_eq!(v, Verdict::WouldBlock { decision: 42 });
    }

    #[test]
    fn a_throttled_consumer_passes_within_the_rate_and_gets_429_above_it() {
        let h = held(
            Mode::Enforce,
            Action::Throttle {
                per_hour: 7200,
                burst: 2,
            },
        );
        let store = FakeStore::default();
        let verdicts: Vec<Verdict> = (0..3).map(|_| verdict(&h, true, BAD, &store)).collect();
        let throttled = Verdict::Throttle {
            decision: 42,
            retry_after_s: 1,
        };
        assert_eq!(verdicts, vec![Verdict::Pass, Verdict::Pass, throttled]);
        assert_eq!(throttled.flags(), flags::THROTTLED | flags::LOCAL_REPLY);
        let reply = local_reply(throttled, Some(b"r-1")).unwrap();
        assert_eq!(
            (reply.status, reply.retry_after.as_deref()),
            (429, Some("1"))
        );
    }

    #[test]
    fn in_monitor_mode_a_consumer_over_its_rate_is_flagged_not_refused() {
        let h = held(
            Mode::Monitor,
            Action::Throttle {
                per_hour: 3600,
                burst: 1,
            },
        );
        let store = FakeStore::default();
        assert_eq!(verdict(&h, true, BAD, &store), Verdict::Pass);
        assert_eq!(
            verdict(&h, true, BAD, &store),
            Verdict::WouldBlock { decision: 42 }
        );
    }

    #[test]
    fn a_consumer_without_a_throttle_touches_no_shared_bucket() {
        let h = held(
            Mode::Enforce,
            Action::Throttle {
                per_hour: 3600,
                burst: 1,
            },
        );
        let store = FakeStore::default();
        verdict(&h, true, GOOD, &store);
        assert!(store.reads.borrow().is_empty());
    }

    #[test]
    fn the_block_body_is_json_naming_the_decision_and_the_request_id() {
        let v = Verdict::Block {
            decision: 42,
            status: 403,
        };
        let reply = local_reply(v, Some(b"5f1c\"x")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let expected = serde_json::json!({
            "error": "blocked by policy", "decision": "42", "request_id": "5f1c\"x"
        });
        assert_eq!(body, expected);
        assert_eq!((reply.status, reply.retry_after), (403, None));
    }

    #[test]
    fn a_request_id_that_is_not_utf8_or_absent_still_gives_valid_json() {
        let v = Verdict::Block {
            decision: 1,
            status: 403,
        };
        for id in [Some(&[0xff, b'a'][..]), None] {
            let reply = local_reply(v, id).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert!(body["request_id"].is_string(), "{body}");
        }
    }
}
