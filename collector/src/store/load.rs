//! Reading the whole state back at start: consumers, endpoints (their templates rebuild the
//! path trees), which consumer used which endpoint, and the filter instances with their
//! sequence windows. Evidence behind the parameter rules is not stored and starts afresh.

use super::{uint, Store, StoreError};
use crate::consumers::Consumer;
use crate::filters::{Filter, SeqWindow};
use crate::inventory::endpoint::{Endpoint, StatusCounts};
use crate::pipeline::{Pipeline, Settings};
use hashbrown::HashMap;
use plumbline_wire::ConsumerId;
use rusqlite::Row;

impl Store {
    /// A pipeline holding everything the database holds.
    pub fn load(&self, settings: Settings) -> Result<Pipeline, StoreError> {
        let mut pipeline = Pipeline::new(settings);
        let consumers = self.load_consumers(&mut pipeline)?;
        self.load_endpoints(&mut pipeline)?;
        pipeline.inventory.finish_restore();
        self.load_pairs(&mut pipeline, &consumers)?;
        self.load_filters(&mut pipeline)?;
        Ok(pipeline)
    }

    /// Loads consumers; answers the map from stored index to in-memory index.
    fn load_consumers(&self, pipeline: &mut Pipeline) -> Result<HashMap<u32, u32>, StoreError> {
        let sql = "SELECT idx, id, label, calls, first_seen_ms, last_seen_ms, blocked, \
                   throttled, would_block FROM consumers ORDER BY idx";
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let mut map = HashMap::new();
        while let Some(row) = rows.next()? {
            let stored: u32 = row.get(0)?;
            let consumer = consumer_from(row)?;
            map.insert(stored, pipeline.consumers.restore(consumer));
        }
        Ok(map)
    }

    fn load_endpoints(&self, pipeline: &mut Pipeline) -> Result<(), StoreError> {
        let sql = "SELECT idx, host, method, path, calls, s2xx, s3xx, s4xx, s5xx, \
                   first_seen_ms, last_seen_ms FROM endpoints ORDER BY idx";
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let idx: u32 = row.get(0)?;
            pipeline.inventory.restore(idx, endpoint_from(row)?);
        }
        Ok(())
    }

    fn load_pairs(
        &self,
        p: &mut Pipeline,
        consumers: &HashMap<u32, u32>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT endpoint, consumer FROM endpoint_consumers")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (endpoint, stored): (u32, u32) = (row.get(0)?, row.get(1)?);
            let Some(consumer) = consumers.get(&stored) else {
                continue;
            };
            if p.inventory
                .endpoints_mut()
                .restore_pair(endpoint, *consumer)
            {
                p.consumers.restore_endpoint(*consumer);
            }
        }
        Ok(())
    }

    fn load_filters(&self, pipeline: &mut Pipeline) -> Result<(), StoreError> {
        let sql = "SELECT node, instance, last_batch_ms, records, dropped, batches, seq_next, \
                   seq_seen FROM filters";
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            pipeline.filters.restore(filter_from(row)?);
        }
        Ok(())
    }
}

fn consumer_from(row: &Row<'_>) -> Result<Consumer, StoreError> {
    let id: String = row.get(1)?;
    let parsed: ConsumerId = id.parse().map_err(|_| StoreError::Corrupt {
        what: "consumer id",
        value: id.clone(),
    })?;
    let mut consumer = Consumer::new(parsed);
    consumer.label = row.get::<_, Option<String>>(2)?.map(String::into_boxed_str);
    consumer.calls = uint(row.get(3)?);
    consumer.first_seen_ms = uint(row.get(4)?);
    consumer.last_seen_ms = uint(row.get(5)?);
    consumer.enforced.blocked = uint(row.get(6)?);
    consumer.enforced.throttled = uint(row.get(7)?);
    consumer.enforced.would_block = uint(row.get(8)?);
    Ok(consumer)
}

fn endpoint_from(row: &Row<'_>) -> Result<Endpoint, StoreError> {
    let (host, method, path): (String, String, String) = (row.get(1)?, row.get(2)?, row.get(3)?);
    let mut endpoint = Endpoint::new(&host, &method, path);
    endpoint.calls = uint(row.get(4)?);
    let mut status = [0u64; 4];
    for (i, class) in status.iter_mut().enumerate() {
        *class = uint(row.get(5 + i)?);
    }
    endpoint.status = StatusCounts(status);
    endpoint.first_seen_ms = uint(row.get(9)?);
    endpoint.last_seen_ms = uint(row.get(10)?);
    Ok(endpoint)
}

fn filter_from(row: &Row<'_>) -> Result<Filter, StoreError> {
    let (node, instance): (String, String) = (row.get(0)?, row.get(1)?);
    let parsed = u64::from_str_radix(&instance, 16).map_err(|_| StoreError::Corrupt {
        what: "filter instance",
        value: instance.clone(),
    })?;
    let mut filter = Filter::new(&node, parsed);
    filter.last_batch_ms = uint(row.get(2)?);
    filter.records = uint(row.get(3)?);
    filter.dropped = uint(row.get(4)?);
    filter.batches = uint(row.get(5)?);
    filter.window = SeqWindow {
        next: row.get::<_, i64>(6)? as u64,
        seen: row.get::<_, i64>(7)? as u64,
    };
    Ok(filter)
}
