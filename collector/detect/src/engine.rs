//! The detection engine: takes observations, closes windows as time passes, scores each
//! consumer's window against its baseline and its peers, runs the episodes, and hands back
//! alert updates. Owns all detection state, its snapshot and its memory accounting.
//!
//! Time only moves forward, and only through the records' times and [`Engine::tick`]: a
//! window closes when an observation or a tick reaches its end. Observations older than the
//! open window are counted into it (and in [`Stats::late`]).

use crate::alert::{Alert, AlertStatus, AlertUpdate, Change, Detector, Evidence, Severity};
use crate::baseline::seasonal::slot_of;
use crate::baseline::{ConsumerState, Window};
use crate::config::{Config, ConfigError, DAY_MS, HOUR_MS};
use crate::detectors::{score_all, Context, Signal};
use crate::episode::Step;
use crate::observation::Observation;
use crate::peers::EndpointTable;
use hashbrown::HashMap;
use plumbline_wire::ConsumerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the snapshot encoding. 3: habits keep eight days (were seven).
pub const SNAPSHOT_FORMAT: u16 = 3;
/// Alert updates kept for the next tick at most; past it they are dropped and counted.
const MAX_PENDING: usize = 100_000;
/// Active windows after which a consumer's baseline has full confidence.
const CONFIDENT_WINDOWS: f64 = 72.0;
/// Weight of this week's window in its hour-of-week slot (last week's counts for half).
const SLOT_ALPHA: f64 = 0.5;
/// How much the "largest lately" memories keep per hour (about 0.89 a day): a habit seen
/// yesterday still covers today, one seen a month ago no longer does.
const HABIT_DECAY_PER_HOUR: f64 = 0.995;
/// Fewest consumers showing the same change that make it a platform event.
const POPULATION_MIN: usize = 5;

/// Counters an operator can export as metrics.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub consumers: u64,
    pub observations: u64,
    /// Observations of consumers past `max_consumers`, not tracked.
    pub dropped_consumers: u64,
    /// Observations older than the open window, counted into it.
    pub late: u64,
    pub windows_closed: u64,
    /// Windows skipped after a jump in time (see `max_catch_up_windows`).
    pub windows_skipped: u64,
    /// Consumers forgotten after `forget_after_ms` without a request.
    pub consumers_forgotten: u64,
    /// Alert updates dropped because nobody called `tick` to collect them.
    pub updates_dropped: u64,
    /// New episodes held back because many consumers showed the same change at once.
    pub population_events: u64,
}

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot is not valid: {0}")]
    Malformed(String),
    #[error("snapshot format {found} is not supported (this engine reads format {supported})")]
    Format { found: u16, supported: u16 },
    #[error("snapshot was taken with {snapshot} ms windows but the config says {config} ms")]
    Window { snapshot: u64, config: u64 },
    #[error("config is invalid: {0}")]
    Config(#[from] ConfigError),
}

