//! The JSON shapes of alerts: `GET /v1/alerts`, the reply of `POST /v1/alerts/{id}/ack`, the
//! lines of the JSON-lines file and the webhook's bodies. Times are RFC 3339 in UTC.
//!
//! `first_seen` is the start of the window that opened the alert and `last_seen` the end of
//! the latest window that showed the behaviour, so together they bound the episode.

use crate::api::views::rfc3339;
use plumbline_detect::{AlertStatus, Change, Detector, Evidence, Severity};
use serde::{Deserialize, Serialize};

/// `GET /v1/alerts`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsView {
    pub alerts: Vec<AlertView>,
}

/// One alert as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: u64,
    /// The consumer id: 32 hex digits of the keyed hash.
    pub consumer: String,
    /// The consumer's readable label, when one was seen.
    pub label: Option<String>,
    pub detector: Detector,
    pub severity: Severity,
    /// Highest window score of the episode (compares within one detector).
    pub score: f64,
    /// 0..1: how much history the consumer's baseline had when the alert opened.
    pub confidence: f64,
    pub status: AlertStatus,
    /// Windows of the episode that showed the behaviour.
    pub windows: u32,
    pub evidence: EvidenceView,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

/// Why the alert was raised, from the window with the highest score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceView {
    /// The feature that moved, like `distinct_objects_per_window`.
    pub feature: String,
    /// What the consumer's baseline expected for that window.
    pub baseline: f64,
    /// What the window showed.
    pub current: f64,
    /// The typical value among consumers of the same endpoints, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<f64>,
    pub window_start: String,
    pub window_end: String,
    /// Up to three endpoints that carried the change, like `GET /v1/orders/{id}`.
    pub endpoints: Vec<String>,
    /// One sentence for a person.
    pub summary: String,
}

impl EvidenceView {
    pub fn of(e: &Evidence) -> Self {
        EvidenceView {
            feature: e.feature.clone(),
            baseline: e.baseline,
            current: e.current,
            peers: e.peers,
            window_start: rfc3339(e.window_start_ms),
            window_end: rfc3339(e.window_end_ms),
            endpoints: e.endpoints.clone(),
            summary: e.summary.clone(),
        }
    }
}

/// One line of the JSON-lines file, one webhook body: what happened and the alert after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub change: Change,
    pub alert: AlertView,
}

/// Scores as shown: three decimals are plenty.
pub fn round_score(score: f64) -> f64 {
    (score * 1_000.0).round() / 1_000.0
}
