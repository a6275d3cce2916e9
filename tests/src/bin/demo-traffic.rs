//! `demo-traffic`: partner traffic for `make demo`, sent through Envoy.
//!
//! Reads GitHub's REST API description, selects GET operations with path parameters, builds a
//! population of consumers (each its own API key, label, endpoint mix and rate), and sends the
//! planned requests with a few workers, printing progress about once a second. At the end it
//! prints how many operations it exercised and writes them, one `GET <template>` per line, to
//! `--operations-out`, so the demo can compare them with the endpoints the collector learned.

use anyhow::{bail, Context};
use clap::Parser;
use plumbline_tests::traffic::{self, Consumer, Operation, PlannedRequest};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Drive partner traffic against GitHub's API paths through Envoy")]
struct Args {
    /// GitHub's REST API description (`generated/api.github.com.json` of @octokit/openapi).
    #[arg(long)]
    spec: PathBuf,
    /// Envoy's listener.
    #[arg(long, default_value = "http://127.0.0.1:10000")]
    target: String,
    /// Requests to send in all.
    #[arg(long, default_value_t = 6000)]
    requests: usize,
    /// Partner consumers, each with its own API key.
    #[arg(long, default_value_t = 25)]
    consumers: usize,
    /// GET operations to select from the spec.
    #[arg(long, default_value_t = 50)]
    operations: usize,
    /// Least requests per operation (enough distinct names for each name position).
    #[arg(long, default_value_t = 40)]
    min_per_operation: usize,
    /// Most literal segments selected at one position under one prefix (few enough that a
    /// collector never takes them for parameter values).
    #[arg(long, default_value_t = 7)]
    max_literals: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// Host header of the requests.
    #[arg(long, default_value = "api.github.com")]
    host: String,
    /// File to write the exercised operations to, one `GET <template>` per line.
    #[arg(long)]
    operations_out: Option<PathBuf>,
    /// Print the selected operations and the consumers, and send nothing.
    #[arg(long)]
    list: bool,
}

/// What the workers have done so far.
#[derive(Default)]
struct Progress {
    next: AtomicUsize,
    done: AtomicU64,
    failed: AtomicU64,
    by_class: [AtomicU64; 6],
    exercised: Mutex<BTreeSet<usize>>,
    first_error: Mutex<Option<String>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (operations, consumers, plan) = build(&args)?;
    println!(
        "demo-traffic: {} operations selected, {} consumers, {} requests to {} with {} workers",
        operations.len(),
        consumers.len(),
        plan.len(),
        args.target,
        args.workers
    );

    if args.list {
        list(&operations, &consumers, &plan);
        return Ok(());
    }

    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    run(&args, &consumers, plan.clone(), &progress);
    let elapsed = started.elapsed();

    let exercised = report(&progress, &operations, plan.len(), elapsed);
    if let Some(path) = &args.operations_out {
        write_operations(path, &exercised)?;
        println!("exercised operations written to {}", path.display());
    }
    let failed = progress.failed.load(Ordering::Relaxed);
    if failed * 100 > plan.len() as u64 {
        bail!("{failed} of {} requests got no HTTP response", plan.len());
    }
    Ok(())
}

/// Reads the spec and draws operations, consumers and requests from the seed.
fn build(args: &Args) -> anyhow::Result<(Vec<Operation>, Vec<Consumer>, Vec<PlannedRequest>)> {
    let text = std::fs::read(&args.spec)
        .with_context(|| format!("cannot read the API description {}", args.spec.display()))?;
    let spec: serde_json::Value = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not JSON", args.spec.display()))?;
    let candidates = traffic::get_operations(&spec);
    if candidates.is_empty() {
        bail!(
            "{} has no GET operation with path parameters",
            args.spec.display()
        );
    }

    let mut rng = StdRng::seed_from_u64(args.seed);
    let operations = traffic::select(&candidates, args.operations, args.max_literals, &mut rng);
    let consumers = traffic::consumers(args.consumers.max(1), operations.len(), &mut rng);
    let plan = traffic::requests(
        &operations,
        &consumers,
        args.requests,
        args.min_per_operation,
        &mut rng,
    );
    Ok((operations, consumers, plan))
}

