//! Counters of the HTTP API and their Prometheus text rendering, with gauges read from the
//! pipeline at scrape time.

use crate::decide::Decisions;
use crate::pipeline::Pipeline;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reasons a batch is rejected, as metric labels.
pub const REASONS: [&str; 5] = [
    "unauthenticated",
    "content_type",
    "too_large",
    "malformed",
    "internal",
];

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    records: AtomicU64,
    rejected: [AtomicU64; REASONS.len()],
    polls: AtomicU64,
    sets_sent: AtomicU64,
    refused_full: AtomicU64,
}

impl Metrics {
    pub fn accepted(&self, records: u64) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn poll(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// A decision was not made because the set held `decisions.max_decisions`.
    pub fn decision_refused_full(&self) {
        self.refused_full.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_sent(&self) {
        self.sets_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of the counters and the gauges of the pipeline and the
    /// decision set.
    pub fn render(&self, pipeline: &Pipeline, decisions: &Decisions) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            &mut out,
            "plumbline_batches_accepted_total",
            "Batches stored.",
            load(&self.accepted),
        );
        counter(
            &mut out,
            "plumbline_batches_duplicate_total",
            "Batches acknowledged as retries of stored ones, not counted again.",
            load(&self.duplicates),
        );
        header(
            &mut out,
            "plumbline_batches_rejected_total",
            "Batches refused, by reason.",
            "counter",
        );
        for (reason, count) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "plumbline_batches_rejected_total{{reason=\"{reason}\"}} {}",
                load(count)
            );
        }
        counter(
            &mut out,
            "plumbline_records_ingested_total",
            "Records from stored batches.",
            load(&self.records),
        );
        header(
            &mut out,
            "plumbline_requests_enforced_total",
            "Requests filters blocked or throttled by a decision, or would have blocked in \
             monitor mode, from the records' flags.",
            "counter",
        );
        for (outcome, count) in [
            ("blocked", pipeline.totals.enforced.blocked),
            ("throttled", pipeline.totals.enforced.throttled),
            ("would_block", pipeline.totals.enforced.would_block),
        ] {
            let _ = writeln!(
                out,
                "plumbline_requests_enforced_total{{outcome=\"{outcome}\"}} {count}"
            );
        }
        counter(
            &mut out,
            "plumbline_records_over_cap_total",
            "Records not fully counted because an endpoint or consumer cap was reached.",
            pipeline.totals.over_cap,
        );
        gauge(
            &mut out,
            "plumbline_endpoints",
            "Endpoints in the inventory.",
            pipeline.inventory.endpoints().len(),
        );
        gauge(
            &mut out,
            "plumbline_consumers",
            "Consumers known.",
            pipeline.consumers.len(),
        );
        gauge(
            &mut out,
            "plumbline_filters",
            "Filter instances known.",
            pipeline.filters.len(),
        );
        self.render_decisions(&mut out, decisions);
        out
    }

    fn render_decisions(&self, out: &mut String, decisions: &Decisions) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            out,
            "plumbline_decision_polls_total",
            "Batches without records or drops: filters asking for the decision set only.",
            load(&self.polls),
        );
        counter(
            out,
            "plumbline_decision_sets_sent_total",
            "Batch replies that carried the decision set (the filter held another version).",
            load(&self.sets_sent),
        );
        counter(
            out,
            "plumbline_decisions_refused_full_total",
            "Decisions not made because the set was full (decisions.max_decisions).",
            load(&self.refused_full),
        );
        header(
            out,
            "plumbline_decisions_active",
            "Decisions held, by action.",
            "gauge",
        );
        let (blocks, throttles) = decisions.counts();
        let _ = writeln!(
            out,
            "plumbline_decisions_active{{action=\"block\"}} {blocks}"
        );
        let _ = writeln!(
            out,
            "plumbline_decisions_active{{action=\"throttle\"}} {throttles}"
        );
        header(
            out,
            "plumbline_decisions_version",
            "Version of the decision set.",
            "gauge",
        );
        let _ = writeln!(out, "plumbline_decisions_version {}", decisions.version());
        let enforce = usize::from(decisions.mode() == plumbline_wire::Mode::Enforce);
        gauge(
            out,
            "plumbline_decisions_enforce",
            "1 when filters are told to enforce decisions, 0 in monitor mode.",
            enforce,
        );
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: usize) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}
