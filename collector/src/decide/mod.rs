//! Decisions: which consumer or client prefix is blocked or throttled, until when, why and by
//! whom; the versioned set the collector hands to filters in batch replies; the audit trail of
//! every change; and the [`policy`] that turns alerts into decisions.
//!
//! [`Decisions`] is the set in memory. A change is planned first (a [`Change`]), written to the
//! store, and only then applied, so memory never holds what the database lost. Each change bumps
//! the version by exactly one. The set holds at most one decision per subject: a new decision on
//! a subject replaces the old one. Time is an argument everywhere here; this module reads no
//! clock and does no I/O.

pub mod audit;
pub mod parse;
pub mod policy;
pub mod reply;
pub mod view;

use audit::{AuditAction, AuditEntry};
use hashbrown::HashMap;
use plumbline_wire::{Action, Decision, DecisionSet, Mode, Subject};
use reply::EncodedSet;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who made a change, as the audit log and `created_by` show it.
pub const BY_OPERATOR: &str = "operator";
pub const BY_POLICY: &str = "policy";
pub const BY_EXPIRY: &str = "expiry";
pub const BY_CONFIG: &str = "config";

/// Caps on decisions and their audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Decisions held at once; a new one past it is refused.
    pub max_decisions: usize,
    /// Longest time-to-live a decision may have.
    pub max_ttl_ms: u64,
    /// Audit entries kept; the oldest are deleted past it.
    pub max_audit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decisions: 100_000,
            max_ttl_ms: 30 * 86_400_000,
            max_audit: 100_000,
        }
    }
}

/// A decision as the collector keeps it: what the filter needs, plus why and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    pub decision: Decision,
    /// Alert id or operator text.
    pub reason: String,
    /// `operator` or `policy`.
    pub created_by: String,
    pub created_at_ms: u64,
}

/// A decision to be made, before it has an id and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub subject: Subject,
    pub action: Action,
    pub ttl_ms: u64,
    pub reason: String,
    pub created_by: String,
}

/// Why a decision change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("ttl {ttl} is longer than the longest allowed ({max}, decisions.max_ttl)")]
    TtlTooLong { ttl: String, max: String },
    #[error("the decision set is full ({max} decisions, decisions.max_decisions)")]
    Full { max: usize },
    #[error("no decision has id {0}")]
    NoSuchId(u64),
    #[error("no decision applies to {0}")]
    NoSuchSubject(String),
}

/// One planned change of the set: written to the store, then applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The version after the change.
    pub version: u64,
    pub next_id: u64,
    pub mode: Mode,
    pub added: Vec<StoredDecision>,
    pub removed: Vec<StoredDecision>,
    pub audit: Vec<AuditEntry>,
}

/// What the policy did with a proposed decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// A change to write.
    Change(Change),
    /// The subject already has a decision that lasts at least as long, or an operator's.
    Kept(u64),
}

/// The decision set, its version and mode.
#[derive(Debug)]
pub struct Decisions {
    limits: Limits,
    by_id: BTreeMap<u64, StoredDecision>,
    by_subject: HashMap<Subject, u64>,
    version: u64,
    mode: Mode,
    next_id: u64,
    next_expiry_ms: Option<u64>,
    encoded: Option<EncodedSet>,
}

