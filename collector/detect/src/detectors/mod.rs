//! The eight detectors. Each compares one closed window of one consumer with that consumer's
//! baseline (and, where it helps, its peers) and returns a [`Signal`]: a z-like score and the
//! evidence behind it. Detectors hold no state and decide nothing about alerts; the engine
//! runs the episodes.

pub mod credential_sharing;
pub mod endpoint_mix_drift;
pub mod enumeration;
pub mod error_probing;
pub mod exfiltration;
pub mod first_use;
pub mod off_hours;
pub mod volume_surge;

#[cfg(test)]
pub(crate) mod testkit;

use crate::alert::{Detector, Severity};
use crate::baseline::stats::count_score;
use crate::baseline::{ConsumerState, Features, Window};
use crate::config::Config;
use crate::peers::EndpointTable;

/// What a detector needs besides the consumer.
pub struct Context<'a> {
    pub window: &'a Window,
    pub config: &'a Config,
    pub table: &'a EndpointTable,
}

/// One detector's finding about one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub detector: Detector,
    /// z-like: standard deviations of the consumer's own noise above its baseline.
    pub score: f64,
    pub feature: &'static str,
    pub baseline: f64,
    pub current: f64,
    pub peers: Option<f64>,
    /// Endpoint ids that carried the change, most telling first (at most three).
    pub endpoints: Vec<u32>,
    pub summary: String,
    /// Set when the detector knows better than the score (e.g. a sensitive first use).
    pub severity: Option<Severity>,
}

/// Every enabled detector's signal for the window, when it passes its gates.
pub fn score_all(ctx: &Context<'_>, c: &ConsumerState, f: &Features) -> Vec<Signal> {
    let mut signals = Vec::new();
    for detector in Detector::ALL {
        if !ctx.config.detector(detector).enabled {
            continue;
        }
        let signal = match detector {
            Detector::Enumeration => enumeration::score(ctx, c),
            Detector::VolumeSurge => volume_surge::score(ctx, c, f),
            Detector::EndpointMixDrift => endpoint_mix_drift::score(ctx, c, f),
            Detector::CredentialSharing => credential_sharing::score(ctx, c, f),
            Detector::ErrorProbing => error_probing::score(ctx, c, f),
            Detector::Exfiltration => exfiltration::score(ctx, c, f),
            Detector::OffHours => off_hours::score(ctx, c, f),
            Detector::FirstUse => first_use::score(ctx, c),
        };
        signals.extend(signal);
    }
    signals
}

/// Passes the detector's ratio and excess gates.
pub(crate) fn gates(ctx: &Context<'_>, detector: Detector, current: f64, baseline: f64) -> bool {
    let c = ctx.config.detector(detector);
    current >= c.min_ratio * baseline && current - baseline >= c.min_excess
}

/// The score of a count detector: the window alone and the window with the recent evidence
/// (`recent`: seen and expected), each counted only when it passes the gates.
pub(crate) fn count_signal(
    ctx: &Context<'_>,
    detector: Detector,
    now: (f64, f64),
    recent: (f64, f64),
    phi: f64,
) -> Option<f64> {
    let mut best: Option<f64> = None;
    for (seen, expected) in [now, recent] {
        if gates(ctx, detector, seen, expected) {
            let score = count_score(seen, expected, phi);
            best = Some(best.map_or(score, |b: f64| b.max(score)));
        }
    }
    best
}

/// Up to three endpoint ids ordered by a measure, largest first, keeping positive ones.
pub(crate) fn top_endpoints(mut scored: Vec<(u32, f64)>) -> Vec<u32> {
    scored.retain(|(_, s)| *s > 0.0);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(3).map(|(e, _)| e).collect()
}

/// A number for a sentence: no decimals when large.
pub(crate) fn show(x: f64) -> String {
    if x >= 100.0 || x == x.round() {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}
