//! Writing what changed since the last save, in one transaction. After a failed write the
//! next save rewrites every row, so a transient error loses nothing that is still in memory.

use super::{int, Store, StoreError};
use crate::consumers::Consumers;
use crate::filters::Filter;
use crate::inventory::endpoint::{ConsumerIdx, Endpoint, EndpointIdx};
use crate::pipeline::Pipeline;
use rusqlite::{params, Transaction};

impl Store {
    /// Writes the pipeline's changes; on error, the next call writes everything.
    pub fn save(&mut self, pipeline: &mut Pipeline) -> Result<(), StoreError> {
        let result = if self.resync {
            self.write_all(pipeline)
        } else {
            self.write_changes(pipeline)
        };
        self.resync = result.is_err();
        result
    }

    fn write_changes(&mut self, pipeline: &mut Pipeline) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let changes = pipeline.inventory.endpoints_mut().take_changes();
        let merged = !changes.removed.is_empty();
        for idx in &changes.removed {
            delete_endpoint(&tx, *idx)?;
        }
        for idx in &changes.dirty {
            if let Some(endpoint) = changes.table.get(*idx) {
                put_endpoint(&tx, *idx, endpoint)?;
            }
        }
        for (endpoint, consumer) in &changes.pairs {
            put_pair(&tx, *endpoint, *consumer)?;
        }
        for idx in pipeline.consumers.take_dirty() {
            put_consumer(&tx, &pipeline.consumers, idx)?;
        }
        let (changed, forgotten) = pipeline.filters.take_changes();
        for filter in changed {
            put_filter(&tx, filter)?;
        }
        for (node, instance) in forgotten {
            let instance = format!("{instance:016x}");
            let sql = "DELETE FROM filters WHERE node = ?1 AND instance = ?2";
            tx.prepare_cached(sql)?.execute(params![node, instance])?;
        }
        tx.commit()?;
        if merged {
            self.conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        Ok(())
    }

    fn write_all(&mut self, pipeline: &mut Pipeline) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute_batch(
            "DELETE FROM endpoints; DELETE FROM endpoint_consumers; \
             DELETE FROM consumers; DELETE FROM filters;",
        )?;
        let table = pipeline.inventory.endpoints();
        for (idx, endpoint) in table.iter() {
            put_endpoint(&tx, idx, endpoint)?;
            for consumer in &endpoint.consumers {
                put_pair(&tx, idx, *consumer)?;
            }
        }
        for (idx, _) in pipeline.consumers.iter() {
            put_consumer(&tx, &pipeline.consumers, idx)?;
        }
        for filter in pipeline.filters.iter() {
            put_filter(&tx, filter)?;
        }
        tx.commit()?;
        drop(pipeline.inventory.endpoints_mut().take_changes());
        pipeline.consumers.take_dirty();
        pipeline.filters.take_changes();
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(())
    }
}

fn delete_endpoint(tx: &Transaction<'_>, idx: EndpointIdx) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM endpoints WHERE idx = ?1")?
        .execute([idx])?;
    tx.prepare_cached("DELETE FROM endpoint_consumers WHERE endpoint = ?1")?
        .execute([idx])?;
    Ok(())
}

fn put_endpoint(tx: &Transaction<'_>, idx: EndpointIdx, e: &Endpoint) -> Result<(), StoreError> {
    let sql = "INSERT OR REPLACE INTO endpoints (idx, host, method, path, calls, s2xx, s3xx, \
               s4xx, s5xx, first_seen_ms, last_seen_ms) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    let [s2, s3, s4, s5] = e.status.0.map(int);
    tx.prepare_cached(sql)?.execute(params![
        idx,
        &*e.host,
        &*e.method,
        e.path,
        int(e.calls),
        s2,
        s3,
        s4,
        s5,
        int(e.first_seen_ms),
        int(e.last_seen_ms),
    ])?;
    Ok(())
}

fn put_pair(tx: &Transaction<'_>, e: EndpointIdx, c: ConsumerIdx) -> Result<(), StoreError> {
    let sql = "INSERT OR IGNORE INTO endpoint_consumers (endpoint, consumer) VALUES (?1, ?2)";
    tx.prepare_cached(sql)?.execute([e, c])?;
    Ok(())
}

fn put_consumer(tx: &Transaction<'_>, all: &Consumers, idx: ConsumerIdx) -> Result<(), StoreError> {
    let Some(c) = all.get(idx) else {
        return Ok(());
    };
    let sql = "INSERT OR REPLACE INTO consumers (idx, id, label, calls, first_seen_ms, \
               last_seen_ms, blocked, throttled, would_block) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    tx.prepare_cached(sql)?.execute(params![
        idx,
        c.id.to_string(),
        c.label.as_deref(),
        int(c.calls),
        int(c.first_seen_ms),
        int(c.last_seen_ms),
        int(c.enforced.blocked),
        int(c.enforced.throttled),
        int(c.enforced.would_block),
    ])?;
    Ok(())
}

fn put_filter(tx: &Transaction<'_>, f: &Filter) -> Result<(), StoreError> {
    let sql = "INSERT OR REPLACE INTO filters (node, instance, last_batch_ms, records, dropped, \
               batches, seq_next, seq_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    tx.prepare_cached(sql)?.execute(params![
        f.node,
        format!("{:016x}", f.instance),
        int(f.last_batch_ms),
        int(f.records),
        int(f.dropped),
        int(f.batches),
        f.window.next as i64,
        f.window.seen as i64,
    ])?;
    Ok(())
}
