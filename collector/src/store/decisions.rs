//! Decisions in the database: the set (one row per decision), its version, mode and next id
//! (in `meta`), and the audit log, capped by deleting its oldest entries.
//!
//! Each [`Change`] is written in one transaction before it is applied in memory. A database
//! that never held decisions starts its version at the time it is first opened (Unix ms), so a
//! collector whose data directory was lost still hands out versions above the ones its filters
//! hold.

use super::{int, uint, Store, StoreError};
use crate::decide::audit::{AuditAction, AuditEntry, AuditEntryView};
use crate::decide::view::DecisionView;
use crate::decide::{Change, Decisions, Limits, StoredDecision};
use plumbline_wire::{Action, Addr, Decision, Mode, Subject};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use std::net::IpAddr;

const VERSION_KEY: &str = "decisions_version";
const NEXT_ID_KEY: &str = "next_decision_id";
const MODE_KEY: &str = "decisions_mode";

impl Store {
    /// The decision set as stored; a database without one gets version `now_ms`.
    pub fn load_decisions(&self, limits: Limits, now_ms: u64) -> Result<Decisions, StoreError> {
        let version = match self.meta(VERSION_KEY)? {
            Some(version) => version,
            None => {
                self.put_meta(VERSION_KEY, now_ms)?;
                now_ms
            }
        };
        let next_id = self.meta(NEXT_ID_KEY)?.unwrap_or(1);
        let mode = match self.meta(MODE_KEY)? {
            Some(1) => Mode::Enforce,
            _ => Mode::Monitor,
        };
        let sql = "SELECT id, subject, action, status, per_hour, burst, reason, created_by, \
                   created_at_ms, expires_at_ms FROM decisions ORDER BY id";
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let mut decisions = Vec::new();
        while let Some(row) = rows.next()? {
            decisions.push(decision_from(row)?);
        }
        Ok(Decisions::restore(
            limits, version, mode, next_id, decisions,
        ))
    }

    /// Writes a change and its audit entries in one transaction, then trims the audit log to
    /// `max_audit` entries.
    pub fn commit_decisions(
        &mut self,
        change: &Change,
        max_audit: usize,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for old in &change.removed {
            tx.prepare_cached("DELETE FROM decisions WHERE id = ?1")?
                .execute([int(old.decision.id)])?;
        }
        for new in &change.added {
            put_decision(&tx, new)?;
        }
        put_meta(&tx, VERSION_KEY, change.version)?;
        put_meta(&tx, NEXT_ID_KEY, change.next_id)?;
        put_meta(&tx, MODE_KEY, u64::from(change.mode == Mode::Enforce))?;
        for entry in &change.audit {
            put_audit(&tx, entry)?;
        }
        let sql = "DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?1";
        tx.prepare_cached(sql)?.execute([int(max_audit as u64)])?;
        tx.commit()?;
        Ok(())
    }

    /// Writes one audit entry that goes with no decision change (an alert acknowledged),
    /// then trims the log to `max_audit` entries.
    pub fn append_audit(&mut self, entry: &AuditEntry, max_audit: usize) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        put_audit(&tx, entry)?;
        let sql = "DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?1";
        tx.prepare_cached(sql)?.execute([int(max_audit as u64)])?;
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEntryView>, StoreError> {
        let sql = "SELECT seq, at_ms, who, action, version, decision, detail FROM audit \
                   ORDER BY seq DESC LIMIT ?1";
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([int(limit as u64)])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            entries.push(audit_from(row)?);
        }
        Ok(entries)
    }

    fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let value: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(value.map(uint))
    }

    fn put_meta(&self, key: &str, value: u64) -> Result<(), StoreError> {
        let sql = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)";
        self.conn.execute(sql, params![key, int(value)])?;
        Ok(())
    }
}

fn put_meta(tx: &Transaction<'_>, key: &str, value: u64) -> Result<(), StoreError> {
    let sql = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)";
    tx.prepare_cached(sql)?.execute(params![key, int(value)])?;
    Ok(())
}

