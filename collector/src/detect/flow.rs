//! The life of alert updates in the collector, the same in `serve` and in offline ingest:
//! the engine's updates are written to the database (with the baselines, in one
//! transaction), each new or updated alert goes through the policy and may become a decision,
//! and every update goes to the sinks. Also: starting detection from the saved baselines,
//! saving them on a timer, and acknowledging an alert.
//!
//! The caller holds the persisted state (the server's lock) and passes the time: record
//! time after a batch, the wall clock from the server's timer.

use super::config::DetectSettings;
use super::sink::Sinks;
use super::view::AlertEvent;
use super::{Detection, StoredAlert};
use crate::decide::audit::{AuditAction, AuditEntry};
use crate::decide::policy::{Policy, PolicyAlert};
use crate::decide::view::subject_text;
use crate::decide::DecideError;
use crate::store::persisted::{AlertOutcome, ChangeError, Persisted};
use crate::store::StoreError;
use plumbline_detect::{AlertStatus, AlertUpdate, Change, Engine};

/// What alert updates go through besides the database.
#[derive(Debug, Clone, Copy)]
pub struct Alerting<'a> {
    pub policy: &'a Policy,
    pub sinks: &'a Sinks,
    /// Alerts kept in the database.
    pub max_stored: usize,
}

/// Which clock closes windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The latest record time seen (after a batch, in replays).
    Records,
    /// This time (the collector's clock, from the server's timer).
    At(u64),
}

/// What one settle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    pub updates: usize,
    pub decisions: usize,
    /// Decisions the policy called for that the full decision set refused.
    pub refused_full: usize,
}

/// Starts detection on `p` from its saved baselines (a fresh engine when there are none or
/// they cannot be used); does nothing when detection is disabled.
pub fn enable(p: &mut Persisted, settings: &DetectSettings, now_ms: u64) -> Result<(), StoreError> {
    if !settings.enabled {
        return Ok(());
    }
    let config = settings.engine.clone();
    let restored = match p.load_baselines()? {
        Some(saved) => match Engine::restore(config.clone(), &saved.snapshot) {
            Ok(engine) => Some((engine, saved.id_base)),
            Err(err) => {
                tracing::warn!(error = %err, "saved baselines cannot be used; learning afresh");
                None
            }
        },
        None => None,
    };
    let (engine, id_base) = match restored {
        Some(found) => found,
        None => fresh(p, config, now_ms)?,
    };
    tracing::info!(
        consumers = engine.stats().consumers,
        open_alerts = engine.open_alerts().len(),
        learning_ms = settings.engine.learning_ms,
        window_ms = settings.engine.window_ms,
        "detection started"
    );
    p.pipeline.detect = Some(Detection::new(engine, id_base, &settings.sensitive_words));
    Ok(())
}

/// A fresh engine whose alert ids come after every stored one; alerts still open in the
/// database lost their episodes and are resolved.
fn fresh(
    p: &mut Persisted,
    config: plumbline_detect::Config,
    now_ms: u64,
) -> Result<(Engine, u64), StoreError> {
    let orphaned = p.resolve_orphaned_alerts(now_ms)?;
    if orphaned > 0 {
        tracing::warn!(orphaned, "open alerts without baselines marked resolved");
    }
    let id_base = p.max_alert_id()?;
    let engine = Engine::new(config).map_err(|e| StoreError::Corrupt {
        what: "detection config",
        value: e.to_string(),
    })?;
    Ok((engine, id_base))
}

/// Closes the windows `clock` has passed and takes their alert updates through the
/// database, the policy (decisions at `now_ms`, the collector's clock) and the sinks.
pub fn settle(p: &mut Persisted, alerting: Alerting<'_>, clock: Clock, now_ms: u64) -> Settled {
    let Some(detection) = p.pipeline.detect.as_mut() else {
        return Settled::default();
    };
    let at = match clock {
        Clock::Records => detection.latest_ms(),
        Clock::At(at) => at,
    };
    if at == 0 {
        return Settled::default();
    }
    let updates = detection.tick(at);
    if updates.is_empty() {
        return Settled::default();
    }
    let window_ms = detection.window_ms();
    let baselines = detection.snapshot(now_ms);
    let stored: Vec<StoredAlert> = updates
        .iter()
        .map(|u| StoredAlert::of_update(u, window_ms))
        .collect();
    if let Err(err) = p.write_alerts(&stored, Some(&baselines), alerting.max_stored) {
        let count = updates.len();
        tracing::warn!(error = %err, updates = count, "cannot store alert updates; will retry");
        if let Some(detection) = p.pipeline.detect.as_mut() {
            detection.keep_unsaved(updates.clone());
        }
    }

    let mut settled = Settled {
        updates: updates.len(),
        ..Settled::default()
    };
    for update in &updates {
        log_update(p, update);
        if matches!(update.change, Change::Opened | Change::Updated) {
            apply_policy(p, alerting.policy, update, now_ms, &mut settled);
        }
    }
    alerting.sinks.send(&events(p, &updates, &stored));
    settled
}

/// Saves the baselines when records were observed since the last save; answers whether it
/// saved.
pub fn save_baselines(p: &mut Persisted, now_ms: u64) -> Result<bool, StoreError> {
    let Some(detection) = p.pipeline.detect.as_mut() else {
        return Ok(false);
    };
    if !detection.changed() {
        return Ok(false);
    }
    let baselines = detection.snapshot(now_ms);
    p.save_baselines(&baselines)?;
    Ok(true)
}

