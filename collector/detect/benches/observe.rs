//! Throughput of `Engine::observe` (records/s) on 1,000 learned consumers using 20 endpoints
//! each, and of closing one hourly window for them.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use plumbline_detect::config::HOUR_MS;
use plumbline_detect::scenario::rng::Rng;
use plumbline_detect::{stable_hash, Config, Engine, Observation};
use plumbline_wire::{Addr, ConsumerId};

const CONSUMERS: u32 = 1_000;
const ENDPOINTS: u32 = 20;
/// 2026-03-02T00:00Z.
const START: u64 = 1_772_409_600_000;

fn consumer(i: u32) -> ConsumerId {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_le_bytes());
    ConsumerId(id)
}

fn hour<'a>(rng: &mut Rng, h: u64, paths: &'a [String]) -> Vec<Observation<'a>> {
    let t0 = START + h * HOUR_MS;
    let mut out = Vec::new();
    for c in 0..CONSUMERS {
        for _ in 0..rng.poisson(40.0) {
            let endpoint = rng.zipf(u64::from(ENDPOINTS), 0.8) as u32;
            let number = u64::from(c) * 10_000 + rng.below(500);
            out.push(Observation {
                time_ms: t0 + rng.below(HOUR_MS),
                consumer: consumer(c),
                endpoint,
                endpoint_path: &paths[endpoint as usize],
                object: Some(stable_hash(&number.to_le_bytes())),
                object_number: Some(number),
                status: if rng.chance(0.01) { 404 } else { 200 },
                response_bytes: 2_000,
                client: Some(Addr::V4([52, (c % 200) as u8, 1, 7])),
                user_agent: 0x5eed,
                weight: 1,
                sensitive: false,
            });
        }
    }
    out.sort_by_key(|o| o.time_ms);
    out
}

fn bench(c: &mut Criterion) {
    let paths: Vec<String> = (0..ENDPOINTS)
        .map(|e| format!("GET /r{e}/{{id}}"))
        .collect();
    let mut rng = Rng::new(1);
    let mut engine = Engine::new(Config::default()).expect("default config is valid");
    let learning = 8 * 24;
    for h in 0..learning {
        for obs in &hour(&mut rng, h, &paths) {
            engine.observe(obs);
        }
    }
    engine.tick(START + learning * HOUR_MS);

    // A window of traffic inside the open window (times shifted into it).
    let open = START + learning * HOUR_MS;
    let batch: Vec<Observation<'_>> = hour(&mut rng, learning, &paths)
        .into_iter()
        .map(|mut o| {
            o.time_ms = open + (o.time_ms - open) / 2;
            o
        })
        .collect();

    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.sample_size(20);
    group.bench_function("observe", |b| {
        b.iter_batched_ref(
            || engine.clone(),
            |e| {
                for obs in &batch {
                    e.observe(black_box(obs));
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Elements(u64::from(CONSUMERS)));
    group.bench_function("close_window_per_consumer", |b| {
        b.iter_batched_ref(
            || {
                let mut e = engine.clone();
                for obs in &batch {
                    e.observe(obs);
                }
                e
            },
            |e| black_box(e.tick(open + HOUR_MS)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
