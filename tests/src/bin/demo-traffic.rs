//! `demo-traffic`: partner traffic for `make demo`, sent through Envoy.
//!
//! Reads GitHub's REST API description, selects GET operations with path parameters, builds a
//! population of consumers (each its own API key, label, endpoint mix and rate), and sends the
//! planned requests with a few workers, printing progress about once a second. At the end it
//! prints how many operations it exercised and writes them, one `GET <template>` per line, to
//! `--operations-out`, so the demo can compare them with the endpoints the collector learned.
//!
//! With `--learn-seconds N` it runs in two phases instead, paced at `--rate` requests a
//! second of normal traffic: N seconds of normal traffic (the collector learns every
//! consumer), then `--abuse-seconds` in which normal traffic goes on and three consumers turn
//! abusive (an id walk, error probing, scraping; see `plumbline_tests::traffic::abuse`). It
//! reports what each abuser sent and how much of it Plumbline blocked.

use anyhow::{bail, Context};
use clap::Parser;
use plumbline_tests::traffic::{self, abuse, Consumer, Operation, PlannedRequest};
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
    /// Run in phases: this many seconds of normal traffic first (0: no phases, send
    /// `--requests` as fast as the workers go).
    #[arg(long, default_value_t = 0)]
    learn_seconds: u64,
    /// Seconds of the abuse phase that follows the learning phase.
    #[arg(long, default_value_t = 10)]
    abuse_seconds: u64,
    /// Requests per second of normal traffic in phases.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    /// File to write the number of requests that got an HTTP answer to.
    #[arg(long)]
    answered_out: Option<PathBuf>,
}

