//! Plumbline's behavioural baselines and abuse detectors.
//!
//! This crate owns how each consumer normally uses the API (per consumer and per consumer ×
//! endpoint, learned online in bounded memory) and the eight detectors that compare each
//! closed time window with that baseline and with peers, raising one alert per consumer ×
//! detector episode with evidence. It is pure: no I/O, no clock, no threads. Time comes in
//! with each [`Observation`] and each [`Engine::tick`], so replaying a log gives the same
//! alerts as seeing it live. State snapshots to bytes so baselines survive a restart.
//!
//! The collector builds an [`Observation`] per ingested record after path templating, calls
//! [`Engine::observe`], and calls [`Engine::tick`] on a timer and after ingest; it stores and
//! serves the [`AlertUpdate`]s that come back. [`scenario`] generates labelled traffic for the
//! evaluation (`eval-detect`).

pub mod alert;
mod baseline;
pub mod config;
mod detectors;
pub mod engine;
mod episode;
pub mod observation;
mod peers;
pub mod scenario;

pub use alert::{Alert, AlertStatus, AlertUpdate, Change, Detector, Evidence, Severity};
pub use config::{Config, ConfigError};
pub use engine::{Engine, RestoreError, Stats};
pub use observation::{object_hash, object_number, stable_hash, Observation};
