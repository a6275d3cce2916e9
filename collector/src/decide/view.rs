//! The JSON shapes of decisions: `GET /v1/decisions`, the body of `POST /v1/decisions` and
//! `POST /v1/decisions/remove`, and one decision as the API, the CLI and the audit log show it.
//! Times are RFC 3339 UTC to the second; consumer ids are 32 hex digits; addresses are bare or
//! CIDR.
//!
//! A request may name a consumer by its raw key; the key is hashed with the salt by whoever
//! turns the request into a [`Subject`] and is never kept, printed or logged.

use super::parse::{self, format_rate, format_subject_address};
use super::StoredDecision;
use crate::api::views::rfc3339;
use plumbline_wire::{Action, Mode, Subject};
use serde::{Deserialize, Serialize};
use std::fmt;

/// `GET /v1/decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionsView {
    pub version: u64,
    /// `monitor` or `enforce`.
    pub mode: String,
    pub decisions: Vec<DecisionView>,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionView {
    pub id: u64,
    pub subject: SubjectView,
    /// `block` or `throttle`.
    pub action: String,
    /// The status answered: the block status, or 429 above a throttle's rate.
    pub status: u16,
    /// A throttle's rate, like `10/s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// A throttle's burst, in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    pub reason: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
}

/// The answer to `POST /v1/decisions`: the decision made and, when the subject had one, the
/// decision it replaced (a subject holds one decision at a time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MadeView {
    #[serde(flatten)]
    pub decision: DecisionView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<DecisionView>,
}

/// Who a decision applies to, as shown: a consumer id or an address or prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectView {
    Consumer(String),
    Address(String),
}

/// Who a request names: a consumer id, a raw key (hashed on the way in), an address or prefix.
/// In JSON, an object with exactly one of `consumer`, `key` or `address`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "SubjectFields")]
pub enum SubjectInput {
    Consumer(String),
    Key(String),
    Address(String),
}

/// A subject as sent, before it is known to name exactly one thing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectFields {
    consumer: Option<String>,
    key: Option<String>,
    address: Option<String>,
}

impl TryFrom<SubjectFields> for SubjectInput {
    type Error = String;

    fn try_from(f: SubjectFields) -> Result<Self, String> {
        match (f.consumer, f.key, f.address) {
            (Some(id), None, None) => Ok(SubjectInput::Consumer(id)),
            (None, Some(key), None) => Ok(SubjectInput::Key(key)),
            (None, None, Some(address)) => Ok(SubjectInput::Address(address)),
            _ => Err(
                "a subject names exactly one of consumer, key or address, like \
                      {\"consumer\": \"<32 hex digits>\"}"
                    .to_string(),
            ),
        }
    }
}

impl fmt::Debug for SubjectInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectInput::Consumer(id) => write!(f, "Consumer({id:?})"),
            SubjectInput::Key(_) => f.write_str("Key(<redacted>)"),
            SubjectInput::Address(text) => write!(f, "Address({text:?})"),
        }
    }
}

/// `block` or `throttle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Block,
    Throttle,
}

/// The body of `POST /v1/decisions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub subject: SubjectInput,
    pub action: ActionKind,
    /// Block status (default 403); a throttle always answers 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A throttle's rate, like `10/s` or `600/m`; a bare number is per second.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "rate_text"
    )]
    pub rate: Option<String>,
    /// A throttle's burst (default: one second's worth of its rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// How long the decision lasts, like `1h`; a bare number is seconds.
    #[serde(deserialize_with = "ttl_text")]
    pub ttl: String,
    pub reason: String,
}

/// A duration or rate as text, or a bare non-negative integer written as text with `unit`.
struct TextOrCount {
    unit: &'static str,
    expecting: &'static str,
}

impl serde::de::Visitor<'_> for TextOrCount {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, count: u64) -> Result<String, E> {
        Ok(format!("{count}{}", self.unit))
    }
}

fn ttl_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(TextOrCount {
        unit: "s",
        expecting: "a duration like \"1h\" or \"30m\", or a whole number of seconds",
    })
}

