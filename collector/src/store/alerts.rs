//! Alerts and baselines in the database.
//!
//! `alerts` holds one row per consumer × detector episode, upserted by id as the engine
//! reports it opening, going on, being acknowledged and resolving; an acknowledged alert
//! never goes back to open. Past `max_stored` rows, the oldest resolved alerts are deleted.
//! `baselines` holds one row: the detection engine's snapshot, the window length it was
//! taken with, and the offset between the engine's alert ids and the stored ones (see
//! [`crate::detect`]). Alert changes and the snapshot that goes with them are written in one
//! transaction, so the ids the engine hands out after a restart never collide with stored ones.

use super::{int, uint, Store, StoreError};
use crate::detect::StoredAlert;
use plumbline_detect::{Alert, AlertStatus, Detector, Evidence, Severity};
use plumbline_wire::ConsumerId;
use rusqlite::{params, OptionalExtension, Row, Transaction};

/// The engine's saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baselines {
    pub snapshot: Vec<u8>,
    pub window_ms: u64,
    /// Stored alert id = engine alert id + `id_base`.
    pub id_base: u64,
    pub taken_ms: u64,
}

const COLUMNS: &str = "id, consumer, detector, severity, score, confidence, status, evidence, \
                       windows, opened_ms, first_seen_ms, last_seen_ms, resolved_ms";

impl Store {
    /// Upserts alert updates (ids already the stored ones) and, when given, the baselines
    /// they came with, in one transaction; then trims resolved alerts past `max_stored`.
    pub fn write_alerts(
        &mut self,
        updates: &[StoredAlert],
        baselines: Option<&Baselines>,
        max_stored: usize,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for update in updates {
            put_alert(&tx, update)?;
        }
        if let Some(b) = baselines {
            put_baselines(&tx, b)?;
        }
        if !updates.is_empty() {
            let sql = "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts \
                       WHERE status = 'resolved' ORDER BY id \
                       LIMIT MAX(0, (SELECT COUNT(*) FROM alerts) - ?1))";
            tx.prepare_cached(sql)?.execute([int(max_stored as u64)])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Saves the baselines alone.
    pub fn save_baselines(&mut self, baselines: &Baselines) -> Result<(), StoreError> {
        self.write_alerts(&[], Some(baselines), usize::MAX)
    }

    /// The saved baselines, if any.
    pub fn load_baselines(&self) -> Result<Option<Baselines>, StoreError> {
        let sql = "SELECT snapshot, window_ms, id_base, taken_ms FROM baselines WHERE id = 1";
        let row = self
            .conn
            .query_row(sql, [], |r| {
                Ok(Baselines {
                    snapshot: r.get(0)?,
                    window_ms: uint(r.get(1)?),
                    id_base: uint(r.get(2)?),
                    taken_ms: uint(r.get(3)?),
                })
            })
            .optional()?;
        Ok(row)
    }

    /// Stored alerts, newest first, of one status or all, at most `limit`.
    pub fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Vec<StoredAlert>, StoreError> {
        let filter = if status.is_some() {
            "WHERE status = ?1"
        } else {
            "WHERE ?1 IS NULL"
        };
        let sql = format!("SELECT {COLUMNS} FROM alerts {filter} ORDER BY id DESC LIMIT ?2");
        let mut stmt = self.conn.prepare(&sql)?;
        let status = status.map(status_name);
        let mut rows = stmt.query(params![status, int(limit as u64)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(alert_from(row)?);
        }
        Ok(out)
    }

    /// The stored alert with `id`.
    pub fn alert(&self, id: u64) -> Result<Option<StoredAlert>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([int(id)])?;
        match rows.next()? {
            Some(row) => alert_from(row).map(Some),
            None => Ok(None),
        }
    }

    /// The highest stored alert id (0 when none).
    pub fn max_alert_id(&self) -> Result<u64, StoreError> {
        let max: Option<i64> = self
            .conn
            .query_row("SELECT MAX(id) FROM alerts", [], |r| r.get(0))?;
        Ok(max.map_or(0, uint))
    }

    /// Marks an open alert acknowledged in the database alone (its episode is not in the
    /// engine); answers whether it was open.
    pub fn acknowledge_stored_alert(&mut self, id: u64) -> Result<bool, StoreError> {
        let sql = "UPDATE alerts SET status = 'acknowledged' WHERE id = ?1 AND status = 'open'";
        Ok(self.conn.execute(sql, [int(id)])? == 1)
    }

    /// Marks every alert not yet resolved as resolved at `at_ms`: their episodes were lost
    /// with the baselines. Answers how many.
    pub fn resolve_orphaned_alerts(&mut self, at_ms: u64) -> Result<usize, StoreError> {
        let sql = "UPDATE alerts SET status = 'resolved', resolved_ms = ?1 \
                   WHERE status != 'resolved'";
        Ok(self.conn.execute(sql, [int(at_ms)])?)
    }
}

fn put_alert(tx: &Transaction<'_>, stored: &StoredAlert) -> Result<(), StoreError> {
    let a = &stored.alert;
    let evidence = serde_json::to_string(&a.evidence).map_err(|e| StoreError::Corrupt {
        what: "alert evidence",
        value: e.to_string(),
    })?;
    let sql = format!(
        "INSERT INTO alerts ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
         ?12, ?13) ON CONFLICT(id) DO UPDATE SET severity = excluded.severity, \
         score = excluded.score, confidence = excluded.confidence, \
         status = CASE WHEN alerts.status = 'acknowledged' AND excluded.status = 'open' \
         THEN 'acknowledged' ELSE excluded.status END, evidence = excluded.evidence, \
         windows = excluded.windows, last_seen_ms = excluded.last_seen_ms, \
         resolved_ms = excluded.resolved_ms"
    );
    tx.prepare_cached(&sql)?.execute(params![
        int(a.id),
        a.consumer.to_string(),
        a.detector.name(),
        a.severity.name(),
        a.score,
        a.confidence,
        status_name(a.status),
        evidence,
        a.windows,
        int(a.opened_ms),
        int(stored.first_seen_ms),
        int(a.last_seen_ms),
        a.resolved_ms.map(int),
    ])?;
    Ok(())
}

fn put_baselines(tx: &Transaction<'_>, b: &Baselines) -> Result<(), StoreError> {
    let sql = "INSERT OR REPLACE INTO baselines (id, snapshot, window_ms, id_base, taken_ms) \
               VALUES (1, ?1, ?2, ?3, ?4)";
    tx.prepare_cached(sql)?.execute(params![
        b.snapshot,
        int(b.window_ms),
        int(b.id_base),
        int(b.taken_ms)
    ])?;
    Ok(())
}

/// The status as stored and as `?status=` names it.
pub fn status_name(status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Open => "open",
        AlertStatus::Acknowledged => "acknowledged",
        AlertStatus::Resolved => "resolved",
    }
}