/// Baselines, open episodes and the open window of every consumer.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Config,
    consumers: Vec<ConsumerState>,
    index: HashMap<ConsumerId, u32>,
    table: EndpointTable,
    alerts: BTreeMap<(ConsumerId, u8), Alert>,
    window_start: Option<u64>,
    next_alert_id: u64,
    pending: Vec<AlertUpdate>,
    stats: Stats,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            consumers: Vec::new(),
            index: HashMap::new(),
            table: EndpointTable::default(),
            alerts: BTreeMap::new(),
            window_start: None,
            next_alert_id: 1,
            pending: Vec::new(),
            stats: Stats::default(),
        })
    }

    /// Counts one request. Closes windows its time has passed (their alert updates come out
    /// of the next [`Engine::tick`]).
    pub fn observe(&mut self, obs: &Observation<'_>) {
        self.stats.observations += 1;
        self.advance(obs.time_ms);
        if self.window_start.is_some_and(|start| obs.time_ms < start) {
            self.stats.late += 1;
        }
        let Some(i) = self.consumer_index(obs) else {
            self.stats.dropped_consumers += 1;
            return;
        };
        let day = (obs.time_ms / DAY_MS) as u16;
        let cap = self.config.max_endpoints_per_consumer;
        let consumer = &mut self.consumers[i];
        let seen = consumer.observe(obs, day, cap);
        if seen.first_call {
            let learned = obs.time_ms >= consumer.first_seen_ms + self.config.learning_ms;
            let rare = self.table.is_rare(
                obs.endpoint,
                self.consumers.len(),
                self.config.rare_share,
                self.config.rare_min_consumers,
            );
            self.table.add_user(obs.endpoint, obs.endpoint_path);
            if learned && (obs.sensitive || rare) {
                self.consumers[i].note_first_use(obs.endpoint, obs.sensitive);
            }
        }
    }

    fn consumer_index(&mut self, obs: &Observation<'_>) -> Option<usize> {
        if let Some(i) = self.index.get(&obs.consumer) {
            return Some(*i as usize);
        }
        if self.consumers.len() >= self.config.max_consumers {
            return None;
        }
        let i = self.consumers.len();
        self.consumers
            .push(ConsumerState::new(obs.consumer, obs.time_ms));
        self.index.insert(obs.consumer, i as u32);
        self.stats.consumers = self.consumers.len() as u64;
        Some(i)
    }

    /// Closes every window that ended at or before `now_ms` and returns the alert updates
    /// since the last tick. `now_ms` is on the records' time scale (the latest record time
    /// when replaying a log, the wall clock when live).
    pub fn tick(&mut self, now_ms: u64) -> Vec<AlertUpdate> {
        self.advance(now_ms);
        std::mem::take(&mut self.pending)
    }

    /// Marks an open alert acknowledged; `None` when no open alert has this id.
    pub fn acknowledge(&mut self, id: u64) -> Option<AlertUpdate> {
        let alert = self.alerts.values_mut().find(|a| a.id == id)?;
        alert.status = AlertStatus::Acknowledged;
        Some(AlertUpdate {
            change: Change::Acknowledged,
            alert: alert.clone(),
        })
    }

    /// Alerts whose episode is still going on, oldest first.
    pub fn open_alerts(&self) -> Vec<Alert> {
        let mut open: Vec<Alert> = self.alerts.values().cloned().collect();
        open.sort_by_key(|a| a.id);
        open
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Start of the open window, once the first record or tick has been seen.
    pub fn window_start(&self) -> Option<u64> {
        self.window_start
    }

    /// Gives an endpoint a new path for evidence: the collector's inventory renamed it (a
    /// position became a parameter) or merged it into another. Unknown endpoints are ignored.
    pub fn describe_endpoint(&mut self, endpoint: u32, path: &str) {
        self.table.describe(endpoint, path);
    }

    fn advance(&mut self, now: u64) {
        let w = self.config.window_ms;
        let Some(start) = self.window_start else {
            self.window_start = Some(now - now % w);
            return;
        };
        if now < start + w {
            return;
        }
        let behind = (now - start) / w;
        if behind > u64::from(self.config.max_catch_up_windows) {
            self.close_window(start);
            self.stats.windows_skipped += behind - 1;
            self.window_start = Some(now - now % w);
            return;
        }
        for k in 0..behind {
            self.close_window(start + k * w);
        }
        self.window_start = Some(start + behind * w);
    }

    fn window(&self, start: u64) -> Window {
        let w = self.config.window_ms;
        let per_hour = (HOUR_MS as f64 / w as f64).max(1.0);
        Window {
            start_ms: start,
            end_ms: start + w,
            slot: slot_of(start),
            day: (start / DAY_MS) as u16,
            slot_alpha: SLOT_ALPHA / per_hour,
            habit_decay: HABIT_DECAY_PER_HOUR.powf(w as f64 / HOUR_MS as f64),
        }
    }

    fn scored(&self, c: &ConsumerState, end: u64) -> bool {
        end >= c.first_seen_ms + self.config.learning_ms
    }

    fn close_window(&mut self, start: u64) {
        let window = self.window(start);
        self.table.prepare_window(&self.consumers);
        let (found, blocked) = self.score_window(&window);
        self.run_episodes(&window, found, &blocked);
        self.stats.windows_closed += 1;
        self.forget_idle(window.end_ms);
    }

    /// Signals of every scored consumer, and the detectors that many consumers tripped at once.
    fn score_window(&self, window: &Window) -> (Vec<(usize, Signal)>, [bool; 8]) {
        let ctx = Context {
            window,
            config: &self.config,
            table: &self.table,
        };
        let incident = |e: u32| self.table.incident(e);
        let mut found = Vec::new();
        let mut opening = [0usize; 8];
        let mut active = 0usize;
        for (i, c) in self.consumers.iter().enumerate() {
            active += usize::from(c.calls > 0);
            if !self.scored(c, window.end_ms) {
                continue;
            }
            let features = c.features(window.slot, &incident);
            let trust = 0.5 + 0.5 * confidence(c);
            for mut signal in score_all(&ctx, c, &features) {
                let thresholds = self.config.detector(signal.detector);
                signal.score *= trust;
                if signal.score < thresholds.sustain {
                    continue;
                }
                if signal.score >= thresholds.open {
                    opening[signal.detector.index()] += 1;
                }
                found.push((i, signal));
            }
        }
        let limit =
            ((self.config.population_share * active as f64).ceil() as usize).max(POPULATION_MIN);
        (found, opening.map(|n| n >= limit))
    }

    fn run_episodes(&mut self, window: &Window, found: Vec<(usize, Signal)>, blocked: &[bool; 8]) {
        self.stats.population_events += blocked.iter().filter(|b| **b).count() as u64;
        let mut found = found.into_iter().peekable();
        for i in 0..self.consumers.len() {
            let mut signals: [Option<Signal>; 8] = Default::default();
            while let Some((_, signal)) = found.next_if(|(j, _)| *j == i) {
                let d = signal.detector.index();
                signals[d] = Some(signal);
            }
            let scored = self.scored(&self.consumers[i], window.end_ms);
            let mut flagged = [false; 8];
            for detector in Detector::ALL {
                let d = detector.index();
                if !self.config.detector(detector).enabled {
                    continue;
                }
                let signal = signals[d].take();
                let may_open = scored && !blocked[d];
                self.step_episode(i, detector, signal.as_ref(), may_open, window);
                flagged[d] = signal.is_some() || self.consumers[i].episodes[d].is_open();
            }
            let incident = |e: u32| self.table.incident(e);
            let consumer = &self.consumers[i];
            let features = consumer.features(window.slot, &incident);
            self.consumers[i].learn(window, &features, &flagged);
        }
    }

    fn step_episode(
        &mut self,
        i: usize,
        detector: Detector,
        signal: Option<&Signal>,
        may_open: bool,
        window: &Window,
    ) {
        let thresholds = *self.config.detector(detector);
        let resolve_after = self.config.resolve_after_windows;
        let score = signal.map_or(0.0, |s| s.score);
        let consumer = &mut self.consumers[i];
        let step =
            consumer.episodes[detector.index()].step(score, &thresholds, resolve_after, may_open);
        let key = (consumer.id, detector.index() as u8);
        match (step, signal) {
            (Step::Open, Some(signal)) => {
                let alert = self.open_alert(i, signal, window);
                self.alerts.insert(key, alert.clone());
                self.push(Change::Opened, alert);
            }
            (Step::Update, Some(signal)) => {
                let evidence = evidence(&self.table, signal, window);
                let severity = severity(signal, &self.config);
                if let Some(alert) = self.alerts.get_mut(&key) {
                    alert.windows += 1;
                    alert.last_seen_ms = window.end_ms;
                    if signal.score > alert.score {
                        alert.score = signal.score;
                        alert.evidence = evidence;
                    }
                    alert.severity = alert.severity.max(severity);
                    let alert = alert.clone();
                    self.push(Change::Updated, alert);
                }
            }
            (Step::Resolve, _) => {
                if let Some(mut alert) = self.alerts.remove(&key) {
                    alert.status = AlertStatus::Resolved;
                    alert.resolved_ms = Some(window.end_ms);
                    self.push(Change::Resolved, alert);
                }
            }
            _ => {}
        }
    }

    fn open_alert(&mut self, i: usize, signal: &Signal, window: &Window) -> Alert {
        let id = self.next_alert_id;
        self.next_alert_id += 1;
        let consumer = &self.consumers[i];
        Alert {
            id,
            consumer: consumer.id,
            detector: signal.detector,
            severity: severity(signal, &self.config),
            score: signal.score,
            confidence: confidence(consumer),
            status: AlertStatus::Open,
            opened_ms: window.end_ms,
            last_seen_ms: window.end_ms,
            resolved_ms: None,
            windows: 1,
            evidence: evidence(&self.table, signal, window),
        }
    }

    fn push(&mut self, change: Change, alert: Alert) {
        if self.pending.len() >= MAX_PENDING {
            self.stats.updates_dropped += 1;
            return;
        }
        self.pending.push(AlertUpdate { change, alert });
    }

    /// Drops consumers idle for `forget_after_ms` that have no open alert.
    fn forget_idle(&mut self, now: u64) {
        let limit = self.config.forget_after_ms;
        let mut i = 0;
        while i < self.consumers.len() {
            let c = &self.consumers[i];
            let idle = now.saturating_sub(c.last_seen_ms) > limit;
            if !idle || c.episodes.iter().any(|e| e.is_open()) {
                i += 1;
                continue;
            }
            self.index.remove(&c.id);
            self.consumers.swap_remove(i);
            if let Some(moved) = self.consumers.get(i) {
                self.index.insert(moved.id, i as u32);
            }
            self.stats.consumers_forgotten += 1;
        }
        self.stats.consumers = self.consumers.len() as u64;
    }

    /// Bytes of memory the engine's state takes (consumers, index, endpoint table, alerts).
    pub fn memory_bytes(&self) -> usize {
        let consumers = self.consumers.capacity() * std::mem::size_of::<ConsumerState>()
            + self
                .consumers
                .iter()
                .map(ConsumerState::heap_bytes)
                .sum::<usize>();
        let alerts = self
            .alerts
            .values()
            .map(|a| std::mem::size_of::<Alert>() + 48 + a.evidence.summary.len() + 64)
            .sum::<usize>();
        std::mem::size_of::<Engine>()
            + consumers
            + self.index.allocation_size()
            + self.table.heap_bytes()
            + alerts
            + self.pending.capacity() * std::mem::size_of::<AlertUpdate>()
    }

    /// Memory of one consumer's state (for the per-consumer budget).
    pub fn consumer_memory_bytes(&self, id: &ConsumerId) -> Option<usize> {
        let c = &self.consumers[*self.index.get(id)? as usize];
        let index_entry = std::mem::size_of::<(ConsumerId, u32)>() + 1;
        Some(std::mem::size_of::<ConsumerState>() + c.heap_bytes() + index_entry)
    }

    /// All state as bytes (postcard), to survive a restart.
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = SnapshotRef {
            format: SNAPSHOT_FORMAT,
            window_ms: self.config.window_ms,
            window_start: self.window_start,
            next_alert_id: self.next_alert_id,
            stats: self.stats,
            consumers: &self.consumers,
            table: &self.table,
            alerts: self.alerts.values().collect(),
            pending: &self.pending,
        };
        // Serializing these plain types into a Vec cannot fail.
        postcard::to_allocvec(&snapshot).unwrap_or_default()
    }

    /// An engine from a snapshot taken by [`Engine::snapshot`], with a (possibly new) config
    /// that must keep the same window length.
    pub fn restore(config: Config, bytes: &[u8]) -> Result<Engine, RestoreError> {
        config.validate()?;
        let (format, _): (u16, _) =
            postcard::take_from_bytes(bytes).map_err(|e| RestoreError::Malformed(e.to_string()))?;
        if format != SNAPSHOT_FORMAT {
            return Err(RestoreError::Format {
                found: format,
                supported: SNAPSHOT_FORMAT,
            });
        }
        let s: SnapshotOwned =
            postcard::from_bytes(bytes).map_err(|e| RestoreError::Malformed(e.to_string()))?;
        if s.window_ms != config.window_ms {
            return Err(RestoreError::Window {
                snapshot: s.window_ms,
                config: config.window_ms,
            });
        }
        let index = s
            .consumers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i as u32))
            .collect();
        let alerts = s
            .alerts
            .into_iter()
            .map(|a| ((a.consumer, a.detector.index() as u8), a))
            .collect();
        Ok(Engine {
            config,
            consumers: s.consumers,
            index,
            table: s.table,
            alerts,
            window_start: s.window_start,
            next_alert_id: s.next_alert_id,
            pending: s.pending,
            stats: s.stats,
        })
    }
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u16,
    window_ms: u64,
    window_start: Option<u64>,
    next_alert_id: u64,
    stats: Stats,
    consumers: &'a [ConsumerState],
    table: &'a EndpointTable,
    alerts: Vec<&'a Alert>,
    pending: &'a [AlertUpdate],
}

