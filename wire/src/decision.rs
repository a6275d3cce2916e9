//! What the collector sends back in every batch reply: how many records it accepted and, when
//! the filter's decision set is older than the collector's, the current set.

use crate::{Addr, ConsumerId, FORMAT_VERSION};
use serde::{Deserialize, Serialize};

/// Whether decisions are enforced or only recorded as would-block.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Monitor,
    Enforce,
}

/// Who a decision applies to.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Consumer(ConsumerId),
    /// A client address prefix: the first `bits` bits of `addr`.
    Prefix {
        addr: Addr,
        bits: u8,
    },
}

/// What happens to a subject's requests.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer with this status, never forwarding upstream.
    Block { status: u16 },
    /// Allow `per_hour` requests an hour per Envoy instance, spread evenly (a rate of `10/s` is
    /// 36,000 an hour, `2/m` is 120), with bursts up to `burst`; 429 above.
    Throttle { per_hour: u32, burst: u32 },
}

impl Action {
    /// A throttle's burst when none is given: one second's worth of `per_hour`, at least one
    /// request.
    pub fn default_burst(per_hour: u32) -> u32 {
        per_hour.div_ceil(3_600).max(1)
    }
}

/// One decision as the filter needs it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub id: u64,
    pub subject: Subject,
    pub action: Action,
    /// Unix milliseconds after which the filter ignores the decision, collector or not.
    pub expires_at_ms: u64,
}

/// The whole decision set at one version.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct DecisionSet {
    pub version: u64,
    pub mode: Mode,
    pub decisions: Vec<Decision>,
}

impl DecisionSet {
    /// Encodes with postcard, as the set travels inside a [`BatchReply`].
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a whole set; trailing bytes are refused.
    pub fn decode(bytes: &[u8]) -> Result<DecisionSet, crate::DecodeError> {
        let (set, rest): (DecisionSet, _) = postcard::take_from_bytes(bytes)
            .map_err(|e| crate::DecodeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(crate::DecodeError::TrailingBytes(rest.len()));
        }
        Ok(set)
    }
}

/// The collector's answer to a batch.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BatchReply {
    pub format: u16,
    /// Records stored from this batch (0 for a duplicate).
    pub accepted: u32,
    /// The batch's (instance, seq) had been stored before: a retry after a lost reply.
    pub duplicate: bool,
    /// Version of the collector's current decision set.
    pub decisions_version: u64,
    /// The set, present when the batch said it held an older version.
    pub decisions: Option<DecisionSet>,
}

impl BatchReply {
    pub fn new(accepted: u32, duplicate: bool, decisions_version: u64) -> Self {
        BatchReply {
            format: FORMAT_VERSION,
            accepted,
            duplicate,
            decisions_version,
            decisions: None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a reply; any trouble is reported as the postcard error's text.
    pub fn decode(bytes: &[u8]) -> Result<BatchReply, crate::DecodeError> {
        let reply: BatchReply = postcard::from_bytes(bytes)
            .map_err(|e| crate::DecodeError::Malformed(e.to_string()))?;
        if reply.format != FORMAT_VERSION {
            let found = reply.format;
            return Err(crate::DecodeError::Format {
                found,
                supported: FORMAT_VERSION,
            });
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_with_decisions_round_trips() {
        let mut reply = BatchReply::new(10, false, 3);
        let subject = Subject::Prefix {
            addr: Addr::V4([192, 0, 2, 0]),
            bits: 24,
        };
        let action = Action::Throttle {
            per_hour: 36_000,
            burst: 20,
        };
        let decision = Decision {
            id: 1,
            subject,
            action,
            expires_at_ms: 99,
        };
        reply.decisions = Some(DecisionSet {
            version: 3,
            mode: Mode::Enforce,
            decisions: vec![decision],
        });
        assert_eq!(BatchReply::decode(&reply.encode()), Ok(reply));
    }

    #[test]
    fn a_set_encodes_alone_as_it_does_inside_a_reply() {
        let set = DecisionSet {
            version: 7,
            mode: Mode::Monitor,
            decisions: vec![Decision {
                id: 9,
                subject: Subject::Consumer(ConsumerId([3; 16])),
                action: Action::Block { status: 403 },
                expires_at_ms: 1,
            }],
        };
        let bytes = set.encode();
        assert_eq!(DecisionSet::decode(&bytes), Ok(set.clone()));
        let mut reply = BatchReply::new(0, false, 7);
        reply.decisions = Some(set);
        assert!(reply.encode().ends_with(&bytes), "same bytes as in a reply");
        let mut trailing = bytes;
        trailing.push(0);
        assert!(DecisionSet::decode(&trailing).is_err());
    }

    #[test]
    fn garbage_reply_is_an_error_not_a_panic() {
        assert!(BatchReply::decode(b"<html>bad gateway</html>").is_err());
    }
}