impl Decisions {
    /// The set as stored: its decisions, version, mode and next id.
    pub fn restore(
        limits: Limits,
        version: u64,
        mode: Mode,
        next_id: u64,
        decisions: Vec<StoredDecision>,
    ) -> Self {
        let mut set = Decisions {
            limits,
            by_id: BTreeMap::new(),
            by_subject: HashMap::new(),
            version,
            mode,
            next_id: next_id.max(1),
            next_expiry_ms: None,
            encoded: None,
        };
        for stored in decisions {
            set.insert(stored);
        }
        set.next_expiry_ms = set.earliest_expiry();
        set
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Decisions by id, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &StoredDecision> {
        self.by_id.values()
    }

    pub fn get(&self, id: u64) -> Option<&StoredDecision> {
        self.by_id.get(&id)
    }

    /// The decision on exactly this subject.
    pub fn on(&self, subject: &Subject) -> Option<&StoredDecision> {
        self.by_subject
            .get(subject)
            .and_then(|id| self.by_id.get(id))
    }

    /// Numbers of block and throttle decisions.
    pub fn counts(&self) -> (usize, usize) {
        let blocks = self
            .iter()
            .filter(|d| matches!(d.decision.action, Action::Block { .. }))
            .count();
        (blocks, self.len() - blocks)
    }

    /// The set as the filters get it, encoded once per version.
    pub fn encoded(&mut self) -> Arc<[u8]> {
        if let Some(cached) = self.encoded.as_ref().filter(|e| e.version == self.version) {
            return cached.bytes.clone();
        }
        let set = DecisionSet {
            version: self.version,
            mode: self.mode,
            decisions: self.iter().map(|d| d.decision).collect(),
        };
        let encoded = EncodedSet::of(&set);
        let bytes = encoded.bytes.clone();
        self.encoded = Some(encoded);
        bytes
    }

    /// Adds a decision at `now_ms`, replacing the one on the same subject.
    pub fn plan_add(
        &self,
        new: NewDecision,
        who: &str,
        now_ms: u64,
    ) -> Result<Change, DecideError> {
        self.check_ttl(new.ttl_ms)?;
        let replaced = self.on(&new.subject).cloned();
        if replaced.is_none() && self.len() >= self.limits.max_decisions {
            return Err(DecideError::Full {
                max: self.limits.max_decisions,
            });
        }

        let stored = self.make(new, now_ms);
        let mut change = self.change();
        change.next_id = self.next_id + 1;
        if let Some(old) = replaced {
            let detail = format!("replaced by decision {}", stored.decision.id);
            change
                .audit
                .push(self.entry(AuditAction::Remove, who, now_ms, &old, detail));
            change.removed.push(old);
        }
        let entry = self.entry(AuditAction::Add, who, now_ms, &stored, String::new());
        change.audit.push(entry);
        change.added.push(stored);
        Ok(change)
    }

    /// A policy's decision: made unless the subject's current decision is an operator's (the
    /// policy never overrides a person's decision) or still has at least half the new one's
    /// time to run. An alert updated every window so renews its block about once per half TTL,
    /// not once per window, and a longer decision is never shortened.
    pub fn plan_policy(&self, new: NewDecision, now_ms: u64) -> Result<Proposal, DecideError> {
        let renew_below = now_ms.saturating_add(new.ttl_ms / 2);
        if let Some(held) = self.on(&new.subject) {
            if held.created_by != BY_POLICY || held.decision.expires_at_ms >= renew_below {
                return Ok(Proposal::Kept(held.decision.id));
            }
        }
        self.plan_add(new, BY_POLICY, now_ms).map(Proposal::Change)
    }

    /// Removes the decision with `id`.
    pub fn plan_remove_id(&self, id: u64, who: &str, now_ms: u64) -> Result<Change, DecideError> {
        let held = self.get(id).ok_or(DecideError::NoSuchId(id))?;
        Ok(self.removal(held.clone(), who, now_ms))
    }

    /// Removes the decision on exactly `subject`.
    pub fn plan_remove_subject(
        &self,
        subject: &Subject,
        who: &str,
        now_ms: u64,
    ) -> Result<Change, DecideError> {
        let held = self
            .on(subject)
            .ok_or_else(|| DecideError::NoSuchSubject(view::subject_text(subject)))?;
        Ok(self.removal(held.clone(), who, now_ms))
    }

    /// Removes every decision expired at `now_ms`; `None` when none has.
    pub fn plan_sweep(&self, now_ms: u64) -> Option<Change> {
        if self.next_expiry_ms.is_none_or(|at| at > now_ms) {
            return None;
        }
        let mut change = self.change();
        for held in self.iter().filter(|d| d.decision.expires_at_ms <= now_ms) {
            let entry = self.entry(AuditAction::Expire, BY_EXPIRY, now_ms, held, String::new());
            change.audit.push(entry);
            change.removed.push(held.clone());
        }
        Some(change)
    }

    /// Sets the mode; `None` when it is already `mode`.
    pub fn plan_mode(&self, mode: Mode, who: &str, now_ms: u64) -> Option<Change> {
        if mode == self.mode {
            return None;
        }
        let mut change = self.change();
        change.mode = mode;
        change.audit.push(AuditEntry {
            at_ms: now_ms,
            who: who.to_string(),
            action: AuditAction::Mode,
            version: change.version,
            decision: None,
            detail: format!(
                "{} -> {}",
                view::mode_name(self.mode),
                view::mode_name(mode)
            ),
        });
        Some(change)
    }

    /// Applies a change the store has written.
    pub fn apply(&mut self, change: Change) {
        for old in &change.removed {
            self.by_id.remove(&old.decision.id);
            if self.by_subject.get(&old.decision.subject) == Some(&old.decision.id) {
                self.by_subject.remove(&old.decision.subject);
            }
        }
        let removed_any = !change.removed.is_empty();
        for stored in change.added {
            let expires = stored.decision.expires_at_ms;
            self.next_expiry_ms = Some(self.next_expiry_ms.map_or(expires, |e| e.min(expires)));
            self.insert(stored);
        }
        self.version = change.version;
        self.mode = change.mode;
        self.next_id = change.next_id;
        if removed_any {
            self.next_expiry_ms = self.earliest_expiry();
        }
    }

    fn insert(&mut self, stored: StoredDecision) {
        let id = stored.decision.id;
        if let Some(old) = self.by_subject.insert(stored.decision.subject, id) {
            self.by_id.remove(&old);
        }
        self.by_id.insert(id, stored);
    }

    fn earliest_expiry(&self) -> Option<u64> {
        self.iter().map(|d| d.decision.expires_at_ms).min()
    }

    fn check_ttl(&self, ttl_ms: u64) -> Result<(), DecideError> {
        if ttl_ms > self.limits.max_ttl_ms {
            return Err(DecideError::TtlTooLong {
                ttl: parse::format_ttl(ttl_ms),
                max: parse::format_ttl(self.limits.max_ttl_ms),
            });
        }
        Ok(())
    }

    fn make(&self, new: NewDecision, now_ms: u64) -> StoredDecision {
        StoredDecision {
            decision: Decision {
                id: self.next_id,
                subject: new.subject,
                action: new.action,
                expires_at_ms: now_ms.saturating_add(new.ttl_ms),
            },
            reason: new.reason,
            created_by: new.created_by,
            created_at_ms: now_ms,
        }
    }

    /// An empty change at the next version.
    fn change(&self) -> Change {
        Change {
            version: self.version + 1,
            next_id: self.next_id,
            mode: self.mode,
            added: Vec::new(),
            removed: Vec::new(),
            audit: Vec::new(),
        }
    }

    fn removal(&self, held: StoredDecision, who: &str, now_ms: u64) -> Change {
        let mut change = self.change();
        let entry = self.entry(AuditAction::Remove, who, now_ms, &held, String::new());
        change.audit.push(entry);
        change.removed.push(held);
        change
    }

    fn entry(
        &self,
        action: AuditAction,
        who: &str,
        now_ms: u64,
        decision: &StoredDecision,
        detail: String,
    ) -> AuditEntry {
        AuditEntry {
            at_ms: now_ms,
            who: who.to_string(),
            action,
            version: self.version + 1,
            decision: Some(view::DecisionView::of(decision)),
            detail,
        }
    }
}

#[cfg(test)]
mod tests;