/// What the workers have done so far.
#[derive(Default)]
struct Progress {
    next: AtomicUsize,
    done: AtomicU64,
    failed: AtomicU64,
    by_class: [AtomicU64; 6],
    /// Requests Plumbline answered itself (a block decision's local reply).
    blocked: AtomicU64,
    exercised: Mutex<BTreeSet<usize>>,
    first_error: Mutex<Option<String>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.learn_seconds > 0 && args.rate <= 0.0 {
        bail!("--rate must be above 0");
    }
    let (operations, consumers, plan) = build(&args)?;
    println!(
        "demo-traffic: {} operations selected, {} consumers, {} normal requests (abusers' come on \
         top) to {} with {} workers",
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
    let (abusers, tallies) = if args.learn_seconds > 0 {
        let abusers = abuse::choose(&operations, &consumers, &plan, args.rate);
        let tallies = phases::run(&args, &consumers, &plan, &abusers, &progress);
        (abusers, tallies)
    } else {
        run(&args, &consumers, plan.clone(), &progress);
        (Vec::new(), Vec::new())
    };
    let elapsed = started.elapsed();

    let sent = progress.done.load(Ordering::Relaxed) as usize;
    let exercised = report(&progress, &operations, sent, elapsed);
    phases::report(&args, &consumers, &abusers, &tallies, &progress);
    if let Some(path) = &args.answered_out {
        let answered =
            progress.done.load(Ordering::Relaxed) - progress.failed.load(Ordering::Relaxed);
        std::fs::write(path, format!("{answered}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.operations_out {
        write_operations(path, &exercised)?;
        println!("exercised operations written to {}", path.display());
    }
    let failed = progress.failed.load(Ordering::Relaxed);
    if failed * 100 > sent as u64 {
        bail!("{failed} of {sent} requests got no HTTP response");
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
    let total = if args.learn_seconds > 0 {
        let seconds = (args.learn_seconds + args.abuse_seconds) as f64;
        (args.rate * seconds).ceil() as usize
    } else {
        args.requests
    };
    let plan = traffic::requests(
        &operations,
        &consumers,
        total,
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
    let agent = agent();
    loop {
        let index = progress.next.fetch_add(1, Ordering::Relaxed);
        let Some(planned) = plan.get(index) else {
            return;
        };
        let consumer = &consumers[planned.consumer];
        let result = send(
            &agent,
            target,
            host,
            consumer,
            &planned.path,
            planned.status,
        );
        record(progress, Some(planned.operation), &planned.path, result);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    )
}

/// One GET as `consumer`, asking the demo upstream for `status` when given.
fn send(
    agent: &ureq::Agent,
    target: &str,
    host: &str,
    consumer: &Consumer,
    path: &str,
    status: Option<u16>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let mut request = agent
        .get(format!("{target}{path}"))
        .header("host", host)
        .header("x-api-key", &consumer.key)
        .header("x-partner", &consumer.label)
        .header("user-agent", &consumer.user_agent)
        .header("accept", "application/vnd.github+json");
    if let Some(status) = status {
        request = request.header("x-demo-status", status.to_string());
    }
    request.call()
}

/// What came back of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Plumbline answered itself: a block decision's local reply (403 naming the decision).
    Blocked,
    Status(u16),
    Nothing,
}

fn record(
    progress: &Progress,
    operation: Option<usize>,
    path: &str,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Answer {
    progress.done.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(mut response) => {
            let body = response.body_mut().read_to_vec().unwrap_or_default();
            let status = response.status().as_u16();
            let class = usize::from(status / 100).min(5);
            progress.by_class[class].fetch_add(1, Ordering::Relaxed);
            if let Some(operation) = operation {
                let mut exercised = progress.exercised.lock().unwrap_or_else(|e| e.into_inner());
                exercised.insert(operation);
            }
            let blocked = status == 403 && body.windows(10).any(|w| w == b"\"decision\"");
            if blocked {
                progress.blocked.fetch_add(1, Ordering::Relaxed);
                return Answer::Blocked;
            }
            Answer::Status(status)
        }
        Err(e) => {
            progress.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = progress
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| format!("{path}: {e}"));
            Answer::Nothing
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

/// The two phases: normal traffic paced at `--rate` for the whole run, and in the abuse phase
/// one paced stream per abuser on top of it.
mod phases {
    use super::{agent, record, send, Answer, Args, Progress};
    use plumbline_tests::traffic::{AbuseKind, Abuser, Consumer, PlannedRequest};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Workers of the normal traffic and of each abuser.
    const NORMAL_WORKERS: usize = 6;
    const ABUSER_WORKERS: usize = 3;
    /// An id walk goes one request after another, as a script walking ids does.
    const WALKER_WORKERS: usize = 1;

    /// What one abuser's requests got, and when the first block came.
    #[derive(Default)]
    pub struct Tally {
        pub sent: AtomicU64,
        pub answered: AtomicU64,
        pub blocked: AtomicU64,
        /// Milliseconds into the abuse phase of the first block, plus one (0: none yet).
        pub first_block_ms: AtomicU64,
    }

    /// A paced stream of requests: request `i` is due at `start + i / rate`, none at or after
    /// `end`.
    struct Stream {
        rate: f64,
        start: Instant,
        end: Instant,
        next: AtomicUsize,
    }

    impl Stream {
        /// The next request's index once it is due; `None` when the stream is over.
        fn next(&self) -> Option<usize> {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let due = self.start + Duration::from_secs_f64(i as f64 / self.rate);
            if due >= self.end {
                return None;
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            Some(i)
        }
    }

    /// Runs both phases, printing progress about once a second.
    pub fn run(
        args: &Args,
        consumers: &[Consumer],
        plan: &[PlannedRequest],
        abusers: &[Abuser],
        progress: &Arc<Progress>,
    ) -> Vec<Tally> {
        let tallies: Vec<Tally> = abusers.iter().map(|_| Tally::default()).collect();
        let start = Instant::now();
        let abuse_start = start + Duration::from_secs(args.learn_seconds);
        let end = abuse_start + Duration::from_secs(args.abuse_seconds);
        println!(
            "learning phase: {} s of normal traffic at {}/s",
            args.learn_seconds, args.rate
        );
        let normal = Stream {
            rate: args.rate,
            start,
            end,
            next: AtomicUsize::new(0),
        };
        let normal = &normal;
        let tallies_ref = &tallies;
        std::thread::scope(|scope| {
            for _ in 0..NORMAL_WORKERS {
                scope.spawn(move || {
                    let agent = agent();
                    while let Some(i) = normal.next() {
                        let planned = &plan[i % plan.len()];
                        let consumer = &consumers[planned.consumer];
                        let result = send(
                            &agent,
                            &args.target,
                            &args.host,
                            consumer,
                            &planned.path,
                            planned.status,
                        );
                        record(progress, Some(planned.operation), &planned.path, result);
                    }
                });
            }
            for (abuser, tally) in abusers.iter().zip(tallies_ref) {
                let stream = Arc::new(Stream {
                    rate: abuser.rate,
                    start: abuse_start,
                    end,
                    next: AtomicUsize::new(0),
                });
                let workers = match abuser.kind {
                    AbuseKind::Enumeration => WALKER_WORKERS,
                    _ => ABUSER_WORKERS,
                };
                for _ in 0..workers {
                    let stream = stream.clone();
                    scope.spawn(move || {
                        std::thread::sleep(abuse_start.saturating_duration_since(Instant::now()));
                        let agent = agent();
                        while let Some(i) = stream.next() {
                            let (path, status) = abuser.request(i);
                            let consumer = &consumers[abuser.consumer];
                            let result =
                                send(&agent, &args.target, &args.host, consumer, &path, status);
                            let answer = record(progress, None, &path, result);
                            count(tally, answer, abuse_start);
                        }
                    });
                }
            }
            watch(args, abusers, progress, start, abuse_start, end);
        });
        tallies
    }

    fn count(tally: &Tally, answer: Answer, abuse_start: Instant) {
        tally.sent.fetch_add(1, Ordering::Relaxed);
        match answer {
            Answer::Blocked => {
                tally.blocked.fetch_add(1, Ordering::Relaxed);
                let at = abuse_start.elapsed().as_millis() as u64 + 1;
                let _ = tally.first_block_ms.compare_exchange(
                    0,
                    at,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Answer::Status(_) => {
                tally.answered.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Nothing => {}
        }
    }

    /// Prints progress once a second until the run ends.
    fn watch(
        args: &Args,
        abusers: &[Abuser],
        progress: &Progress,
        start: Instant,
        abuse_start: Instant,
        end: Instant,
    ) {
        let mut announced = false;
        let mut next_line = start + Duration::from_secs(1);
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
            if !announced && Instant::now() >= abuse_start {
                announced = true;
                println!(
                    "abuse phase: {} s; normal traffic goes on, and",
                    args.abuse_seconds
                );
                for abuser in abusers {
                    println!("  {:<13} {}", abuser.kind.name(), abuser.description);
                }
            }
            if Instant::now() >= next_line {
                let done = progress.done.load(Ordering::Relaxed);
                let blocked = progress.blocked.load(Ordering::Relaxed);
                let failed = progress.failed.load(Ordering::Relaxed);
                let phase = if Instant::now() < abuse_start {
                    "learning"
                } else {
                    "abuse"
                };
                let seconds = start.elapsed().as_secs();
                println!(
                    "  [{phase} {seconds:>2} s] {done} requests, {blocked} blocked by Plumbline, \
                     {failed} without response"
                );
                next_line += Duration::from_secs(1);
            }
        }
    }

    /// What each abuser sent in the abuse phase and how much Plumbline blocked.
    pub fn report(
        args: &Args,
        consumers: &[Consumer],
        abusers: &[Abuser],
        tallies: &[Tally],
        progress: &Progress,
    ) {
        if abusers.is_empty() {
            return;
        }
        let blocked = progress.blocked.load(Ordering::Relaxed);
        println!("blocked by Plumbline: {blocked} requests in all");
        println!("abusers in the {} s abuse phase:", args.abuse_seconds);
        for (abuser, tally) in abusers.iter().zip(tallies) {
            let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
            let first = match load(&tally.first_block_ms) {
                0 => String::new(),
                ms => format!(
                    " (first block {:.1} s into the abuse)",
                    (ms - 1) as f64 / 1000.0
                ),
            };
            println!(
                "  {:<13} {:<20} {} abusive requests: {} answered by the API, {} blocked by \
                 Plumbline{first}",
                abuser.kind.name(),
                consumers[abuser.consumer].label,
                load(&tally.sent),
                load(&tally.answered),
                load(&tally.blocked),
            );
        }
    }
}
