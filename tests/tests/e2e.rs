//! End-to-end: a real Envoy with the Plumbline wasm filter in front of the demo upstream, and
//! the collector receiving its batches. Each test starts its own stack on free loopback ports
//! and stops it when it ends (also on failure); every wait is bounded.
//!
//! Needs the collector binary, the wasm filter and Envoy: `make test` builds and installs them.

use plumbline_tests::harness::{send_streaming, Endpoint, Request, Response, Stack, StackOptions};
use plumbline_wire::{consumer_id, Addr, Batch, BatchBuilder, BatchReply, Method, Record};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The host the tests' clients name; the inventory keys endpoints by it.
const HOST: &str = "api.plumbline.test";

/// How long records may take from a request to the collector's API.
const SHIP_TIMEOUT: Duration = Duration::from_secs(30);

fn start_stack() -> Stack {
    Stack::start(StackOptions::new(env!("CARGO_BIN_EXE_demo-upstream")))
}

fn get(path: &str) -> Request {
    Request::get(path).header("host", HOST)
}

/// A GET with an API key and a partner label.
fn keyed(path: &str, key: &[u8], label: &str) -> Request {
    get(path)
        .header("x-api-key", key)
        .header("x-partner", label)
}

fn assert_ok(response: &Response, what: &str) {
    assert_eq!(
        response.status,
        200,
        "{what}: expected 200, got {}: {}",
        response.status,
        response.text()
    );
}

fn find<'a>(inventory: &'a [Endpoint], method: &str, path: &str) -> Option<&'a Endpoint> {
    inventory
        .iter()
        .find(|e| e.method == method && e.path == path && e.host == HOST)
}

/// The endpoint whose path is `prefix` followed by one `{placeholder}` segment.
fn find_templated<'a>(inventory: &'a [Endpoint], prefix: &str) -> Option<&'a Endpoint> {
    inventory.iter().find(|e| {
        let rest = e.path.strip_prefix(prefix);
        e.host == HOST && rest.is_some_and(|r| r.starts_with('{') && r.ends_with('}'))
    })
}

fn total_calls(inventory: &[Endpoint]) -> u64 {
    inventory.iter().map(|e| e.calls).sum()
}

/// Checks an endpoint's calls and distinct consumers, describing what was seen otherwise.
fn expect_counts(
    found: Option<&Endpoint>,
    name: &str,
    calls: u64,
    consumers: u64,
) -> Result<(), String> {
    let e = found.ok_or_else(|| format!("no endpoint {name} yet"))?;
    if e.calls == calls && e.consumers == consumers {
        return Ok(());
    }
    Err(format!(
        "{name}: {} calls from {} consumers, want {calls} from {consumers}",
        e.calls, e.consumers
    ))
}

fn uuid(n: u32) -> String {
    format!(
        "{n:08x}-7d3c-4b2a-9f1e-{:012x}",
        0x5a17_0000_u64 + u64::from(n)
    )
}

