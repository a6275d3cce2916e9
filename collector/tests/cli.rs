//! The `plumbline` binary as a new user meets it: `ingest` refusing what it cannot read before
//! storing anything, where the commands go (`--data`, `PLUMBLINE_DATA`, `--server`, the config
//! file's `listen`), and the messages of the usual mistakes. Every server a test starts is
//! stopped before it ends, and every wait is bounded.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SALT: (&str, &str) = ("PLUMBLINE_SALT", "cli-salt-for-tests");
const COMBINED: &str =
    r#"10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET /users/17 HTTP/1.1" 200 512 "-" "curl/8""#;
const JSON_LINE: &str =
    r#"{"start_time":"2015-05-17T10:05:03Z","method":"GET","path":"/a","response_code":200}"#;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Writes `lines` to `name` in `dir`; answers the path as text.
fn log(dir: &TempDir, name: &str, lines: &[&str]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// A combined-format line of `client` asking for `target`.
fn request_line(client: &str, target: &str) -> String {
    format!(
        r#"{client} - - [17/May/2015:10:05:03 +0000] "GET {target} HTTP/1.1" 200 512 "-" "curl/8""#
    )
}

/// `plumbline ingest --format combined --server` of `file` to `server`.
fn ingest_to(server: &TestServer, file: &str) -> Output {
    let url = format!("http://{}", server.addr);
    let args = ["ingest", "--format", "combined", "--server", &url, file];
    plumbline(&args, &[SALT, ("PLUMBLINE_INGEST_TOKEN", TOKEN)])
}

fn calls(data: &str) -> u64 {
    let out = plumbline(&["inventory", "--data", data, "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoints = view["endpoints"].as_array().unwrap();
    endpoints.iter().map(|e| e["calls"].as_u64().unwrap()).sum()
}

#[test]
fn ingest_of_a_file_none_of_whose_lines_reads_fails_saying_the_format_may_be_wrong() {
    // Before, a JSON log read as combined exited 0 with "6 lines, 0 records, 6 bad lines".
    let dir = TempDir::new("wrong-format");
    let json = log(&dir, "envoy.log", &[JSON_LINE; 6]);
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();

    let out = plumbline(
        &["ingest", "--format", "combined", "--data", data, &json],
        &[SALT],
    );
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("none of its first 6 lines reads as --format combined"));
    assert!(message.contains("is --format right? --format envoy-json reads them"));
    assert!(message.contains("nothing was ingested"), "{message}");
    assert!(!Path::new(data).exists(), "the data directory was created");

    let binary = dir.path().join("binary.log");
    std::fs::write(&binary, (0..=255u8).cycle().take(9000).collect::<Vec<_>>()).unwrap();
    let binary = binary.to_str().unwrap();
    let out = plumbline(
        &["ingest", "--format", "combined", "--data", data, binary],
        &[SALT],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is --format right?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn ingest_from_standard_input_that_yields_no_record_fails_and_a_mostly_bad_one_warns() {
    // Before, `-` was taken for a file name, and a file of bad lines exited 0 silently.
    let dir = TempDir::new("stdin");
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();
    let args = ["ingest", "--format", "combined", "--data", data, "-"];

    let json = [JSON_LINE; 3].join("\n");
    let out = plumbline_with_stdin(&args, &[SALT], Some(&json));
    assert!(!out.status.success());
    assert!(stdout(&out).contains("(standard input): 3 lines, 0 records, 3 bad lines"));
    assert!(stderr(&out).contains("no line reads as --format combined; is --format right?"));

    let mixed = [COMBINED, JSON_LINE, JSON_LINE].join("\n");
    let out = plumbline_with_stdin(&args, &[SALT], Some(&mixed));
    assert!(out.status.success(), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("warning: (standard input): 2 of 3 lines are bad"),
        "{message}"
    );
    assert_eq!(calls(data), 1);
}

#[test]
fn ingest_checks_every_file_before_storing_any_so_a_rerun_counts_nothing_twice() {
    // Before, the readable files were stored, then a missing one failed the run: a re-run
    // counted the first files twice.
    let dir = TempDir::new("preflight");
    let good = log(&dir, "good.log", &[COMBINED, COMBINED]);
    let missing = dir.path().join("missing.log");
    let missing = missing.to_str().unwrap();
    let folder = dir.path().to_str().unwrap();
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();

    for (bad, expected) in [
        (missing, "cannot read log file"),
        (folder, "is a directory"),
        ("-", "given more than once"),
    ] {
        let mut args = vec!["ingest", "--format", "combined", "--data", data, "-", &good];
        args.push(bad);
        let out = plumbline_with_stdin(&args, &[SALT], Some(COMBINED));
        assert!(!out.status.success(), "{bad}");
        let message = stderr(&out);
        assert!(message.contains(expected), "{message}");
        assert_eq!(
            stdout(&out),
            "",
            "something was ingested before {bad} was refused"
        );
    }
    assert!(!Path::new(data).exists());

    let out = plumbline(
        &["ingest", "--format", "combined", "--data", data, &good],
        &[SALT],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(calls(data), 2);
}

#[test]
fn ingest_help_says_that_the_same_file_ingested_twice_is_counted_twice() {
    let out = plumbline(&["ingest", "--help"], &[]);
    assert!(stdout(&out).contains("ingesting the same file twice counts its requests twice"));
}

#[test]
fn an_exported_plumbline_data_never_sends_a_query_past_the_running_collector() {
    // Before, `plumbline inventory` with PLUMBLINE_DATA exported (as for `serve`) went to the
    // data directory and failed: the running collector held it.
    let dir = TempDir::new("data-var");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let held = dir.path().join("state");
    let held = held.to_str().unwrap();
    let url = format!("http://{}", server.addr);

    let env = [("PLUMBLINE_DATA", held), ("PLUMBLINE_SERVER", url.as_str())];
    let out = plumbline(&["inventory", "--json"], &env);
    assert!(out.status.success(), "{}", stderr(&out));

    let nobody = [
        ("PLUMBLINE_DATA", held),
        ("PLUMBLINE_SERVER", "http://127.0.0.1:9"),
    ];
    let out = plumbline(&["inventory"], &nobody);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("cannot reach a collector at http://127.0.0.1:9"));
    let hint = format!("PLUMBLINE_DATA is used by `serve` only: give --data {held} to read it");
    assert!(message.contains(&hint), "{message}");
    server.stop();
}

#[test]
fn without_server_a_command_reaches_the_listen_address_of_the_config_file() {
    // Before, `--config` with `listen` was ignored and the CLI asked 127.0.0.1:7070.
    let dir = TempDir::new("config-listen");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let config = dir.path().join("plumbline.toml");
    let listen = format!("listen = \"0.0.0.0:{}\"\n", server.addr.port());
    std::fs::write(&config, listen).unwrap();
    let config = config.to_str().unwrap();

    let out = plumbline(&["filters", "--config", config, "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let by_env = plumbline(&["inventory", "--json"], &[("PLUMBLINE_CONFIG", config)]);
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    server.stop();
}

#[test]
fn a_401_from_the_read_api_says_to_set_the_operator_token() {
    // Before: "answered 401: missing or wrong bearer token" and nothing on what to set.
    let dir = TempDir::new("read-401");
    let mut server = TestServer::start(dir.path(), 1 << 20, Some("op-secret"));
    let url = format!("http://{}", server.addr);

    let out = plumbline(&["inventory", "--server", &url], &[]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("answered 401"), "{message}");
    assert!(
        message.contains("set PLUMBLINE_OPERATOR_TOKEN or PLUMBLINE_OPERATOR_TOKEN_FILE"),
        "{message}"
    );
    let token = [("PLUMBLINE_OPERATOR_TOKEN", "op-secret")];
    let out = plumbline(&["inventory", "--server", &url], &token);
    assert!(out.status.success(), "{}", stderr(&out));
    server.stop();
}

#[test]
fn an_empty_key_is_refused_before_the_collector_is_asked() {
    // Before, the collector was asked first; an unreachable one hid the empty key.
    let unused = "http://127.0.0.1:9";
    let out = plumbline(&["consumers", "--key", "", "--server", unused], &[SALT]);
    assert!(
        stderr(&out).contains("plumbline: empty key: "),
        "{}",
        stderr(&out)
    );
    let args = ["consumers", "--key", "-", "--server", unused];
    let out = plumbline_with_stdin(&args, &[SALT], Some("\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("plumbline: empty key: stdin held no key"));
}

#[test]
fn data_with_an_explicit_server_is_refused_but_plumbline_server_gives_way_to_data() {
    // Before, --server silently won over --data.
    let dir = TempDir::new("conflict");
    let data = dir.path().to_str().unwrap();
    let out = plumbline(&["inventory", "--data", data, "--server", "http://x"], &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    std::fs::create_dir_all(dir.path().join("d")).unwrap();
    let d = dir.path().join("d");
    let env = [("PLUMBLINE_SERVER", "http://127.0.0.1:9")];
    let out = plumbline(&["inventory", "--data", d.to_str().unwrap()], &env);
    // The data directory was read (it holds no database yet), not the server.
    assert!(
        stderr(&out).contains("is not a Plumbline data directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "nothing written");
}

#[test]
fn a_missing_config_file_says_its_cause_once() {
    // Before: "No such file or directory (os error 2): No such file or directory (os error 2)".
    let out = plumbline(&["inventory", "--config", "no-such-config.toml"], &[]);
    let message = stderr(&out);
    assert!(message.starts_with("plumbline: cannot read config file no-such-config.toml: "));
    assert_eq!(message.matches("os error").count(), 1, "{message}");
}

#[test]
fn a_server_address_that_is_not_an_http_url_is_called_that() {
    // Before: "cannot reach a collector at not a url/v1/inventory: http: invalid uri character".
    for bad in ["not a url", "ftp://127.0.0.1:9", "127.0.0.1:9"] {
        let out = plumbline(&["inventory", "--server", bad], &[]);
        assert!(!out.status.success());
        let message = stderr(&out);
        assert!(
            message.contains("is not an http:// URL like http://127.0.0.1:7070"),
            "{bad}: {message}"
        );
    }
}

#[test]
fn every_command_refuses_a_config_file_with_a_bad_value_and_names_it() {
    // Before, only `serve` checked [detect]: `inventory --data` read a data directory with a
    // config whose window was "banana".
    let dir = TempDir::new("bad-value");
    let config = dir.path().join("plumbline.toml");
    std::fs::write(&config, "[detect]\nwindow = \"banana\"\n").unwrap();
    let config = config.to_str().unwrap();
    let data = dir.path().join("d");
    let data = data.to_str().unwrap();
    for command in ["inventory", "consumers", "alerts", "decisions"] {
        let out = plumbline(&[command, "--config", config, "--data", data], &[]);
        assert!(!out.status.success(), "{command}");
        let message = stderr(&out);
        assert!(
            message.contains("detect.window") && message.contains("banana"),
            "{command}: {message}"
        );
        assert!(
            message.starts_with(&format!("plumbline: config file {config}: ")),
            "{command}: {message}"
        );
    }
    assert!(!Path::new(data).exists(), "nothing written");
}

#[test]
fn serve_on_an_address_in_use_fails_naming_it_and_creates_no_data_directory() {
    // Before, the data directory and its database were created, then the bind failed.
    let dir = TempDir::new("in-use");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let addr = server.addr.to_string();
    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();

    let token = [("PLUMBLINE_INGEST_TOKEN", TOKEN)];
    let out = plumbline(&["serve", "--listen", &addr, "--data", fresh], &token);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains(&format!("cannot listen on {addr}: ")),
        "{message}"
    );
    assert_eq!(message.matches("os error").count(), 1, "{message}");
    assert!(!Path::new(fresh).exists(), "the data directory was created");
    server.stop();
}

#[test]
fn serve_refuses_a_token_set_both_in_its_variable_and_its_file_variable() {
    // Before, PLUMBLINE_INGEST_TOKEN silently won over PLUMBLINE_INGEST_TOKEN_FILE.
    let dir = TempDir::new("both-tokens");
    let file = log(&dir, "token", &["from-file"]);
    let data = dir.path().join("d");
    let env = [
        ("PLUMBLINE_INGEST_TOKEN", "from-var"),
        ("PLUMBLINE_INGEST_TOKEN_FILE", file.as_str()),
    ];
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ];
    let out = plumbline(&args, &env);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("both PLUMBLINE_INGEST_TOKEN and PLUMBLINE_INGEST_TOKEN_FILE are set"),
        "{message}"
    );
}

/// The `serve` binary, its log in a file, stopped (SIGTERM, then killed) when dropped.
struct Serve {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(dir: &TempDir) -> Serve {
        let log = dir.path().join("serve.log");
        let data = dir.path().join("d");
        let child = Command::new(env!("CARGO_BIN_EXE_plumbline"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env("PLUMBLINE_INGEST_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("PLUMBLINE_CONFIG")
            .env_remove("PLUMBLINE_INGEST_TOKEN_FILE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Serve { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address from the "collector listening" line, waited for up to 30 seconds.
    fn addr(&self) -> std::net::SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            let line = log.lines().find(|l| l.contains("collector listening"));
            if let Some(addr) = line.and_then(|l| l.split("addr=").nth(1)) {
                return addr.split_whitespace().next().unwrap().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "serve did not listen:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn refused_batches_are_warned_of_with_reason_and_address_once_per_interval() {
    // Before, refused batches were logged at debug only: a token mismatch left no trace.
    let dir = TempDir::new("refusal-log");
    let serve = Serve::start(&dir);
    let server = TestServer {
        addr: serve.addr(),
        stop: None,
        thread: None,
    };
    let body = batch(&[("/a", "k", 200, 0)], 1).encode();
    for _ in 0..3 {
        let (status, _, _) = post(&server, &body, Some("not-the-token"));
        assert_eq!(status, 401);
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let warnings = loop {
        let log = serve.log();
        let warnings: Vec<String> = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("batch refused"))
            .map(str::to_string)
            .collect();
        if !warnings.is_empty() || Instant::now() > deadline {
            break warnings;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0];
    assert!(warning.contains("reason=\"unauthenticated\""), "{warning}");
    assert!(warning.contains("remote=127.0.0.1:"), "{warning}");
    assert!(!warning.contains("not-the-token"), "{warning}");
}

#[test]
fn ingest_to_a_collector_refusing_the_token_fails_before_any_file_is_read() {
    // Before, the token was first tried with the first chunk of records, and a 401 only said
    // "missing or wrong bearer token".
    let dir = TempDir::new("ingest-token");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let url = format!("http://{}", server.addr);
    let good = log(&dir, "good.log", &[COMBINED]);
    let args = ["ingest", "--format", "combined", "--server", &url, &good];

    let wrong = [SALT, ("PLUMBLINE_INGEST_TOKEN", "not-the-token")];
    let out = plumbline(&args, &wrong);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "");
    let message = stderr(&out);
    assert!(
        message.contains("set PLUMBLINE_INGEST_TOKEN or PLUMBLINE_INGEST_TOKEN_FILE"),
        "{message}"
    );

    let right = [SALT, ("PLUMBLINE_INGEST_TOKEN", TOKEN)];
    let out = plumbline(&args, &right);
    assert!(out.status.success(), "{}", stderr(&out));
    let filters = get_json(&server, "/v1/filters");
    assert_eq!(filters["filters"][0]["node"], "plumbline-ingest");
    assert_eq!(filters["filters"][0]["records"], 1);
    assert_eq!(
        filters["filters"][0]["batches"], 1,
        "the check is not a batch"
    );
    server.stop();
}

#[test]
fn ingest_to_a_collector_with_a_small_body_limit_sends_smaller_batches_and_loses_nothing() {
    // Before, a chunk of 4,096 lines went as one batch whatever the collector's
    // max_body_bytes: it closed the connection and the CLI said it could not reach it.
    let dir = TempDir::new("ingest-small-limit");
    let mut server = TestServer::start(dir.path(), 16 * 1024, None);
    let lines: Vec<String> = (0..5_000)
        .map(|i| {
            request_line(
                &format!("10.0.{}.{}", i / 250, i % 250),
                &format!("/users/{i}"),
            )
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = log(&dir, "many.log", &refs);
    let out = ingest_to(&server, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    let filters = get_json(&server, "/v1/filters");
    let filter = &filters["filters"][0];
    assert_eq!(filter["records"], 5_000, "{filters}");
    assert!(filter["batches"].as_u64().unwrap() > 2, "{filters}");
    let consumers = get_json(&server, "/v1/consumers");
    let calls: u64 = consumers["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(calls, 5_000, "every line once");
    // The second chunk goes at the size that fitted the first, not halved down to it again.
    let (_, metrics) = get(&server, "/metrics", None);
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("plumbline_batches_rejected_total{reason=\"too_large\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    let halvings = (4_096f64).log2() as u64;
    assert!(refused >= 1 && refused <= halvings, "{refused} refused");
    server.stop();
}

#[test]
fn a_record_too_large_for_the_collector_alone_is_named_and_the_stored_count_said() {
    let dir = TempDir::new("ingest-one-too-large");
    let mut server = TestServer::start(dir.path(), 4 * 1024, None);
    let query: Vec<String> = (0..64).map(|i| format!("{i:0>200}=1")).collect();
    let huge = request_line("10.0.0.9", &format!("/big?{}", query.join("&")));
    let lines: Vec<&str> = vec![COMBINED; 10]
        .into_iter()
        .chain([huge.as_str()])
        .chain(vec![COMBINED; 5])
        .collect();
    let file = log(&dir, "huge.log", &lines);
    let out = ingest_to(&server, &file);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("a single record alone is"), "{message}");
    assert!(
        message.contains("raise the collector's max_body_bytes"),
        "{message}"
    );
    assert!(
        message.contains("(10 records were stored before it"),
        "{message}"
    );
    let filters = get_json(&server, "/v1/filters");
    assert_eq!(filters["filters"][0]["records"], 10, "{filters}");
    server.stop();
}

#[test]
fn ingest_to_a_collector_keeps_records_with_more_query_names_and_segments_than_it_takes() {
    // Before, a line with 70 query names made the collector refuse the whole batch (400).
    let dir = TempDir::new("ingest-many-names");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let query: Vec<String> = (0..70).map(|i| format!("p{i}=1")).collect();
    let segments: Vec<String> = (0..70).map(|i| format!("s{i}")).collect();
    let many_names = request_line("10.0.0.9", &format!("/a?{}", query.join("&")));
    let deep = request_line("10.0.0.9", &format!("/{}", segments.join("/")));
    let file = log(&dir, "names.log", &[&many_names, &deep, COMBINED]);
    let out = ingest_to(&server, &file);
    assert!(out.status.success(), "{}", stderr(&out));
    let filters = get_json(&server, "/v1/filters");
    assert_eq!(filters["filters"][0]["records"], 3, "{filters}");
    server.stop();
}

#[test]
fn a_log_dated_ahead_of_the_clock_is_called_that_not_a_wrong_format() {
    let dir = TempDir::new("ingest-ahead");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let ahead = COMBINED.replace("2015", "2099");
    let file = log(&dir, "ahead.log", &[&ahead, &ahead]);
    let out = plumbline(
        &["ingest", "--format", "combined", "--data", data, &file],
        &[SALT],
    );
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("is dated more than a day ahead of this machine's clock"),
        "{message}"
    );
    assert!(!message.contains("--format right"), "{message}");
}
