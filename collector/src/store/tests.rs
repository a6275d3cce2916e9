//! Store behaviour: state survives a reopen; merged raw segments leave the files.

use super::*;
use crate::pipeline::tests::batch_of;
use crate::pipeline::{Pipeline, Settings};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("plumbline-{tag}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn snapshot(p: &Pipeline) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut endpoints: Vec<String> = p
        .inventory
        .endpoints()
        .iter()
        .map(|(_, e)| {
            let c = e.consumers.len();
            format!(
                "{} {} {} {} {:?} {c}",
                e.host, e.method, e.path, e.calls, e.status
            )
        })
        .collect();
    let mut consumers: Vec<String> = p
        .consumers
        .iter()
        .map(|(_, c)| {
            let e = c.enforced;
            let enforced = (e.blocked, e.throttled, e.would_block);
            format!(
                "{} {:?} {} {} {enforced:?}",
                c.id, c.label, c.calls, c.endpoints
            )
        })
        .collect();
    let mut filters: Vec<String> = p
        .filters
        .iter()
        .map(|f| format!("{} {} {} {:?}", f.node, f.instance, f.records, f.window))
        .collect();
    endpoints.sort();
    consumers.sort();
    filters.sort();
    (endpoints, consumers, filters)
}

#[test]
fn state_survives_closing_and_reopening_the_store() {
    let dir = TempDir::new("roundtrip");
    let mut store = Store::open(dir.path(), true).unwrap();
    let mut pipeline = store.load(Settings::default()).unwrap();
    let mut batch = batch_of(&[("/users/1", b"k1"), ("/users/2", b"k2"), ("/a", b"")], 1);
    batch.records[1].flags |= plumbline_wire::flags::WOULD_BLOCK;
    pipeline.apply_batch(&batch, 5);
    store.save(&mut pipeline).unwrap();
    pipeline.apply_batch(&batch_of(&[("/a", b"k1")], 2), 6);
    store.save(&mut pipeline).unwrap();
    let before = snapshot(&pipeline);
    store.close().unwrap();

    let store = Store::open(dir.path(), false).unwrap();
    let mut again = store.load(Settings::default()).unwrap();
    assert_eq!(snapshot(&again), before);
    let retried = again.apply_batch(&batch_of(&[("/a", b"k1")], 2), 7);
    assert!(retried.duplicate, "the sequence window survives too");
}

/// A data directory whose database says schema `version` and holds the tables of `sql`.
fn old_database(name: &str, version: i64, sql: &str) -> TempDir {
    let dir = TempDir::new(name);
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         INSERT INTO meta VALUES ('schema', {version});
         {sql}"
    ))
    .unwrap();
    dir
}

#[test]
fn a_version_3_database_gains_the_enforced_counts_and_keeps_its_consumers() {
    let dir = old_database(
        "schema3",
        3,
        "CREATE TABLE consumers (
             idx INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, label TEXT,
             calls INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL,
             last_seen_ms INTEGER NOT NULL);
         INSERT INTO consumers VALUES (0, '000102030405060708090a0b0c0d0e0f', 'acme', 7, 1, 2);",
    );

    let mut store = Store::open(dir.path(), false).unwrap();
    let mut pipeline = store.load(Settings::default()).unwrap();
    let (_, old) = pipeline.consumers.iter().next().unwrap();
    assert_eq!((old.calls, old.enforced.blocked), (7, 0));
    let mut batch = batch_of(&[("/a", b"k")], 1);
    batch.records[0].flags |= plumbline_wire::flags::BLOCKED;
    pipeline.apply_batch(&batch, 3);
    store.save(&mut pipeline).unwrap();
    store.close().unwrap();

    let store = Store::open(dir.path(), false).unwrap();
    let again = store.load(Settings::default()).unwrap();
    let blocked: Vec<u64> = again
        .consumers
        .iter()
        .map(|(_, c)| c.enforced.blocked)
        .collect();
    assert_eq!(blocked, vec![0, 1]);
}

#[test]
fn a_version_4_database_keeps_its_throttles_at_the_same_rate_counted_per_hour() {
    let dir = old_database(
        "schema4",
        4,
        "CREATE TABLE decisions (
             id INTEGER PRIMARY KEY, subject TEXT NOT NULL UNIQUE, action TEXT NOT NULL,
             status INTEGER NOT NULL, per_second INTEGER, burst INTEGER,
             reason TEXT NOT NULL, created_by TEXT NOT NULL,
             created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL);
         INSERT INTO decisions VALUES
             (1, 'prefix:10.0.0.0/8', 'throttle', 429, 5, 9, 'r', 'operator', 1, 99),
             (2, 'prefix:10.0.0.1/32', 'block', 403, NULL, NULL, 'r', 'operator', 1, 99);",
    );
    let store = Store::open(dir.path(), false).unwrap();
    let set = store
        .load_decisions(crate::decide::Limits::default(), 0)
        .unwrap();
    use plumbline_wire::Action;
    let actions: Vec<Action> = set.iter().map(|d| d.decision.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Throttle {
                per_hour: 18_000,
                burst: 9
            },
            Action::Block { status: 403 }
        ]
    );
    store.close().unwrap();
    let reopened = Store::open(dir.path(), false).unwrap();
    let again = reopened
        .load_decisions(crate::decide::Limits::default(), 0)
        .unwrap();
    assert_eq!(again.iter().next().unwrap().decision.action, actions[0]);
}

