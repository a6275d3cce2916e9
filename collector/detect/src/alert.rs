//! Alerts: what a detector reports about one consumer, with the evidence an operator needs to
//! judge it, and the updates the engine hands to the collector as an episode opens, goes on and
//! ends.
//!
//! This module owns the alert types and their serde form (the collector serves them as JSON and
//! stores them); it does not decide when an alert opens (see `episode`).

use plumbline_wire::ConsumerId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The eight detectors. The serde name (snake_case) is the one used in alerts and the API.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// Far more distinct objects on an endpoint than the consumer's baseline, or an ID walk.
    Enumeration,
    /// Request volume far above the consumer's seasonal baseline (scraping).
    VolumeSurge,
    /// The consumer suddenly uses a different set or share of endpoints.
    EndpointMixDrift,
    /// One consumer's credentials used from many new origins at once.
    CredentialSharing,
    /// A surge of 401/403/404 answers (guessing IDs, trying forbidden functions).
    ErrorProbing,
    /// Response bytes per request far above the consumer's baseline for the same endpoints.
    Exfiltration,
    /// Activity at hours of the week when this consumer is normally quiet.
    OffHours,
    /// First call by this consumer to a sensitive or rarely used endpoint.
    FirstUse,
}

impl Detector {
    pub const ALL: [Detector; 8] = [
        Detector::Enumeration,
        Detector::VolumeSurge,
        Detector::EndpointMixDrift,
        Detector::CredentialSharing,
        Detector::ErrorProbing,
        Detector::Exfiltration,
        Detector::OffHours,
        Detector::FirstUse,
    ];

    /// The snake_case name used in alerts, the API and logs.
    pub fn name(self) -> &'static str {
        match self {
            Detector::Enumeration => "enumeration",
            Detector::VolumeSurge => "volume_surge",
            Detector::EndpointMixDrift => "endpoint_mix_drift",
            Detector::CredentialSharing => "credential_sharing",
            Detector::ErrorProbing => "error_probing",
            Detector::Exfiltration => "exfiltration",
            Detector::OffHours => "off_hours",
            Detector::FirstUse => "first_use",
        }
    }

    /// Position in [`Detector::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The detector with this name, if any.
    pub fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The episode is going on and nobody has looked at it.
    Open,
    /// An operator acknowledged it; it still updates and resolves on its own.
    Acknowledged,
    /// The behaviour went back to baseline.
    Resolved,
}

/// Why an alert was raised: which feature moved, from what to what, in which window.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The feature that moved, e.g. `distinct_objects_per_window`.
    pub feature: String,
    /// What this consumer's baseline expected for that window.
    pub baseline: f64,
    /// What the window showed.
    pub current: f64,
    /// The typical value among peers (consumers of the same endpoints), when known.
    pub peers: Option<f64>,
    /// Window the values describe (Unix ms, end exclusive).
    pub window_start_ms: u64,
    pub window_end_ms: u64,
    /// Up to three endpoint templates that carried the change.
    pub endpoints: Vec<String>,
    /// One sentence for a person.
    pub summary: String,
}

/// One consumer × detector episode.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unique within an engine (and kept across snapshot/restore).
    pub id: u64,
    #[serde(with = "consumer_hex")]
    pub consumer: ConsumerId,
    pub detector: Detector,
    pub severity: Severity,
    /// Highest window score of the episode; scores compare within one detector.
    pub score: f64,
    /// 0..1: how much history the consumer's baseline had when the alert opened.
    pub confidence: f64,
    pub status: AlertStatus,
    /// End of the window that opened the episode (Unix ms).
    pub opened_ms: u64,
    /// End of the latest window that showed the behaviour.
    pub last_seen_ms: u64,
    pub resolved_ms: Option<u64>,
    /// Windows of the episode that showed the behaviour.
    pub windows: u32,
    /// Evidence from the window with the highest score.
    pub evidence: Evidence,
}

/// What happened to an alert.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Opened,
    Updated,
    Acknowledged,
    Resolved,
}

/// An alert as it is after a change; the collector upserts by `alert.id`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AlertUpdate {
    pub change: Change,
    pub alert: Alert,
}

/// Consumer ids as 32 hex digits in JSON, like everywhere else in the API.
mod consumer_hex {
    use plumbline_wire::ConsumerId;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &ConsumerId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ConsumerId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_names_round_trip() {
        for detector in Detector::ALL {
            assert_eq!(Detector::from_name(detector.name()), Some(detector));
            assert_eq!(Detector::ALL[detector.index()], detector);
        }
    }

    #[test]
    fn alert_round_trips_through_postcard_with_a_hex_consumer() {
        let alert = Alert {
            id: 7,
            consumer: ConsumerId([0xab; 16]),
            detector: Detector::ErrorProbing,
            severity: Severity::High,
            score: 9.5,
            confidence: 0.8,
            status: AlertStatus::Open,
            opened_ms: 1,
            last_seen_ms: 2,
            resolved_ms: None,
            windows: 1,
            evidence: Evidence {
                feature: "probe_errors_per_window".into(),
                baseline: 1.0,
                current: 40.0,
                peers: None,
                window_start_ms: 0,
                window_end_ms: 2,
                endpoints: vec!["GET /v1/orders/{id}".into()],
                summary: "40 errors".into(),
            },
        };
        let bytes = postcard::to_allocvec(&alert).unwrap();
        let back: Alert = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, alert);
    }
}
