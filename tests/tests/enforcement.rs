//! End-to-end enforcement: decisions made at the collector reach every worker of a real Envoy
//! running `--concurrency 4`, are enforced there, expire there, and survive a collector that is
//! down, restarted or answering garbage.
//!
//! "Every worker" is checked, not assumed: requests go out in waves of many new connections at
//! once, and Envoy's per-worker listener stats say which workers accepted connections during a
//! wave. A wave that reached all four workers and got only blocks shows all four enforce. Each
//! test starts its own stack on free loopback ports and stops it when it ends; every wait is
//! bounded, loosely (the propagation goal itself is measured by `scripts/bench-propagation.sh`).

use plumbline_tests::harness::load::{hammer, Timed, Wave};
use plumbline_tests::harness::{wait_for, FakeCollector, Garbage, Request, Stack, StackOptions};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WORKERS: u32 = 4;

/// Connections per wave: enough that each of the four workers almost surely takes some.
const WAVE: usize = 48;

/// How long a decision may take to reach every worker in these tests (loose on purpose).
const PROPAGATION: Duration = Duration::from_secs(15);

/// How long records may take from a request to the collector's API.
const SHIP_TIMEOUT: Duration = Duration::from_secs(30);

/// A four-worker stack whose collector has an operator token and `[policy] mode = mode`.
fn start(mode: &str) -> Stack {
    let options = StackOptions::new(env!("CARGO_BIN_EXE_demo-upstream"))
        .concurrency(WORKERS)
        .decisions(mode);
    Stack::start(options)
}

/// A request of the consumer with API key `key`, tagged with a request id of its own.
fn keyed(key: &str) -> Request {
    let n = rand::random::<u32>();
    Request::get(&format!("/v1/orders/{}", n % 100_000))
        .header("host", "api.plumbline.test")
        .header("x-api-key", key)
        .header("x-request-id", format!("rid-{key}-{n:08x}"))
}

fn block_request(key: &str, ttl: &str) -> Value {
    json!({
        "subject": {"key": key},
        "action": "block",
        "ttl": ttl,
        "reason": "end-to-end test"
    })
}

/// Makes a decision through the API; its id.
fn decide(stack: &Stack, request: &Value) -> u64 {
    let made = stack
        .collector
        .decide(request)
        .unwrap_or_else(|e| panic!("{e}"));
    made["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no id in {made}"))
}

/// Runs the `plumbline` CLI against the stack's collector with the operator token, giving
/// `stdin` as its input; its standard output, or a panic with its error output.
fn cli(stack: &Stack, args: &[&str], stdin: &str) -> String {
    let token = stack.collector.operator_token().expect("an operator token");
    let mut child = Command::new(stack.collector.bin())
        .args(args)
        .arg("--server")
        .arg(stack.collector.url(""))
        .env("PLUMBLINE_OPERATOR_TOKEN", token)
        .env_remove("PLUMBLINE_CONFIG")
        .env_remove("PLUMBLINE_SERVER")
        .env_remove("PLUMBLINE_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the plumbline CLI");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .expect("write the CLI's stdin");
    }
    let out = child.wait_with_output().expect("run the plumbline CLI");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "plumbline {args:?} failed ({}): {}{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Tallies what one consumer's requests got, to compare with what the upstream saw.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    ok: u64,
    refused: u64,
}

impl Tally {
    fn add(&mut self, wave: &Wave, refused_status: u16) {
        self.sent += wave.answers.len() as u64;
        self.ok += wave.count(200) as u64;
        self.refused += wave.count(refused_status) as u64;
    }
}

/// Sends waves of `key`'s requests until one reaches every worker and is answered `status`
/// throughout, counting every answer in `tally`; that wave.
fn until_every_worker_answers(
    stack: &Stack,
    key: &str,
    status: u16,
    tally: &mut Tally,
    timeout: Duration,
) -> Wave {
    let what = format!("every worker to answer {key}'s requests with {status}");
    wait_for(&what, timeout, Duration::from_millis(50), || {
        let wave = Wave::send(&stack.envoy, &keyed(key), WAVE)?;
        tally.add(&wave, status);
        if wave.reached_every_worker() && wave.all_answered(status) {
            return Ok(wave);
        }
        Err(wave.summary())
    })
}