fn put_decision(tx: &Transaction<'_>, stored: &StoredDecision) -> Result<(), StoreError> {
    let d = &stored.decision;
    let (action, status, per_hour, burst) = match d.action {
        Action::Block { status } => ("block", status, None, None),
        Action::Throttle { per_hour, burst } => ("throttle", 429, Some(per_hour), Some(burst)),
    };
    let sql = "INSERT OR REPLACE INTO decisions (id, subject, action, status, per_hour, burst, \
               reason, created_by, created_at_ms, expires_at_ms) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    tx.prepare_cached(sql)?.execute(params![
        int(d.id),
        subject_text(&d.subject),
        action,
        status,
        per_hour,
        burst,
        stored.reason,
        stored.created_by,
        int(stored.created_at_ms),
        int(d.expires_at_ms),
    ])?;
    Ok(())
}

fn put_audit(tx: &Transaction<'_>, entry: &AuditEntry) -> Result<(), StoreError> {
    let decision = match &entry.decision {
        Some(view) => Some(
            serde_json::to_string(view).map_err(|e| StoreError::Corrupt {
                what: "audit decision",
                value: e.to_string(),
            })?,
        ),
        None => None,
    };
    let sql = "INSERT INTO audit (at_ms, who, action, version, decision, detail) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    tx.prepare_cached(sql)?.execute(params![
        int(entry.at_ms),
        entry.who,
        entry.action.name(),
        int(entry.version),
        decision,
        entry.detail,
    ])?;
    Ok(())
}

/// A subject as stored: `consumer:<hex>` or `prefix:<addr>/<bits>`.
fn subject_text(subject: &Subject) -> String {
    match subject {
        Subject::Consumer(id) => format!("consumer:{id}"),
        Subject::Prefix { addr, bits } => format!("prefix:{addr}/{bits}"),
    }
}

fn subject_from(text: &str) -> Result<Subject, StoreError> {
    let corrupt = || StoreError::Corrupt {
        what: "decision subject",
        value: text.to_string(),
    };
    if let Some(hex) = text.strip_prefix("consumer:") {
        return hex.parse().map(Subject::Consumer).map_err(|_| corrupt());
    }
    let (ip, bits) = text
        .strip_prefix("prefix:")
        .and_then(|p| p.split_once('/'))
        .ok_or_else(corrupt)?;
    let ip: IpAddr = ip.parse().map_err(|_| corrupt())?;
    let bits: u8 = bits.parse().map_err(|_| corrupt())?;
    Ok(Subject::Prefix {
        addr: Addr::from(ip),
        bits,
    })
}

fn decision_from(row: &Row<'_>) -> Result<StoredDecision, StoreError> {
    let subject: String = row.get(1)?;
    let action: String = row.get(2)?;
    let action = match action.as_str() {
        "block" => Action::Block {
            status: row.get(3)?,
        },
        "throttle" => Action::Throttle {
            per_hour: row.get::<_, Option<u32>>(4)?.unwrap_or(1),
            burst: row.get::<_, Option<u32>>(5)?.unwrap_or(1),
        },
        _ => {
            return Err(StoreError::Corrupt {
                what: "decision action",
                value: action,
            })
        }
    };
    Ok(StoredDecision {
        decision: Decision {
            id: uint(row.get(0)?),
            subject: subject_from(&subject)?,
            action,
            expires_at_ms: uint(row.get(9)?),
        },
        reason: row.get(6)?,
        created_by: row.get(7)?,
        created_at_ms: uint(row.get(8)?),
    })
}

fn audit_from(row: &Row<'_>) -> Result<AuditEntryView, StoreError> {
    let action: String = row.get(3)?;
    let action = AuditAction::from_name(&action).ok_or_else(|| StoreError::Corrupt {
        what: "audit action",
        value: action.clone(),
    })?;
    let decision: Option<String> = row.get(5)?;
    let decision: Option<DecisionView> = match decision {
        Some(text) => Some(
            serde_json::from_str(&text).map_err(|_| StoreError::Corrupt {
                what: "audit decision",
                value: text,
            })?,
        ),
        None => None,
    };
    Ok(AuditEntryView {
        seq: uint(row.get(0)?),
        at: crate::api::views::rfc3339(uint(row.get(1)?)),
        who: row.get(2)?,
        action,
        version: uint(row.get(4)?),
        decision,
        detail: row.get(6)?,
    })
}
