//! The collector as a user runs it: the real server on 127.0.0.1 (a free port), real HTTP,
//! a real data directory; and the `plumbline` binary for the CLI. Every server and process a
//! test starts is stopped before it ends, and every wait is bounded.

mod common;

use common::*;
use plumbline_collector::api::Server;
use plumbline_wire::{consumer_id, Batch, BatchReply, Mode, CONTENT_TYPE};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sample() -> Batch {
    batch(
        &[
            ("/v1/users/42", "k1", 200, 0),
            ("/v1/users/43", "k2", 404, 1000),
            ("POST /v1/orders", "", 201, 2000),
        ],
        1,
    )
}

fn expected_inventory() -> Value {
    json!({"endpoints": [
        {"host": "api.example.com", "method": "GET", "path": "/v1/users/{id}", "calls": 2,
         "consumers": 2, "status": {"2xx": 1, "3xx": 0, "4xx": 1, "5xx": 0},
         "first_seen": "2023-11-14T22:13:20Z", "last_seen": "2023-11-14T22:13:21Z"},
        {"host": "api.example.com", "method": "POST", "path": "/v1/orders", "calls": 1,
         "consumers": 0, "status": {"2xx": 1, "3xx": 0, "4xx": 0, "5xx": 0},
         "first_seen": "2023-11-14T22:13:22Z", "last_seen": "2023-11-14T22:13:22Z"}
    ]})
}

