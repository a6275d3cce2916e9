//! Behavioural detection in the collector: every templated record with a consumer becomes an
//! [`plumbline_detect::Observation`] for the engine of the `plumbline-detect` crate, and the
//! alert updates the engine hands back are stored, run through the policy and sent to the
//! sinks ([`flow`]).
//!
//! This module owns the bridge: building observations ([`observe`]), the engine's place in
//! the pipeline ([`Detection`]), the `[detect]`/`[alerts]` config ([`config`]), the alerts'
//! JSON ([`view`]) and the file and webhook sinks ([`sink`]). It never reads a clock: record
//! times come with records, and the caller passes `now` to [`Detection::tick`].
//!
//! Alert ids: the engine numbers its alerts from 1 and keeps its counter in its snapshot. A
//! collector whose baselines could not be restored starts a fresh engine, so stored ids are
//! the engine's plus an offset (`id_base`, saved with the snapshot) that puts them above
//! every stored alert.

pub mod config;
pub mod flow;
pub mod observe;
pub mod replay;
pub mod sink;
pub mod view;

use crate::inventory::endpoint::{Endpoint, EndpointIdx};
use crate::store::alerts::Baselines;
use observe::{objects, AgentHashes, Endpoints, Objects};
use plumbline_detect::{Alert, AlertUpdate, Engine, Observation, Stats};
use plumbline_wire::{flags, Batch, ConsumerId, Record};
use view::{round_score, AlertView, EvidenceView};

/// Alert updates kept for a retry when the database refused them, at most.
const MAX_UNSAVED: usize = 10_000;

/// An alert as stored: the engine's alert (with its stored id) and the start of the window
/// that opened it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub alert: Alert,
    pub first_seen_ms: u64,
}

impl StoredAlert {
    /// The alert as the API shows it, with the consumer's label when known.
    pub fn view(&self, label: Option<&str>) -> AlertView {
        let a = &self.alert;
        AlertView {
            id: a.id,
            consumer: a.consumer.to_string(),
            label: label.map(str::to_string),
            detector: a.detector,
            severity: a.severity,
            score: round_score(a.score),
            confidence: round_score(a.confidence),
            status: a.status,
            windows: a.windows,
            evidence: EvidenceView::of(&a.evidence),
            first_seen: crate::api::views::rfc3339(self.first_seen_ms),
            last_seen: crate::api::views::rfc3339(a.last_seen_ms),
            resolved_at: a.resolved_ms.map(crate::api::views::rfc3339),
        }
    }

    /// An update as it is stored, with the engine's window length.
    pub fn of_update(update: &AlertUpdate, window_ms: u64) -> StoredAlert {
        let a = &update.alert;
        StoredAlert {
            alert: a.clone(),
            first_seen_ms: a.opened_ms.saturating_sub(window_ms),
        }
    }
}

/// The detection engine as the pipeline drives it.
#[derive(Debug)]
pub struct Detection {
    engine: Engine,
    id_base: u64,
    endpoints: Endpoints,
    agents: AgentHashes,
    latest_ms: u64,
    observed_since_snapshot: u64,
    /// Updates the database refused, written again with the next ones.
    unsaved: Vec<AlertUpdate>,
}

impl Detection {
    /// Drives `engine`, whose alert id `n` is stored as `id_base + n`.
    pub fn new(engine: Engine, id_base: u64, sensitive_words: &[String]) -> Self {
        Detection {
            engine,
            id_base,
            endpoints: Endpoints::new(sensitive_words),
            agents: AgentHashes::default(),
            latest_ms: 0,
            observed_since_snapshot: 0,
            unsaved: Vec::new(),
        }
    }

    /// Called before the records of `batch`.
    pub fn start_batch(&mut self, batch: &Batch) {
        self.agents.start(batch);
    }

