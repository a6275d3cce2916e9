//! Partner traffic for `make demo`, built from GitHub's REST API description.
//!
//! [`spec`] reads the description and selects GET operations whose paths an inventory learned
//! from traffic can tell apart; [`values`] makes realistic path parameter values; [`plan`]
//! builds the consumer population and the list of requests; [`abuse`] turns three of the
//! consumers abusive for the demo's abuse phase. The `demo-traffic` binary sends them through
//! Envoy.

pub mod abuse;
pub mod plan;
pub mod spec;
pub mod values;

pub use abuse::{AbuseKind, Abuser};
pub use plan::{consumers, requests, Consumer, PlannedRequest};
pub use spec::{get_operations, select, Operation, Segment};
pub use values::{NamePool, ValueKind};
