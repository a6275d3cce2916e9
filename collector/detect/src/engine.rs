//! The detection engine: takes observations, closes windows as time passes, scores each
//! consumer's window against its baseline and peers, runs episodes, and hands back alert
//! updates. Owns all detection state, its snapshot and its memory accounting.

use crate::alert::{Alert, AlertUpdate};
use crate::config::{Config, ConfigError};
use crate::observation::Observation;
use serde::{Deserialize, Serialize};

/// Counters an operator can export as metrics.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub consumers: u64,
    pub observations: u64,
    /// Observations of consumers past `max_consumers`, not tracked.
    pub dropped_consumers: u64,
    /// Observations older than the open window, counted into it.
    pub late: u64,
    pub windows_closed: u64,
    /// Windows skipped after a jump in time (see `max_catch_up_windows`).
    pub windows_skipped: u64,
}

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot is not valid: {0}")]
    Malformed(String),
    #[error("snapshot format {found} is not supported (this engine reads format {supported})")]
    Format { found: u16, supported: u16 },
    #[error("snapshot was taken with {snapshot} ms windows but the config says {config} ms")]
    Window { snapshot: u64, config: u64 },
    #[error("config is invalid: {0}")]
    Config(#[from] ConfigError),
}

/// Baselines, open episodes and the current window of every consumer.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Config,
    stats: Stats,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            stats: Stats::default(),
        })
    }

    pub fn observe(&mut self, _obs: &Observation<'_>) {
        self.stats.observations += 1;
    }

    pub fn tick(&mut self, _now_ms: u64) -> Vec<AlertUpdate> {
        Vec::new()
    }

    pub fn open_alerts(&self) -> impl Iterator<Item = &Alert> {
        std::iter::empty()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }

    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Engine>()
    }
}
