//! Counters of the HTTP API and their Prometheus text rendering, with gauges read from the
//! pipeline at scrape time.

use crate::pipeline::Pipeline;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reasons a batch is rejected, as metric labels.
pub const REASONS: [&str; 4] = ["unauthenticated", "too_large", "malformed", "internal"];

/// Counters since the process started.
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    records: AtomicU64,
    rejected: [AtomicU64; 4],
}

impl Metrics {
    pub fn accepted(&self, records: u64) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of the counters and the pipeline's gauges.
    pub fn render(&self, pipeline: &Pipeline) -> String {
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
        out
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
