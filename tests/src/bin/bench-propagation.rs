//! `bench-propagation`: how long a block decision takes from its `POST /v1/decisions` to every
//! worker of a four-worker Envoy enforcing it, with 1 and with 10,000 decisions held.
//!
//! It starts its own stack on free loopback ports (demo upstream, collector with an operator
//! token in enforce mode, Envoy `--concurrency 4` with the shipped plugin configuration, so the
//! shipped flush interval) and stops it at the end. Each round blocks a fresh consumer key,
//! then sends waves of new connections with that key until one wave both reached every worker
//! (Envoy's per-worker listener stats count each worker's accepted connections during the wave)
//! and got 403 on every request. Each connection carries one request and is answered by the
//! worker that accepted it, so such a wave shows that all four workers enforce. The time
//! reported is from just before the POST to the end of that wave: an upper bound, coarse by one
//! wave's duration, which is printed too. The decision is then removed and the time until every
//! worker lets the key through again is measured the same way.

use anyhow::{bail, Context};
use clap::Parser;
use plumbline_tests::harness::load::Wave;
use plumbline_tests::harness::{
    plugin_number, shipped_envoy_config, upstream_bin_beside_me, Request, Stack, StackOptions,
};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Time from a decision's POST to every Envoy worker enforcing it")]
struct Args {
    /// Rounds with one decision held, and again with the bulk set held.
    #[arg(long, env = "BENCH_PROPAGATION_ROUNDS", default_value_t = 7)]
    rounds: usize,
    /// Decisions created through the API before the second series of rounds.
    #[arg(long, default_value_t = 10_000)]
    bulk: usize,
    /// New connections per wave.
    #[arg(long, default_value_t = 48)]
    wave: usize,
    /// Envoy workers.
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// Longest wait for one round before the bench gives up.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
}

/// What one round measured.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// POST sent to the first wave with a 403, that wave's end.
    first: Duration,
    /// POST sent to the end of the first wave with 403s only, on every worker.
    every: Duration,
    /// How long the POST took to answer.
    post: Duration,
    waves: usize,
    /// DELETE sent to the end of the first wave with 200s only, on every worker.
    lifted: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let options = StackOptions::new(upstream_bin_beside_me())
        .concurrency(args.workers)
        .shipped_flush_interval()
        .decisions("enforce");
    let flush = plugin_number(&shipped_envoy_config(), "flush_interval_ms")?;
    let stack = Stack::start(options);
    let bench = Bench {
        stack: &stack,
        args: &args,
        flush: Duration::from_millis(flush),
        wave_lengths: std::sync::Mutex::new(Vec::new()),
    };
    println!(
        "== Decision propagation: POST /v1/decisions to every Envoy worker answering 403 \
         (Envoy --concurrency {}, flush_interval_ms {flush} as shipped, waves of {} new \
         connections)",
        args.workers, args.wave
    );
    println!(
        "  method: a round ends with the first wave whose connections reached all {} workers \
         (Envoy's per-worker listener stats) and were all answered 403; its time runs from just \
         before the POST to the end of that wave (an upper bound, coarse by one wave)",
        args.workers
    );

    let one = bench.series("1 decision held (the probed one)", 0)?;
    let made = bench.bulk_create()?;
    let many = bench.series(
        &format!("{} decisions held ({made} + the probed one)", made + 1),
        made,
    )?;

    let ignored = stack
        .envoy
        .counter("plumbline.decisions_ignored")
        .unwrap_or(0);
    let memory = stack
        .envoy
        .counter("plumbline.vm_memory_bytes")
        .unwrap_or(0);
    let vms = stack.envoy.counter("plumbline.vms").unwrap_or(0);
    let failures = stack.envoy.vm_failures();
    println!(
        "  summary, median (min-max) over {} rounds; block times from the POST, unblock times \
         from the DELETE:",
        args.rounds
    );
    println!(
        "    held     every worker blocks      first worker blocks      every worker unblocks"
    );
    for (held, rounds) in [(1, &one), (made + 1, &many)] {
        let pick = |f: fn(&Round) -> Duration| spread(&rounds.iter().map(f).collect::<Vec<_>>());
        println!(
            "    {held:<8} {:<24} {:<24} {}",
            pick(|r| r.every),
            pick(|r| r.first),
            pick(|r| r.lifted)
        );
    }
    let lengths = bench
        .wave_lengths
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    println!(
        "  resolution: one wave took {} (median, min-max); decisions_ignored {ignored}; \
         VM failures in Envoy's log: {}; bench took {} s",
        spread(&lengths),
        failures.len(),
        started.elapsed().as_secs()
    );
    if vms > 0 {
        println!(
            "  filter memory per VM after holding {} decisions (wasm linear memory, its \
             high-water mark; {vms} VMs): {:.2} MiB   goal <= 4 MiB",
            made + 1,
            memory as f64 / vms as f64 / 1_048_576.0
        );
    }
    if !failures.is_empty() {
        bail!("Envoy's log shows VM failures:\n{}", failures.join("\n"));
    }
    Ok(())
}

struct Bench<'a> {
    stack: &'a Stack,
    args: &'a Args,
    flush: Duration,
    wave_lengths: std::sync::Mutex<Vec<Duration>>,
}

