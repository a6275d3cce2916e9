//! Alerts as operators meet them: the real server on a free port fed batches with recorded
//! timestamps (partners learning, then one walking order ids), its alerts over HTTP, the
//! policy's decision, acknowledgement, a restart, the JSON-lines file and the CLI. Windows
//! close on the records' times only (`detect.wall_clock` off), so every run is the same.

mod common;

use common::*;
use plumbline_collector::config::secret::Secret;
use plumbline_collector::decide::policy::{Policy, PolicyConfig};
use plumbline_collector::detect::config::DetectSettings;
use plumbline_wire::{consumer_id, Batch, BatchBuilder, Method, Record};
use serde_json::Value;

const OPERATOR: &str = "operator-token-for-alerts";
/// A minute boundary, so one-minute windows start on it.
const T0: u64 = 1_700_000_040_000;
const MINUTE: u64 = 60_000;
const PARTNERS: usize = 6;

fn key(partner: usize) -> String {
    format!("alerts-key-{partner}")
}

fn consumer(partner: usize) -> String {
    consumer_id(b"salt", key(partner).as_bytes()).to_string()
}

/// Minute `m`: six partners each read 20 of their usual orders; `walker`, when given, also
/// walks 400 order ids from `from`.
fn minute(m: u64, walker: Option<(usize, u64)>) -> Batch {
    let start = T0 + m * MINUTE;
    let mut b = BatchBuilder::new(start);
    let add = |b: &mut BatchBuilder, partner: usize, at: u64, order: u64| {
        let (path, flags) = b.path(&format!("/v1/orders/{order}"));
        let id = consumer_id(b"salt", key(partner).as_bytes());
        let record = Record {
            offset_ms: b.offset_ms(at),
            method: Method::Get,
            host: b.intern("api.example.com"),
            path,
            query: vec![],
            status: 200,
            request_bytes: 0,
            response_bytes: 400,
            duration_us: 900,
            consumer: Some(b.consumer(id)),
            label: Some(b.intern(&format!("partner-{partner}"))),
            client: None,
            user_agent: Some(b.intern("partner-sdk/2.1")),
            request_type: None,
            response_type: None,
            flags,
            weight: 1,
        };
        b.push(record);
    };
    for partner in 0..PARTNERS {
        for j in 0..20 {
            let order = partner as u64 * 1_000 + (m * 3 + j) % 8;
            add(&mut b, partner, start + j * 2_000, order);
        }
    }
    if let Some((partner, from)) = walker {
        for n in 0..400 {
            add(&mut b, partner, start + 100 + n * 100, from + n);
        }
    }
    let mut batch = b.finish();
    batch.node = "envoy-alerts".into();
    batch.instance = 77;
    batch.seq = m;
    batch
}

/// The server: operator token, one-minute windows after ten minutes of learning on record
/// time, alerts also in `alerts.jsonl`, and `policy`.
fn start(dir: &TempDir, policy: &str) -> TestServer {
    let mut config = config(dir.path());
    config.operator_token = Some(Secret::new(OPERATOR));
    let policy: PolicyConfig = toml::from_str(policy).unwrap();
    config.policy = Policy::from_config(&policy, config.settings.decisions.max_ttl_ms).unwrap();
    let mut detect = DetectSettings::default();
    detect.engine.learning_ms = 10 * MINUTE;
    detect.engine.window_ms = MINUTE;
    detect.wall_clock = false;
    detect.alerts.jsonl = Some(dir.path().join("alerts.jsonl"));
    config.detect = detect;
    TestServer::start_with(config)
}

