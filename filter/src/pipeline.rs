//! One VM's path from captured request to delivered batch: sampling, the capped buffer, batch
//! building (on the flush interval or when a batch is full) and the shipper, plus the counts
//! for Envoy's counters. A VM with nothing to ship sends an empty batch once per flush
//! interval, a poll, so it hears of new decision sets without traffic.
//!
//! Shared between the root context (ticks, collector answers) and HTTP contexts (records) of
//! one VM. Host-free: time comes in as an argument and sending goes through a [`Transport`].

use crate::batch::{build_batch, BatchHeader};
use crate::buffer::RecordBuffer;
use crate::capture::Captured;
use crate::config::Settings;
use crate::metrics::Tally;
use crate::sampling::Sampler;
use crate::shipper::{Event, Outcome, Shipper, Transport};
use log::{debug, info, warn};
use plumbline_wire::{BatchReply, DecodeError};

/// A readable collector reply, with the decision-set version its batch reported as held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub reply: BatchReply,
    pub batch_decisions_version: u64,
}

/// Sampling, buffering and shipping state of one VM.
#[derive(Debug)]
pub struct Pipeline {
    buffer: RecordBuffer,
    sampler: Sampler,
    shipper: Shipper,
    pub tally: Tally,
    node: String,
    instance: u64,
    max_batch_records: usize,
    flush_interval_ms: u64,
    /// When a tick first saw records waiting since the last batch was taken.
    waiting_since_ms: Option<u64>,
    /// Latest decision-set version the collector reported.
    collector_decisions_version: u64,
    /// Version of the decision set this VM holds, reported in each new batch.
    held_decisions_version: u64,
    /// What the pending batch reported as held.
    pending_decisions_version: u64,
    /// When the last batch (records or poll) was built.
    last_batch_ms: Option<u64>,
    warned_unreadable_reply: bool,
}

impl Pipeline {
    pub fn new(settings: &Settings, node: String, instance: u64) -> Self {
        Pipeline {
            buffer: RecordBuffer::new(settings.max_buffered_records),
            sampler: Sampler::new(settings.sample_rate, instance),
            shipper: Shipper::new(settings.batch_timeout_ms, instance.rotate_left(32)),
            tally: Tally::default(),
            node,
            instance,
            max_batch_records: settings.max_batch_records,
            flush_interval_ms: u64::from(settings.flush_interval_ms),
            waiting_since_ms: None,
            collector_decisions_version: 0,
            held_decisions_version: 0,
            pending_decisions_version: 0,
            last_batch_ms: None,
            warned_unreadable_reply: false,
        }
    }

    /// Applies a new configuration, keeping buffered records and the pending batch.
    pub fn reconfigure(&mut self, settings: &Settings, node: String) {
        self.tally.records_dropped += self.buffer.set_capacity(settings.max_buffered_records);
        self.sampler = Sampler::new(settings.sample_rate, self.instance);
        self.shipper.set_timeout(settings.batch_timeout_ms);
        self.node = node;
        self.max_batch_records = settings.max_batch_records;
        self.flush_interval_ms = u64::from(settings.flush_interval_ms);
    }

    /// `Some(weight)` when the current request is to be recorded.
    pub fn sample(&mut self) -> Option<u32> {
        self.sampler.sample()
    }

    /// Buffers a captured request (dropping the oldest one when full).
    pub fn record(&mut self, captured: Captured) {
        self.tally.records_captured += 1;
        self.tally.records_dropped += self.buffer.push(captured);
    }

    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn collector_decisions_version(&self) -> u64 {
        self.collector_decisions_version
    }

    /// Sets the decision-set version that new batches report as held.
    pub fn set_held_decisions_version(&mut self, version: u64) {
        self.held_decisions_version = version;
    }

    /// Periodic work: retries, given-up calls, and a new batch when one is due.
    pub fn tick(&mut self, now_ms: u64, transport: &mut impl Transport) {
        if !self.buffer.is_empty() && self.waiting_since_ms.is_none() {
            self.waiting_since_ms = Some(now_ms);
        }
        if let Some(event) = self.shipper.poll(now_ms, transport) {
            self.note(event);
        }
        self.ship_if_due(now_ms, transport);
    }