/// Sends one wave of `key`'s requests and asserts all of them got `status`.
fn expect_wave(stack: &Stack, key: &str, status: u16, tally: &mut Tally, when: &str) -> Wave {
    let wave = Wave::send(&stack.envoy, &keyed(key), WAVE).unwrap_or_else(|e| panic!("{e}"));
    tally.add(&wave, status);
    assert!(
        wave.all_answered(status),
        "{when}: {key}'s requests should all get {status}: {}",
        wave.summary()
    );
    wave
}

/// Waits until a counter of the filter (lagging traffic by up to ~100 ms) reads `expected`.
fn expect_counter(stack: &Stack, name: &str, expected: u64) {
    wait_for(
        &format!("{name} to read {expected}"),
        Duration::from_secs(5),
        Duration::from_millis(50),
        || match stack.envoy.counter(name)? {
            n if n == expected => Ok(()),
            n => Err(format!("{n}; {}", stack.envoy.plumbline_stats())),
        },
    );
}

/// Sends traffic until all four workers have shipped records: four instances in /v1/filters.
fn until_every_worker_reports(stack: &Stack, key: &str, tally: &mut Tally) -> Vec<Value> {
    wait_for(
        "four filter instances with records in /v1/filters",
        SHIP_TIMEOUT,
        Duration::from_millis(200),
        || {
            let wave = Wave::send(&stack.envoy, &keyed(key), WAVE)?;
            tally.add(&wave, 0);
            let filters: Value = stack.collector.get_json("/v1/filters")?;
            let reporting: Vec<Value> = filters["filters"]
                .as_array()
                .map(|all| {
                    let with_records = all.iter().filter(|f| f["records"].as_u64() > Some(0));
                    with_records.cloned().collect()
                })
                .unwrap_or_default();
            if reporting.len() == WORKERS as usize {
                return Ok(reporting);
            }
            Err(format!("{} reporting: {filters}", reporting.len()))
        },
    )
}

fn assert_no_vm_failures(stack: &Stack) {
    let failures = stack.envoy.vm_failures();
    assert!(
        failures.is_empty(),
        "Envoy's log shows filter VM failures:\n{}",
        failures.join("\n")
    );
}

/// The upstream saw exactly the requests of `key` that were answered 200.
fn assert_upstream_saw_only_passed(stack: &Stack, key: &str, tally: &Tally) {
    let seen = stack.upstream.requests_of(key);
    assert_eq!(
        seen, tally.ok,
        "the upstream saw {seen} requests of {key}; {tally:?} were answered 200"
    );
}

