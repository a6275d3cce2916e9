//! Decisions as operators and filters meet them: the real server on a free port, real HTTP,
//! a real data directory, and the `plumbline` binary. Every server and process a test starts
//! is stopped before it ends, and every wait is bounded.

mod common;

use common::*;
use plumbline_collector::config::secret::Secret;
use plumbline_collector::decide::policy::{Policy, PolicyConfig};
use plumbline_collector::decide::{NewDecision, BY_OPERATOR};
use plumbline_collector::pipeline::Settings;
use plumbline_collector::store::persisted::Persisted;
use plumbline_wire::{
    consumer_id, Action, Batch, BatchBuilder, BatchReply, ConsumerId, Mode, Subject,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const OPERATOR: &str = "operator-token-for-tests";
const SALT: &str = "decisions-salt-for-tests";

/// A consumer id as the API writes it.
fn consumer(n: u8) -> String {
    ConsumerId([n; 16]).to_string()
}

/// Status and JSON body of a request with the operator token (or `token`).
fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let agent = agent();
    let url = server.url(path);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut response = match (method, body) {
        ("GET", _) => with_auth(agent.get(&url), &auth).call(),
        ("DELETE", _) => with_auth(agent.delete(&url), &auth).call(),
        (_, Some(body)) => with_auth(agent.post(&url), &auth)
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes()),
        (_, None) => with_auth(agent.post(&url), &auth).send(&b""[..]),
    }
    .expect("request failed");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn with_auth<B>(
    request: ureq::RequestBuilder<B>,
    auth: &Option<String>,
) -> ureq::RequestBuilder<B> {
    match auth {
        Some(value) => request.header("authorization", value),
        None => request,
    }
}

fn operator(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    send(server, method, path, body, Some(OPERATOR))
}

fn block_body(subject: Value, ttl: &str) -> Value {
    json!({"subject": subject, "action": "block", "ttl": ttl, "reason": "abuse seen in tests"})
}

/// A server with the operator token, the salt and `policy`.
fn start(dir: &TempDir, policy: &str) -> TestServer {
    let mut config = config(dir.path());
    config.operator_token = Some(Secret::new(OPERATOR));
    config.salt = Some(Secret::new(SALT));
    let policy: PolicyConfig = toml::from_str(policy).unwrap();
    config.policy = Policy::from_config(&policy, config.settings.decisions.max_ttl_ms).unwrap();
    TestServer::start_with(config)
}

/// A batch with no records: a filter asking for decisions, holding `version`.
fn poll(version: u64, seq: u64) -> Batch {
    let mut batch = BatchBuilder::new(BASE_MS).finish();
    batch.node = "envoy-quiet".into();
    batch.instance = 7;
    batch.seq = seq;
    batch.decisions_version = version;
    batch
}

fn reply_to(server: &TestServer, batch: &Batch) -> BatchReply {
    let (status, body, _) = post(server, &batch.encode(), Some(TOKEN));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    BatchReply::decode(&body).unwrap()
}

fn decisions(server: &TestServer) -> Value {
    let (status, body) = operator(server, "GET", "/v1/decisions", None);
    assert_eq!(status, 200, "{body}");
    body
}

fn metric(server: &TestServer, name: &str) -> u64 {
    let (_, text) = get(server, "/metrics", None);
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"));
    line[name.len()..].trim().parse().unwrap()
}

/// Waits up to `limit` for `check`, polling every 50 ms.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn without_a_configured_operator_token_writes_are_refused_saying_how_to_configure_one() {
    let dir = TempDir::new("no-operator");
    let mut server = TestServer::start(dir.path(), 1 << 20, None);
    let body = block_body(json!({"consumer": consumer(1)}), "1h");
    let (status, reply) = send(
        &server,
        "POST",
        "/v1/decisions",
        Some(body),
        Some("anything"),
    );
    assert_eq!(status, 403);
    let message = reply["error"].as_str().unwrap();
    assert!(message.contains("PLUMBLINE_OPERATOR_TOKEN"), "{message}");
    let (status, _) = send(&server, "DELETE", "/v1/decisions/1", None, None);
    assert_eq!(status, 403);
    assert_eq!(get_json(&server, "/v1/decisions")["decisions"], json!([]));
    server.stop();
}

