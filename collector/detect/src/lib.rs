//! Plumbline's behavioural baselines and abuse detectors.
//!
//! This crate owns how each consumer normally uses the API (per consumer and per consumer ×
//! endpoint, learned online in bounded memory) and the eight detectors that compare each
//! closed time window with that baseline and with peers, raising one alert per consumer ×
//! detector episode with evidence. It is pure: no I/O, no clock, no threads. Time comes in
//! with each [`Observation`] and each [`Engine::tick`], so replaying a log gives the same
//! alerts as seeing it live. State snapshots to bytes so baselines survive a restart.
//!
//! # Wiring it into the collector
//!
//! - Build one [`Engine`] per collector from a [`Config`] ([`Config::default`]: 7 days of
//!   learning, 1-hour windows; [`Config::demo`] for short demos and tests).
//! - For every ingested record that has a consumer, after path templating, build an
//!   [`Observation`] and call [`Engine::observe`], records in roughly increasing time order
//!   (older ones are counted into the open window and in [`Stats::late`]). Hash the ID values
//!   the template replaced with [`object_hash`], pass the number from [`object_number`] for
//!   sequential-walk detection, and hash the user agent with [`stable_hash`].
//! - Call [`Engine::tick`] with the records' time scale after each ingested batch (the latest
//!   record time) and on a timer when live (wall clock). It closes every window that has
//!   ended and returns [`AlertUpdate`]s: upsert each by `alert.id` (opened, updated,
//!   acknowledged, resolved); the [`Alert`] serialises to the JSON the API serves.
//! - [`Engine::acknowledge`] marks an open alert; resolved alerts live only in the store.
//! - [`Engine::snapshot`] gives all state as bytes (postcard); store it periodically and at
//!   shutdown, and start with [`Engine::restore`]. [`Engine::memory_bytes`] and
//!   [`Engine::stats`] are for `/metrics`.
//!
//! ```
//! use plumbline_detect::{object_hash, Config, Engine, Observation};
//! use plumbline_wire::ConsumerId;
//!
//! let mut engine = Engine::new(Config::default()).expect("valid config");
//! let obs = Observation {
//!     time_ms: 1_772_409_600_000,
//!     consumer: ConsumerId([7; 16]),
//!     endpoint: 3,
//!     endpoint_path: "GET /v1/orders/{id}",
//!     object: Some(object_hash(["12345"])),
//!     object_number: Some(12_345),
//!     status: 200,
//!     response_bytes: 1_800,
//!     client: None,
//!     user_agent: 0,
//!     weight: 1,
//!     sensitive: false,
//! };
//! engine.observe(&obs);
//! for update in engine.tick(obs.time_ms + 3_600_000) {
//!     println!("{:?} {}", update.change, update.alert.detector);
//! }
//! let restored = Engine::restore(Config::default(), &engine.snapshot()).expect("snapshot");
//! assert_eq!(restored.stats(), engine.stats());
//! ```
//!
//! [`scenario`] generates labelled traffic for the evaluation and [`evaluation`] scores the
//! alerts it raised; the collector's `eval-detect` runs it through the real ingest pipeline.

pub mod alert;
mod baseline;
pub mod config;
mod detectors;
pub mod engine;
mod episode;
pub mod evaluation;
pub mod observation;
mod peers;
pub mod scenario;

pub use alert::{Alert, AlertStatus, AlertUpdate, Change, Detector, Evidence, Severity};
pub use config::{Config, ConfigError, DetectorConfig};
pub use engine::{Engine, RestoreError, Stats};
pub use observation::{object_hash, object_number, stable_hash, Observation};