/// Must show 1, with the CLI: the block reaches all four workers within seconds, every later
/// request of that consumer is refused with the documented body, nobody else is touched, and
/// the upstream never sees a refused request.
#[test]
fn a_blocked_consumer_is_refused_by_every_worker_and_never_reaches_the_upstream() {
    let stack = start("enforce");
    let (bad, good) = ("key-abuser-51c3", "key-bystander-8e07");
    let (mut bad_tally, mut good_tally) = (Tally::default(), Tally::default());

    let filters = until_every_worker_reports(&stack, bad, &mut bad_tally);
    let mut instances: Vec<String> = filters.iter().map(|f| f["instance"].to_string()).collect();
    instances.sort();
    instances.dedup();
    assert_eq!(
        instances.len(),
        4,
        "four distinct instance ids: {filters:?}"
    );
    expect_wave(&stack, good, 200, &mut good_tally, "before the block");

    let made = cli(
        &stack,
        &[
            "block", "--key", "-", "--ttl", "1h", "--reason", "abuse", "--json",
        ],
        bad,
    );
    let made: Value = serde_json::from_str(&made).expect("the CLI's JSON");
    let id = made["id"].as_u64().expect("a decision id");
    assert_eq!(
        made["subject"]["consumer"],
        stack.consumer_id(bad.as_bytes())
    );
    let audit: Value = stack
        .collector
        .get_json("/v1/audit?limit=1")
        .expect("audit");
    let entry = &audit["entries"][0];
    assert_eq!(
        (&entry["action"], &entry["who"], &entry["decision"]["id"]),
        (&json!("add"), &json!("operator"), &json!(id)),
        "{audit}"
    );
    let blocked_at = Instant::now();
    until_every_worker_answers(&stack, bad, 403, &mut bad_tally, PROPAGATION);
    eprintln!(
        "block on every worker {:?} after the CLI returned",
        blocked_at.elapsed()
    );

    for round in 0..4 {
        let wave = expect_wave(&stack, bad, 403, &mut bad_tally, "after the block");
        if round == 0 {
            check_block_body(&wave, id);
        }
        expect_wave(&stack, good, 200, &mut good_tally, "other consumer");
    }
    assert_eq!(good_tally.ok, good_tally.sent, "{good_tally:?}");
    assert_eq!(
        bad_tally.ok + bad_tally.refused,
        bad_tally.sent,
        "every answer was 200 or 403: {bad_tally:?}"
    );
    assert_upstream_saw_only_passed(&stack, bad, &bad_tally);
    assert_upstream_saw_only_passed(&stack, good, &good_tally);
    expect_counter(&stack, "plumbline.requests_blocked", bad_tally.refused);
    let bad_id = stack.consumer_id(bad.as_bytes());
    wait_for(
        "the collector to count every refused request on the blocked consumer",
        SHIP_TIMEOUT,
        Duration::from_millis(200),
        || {
            let consumers: Value = stack.collector.get_json("/v1/consumers")?;
            match count_of(&consumers, &bad_id, "blocked") {
                n if n == bad_tally.refused => Ok(()),
                n => Err(format!("{n} blocked of {} refused", bad_tally.refused)),
            }
        },
    );
    assert_no_vm_failures(&stack);
}

fn check_block_body(wave: &Wave, id: u64) {
    let response = wave.answers[0].as_ref().expect("an answer");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("block body is not JSON ({e}): {}", response.text()));
    assert_eq!(body["error"], "blocked by policy", "{body}");
    assert_eq!(body["decision"], id.to_string(), "{body}");
    let request_id = body["request_id"].as_str().unwrap_or_default();
    assert!(
        request_id.starts_with("rid-key-abuser-51c3-"),
        "the request's x-request-id in {body}"
    );
}

/// Must show 2: a block with a short TTL holds while the collector is down, and ends on time
/// there anyway, because every worker compares expiry with its own clock.
#[test]
fn a_block_ends_at_its_ttl_on_every_worker_even_while_the_collector_is_down() {
    let mut stack = start("enforce");
    let (bad, good) = ("key-shortban-77d0", "key-steady-2b19");
    let (mut bad_tally, mut good_tally) = (Tally::default(), Tally::default());
    expect_wave(&stack, bad, 200, &mut bad_tally, "before the block");

    let ttl = Duration::from_secs(8);
    decide(&stack, &block_request(bad, "8s"));
    let decided = Instant::now();
    until_every_worker_answers(&stack, bad, 403, &mut bad_tally, PROPAGATION);
    assert!(
        decided.elapsed() + Duration::from_secs(2) < ttl,
        "the block took {:?} to reach every worker: too late to test expiry",
        decided.elapsed()
    );

    stack.collector.stop();
    let failed_before = stack.envoy.counter("plumbline.batches_failed").unwrap_or(0);
    while decided.elapsed() + Duration::from_millis(1500) < ttl {
        expect_wave(
            &stack,
            bad,
            403,
            &mut bad_tally,
            "collector down, before expiry",
        );
        expect_wave(&stack, good, 200, &mut good_tally, "collector down");
        std::thread::sleep(Duration::from_millis(200));
    }
    let until_expiry = ttl.saturating_sub(decided.elapsed());
    std::thread::sleep(until_expiry + Duration::from_millis(500));

    let wave = until_every_worker_answers(&stack, bad, 200, &mut bad_tally, Duration::from_secs(5));
    eprintln!(
        "after expiry: {} (collector down since before it)",
        wave.summary()
    );
    expect_wave(&stack, bad, 200, &mut bad_tally, "after expiry");
    let failed = stack.envoy.counter("plumbline.batches_failed").unwrap_or(0);
    assert!(
        failed > failed_before,
        "the filters saw the collector down: batches_failed {failed_before} -> {failed}"
    );
    assert!(!stack.collector.is_running());
    assert_upstream_saw_only_passed(&stack, bad, &bad_tally);
    assert_eq!(good_tally.ok, good_tally.sent, "{good_tally:?}");
    assert_no_vm_failures(&stack);
}