impl Bench<'_> {
    /// Several rounds, each printed as it ends.
    fn series(&self, name: &str, held: usize) -> anyhow::Result<Vec<Round>> {
        println!(
            "  -- {name}: {} rounds (each adds the probed decision, then removes it)",
            self.args.rounds
        );
        let mut rounds = Vec::new();
        for n in 1..=self.args.rounds {
            let key = format!("bench-probe-{held}-{n}-{:08x}", rand::random::<u32>());
            let round = self
                .round(&key)
                .with_context(|| format!("{name}, round {n}"))?;
            println!(
                "    round {n}: first worker {:>5} ms  every worker {:>5} ms  ({:>2} waves, POST \
                 answered in {} ms)  unblocked on every worker {:>5} ms",
                ms(round.first),
                ms(round.every),
                round.waves,
                ms(round.post),
                ms(round.lifted)
            );
            rounds.push(round);
        }
        Ok(rounds)
    }

    /// One block, measured until every worker enforces it, then its removal likewise.
    fn round(&self, key: &str) -> anyhow::Result<Round> {
        self.until_every_worker(key, 200, Instant::now())?;
        // Start at a random point of the workers' flush cycle.
        let phase = rand::random::<u64>() % (self.flush.as_millis() as u64).max(1);
        std::thread::sleep(Duration::from_millis(phase));

        let posted = Instant::now();
        let made = self
            .stack
            .collector
            .decide(&block(key, "10m"))
            .map_err(anyhow::Error::msg)?;
        let post = posted.elapsed();
        let id = made["id"].as_u64().context("no decision id")?;
        let (first, every, waves) = self.until_every_worker(key, 403, posted)?;

        let removed = Instant::now();
        self.stack
            .collector
            .remove_decision(id)
            .map_err(anyhow::Error::msg)?;
        let (_, lifted, _) = self.until_every_worker(key, 200, removed)?;
        Ok(Round {
            first,
            every,
            post,
            waves,
            lifted,
        })
    }

    /// Waves of `key` until one reaches every worker with `status` only: the time from `since`
    /// to the end of the first wave with any `status`, to the end of that wave, and the waves.
    fn until_every_worker(
        &self,
        key: &str,
        status: u16,
        since: Instant,
    ) -> anyhow::Result<(Duration, Duration, usize)> {
        let request = probe(key);
        let mut first = None;
        for waves in 1.. {
            let wave = Wave::send(&self.stack.envoy, &request, self.args.wave)
                .map_err(anyhow::Error::msg)?;
            if let Ok(mut lengths) = self.wave_lengths.lock() {
                lengths.push(wave.finished - wave.started);
            }
            let at = wave.finished - since;
            if wave.count(status) > 0 {
                first.get_or_insert(at);
            }
            if wave.reached_every_worker() && wave.all_answered(status) {
                return Ok((first.unwrap_or(at), at, waves));
            }
            if at > Duration::from_secs(self.args.timeout_s) {
                bail!(
                    "no wave with {status} on every worker after {at:?}: {}",
                    wave.summary()
                );
            }
        }
        unreachable!("the loop returns or fails")
    }

    /// Creates `--bulk` block decisions through the API (several at a time), then waits until
    /// every worker enforces the last one; the number made.
    fn bulk_create(&self) -> anyhow::Result<usize> {
        let total = self.args.bulk;
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let errors = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let made = self.stack.collector.decide(&block(&bulk_key(i), "1h"));
                    if let Err(e) = made {
                        if let Ok(mut errors) = errors.lock() {
                            errors.push(e);
                        }
                        return;
                    }
                });
            }
        });
        let errors = errors.into_inner().unwrap_or_default();
        if let Some(e) = errors.first() {
            bail!(
                "creating {total} decisions: {} failed, first: {e}",
                errors.len()
            );
        }
        let created = started.elapsed();
        let held = self
            .stack
            .collector
            .decisions()
            .map_err(anyhow::Error::msg)?;
        let count = held["decisions"].as_array().map_or(0, Vec::len);
        if count != total {
            bail!("{count} decisions held after creating {total}");
        }

        let last = bulk_key(total - 1);
        let settle = Instant::now();
        self.until_every_worker(&last, 403, settle)?;
        println!(
            "  created {total} decisions through the API in {} ms (8 at a time); every worker \
             enforced the last one {} ms later",
            ms(created),
            ms(settle.elapsed())
        );
        Ok(total)
    }
}

fn bulk_key(i: usize) -> String {
    format!("bench-bulk-{i:05}")
}

fn block(key: &str, ttl: &str) -> serde_json::Value {
    json!({"subject": {"key": key}, "action": "block", "ttl": ttl, "reason": "propagation bench"})
}

fn probe(key: &str) -> Request {
    Request::get("/v1/bench/probe")
        .header("host", "bench.plumbline.test")
        .header("x-api-key", key)
}

/// Whole milliseconds.
fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `median (min-max)` of durations, in milliseconds.
fn spread(values: &[Duration]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    let (Some(min), Some(max)) = (sorted.first(), sorted.last()) else {
        return "-".to_string();
    };
    let mid = sorted.len() / 2;
    let median = if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2
    } else {
        sorted[mid]
    };
    format!("{} ms ({}-{} ms)", ms(median), ms(*min), ms(*max))
}