/// The status of a stored or requested name.
pub fn status_from(name: &str) -> Option<AlertStatus> {
    [
        AlertStatus::Open,
        AlertStatus::Acknowledged,
        AlertStatus::Resolved,
    ]
    .into_iter()
    .find(|s| status_name(*s) == name)
}

fn severity_from(name: &str) -> Option<Severity> {
    [Severity::Low, Severity::Medium, Severity::High]
        .into_iter()
        .find(|s| s.name() == name)
}

fn corrupt(what: &'static str, value: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.into(),
    }
}

fn alert_from(row: &Row<'_>) -> Result<StoredAlert, StoreError> {
    let consumer: String = row.get(1)?;
    let detector: String = row.get(2)?;
    let severity: String = row.get(3)?;
    let status: String = row.get(6)?;
    let evidence: String = row.get(7)?;
    let evidence: Evidence =
        serde_json::from_str(&evidence).map_err(|_| corrupt("alert evidence", evidence))?;
    let alert = Alert {
        id: uint(row.get(0)?),
        consumer: consumer
            .parse::<ConsumerId>()
            .map_err(|_| corrupt("alert consumer", consumer.clone()))?,
        detector: Detector::from_name(&detector)
            .ok_or_else(|| corrupt("alert detector", detector.clone()))?,
        severity: severity_from(&severity)
            .ok_or_else(|| corrupt("alert severity", severity.clone()))?,
        score: row.get(4)?,
        confidence: row.get(5)?,
        status: status_from(&status).ok_or_else(|| corrupt("alert status", status.clone()))?,
        opened_ms: uint(row.get(9)?),
        last_seen_ms: uint(row.get(11)?),
        resolved_ms: row.get::<_, Option<i64>>(12)?.map(uint),
        windows: row.get(8)?,
        evidence,
    };
    Ok(StoredAlert {
        alert,
        first_seen_ms: uint(row.get(10)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;

    fn stored(id: u64, status: AlertStatus, windows: u32) -> StoredAlert {
        let evidence = Evidence {
            feature: "distinct_objects_per_window".into(),
            baseline: 3.0,
            current: 90.0,
            peers: Some(4.0),
            window_start_ms: 1_000,
            window_end_ms: 2_000,
            endpoints: vec!["GET /v1/orders/{id}".into()],
            summary: "90 distinct orders".into(),
        };
        StoredAlert {
            alert: Alert {
                id,
                consumer: ConsumerId([id as u8; 16]),
                detector: Detector::Enumeration,
                severity: Severity::High,
                score: 12.0,
                confidence: 0.5,
                status,
                opened_ms: 2_000,
                last_seen_ms: 1_000 + 1_000 * u64::from(windows),
                resolved_ms: (status == AlertStatus::Resolved).then_some(9_000),
                windows,
                evidence,
            },
            first_seen_ms: 1_000,
        }
    }

    #[test]
    fn an_update_replaces_the_alert_but_keeps_when_it_was_first_seen() {
        let dir = TempDir::new("alerts-upsert");
        let mut store = Store::open(dir.path(), true).unwrap();
        store
            .write_alerts(&[stored(1, AlertStatus::Open, 1)], None, 10)
            .unwrap();
        let mut later = stored(1, AlertStatus::Open, 3);
        later.first_seen_ms = 1_500;
        store.write_alerts(&[later], None, 10).unwrap();

        let back = store.alert(1).unwrap().unwrap();
        assert_eq!(back.alert.windows, 3);
        assert_eq!(back.alert.last_seen_ms, 4_000);
        assert_eq!(back.first_seen_ms, 1_000);
        assert_eq!(
            back.alert.evidence,
            stored(1, AlertStatus::Open, 1).alert.evidence
        );
    }

    #[test]
    fn an_acknowledged_alert_never_goes_back_to_open() {
        let dir = TempDir::new("alerts-ack");
        let mut store = Store::open(dir.path(), true).unwrap();
        store
            .write_alerts(&[stored(4, AlertStatus::Open, 1)], None, 10)
            .unwrap();
        assert!(store.acknowledge_stored_alert(4).unwrap());
        assert!(
            !store.acknowledge_stored_alert(4).unwrap(),
            "already acknowledged"
        );
        store
            .write_alerts(&[stored(4, AlertStatus::Open, 2)], None, 10)
            .unwrap();
        assert_eq!(
            store.alert(4).unwrap().unwrap().alert.status,
            AlertStatus::Acknowledged
        );
        store
            .write_alerts(&[stored(4, AlertStatus::Resolved, 2)], None, 10)
            .unwrap();
        assert_eq!(
            store.alert(4).unwrap().unwrap().alert.status,
            AlertStatus::Resolved
        );
    }

    #[test]
    fn past_the_cap_the_oldest_resolved_alerts_are_deleted_first() {
        let dir = TempDir::new("alerts-cap");
        let mut store = Store::open(dir.path(), true).unwrap();
        let alerts = [
            stored(1, AlertStatus::Resolved, 1),
            stored(2, AlertStatus::Open, 1),
            stored(3, AlertStatus::Resolved, 1),
            stored(4, AlertStatus::Resolved, 1),
        ];
        store.write_alerts(&alerts, None, 2).unwrap();
        let ids: Vec<u64> = store
            .alerts(None, 10)
            .unwrap()
            .iter()
            .map(|a| a.alert.id)
            .collect();
        assert_eq!(ids, [4, 2], "newest first; the open one kept");
        let open = store.alerts(Some(AlertStatus::Open), 10).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(store.max_alert_id().unwrap(), 4);
    }

    #[test]
    fn baselines_read_back_as_written_and_survive_a_reopen() {
        let dir = TempDir::new("alerts-baselines");
        let mut store = Store::open(dir.path(), true).unwrap();
        assert_eq!(store.load_baselines().unwrap(), None);
        let baselines = Baselines {
            snapshot: vec![1, 2, 3, 250],
            window_ms: 3_600_000,
            id_base: 17,
            taken_ms: 99,
        };
        store.save_baselines(&baselines).unwrap();
        store.close().unwrap();
        let store = Store::open(dir.path(), false).unwrap();
        assert_eq!(store.load_baselines().unwrap(), Some(baselines));
    }
}
