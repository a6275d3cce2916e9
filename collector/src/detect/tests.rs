//! Detection through the collector: records in, alerts stored, acknowledged, sent through the
//! policy, and baselines kept across a reopen. Time is the records' own; nothing sleeps.

use super::config::DetectSettings;
use super::flow::{self, AckError, Alerting, Clock};
use super::sink::Sinks;
use crate::decide::policy::{Policy, PolicyConfig};
use crate::decide::Limits;
use crate::pipeline::Settings;
use crate::store::persisted::Persisted;
use crate::store::tests::TempDir;
use crate::store::DB_FILE;
use plumbline_detect::{AlertStatus, Detector};
use plumbline_wire::{consumer_id, Action, Batch, BatchBuilder, Method, Record, Subject};

/// A minute boundary, so windows of a minute start on it.
const T0: u64 = 1_700_000_040_000;
const MINUTE: u64 = 60_000;
/// A wall clock for decisions, far from the records' times.
const WALL: u64 = 1_800_000_000_000;
/// The first order id of the walk: its text must never reach the database.
const WALK_FROM: u64 = 987_654_321_000;

fn settings() -> DetectSettings {
    let mut s = DetectSettings::default();
    s.engine.learning_ms = 10 * MINUTE;
    s.engine.window_ms = MINUTE;
    s
}

fn key(consumer: usize) -> String {
    format!("partner-key-{consumer}")
}

/// Requests of `consumer` at `time_ms` to `/v1/orders/{id}` (one per id), answered `status`.
fn push(b: &mut BatchBuilder, consumer: usize, time_ms: u64, ids: &[u64], status: u16) {
    let id = consumer_id(b"salt", key(consumer).as_bytes());
    for order in ids {
        let (segments, flags) = b.path(&format!("/v1/orders/{order}"));
        let record = Record {
            offset_ms: b.offset_ms(time_ms),
            method: Method::Get,
            host: b.intern("api.example.com"),
            path: segments,
            query: vec![],
            status,
            request_bytes: 0,
            response_bytes: 400,
            duration_us: 900,
            consumer: Some(b.consumer(id)),
            label: Some(b.intern(&format!("partner-{consumer}"))),
            client: None,
            user_agent: Some(b.intern("partner-sdk/2.1")),
            request_type: None,
            response_type: None,
            flags,
            weight: 1,
        };
        b.push(record);
    }
}

/// Minute `m` of six partners reading their usual few orders; consumer 0 also walks
/// `walk` order ids one after another.
fn minute(m: u64, walk: u64) -> Batch {
    let start = T0 + m * MINUTE;
    let mut b = BatchBuilder::new(start);
    for consumer in 0..6usize {
        let base = consumer as u64 * 1_000;
        for j in 0..20u64 {
            let order = base + (m * 3 + j) % 8;
            push(&mut b, consumer, start + j * 2_000, &[order], 200);
        }
    }
    for n in 0..walk {
        push(&mut b, 0, start + 100 + n * 100, &[WALK_FROM + n], 200);
    }
    b.finish()
}

struct Rig {
    policy: Policy,
    sinks: Sinks,
}

impl Rig {
    fn monitor() -> Rig {
        Rig::with_policy("")
    }

    fn with_policy(text: &str) -> Rig {
        let config: PolicyConfig = toml::from_str(text).unwrap();
        Rig {
            policy: Policy::from_config(&config, Limits::default().max_ttl_ms).unwrap(),
            sinks: Sinks::default(),
        }
    }

    fn alerting(&self) -> Alerting<'_> {
        Alerting {
            policy: &self.policy,
            sinks: &self.sinks,
            max_stored: 1_000,
        }
    }

    /// Minutes `from..to` applied and settled on record time, the walk in minute `walk_at`.
    fn run(&self, p: &mut Persisted, from: u64, to: u64, walk_at: Option<u64>) {
        for m in from..to {
            let walk = if walk_at == Some(m) { 400 } else { 0 };
            p.apply_records(&minute(m, walk)).unwrap();
            flow::settle(p, self.alerting(), Clock::Records, WALL);
        }
    }
}

fn open(dir: &TempDir) -> Persisted {
    let mut p = Persisted::open_at(dir.path(), true, Settings::default(), WALL).unwrap();
    flow::enable(&mut p, &settings(), WALL).unwrap();
    p
}

fn enumeration_alerts(p: &Persisted) -> Vec<super::StoredAlert> {
    let all = p.alerts(None, 100).unwrap();
    all.into_iter()
        .filter(|a| a.alert.detector == Detector::Enumeration)
        .collect()
}