/// Must show 1: IDs in paths collapse into templates; calls and distinct consumers are exact.
#[test]
fn traffic_with_ids_in_paths_is_counted_exactly_under_templated_paths() {
    let stack = start_stack();
    let alice = (b"key-alice-7f3a".as_slice(), "acme");
    let bob = (b"key-bob-19c2".as_slice(), "globex");
    let carol = (b"key-carol-b851".as_slice(), "initech");

    for order in 1001..=1005 {
        let request = keyed(&format!("/v1/orders/{order}"), alice.0, alice.1);
        assert_ok(&stack.send(&request), "alice's order");
    }
    let not_found = keyed("/v1/orders/1006", alice.0, alice.1).header("x-demo-status", "404");
    assert_eq!(stack.send(&not_found).status, 404);
    for order in [2001, 2002, 2003] {
        let request = keyed(&format!("/v1/orders/{order}"), bob.0, bob.1);
        assert_ok(&stack.send(&request), "bob's order");
    }
    for n in 1..=2 {
        let request = keyed(&format!("/v1/users/{}", uuid(n)), bob.0, bob.1);
        assert_ok(&stack.send(&request), "bob's user");
    }
    for n in 10..=13 {
        let request = keyed(&format!("/v1/users/{}", uuid(n)), carol.0, carol.1);
        assert_ok(&stack.send(&request), "carol's user");
    }
    assert_ok(
        &stack.send(&get("/v1/orders/3001")),
        "unauthenticated order",
    );

    stack.wait_for_inventory(
        "orders and users under templated paths",
        SHIP_TIMEOUT,
        |inv| {
            expect_counts(
                find(inv, "GET", "/v1/orders/{id}"),
                "GET /v1/orders/{id}",
                10,
                2,
            )?;
            expect_counts(
                find_templated(inv, "/v1/users/"),
                "GET /v1/users/{..}",
                6,
                2,
            )
        },
    );

    std::thread::sleep(Duration::from_millis(1500));
    let inventory = stack.collector.inventory().expect("inventory");
    let orders = find(&inventory, "GET", "/v1/orders/{id}").expect("orders endpoint");
    assert_eq!(
        (orders.calls, orders.consumers),
        (10, 2),
        "orders counted twice: {orders:?}"
    );
    assert_eq!(orders.status.s2xx, 9, "{orders:?}");
    assert_eq!(orders.status.s4xx, 1, "{orders:?}");
    assert_eq!(
        total_calls(&inventory),
        16,
        "every request once: {inventory:#?}"
    );
    for raw in ["1001", "2003", "3001", &uuid(10)] {
        let leaked = inventory.iter().find(|e| e.path.contains(raw));
        assert!(
            leaked.is_none(),
            "raw path value {raw} in the inventory: {leaked:?}"
        );
    }

    let consumers = stack.collector.consumers().expect("consumers");
    let expected = [(alice, 6, 1), (bob, 5, 2), (carol, 4, 1)];
    assert_eq!(consumers.len(), 3, "{consumers:#?}");
    for ((key, label), calls, endpoints) in expected {
        let id = stack.consumer_id(key);
        let consumer = consumers.iter().find(|c| c.id == id);
        let consumer =
            consumer.unwrap_or_else(|| panic!("no consumer {id} ({label}): {consumers:#?}"));
        assert_eq!(consumer.label.as_deref(), Some(label), "{consumer:?}");
        assert_eq!(
            (consumer.calls, consumer.endpoints),
            (calls, endpoints),
            "{consumer:?}"
        );
    }
}