/// Must show 3: in monitor mode a blocked consumer's requests all reach the upstream, and
/// every worker flags them as would-block.
#[test]
fn in_monitor_mode_a_blocked_consumer_passes_and_every_worker_counts_would_blocks() {
    let stack = start("monitor");
    let (bad, good) = ("key-watched-0f4e", "key-quiet-91aa");
    let (mut bad_tally, mut good_tally) = (Tally::default(), Tally::default());
    let id = decide(&stack, &block_request(bad, "1h"));
    let set = stack.collector.decisions().expect("decisions");
    assert_eq!(set["mode"], "monitor", "{set}");
    assert_eq!(set["decisions"][0]["id"], id, "{set}");

    let what = "a wave on every worker, each request of it counted as would-block";
    wait_for(what, PROPAGATION, Duration::from_millis(50), || {
        let before = stack.envoy.counter("plumbline.requests_would_block")?;
        let wave = Wave::send(&stack.envoy, &keyed(bad), WAVE)?;
        bad_tally.add(&wave, 0);
        if !wave.all_answered(200) {
            panic!("monitor mode refused a request: {}", wave.summary());
        }
        let flagged = settled_counter(&stack, "plumbline.requests_would_block")? - before;
        if wave.reached_every_worker() && flagged == WAVE as u64 {
            return Ok(());
        }
        Err(format!("{flagged} flagged of {}", wave.summary()))
    });

    for _ in 0..3 {
        expect_wave(&stack, bad, 200, &mut bad_tally, "monitor mode");
        expect_wave(&stack, good, 200, &mut good_tally, "other consumer");
    }
    assert_eq!(bad_tally.ok, bad_tally.sent, "{bad_tally:?}");
    assert_upstream_saw_only_passed(&stack, bad, &bad_tally);
    assert_upstream_saw_only_passed(&stack, good, &good_tally);
    assert_eq!(stack.envoy.counter("plumbline.requests_blocked"), Ok(0));
    // The records reach the collector.
    let bad_id = stack.consumer_id(bad.as_bytes());
    wait_for(
        "every request of the watched consumer recorded at the collector",
        SHIP_TIMEOUT,
        Duration::from_millis(200),
        || {
            let consumers: Value = stack.collector.get_json("/v1/consumers")?;
            match calls_of(&consumers, &bad_id) {
                n if n == bad_tally.sent => Ok(()),
                n => Err(format!("{n} calls of {} sent", bad_tally.sent)),
            }
        },
    );
    // The records carry the would-block flag, and the collector counts them: every request
    // Envoy counted as would-block arrives flagged.
    wait_for(
        "the collector's would-block count to match Envoy's",
        SHIP_TIMEOUT,
        Duration::from_millis(200),
        || {
            let envoy = stack.envoy.counter("plumbline.requests_would_block")?;
            let metrics = stack.collector.get("/metrics")?.text();
            let line = "plumbline_requests_enforced_total{outcome=\"would_block\"} ";
            let collector = metrics
                .lines()
                .find_map(|l| l.strip_prefix(line))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("no {line}in /metrics"))?;
            match (envoy, collector) {
                (e, c) if e > 0 && e == c => Ok(()),
                (e, c) => Err(format!("envoy counted {e}, collector {c}")),
            }
        },
    );
    // ... and puts them on the watched consumer's profile, none on the other's.
    let envoy = stack.envoy.counter("plumbline.requests_would_block");
    let consumers: Value = stack
        .collector
        .get_json("/v1/consumers")
        .expect("consumers");
    let good_id = stack.consumer_id(good.as_bytes());
    let would_block = |id: &str| count_of(&consumers, id, "would_block");
    assert_eq!(Ok(would_block(&bad_id)), envoy, "{consumers}");
    assert_eq!(would_block(&good_id), 0, "{consumers}");
    assert_eq!(count_of(&consumers, &bad_id, "blocked"), 0, "{consumers}");
    assert_no_vm_failures(&stack);
}