#[test]
fn an_id_walk_after_learning_raises_an_enumeration_alert_with_evidence() {
    let dir = TempDir::new("detect-walk");
    let mut p = open(&dir);
    let rig = Rig::monitor();
    rig.run(&mut p, 0, 25, Some(20));

    let found = enumeration_alerts(&p);
    assert_eq!(found.len(), 1, "{:?}", p.alerts(None, 100).unwrap());
    let alert = &found[0].alert;
    assert_eq!(alert.consumer, consumer_id(b"salt", key(0).as_bytes()));
    let e = &alert.evidence;
    assert!(e.current >= 10.0 * e.baseline.max(1.0), "{e:?}");
    assert_eq!(e.endpoints, ["GET /v1/orders/{id}"]);
    assert_eq!(e.window_start_ms, T0 + 20 * MINUTE);

    let view = found[0].view(Some("partner-0"));
    assert_eq!(view.first_seen, "2023-11-14T22:34:00Z");
    assert_eq!(view.label.as_deref(), Some("partner-0"));
}

#[test]
fn steady_partners_raise_no_alert() {
    let dir = TempDir::new("detect-steady");
    let mut p = open(&dir);
    Rig::monitor().run(&mut p, 0, 40, None);
    assert_eq!(p.alerts(None, 100).unwrap(), []);
}

#[test]
fn raw_id_values_reach_neither_the_alerts_nor_the_saved_baselines() {
    let dir = TempDir::new("detect-raw");
    let mut p = open(&dir);
    Rig::monitor().run(&mut p, 0, 25, Some(20));
    assert!(!enumeration_alerts(&p).is_empty());
    p.close().unwrap();

    let mut bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("plumbline.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("GET /v1/orders/{id}"),
        "the template is stored"
    );
    for n in [0, 1, 399] {
        let raw = (WALK_FROM + n).to_string();
        assert!(!text.contains(&raw), "raw id {raw} is in the database");
    }
}

#[test]
fn baselines_survive_a_reopen_so_a_walk_right_after_is_still_caught() {
    let dir = TempDir::new("detect-reopen");
    let rig = Rig::monitor();
    let mut p = open(&dir);
    rig.run(&mut p, 0, 15, None);
    let before = p.pipeline.detect.as_ref().unwrap().stats();
    p.close().unwrap();

    let mut again = open(&dir);
    let after = again.pipeline.detect.as_ref().unwrap().stats();
    assert_eq!(after.consumers, 6);
    assert_eq!(after.windows_closed, before.windows_closed);
    rig.run(&mut again, 15, 20, Some(16));
    assert_eq!(
        enumeration_alerts(&again).len(),
        1,
        "learning did not start over"
    );
}

#[test]
fn an_acknowledged_alert_stays_acknowledged_while_its_episode_goes_on() {
    let dir = TempDir::new("detect-ack");
    let rig = Rig::monitor();
    let mut p = open(&dir);
    rig.run(&mut p, 0, 22, Some(20));
    let id = enumeration_alerts(&p)[0].alert.id;

    let acked = flow::acknowledge(&mut p, &rig.sinks, id, "operator", WALL).unwrap();
    assert_eq!(acked.alert.status, AlertStatus::Acknowledged);
    let again = flow::acknowledge(&mut p, &rig.sinks, id, "operator", WALL).unwrap();
    assert_eq!(again.alert.status, AlertStatus::Acknowledged, "idempotent");
    let audit = p.audit(10).unwrap();
    let acks: Vec<_> = audit
        .iter()
        .filter(|e| e.detail.contains("alert"))
        .collect();
    assert_eq!(acks.len(), 1, "{audit:?}");
    assert_eq!(acks[0].who, "operator");

    for m in 22..25 {
        p.apply_records(&minute(m, 400)).unwrap();
        flow::settle(&mut p, rig.alerting(), Clock::Records, WALL);
    }
    let stored = p.alert(id).unwrap().unwrap();
    assert_eq!(stored.alert.status, AlertStatus::Acknowledged);
    assert!(
        stored.alert.windows > 1,
        "the episode went on: {:?}",
        stored.alert
    );
    assert!(matches!(
        flow::acknowledge(&mut p, &rig.sinks, 999, "operator", WALL),
        Err(AckError::NotFound(999))
    ));
}

#[test]
fn an_episode_that_ends_is_resolved_and_cannot_be_acknowledged() {
    let dir = TempDir::new("detect-resolve");
    let rig = Rig::monitor();
    let mut p = open(&dir);
    rig.run(&mut p, 0, 30, Some(20));
    let alert = &enumeration_alerts(&p)[0];
    assert_eq!(alert.alert.status, AlertStatus::Resolved);
    assert!(alert.view(None).resolved_at.is_some());
    let id = alert.alert.id;
    assert!(matches!(
        flow::acknowledge(&mut p, &rig.sinks, id, "operator", WALL),
        Err(AckError::Resolved(_))
    ));
}