    /// Applies the collector's answer to call `token` and returns the reply when it was
    /// readable, for its decisions. The caller then calls [`Pipeline::ship_if_due`], so a full
    /// batch goes out at once, reporting the decision set the reply may have brought.
    pub fn on_answer(&mut self, token: u32, outcome: Outcome, now_ms: u64) -> Option<Answer> {
        let Some(event) = self.shipper.on_answer(token, &outcome, now_ms) else {
            debug!("ignoring answer to call {token}, not in flight");
            return None;
        };
        let answer = match outcome {
            Outcome::Delivered(reply) => self.read_reply(reply),
            Outcome::Failed(_) => None,
        };
        self.note(event);
        answer
    }

    fn read_reply(&mut self, reply: Result<BatchReply, DecodeError>) -> Option<Answer> {
        match reply {
            Ok(reply) => {
                let (accepted, duplicate) = (reply.accepted, reply.duplicate);
                debug!("collector accepted {accepted} records (duplicate: {duplicate})");
                self.collector_decisions_version = reply.decisions_version;
                Some(Answer {
                    reply,
                    batch_decisions_version: self.pending_decisions_version,
                })
            }
            Err(e) if !self.warned_unreadable_reply => {
                self.warned_unreadable_reply = true;
                warn!("collector answered 2xx with an unreadable reply ({e}); batch counted as delivered, decisions held kept (further cases logged at debug)");
                None
            }
            Err(e) => {
                debug!("unreadable collector reply: {e}");
                None
            }
        }
    }

    /// Builds and sends a batch (records, or an empty poll) when one is due and none is pending.
    pub fn ship_if_due(&mut self, now_ms: u64, transport: &mut impl Transport) {
        if !self.shipper.is_idle() || !(self.is_batch_due(now_ms) || self.is_poll_due(now_ms)) {
            return;
        }
        let (records, dropped) = self.buffer.take(self.max_batch_records);
        let header = BatchHeader {
            node: &self.node,
            instance: self.instance,
            seq: self.shipper.next_seq(),
            dropped,
            decisions_version: self.held_decisions_version,
        };
        let body = build_batch(&records, &header).encode();
        let count = u64::try_from(records.len()).unwrap_or(u64::MAX);
        drop(records);
        self.shipper.enqueue(body, count);
        self.pending_decisions_version = self.held_decisions_version;
        self.last_batch_ms = Some(now_ms);
        self.waiting_since_ms = (!self.buffer.is_empty()).then_some(now_ms);
        if let Some(event) = self.shipper.poll(now_ms, transport) {
            self.note(event);
        }
    }

    /// Due when a batch is full, or when records have waited a whole flush interval.
    fn is_batch_due(&self, now_ms: u64) -> bool {
        let full = self.buffer.len() >= self.max_batch_records;
        let waited = self
            .waiting_since_ms
            .is_some_and(|since| now_ms >= since.saturating_add(self.flush_interval_ms));
        full || (!self.buffer.is_empty() && waited)
    }

    /// Due when nothing is buffered and no batch was built for a whole flush interval.
    fn is_poll_due(&self, now_ms: u64) -> bool {
        let quiet = self
            .last_batch_ms
            .is_none_or(|at| now_ms >= at.saturating_add(self.flush_interval_ms));
        self.buffer.is_empty() && quiet
    }