#[test]
fn a_directory_without_a_database_is_refused_for_reading_and_left_untouched() {
    // Before, `plumbline alerts --data /some/dir` made a database and a lock file there.
    let dir = TempDir::new("notours");
    let Err(err) = Store::open(dir.path(), false) else {
        panic!("a directory without a database was opened for reading");
    };
    assert!(matches!(err, StoreError::NotPlumbline { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is not a Plumbline data directory"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(
        Store::open(dir.path(), true).is_ok(),
        "ingest and serve may start one"
    );
}

#[test]
fn a_damaged_database_is_refused_with_its_file_named_and_left_as_it_was() {
    // Before, the message was "database error: file is not a database", naming no file.
    let dir = TempDir::new("damaged");
    let file = dir.path().join(DB_FILE);
    let garbage = b"not a database, but a file the operator will want back".repeat(100);
    std::fs::write(&file, &garbage).unwrap();
    for create in [false, true] {
        let Err(err) = Store::open(dir.path(), create) else {
            panic!("a damaged database was opened (create {create})");
        };
        assert!(matches!(err, StoreError::Open { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("not a database"), "{message}");
        assert_eq!(std::fs::read(&file).unwrap(), garbage);
    }
}

#[test]
fn an_empty_database_is_refused_and_left_empty() {
    // Before, `plumbline alerts --data DIR` over a database cut to 0 bytes wrote a new empty
    // one into it and showed empty tables, and `serve` carried on as if it were new.
    let dir = TempDir::new("empty-db");
    let file = dir.path().join(DB_FILE);
    std::fs::write(&file, b"").unwrap();
    for create in [false, true] {
        let Err(err) = Store::open(dir.path(), create) else {
            panic!("an empty database was opened (create {create})");
        };
        assert!(matches!(err, StoreError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("is empty (0 bytes)"), "{err}");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
    }
    std::fs::remove_file(&file).unwrap();
    assert!(
        Store::open(dir.path(), true).is_ok(),
        "without it, a new one is made"
    );
}

#[test]
fn merged_raw_segments_do_not_linger_in_the_database_files() {
    let dir = TempDir::new("secure");
    let mut store = Store::open(dir.path(), true).unwrap();
    let mut pipeline = store.load(Settings::default()).unwrap();
    let names: Vec<String> = (0..10)
        .map(|i| format!("/users/zq{}person", "xyzw".repeat(i + 1)))
        .collect();
    for (seq, name) in names.iter().enumerate() {
        pipeline.apply_batch(&batch_of(&[(name.as_str(), b"k")], seq as u64), 1);
        store.save(&mut pipeline).unwrap();
    }
    let more: Vec<String> = (0..30)
        .map(|i| format!("/users/p{}{}", i % 10, "ab".repeat(i / 10 + 1)))
        .collect();
    let paths: Vec<(&str, &[u8])> = more.iter().map(|p| (p.as_str(), &b"k"[..])).collect();
    pipeline.apply_batch(&batch_of(&paths, 100), 2);
    store.save(&mut pipeline).unwrap();
    store.close().unwrap();

    let mut bytes = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("plumbline.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("/users/{user}"), "the template is stored");
    assert!(
        !text.contains("zqxyzw"),
        "a replaced raw segment is still in the files"
    );
}

mod decisions {
    use super::*;
    use crate::decide::policy::{Policy, PolicyAlert, PolicyConfig, Severity};
    use crate::decide::{Limits, NewDecision, BY_CONFIG, BY_OPERATOR};
    use crate::store::persisted::{AlertOutcome, Persisted};
    use plumbline_wire::{Action, ConsumerId, Mode, Subject};

    const NOW: u64 = 1_700_000_000_000;
    const HOUR: u64 = 3_600_000;

    fn block(consumer: u8) -> NewDecision {
        NewDecision {
            subject: Subject::Consumer(ConsumerId([consumer; 16])),
            action: Action::Block { status: 403 },
            ttl_ms: HOUR,
            reason: "test".into(),
            created_by: BY_OPERATOR.into(),
        }
    }

    fn enforce_on_enumeration() -> Policy {
        let text = r#"
            mode = "enforce"
            allowlist = ["09090909090909090909090909090909"]
            [[rule]]
            detector = "enumeration"
            min_severity = "medium"
            action = "block"
            ttl = "1h"
        "#;
        let config: PolicyConfig = toml::from_str(text).unwrap();
        Policy::from_config(&config, Limits::default().max_ttl_ms).unwrap()
    }

    fn alert(consumer: u8) -> PolicyAlert<'static> {
        PolicyAlert {
            id: 41,
            detector: "enumeration",
            severity: Severity::High,
            consumer: ConsumerId([consumer; 16]),
        }
    }

    #[test]
    fn a_new_database_starts_its_version_at_the_time_it_is_first_opened() {
        let dir = TempDir::new("decisions-new");
        let p = Persisted::open_at(dir.path(), true, Settings::default(), NOW).unwrap();
        assert_eq!(
            (p.decisions.version(), p.decisions.mode()),
            (NOW, Mode::Monitor)
        );
        p.close().unwrap();
        let again = Persisted::open_at(dir.path(), false, Settings::default(), NOW + 5).unwrap();
        assert_eq!(
            again.decisions.version(),
            NOW,
            "kept, not restarted from the clock"
        );
    }

    #[test]
    fn decisions_version_mode_and_next_id_survive_a_reopen() {
        let dir = TempDir::new("decisions-reopen");
        let mut p = Persisted::open_at(dir.path(), true, Settings::default(), NOW).unwrap();
        let first = p.add_decision(block(1), BY_OPERATOR, NOW).unwrap();
        let throttle = NewDecision {
            subject: Subject::Prefix {
                addr: plumbline_wire::Addr::V6([
                    0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ]),
                bits: 32,
            },
            action: Action::Throttle {
                per_hour: 18_000,
                burst: 9,
            },
            ..block(0)
        };
        p.add_decision(throttle, BY_OPERATOR, NOW).unwrap();
        p.remove_decision(first.made.decision.id, BY_OPERATOR, NOW)
            .unwrap();
        p.set_mode(Mode::Enforce, BY_CONFIG, NOW).unwrap();
        let before: Vec<_> = p.decisions.iter().cloned().collect();
        let version = p.decisions.version();
        p.close().unwrap();

        let mut again = Persisted::open_at(dir.path(), false, Settings::default(), 0).unwrap();
        assert_eq!(again.decisions.iter().cloned().collect::<Vec<_>>(), before);
        assert_eq!(again.decisions.version(), version);
        assert_eq!(again.decisions.mode(), Mode::Enforce);
        let next = again.add_decision(block(2), BY_OPERATOR, NOW).unwrap();
        assert_eq!(
            next.made.decision.id, 3,
            "ids are not reused after a restart"
        );
    }

    #[test]
    fn the_audit_log_keeps_only_its_newest_entries() {
        let dir = TempDir::new("decisions-audit");
        let mut settings = Settings::default();
        settings.decisions.max_audit = 3;
        let mut p = Persisted::open_at(dir.path(), true, settings, NOW).unwrap();
        for consumer in 1..=5 {
            p.add_decision(block(consumer), BY_OPERATOR, NOW).unwrap();
        }
        let entries = p.audit(100).unwrap();
        let ids: Vec<u64> = entries
            .iter()
            .map(|e| e.decision.as_ref().unwrap().id)
            .collect();
        assert_eq!(ids, [5, 4, 3]);
        assert_eq!(entries[0].seq, 5);
    }

    #[test]
    fn an_alert_in_enforce_mode_becomes_a_stored_decision_by_policy() {
        let dir = TempDir::new("decisions-alert");
        let policy = enforce_on_enumeration();
        let mut p = Persisted::open_at(dir.path(), true, Settings::default(), NOW).unwrap();
        p.set_mode(policy.mode, BY_CONFIG, NOW).unwrap();

        let AlertOutcome::Made(made) = p.apply_alert(&policy, &alert(1), NOW).unwrap() else {
            panic!("the rule matches");
        };
        assert_eq!(made.created_by, "policy");
        assert_eq!(made.reason, "alert 41 (enumeration, high)");
        assert_eq!(made.decision.expires_at_ms, NOW + HOUR);
        let again = p.apply_alert(&policy, &alert(1), NOW).unwrap();
        assert_eq!(
            again,
            AlertOutcome::Kept(made.decision.id),
            "same expiry: kept"
        );
        assert_eq!(
            p.apply_alert(&policy, &alert(9), NOW).unwrap(),
            AlertOutcome::Ignored
        );

        let set: plumbline_wire::DecisionSet =
            postcard::from_bytes(&p.decisions.encoded()).unwrap();
        assert_eq!((set.mode, set.decisions.len()), (Mode::Enforce, 1));
        let audit = p.audit(1).unwrap();
        assert_eq!(audit[0].who, "policy");
    }
}
