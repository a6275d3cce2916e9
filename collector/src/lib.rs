//! Plumbline's collector: receives record batches from filters (and records parsed from access
//! logs), builds the inventory of endpoints and the profile of each consumer, keeps them in an
//! embedded SQLite database, keeps the decisions (block, throttle) that filters enforce, and
//! serves all of it over an HTTP API and a CLI.
//!
//! One module per stage: [`ingest`] (batches and log files), [`inventory`], [`consumers`],
//! [`filters`] (reporting filter instances), [`pipeline`] (a batch through all of them),
//! [`detect`] (behavioural baselines and alerts, with the `plumbline-detect` engine),
//! [`decide`] (decisions, their versioned set for filters, the policy and the audit log),
//! [`store`] (SQLite), [`api`] (HTTP), [`cli`] and [`config`].

pub mod api;
pub mod cli;
pub mod config;
pub mod consumers;
pub mod decide;
pub mod detect;
pub mod filters;
pub mod ingest;
pub mod inventory;
pub mod pipeline;
pub mod store;