#[test]
fn writes_with_a_missing_or_wrong_token_get_401_and_change_nothing() {
    let dir = TempDir::new("wrong-token");
    let mut server = start(&dir, "");
    let body = block_body(json!({"consumer": consumer(1)}), "1h");
    for token in [None, Some("not-the-token")] {
        let (status, _) = send(&server, "POST", "/v1/decisions", Some(body.clone()), token);
        assert_eq!(status, 401);
    }
    assert_eq!(
        get(&server, "/v1/decisions", None).0,
        401,
        "reads need it too"
    );
    assert_eq!(decisions(&server)["decisions"], json!([]));
    server.stop();
}

#[test]
fn a_posted_block_is_listed_audited_and_removed_by_id() {
    let dir = TempDir::new("lifecycle");
    let mut server = start(&dir, "");
    let before = decisions(&server)["version"].as_u64().unwrap();

    let body = block_body(json!({"consumer": consumer(1)}), "1h");
    let (status, made) = operator(&server, "POST", "/v1/decisions", Some(body));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["subject"], json!({"consumer": consumer(1)}));
    assert_eq!(
        (made["action"].clone(), made["status"].clone()),
        (json!("block"), json!(403))
    );
    assert_eq!(made["created_by"], "operator");
    assert_eq!(made["reason"], "abuse seen in tests");
    assert!(made["expires_at"].as_str().unwrap().ends_with('Z'));

    let listed = decisions(&server);
    assert_eq!(listed["version"].as_u64().unwrap(), before + 1);
    assert_eq!(listed["mode"], "monitor");
    assert_eq!(listed["decisions"], json!([made.clone()]));

    let id = made["id"].as_u64().unwrap();
    let (status, removed) = operator(&server, "DELETE", &format!("/v1/decisions/{id}"), None);
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["removed"][0]["id"], id);
    assert_eq!(removed["version"].as_u64().unwrap(), before + 2);
    let (status, again) = operator(&server, "DELETE", &format!("/v1/decisions/{id}"), None);
    assert_eq!(status, 404);
    assert_eq!(again["error"], format!("no decision has id {id}"));

    let (_, audit) = operator(&server, "GET", "/v1/audit", None);
    let entries = audit["entries"].as_array().unwrap();
    let summary: Vec<(String, String, u64)> = entries
        .iter()
        .map(|e| {
            let who = e["who"].as_str().unwrap().to_string();
            let action = e["action"].as_str().unwrap().to_string();
            (who, action, e["decision"]["id"].as_u64().unwrap())
        })
        .collect();
    let expected = [("operator", "remove", id), ("operator", "add", id)]
        .map(|(w, a, i)| (w.to_string(), a.to_string(), i));
    assert_eq!(summary, expected, "newest first");
    assert!(entries[0]["at"].as_str().unwrap().ends_with('Z'));
    server.stop();
}

#[test]
fn throttles_and_address_blocks_are_made_and_removed_by_subject() {
    let dir = TempDir::new("subjects");
    let mut server = start(&dir, "");
    let throttle = json!({"subject": {"address": "10.0.0.0/8"}, "action": "throttle",
                          "rate": "600/m", "ttl": "30m", "reason": "scraping"});
    let (status, made) = operator(&server, "POST", "/v1/decisions", Some(throttle));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["subject"], json!({"address": "10.0.0.0/8"}));
    assert_eq!(
        (made["status"].clone(), made["rate"].clone()),
        (json!(429), json!("10/s"))
    );
    assert_eq!(made["burst"], 10);

    let block = json!({"subject": {"address": "203.0.113.7"}, "action": "block", "status": 451,
                       "ttl": "90s", "reason": "legal"});
    let (status, made) = operator(&server, "POST", "/v1/decisions", Some(block));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["status"], 451);

    let by_subject = json!({"subject": {"address": "10.0.0.0/8"}});
    let (status, removed) = operator(&server, "POST", "/v1/decisions/remove", Some(by_subject));
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["removed"][0]["action"], "throttle");
    let left = decisions(&server)["decisions"].clone();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["subject"], json!({"address": "203.0.113.7"}));
    let missing = json!({"subject": {"address": "192.0.2.0/24"}});
    let (status, reply) = operator(&server, "POST", "/v1/decisions/remove", Some(missing));
    assert_eq!(status, 404);
    assert_eq!(
        reply["error"],
        "no decision applies to address 192.0.2.0/24"
    );
    server.stop();
}