/// Must show 2: raw API keys and bearer tokens never reach the collector's API, files or log.
#[test]
fn raw_api_keys_and_bearer_tokens_never_reach_the_collector() {
    let mut stack = start_stack();
    let nonce = format!("{:016x}", rand::random::<u64>());
    let api_key = format!("pk_live_{nonce}_apikey");
    let token = format!("tok_{nonce}_bearer");

    for n in 0..3 {
        let request = get(&format!("/v1/orders/{}", 500 + n)).header("x-api-key", &api_key);
        assert_ok(&stack.send(&request), "request with an API key");
        let bearer = format!("Bearer {token}");
        let request = get(&format!("/v1/orders/{}", 600 + n)).header("authorization", bearer);
        assert_ok(&stack.send(&request), "request with a bearer token");
    }
    stack.wait_for_inventory("six calls from two consumers", SHIP_TIMEOUT, |inv| {
        expect_counts(
            find(inv, "GET", "/v1/orders/{id}"),
            "GET /v1/orders/{id}",
            6,
            2,
        )
    });

    let consumers = stack.collector.consumers().expect("consumers");
    let key_id = stack.consumer_id(api_key.as_bytes());
    assert!(
        consumers.iter().any(|c| c.id == key_id && c.calls == 3),
        "the API key's consumer is not {key_id} with 3 calls: {consumers:#?}"
    );

    let mut outputs = BTreeMap::new();
    for path in ["/v1/inventory", "/v1/consumers", "/v1/filters", "/metrics"] {
        let reply = stack.collector.get(path).expect(path);
        outputs.insert(format!("GET {path}"), reply.body);
    }
    stack.collector.stop();
    for file in files_under(stack.collector.data_dir()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        outputs.insert(format!("file {}", file.display()), bytes);
    }
    let log = std::fs::read(stack.collector.log_path()).unwrap_or_default();
    outputs.insert("collector log".to_string(), log);
    let stored: usize = outputs.values().map(Vec::len).sum();
    assert!(stored > 0, "nothing to search");

    for (what, bytes) in &outputs {
        for secret in [nonce.as_str(), api_key.as_str(), token.as_str()] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{what} contains the raw secret {secret:?}");
        }
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Must show 3: header values that are not UTF-8 neither fail the request nor trap the VM.
#[test]
fn header_values_that_are_not_utf8_are_proxied_and_recorded() {
    let stack = start_stack();
    let odd_key: &[u8] = b"key-\xff\xfe\x80-latin1-\xe9t\xe9";
    let odd_agent: &[u8] = b"partner-sdk/2.1 (\xc3\x28; \xff)";

    let plain = keyed("/v1/things/41", b"key-plain-0c1d", "plain");
    assert_ok(&stack.send(&plain), "plain request before");
    let odd = get("/v1/things/42")
        .header("x-api-key", odd_key)
        .header("user-agent", odd_agent);
    let response = stack.send(&odd);
    assert_ok(&response, "request with non-UTF-8 key and user-agent");
    assert!(
        response.text().contains("/v1/things/42"),
        "{}",
        response.text()
    );
    let plain = keyed("/v1/things/43", b"key-plain-0c1d", "plain");
    assert_ok(
        &stack.send(&plain),
        "plain request after (the VM still records)",
    );

    stack.wait_for_inventory("three calls to /v1/things/{id}", SHIP_TIMEOUT, |inv| {
        expect_counts(
            find(inv, "GET", "/v1/things/{id}"),
            "GET /v1/things/{id}",
            3,
            2,
        )
    });
    assert_eq!(stack.upstream.requests(), 3);
    let consumers = stack.collector.consumers().expect("consumers");
    let odd_id = stack.consumer_id(odd_key);
    assert!(
        consumers.iter().any(|c| c.id == odd_id && c.calls == 1),
        "no consumer {odd_id} (hash of the raw key bytes) with 1 call: {consumers:#?}"
    );
}

/// Must show 4: traffic never depends on the collector; records flow again once it is back.
#[test]
fn requests_succeed_while_the_collector_is_down_and_records_flow_after_it_returns() {
    let mut stack = start_stack();
    let key = b"key-outage-4e21".as_slice();
    for n in 0..5 {
        assert_ok(
            &stack.send(&keyed(&format!("/v1/before/{n}"), key, "acme")),
            "before",
        );
    }
    stack.wait_for_inventory("the first five calls", SHIP_TIMEOUT, |inv| {
        expect_counts(
            find(inv, "GET", "/v1/before/{id}"),
            "GET /v1/before/{id}",
            5,
            1,
        )
    });

    stack.collector.stop();
    for n in 0..20 {
        let response = stack.send(&keyed(&format!("/v1/during/{n}"), key, "acme"));
        assert_ok(&response, "request while the collector is down");
    }
    assert_eq!(
        stack.upstream.requests(),
        25,
        "every request reached the upstream"
    );
    plumbline_tests::harness::wait_for(
        "Envoy's stats to show failed batches or dropped records",
        SHIP_TIMEOUT,
        Duration::from_millis(200),
        || {
            let failed = stack.envoy.counter("plumbline.batches_failed")?;
            let dropped = stack.envoy.counter("plumbline.records_dropped")?;
            if failed + dropped > 0 {
                return Ok(());
            }
            Err(stack.envoy.plumbline_stats())
        },
    );

    stack.collector.start_again();
    for n in 0..5 {
        assert_ok(
            &stack.send(&keyed(&format!("/v1/after/{n}"), key, "acme")),
            "after",
        );
    }
    let inventory = stack.wait_for_inventory(
        "calls made after the collector came back",
        Duration::from_secs(60),
        |inv| {
            expect_counts(
                find(inv, "GET", "/v1/after/{id}"),
                "GET /v1/after/{id}",
                5,
                1,
            )?;
            Ok(inv.to_vec())
        },
    );
    let before = find(&inventory, "GET", "/v1/before/{id}").map_or(0, |e| e.calls);
    assert_eq!(before, 5, "calls recorded before the outage survive it");
    let during = find(&inventory, "GET", "/v1/during/{id}").map_or(0, |e| e.calls);
    assert!(
        during <= 20,
        "{during} calls recorded for 20 requests during the outage"
    );
}

/// A valid batch of `records` calls to `path` from one consumer, as a filter would send it.
fn probe_batch(path: &str, records: usize, instance: u64) -> Batch {
    let now_ms = 1_760_000_000_000;
    let mut b = BatchBuilder::new(now_ms);
    let consumer = b.consumer(consumer_id(b"probe-salt", b"probe-key"));
    for i in 0..records {
        let (segments, flags) = b.path(path);
        let record = Record {
            offset_ms: b.offset_ms(now_ms + i as u64),
            method: Method::Get,
            host: b.intern(HOST),
            path: segments,
            query: Vec::new(),
            status: 200,
            request_bytes: 0,
            response_bytes: 64,
            duration_us: 900,
            consumer: Some(consumer),
            label: None,
            client: Some(b.addr(Addr::V4([127, 0, 0, 1]))),
            user_agent: None,
            request_type: None,
            response_type: None,
            flags,
            weight: 1,
        };
        b.push(record);
    }
    let mut batch = b.finish();
    batch.node = "probe".into();
    batch.instance = instance;
    batch.seq = 1;
    batch
}

/// A valid batch of more than 64 MiB: within the wire format's limits, past any sane body cap.
fn oversized_batch() -> Vec<u8> {
    let mut batch = probe_batch("/v1/probe/oversized", 10, 77);
    let filler = "x".repeat(4000);
    batch
        .strings
        .extend((0..17_000).map(|i| format!("{i}{filler}")));
    batch.encode()
}

/// Must show 5: bad batches are refused with a 4xx, store nothing, and the collector goes on.
#[test]
fn malformed_oversized_and_unauthenticated_batches_get_4xx_and_store_nothing() {
    let stack = start_stack();
    for n in 0..3 {
        assert_ok(
            &stack.send(&keyed(&format!("/v1/orders/{n}"), b"key-5", "acme")),
            "order",
        );
    }
    stack.wait_for_inventory("the three proxied calls", SHIP_TIMEOUT, |inv| {
        expect_counts(
            find(inv, "GET", "/v1/orders/{id}"),
            "GET /v1/orders/{id}",
            3,
            1,
        )
    });
    let inventory_before = stack.collector.inventory().expect("inventory");
    let consumers_before = stack.collector.consumers().expect("consumers");

    let bearer = format!("Bearer {}", stack.collector.ingest_token());
    let good = probe_batch("/v1/probe/refused", 4, 11).encode();
    let mut wrong_format = probe_batch("/v1/probe/refused", 4, 12);
    wrong_format.format = 9;
    let mut bad_index = probe_batch("/v1/probe/refused", 4, 13);
    bad_index.records[0].host = 9_999;
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"\0\0\0");
    let basic = format!("Basic {}", stack.collector.ingest_token());
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("no authorization", good.clone(), None),
        ("a wrong token", good.clone(), Some("Bearer not-the-token")),
        (
            "the token under the Basic scheme",
            good.clone(),
            Some(&basic),
        ),
        (
            "garbage bytes",
            b"\xff\xfe\xfd garbage \x00\x01".to_vec(),
            Some(&bearer),
        ),
        ("an empty body", Vec::new(), Some(&bearer)),
        (
            "a truncated batch",
            good[..good.len() / 2].to_vec(),
            Some(&bearer),
        ),
        ("trailing bytes", trailing, Some(&bearer)),
        ("format version 9", wrong_format.encode(), Some(&bearer)),
        ("an index out of range", bad_index.encode(), Some(&bearer)),
    ];
    let mut wrong = Vec::new();
    for (what, body, auth) in &cases {
        match stack.collector.post_batch(body, *auth) {
            Ok(reply) if (400..500).contains(&reply.status) => {}
            Ok(reply) => wrong.push(format!("{what}: {}", reply.describe())),
            Err(e) => wrong.push(format!("{what}: no answer: {e}")),
        }
    }
    let collector_addr = std::net::SocketAddr::from(([127, 0, 0, 1], stack.collector.port()));
    let oversized = Arc::new(oversized_batch());
    let mib = oversized.len() >> 20;
    let request = Request::new("POST", "/v1/batches")
        .header("host", "127.0.0.1")
        .header("authorization", &bearer)
        .header("content-type", plumbline_wire::CONTENT_TYPE)
        .header("content-length", oversized.len().to_string());
    match send_streaming(collector_addr, &request, oversized) {
        Ok(status) if (400..500).contains(&status) => {}
        Ok(status) => wrong.push(format!("a {mib} MiB batch: {status}")),
        Err(e) => wrong.push(format!("a {mib} MiB batch: no status line: {e}")),
    }
    assert!(
        wrong.is_empty(),
        "not answered with a 4xx:\n{}",
        wrong.join("\n")
    );

    assert_eq!(
        stack.collector.inventory().expect("inventory"),
        inventory_before
    );
    assert_eq!(
        stack.collector.consumers().expect("consumers"),
        consumers_before
    );

    let health = stack.collector.get("/healthz").expect("healthz");
    assert_eq!(health.status, 200, "collector still serving");
    let accepted = probe_batch("/v1/probe/accepted", 4, 21).encode();
    let reply = stack
        .collector
        .post_batch(&accepted, Some(&bearer))
        .expect("valid batch");
    assert!(
        (200..300).contains(&reply.status),
        "{} {}",
        reply.status,
        reply.text()
    );
    let decoded = BatchReply::decode(&reply.body).expect("a postcard batch reply");
    assert_eq!(
        (decoded.accepted, decoded.duplicate),
        (4, false),
        "{decoded:?}"
    );
    let retried = stack
        .collector
        .post_batch(&accepted, Some(&bearer))
        .expect("retry");
    let decoded = BatchReply::decode(&retried.body).expect("a postcard batch reply");
    assert_eq!(
        (decoded.accepted, decoded.duplicate),
        (0, true),
        "{decoded:?}"
    );

    for n in 3..5 {
        assert_ok(
            &stack.send(&keyed(&format!("/v1/orders/{n}"), b"key-5", "acme")),
            "order",
        );
    }
    stack.wait_for_inventory(
        "the probe batch once and two more proxied calls",
        SHIP_TIMEOUT,
        |inv| {
            expect_counts(
                find(inv, "GET", "/v1/probe/accepted"),
                "GET /v1/probe/accepted",
                4,
                1,
            )?;
            expect_counts(
                find(inv, "GET", "/v1/orders/{id}"),
                "GET /v1/orders/{id}",
                5,
                1,
            )
        },
    );
    let inventory = stack.collector.inventory().expect("inventory");
    let refused = inventory
        .iter()
        .find(|e| e.path.contains("refused") || e.path.contains("oversized"));
    assert!(refused.is_none(), "a refused batch was stored: {refused:?}");
}

