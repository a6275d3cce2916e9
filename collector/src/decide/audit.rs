//! The audit log of decision changes and alert acknowledgements: who (`operator`, `policy`,
//! `expiry`, `config`), when, what (add, remove, expire, mode, ack) and the decision as it was. Kept in the store up to a cap,
//! oldest deleted first; served newest first at `GET /v1/audit`.

use super::view::DecisionView;
use serde::{Deserialize, Serialize};

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Add,
    Remove,
    Expire,
    Mode,
    /// An operator acknowledged an alert (no decision; the detail names the alert).
    Ack,
}

impl AuditAction {
    pub fn name(self) -> &'static str {
        match self {
            AuditAction::Add => "add",
            AuditAction::Remove => "remove",
            AuditAction::Expire => "expire",
            AuditAction::Mode => "mode",
            AuditAction::Ack => "ack",
        }
    }

    pub fn from_name(name: &str) -> Option<AuditAction> {
        [
            AuditAction::Add,
            AuditAction::Remove,
            AuditAction::Expire,
            AuditAction::Mode,
            AuditAction::Ack,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }
}

/// One change as it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at_ms: u64,
    pub who: String,
    pub action: AuditAction,
    /// The decision-set version the change made.
    pub version: u64,
    /// The decision added, removed or expired.
    pub decision: Option<DecisionView>,
    /// More words: what replaced a decision, or the old and new mode.
    pub detail: String,
}

/// `GET /v1/audit`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub entries: Vec<AuditEntryView>,
}

/// One entry of `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    /// Position in the log; grows by one per entry.
    pub seq: u64,
    /// RFC 3339 UTC.
    pub at: String,
    pub who: String,
    pub action: AuditAction,
    pub version: u64,
    pub decision: Option<DecisionView>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Entries shown by `GET /v1/audit` when the request names no limit.
pub const DEFAULT_LIMIT: usize = 100;
/// Most entries one `GET /v1/audit` returns.
pub const MAX_LIMIT: usize = 10_000;
