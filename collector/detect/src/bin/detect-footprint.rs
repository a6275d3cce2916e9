//! `detect-footprint`: measures the detection engine's memory per consumer for consumers that
//! each use 20 endpoints (the budget in DESIGN.md is 2 KiB per consumer, all baselines), after
//! a learning week of hourly windows, and how fast `observe` runs on that traffic.
//!
//! Usage: `detect-footprint [CONSUMERS]` (default 2,000).

use plumbline_detect::config::{DAY_MS, HOUR_MS};
use plumbline_detect::scenario::rng::Rng;
use plumbline_detect::{stable_hash, Config, Engine, Observation};
use plumbline_wire::{Addr, ConsumerId};
use std::time::Instant;

const ENDPOINTS: u32 = 20;
/// 2026-03-02T00:00Z.
const START: u64 = 1_772_409_600_000;

fn main() {
    let consumers: u32 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 2_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("detect-footprint: the argument is a number of consumers");
            std::process::exit(2);
        }
    };
    let paths: Vec<String> = (0..ENDPOINTS)
        .map(|e| format!("GET /v1/resource{e}/{{id}}"))
        .collect();
    let mut engine = match Engine::new(Config::default()) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("detect-footprint: {e}");
            std::process::exit(1);
        }
    };

    let mut rng = Rng::new(7);
    let mut observed = 0u64;
    let mut spent = std::time::Duration::ZERO;
    let hours = 8 * 24;
    for hour in 0..hours {
        let batch = hour_of_traffic(&mut rng, consumers, hour, &paths);
        let started = Instant::now();
        for obs in &batch {
            engine.observe(obs);
        }
        engine.tick(START + (hour + 1) * HOUR_MS);
        spent += started.elapsed();
        observed += batch.len() as u64;
    }

    let n = engine.stats().consumers.max(1) as f64;
    let one = engine.consumer_memory_bytes(&consumer(0)).unwrap_or(0);
    let snapshot = engine.snapshot();
    println!(
        "{} consumers x {} endpoints after {} days of hourly windows",
        consumers,
        ENDPOINTS,
        hours / 24
    );
    println!(
        "memory per consumer: {:.0} bytes (engine total / consumers), {} bytes for one consumer's state",
        engine.memory_bytes() as f64 / n,
        one
    );
    println!(
        "snapshot per consumer: {:.0} bytes",
        snapshot.len() as f64 / n
    );
    println!(
        "observe + hourly ticks: {} records in {:.2} s, {:.2} million records/s",
        observed,
        spent.as_secs_f64(),
        observed as f64 / spent.as_secs_f64() / 1e6
    );
}

fn consumer(i: u32) -> ConsumerId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_le_bytes());
    id[15] = 0xd7;
    ConsumerId(id)
}

/// About 60 requests an hour per consumer in office hours (fewer at night), over all 20
/// endpoints, with numeric IDs from a working set, a few errors, two networks, one agent.
fn hour_of_traffic<'a>(
    rng: &mut Rng,
    consumers: u32,
    hour: u64,
    paths: &'a [String],
) -> Vec<Observation<'a>> {
    let t0 = START + hour * HOUR_MS;
    let office = (8..18).contains(&((t0 % DAY_MS) / HOUR_MS));
    let rate = if office { 60.0 } else { 8.0 };
    let mut out = Vec::new();
    for c in 0..consumers {
        for _ in 0..rng.poisson(rate) {
            let endpoint = rng.zipf(u64::from(ENDPOINTS), 0.8) as u32;
            let number = 1_000_000 + u64::from(c) * 10_000 + rng.below(500);
            out.push(Observation {
                time_ms: t0 + rng.below(HOUR_MS),
                consumer: consumer(c),
                endpoint,
                endpoint_path: &paths[endpoint as usize],
                object: Some(stable_hash(&number.to_le_bytes())),
                object_number: Some(number),
                status: if rng.chance(0.01) { 404 } else { 200 },
                response_bytes: 1_000 + rng.below(4_000),
                client: Some(Addr::V4([52, (c % 200) as u8, rng.below(2) as u8, 7])),
                user_agent: 0x5eed,
                weight: 1,
                sensitive: false,
            });
        }
    }
    out.sort_by_key(|o| o.time_ms);
    out
}