#[test]
fn in_enforce_mode_an_enumeration_alert_blocks_its_consumer_for_the_rules_ttl() {
    let dir = TempDir::new("detect-enforce");
    let rig = Rig::with_policy(
        r#"
        mode = "enforce"
        [[rule]]
        detector = "enumeration"
        min_severity = "low"
        action = "block"
        ttl = "10m"
        "#,
    );
    let mut p = open(&dir);
    rig.run(&mut p, 0, 22, Some(20));

    let alert = &enumeration_alerts(&p)[0].alert;
    let decisions: Vec<_> = p.decisions.iter().collect();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let d = decisions[0];
    assert_eq!(d.decision.subject, Subject::Consumer(alert.consumer));
    assert_eq!(d.decision.action, Action::Block { status: 403 });
    assert_eq!(
        d.decision.expires_at_ms,
        WALL + 10 * MINUTE,
        "ttl from the wall clock"
    );
    assert!(d
        .reason
        .starts_with(&format!("alert {} (enumeration", alert.id)));
}

#[test]
fn a_fresh_engine_numbers_its_alerts_after_the_stored_ones() {
    let dir = TempDir::new("detect-fresh");
    let rig = Rig::monitor();
    let mut p = open(&dir);
    rig.run(&mut p, 0, 22, Some(20));
    let first = enumeration_alerts(&p)[0].alert.id;
    p.close().unwrap();

    let mut other = settings();
    other.engine.window_ms = 2 * MINUTE;
    let mut p = Persisted::open_at(dir.path(), false, Settings::default(), WALL).unwrap();
    flow::enable(&mut p, &other, WALL).unwrap();
    let orphan = p.alert(first).unwrap().unwrap();
    assert_eq!(
        orphan.alert.status,
        AlertStatus::Resolved,
        "its episode was lost"
    );

    for m in 0..20 {
        let shifted = 1_000 + m;
        p.apply_records(&minute(shifted, if m == 18 { 800 } else { 0 }))
            .unwrap();
        flow::settle(&mut p, rig.alerting(), Clock::Records, WALL);
    }
    let ids: Vec<u64> = p
        .alerts(None, 100)
        .unwrap()
        .iter()
        .map(|a| a.alert.id)
        .collect();
    assert!(ids.len() > 1, "{ids:?}");
    assert!(
        ids.iter().filter(|id| **id != first).all(|id| *id > first),
        "{ids:?}"
    );
}

#[test]
fn requests_plumbline_blocked_are_not_counted_as_the_consumers_use() {
    let dir = TempDir::new("detect-blocked");
    let mut p = open(&dir);
    let mut batch = minute(0, 0);
    for record in batch.records.iter_mut().take(5) {
        record.flags |= plumbline_wire::flags::BLOCKED;
    }
    p.apply_records(&batch).unwrap();
    let stats = p.pipeline.detect.as_ref().unwrap().stats();
    assert_eq!(stats.observations, batch.records.len() as u64 - 5);
}

#[test]
fn names_a_template_replaced_later_do_not_linger_in_the_baselines() {
    let dir = TempDir::new("detect-rename");
    let mut p = open(&dir);
    let mut b = BatchBuilder::new(T0);
    let id = consumer_id(b"salt", key(0).as_bytes());
    for n in 0..40u64 {
        let name: String = ["zq", &"abcdefghij"[..(n % 10) as usize], "item"].concat();
        let path = format!("/v1/items/{name}{}", "xy".repeat((n / 10) as usize));
        let (segments, flags) = b.path(&path);
        let record = Record {
            offset_ms: b.offset_ms(T0 + n),
            method: Method::Get,
            host: b.intern("api.example.com"),
            path: segments,
            query: vec![],
            status: 200,
            request_bytes: 0,
            response_bytes: 10,
            duration_us: 10,
            consumer: Some(b.consumer(id)),
            label: None,
            client: None,
            user_agent: None,
            request_type: None,
            response_type: None,
            flags,
            weight: 1,
        };
        b.push(record);
    }
    p.apply_records(&b.finish()).unwrap();
    let paths: Vec<String> = p
        .pipeline
        .inventory
        .endpoints()
        .iter()
        .map(|(_, e)| e.path.clone())
        .collect();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(!paths[0].contains("zq"), "{paths:?}");

    let baselines = p.pipeline.detect.as_mut().unwrap().snapshot(WALL);
    let text = String::from_utf8_lossy(&baselines.snapshot);
    assert!(
        text.contains(&format!("GET {}", paths[0])),
        "the template names the endpoint"
    );
    assert!(
        !text.contains("zqa"),
        "a replaced name is still in the baselines"
    );
}