fn feed(server: &TestServer, minutes: std::ops::Range<u64>, walk_at: u64, walker: (usize, u64)) {
    for m in minutes {
        let batch = minute(m, (m == walk_at).then_some(walker));
        let (status, body, _) = post(server, &batch.encode(), Some(TOKEN));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

fn operator_get(server: &TestServer, path: &str) -> Value {
    let (status, body) = get(server, path, Some(OPERATOR));
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn ack(server: &TestServer, id: u64, token: Option<&str>) -> (u16, Value) {
    let mut request = agent().post(server.url(&format!("/v1/alerts/{id}/ack")));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.send(&b""[..]).expect("ack failed");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn enumeration(alerts: &Value, partner: usize) -> Vec<Value> {
    alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["detector"] == "enumeration" && a["consumer"] == consumer(partner))
        .cloned()
        .collect()
}

const ENFORCE: &str = r#"
    mode = "enforce"
    [[rule]]
    detector = "enumeration"
    min_severity = "low"
    action = "block"
    ttl = "10m"
"#;

#[test]
fn an_id_walk_raises_an_alert_with_evidence_and_in_enforce_mode_a_block() {
    let dir = TempDir::new("alerts-walk");
    let mut server = start(&dir, ENFORCE);
    feed(&server, 0..22, 20, (0, 5_000_000));

    let alerts = operator_get(&server, "/v1/alerts");
    let found = enumeration(&alerts, 0);
    assert_eq!(found.len(), 1, "{alerts}");
    let alert = &found[0];
    assert_eq!(alert["label"], "partner-0");
    assert_eq!(alert["status"], "open");
    let evidence = &alert["evidence"];
    assert_eq!(
        evidence["endpoints"],
        serde_json::json!(["GET /v1/orders/{id}"])
    );
    assert_eq!(evidence["window_start"], "2023-11-14T22:34:00Z");
    assert_eq!(evidence["window_end"], "2023-11-14T22:35:00Z");
    let (baseline, current) = (
        evidence["baseline"].as_f64().unwrap(),
        evidence["current"].as_f64().unwrap(),
    );
    assert!(current >= 10.0 * baseline.max(1.0), "{evidence}");
    assert!(!evidence["feature"].as_str().unwrap().is_empty());
    assert_eq!(alert["first_seen"], "2023-11-14T22:34:00Z");

    let open = operator_get(&server, "/v1/alerts?status=open");
    assert!(!enumeration(&open, 0).is_empty());
    assert_eq!(
        get(&server, "/v1/alerts?status=closed", Some(OPERATOR)).0,
        400
    );
    assert_eq!(
        get(&server, "/v1/alerts", None).0,
        401,
        "reads need the operator token"
    );

    let (_, decisions) = get(&server, "/v1/decisions", Some(OPERATOR));
    let decisions: Value = serde_json::from_str(&decisions).unwrap();
    let made = &decisions["decisions"][0];
    assert_eq!(made["subject"]["consumer"], consumer(0));
    assert_eq!(made["created_by"], "policy");
    assert_eq!(made["action"], "block");
    let reason = made["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!("alert {} (enumeration", alert["id"])),
        "{reason}"
    );
    server.stop();
}

#[test]
fn an_acknowledged_alert_and_the_baselines_survive_a_restart() {
    let dir = TempDir::new("alerts-restart");
    let mut server = start(&dir, "");
    feed(&server, 0..22, 20, (0, 5_000_000));
    let first = enumeration(&operator_get(&server, "/v1/alerts"), 0)[0].clone();
    let id = first["id"].as_u64().unwrap();

    assert_eq!(ack(&server, id, None).0, 401);
    let (status, acked) = ack(&server, id, Some(OPERATOR));
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(ack(&server, 9_999, Some(OPERATOR)).0, 404);
    let audit = operator_get(&server, "/v1/audit");
    let entry = &audit["entries"][0];
    assert_eq!(
        (entry["who"].as_str(), entry["action"].as_str()),
        (Some("operator"), Some("ack"))
    );
    assert!(entry["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("alert {id}")));
    server.stop();

    let mut server = start(&dir, "");
    let kept = operator_get(&server, "/v1/alerts");
    assert_eq!(enumeration(&kept, 0)[0]["status"], "acknowledged");
    feed(&server, 22..26, 23, (3, 7_000_000));
    let after = operator_get(&server, "/v1/alerts");
    let second = enumeration(&after, 3);
    assert_eq!(
        second.len(),
        1,
        "partner 3 is scored at once: its baseline was kept; {after}"
    );
    assert!(
        second[0]["id"].as_u64().unwrap() > id,
        "ids go on after a restart"
    );
    server.stop();

    let lines = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
    let changes: Vec<(u64, String)> = lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            (
                e["alert"]["id"].as_u64().unwrap(),
                e["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(changes.contains(&(id, "opened".into())), "{changes:?}");
    assert!(
        changes.contains(&(id, "acknowledged".into())),
        "{changes:?}"
    );
}

#[test]
fn the_cli_lists_alerts_from_a_running_collector_and_from_its_data_directory() {
    let dir = TempDir::new("alerts-cli");
    let mut server = start(&dir, "");
    feed(&server, 0..22, 20, (0, 5_000_000));
    let url = server.url("");
    let env = [("PLUMBLINE_OPERATOR_TOKEN", OPERATOR)];

    let out = plumbline(&["alerts", "--server", &url], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("ID  STATUS"), "{table}");
    assert!(
        table.contains("enumeration") && table.contains("partner-0"),
        "{table}"
    );
    let out = plumbline(
        &["alerts", "--server", &url, "--json", "--status", "resolved"],
        &env,
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(enumeration(&json, 0).is_empty(), "{json}");
    server.stop();

    let data = dir.path().join("state");
    let out = plumbline(&["alerts", "--data", data.to_str().unwrap(), "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(enumeration(&json, 0).len(), 1, "{json}");
}
