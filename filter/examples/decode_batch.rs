//! Decodes batch bodies captured from the filter (files given as arguments) with the collector's
//! own validation, and prints their headers and records: a check that what the filter ships is
//! what the collector will read.
//!
//! `cargo run -p plumbline-filter --example decode_batch -- BODY_FILE...`

use plumbline_wire::{Batch, Limits};
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: decode_batch BODY_FILE...".into());
    }
    for path in paths {
        let bytes = std::fs::read(&path)?;
        let batch =
            Batch::decode(&bytes, &Limits::default()).map_err(|e| format!("{path}: {e}"))?;
        print_batch(&path, bytes.len(), &batch);
    }
    Ok(())
}

fn print_batch(path: &str, size: usize, batch: &Batch) {
    let records = batch.records.len();
    println!(
        "{path}: node={} instance={:016x} seq={} dropped={} decisions_version={} records={records} bytes={size}",
        batch.node, batch.instance, batch.seq, batch.dropped, batch.decisions_version
    );
    for r in &batch.records {
        let consumer = batch.consumer(r).map_or("-".to_string(), |c| c.to_string());
        let client = batch.client(r).map_or("-".to_string(), |a| a.to_string());
        let query: Vec<&str> = r.query.iter().map(|q| batch.str(*q)).collect();
        println!(
            "  t={} {} {}{} query={:?} status={} req={}B resp={}B dur={}us consumer={consumer} label={:?} client={client} ua={:?} types={:?}/{:?} flags={} weight={}",
            batch.time_ms(r),
            batch.method(r),
            batch.host(r),
            batch.path(r),
            query,
            r.status,
            r.request_bytes,
            r.response_bytes,
            r.duration_us,
            batch.label(r),
            batch.user_agent(r),
            batch.request_type(r),
            batch.response_type(r),
            r.flags,
            r.weight
        );
    }
}
