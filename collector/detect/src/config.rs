//! Settings of the detection engine: learning period, window length, caps on what grows, and
//! each detector's thresholds. Defaults suit production (7 days of learning, 1-hour windows);
//! [`Config::demo`] shortens both for demos and tests.

use crate::alert::Detector;
use serde::{Deserialize, Serialize};

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// Thresholds of one detector.
///
/// A window's score is on a z-like scale (standard deviations of the consumer's own noise).
/// An episode opens when one window scores at least `open`, or when windows scoring above
/// `sustain` add up (each counts its excess over `sustain`) to at least `sustain_total`; it
/// stays open while windows score at least `sustain`, and resolves after
/// [`Config::resolve_after_windows`] windows below it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    pub enabled: bool,
    pub open: f64,
    pub sustain: f64,
    pub sustain_total: f64,
    /// The current value must be at least this multiple of the baseline.
    pub min_ratio: f64,
    /// ... and exceed it by at least this much (in the feature's unit).
    pub min_excess: f64,
}

impl DetectorConfig {
    const fn new(open: f64, sustain: f64, sustain_total: f64, ratio: f64, excess: f64) -> Self {
        DetectorConfig {
            enabled: true,
            open,
            sustain,
            sustain_total,
            min_ratio: ratio,
            min_excess: excess,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Config {
    /// A consumer is only learned, not scored, for this long after its first request.
    pub learning_ms: u64,
    /// Length of the windows baselines are learned and scored in.
    pub window_ms: u64,
    /// Consumers tracked at most; requests of further consumers are counted and dropped.
    pub max_consumers: usize,
    /// Endpoints tracked per consumer; calls beyond fold into one "other endpoints" bucket.
    pub max_endpoints_per_consumer: usize,
    /// When time jumps ahead by more windows than this (a gap in a replayed log, a clock
    /// error), the windows past it are skipped rather than learned as silent.
    pub max_catch_up_windows: u32,
    /// A consumer without a request for this long (and no open alert) is forgotten.
    pub forget_after_ms: u64,
    /// Windows below the sustain score that end an episode.
    pub resolve_after_windows: u32,
    /// A change that at least this share of active consumers show in the same window is a
    /// platform event, not one consumer's abuse: no new episodes for it.
    pub population_share: f64,
    /// An endpoint used by at most this share of consumers (with at least
    /// `rare_min_consumers` consumers known) counts as rarely used.
    pub rare_share: f64,
    pub rare_min_consumers: u32,
    /// Per detector, in [`Detector::ALL`] order.
    pub detectors: [DetectorConfig; 8],
}

impl Default for Config {
    fn default() -> Self {
        Config {
            learning_ms: 7 * DAY_MS,
            window_ms: HOUR_MS,
            max_consumers: 1_000_000,
            max_endpoints_per_consumer: 32,
            max_catch_up_windows: 48,
            forget_after_ms: 35 * DAY_MS,
            resolve_after_windows: 3,
            population_share: 0.05,
            rare_share: 0.02,
            rare_min_consumers: 50,
            detectors: [
                // enumeration: distinct objects per window on one endpoint (an excess of 10
                // was five times a small partner's hour; the expectation comes from the calls
                // made elsewhere, which a busy hour inflates, so a 5x read can show 2.7x)
                DetectorConfig::new(6.0, 2.0, 4.0, 2.5, 6.0),
                // volume_surge: requests per window (an excess of 30 was five times a small
                // partner's whole hour; the score already weighs the consumer's own noise)
                DetectorConfig::new(6.0, 2.0, 4.0, 3.0, 15.0),
                // endpoint_mix_drift: total-variation distance of the mix
                DetectorConfig::new(5.0, 1.5, 3.5, 2.0, 0.1),
                // credential_sharing: new origins per window
                DetectorConfig::new(5.0, 2.0, 4.0, 3.0, 2.0),
                // error_probing: 401/403/404 answers per window
                DetectorConfig::new(5.0, 1.5, 3.5, 3.0, 5.0),
                // exfiltration: response bytes per window against the same calls' usual bytes
                DetectorConfig::new(5.0, 2.0, 4.0, 3.0, 65_536.0),
                // off_hours: requests in a normally quiet window (a 5x attack on a window it
                // covers only in part, against an expectation that errs high, reads 2.5x to
                // 3x; the hour pooled over alike days keeps the gates honest)
                DetectorConfig::new(6.0, 2.0, 3.0, 2.0, 3.0),
                // first_use: calls to a sensitive or rare endpoint never used before
                DetectorConfig::new(6.0, 3.0, 6.0, 1.0, 0.0),
            ],
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("a window must be at least 1 s, got {0} ms")]
    Window(u64),
    #[error("the learning period ({learning} ms) must be at least one window ({window} ms)")]
    Learning { learning: u64, window: u64 },
    #[error("forgetting ({forget} ms) must wait at least the learning period ({learning} ms)")]
    Forget { forget: u64, learning: u64 },
    #[error("{name} must be at least 1, got 0")]
    Zero { name: &'static str },
    #[error("{name} must be within 0..=1, got {value}")]
    Share { name: &'static str, value: f64 },
    #[error("{field} of {detector} must be {rule}, got {value}")]
    Threshold {
        detector: Detector,
        field: &'static str,
        rule: &'static str,
        value: f64,
    },
}

impl Config {
    /// Short learning (`learning_ms`) and windows (`window_ms`) for demos and tests.
    pub fn demo(learning_ms: u64, window_ms: u64) -> Config {
        Config {
            learning_ms,
            window_ms,
            ..Config::default()
        }
    }

    /// The thresholds of one detector.
    pub fn detector(&self, detector: Detector) -> &DetectorConfig {
        &self.detectors[detector.index()]
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window_ms < 1_000 {
            return Err(ConfigError::Window(self.window_ms));
        }
        if self.learning_ms < self.window_ms {
            return Err(ConfigError::Learning {
                learning: self.learning_ms,
                window: self.window_ms,
            });
        }
        if self.forget_after_ms < self.learning_ms {
            return Err(ConfigError::Forget {
                forget: self.forget_after_ms,
                learning: self.learning_ms,
            });
        }
        let counts = [
            ("max_consumers", self.max_consumers),
            (
                "max_endpoints_per_consumer",
                self.max_endpoints_per_consumer,
            ),
            ("max_catch_up_windows", self.max_catch_up_windows as usize),
            ("resolve_after_windows", self.resolve_after_windows as usize),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        for (name, value) in [
            ("population_share", self.population_share),
            ("rare_share", self.rare_share),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Share { name, value });
            }
        }
        for detector in Detector::ALL {
            check_thresholds(detector, self.detector(detector))?;
        }
        Ok(())
    }

    /// Windows in the learning period.
    pub fn learning_windows(&self) -> u64 {
        self.learning_ms.div_ceil(self.window_ms)
    }
}

/// Scores positive and finite with sustain at most open; gates finite and not negative (NaN
/// or infinity would switch the detector off without a word).
fn check_thresholds(detector: Detector, c: &DetectorConfig) -> Result<(), ConfigError> {
    let refuse = |field, rule, value| {
        Err(ConfigError::Threshold {
            detector,
            field,
            rule,
            value,
        })
    };
    for (field, value) in [
        ("open", c.open),
        ("sustain", c.sustain),
        ("sustain_total", c.sustain_total),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return refuse(field, "a positive number", value);
        }
    }
    if c.sustain > c.open {
        return refuse("sustain", "at most open", c.sustain);
    }
    for (field, value) in [("min_ratio", c.min_ratio), ("min_excess", c.min_excess)] {
        if !(value.is_finite() && value >= 0.0) {
            return refuse(field, "a number of at least 0", value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(Config::demo(10 * MINUTE_MS, MINUTE_MS).validate(), Ok(()));
    }

    #[test]
    fn a_learning_period_shorter_than_a_window_is_refused() {
        let config = Config::demo(1_000, HOUR_MS);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Learning { .. })
        ));
    }

    #[test]
    fn thresholds_that_are_not_numbers_or_negative_gates_are_refused_naming_the_field() {
        type Spoil = fn(&mut DetectorConfig);
        let cases: [(Spoil, &str); 5] = [
            (|c| c.min_ratio = f64::NAN, "min_ratio"),
            (|c| c.min_excess = -100.0, "min_excess"),
            (|c| c.open = f64::INFINITY, "open"),
            (|c| c.sustain_total = f64::INFINITY, "sustain_total"),
            (|c| c.min_ratio = -3.0, "min_ratio"),
        ];
        for (spoil, field) in cases {
            let mut config = Config::default();
            spoil(&mut config.detectors[1]);
            let err = config.validate().unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(field) && text.contains("volume_surge"),
                "{text}"
            );
        }
    }

    #[test]
    fn sustain_above_open_is_refused_naming_the_detector() {
        let mut config = Config::default();
        config.detectors[1].sustain = 9.0;
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("volume_surge"), "{err}");
    }
}