/// A consumer's calls in a `/v1/consumers` answer; 0 when it is not there.
fn calls_of(consumers: &Value, id: &str) -> u64 {
    count_of(consumers, id, "calls")
}

/// A count field of a consumer in a `/v1/consumers` answer; 0 when it is not there.
fn count_of(consumers: &Value, id: &str, field: &str) -> u64 {
    consumers["consumers"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == id))
        .and_then(|c| c[field].as_u64())
        .unwrap_or(0)
}

/// A counter once it has stopped moving (the filter hands counters over every ~100 ms).
fn settled_counter(stack: &Stack, name: &str) -> Result<u64, String> {
    let mut last = stack.envoy.counter(name)?;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = stack.envoy.counter(name)?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
}

/// The local kill-switch: a filter configured with `"enforce": false` only flags requests,
/// even when the collector's mode is enforce.
#[test]
fn a_filter_with_enforce_off_lets_a_blocked_consumer_through_in_enforce_mode() {
    let options = StackOptions::new(env!("CARGO_BIN_EXE_demo-upstream"))
        .concurrency(WORKERS)
        .decisions("enforce")
        .plugin("enforce", "false");
    let stack = Stack::start(options);
    let bad = "key-spared-3c6d";
    let mut tally = Tally::default();
    decide(&stack, &block_request(bad, "1h"));
    assert_eq!(
        stack.collector.decisions().expect("decisions")["mode"],
        "enforce"
    );

    wait_for(
        "requests of the blocked consumer to be flagged would-block",
        PROPAGATION,
        Duration::from_millis(100),
        || {
            let wave = Wave::send(&stack.envoy, &keyed(bad), WAVE)?;
            tally.add(&wave, 0);
            assert!(wave.all_answered(200), "refused: {}", wave.summary());
            match settled_counter(&stack, "plumbline.requests_would_block")? {
                0 => Err(wave.summary()),
                _ => Ok(()),
            }
        },
    );
    expect_wave(&stack, bad, 200, &mut tally, "enforce off");
    assert_upstream_saw_only_passed(&stack, bad, &tally);
    assert_eq!(stack.envoy.counter("plumbline.requests_blocked"), Ok(0));
}

