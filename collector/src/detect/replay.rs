//! Generated traffic through the ingest pipeline, for the detection evaluation
//! (`eval-detect`): the scenario's records (raw paths with their IDs, client addresses, user
//! agents, consumer ids made from API keys the way a filter makes them) are packed into
//! batches as one filter ships them (at most 500 records or one second each), encoded,
//! decoded within the ingest limits and applied to a [`Pipeline`]: sender window, path
//! templating, inventory, consumers, then detection on the templated endpoint and the IDs the
//! template replaced. After every batch the windows its records passed are closed, as offline
//! ingest does, so alerts come on the records' own timestamps.
//!
//! Only the database is left out: it stores what the pipeline decides and changes no alert.

use super::config::DetectSettings;
use super::Detection;
use crate::pipeline::{Pipeline, Settings};
use plumbline_detect::evaluation::SALT;
use plumbline_detect::scenario::{GenRecord, Scenario};
use plumbline_detect::{AlertUpdate, Engine};
use plumbline_wire::{Batch, BatchBuilder, ConsumerId, Limits, Record};
use std::time::{Duration, Instant};

/// The API's host in every record.
const HOST: &str = "api.partner.example";
/// A batch closes at this many records, as the filter's default `max_batch_records`.
const MAX_BATCH_RECORDS: usize = 500;
/// ... or when it spans this long, as the filter's default `flush_interval_ms`.
const MAX_BATCH_SPAN_MS: u64 = 1_000;

/// What a replay produced.
#[derive(Debug)]
pub struct Replay {
    /// Every alert update, in order.
    pub updates: Vec<AlertUpdate>,
    pub window_ms: u64,
    pub records: u64,
    pub attack_records: u64,
    pub batches: u64,
    /// `"METHOD /template"` of every endpoint the inventory holds at the end.
    pub endpoints: Vec<String>,
    pub consumers: usize,
    pub detection_memory_bytes: usize,
    /// Time spent decoding, applying and closing windows (not generating).
    pub pipeline_time: Duration,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("detection config: {0}")]
    Config(#[from] plumbline_detect::ConfigError),
    #[error("batch {seq} was refused: {error}")]
    Decode {
        seq: u64,
        error: plumbline_wire::DecodeError,
    },
    #[error("batch {seq} was not counted whole: {outcome:?}")]
    NotCounted {
        seq: u64,
        outcome: crate::pipeline::Outcome,
    },
}

/// Feeds `scenario` through a fresh pipeline with detection as `settings` configure it.
pub fn replay(scenario: &Scenario, settings: &DetectSettings) -> Result<Replay, ReplayError> {
    let engine = Engine::new(settings.engine.clone())?;
    let mut pipeline = Pipeline::new(Settings::default());
    pipeline.detect = Some(Detection::new(engine, 0, &settings.sensitive_words));
    let mut replay = Replay {
        updates: Vec::new(),
        window_ms: settings.engine.window_ms,
        records: 0,
        attack_records: 0,
        batches: 0,
        endpoints: Vec::new(),
        consumers: 0,
        detection_memory_bytes: 0,
        pipeline_time: Duration::ZERO,
    };

    let mut sender = Sender::new(scenario);
    for record in scenario.records() {
        replay.records += 1;
        replay.attack_records += u64::from(record.attack.is_some());
        if let Some(batch) = sender.add(&record) {
            replay.apply(&mut pipeline, &batch)?;
        }
    }
    if let Some(batch) = sender.flush() {
        replay.apply(&mut pipeline, &batch)?;
    }

    if let Some(detection) = pipeline.detect.as_mut() {
        replay.updates.extend(detection.tick(scenario.end_ms()));
        replay.consumers = detection.stats().consumers as usize;
        replay.detection_memory_bytes = detection.memory_bytes();
    }
    replay.endpoints = pipeline
        .inventory
        .endpoints()
        .iter()
        .map(|(_, e)| format!("{} {}", e.method, e.path))
        .collect();
    Ok(replay)
}

impl Replay {
    /// One batch as `POST /v1/batches` takes it: decoded within the ingest limits, applied,
    /// then the windows its records passed are closed.
    fn apply(&mut self, pipeline: &mut Pipeline, encoded: &[u8]) -> Result<(), ReplayError> {
        let started = Instant::now();
        let batch =
            Batch::decode(encoded, &Limits::default()).map_err(|error| ReplayError::Decode {
                seq: self.batches + 1,
                error,
            })?;
        let latest = batch.records.iter().map(|r| batch.time_ms(r)).max();
        let latest = latest.unwrap_or_default();
        let outcome = pipeline.apply_batch(&batch, latest);
        if outcome.duplicate || outcome.over_cap > 0 {
            let seq = batch.seq;
            return Err(ReplayError::NotCounted { seq, outcome });
        }
        if let Some(detection) = pipeline.detect.as_mut() {
            self.updates.extend(detection.tick(detection.latest_ms()));
        }
        self.batches += 1;
        self.pipeline_time += started.elapsed();
        Ok(())
    }
}