fn list(operations: &[Operation], consumers: &[Consumer], plan: &[PlannedRequest]) {
    for (index, operation) in operations.iter().enumerate() {
        let requests = plan.iter().filter(|r| r.operation == index).count();
        println!("{:>5} requests  {}", requests, operation.key());
    }
    for (index, consumer) in consumers.iter().enumerate() {
        let requests = plan.iter().filter(|r| r.consumer == index).count();
        let (key, label, mix) = (&consumer.key, &consumer.label, consumer.mix.len());
        println!("{requests:>5} requests  {key} {label} ({mix} operations in its mix)");
    }
}

/// Sends the plan with `args.workers` threads and prints progress about once a second.
fn run(args: &Args, consumers: &[Consumer], plan: Vec<PlannedRequest>, progress: &Arc<Progress>) {
    let plan = Arc::new(plan);
    let consumers = Arc::new(consumers.to_vec());
    let workers: Vec<_> = (0..args.workers.max(1))
        .map(|_| {
            let (plan, consumers, progress) = (plan.clone(), consumers.clone(), progress.clone());
            let (target, host) = (args.target.clone(), args.host.clone());
            std::thread::spawn(move || work(&target, &host, &plan, &consumers, &progress))
        })
        .collect();

    let total = plan.len() as u64;
    let started = Instant::now();
    let mut next_line = started + Duration::from_secs(1);
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_line {
            print_progress(progress, total, started.elapsed());
            next_line += Duration::from_secs(1);
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

fn print_progress(progress: &Progress, total: u64, elapsed: Duration) {
    let done = progress.done.load(Ordering::Relaxed);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let failed = progress.failed.load(Ordering::Relaxed);
    println!("  {done}/{total} requests, {rate:.0}/s, {failed} without response");
}

fn work(
    target: &str,
    host: &str,
    plan: &[PlannedRequest],
    consumers: &[Consumer],
    progress: &Progress,
) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    loop {
        let index = progress.next.fetch_add(1, Ordering::Relaxed);
        let Some(planned) = plan.get(index) else {
            return;
        };
        let consumer = &consumers[planned.consumer];
        let mut request = agent
            .get(format!("{target}{}", planned.path))
            .header("host", host)
            .header("x-api-key", &consumer.key)
            .header("x-partner", &consumer.label)
            .header("user-agent", &consumer.user_agent)
            .header("accept", "application/vnd.github+json");
        if let Some(status) = planned.status {
            request = request.header("x-demo-status", status.to_string());
        }
        record(progress, planned, request.call());
    }
}

fn record(
    progress: &Progress,
    planned: &PlannedRequest,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) {
    progress.done.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(mut response) => {
            let _ = response.body_mut().read_to_vec();
            let class = usize::from(response.status().as_u16() / 100).min(5);
            progress.by_class[class].fetch_add(1, Ordering::Relaxed);
            let mut exercised = progress.exercised.lock().unwrap_or_else(|e| e.into_inner());
            exercised.insert(planned.operation);
        }
        Err(e) => {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = progress
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| format!("{}: {e}", planned.path));
        }
    }
}

/// Prints the totals and returns the exercised operations' lines.
fn report(
    progress: &Progress,
    operations: &[Operation],
    total: usize,
    elapsed: Duration,
) -> Vec<String> {
    let class = |c: usize| progress.by_class[c].load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    let rate = total as f64 / elapsed.as_secs_f64().max(0.001);
    println!(
        "sent {total} requests in {:.1} s ({rate:.0}/s): {} 2xx, {} 4xx, {} 5xx, {failed} without response",
        elapsed.as_secs_f64(),
        class(2),
        class(4),
        class(5)
    );
    if let Some(error) = progress
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        println!("first failure: {error}");
    }
    let exercised = progress.exercised.lock().unwrap_or_else(|e| e.into_inner());
    let lines: Vec<String> = exercised.iter().map(|i| operations[*i].key()).collect();
    println!(
        "exercised {} operations (distinct GET path templates of the spec)",
        lines.len()
    );
    lines
}

fn write_operations(path: &PathBuf, lines: &[String]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    for line in lines {
        writeln!(file, "{line}")?;
    }
    Ok(())
}
