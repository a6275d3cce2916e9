//! The pipeline and the decision set bound to their store: every batch applied in memory is
//! written before it is acknowledged, and every decision change is written before it is applied,
//! so what a client was told survives a crash of the process. Used by the server and by the
//! offline CLI alike. Alerts and baselines are written through it too (see [`crate::detect`]).

use super::alerts::Baselines;
use super::{Store, StoreError};
use crate::decide::audit::{AuditEntry, AuditEntryView};
use crate::decide::policy::{Policy, PolicyAlert};
use crate::decide::{Change, DecideError, Decisions, NewDecision, Proposal, StoredDecision};
use crate::detect::StoredAlert;
use crate::pipeline::{Outcome, Pipeline, Settings};
use plumbline_detect::AlertStatus;
use plumbline_wire::{Batch, Mode, Subject};
use std::path::Path;

/// In-memory state and the store it is saved to.
#[derive(Debug)]
pub struct Persisted {
    pub pipeline: Pipeline,
    pub decisions: Decisions,
    store: Store,
}

/// Why a decision change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Refused(#[from] DecideError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the collector is shutting down")]
    ShuttingDown,
}

/// What the policy made of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOutcome {
    /// No rule matched, or the consumer is allowlisted.
    Ignored,
    /// The consumer already has a decision that stays (an operator's, or one lasting longer).
    Kept(u64),
    Made(StoredDecision),
}

/// A decision just made, and the decision on the same subject it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub made: StoredDecision,
    pub replaced: Option<StoredDecision>,
}

impl Persisted {
    /// Holds the data directory (created when `create`) and loads its state.
    pub fn open(dir: &Path, create: bool, settings: Settings) -> Result<Persisted, StoreError> {
        Persisted::open_at(dir, create, settings, crate::api::now_ms())
    }

    /// As [`Persisted::open`], with the time a new decision set starts its version at.
    pub fn open_at(
        dir: &Path,
        create: bool,
        settings: Settings,
        now_ms: u64,
    ) -> Result<Persisted, StoreError> {
        let store = Store::open(dir, create)?;
        let pipeline = store.load(settings)?;
        let decisions = store.load_decisions(settings.decisions, now_ms)?;
        Ok(Persisted {
            pipeline,
            decisions,
            store,
        })
    }

    /// A filter's batch, applied and saved; a duplicate changes nothing.
    pub fn apply_batch(&mut self, batch: &Batch, now_ms: u64) -> Result<Outcome, StoreError> {
        let outcome = self.pipeline.apply_batch(batch, now_ms);
        if !outcome.duplicate {
            self.store.save(&mut self.pipeline)?;
        }
        Ok(outcome)
    }

    /// Records parsed from a log file, applied and saved.
    pub fn apply_records(&mut self, batch: &Batch) -> Result<Outcome, StoreError> {
        let outcome = self.pipeline.apply_records(batch);
        self.store.save(&mut self.pipeline)?;
        Ok(outcome)
    }

    /// Writes a planned decision change, then applies it.
    pub fn commit(&mut self, change: Change) -> Result<(), StoreError> {
        let max_audit = self.decisions.limits().max_audit;
        self.store.commit_decisions(&change, max_audit)?;
        self.decisions.apply(change);
        Ok(())
    }

    /// Adds a decision (replacing the one on its subject); answers it and the one it replaced.
    pub fn add_decision(
        &mut self,
        new: NewDecision,
        who: &str,
        now_ms: u64,
    ) -> Result<Added, ChangeError> {
        let change = self.decisions.plan_add(new, who, now_ms)?;
        let made = change.added.first().cloned();
        let replaced = change.removed.first().cloned();
        self.commit(change)?;
        let made = made.ok_or_else(|| {
            ChangeError::Store(StoreError::Corrupt {
                what: "decision change",
                value: "a planned addition without its decision".into(),
            })
        })?;
        Ok(Added { made, replaced })
    }

    /// Removes the decision with `id`; answers it.
    pub fn remove_decision(
        &mut self,
        id: u64,
        who: &str,
        now_ms: u64,
    ) -> Result<StoredDecision, ChangeError> {
        let change = self.decisions.plan_remove_id(id, who, now_ms)?;
        self.commit_removal(change)
    }

