//! Delivery of batches to the collector: one batch in flight at a time, a failed batch retried
//! with capped exponential backoff under the same sequence number, replies classified.
//!
//! Pure state machine: sending goes through [`Transport`] (the root context's
//! `dispatch_http_call`), and time is passed in, so every path runs in native unit tests.
//! Nothing here ever waits: a request is never paused for the collector.

use plumbline_wire::{BatchReply, DecodeError};

/// First retry delay after a failure, in milliseconds.
pub const BACKOFF_BASE_MS: u64 = 500;
/// Longest delay between retries, in milliseconds.
pub const BACKOFF_CAP_MS: u64 = 10_000;
/// Extra time past the call timeout after which a call with no answer is given up.
const LOST_CALL_GRACE_MS: u64 = 5_000;

/// Starts an HTTP call carrying a batch; the answer comes back later with the returned token.
pub trait Transport {
    fn send(&mut self, body: &[u8]) -> Result<u32, String>;
}

/// What the collector's answer means for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx: the batch is delivered. The reply is decoded when it can be.
    Delivered(Result<BatchReply, DecodeError>),
    /// No answer, or not 2xx: the batch is to be retried.
    Failed(String),
}

/// Classifies an answer from its `:status` value and body.
pub fn classify(status: Option<&[u8]>, body: Option<&[u8]>) -> Outcome {
    let Some(status) = status else {
        return Outcome::Failed("no response (timeout, reset or connection failure)".into());
    };
    let code = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.parse::<u16>().ok());
    match code {
        Some(200..=299) => Outcome::Delivered(BatchReply::decode(body.unwrap_or_default())),
        Some(code) => Outcome::Failed(format!("collector answered status {code}")),
        None => Outcome::Failed("collector answered without a valid status".into()),
    }
}

/// Delay before retry number `failures` (1 for the first): doubling from the base up to the cap,
/// then "equal jitter" (half fixed, half random from `random`) so proxies do not retry in step.
pub fn backoff_ms(failures: u32, random: u64) -> u64 {
    let doublings = failures.saturating_sub(1).min(20);
    let delay = BACKOFF_BASE_MS
        .saturating_mul(1u64 << doublings)
        .min(BACKOFF_CAP_MS);
    let half = delay / 2;
    half + random % (half + 1)
}

/// An encoded batch awaiting delivery; a retry sends the very same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: u64,
    pub body: Vec<u8>,
    pub records: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    token: u32,
    since_ms: u64,
}

/// What happened to a batch, for counters and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Sent {
        seq: u64,
    },
    /// `after_failures` counts the failed attempts before this delivery.
    Delivered {
        seq: u64,
        records: u64,
        after_failures: u32,
    },
    Failed {
        seq: u64,
        failures: u32,
        reason: String,
    },
}

/// Delivery state of one VM.
#[derive(Debug)]
pub struct Shipper {
    next_seq: u64,
    pending: Option<Pending>,
    in_flight: Option<InFlight>,
    retry_at_ms: u64,
    failures: u32,
    timeout_ms: u64,
    rng: u64,
}

impl Shipper {
    pub fn new(timeout_ms: u32, seed: u64) -> Self {
        Shipper {
            next_seq: 1,
            pending: None,
            in_flight: None,
            retry_at_ms: 0,
            failures: 0,
            timeout_ms: u64::from(timeout_ms),
            rng: seed | 1,
        }
    }

    pub fn set_timeout(&mut self, timeout_ms: u32) {
        self.timeout_ms = u64::from(timeout_ms);
    }

    /// Whether a new batch may be built now (nothing pending, nothing in flight).
    pub fn is_idle(&self) -> bool {
        self.pending.is_none() && self.in_flight.is_none()
    }

    /// The sequence number the next new batch gets; call [`Shipper::enqueue`] with it.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Takes a newly built batch; it becomes the pending batch.
    pub fn enqueue(&mut self, body: Vec<u8>, records: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending = Some(Pending { seq, body, records });
        self.retry_at_ms = 0;
    }

    /// Sends the pending batch if it is due; gives up on a call that never answered.
    pub fn poll(&mut self, now_ms: u64, transport: &mut impl Transport) -> Option<Event> {
        if let Some(call) = self.in_flight {
            let deadline = call.since_ms + self.timeout_ms + LOST_CALL_GRACE_MS;
            if now_ms < deadline {
                return None;
            }
            self.in_flight = None;
            return self.fail(now_ms, "no answer within the batch timeout".into());
        }
        if self.pending.is_none() || now_ms < self.retry_at_ms {
            return None;
        }
        self.send(now_ms, transport)
    }

    fn send(&mut self, now_ms: u64, transport: &mut impl Transport) -> Option<Event> {
        let pending = self.pending.as_ref()?;
        let seq = pending.seq;
        match transport.send(&pending.body) {
            Ok(token) => {
                self.in_flight = Some(InFlight {
                    token,
                    since_ms: now_ms,
                });
                Some(Event::Sent { seq })
            }
            Err(reason) => self.fail(now_ms, format!("could not send: {reason}")),
        }
    }

