//! Collector hot path: decoding a batch and running it through the pipeline (inventory,
//! consumers, filter window), in records per second, on traffic shaped like a partner API
//! (owner/repository names, numeric ids, SHAs, 25 consumers). The state is warmed first, so
//! this measures steady state: known endpoints, no new templates. The `_with_detection`
//! variant adds building each record's observation and the detection engine's update (the
//! records stay in one window, so closing windows is not part of it).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use plumbline_collector::detect::config::DetectSettings;
use plumbline_collector::detect::Detection;
use plumbline_collector::pipeline::{Pipeline, Settings};
use plumbline_detect::Engine;
use plumbline_wire::{consumer_id, Batch, BatchBuilder, Limits, Method, Record};

const RECORDS: usize = 10_000;

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn name(i: usize) -> String {
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let a = letters[i % 26] as char;
    let b = letters[(i / 26) % 26] as char;
    format!("{a}{b}-team")
}

fn path(rng: &mut Lcg) -> String {
    let owner = name(rng.below(300));
    let repo = name(rng.below(500) + 300);
    match rng.below(5) {
        0 => format!("/repos/{owner}/{repo}/issues/{}", rng.below(50_000)),
        1 => format!(
            "/repos/{owner}/{repo}/commits/{:x}0a1b2c3d",
            rng.below(1 << 30)
        ),
        2 => format!("/repos/{owner}/{repo}/pulls"),
        3 => format!("/users/{owner}"),
        _ => format!("/orgs/{owner}/members/{repo}"),
    }
}

fn batch(seed: u64, seq: u64) -> Batch {
    let mut rng = Lcg(seed);
    let mut b = BatchBuilder::new(1_700_000_000_000);
    let consumers: Vec<u32> = (0..25)
        .map(|k| b.consumer(consumer_id(b"salt", format!("key-{k}").as_bytes())))
        .collect();
    for i in 0..RECORDS {
        let (segments, flags) = b.path(&path(&mut rng));
        let record = Record {
            offset_ms: b.offset_ms(1_700_000_000_000 + i as u64),
            method: Method::Get,
            host: b.intern("api.github.com"),
            path: segments,
            query: vec![],
            status: 200,
            request_bytes: 0,
            response_bytes: 900,
            duration_us: 1200,
            consumer: Some(consumers[rng.below(consumers.len())]),
            label: None,
            client: None,
            user_agent: Some(b.intern("partner-sdk/1.0")),
            request_type: None,
            response_type: None,
            flags,
            weight: 1,
        };
        b.push(record);
    }
    let mut batch = b.finish();
    batch.node = "bench".into();
    batch.instance = 1;
    batch.seq = seq;
    batch
}

fn decode_and_apply(c: &mut Criterion) {
    let mut pipeline = Pipeline::new(Settings::default());
    for seq in 0..20 {
        pipeline.apply_records(&batch(seq + 100, seq));
    }
    let bytes = batch(7, 0).encode();
    let limits = Limits::default();
    let mut group = c.benchmark_group("collector");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("decode_and_apply_10k_records", |bench| {
        bench.iter(|| {
            let decoded = Batch::decode(&bytes, &limits).unwrap();
            pipeline.apply_records(&decoded)
        })
    });
    group.bench_function("apply_10k_records", |bench| {
        let decoded = Batch::decode(&bytes, &limits).unwrap();
        bench.iter(|| pipeline.apply_records(&decoded))
    });

    let settings = DetectSettings::default();
    let engine = Engine::new(settings.engine.clone()).unwrap();
    pipeline.detect = Some(Detection::new(engine, 0, &settings.sensitive_words));
    group.bench_function("decode_and_apply_10k_records_with_detection", |bench| {
        bench.iter(|| {
            let decoded = Batch::decode(&bytes, &limits).unwrap();
            pipeline.apply_records(&decoded)
        })
    });
    group.finish();
}

criterion_group!(benches, decode_and_apply);
criterion_main!(benches);
