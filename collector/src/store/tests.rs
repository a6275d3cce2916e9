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
        .map(|(_, c)| format!("{} {:?} {} {}", c.id, c.label, c.calls, c.endpoints))
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
    let batch = batch_of(&[("/users/1", b"k1"), ("/users/2", b"k2"), ("/a", b"")], 1);
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