fn rate_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(TextOrCount {
        unit: "/s",
        expecting: "a rate like \"10/s\" or \"600/m\", or a whole number per second",
    })
    .map(Some)
}

/// The body of `POST /v1/decisions/remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveRequest {
    pub subject: SubjectInput,
}

/// The answer to a removal: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedView {
    pub removed: Vec<DecisionView>,
    /// The decision-set version after the removal.
    pub version: u64,
}

/// The block status when a request names none.
pub const DEFAULT_BLOCK_STATUS: u16 = 403;
/// What a throttle answers above its rate.
pub const THROTTLE_STATUS: u16 = 429;

/// Why a decision request cannot be made into a decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("{0}")]
    Field(String),
}

impl DecisionRequest {
    /// The action it asks for, checked.
    pub fn to_action(&self) -> Result<Action, RequestError> {
        match self.action {
            ActionKind::Block => {
                if self.rate.is_some() || self.burst.is_some() {
                    return Err(field("rate and burst apply to throttle, not to block"));
                }
                let status = self.status.unwrap_or(DEFAULT_BLOCK_STATUS);
                Ok(Action::Block {
                    status: parse::block_status(status)?,
                })
            }
            ActionKind::Throttle => self.throttle(),
        }
    }

    fn throttle(&self) -> Result<Action, RequestError> {
        if self.status.is_some_and(|s| s != THROTTLE_STATUS) {
            return Err(field("a throttle always answers 429; leave status out"));
        }
        let rate = self
            .rate
            .as_deref()
            .ok_or_else(|| field("a throttle needs a rate, like \"10/s\""))?;
        let per_hour = parse::rate_per_hour(rate)?;
        let burst = self.burst.unwrap_or(Action::default_burst(per_hour));
        if burst == 0 {
            return Err(field("burst must be at least 1"));
        }
        Ok(Action::Throttle { per_hour, burst })
    }

    /// The time-to-live, checked.
    pub fn ttl_ms(&self) -> Result<u64, RequestError> {
        Ok(parse::ttl_ms(&self.ttl)?)
    }

    /// The reason, trimmed; it must say something.
    pub fn reason(&self) -> Result<String, RequestError> {
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(field("a decision needs a reason"));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(field(&format!(
                "the reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        Ok(reason.to_string())
    }
}

/// Longest reason kept.
pub const MAX_REASON_CHARS: usize = 1_000;

fn field(message: &str) -> RequestError {
    RequestError::Field(message.to_string())
}

impl DecisionView {
    pub fn of(stored: &StoredDecision) -> Self {
        let d = &stored.decision;
        let (action, status, rate, burst) = match d.action {
            Action::Block { status } => ("block", status, None, None),
            Action::Throttle { per_hour, burst } => (
                "throttle",
                THROTTLE_STATUS,
                Some(format_rate(per_hour)),
                Some(burst),
            ),
        };
        DecisionView {
            id: d.id,
            subject: SubjectView::of(&d.subject),
            action: action.to_string(),
            status,
            rate,
            burst,
            reason: stored.reason.clone(),
            created_by: stored.created_by.clone(),
            created_at: rfc3339(stored.created_at_ms),
            expires_at: rfc3339(d.expires_at_ms),
        }
    }
}

impl SubjectView {
    pub fn of(subject: &Subject) -> Self {
        match subject {
            Subject::Consumer(id) => SubjectView::Consumer(id.to_string()),
            Subject::Prefix { addr, bits } => {
                SubjectView::Address(format_subject_address(*addr, *bits))
            }
        }
    }
}

impl fmt::Display for SubjectView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectView::Consumer(id) => write!(f, "consumer {id}"),
            SubjectView::Address(addr) => write!(f, "address {addr}"),
        }
    }
}

/// A subject in words, for messages.
pub fn subject_text(subject: &Subject) -> String {
    SubjectView::of(subject).to_string()
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Monitor => "monitor",
        Mode::Enforce => "enforce",
    }
}