    /// Counts one templated record of `consumer` that landed on `endpoint`. Requests that
    /// Plumbline itself answered (blocked, throttled) are not the consumer's use of the API
    /// and are left out.
    pub fn observe(
        &mut self,
        batch: &Batch,
        record: &Record,
        consumer: ConsumerId,
        idx: EndpointIdx,
        endpoint: &Endpoint,
    ) {
        if record.flags & (flags::BLOCKED | flags::THROTTLED) != 0 {
            return;
        }
        let objects = if record.flags & flags::RAW_PATH != 0 {
            Objects::default()
        } else {
            objects(&endpoint.path, batch.segments(record))
        };
        let (name, sensitive) = self.endpoints.get(idx, &endpoint.method, &endpoint.path);
        let time_ms = batch.time_ms(record);
        let observation = Observation {
            time_ms,
            consumer,
            endpoint: idx,
            endpoint_path: name,
            object: objects.hash,
            object_number: objects.number,
            status: record.status,
            response_bytes: record.response_bytes,
            client: batch.client(record),
            user_agent: self.agents.of(batch, record),
            weight: record.weight.max(1),
            sensitive,
        };
        self.engine.observe(&observation);
        self.latest_ms = self.latest_ms.max(time_ms);
        self.observed_since_snapshot += 1;
    }

    /// Names endpoint `idx` in evidence by `endpoint`'s method and current template (it was
    /// renamed, or merged into `endpoint`).
    pub fn describe(&mut self, idx: EndpointIdx, endpoint: &Endpoint) {
        self.endpoints.forget(idx);
        let (name, _) = self.endpoints.get(idx, &endpoint.method, &endpoint.path);
        self.engine.describe_endpoint(idx, name);
    }

    /// Closes the windows that ended by `now_ms` and answers the alert updates since the last
    /// tick (and any the database refused before), with stored ids.
    pub fn tick(&mut self, now_ms: u64) -> Vec<AlertUpdate> {
        let mut updates = std::mem::take(&mut self.unsaved);
        for mut update in self.engine.tick(now_ms) {
            update.alert.id += self.id_base;
            updates.push(update);
        }
        updates
    }

    /// Keeps updates the database refused for the next write, up to a cap.
    pub fn keep_unsaved(&mut self, updates: Vec<AlertUpdate>) {
        let room = MAX_UNSAVED.saturating_sub(self.unsaved.len());
        self.unsaved.extend(updates.into_iter().take(room));
    }

    /// Length of the engine's windows.
    pub fn window_ms(&self) -> u64 {
        self.engine.config().window_ms
    }

    /// The latest record time seen.
    pub fn latest_ms(&self) -> u64 {
        self.latest_ms
    }

    /// Acknowledges the engine's episode behind a stored alert; `None` when the engine holds
    /// no open episode with that id, consumer and detector.
    pub fn acknowledge(&mut self, stored: &Alert) -> Option<AlertUpdate> {
        let id = stored.id.checked_sub(self.id_base)?;
        let held = self.engine.open_alerts().into_iter().find(|a| a.id == id)?;
        if held.consumer != stored.consumer || held.detector != stored.detector {
            return None;
        }
        let mut update = self.engine.acknowledge(id)?;
        update.alert.id += self.id_base;
        Some(update)
    }

    /// Whether records were observed since the last snapshot.
    pub fn changed(&self) -> bool {
        self.observed_since_snapshot > 0
    }

    /// The engine's state to save, taken at `now_ms`.
    pub fn snapshot(&mut self, now_ms: u64) -> Baselines {
        self.observed_since_snapshot = 0;
        Baselines {
            snapshot: self.engine.snapshot(),
            window_ms: self.engine.config().window_ms,
            id_base: self.id_base,
            taken_ms: now_ms,
        }
    }

    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    pub fn open_alerts(&self) -> usize {
        self.engine.open_alerts().len()
    }

    pub fn memory_bytes(&self) -> usize {
        self.engine.memory_bytes()
    }
}

#[cfg(test)]
mod tests;