/// Packs records into encoded batches the way one filter instance ships them.
struct Sender<'a> {
    scenario: &'a Scenario,
    ids: Vec<ConsumerId>,
    builder: Option<BatchBuilder>,
    seq: u64,
}

impl<'a> Sender<'a> {
    fn new(scenario: &'a Scenario) -> Self {
        let ids = (0..scenario.consumers.len() as u32)
            .map(|c| scenario.consumer_id(c, SALT))
            .collect();
        Sender {
            scenario,
            ids,
            builder: None,
            seq: 0,
        }
    }

    /// Adds `r` (records come in time order); answers the batch it closed, if any.
    fn add(&mut self, r: &GenRecord) -> Option<Vec<u8>> {
        let span_over = |b: &BatchBuilder| r.time_ms >= b.base_time_ms() + MAX_BATCH_SPAN_MS;
        let closed = if self.builder.as_ref().is_some_and(span_over) {
            self.flush()
        } else {
            None
        };

        let scenario = self.scenario;
        let consumer = self.ids[r.consumer as usize];
        let b = self
            .builder
            .get_or_insert_with(|| BatchBuilder::new(r.time_ms));
        let record = record(b, r, consumer, scenario);
        b.push(record);

        if b.len() >= MAX_BATCH_RECORDS {
            debug_assert!(closed.is_none(), "a new batch holds one record");
            return self.flush();
        }
        closed
    }

    /// The open batch, encoded; `None` when none is open.
    fn flush(&mut self) -> Option<Vec<u8>> {
        let builder = self.builder.take()?;
        self.seq += 1;
        let mut batch = builder.finish();
        batch.node = "eval-envoy".into();
        batch.instance = 1;
        batch.seq = self.seq;
        Some(batch.encode())
    }
}

/// The filter record of a generated request.
fn record(b: &mut BatchBuilder, r: &GenRecord, id: ConsumerId, s: &Scenario) -> Record {
    let (path, flags) = b.path(&r.path());
    Record {
        offset_ms: b.offset_ms(r.time_ms),
        method: b.method(r.method().as_bytes()),
        host: b.intern(HOST),
        path,
        query: vec![],
        status: r.status,
        request_bytes: u64::from(r.request_bytes),
        response_bytes: r.response_bytes,
        duration_us: 0,
        consumer: Some(b.consumer(id)),
        label: None,
        client: Some(b.addr(r.client)),
        user_agent: Some(b.intern(&s.user_agents[r.user_agent as usize])),
        request_type: None,
        response_type: Some(b.intern("application/json")),
        flags,
        weight: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_detect::evaluation::{Report, Run};
    use plumbline_detect::scenario::{ScenarioConfig, CATALOGUE};
    use plumbline_detect::Detector;

    fn small() -> Scenario {
        Scenario::new(ScenarioConfig {
            consumers: 24,
            days: 10,
            attacks_per_cell: 1,
            ..ScenarioConfig::default()
        })
    }

    #[test]
    fn generated_traffic_through_ingest_is_templated_into_the_catalogue_and_raises_its_alerts() {
        let scenario = small();
        let replay = replay(&scenario, &DetectSettings::default()).unwrap();

        assert_eq!(replay.records, scenario.records().count() as u64);
        assert!(replay.batches * MAX_BATCH_RECORDS as u64 >= replay.records);
        let catalogue: Vec<String> = CATALOGUE
            .iter()
            .map(|e| e.template().replace("{id}", ""))
            .collect();
        for endpoint in &replay.endpoints {
            let bare = endpoint.replace("{id}", "").replace("{uuid}", "");
            assert!(catalogue.contains(&bare), "{endpoint} is not in the API");
        }
        assert_eq!(replay.consumers, scenario.consumers.len());

        let run = Run::new(&scenario, replay.updates, replay.window_ms);
        let report = Report::new(&scenario, &run);
        for detector in [Detector::FirstUse, Detector::Exfiltration] {
            assert_eq!(report.detected(detector, 20), (1, 1), "{detector}");
        }
    }
}