/// Must show 4: a throttled consumer hammered over many connections gets its rate (one
/// bucket per Envoy instance, shared by the workers) and 429 with Retry-After above it.
#[test]
fn a_throttled_consumer_gets_at_most_its_rate_and_429_with_retry_after_above_it() {
    const RATE: u64 = 20;
    const MEASURED: Duration = Duration::from_secs(5);
    let stack = start("enforce");
    let (bad, good) = ("key-greedy-6a21", "key-polite-d402");
    let id = decide(
        &stack,
        &json!({"subject": {"key": bad}, "action": "throttle", "rate": "20/s",
                "ttl": "1h", "reason": "too fast"}),
    );

    let addr = stack.envoy.listener();
    let key_of = |t: &Timed| if t.n % 5 == 4 { good } else { bad };
    let mix = |n: usize| keyed(if n % 5 == 4 { good } else { bad });
    let mut answers: Vec<Timed> = Vec::new();
    let deadline = Instant::now() + PROPAGATION;
    while !answers.iter().any(|t| status_of(t) == Some(429)) {
        assert!(Instant::now() < deadline, "no 429 within {PROPAGATION:?}");
        answers.extend(hammer(addr, 16, Duration::from_millis(500), mix));
    }
    // Every worker takes a set from shared data within a tick; one second is ample.
    answers.extend(hammer(addr, 16, Duration::from_secs(1), mix));
    let window_start = Instant::now();
    let measured = hammer(addr, 16, MEASURED, mix);
    let window = measured
        .last()
        .map_or(MEASURED, |t| t.answered - window_start);

    let passed = measured
        .iter()
        .filter(|t| key_of(t) == bad && status_of(t) == Some(200))
        .count() as u64;
    let refused = measured
        .iter()
        .filter(|t| key_of(t) == bad && status_of(t) == Some(429))
        .count();
    let allowed = RATE * window.as_millis() as u64 / 1000;
    // Tolerance: the bucket may hold a full burst (= RATE) when the window opens, plus 2 %.
    let most = RATE + allowed + allowed / 50;
    let least = allowed * 8 / 10;
    eprintln!(
        "throttle {RATE}/s over {window:?}: {passed} passed, {refused} refused (429); \
         allowed {least}..={most}"
    );
    assert!(
        (least..=most).contains(&passed),
        "{passed} passed in {window:?}, want {least}..={most}"
    );
    assert!(refused > 0, "nothing refused in the measured window");

    answers.extend(measured);
    check_refusals(&answers, bad, id);
    let good_failed = answers
        .iter()
        .filter(|t| key_of(t) == good && status_of(t) != Some(200))
        .count();
    assert_eq!(good_failed, 0, "requests of the other consumer refused");
    let bad_passed = answers
        .iter()
        .filter(|t| key_of(t) == bad && status_of(t) == Some(200))
        .count() as u64;
    assert_eq!(stack.upstream.requests_of(bad), bad_passed);
    let throttled = answers.iter().filter(|t| status_of(t) == Some(429)).count();
    expect_counter(&stack, "plumbline.requests_throttled", throttled as u64);
    assert_no_vm_failures(&stack);
}

fn status_of(t: &Timed) -> Option<u16> {
    t.result.as_ref().ok().map(|r| r.status)
}

/// Every refusal of `key` is a 429 with a whole-second Retry-After and the documented body.
fn check_refusals(answers: &[Timed], key: &str, id: u64) {
    for t in answers.iter().filter(|t| status_of(t) == Some(429)) {
        let response = t.result.as_ref().expect("an answer");
        let retry = response
            .header("retry-after")
            .and_then(|v| v.parse::<u32>().ok());
        assert!(
            retry.is_some_and(|s| s >= 1),
            "429 without a whole-second Retry-After: {response:?}"
        );
        let body: Value = serde_json::from_slice(&response.body).expect("a JSON body");
        assert_eq!(body["error"], "rate limited by policy", "{body}");
        assert_eq!(body["decision"], id.to_string(), "{body}");
        let rid = body["request_id"].as_str().unwrap_or_default();
        assert!(rid.starts_with(&format!("rid-{key}-")), "{body}");
    }
}

