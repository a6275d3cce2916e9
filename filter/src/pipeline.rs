//! One VM's path from captured request to delivered batch: sampling, the capped buffer, batch
//! building (on the flush interval or when a batch is full) and the shipper, plus the counts
//! for Envoy's counters.
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

/// Version of the decision set this filter holds; decisions are not enforced yet.
pub const HELD_DECISIONS_VERSION: u64 = 0;

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
    /// Latest decision-set version the collector reported (kept for enforcement, later).
    collector_decisions_version: u64,
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

    /// Periodic work: retries, given-up calls, and a new batch when one is due.
    pub fn tick(&mut self, now_ms: u64, transport: &mut impl Transport) {
        if !self.buffer.is_empty() && self.waiting_since_ms.is_none() {
            self.waiting_since_ms = Some(now_ms);
        }
        if let Some(event) = self.shipper.poll(now_ms, transport) {
            self.note(event);
        }
        self.start_batch_if_due(now_ms, transport);
    }

    /// Applies the collector's answer to call `token`; ships the next batch at once if one is full.
    pub fn on_answer(
        &mut self,
        token: u32,
        outcome: Outcome,
        now_ms: u64,
        transport: &mut impl Transport,
    ) {
        let Some(event) = self.shipper.on_answer(token, &outcome, now_ms) else {
            debug!("ignoring answer to call {token}, not in flight");
            return;
        };
        if let Outcome::Delivered(reply) = outcome {
            self.read_reply(reply);
        }
        self.note(event);
        self.start_batch_if_due(now_ms, transport);
    }

    fn read_reply(
        &mut self,
        reply: Result<plumbline_wire::BatchReply, plumbline_wire::DecodeError>,
    ) {
        match reply {
            Ok(reply) => {
                let (accepted, duplicate) = (reply.accepted, reply.duplicate);
                debug!("collector accepted {accepted} records (duplicate: {duplicate})");
                self.collector_decisions_version = reply.decisions_version;
            }
            Err(e) if !self.warned_unreadable_reply => {
                self.warned_unreadable_reply = true;
                warn!("collector answered 2xx with an unreadable reply ({e}); batch counted as delivered (further cases logged at debug)");
            }
            Err(e) => debug!("unreadable collector reply: {e}"),
        }
    }

    fn start_batch_if_due(&mut self, now_ms: u64, transport: &mut impl Transport) {
        if !self.shipper.is_idle() || !self.is_batch_due(now_ms) {
            return;
        }
        let (records, dropped) = self.buffer.take(self.max_batch_records);
        let header = BatchHeader {
            node: &self.node,
            instance: self.instance,
            seq: self.shipper.next_seq(),
            dropped,
            decisions_version: HELD_DECISIONS_VERSION,
        };
        let body = build_batch(&records, &header).encode();
        let count = u64::try_from(records.len()).unwrap_or(u64::MAX);
        drop(records);
        self.shipper.enqueue(body, count);
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

    fn delivered() -> Outcome {
        Outcome::Delivered(Ok(BatchReply::new(0, false, 9)))
    }

    #[test]
    fn records_ship_once_they_have_waited_a_flush_interval() {
        let (mut p, mut t) = pipeline(r#", "flush_interval_ms": 1000"#);
        tick_through(&mut p, &mut t, 0, 300);
        p.record(request(350));
        tick_through(&mut p, &mut t, 400, 1300);
        assert!(t.sent.is_empty(), "waited 900 ms only");
        p.tick(1400, &mut t);
        let batch = decode(&t.sent[0]);
        assert_eq!((batch.instance, batch.seq, batch.records.len()), (7, 1, 1));
        assert_eq!(batch.node, "n");
        p.on_answer(1, delivered(), 1410, &mut t);
        assert_eq!((p.tally.records_shipped, p.tally.batches_shipped), (1, 1));
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
        p.on_answer(1, delivered(), 2, &mut t);
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
        p.on_answer(1, Outcome::Failed("down".into()), 100, &mut t);
        for _ in 0..5 {
            p.record(request(2));
        }
        assert_eq!(p.tally.records_dropped, 2);
        assert_eq!(p.tally.batches_failed, 1);
        p.tick(100_000, &mut t);
        assert_eq!(t.sent[1], t.sent[0], "the retry resends the same batch");
        p.on_answer(2, delivered(), 100_000, &mut t);
        let next = decode(&t.sent[2]);
        assert_eq!((next.seq, next.dropped, next.records.len()), (2, 2, 2));
    }

    #[test]
    fn an_unreadable_reply_still_counts_the_batch_as_delivered() {
        let (mut p, mut t) = pipeline("");
        p.record(request(1));
        tick_through(&mut p, &mut t, 0, 1000);
        let garbage = crate::shipper::classify(Some(b"200"), None);
        p.on_answer(1, garbage, 1001, &mut t);
        assert_eq!(p.tally.batches_shipped, 1);
        assert_eq!(p.collector_decisions_version(), 0);
    }

    #[test]
    fn batches_say_the_filter_holds_no_decisions_yet() {
        let (mut p, mut t) = pipeline("");
        p.record(request(1));
        tick_through(&mut p, &mut t, 0, 1000);
        assert_eq!(decode(&t.sent[0]).decisions_version, HELD_DECISIONS_VERSION);
    }

    #[test]
    fn nothing_is_sent_while_nothing_was_captured() {
        let (mut p, mut t) = pipeline("");
        tick_through(&mut p, &mut t, 0, 10_000);
        assert!(t.sent.is_empty());
    }
}