/// Detection for offline ingest (`plumbline ingest --data`): started on the data directory's
/// baselines, settled after every chunk of records on their own times, the policy applied as
/// in `serve` (decisions at the collector's clock).
#[derive(Debug)]
pub struct Offline {
    policy: Policy,
    sinks: Sinks,
    max_stored: usize,
}

impl Offline {
    pub fn start(
        p: &mut Persisted,
        settings: &DetectSettings,
        policy: Policy,
    ) -> Result<Offline, OfflineError> {
        enable(p, settings, crate::api::now_ms())?;
        Ok(Offline {
            policy,
            sinks: Sinks::open(&settings.alerts)?,
            max_stored: settings.alerts.max_stored,
        })
    }

    /// After a chunk of records: closes the windows they passed.
    pub fn after_chunk(&self, p: &mut Persisted) {
        let alerting = Alerting {
            policy: &self.policy,
            sinks: &self.sinks,
            max_stored: self.max_stored,
        };
        settle(p, alerting, Clock::Records, crate::api::now_ms());
    }

    /// Gives the webhook a few seconds to deliver what it holds.
    pub fn finish(self) {
        self.sinks.close(std::time::Duration::from_secs(5));
    }
}

/// Why offline detection could not start.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sinks(#[from] super::sink::SinkError),
}

/// Why an alert could not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no alert has id {0}")]
    NotFound(u64),
    #[error("alert {0} is resolved; only open alerts can be acknowledged")]
    Resolved(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Acknowledges alert `id` for `who` at `now_ms`: in the engine (so later updates keep the
/// status) and the database, with an audit entry and an update to the sinks. An alert
/// already acknowledged is answered as it is.
pub fn acknowledge(
    p: &mut Persisted,
    sinks: &Sinks,
    id: u64,
    who: &str,
    now_ms: u64,
) -> Result<StoredAlert, AckError> {
    let stored = p.alert(id)?.ok_or(AckError::NotFound(id))?;
    match stored.alert.status {
        AlertStatus::Resolved => return Err(AckError::Resolved(id)),
        AlertStatus::Acknowledged => return Ok(stored),
        AlertStatus::Open => {}
    }

    let in_engine = p.pipeline.detect.as_mut().and_then(|d| {
        let update = d.acknowledge(&stored.alert)?;
        let acked = StoredAlert::of_update(&update, d.window_ms());
        Some((acked, d.snapshot(now_ms)))
    });
    match in_engine {
        Some((acked, baselines)) => p.write_alerts(&[acked], Some(&baselines), usize::MAX)?,
        None => {
            p.acknowledge_stored_alert(id)?;
        }
    }
    let a = &stored.alert;
    p.append_audit(&AuditEntry {
        at_ms: now_ms,
        who: who.to_string(),
        action: AuditAction::Ack,
        version: p.decisions.version(),
        decision: None,
        detail: format!("alert {id} ({}, consumer {})", a.detector, a.consumer),
    })?;

    let acked = p.alert(id)?.ok_or(AckError::NotFound(id))?;
    tracing::info!(alert = id, detector = %a.detector, consumer = %a.consumer, by = who,
        "alert acknowledged");
    let label = label_of(p, &acked);
    sinks.send(&[AlertEvent {
        change: Change::Acknowledged,
        alert: acked.view(label.as_deref()),
    }]);
    Ok(acked)
}

fn apply_policy(
    p: &mut Persisted,
    policy: &Policy,
    update: &AlertUpdate,
    now_ms: u64,
    settled: &mut Settled,
) {
    let a = &update.alert;
    let alert = PolicyAlert {
        id: a.id,
        detector: a.detector.name(),
        severity: a.severity,
        consumer: a.consumer,
    };
    match p.apply_alert(policy, &alert, now_ms) {
        Ok(AlertOutcome::Made(made)) => {
            settled.decisions += 1;
            tracing::info!(
                decision = made.decision.id,
                alert = a.id,
                detector = alert.detector,
                subject = %subject_text(&made.decision.subject),
                version = p.decisions.version(),
                "decision made by policy"
            );
        }
        Ok(AlertOutcome::Kept(_) | AlertOutcome::Ignored) => {}
        Err(ChangeError::Refused(DecideError::Full { max })) => {
            settled.refused_full += 1;
            tracing::warn!(
                alert = a.id,
                max,
                "decision set full; policy decision not made"
            );
        }
        Err(err) => tracing::warn!(alert = a.id, error = %err, "policy decision not made"),
    }
}

fn log_update(p: &Persisted, update: &AlertUpdate) {
    let a = &update.alert;
    let e = &a.evidence;
    let label = p
        .pipeline
        .consumers
        .find(&a.consumer)
        .and_then(|c| c.label.as_deref());
    match update.change {
        Change::Opened | Change::Resolved => tracing::info!(
            alert = a.id,
            change = ?update.change,
            consumer = %a.consumer,
            label,
            detector = %a.detector,
            severity = a.severity.name(),
            score = a.score,
            feature = %e.feature,
            baseline = e.baseline,
            current = e.current,
            "alert"
        ),
        _ => tracing::debug!(alert = a.id, change = ?update.change, score = a.score, "alert"),
    }
}

fn label_of(p: &Persisted, stored: &StoredAlert) -> Option<String> {
    let consumer = p.pipeline.consumers.find(&stored.alert.consumer)?;
    consumer.label.as_deref().map(str::to_string)
}

fn events(p: &Persisted, updates: &[AlertUpdate], stored: &[StoredAlert]) -> Vec<AlertEvent> {
    updates
        .iter()
        .zip(stored)
        .map(|(u, s)| AlertEvent {
            change: u.change,
            alert: s.view(label_of(p, s).as_deref()),
        })
        .collect()
}