#[test]
fn a_throttle_slower_than_one_a_second_reaches_filters_as_requests_an_hour() {
    let dir = TempDir::new("slow-throttle");
    let mut server = start(&dir, "");
    let throttle = json!({"subject": {"consumer": consumer(3)}, "action": "throttle",
                          "rate": "30/m", "ttl": "1h", "reason": "quota"});
    let (status, made) = operator(&server, "POST", "/v1/decisions", Some(throttle));
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["rate"].clone(), made["burst"].clone()),
        (json!("30/m"), json!(1))
    );
    let hourly = json!({"subject": {"consumer": consumer(4)}, "action": "throttle",
                        "rate": "100/h", "ttl": "1h", "reason": "quota"});
    let (status, made) = operator(&server, "POST", "/v1/decisions", Some(hourly));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["rate"], "100/h");

    let reply = reply_to(&server, &poll(0, 1));
    let set = reply.decisions.expect("a filter holding no set gets it");
    let actions: Vec<Action> = set.decisions.iter().map(|d| d.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Throttle {
                per_hour: 1_800,
                burst: 1
            },
            Action::Throttle {
                per_hour: 100,
                burst: 1
            }
        ]
    );
    server.stop();
}

#[test]
fn a_new_decision_on_a_subject_replaces_the_one_it_had() {
    let dir = TempDir::new("replace");
    let mut server = start(&dir, "");
    let first = block_body(json!({"consumer": consumer(1)}), "1h");
    let (_, a) = operator(&server, "POST", "/v1/decisions", Some(first));
    let second = block_body(json!({"consumer": consumer(1)}), "2h");
    let (_, mut b) = operator(&server, "POST", "/v1/decisions", Some(second));
    assert_eq!(
        b["replaced"], a,
        "the answer names the decision it replaced"
    );
    assert!(a.get("replaced").is_none(), "{a}");
    b.as_object_mut().unwrap().remove("replaced");
    let listed = decisions(&server)["decisions"].clone();
    assert_eq!(listed, json!([b.clone()]));
    let (_, audit) = operator(&server, "GET", "/v1/audit?limit=2", None);
    let newest = &audit["entries"];
    assert_eq!(newest[0]["action"], "add");
    assert_eq!(newest[1]["action"], "remove");
    assert_eq!(newest[1]["decision"]["id"], a["id"]);
    assert_eq!(
        newest[1]["detail"],
        format!("replaced by decision {}", b["id"])
    );
    server.stop();
}