    /// Applies the answer to call `token`; answers to calls given up on are ignored.
    pub fn on_answer(&mut self, token: u32, outcome: &Outcome, now_ms: u64) -> Option<Event> {
        if self.in_flight.map(|c| c.token) != Some(token) {
            return None;
        }
        self.in_flight = None;
        match outcome {
            Outcome::Delivered(_) => {
                let done = self.pending.take()?;
                let after_failures = std::mem::take(&mut self.failures);
                Some(Event::Delivered {
                    seq: done.seq,
                    records: done.records,
                    after_failures,
                })
            }
            Outcome::Failed(reason) => self.fail(now_ms, reason.clone()),
        }
    }

    fn fail(&mut self, now_ms: u64, reason: String) -> Option<Event> {
        self.failures = self.failures.saturating_add(1);
        self.retry_at_ms = now_ms + backoff_ms(self.failures, self.random());
        let seq = self.pending.as_ref().map_or(0, |p| p.seq);
        Some(Event::Failed {
            seq,
            failures: self.failures,
            reason,
        })
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what was sent; fails sends while `down` is set.
    #[derive(Default)]
    struct FakeTransport {
        sent: Vec<Vec<u8>>,
        down: bool,
    }

    impl Transport for FakeTransport {
        fn send(&mut self, body: &[u8]) -> Result<u32, String> {
            if self.down {
                return Err("cluster not found".into());
            }
            self.sent.push(body.to_vec());
            Ok(u32::try_from(self.sent.len()).unwrap_or(u32::MAX))
        }
    }

    fn ok() -> Outcome {
        Outcome::Delivered(Ok(BatchReply::new(1, false, 0)))
    }

    #[test]
    fn a_pending_batch_is_sent_once_and_cleared_when_delivered() {
        let (mut s, mut t) = (Shipper::new(2000, 1), FakeTransport::default());
        s.enqueue(b"batch-1".to_vec(), 3);
        assert_eq!(s.poll(0, &mut t), Some(Event::Sent { seq: 1 }));
        assert_eq!(s.poll(10, &mut t), None, "one batch in flight at a time");
        let delivered = Event::Delivered {
            seq: 1,
            records: 3,
            after_failures: 0,
        };
        assert_eq!(s.on_answer(1, &ok(), 20), Some(delivered));
        assert!(s.is_idle());
        assert_eq!(t.sent.len(), 1);
    }

    #[test]
    fn a_failed_batch_is_retried_after_backoff_with_the_same_seq_and_bytes() {
        let (mut s, mut t) = (Shipper::new(2000, 1), FakeTransport::default());
        s.enqueue(b"batch-1".to_vec(), 3);
        s.poll(0, &mut t);
        let failed = s.on_answer(1, &Outcome::Failed("status 503".into()), 100);
        assert!(matches!(
            failed,
            Some(Event::Failed {
                seq: 1,
                failures: 1,
                ..
            })
        ));
        assert_eq!(s.poll(100, &mut t), None, "not before the backoff");
        assert_eq!(
            s.poll(100 + BACKOFF_CAP_MS, &mut t),
            Some(Event::Sent { seq: 1 })
        );
        assert_eq!(t.sent, vec![b"batch-1".to_vec(), b"batch-1".to_vec()]);
        assert_eq!(s.next_seq(), 2);
    }

    #[test]
    fn a_send_that_cannot_start_counts_as_a_failure() {
        let mut t = FakeTransport {
            down: true,
            ..FakeTransport::default()
        };
        let mut s = Shipper::new(2000, 1);
        s.enqueue(b"b".to_vec(), 1);
        assert!(matches!(
            s.poll(0, &mut t),
            Some(Event::Failed { failures: 1, .. })
        ));
        assert!(!s.is_idle());
    }

    #[test]
    fn a_call_that_never_answers_is_given_up_and_its_late_answer_ignored() {
        let (mut s, mut t) = (Shipper::new(2000, 1), FakeTransport::default());
        s.enqueue(b"b".to_vec(), 1);
        s.poll(0, &mut t);
        assert_eq!(s.poll(2000, &mut t), None);
        let given_up = s.poll(2000 + LOST_CALL_GRACE_MS, &mut t);
        assert!(matches!(given_up, Some(Event::Failed { seq: 1, .. })));
        assert_eq!(s.on_answer(1, &ok(), 8000), None);
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stays_under_the_cap() {
        for failures in 1..40 {
            let nominal = (BACKOFF_BASE_MS << (failures - 1).min(20)).min(BACKOFF_CAP_MS);
            for random in [0, 1, 12345, u64::MAX] {
                let d = backoff_ms(failures, random);
                assert!(d >= nominal / 2 && d <= nominal, "{failures}: {d}");
            }
        }
        assert_eq!(backoff_ms(1, 0), BACKOFF_BASE_MS / 2);
    }

    #[test]
    fn replies_are_classified_by_status_then_body() {
        let reply = BatchReply::new(5, false, 3);
        let body = reply.encode();
        assert_eq!(
            classify(Some(b"200"), Some(&body)),
            Outcome::Delivered(Ok(reply))
        );
        assert!(matches!(
            classify(Some(b"200"), None),
            Outcome::Delivered(Err(_))
        ));
        assert!(matches!(
            classify(Some(b"204"), Some(b"<html>")),
            Outcome::Delivered(Err(_))
        ));
        assert!(matches!(
            classify(Some(b"503"), Some(&body)),
            Outcome::Failed(_)
        ));
        assert!(matches!(classify(Some(b"x"), None), Outcome::Failed(_)));
        assert!(matches!(classify(None, None), Outcome::Failed(_)));
    }
}