impl DecisionsView {
    pub fn of(decisions: &super::Decisions) -> Self {
        DecisionsView {
            version: decisions.version(),
            mode: mode_name(decisions.mode()).to_string(),
            decisions: decisions.iter().map(DecisionView::of).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> DecisionRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_block_without_a_status_answers_403() {
        let r =
            request(r#"{"subject":{"consumer":"ab"},"action":"block","ttl":"1h","reason":"x"}"#);
        assert_eq!(r.to_action(), Ok(Action::Block { status: 403 }));
    }

    #[test]
    fn a_subject_must_name_exactly_one_thing_and_says_so() {
        for subject in [r#"{}"#, r#"{"consumer":"ab","address":"10.0.0.1"}"#] {
            let body =
                format!(r#"{{"subject":{subject},"action":"block","ttl":"1h","reason":"x"}}"#);
            let err = serde_json::from_str::<DecisionRequest>(&body)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("exactly one of consumer, key or address"),
                "{err}"
            );
        }
        let unknown = r#"{"subject":{"user":"ab"},"action":"block","ttl":"1h","reason":"x"}"#;
        let err = serde_json::from_str::<DecisionRequest>(unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `user`"), "{err}");
        let one = request(r#"{"subject":{"key":"k"},"action":"block","ttl":"1h","reason":"x"}"#);
        assert_eq!(one.subject, SubjectInput::Key("k".into()));
        let shown = serde_json::to_string(&one.subject).unwrap();
        assert_eq!(shown, r#"{"key":"k"}"#);
    }

    #[test]
    fn a_ttl_or_a_rate_given_as_a_number_is_seconds_or_per_second() {
        let throttle = request(
            r#"{"subject":{"address":"10.0.0.1"},"action":"throttle","rate":5,"ttl":90,
                "reason":"x"}"#,
        );
        assert_eq!(throttle.ttl_ms().unwrap(), 90_000);
        assert_eq!(
            throttle.to_action().unwrap(),
            Action::Throttle {
                per_hour: 18_000,
                burst: 5
            }
        );
        for bad in [r#""ttl":-5"#, r#""ttl":1.5"#, r#""ttl":true"#] {
            let body =
                format!(r#"{{"subject":{{"consumer":"ab"}},"action":"block",{bad},"reason":"x"}}"#);
            let err = serde_json::from_str::<DecisionRequest>(&body)
                .unwrap_err()
                .to_string();
            assert!(err.contains("a whole number of seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_throttle_takes_its_rate_and_a_burst_of_one_second_by_default() {
        let r = request(
            r#"{"subject":{"address":"10.0.0.1"},"action":"throttle","rate":"600/m",
                "ttl":"1h","reason":"x"}"#,
        );
        let expected = Action::Throttle {
            per_hour: 36_000,
            burst: 10,
        };
        assert_eq!(r.to_action(), Ok(expected));
    }

    #[test]
    fn mismatched_fields_are_refused_with_a_message_that_says_why() {
        let no_rate = request(
            r#"{"subject":{"address":"10.0.0.1"},"action":"throttle","ttl":"1h","reason":"x"}"#,
        );
        let err = no_rate.to_action().unwrap_err().to_string();
        assert!(err.contains("needs a rate"), "{err}");
        let rate_on_block = request(
            r#"{"subject":{"address":"10.0.0.1"},"action":"block","rate":"1/s","ttl":"1h",
                "reason":"x"}"#,
        );
        assert!(rate_on_block.to_action().is_err());
        let blank = request(
            r#"{"subject":{"address":"10.0.0.1"},"action":"block","ttl":"1h","reason":"  "}"#,
        );
        assert!(blank.reason().is_err());
    }

    #[test]
    fn a_raw_key_never_shows_in_debug_output() {
        let subject = SubjectInput::Key("sk_live_secret".into());
        let shown = format!("{subject:?}");
        assert!(!shown.contains("sk_live_secret"), "{shown}");
    }

    #[test]
    fn subjects_serialise_as_one_named_field() {
        let view = SubjectView::Address("10.0.0.0/8".into());
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"{"address":"10.0.0.0/8"}"#
        );
        let input: SubjectInput = serde_json::from_str(r#"{"key":"k"}"#).unwrap();
        assert_eq!(input, SubjectInput::Key("k".into()));
    }
}