#[test]
fn a_valid_batch_is_acknowledged_and_shows_in_the_inventory_exactly() {
    let dir = TempDir::new("valid");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);

    let (status, body, content_type) = post(&server, &sample().encode(), Some(TOKEN));
    assert_eq!(status, 200);
    assert_eq!(content_type, CONTENT_TYPE);
    let reply = BatchReply::decode(&body).unwrap();
    assert_eq!((reply.accepted, reply.duplicate), (3, false));
    let set = reply
        .decisions
        .expect("a filter holding version 0 gets the current set");
    assert_eq!(set.version, reply.decisions_version);
    assert_eq!((set.mode, set.decisions.len()), (Mode::Monitor, 0));
    assert_eq!(get_json(&server, "/v1/inventory"), expected_inventory());

    let consumers = get_json(&server, "/v1/consumers");
    let list = consumers["consumers"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["endpoints"], 1);
    assert_eq!(list[0]["calls"], 1);
    let id = consumer_id(b"salt", b"k1").to_string();
    let k1 = list.iter().find(|c| c["id"] == id.as_str()).unwrap();
    assert_eq!(k1["label"], "partner-k1");

    let filters = get_json(&server, "/v1/filters");
    let filter = &filters["filters"][0];
    assert_eq!(filter["node"], "envoy-test");
    assert_eq!(filter["instance"], "000000000000002a");
    assert_eq!(
        (filter["records"].clone(), filter["dropped"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(filter["batches"], 1);
    server.stop();
}

#[test]
fn a_retried_batch_is_acknowledged_as_a_duplicate_and_not_counted_twice() {
    let dir = TempDir::new("retry");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    post(&server, &sample().encode(), Some(TOKEN));
    let (status, body, _) = post(&server, &sample().encode(), Some(TOKEN));
    assert_eq!(status, 200);
    let reply = BatchReply::decode(&body).unwrap();
    assert_eq!((reply.accepted, reply.duplicate), (0, true));
    assert_eq!(get_json(&server, "/v1/inventory"), expected_inventory());
    let (_, metrics) = get(&server, "/metrics", None);
    assert!(
        metrics.contains("plumbline_batches_duplicate_total 1"),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn malformed_oversized_and_unauthenticated_batches_get_4xx_and_store_nothing() {
    let dir = TempDir::new("refused");
    let mut server = TestServer::start(dir.path(), 64 * 1024, None);
    let valid = sample().encode();
    let mut bad_index = sample();
    bad_index.records[0].host = 9999;

    let cases: Vec<(&str, Vec<u8>, Option<&str>, u16)> = vec![
        (
            "garbage",
            b"\xff\xfe not postcard".to_vec(),
            Some(TOKEN),
            400,
        ),
        ("bad index", bad_index.encode(), Some(TOKEN), 400),
        ("no token", valid.clone(), None, 401),
        (
            "wrong token",
            valid.clone(),
            Some("ingest-token-for-test"),
            401,
        ),
        ("oversized", vec![0u8; 100 * 1024], Some(TOKEN), 413),
    ];
    for (name, body, token, expected) in cases {
        let (status, reply, _) = post(&server, &body, token);
        assert_eq!(status, expected, "{name}");
        let message: Value = serde_json::from_slice(&reply).unwrap();
        assert!(
            message["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }

    assert_eq!(get_json(&server, "/v1/inventory"), json!({"endpoints": []}));
    assert_eq!(get_json(&server, "/v1/consumers"), json!({"consumers": []}));
    assert_eq!(get_json(&server, "/v1/filters"), json!({"filters": []}));
    assert_eq!(get(&server, "/healthz", None), (200, "ok".to_string()));
    let (_, metrics) = get(&server, "/metrics", None);
    for line in [
        "plumbline_batches_rejected_total{reason=\"malformed\"} 2",
        "plumbline_batches_rejected_total{reason=\"unauthenticated\"} 2",
        "plumbline_batches_rejected_total{reason=\"too_large\"} 1",
        "plumbline_batches_accepted_total 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    let (status, _, _) = post(&server, &valid, Some(TOKEN));
    assert_eq!(status, 200, "still serving after the refusals");
    server.stop();
}

#[test]
fn a_batch_not_declared_as_a_batch_gets_415_naming_the_type_and_stores_nothing() {
    // Before, the content type was not looked at: any body was decoded as a batch.
    let dir = TempDir::new("content-type");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let body = sample().encode();
    for declared in [Some("application/octet-stream"), Some("text/plain"), None] {
        let mut request = agent()
            .post(server.url("/v1/batches"))
            .header("authorization", format!("Bearer {TOKEN}"));
        if let Some(value) = declared {
            request = request.header("content-type", value);
        }
        let mut response = request.send(&body[..]).unwrap();
        assert_eq!(response.status().as_u16(), 415, "{declared:?}");
        let reply: Value =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        let message = reply["error"].as_str().unwrap();
        assert!(
            message.starts_with("content type must be application/x-plumbline-batch"),
            "{message}"
        );
    }
    assert_eq!(get_json(&server, "/v1/inventory"), json!({"endpoints": []}));
    let (_, metrics) = get(&server, "/metrics", None);
    let line = "plumbline_batches_rejected_total{reason=\"content_type\"} 3";
    assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    let (status, _, _) = post(&server, &body, Some(TOKEN));
    assert_eq!(status, 200, "the declared type is accepted");
    server.stop();
}

#[test]
fn a_restart_keeps_inventory_consumers_filters_and_the_retry_window() {
    let dir = TempDir::new("restart");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    post(&server, &sample().encode(), Some(TOKEN));
    let views = ["/v1/inventory", "/v1/consumers", "/v1/filters"];
    let before: Vec<Value> = views.iter().map(|v| get_json(&server, v)).collect();
    server.stop();

    let mut again = TestServer::start(dir.path(), 1 << 20, None);
    let after: Vec<Value> = views.iter().map(|v| get_json(&again, v)).collect();
    assert_eq!(after, before);
    let (_, body, _) = post(&again, &sample().encode(), Some(TOKEN));
    assert!(BatchReply::decode(&body).unwrap().duplicate);
    again.stop();
}

#[test]
fn a_second_collector_is_refused_a_data_directory_in_use() {
    let dir = TempDir::new("second");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let config = config(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(Server::bind(config));
    let message = refused.err().expect("second bind must fail").to_string();
    assert!(
        message.contains("is in use by another plumbline process"),
        "{message}"
    );
    server.stop();
}

#[test]
fn an_unknown_path_or_method_gets_a_json_error_naming_it() {
    // Before, the router answered 404 and 405 with an empty body.
    let dir = TempDir::new("unknown");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let (status, body) = get(&server, "/v1/nothing", None);
    assert_eq!(status, 404, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "no API path GET /v1/nothing", "{body}");
    let (status, body) = get(&server, "/v1/batches", None);
    assert_eq!(status, 405, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "/v1/batches does not take GET", "{body}");
    assert_eq!(get(&server, "/healthz", None).0, 200);
    server.stop();
}

#[test]
fn with_an_operator_token_the_read_api_requires_it() {
    let dir = TempDir::new("operator");
    let mut server = TestServer::start(dir.path(), 1 << 20, Some("op-secret"));
    assert_eq!(get(&server, "/v1/inventory", None).0, 401);
    assert_eq!(get(&server, "/v1/inventory", Some("wrong")).0, 401);
    assert_eq!(get(&server, "/v1/inventory", Some("op-secret")).0, 200);
    assert_eq!(get(&server, "/healthz", None).0, 200);
    server.stop();
}

#[test]
fn the_cli_reads_a_running_collector_and_is_refused_its_data_directory() {
    let dir = TempDir::new("cli-server");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    post(&server, &sample().encode(), Some(TOKEN));
    let url = format!("http://{}", server.addr);

    let out = plumbline(&["inventory", "--server", &url, "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, expected_inventory());

    let table = plumbline(&["inventory", "--server", &url], &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("METHOD"), "{text}");
    assert!(text.contains("/v1/users/{id}"), "{text}");

    let data = dir.path().join("state");
    let refused = plumbline(&["inventory", "--data", data.to_str().unwrap()], &[]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("is in use by a running collector"),
        "{message}"
    );
    assert!(message.contains("--server URL"), "{message}");
    server.stop();
}

#[test]
fn ingesting_a_log_offline_then_reading_the_inventory_offline_works() {
    let dir = TempDir::new("cli-offline");
    let log = dir.path().join("access.log");
    let lines = [
        r#"10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET /users/17/orders?page=2 HTTP/1.1" 200 512 "-" "curl/8""#,
        r#"10.0.0.2 - - [17/May/2015:10:05:04 +0000] "GET /users/18/orders HTTP/1.1" 500 12 "-" "curl/8""#,
        "this line is not a log line",
        r#"10.0.0.1 - - [17/May/2015:10:06:00 +0000] "POST /users HTTP/1.1" 201 40 "-" "curl/8""#,
    ];
    std::fs::write(&log, lines.join("\n")).unwrap();
    let data = dir.path().join("d");
    let (data, log) = (data.to_str().unwrap(), log.to_str().unwrap());
    let salt = [("PLUMBLINE_SALT", "log-salt-for-tests")];

    let out = plumbline(
        &["ingest", "--format", "combined", "--data", data, log],
        &salt,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("4 lines, 3 records, 1 bad lines"),
        "{summary}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":3: "),
        "bad line number"
    );

    let out = plumbline(&["inventory", "--data", data, "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inventory: Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoints = inventory["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2, "{inventory}");
    assert_eq!(endpoints[0]["path"], "/users/{id}/orders");
    assert_eq!(endpoints[0]["calls"], 2);
    assert_eq!(endpoints[0]["consumers"], 2);
    assert_eq!(endpoints[0]["status"]["5xx"], 1);
    assert_eq!(endpoints[0]["first_seen"], "2015-05-17T10:05:03Z");

    let out = plumbline(
        &["consumers", "--data", data, "--key", "10.0.0.1", "--json"],
        &salt,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consumers: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(consumers["consumers"].as_array().unwrap().len(), 1);
    assert_eq!(consumers["consumers"][0]["label"], "10.0.0.1");
    assert_eq!(consumers["consumers"][0]["calls"], 2);
    assert_eq!(consumers["consumers"][0]["endpoints"], 2);

    // An unknown key: the message alone, not an empty table before it.
    let out = plumbline(&["consumers", "--data", data, "--key", "10.9.9.9"], &salt);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no consumer has the id"));
}

/// `plumbline serve` on a free port of 127.0.0.1 with its log on a pipe, killed when dropped.
fn spawn_serve(data: &str) -> Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_plumbline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data", data])
        .env("PLUMBLINE_INGEST_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .env_remove("PLUMBLINE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Reaped(child)
}

/// The address of a "collector listening" log line.
fn listening_in(line: &str) -> Option<&str> {
    let rest = line
        .split("addr=")
        .nth(1)
        .filter(|_| line.contains("listening"))?;
    rest.split_whitespace().next()
}

/// Reads the child's stderr until the "collector listening" line; answers its address.
fn listening_addr(stderr: std::process::ChildStderr) -> SocketAddr {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = listening_in(&line) {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve did not listen");
    addr.parse().expect("listening address")
}

/// A child process killed when dropped, so a failing test leaves nothing running.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_serve_binary_stops_on_sigterm_with_its_state_saved_and_its_directory_released() {
    let dir = TempDir::new("sigterm");
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();
    let mut child = spawn_serve(data);
    let addr = listening_addr(child.0.stderr.take().unwrap());
    let server = TestServer {
        addr,
        stop: None,
        thread: None,
    };
    let (status, _, _) = post(&server, &sample().encode(), Some(TOKEN));
    assert_eq!(status, 200);

    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "serve exited with {exit}");

    let out = plumbline(&["inventory", "--data", data, "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inventory: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inventory, expected_inventory());
}

#[test]
fn serve_keeps_serving_when_its_log_pipe_is_closed() {
    // Before, `plumbline serve ... 2>&1 | head -1` died (exit 101) on its next log line:
    // the logger reported the broken pipe on stderr, which panicked.
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("closed-log");
    let data = dir.path().join("d");
    let mut child = spawn_serve(data.to_str().unwrap());
    let addr = {
        let mut log = BufReader::new(child.0.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                log.read_line(&mut line).unwrap() > 0,
                "serve did not listen"
            );
            if let Some(addr) = listening_in(&line) {
                break addr.parse::<SocketAddr>().unwrap();
            }
        }
        // The reading end is dropped here: every later log line meets a closed pipe.
    };
    let server = TestServer {
        addr,
        stop: None,
        thread: None,
    };
    for _ in 0..3 {
        let (status, _, _) = post(&server, b"not a batch", Some(TOKEN));
        assert_eq!(status, 400, "each refusal is logged, and answered");
    }
    let (status, _, _) = post(&server, &sample().encode(), Some(TOKEN));
    assert_eq!(status, 200);
    assert!(child.0.try_wait().unwrap().is_none(), "serve exited");
}