#[derive(Deserialize)]
struct SnapshotOwned {
    #[allow(dead_code)]
    format: u16,
    window_ms: u64,
    window_start: Option<u64>,
    next_alert_id: u64,
    stats: Stats,
    consumers: Vec<ConsumerState>,
    table: EndpointTable,
    alerts: Vec<Alert>,
    pending: Vec<AlertUpdate>,
}

/// 0..1: how much of a baseline the consumer has (active windows seen).
fn confidence(c: &ConsumerState) -> f64 {
    (f64::from(c.active_windows) / CONFIDENT_WINDOWS).min(1.0)
}

fn severity(signal: &Signal, config: &Config) -> Severity {
    if let Some(severity) = signal.severity {
        return severity;
    }
    let open = config.detector(signal.detector).open;
    if signal.score >= 2.0 * open {
        Severity::High
    } else if signal.score >= open {
        Severity::Medium
    } else {
        Severity::Low
    }
}

fn evidence(table: &EndpointTable, signal: &Signal, window: &Window) -> Evidence {
    Evidence {
        feature: signal.feature.to_string(),
        baseline: round(signal.baseline),
        current: round(signal.current),
        peers: signal.peers.map(round),
        window_start_ms: window.start_ms,
        window_end_ms: window.end_ms,
        endpoints: signal.endpoints.iter().map(|e| table.path(*e)).collect(),
        summary: signal.summary.clone(),
    }
}

