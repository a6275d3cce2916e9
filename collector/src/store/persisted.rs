//! The pipeline bound to its store: every batch applied in memory is written before it is
//! acknowledged, so an acknowledged batch survives a crash of the process. Used by the server
//! and by the offline CLI alike.

use super::{Store, StoreError};
use crate::pipeline::{Outcome, Pipeline, Settings};
use plumbline_wire::Batch;
use std::path::Path;

/// In-memory state and the store it is saved to.
#[derive(Debug)]
pub struct Persisted {
    pub pipeline: Pipeline,
    store: Store,
}

impl Persisted {
    /// Holds the data directory (created when `create`) and loads its state.
    pub fn open(dir: &Path, create: bool, settings: Settings) -> Result<Persisted, StoreError> {
        let store = Store::open(dir, create)?;
        let pipeline = store.load(settings)?;
        Ok(Persisted { pipeline, store })
    }

    /// A filter's batch, applied and saved; a duplicate changes nothing.
    pub fn apply_batch(&mut self, batch: &Batch, now_ms: u64) -> Result<Outcome, StoreError> {
        let outcome = self.pipeline.apply_batch(batch, now_ms);
        if !outcome.duplicate {
            self.store.save(&mut self.pipeline)?;
        }
        Ok(outcome)
    }

    /// Records parsed from a log file, applied and saved.
    pub fn apply_records(&mut self, batch: &Batch) -> Result<Outcome, StoreError> {
        let outcome = self.pipeline.apply_records(batch);
        self.store.save(&mut self.pipeline)?;
        Ok(outcome)
    }

    /// Saves what is left and closes the database.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.store.save(&mut self.pipeline)?;
        self.store.close()
    }
}