#[test]
fn a_block_by_raw_key_keeps_only_the_consumer_id_and_the_key_is_nowhere_to_be_found() {
    let dir = TempDir::new("raw-key");
    let mut server = start(&dir, "");
    let raw = "sk_live_a-raw-partner-key-123";
    let body = block_body(json!({"key": raw}), "1h");
    let (status, made) = operator(&server, "POST", "/v1/decisions", Some(body));
    assert_eq!(status, 201, "{made}");
    let id = consumer_id(SALT.as_bytes(), raw.as_bytes()).to_string();
    assert_eq!(made["subject"], json!({"consumer": id}));

    let (_, audit) = operator(&server, "GET", "/v1/audit", None);
    let outputs = [decisions(&server).to_string(), audit.to_string()];
    server.stop();

    let mut files = Vec::new();
    for name in ["plumbline.db", "plumbline.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join("state").join(name)) {
            files.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    for text in outputs.iter().chain(&files) {
        assert!(!text.contains(raw), "the raw key was kept");
    }
    assert!(
        files.iter().any(|f| f.contains(&id)),
        "the consumer id is stored"
    );
}

#[test]
fn an_allowlisted_consumer_cannot_be_blocked_or_throttled() {
    let dir = TempDir::new("allowlist");
    let policy = format!("allowlist = [\"{}\"]", consumer(9));
    let mut server = start(&dir, &policy);
    let block = block_body(json!({"consumer": consumer(9)}), "1h");
    let (status, reply) = operator(&server, "POST", "/v1/decisions", Some(block));
    assert_eq!(status, 409);
    let message = reply["error"].as_str().unwrap();
    assert!(
        message.contains("allowlist") && message.contains(&consumer(9)),
        "{message}"
    );
    let throttle = json!({"subject": {"consumer": consumer(9)}, "action": "throttle",
                          "rate": "1/s", "ttl": "1h", "reason": "x"});
    assert_eq!(
        operator(&server, "POST", "/v1/decisions", Some(throttle)).0,
        409
    );
    assert_eq!(decisions(&server)["decisions"], json!([]));
    server.stop();
}

#[test]
fn past_max_decisions_a_new_subject_gets_409_and_is_counted() {
    let dir = TempDir::new("full");
    let mut config = config(dir.path());
    config.operator_token = Some(Secret::new(OPERATOR));
    config.settings.decisions.max_decisions = 1;
    let mut server = TestServer::start_with(config);
    let first = block_body(json!({"consumer": consumer(1)}), "1h");
    assert_eq!(
        operator(&server, "POST", "/v1/decisions", Some(first)).0,
        201
    );
    let second = block_body(json!({"consumer": consumer(2)}), "1h");
    let (status, reply) = operator(&server, "POST", "/v1/decisions", Some(second));
    assert_eq!(status, 409);
    let message = reply["error"].as_str().unwrap();
    assert!(message.contains("decisions.max_decisions"), "{message}");
    assert_eq!(metric(&server, "plumbline_decisions_refused_full_total"), 1);
    server.stop();
}

#[test]
fn bad_decision_requests_get_400_naming_what_was_wrong() {
    let dir = TempDir::new("bad-requests");
    let mut server = start(&dir, "");
    let c = json!({"consumer": consumer(1)});
    let cases = [
        (block_body(c.clone(), "5x"), "ttl \"5x\""),
        (
            block_body(c.clone(), "90d"),
            "longer than the longest allowed",
        ),
        (
            block_body(json!({"address": "10.0.0.0/33"}), "1h"),
            "10.0.0.0/33",
        ),
        (
            block_body(json!({"address": "10.1.2.3/8"}), "1h"),
            "did you mean 10.0.0.0/8",
        ),
        (
            block_body(json!({"consumer": "xyz"}), "1h"),
            "\"xyz\" is not 32 hexadecimal",
        ),
        (
            json!({"subject": c, "action": "throttle", "rate": "0/m", "ttl": "1h", "reason": "x"}),
            "rate \"0/m\" is zero",
        ),
        (
            json!({"subject": c, "action": "block", "status": 200, "ttl": "1h", "reason": "x"}),
            "block status 200",
        ),
        (
            json!({"subject": c, "action": "block", "ttl": "1h", "reason": "x", "colour": 1}),
            "unknown field `colour`",
        ),
        (
            json!({"subject": c, "action": "block", "ttl": "1h", "reason": ""}),
            "needs a reason",
        ),
    ];
    for (body, expected) in cases {
        let (status, reply) = operator(&server, "POST", "/v1/decisions", Some(body.clone()));
        assert_eq!(status, 400, "{body}: {reply}");
        let message = reply["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
    let (status, _) = operator(&server, "DELETE", "/v1/decisions/abc", None);
    assert_eq!(status, 400);
    assert_eq!(decisions(&server)["decisions"], json!([]));
    server.stop();
}

#[test]
fn a_batch_reply_carries_the_set_only_when_the_filter_holds_another_version() {
    let dir = TempDir::new("propagation");
    let mut server = start(&dir, "mode = \"enforce\"");

    let first = reply_to(&server, &poll(0, 1));
    let version = first.decisions_version;
    let set = first.decisions.expect("version 0 is not the collector's");
    assert_eq!(
        (set.version, set.mode, set.decisions.len()),
        (version, Mode::Enforce, 0)
    );
    let current = reply_to(&server, &poll(version, 2));
    assert_eq!(
        (current.decisions_version, current.decisions),
        (version, None)
    );

    let body = block_body(json!({"consumer": consumer(1)}), "1h");
    let (_, made) = operator(&server, "POST", "/v1/decisions", Some(body));
    let mut traffic = batch(&[("/v1/users/1", "k1", 200, 0)], 3);
    traffic.decisions_version = version;
    let reply = reply_to(&server, &traffic);
    assert_eq!((reply.accepted, reply.decisions_version), (1, version + 1));
    let set = reply.decisions.expect("the filter holds an older version");
    assert_eq!(set.version, version + 1);
    let decision = set.decisions[0];
    assert_eq!(decision.id, made["id"].as_u64().unwrap());
    assert_eq!(decision.subject, Subject::Consumer(ConsumerId([1; 16])));
    assert_eq!(decision.action, Action::Block { status: 403 });
    assert_eq!(reply_to(&server, &poll(version + 1, 4)).decisions, None);
    server.stop();
}

#[test]
fn polls_are_answered_but_count_as_no_batch_records_or_filter() {
    let dir = TempDir::new("polls");
    let mut server = start(&dir, "");
    for seq in 0..3 {
        let reply = reply_to(&server, &poll(0, seq));
        assert_eq!((reply.accepted, reply.duplicate), (0, false));
    }
    assert_eq!(
        get_json_with(&server, "/v1/filters"),
        json!({"filters": []})
    );
    assert_eq!(metric(&server, "plumbline_decision_polls_total"), 3);
    assert_eq!(metric(&server, "plumbline_decision_sets_sent_total"), 3);
    assert_eq!(metric(&server, "plumbline_batches_accepted_total"), 0);
    assert_eq!(metric(&server, "plumbline_records_ingested_total"), 0);
    server.stop();
}

fn get_json_with(server: &TestServer, path: &str) -> Value {
    let (status, body) = operator(server, "GET", path, None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_restart_keeps_decisions_their_version_and_the_mode() {
    let dir = TempDir::new("restart");
    let mut server = start(&dir, "mode = \"enforce\"");
    let body = block_body(json!({"consumer": consumer(1)}), "1h");
    operator(&server, "POST", "/v1/decisions", Some(body));
    let before = decisions(&server);
    server.stop();

    let mut again = start(&dir, "mode = \"enforce\"");
    assert_eq!(decisions(&again), before);
    let version = before["version"].as_u64().unwrap();
    assert_eq!(reply_to(&again, &poll(version, 1)).decisions, None);
    again.stop();

    let mut monitor = start(&dir, "");
    let after = decisions(&monitor);
    assert_eq!(after["mode"], "monitor");
    assert_eq!(
        after["version"].as_u64().unwrap(),
        version + 1,
        "a mode change bumps"
    );
    let (_, audit) = operator(&monitor, "GET", "/v1/audit?limit=1", None);
    assert_eq!(audit["entries"][0]["who"], "config");
    assert_eq!(audit["entries"][0]["detail"], "enforce -> monitor");
    monitor.stop();
}

#[test]
fn an_expired_decision_is_swept_on_the_timer_and_the_version_bumps() {
    let dir = TempDir::new("expiry");
    let mut server = start(&dir, "");
    let body = block_body(json!({"consumer": consumer(1)}), "1s");
    let (status, _) = operator(&server, "POST", "/v1/decisions", Some(body));
    assert_eq!(status, 201);
    let version = metric(&server, "plumbline_decisions_version");
    assert_eq!(
        metric(&server, "plumbline_decisions_active{action=\"block\"}"),
        1
    );

    let swept = eventually(Duration::from_secs(10), || {
        metric(&server, "plumbline_decisions_active{action=\"block\"}") == 0
    });
    assert!(swept, "the sweep timer did not remove the expired decision");
    assert_eq!(metric(&server, "plumbline_decisions_version"), version + 1);
    let (_, audit) = operator(&server, "GET", "/v1/audit?limit=1", None);
    assert_eq!(audit["entries"][0]["action"], "expire");
    assert_eq!(audit["entries"][0]["who"], "expiry");
    server.stop();
}

#[test]
fn a_reply_carrying_ten_thousand_decisions_stays_small_and_quick() {
    let dir = TempDir::new("ten-thousand");
    let data = dir.path().join("state");
    let mut persisted = Persisted::open(&data, true, Settings::default()).unwrap();
    let now = plumbline_collector::api::now_ms();
    for i in 0..10_000u32 {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&i.to_be_bytes());
        let new = NewDecision {
            subject: Subject::Consumer(ConsumerId(id)),
            action: Action::Block { status: 403 },
            ttl_ms: 3_600_000,
            reason: "load".into(),
            created_by: BY_OPERATOR.into(),
        };
        persisted.add_decision(new, BY_OPERATOR, now).unwrap();
    }
    persisted.close().unwrap();
    let mut server = start(&dir, "");

    let started = Instant::now();
    let (_, first, _) = post(&server, &poll(0, 1).encode(), Some(TOKEN));
    let first_time = started.elapsed();
    let started = Instant::now();
    let (_, second, _) = post(&server, &poll(0, 2).encode(), Some(TOKEN));
    let second_time = started.elapsed();
    let reply = BatchReply::decode(&second).unwrap();
    let set = reply.decisions.unwrap();
    assert_eq!(set.decisions.len(), 10_000);
    assert_eq!(first, second, "the same version gives the same bytes");
    eprintln!(
        "10000 decisions: reply {} bytes; first reply {first_time:?}, second {second_time:?}",
        second.len()
    );
    assert!(second.len() < 400_000, "reply of {} bytes", second.len());
    assert!(
        second_time < Duration::from_secs(2),
        "reply took {second_time:?}"
    );
    server.stop();
}

#[test]
fn the_cli_blocks_throttles_lists_unblocks_and_shows_the_audit_log() {
    let dir = TempDir::new("cli");
    let mut server = start(&dir, "");
    let url = format!("http://{}", server.addr);
    let env = [("PLUMBLINE_OPERATOR_TOKEN", OPERATOR)];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &url]);
        let out = plumbline(&all, &env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let c1 = consumer(1);
    let line = run(&[
        "block",
        "--consumer",
        &c1,
        "--ttl",
        "1h",
        "--reason",
        "enumeration",
    ]);
    assert!(
        line.starts_with("decision ") && line.contains(&format!("block consumer {c1} with 403")),
        "{line}"
    );
    let made: Value = serde_json::from_str(&run(&[
        "throttle",
        "--address",
        "10.0.0.0/8",
        "--rate",
        "600/m",
        "--ttl",
        "30m",
        "--reason",
        "scraping",
        "--json",
    ]))
    .unwrap();
    assert_eq!(made["rate"], "10/s");
    let raw = "cli-raw-key-42";
    let out = plumbline_with_stdin(
        &[
            "block", "--key", "-", "--ttl", "1h", "--reason", "leaked", "--server", &url,
        ],
        &env,
        Some(&format!("{raw}\n")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let id = consumer_id(SALT.as_bytes(), raw.as_bytes()).to_string();
    assert!(printed.contains(&id) && !printed.contains(raw), "{printed}");

    let listed: Value = serde_json::from_str(&run(&["decisions", "--json"])).unwrap();
    assert_eq!(listed["decisions"].as_array().unwrap().len(), 3);
    let table = run(&["decisions"]);
    assert!(table.contains("mode monitor, 3 decisions"), "{table}");
    assert!(table.contains("address 10.0.0.0/8"), "{table}");

    run(&["unblock", "--address", "10.0.0.0/8"]);
    run(&["unblock", "--consumer", &c1]);
    let out = plumbline_with_stdin(
        &["unblock", "--key", "-", "--server", &url],
        &env,
        Some(raw),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_str(&run(&["decisions", "--json"])).unwrap();
    assert_eq!(listed["decisions"], json!([]));

    let audit: Value = serde_json::from_str(&run(&["audit", "--json"])).unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["remove", "remove", "remove", "add", "add", "add"]);
    assert!(run(&["audit"]).starts_with("SEQ"));
    server.stop();
}

/// Environment variables for a command.
type Env<'a> = [(&'a str, &'a str)];

#[test]
fn the_cli_refuses_bad_values_a_missing_token_and_an_unreachable_server_clearly() {
    let env = [("PLUMBLINE_OPERATOR_TOKEN", OPERATOR)];
    let c1 = consumer(1);
    let unused = "http://127.0.0.1:9";
    let cases: Vec<(Vec<&str>, &Env, &str)> = vec![
        (
            vec!["block", "--consumer", &c1, "--ttl", "5x", "--reason", "r"],
            &env,
            "ttl \"5x\"",
        ),
        (
            vec![
                "throttle",
                "--consumer",
                &c1,
                "--rate",
                "fast",
                "--ttl",
                "1h",
                "--reason",
                "r",
            ],
            &env,
            "rate \"fast\"",
        ),
        (
            vec![
                "block",
                "--address",
                "10.0.0.0/40",
                "--ttl",
                "1h",
                "--reason",
                "r",
            ],
            &env,
            "10.0.0.0/40",
        ),
        (
            vec!["block", "--consumer", &c1, "--ttl", "1h", "--reason", "r"],
            &[],
            "no operator token configured: set PLUMBLINE_OPERATOR_TOKEN",
        ),
        (
            vec!["block", "--consumer", &c1, "--ttl", "1h", "--reason", "r"],
            &env,
            "cannot reach a collector at http://127.0.0.1:9/v1/decisions",
        ),
        (
            vec![
                "block",
                "--consumer",
                &c1,
                "--address",
                "10.0.0.1",
                "--ttl",
                "1h",
                "--reason",
                "r",
            ],
            &env,
            "cannot be used with",
        ),
    ];
    for (mut args, env, expected) in cases {
        args.extend(["--server", unused]);
        let out = plumbline(&args, env);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
}