    fn note(&mut self, event: Event) {
        match event {
            Event::Sent { seq } => debug!("batch {seq} sent"),
            Event::Delivered {
                seq,
                records,
                after_failures,
            } => {
                self.tally.records_shipped += records;
                self.tally.batches_shipped += 1;
                if after_failures > 0 {
                    info!("collector reachable again; batch {seq} delivered after {after_failures} failed attempts");
                } else {
                    debug!("batch {seq} delivered ({records} records)");
                }
            }
            Event::Failed {
                seq,
                failures,
                reason,
            } => {
                self.tally.batches_failed += 1;
                if failures == 1 {
                    warn!("batch {seq} not delivered: {reason}; retrying with backoff");
                } else {
                    debug!("batch {seq} attempt {failures} failed: {reason}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{capture, StreamFacts};
    use crate::host::tests::FakeView;
    use plumbline_wire::{Batch, BatchReply, Limits};

    #[derive(Default)]
    struct FakeTransport {
        sent: Vec<Vec<u8>>,
    }

    impl Transport for FakeTransport {
        fn send(&mut self, body: &[u8]) -> Result<u32, String> {
            self.sent.push(body.to_vec());
            Ok(u32::try_from(self.sent.len()).unwrap_or(u32::MAX))
        }
    }

    fn settings(extra: &str) -> Settings {
        let json = format!(
            r#"{{"collector_cluster": "c", "ingest_token": "t",
                "hash_salt": "0123456789abcdef"{extra}}}"#
        );
        Settings::from_json(json.as_bytes()).unwrap()
    }

    fn pipeline(extra: &str) -> (Pipeline, FakeTransport) {
        let p = Pipeline::new(&settings(extra), "n".into(), 7);
        (p, FakeTransport::default())
    }

    /// Ticks every 100 ms from `from` to `to` inclusive, like the root context's timer.
    fn tick_through(p: &mut Pipeline, t: &mut FakeTransport, from: u64, to: u64) {
        for now in (from..=to).step_by(100) {
            p.tick(now, t);
        }
    }

    fn request(now: u64) -> Captured {
        let view = FakeView::default()
            .header(":method", b"GET")
            .header(":path", b"/v1/items/7");
        let facts = StreamFacts {
            start_ns: now * 1_000_000,
            end_ns: now * 1_000_000,
            ..StreamFacts::default()
        };
        capture(&view, &settings(""), &facts, 1).unwrap()
    }

    fn decode(body: &[u8]) -> Batch {
        Batch::decode(body, &Limits::default()).unwrap()
    }

    /// Hands an answer to the pipeline as the root context does, then ships what is due.
    fn answer(
        p: &mut Pipeline,
        t: &mut FakeTransport,
        token: u32,
        o: Outcome,
        now: u64,
    ) -> Option<Answer> {
        let answer = p.on_answer(token, o, now);
        p.ship_if_due(now, t);
        answer
    }

    fn delivered() -> Outcome {
        Outcome::Delivered(Ok(BatchReply::new(0, false, 9)))
    }

    #[test]
    fn records_ship_once_they_have_waited_a_flush_interval() {
        let (mut p, mut t) = pipeline(r#", "flush_interval_ms": 1000"#);
        p.tick(0, &mut t);
        assert_eq!(
            decode(&t.sent[0]).records.len(),
            0,
            "an idle VM polls first"
        );
        answer(&mut p, &mut t, 1, delivered(), 10);
        tick_through(&mut p, &mut t, 100, 300);
        p.record(request(350));
        tick_through(&mut p, &mut t, 400, 1300);
        assert_eq!(t.sent.len(), 1, "waited 900 ms only");
        p.tick(1400, &mut t);
        let batch = decode(&t.sent[1]);
        assert_eq!((batch.instance, batch.seq, batch.records.len()), (7, 2, 1));
        assert_eq!(batch.node, "n");
        answer(&mut p, &mut t, 2, delivered(), 1410);
        assert_eq!((p.tally.records_shipped, p.tally.batches_shipped), (1, 2));
        assert_eq!(p.collector_decisions_version(), 9);
    }

    #[test]
    fn a_full_batch_ships_without_waiting_for_the_interval() {
        let (mut p, mut t) = pipeline(r#", "max_batch_records": 2, "flush_interval_ms": 60000"#);
        for _ in 0..5 {
            p.record(request(1));
        }
        p.tick(1, &mut t);
        assert_eq!(decode(&t.sent[0]).records.len(), 2);
        answer(&mut p, &mut t, 1, delivered(), 2);
        assert_eq!(
            t.sent.len(),
            2,
            "the next full batch goes out on the answer"
        );
        assert_eq!(decode(&t.sent[1]).seq, 2);
    }

    #[test]
    fn while_the_collector_is_down_the_oldest_records_are_dropped_and_reported() {
        let (mut p, mut t) = pipeline(
            r#", "max_batch_records": 2, "max_buffered_records": 3, "flush_interval_ms": 100"#,
        );
        p.record(request(1));
        tick_through(&mut p, &mut t, 0, 100);
        answer(&mut p, &mut t, 1, Outcome::Failed("down".into()), 100);
        for _ in 0..5 {
            p.record(request(2));
        }
        assert_eq!(p.tally.records_dropped, 2);
        assert_eq!(p.tally.batches_failed, 1);
        p.tick(100_000, &mut t);
        assert_eq!(t.sent[1], t.sent[0], "the retry resends the same batch");
        answer(&mut p, &mut t, 2, delivered(), 100_000);
        let next = decode(&t.sent[2]);
        assert_eq!((next.seq, next.dropped, next.records.len()), (2, 2, 2));
    }

    #[test]
    fn an_unreadable_reply_still_counts_the_batch_as_delivered() {
        let (mut p, mut t) = pipeline("");
        p.record(request(1));
        tick_through(&mut p, &mut t, 0, 1000);
        let garbage = crate::shipper::classify(Some(b"200"), None);
        answer(&mut p, &mut t, 1, garbage, 1001);
        assert_eq!(p.tally.batches_shipped, 1);
        assert_eq!(p.collector_decisions_version(), 0);
    }

    #[test]
    fn batches_report_the_decision_set_version_held() {
        let (mut p, mut t) = pipeline("");
        p.set_held_decisions_version(5);
        p.record(request(1));
        tick_through(&mut p, &mut t, 0, 1000);
        assert_eq!(decode(&t.sent[0]).decisions_version, 5);
    }

    #[test]
    fn an_answer_carries_the_version_its_batch_reported_not_the_one_held_since() {
        let (mut p, mut t) = pipeline("");
        p.set_held_decisions_version(3);
        p.tick(0, &mut t);
        p.set_held_decisions_version(4);
        let got = answer(&mut p, &mut t, 1, delivered(), 5).unwrap();
        assert_eq!(got.batch_decisions_version, 3);
        assert_eq!(got.reply.decisions_version, 9);
    }

    #[test]
    fn an_unreadable_or_failed_answer_yields_no_reply() {
        let (mut p, mut t) = pipeline("");
        p.tick(0, &mut t);
        let garbage = crate::shipper::classify(Some(b"200"), Some(b"<html>"));
        assert_eq!(answer(&mut p, &mut t, 1, garbage, 5), None);
        p.tick(1000, &mut t);
        assert_eq!(
            answer(&mut p, &mut t, 2, Outcome::Failed("down".into()), 1005),
            None
        );
    }

    #[test]
    fn an_idle_vm_polls_with_an_empty_batch_once_per_flush_interval() {
        let (mut p, mut t) = pipeline(r#", "flush_interval_ms": 1000"#);
        for now in (0..=10_000).step_by(100) {
            let before = t.sent.len();
            p.tick(now, &mut t);
            if t.sent.len() > before {
                let token = u32::try_from(t.sent.len()).unwrap();
                answer(&mut p, &mut t, token, delivered(), now);
            }
        }
        assert_eq!(t.sent.len(), 11, "one poll a second, the first at once");
        assert!(t.sent.iter().all(|b| decode(b).records.is_empty()));
        let seqs: Vec<u64> = t.sent.iter().map(|b| decode(b).seq).collect();
        assert_eq!(seqs, (1..=11).collect::<Vec<u64>>());
    }

    #[test]
    fn a_vm_shipping_records_sends_no_empty_polls() {
        let (mut p, mut t) = pipeline(r#", "flush_interval_ms": 1000"#);
        for now in (0..=10_000).step_by(100) {
            p.record(request(now));
            let before = t.sent.len();
            p.tick(now, &mut t);
            if t.sent.len() > before {
                let token = u32::try_from(t.sent.len()).unwrap();
                answer(&mut p, &mut t, token, delivered(), now);
            }
        }
        assert!(!t.sent.is_empty());
        assert!(t.sent.iter().all(|b| !decode(b).records.is_empty()));
    }

    #[test]
    fn while_a_poll_is_unanswered_no_second_one_is_sent() {
        let (mut p, mut t) = pipeline(r#", "flush_interval_ms": 100"#);
        tick_through(&mut p, &mut t, 0, 2000);
        assert_eq!(t.sent.len(), 1);
    }
}