    /// Removes the decision on exactly `subject`; answers it.
    pub fn remove_decision_on(
        &mut self,
        subject: &Subject,
        who: &str,
        now_ms: u64,
    ) -> Result<StoredDecision, ChangeError> {
        let change = self.decisions.plan_remove_subject(subject, who, now_ms)?;
        self.commit_removal(change)
    }

    fn commit_removal(&mut self, change: Change) -> Result<StoredDecision, ChangeError> {
        let removed = change.removed.first().cloned();
        self.commit(change)?;
        removed.ok_or_else(|| {
            ChangeError::Store(StoreError::Corrupt {
                what: "decision change",
                value: "a planned removal without its decision".into(),
            })
        })
    }

    /// Removes the decisions expired at `now_ms`; answers how many.
    pub fn sweep_decisions(&mut self, now_ms: u64) -> Result<usize, StoreError> {
        let Some(change) = self.decisions.plan_sweep(now_ms) else {
            return Ok(0);
        };
        let expired = change.removed.len();
        self.commit(change)?;
        Ok(expired)
    }

    /// Sets the mode sent to filters; answers whether it changed.
    pub fn set_mode(&mut self, mode: Mode, who: &str, now_ms: u64) -> Result<bool, StoreError> {
        match self.decisions.plan_mode(mode, who, now_ms) {
            Some(change) => self.commit(change).map(|()| true),
            None => Ok(false),
        }
    }

    /// Runs an alert through the policy and makes the decision it calls for.
    pub fn apply_alert(
        &mut self,
        policy: &Policy,
        alert: &PolicyAlert<'_>,
        now_ms: u64,
    ) -> Result<AlertOutcome, ChangeError> {
        let Some(new) = policy.decide(alert) else {
            return Ok(AlertOutcome::Ignored);
        };
        match self.decisions.plan_policy(new, now_ms)? {
            Proposal::Kept(id) => Ok(AlertOutcome::Kept(id)),
            Proposal::Change(change) => {
                let made = change.added.first().cloned();
                self.commit(change)?;
                Ok(made.map_or(AlertOutcome::Ignored, AlertOutcome::Made))
            }
        }
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEntryView>, StoreError> {
        self.store.audit(limit)
    }

    /// Saves what is left (baselines too, when detection runs) and closes the database.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.store.save(&mut self.pipeline)?;
        if let Some(detection) = self.pipeline.detect.as_mut() {
            let baselines = detection.snapshot(crate::api::now_ms());
            self.store.save_baselines(&baselines)?;
        }
        self.store.close()
    }
}

/// Alerts and baselines.
impl Persisted {
    /// The saved baselines, if any.
    pub fn load_baselines(&self) -> Result<Option<Baselines>, StoreError> {
        self.store.load_baselines()
    }

    /// Writes alert updates, with the baselines they came with when given.
    pub fn write_alerts(
        &mut self,
        updates: &[StoredAlert],
        baselines: Option<&Baselines>,
        max_stored: usize,
    ) -> Result<(), StoreError> {
        self.store.write_alerts(updates, baselines, max_stored)
    }

    /// Saves the baselines alone.
    pub fn save_baselines(&mut self, baselines: &Baselines) -> Result<(), StoreError> {
        self.store.save_baselines(baselines)
    }

    /// Stored alerts, newest first, of one status or all, at most `limit`.
    pub fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        self.store.alerts(status, limit)
    }

    pub fn alert(&self, id: u64) -> Result<Option<StoredAlert>, StoreError> {
        self.store.alert(id)
    }

    pub fn max_alert_id(&self) -> Result<u64, StoreError> {
        self.store.max_alert_id()
    }

    /// Marks an open alert acknowledged in the database alone; answers whether it was open.
    pub fn acknowledge_stored_alert(&mut self, id: u64) -> Result<bool, StoreError> {
        self.store.acknowledge_stored_alert(id)
    }

    /// Marks every alert not yet resolved as resolved (their episodes were lost).
    pub fn resolve_orphaned_alerts(&mut self, at_ms: u64) -> Result<usize, StoreError> {
        self.store.resolve_orphaned_alerts(at_ms)
    }

    /// Writes an audit entry that goes with no decision change.
    pub fn append_audit(&mut self, entry: &AuditEntry) -> Result<(), StoreError> {
        let max_audit = self.decisions.limits().max_audit;
        self.store.append_audit(entry, max_audit)
    }
}