/// Must show 6: with two Envoy workers, both VMs report and no record is lost or doubled.
#[test]
fn two_envoy_workers_both_report_and_totals_are_exact_under_many_connections() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 50;
    let options = StackOptions::new(env!("CARGO_BIN_EXE_demo-upstream")).concurrency(2);
    let stack = Stack::start(options);
    let listener = stack.envoy.listener();

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let key = format!("key-conn-{t}");
                let mut failures = Vec::new();
                for n in 0..PER_THREAD {
                    let path = format!("/v1/orders/{}", t * 1000 + n);
                    let request = keyed(&path, key.as_bytes(), "load");
                    match plumbline_tests::harness::send(listener, &request) {
                        Ok(r) if r.status == 200 => {}
                        Ok(r) => failures.push(format!("{path}: status {}", r.status)),
                        Err(e) => failures.push(format!("{path}: {e}")),
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "requests failed: {failures:#?}");
    let sent = THREADS * PER_THREAD;

    stack.wait_for_inventory("every request recorded once", SHIP_TIMEOUT, |inv| {
        let name = "GET /v1/orders/{id}";
        expect_counts(find(inv, "GET", "/v1/orders/{id}"), name, sent, THREADS)
    });
    let filters = plumbline_tests::harness::wait_for(
        "two filter instances with records",
        SHIP_TIMEOUT,
        Duration::from_millis(100),
        || {
            let filters = stack.collector.filters()?;
            let reporting: Vec<_> = filters.iter().filter(|f| f.records > 0).cloned().collect();
            if reporting.len() == 2 {
                return Ok(reporting);
            }
            Err(format!("{} reporting: {filters:#?}", reporting.len()))
        },
    );
    let records: u64 = filters.iter().map(|f| f.records).sum();
    assert_eq!(records, sent, "records per instance add up: {filters:#?}");
    assert_ne!(filters[0].instance, filters[1].instance);

    std::thread::sleep(Duration::from_millis(1500));
    let inventory = stack.collector.inventory().expect("inventory");
    assert_eq!(
        total_calls(&inventory),
        sent,
        "no record doubled: {inventory:#?}"
    );
    let consumers = stack.collector.consumers().expect("consumers");
    assert_eq!(consumers.len() as u64, THREADS, "{consumers:#?}");
    assert!(
        consumers.iter().all(|c| c.calls == PER_THREAD),
        "{consumers:#?}"
    );

    // Every VM (two workers and Envoy's main thread, at least) adds its memory to the gauges.
    let vms = stack.envoy.counter("plumbline.vms").expect("stats");
    let memory = stack
        .envoy
        .counter("plumbline.vm_memory_bytes")
        .expect("stats");
    assert!(vms >= 3, "{}", stack.envoy.plumbline_stats());
    assert!(
        memory >= vms * 65_536,
        "each VM has at least a page: {}",
        stack.envoy.plumbline_stats()
    );
}