/// Three significant decimals are plenty for evidence.
fn round(x: f64) -> f64 {
    if x.abs() >= 100.0 {
        x.round()
    } else {
        (x * 1_000.0).round() / 1_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::mix64;
    use plumbline_wire::Addr;

    /// 2026-03-02T00:00Z, a Monday.
    const START: u64 = 1_772_409_600_000;
    const PATHS: [&str; 4] = [
        "GET /v1/orders/{id}",
        "GET /v1/orders",
        "POST /v1/orders",
        "GET /v1/admin/users",
    ];

    fn id(c: u32) -> ConsumerId {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&c.to_le_bytes());
        ConsumerId(bytes)
    }

    fn obs(c: u32, t: u64, endpoint: u32, n: u64) -> Observation<'static> {
        Observation {
            time_ms: t,
            consumer: id(c),
            endpoint,
            endpoint_path: PATHS[endpoint as usize],
            object: (endpoint == 0).then(|| mix64(n)),
            object_number: (endpoint == 0).then_some(n),
            status: 200,
            response_bytes: 1_500,
            client: Some(Addr::V4([10, 0, c as u8, 1])),
            user_agent: 42 << 32,
            weight: 1,
            sensitive: endpoint == 3,
        }
    }

    /// `per_hour` requests of consumer `c` in hour `h`, spread evenly, on its usual endpoints.
    fn hour_of(c: u32, h: u64, per_hour: u64) -> Vec<Observation<'static>> {
        let t0 = START + h * HOUR_MS;
        (0..per_hour)
            .map(|i| {
                let t = t0 + i * HOUR_MS / per_hour;
                obs(c, t, (i % 3) as u32, 1_000 + (mix64(i ^ h << 20) % 40))
            })
            .collect()
    }

    fn config() -> Config {
        Config::demo(2 * DAY_MS, HOUR_MS)
    }

    /// Runs hours `from..to`; `load(c, h)` is consumer c's requests in hour h.
    fn run(
        engine: &mut Engine,
        consumers: u32,
        from: u64,
        to: u64,
        load: impl Fn(u32, u64) -> u64,
    ) -> Vec<AlertUpdate> {
        let mut updates = Vec::new();
        for h in from..to {
            let mut batch: Vec<_> = (0..consumers)
                .flat_map(|c| hour_of(c, h, load(c, h)))
                .collect();
            batch.sort_by_key(|o| o.time_ms);
            for o in &batch {
                engine.observe(o);
            }
            updates.extend(engine.tick(START + (h + 1) * HOUR_MS));
        }
        updates
    }

    fn of(updates: &[AlertUpdate], detector: Detector, change: Change) -> Vec<&AlertUpdate> {
        updates
            .iter()
            .filter(|u| u.alert.detector == detector && u.change == change)
            .collect()
    }

    #[test]
    fn a_surge_after_learning_opens_one_alert_that_updates_then_resolves() {
        let mut engine = Engine::new(config()).unwrap();
        run(&mut engine, 3, 0, 72, |_, _| 100);
        let surge = run(
            &mut engine,
            3,
            72,
            76,
            |c, _| if c == 1 { 900 } else { 100 },
        );
        let calm = run(&mut engine, 3, 76, 84, |_, _| 100);

        let opened = of(&surge, Detector::VolumeSurge, Change::Opened);
        assert_eq!(opened.len(), 1, "{surge:?}");
        let alert = &opened[0].alert;
        assert_eq!(alert.consumer, id(1));
        assert_eq!(alert.status, AlertStatus::Open);
        assert_eq!(alert.evidence.feature, "requests_per_window");
        assert!(alert.evidence.current > 5.0 * alert.evidence.baseline);
        assert!(!of(&surge, Detector::VolumeSurge, Change::Updated).is_empty());
        let resolved = of(&calm, Detector::VolumeSurge, Change::Resolved);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].alert.id, alert.id);
        assert!(engine.open_alerts().is_empty());
    }

    #[test]
    fn nothing_is_scored_during_the_learning_period() {
        let mut engine = Engine::new(config()).unwrap();
        let updates = run(&mut engine, 2, 0, 40, |c, h| {
            if c == 0 && h > 30 {
                900
            } else {
                100
            }
        });
        assert!(updates.is_empty(), "{updates:?}");
    }

    #[test]
    fn a_first_call_to_an_admin_endpoint_after_learning_is_a_high_alert() {
        let mut engine = Engine::new(config()).unwrap();
        run(&mut engine, 2, 0, 60, |_, _| 50);
        engine.observe(&obs(0, START + 60 * HOUR_MS + 10, 3, 0));
        let updates = engine.tick(START + 61 * HOUR_MS);
        let opened = of(&updates, Detector::FirstUse, Change::Opened);
        assert_eq!(opened.len(), 1, "{updates:?}");
        assert_eq!(opened[0].alert.severity, Severity::High);
        assert_eq!(
            opened[0].alert.evidence.endpoints,
            vec!["GET /v1/admin/users"]
        );
    }

    #[test]
    fn the_same_records_give_the_same_alerts() {
        let load = |c: u32, h: u64| {
            if c == 2 && (60..63).contains(&h) {
                1_000
            } else {
                80
            }
        };
        let mut a = Engine::new(config()).unwrap();
        let mut b = Engine::new(config()).unwrap();
        assert_eq!(run(&mut a, 4, 0, 70, load), run(&mut b, 4, 0, 70, load));
        assert_eq!(a.snapshot(), b.snapshot());
    }

    #[test]
    fn a_restored_snapshot_carries_on_exactly_like_the_original() {
        let load = |c: u32, h: u64| if c == 0 && h >= 60 { 700 } else { 90 };
        let mut original = Engine::new(config()).unwrap();
        run(&mut original, 3, 0, 61, load);
        let mut restored = Engine::restore(config(), &original.snapshot()).unwrap();
        assert_eq!(restored.stats(), original.stats());
        let from_original = run(&mut original, 3, 61, 70, load);
        let from_restored = run(&mut restored, 3, 61, 70, load);
        assert!(!from_original.is_empty());
        assert_eq!(from_original, from_restored);
    }

    #[test]
    fn a_snapshot_is_refused_with_another_window_length_or_when_garbled() {
        let mut engine = Engine::new(config()).unwrap();
        run(&mut engine, 1, 0, 3, |_, _| 10);
        let bytes = engine.snapshot();
        let other = Config::demo(2 * DAY_MS, 2 * HOUR_MS);
        assert!(matches!(
            Engine::restore(other, &bytes),
            Err(RestoreError::Window { .. })
        ));
        assert!(matches!(
            Engine::restore(config(), &bytes[..bytes.len() / 2]),
            Err(RestoreError::Malformed(_))
        ));
        assert!(matches!(
            Engine::restore(config(), &[9, 9]),
            Err(RestoreError::Format { found: 9, .. })
        ));
    }

    #[test]
    fn acknowledging_marks_the_open_alert_and_unknown_ids_give_none() {
        let mut engine = Engine::new(config()).unwrap();
        run(&mut engine, 2, 0, 60, |_, _| 100);
        let updates = run(
            &mut engine,
            2,
            60,
            62,
            |c, _| if c == 0 { 1_200 } else { 100 },
        );
        let opened = &of(&updates, Detector::VolumeSurge, Change::Opened)[0].alert;
        let ack = engine.acknowledge(opened.id).unwrap();
        assert_eq!(ack.change, Change::Acknowledged);
        assert_eq!(ack.alert.status, AlertStatus::Acknowledged);
        let open = engine.open_alerts();
        let same = open.iter().find(|a| a.id == opened.id).unwrap();
        assert_eq!(same.status, AlertStatus::Acknowledged);
        assert!(engine.acknowledge(opened.id + 1_000).is_none());
    }

    #[test]
    fn a_surge_every_consumer_shows_at_once_is_a_platform_event_not_abuse() {
        let mut engine = Engine::new(config()).unwrap();
        run(&mut engine, 20, 0, 60, |_, _| 100);
        let updates = run(&mut engine, 20, 60, 62, |_, _| 1_000);
        assert!(of(&updates, Detector::VolumeSurge, Change::Opened).is_empty());
        assert!(engine.stats().population_events > 0);
    }

    #[test]
    fn records_older_than_the_open_window_count_into_it_as_late() {
        let mut engine = Engine::new(config()).unwrap();
        engine.observe(&obs(0, START + 2 * HOUR_MS, 1, 0));
        engine.observe(&obs(0, START + 3 * HOUR_MS + 5, 1, 0));
        engine.observe(&obs(0, START + 2 * HOUR_MS + 9, 1, 0));
        assert_eq!(engine.stats().late, 1);
        assert_eq!(engine.window_start(), Some(START + 3 * HOUR_MS));
    }

    #[test]
    fn a_jump_in_time_skips_windows_instead_of_learning_silence() {
        let mut engine = Engine::new(config()).unwrap();
        engine.observe(&obs(0, START, 1, 0));
        engine.tick(START + 100 * DAY_MS);
        let stats = engine.stats();
        assert_eq!(stats.windows_closed, 1);
        assert!(stats.windows_skipped > 2_000, "{stats:?}");
    }

    #[test]
    fn consumers_past_the_cap_are_dropped_and_counted() {
        let mut engine = Engine::new(Config {
            max_consumers: 2,
            ..config()
        })
        .unwrap();
        for c in 0..4 {
            engine.observe(&obs(c, START, 1, 0));
        }
        assert_eq!(engine.stats().consumers, 2);
        assert_eq!(engine.stats().dropped_consumers, 2);
    }

    #[test]
    fn a_consumer_idle_past_the_limit_is_forgotten() {
        let mut engine = Engine::new(config()).unwrap();
        engine.observe(&obs(0, START, 1, 0));
        engine.observe(&obs(1, START, 1, 0));
        for day in 1..40 {
            engine.observe(&obs(1, START + day * DAY_MS, 1, 0));
        }
        assert_eq!(engine.stats().consumers, 1);
        assert_eq!(engine.stats().consumers_forgotten, 1);
        assert!(engine.consumer_memory_bytes(&id(0)).is_none());
    }

    #[test]
    fn a_consumer_using_twenty_endpoints_fits_in_two_kibibytes() {
        let mut engine = Engine::new(config()).unwrap();
        for h in 0..72 {
            for e in 0..20u32 {
                let mut o = obs(0, START + h * HOUR_MS + u64::from(e), 0, u64::from(e));
                o.endpoint = 100 + e;
                engine.observe(&o);
            }
        }
        let bytes = engine.consumer_memory_bytes(&id(0)).unwrap();
        assert!(bytes <= 2_048, "{bytes}");
    }

    #[test]
    fn alerts_serialise_to_json_with_a_hex_consumer() {
        let mut engine = Engine::new(config()).unwrap();
        run(&mut engine, 1, 0, 60, |_, _| 100);
        let updates = run(&mut engine, 1, 60, 61, |_, _| 1_500);
        let surge = of(&updates, Detector::VolumeSurge, Change::Opened)[0];
        let json = serde_json::to_string(surge).unwrap();
        assert!(
            json.contains("\"consumer\":\"00000000000000000000000000000000\""),
            "{json}"
        );
        assert!(json.contains("\"detector\":\"volume_surge\""), "{json}");
        assert!(json.contains("\"change\":\"opened\""), "{json}");
    }
}
