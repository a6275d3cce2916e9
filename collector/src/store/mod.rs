//! Storage: the pipeline's state in one SQLite database (`plumbline.db`) inside the data
//! directory, which this process holds locked ([`lock`]).
//!
//! The state is loaded whole at start ([`load`]); after each batch only what changed is
//! written in one transaction ([`save`]). The database runs in WAL mode with
//! `synchronous=NORMAL`: a committed batch survives a crash of the process; a power loss may
//! lose the last few commits. `secure_delete` is on and the WAL is truncated after endpoints
//! merge, so raw path segments replaced by a parameter do not linger in the files.
//!
//! Decisions and their audit log ([`decisions`]) are written on each change, in their own
//! transaction, before the change is applied in memory. Alerts and the detection engine's
//! baselines ([`alerts`]) are written as alerts change and on a timer.

pub mod alerts;
pub mod decisions;
pub mod load;
pub mod lock;
pub mod persisted;
pub mod save;

use lock::DataDir;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "plumbline.db";

/// Why the store could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data directory {dir} is in use by a running collector (or another plumbline command); \
         use --server URL to reach a running collector"
    )]
    Locked { dir: PathBuf },
    #[error("data directory {dir} does not exist")]
    Missing { dir: PathBuf },
    #[error("data directory {dir} is not a directory")]
    NotADirectory { dir: PathBuf },
    #[error(
        "{dir} is not a Plumbline data directory (it has no {DB_FILE}); \
         `plumbline serve --data DIR` or `plumbline ingest --data DIR` makes one"
    )]
    NotPlumbline { dir: PathBuf },
    #[error(
        "the database {file} is empty (0 bytes), as if cut short; restore a copy, or remove it \
         and let `plumbline serve` or `plumbline ingest` start afresh"
    )]
    Empty { file: PathBuf },
    #[error("cannot use data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "cannot open the database {file} (if it is damaged, restore a copy or move it aside to \
         start afresh): {source}"
    )]
    Open {
        file: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database holds an invalid {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
    #[error("database schema version {found} is newer than this collector's ({supported})")]
    Schema { found: i64, supported: i64 },
}

/// 1: inventory, consumers, filters. 2: decisions and the audit log. 3: alerts and baselines.
/// 4: per-consumer counts of enforced requests. 5: throttle rates per hour (were per second).
const SCHEMA_VERSION: i64 = 5;

/// A column added to a table that existed before: the version that added it, the table, the
/// column and its definition.
struct AddedColumn {
    version: i64,
    table: &'static str,
    column: &'static str,
    definition: &'static str,
}

const ADDED_COLUMNS: &[AddedColumn] = &[
    AddedColumn {
        version: 4,
        table: "consumers",
        column: "blocked",
        definition: "INTEGER NOT NULL DEFAULT 0",
    },
    AddedColumn {
        version: 4,
        table: "consumers",
        column: "throttled",
        definition: "INTEGER NOT NULL DEFAULT 0",
    },
    AddedColumn {
        version: 4,
        table: "consumers",
        column: "would_block",
        definition: "INTEGER NOT NULL DEFAULT 0",
    },
    AddedColumn {
        version: 5,
        table: "decisions",
        column: "per_hour",
        definition: "INTEGER",
    },
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    idx INTEGER PRIMARY KEY, host TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    calls INTEGER NOT NULL, s2xx INTEGER NOT NULL, s3xx INTEGER NOT NULL,
    s4xx INTEGER NOT NULL, s5xx INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS consumers (
    idx INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, label TEXT, calls INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    blocked INTEGER NOT NULL DEFAULT 0, throttled INTEGER NOT NULL DEFAULT 0,
    would_block INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS endpoint_consumers (
    endpoint INTEGER NOT NULL, consumer INTEGER NOT NULL,
    PRIMARY KEY (endpoint, consumer)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS filters (
    node TEXT NOT NULL, instance TEXT NOT NULL, last_batch_ms INTEGER NOT NULL,
    records INTEGER NOT NULL, dropped INTEGER NOT NULL, batches INTEGER NOT NULL,
    seq_next INTEGER NOT NULL, seq_seen INTEGER NOT NULL,
    PRIMARY KEY (node, instance));
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, subject TEXT NOT NULL UNIQUE, action TEXT NOT NULL,
    status INTEGER NOT NULL, per_hour INTEGER, burst INTEGER, reason TEXT NOT NULL,
    created_by TEXT NOT NULL, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, who TEXT NOT NULL,
    action TEXT NOT NULL, version INTEGER NOT NULL, decision TEXT, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, consumer TEXT NOT NULL, detector TEXT NOT NULL,
    severity TEXT NOT NULL, score REAL NOT NULL, confidence REAL NOT NULL,
    status TEXT NOT NULL, evidence TEXT NOT NULL, windows INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
    resolved_ms INTEGER);
CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, id);
CREATE TABLE IF NOT EXISTS baselines (
    id INTEGER PRIMARY KEY CHECK (id = 1), snapshot BLOB NOT NULL, window_ms INTEGER NOT NULL,
    id_base INTEGER NOT NULL, taken_ms INTEGER NOT NULL);
";

/// The open database of a held data directory.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    dir: DataDir,
    /// A write failed: the next save rewrites everything.
    resync: bool,
}

impl Store {
    /// Holds the data directory (created when `create`) and opens its database; without
    /// `create`, a directory without a database is refused and left untouched, and an empty
    /// database file is refused either way.
    pub fn open(path: &Path, create: bool) -> Result<Store, StoreError> {
        if !create && path.is_dir() && !path.join(DB_FILE).exists() {
            return Err(StoreError::NotPlumbline {
                dir: path.to_path_buf(),
            });
        }
        let dir = DataDir::acquire(path, create)?;
        let file = path.join(DB_FILE);
        // SQLite takes an empty file for a new database and would write one into it, hiding
        // that the old one was cut short.
        if std::fs::metadata(&file).is_ok_and(|m| m.len() == 0) {
            return Err(StoreError::Empty { file });
        }
        let named = |source| StoreError::Open {
            file: file.clone(),
            source,
        };
        let conn = Connection::open(&file).map_err(named)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;",
        )
        .map_err(named)?;
        conn.execute_batch(SCHEMA).map_err(named)?;
        check_version(&conn).map_err(|err| match err {
            StoreError::Sqlite(source) => named(source),
            other => other,
        })?;
        Ok(Store {
            conn,
            dir,
            resync: false,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Checkpoints the WAL into the database and closes it.
    pub fn close(self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        self.conn.close().map_err(|(_, e)| StoreError::Sqlite(e))
    }
}

fn check_version(conn: &Connection) -> Result<(), StoreError> {
    let found: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
            r.get(0)
        })
        .ok();
    match found {
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::Schema {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        _ => {
            // A new database, or one of an older schema whose new tables were just created
            // and whose older tables get the columns added since.
            if let Some(old) = found {
                migrate(conn, old)?;
            }
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?1)",
                [SCHEMA_VERSION],
            )?;
            Ok(())
        }
    }
}

/// Brings a database of schema `old` to this one: the columns added since (to the tables that
/// existed before; the others were just created whole), and throttle rates per hour.
fn migrate(conn: &Connection, old: i64) -> Result<(), StoreError> {
    for added in ADDED_COLUMNS.iter().filter(|a| a.version > old) {
        if !has_column(conn, added.table, added.column)? {
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                added.table, added.column, added.definition
            ))?;
        }
    }
    if old < 5 && has_column(conn, "decisions", "per_second")? {
        conn.execute_batch(
            "UPDATE decisions SET per_hour = per_second * 3600 \
             WHERE per_hour IS NULL AND per_second IS NOT NULL",
        )?;
    }
    Ok(())
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )?;
    Ok(count > 0)
}

/// u64 counters and times as SQLite integers (which are i64), clamped.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// SQLite integers back to u64; negative values (never written) read as 0.
fn uint(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests;