/// Must show 7: inventory and consumers are stored, so a collector restart keeps them.
#[test]
fn a_collector_restart_keeps_the_inventory_and_consumers() {
    let mut stack = start_stack();
    for n in 0..4 {
        let request = keyed(&format!("/v1/orders/{}", 70 + n), b"key-restart-a", "acme");
        assert_ok(&stack.send(&request), "order");
    }
    for n in 0..3 {
        let request = keyed(
            &format!("/v1/users/{}", uuid(n)),
            b"key-restart-b",
            "globex",
        );
        assert_ok(&stack.send(&request), "user");
    }
    stack.wait_for_inventory("seven calls", SHIP_TIMEOUT, |inv| {
        expect_counts(
            find(inv, "GET", "/v1/orders/{id}"),
            "GET /v1/orders/{id}",
            4,
            1,
        )?;
        expect_counts(
            find_templated(inv, "/v1/users/"),
            "GET /v1/users/{..}",
            3,
            1,
        )
    });
    let inventory = stack.collector.inventory().expect("inventory");
    let consumers = stack.collector.consumers().expect("consumers");

    stack.collector.stop();
    stack.collector.start_again();
    let mut after = stack
        .collector
        .inventory()
        .expect("inventory after restart");
    let mut expected = inventory.clone();
    sort_endpoints(&mut after);
    sort_endpoints(&mut expected);
    assert_eq!(after, expected, "inventory after the restart");
    let mut consumers_after = stack
        .collector
        .consumers()
        .expect("consumers after restart");
    let mut consumers_expected = consumers.clone();
    consumers_after.sort_by(|a, b| a.id.cmp(&b.id));
    consumers_expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        consumers_after, consumers_expected,
        "consumers after the restart"
    );

    let request = keyed("/v1/orders/99", b"key-restart-a", "acme");
    assert_ok(&stack.send(&request), "order after the restart");
    stack.wait_for_inventory(
        "counts to go on from the stored ones",
        SHIP_TIMEOUT,
        |inv| {
            expect_counts(
                find(inv, "GET", "/v1/orders/{id}"),
                "GET /v1/orders/{id}",
                5,
                1,
            )
        },
    );
}

fn sort_endpoints(endpoints: &mut [Endpoint]) {
    endpoints.sort_by(|a, b| (&a.host, &a.method, &a.path).cmp(&(&b.host, &b.method, &b.path)));
}