/// Must show 5: a collector answering garbage, then gone, changes nothing for traffic: the
/// held block keeps applying on every worker, others pass, and no VM fails; once a real
/// collector is back, records flow again.
#[test]
fn held_decisions_keep_applying_while_the_collector_answers_garbage_or_is_down() {
    let mut stack = start("enforce");
    let (bad, good) = ("key-banned-4d2f", "key-regular-a7e3");
    let (mut bad_tally, mut good_tally) = (Tally::default(), Tally::default());
    decide(&stack, &block_request(bad, "1h"));
    until_every_worker_answers(&stack, bad, 403, &mut bad_tally, PROPAGATION);
    let failed_before = stack.envoy.counter("plumbline.batches_failed").unwrap_or(0);

    stack.collector.stop();
    let fake = FakeCollector::start(stack.collector.port()).expect("start the fake collector");
    wait_for(
        "the fake collector to answer batches with every kind of garbage",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            expect_wave(
                &stack,
                bad,
                403,
                &mut bad_tally,
                "collector answering garbage",
            );
            expect_wave(
                &stack,
                good,
                200,
                &mut good_tally,
                "collector answering garbage",
            );
            let missing: Vec<Garbage> = Garbage::ALL
                .into_iter()
                .filter(|kind| fake.answered(*kind) == 0)
                .collect();
            match missing.is_empty() {
                true => Ok(()),
                false => Err(format!("not yet answered: {missing:?}")),
            }
        },
    );
    let garbage_answers = fake.answered_total();
    drop(fake);

    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(3) {
        expect_wave(&stack, bad, 403, &mut bad_tally, "collector down");
        expect_wave(&stack, good, 200, &mut good_tally, "collector down");
        std::thread::sleep(Duration::from_millis(200));
    }
    let failed = stack.envoy.counter("plumbline.batches_failed").unwrap_or(0);
    assert!(
        failed > failed_before,
        "batches_failed {failed_before} -> {failed} after {garbage_answers} garbage answers \
         and 3 s down"
    );
    let log = stack.envoy.log_text();
    assert!(
        log.contains("unreadable reply"),
        "the filter logs the 2xx garbage it got"
    );

    stack.collector.start_again();
    let good_id = stack.consumer_id(good.as_bytes());
    wait_for(
        "records of the other consumer to reach the collector again",
        SHIP_TIMEOUT,
        Duration::from_millis(200),
        || {
            expect_wave(&stack, bad, 403, &mut bad_tally, "collector back");
            expect_wave(&stack, good, 200, &mut good_tally, "collector back");
            let consumers: Value = stack.collector.get_json("/v1/consumers")?;
            match calls_of(&consumers, &good_id) {
                0 => Err(format!("no calls of {good} yet: {consumers}")),
                _ => Ok(()),
            }
        },
    );
    assert_upstream_saw_only_passed(&stack, bad, &bad_tally);
    assert_upstream_saw_only_passed(&stack, good, &good_tally);
    assert_eq!(good_tally.ok, good_tally.sent, "{good_tally:?}");
    assert_no_vm_failures(&stack);
}

/// A collector restart keeps decisions: `plumbline decisions` lists the block afterwards, the
/// running workers keep it, and a new Envoy (new VMs holding nothing) learns it from the
/// restarted collector.
#[test]
fn a_collector_restart_keeps_decisions_for_running_workers_and_new_ones() {
    let mut stack = start("enforce");
    let (bad, good) = ("key-kept-5e90", "key-fine-13b8");
    let (mut bad_tally, mut good_tally) = (Tally::default(), Tally::default());
    let id = decide(&stack, &block_request(bad, "1h"));
    until_every_worker_answers(&stack, bad, 403, &mut bad_tally, PROPAGATION);

    stack.collector.stop();
    stack.collector.start_again();
    let listed: Value =
        serde_json::from_str(&cli(&stack, &["decisions", "--json"], "")).expect("the CLI's JSON");
    assert_eq!(listed["mode"], "enforce", "{listed}");
    let kept = listed["decisions"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["id"] == id));
    let kept =
        kept.unwrap_or_else(|| panic!("decision {id} not listed after the restart: {listed}"));
    assert_eq!(
        kept["subject"]["consumer"],
        stack.consumer_id(bad.as_bytes())
    );
    assert_eq!(kept["action"], "block");
    expect_wave(
        &stack,
        bad,
        403,
        &mut bad_tally,
        "after the collector restart",
    );
    expect_wave(
        &stack,
        good,
        200,
        &mut good_tally,
        "after the collector restart",
    );

    stack.envoy.restart();
    until_every_worker_answers(&stack, bad, 403, &mut bad_tally, PROPAGATION);
    expect_wave(&stack, good, 200, &mut good_tally, "new Envoy");
    assert_upstream_saw_only_passed(&stack, bad, &bad_tally);
    assert_upstream_saw_only_passed(&stack, good, &good_tally);
    assert_no_vm_failures(&stack);
}
