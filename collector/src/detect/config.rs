//! The `[detect]` and `[alerts]` tables of the config file: the detection engine's settings
//! (learning period, window, caps, each detector's thresholds), how often baselines are
//! saved, which words make an endpoint sensitive, and where alerts go besides the database
//! (a JSON-lines file, a webhook).
//!
//! Durations are written like TTLs (`90s`, `10m`, `1h`, `7d`); an invalid value is refused
//! naming its key.

use super::observe::SENSITIVE_WORDS;
use crate::config::FileConfig;
use crate::decide::parse;
use plumbline_detect::{Config, ConfigError, Detector};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The `[detect]` table.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectFileConfig {
    /// Run detection at all (default true).
    pub enabled: Option<bool>,
    /// How long a new consumer is only learned, like `7d` (the default) or `10s` for demos.
    pub learning_period: Option<String>,
    /// Length of the windows baselines learn and score, like `1h` (the default).
    pub window: Option<String>,
    /// A consumer idle this long (with no open alert) is forgotten (default 35d).
    pub forget_after: Option<String>,
    pub max_consumers: Option<usize>,
    pub max_endpoints_per_consumer: Option<usize>,
    pub max_catch_up_windows: Option<u32>,
    pub resolve_after_windows: Option<u32>,
    pub population_share: Option<f64>,
    pub rare_share: Option<f64>,
    pub rare_min_consumers: Option<u32>,
    /// How often `serve` saves the baselines (default 60s); also on every alert change and
    /// at shutdown.
    pub snapshot_interval: Option<String>,
    /// Close windows on the collector's clock too, not only on record times (default true).
    /// Set false to replay old logs into a running collector.
    pub wall_clock: Option<bool>,
    /// Words that make an endpoint sensitive (replaces the built-in list).
    pub sensitive_words: Option<Vec<String>>,
    /// Per detector (`[detect.detectors.enumeration]`): thresholds.
    #[serde(default)]
    pub detectors: BTreeMap<String, DetectorFileConfig>,
}

/// `[detect.detectors.<name>]`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorFileConfig {
    pub enabled: Option<bool>,
    pub open: Option<f64>,
    pub sustain: Option<f64>,
    pub sustain_total: Option<f64>,
    pub min_ratio: Option<f64>,
    pub min_excess: Option<f64>,
}

/// The `[alerts]` table.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFileConfig {
    /// Append every alert update as one JSON line to this file.
    pub jsonl: Option<PathBuf>,
    /// POST every alert update as JSON to this URL (http only).
    pub webhook: Option<String>,
    /// Time limit of one webhook request (default 5s).
    pub webhook_timeout: Option<String>,
    /// Retries of a failed webhook request (default 3).
    pub webhook_retries: Option<u32>,
    /// Updates waiting for the webhook at most; past it they are dropped and counted
    /// (default 1000).
    pub webhook_queue: Option<usize>,
    /// Alerts kept in the database; the oldest resolved ones go first (default 100000).
    pub max_stored: Option<usize>,
}

/// A detection or alerts setting that cannot be used, named by its key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config value {key} is not valid: {message}")]
pub struct DetectConfigError {
    pub key: String,
    pub message: String,
}

fn error(key: impl Into<String>, message: impl ToString) -> DetectConfigError {
    DetectConfigError {
        key: key.into(),
        message: message.to_string(),
    }
}

/// Where the webhook is and how hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: String,
    pub timeout: Duration,
    pub retries: u32,
    pub queue: usize,
}

/// Where alerts go besides the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub jsonl: Option<PathBuf>,
    pub webhook: Option<WebhookSettings>,
    pub max_stored: usize,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            jsonl: None,
            webhook: None,
            max_stored: 100_000,
        }
    }
}

/// Detection as configured, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectSettings {
    pub enabled: bool,
    pub engine: Config,
    pub snapshot_interval: Duration,
    pub wall_clock: bool,
    pub sensitive_words: Vec<String>,
    pub alerts: AlertSettings,
}

impl Default for DetectSettings {
    fn default() -> Self {
        DetectSettings {
            enabled: true,
            engine: Config::default(),
            snapshot_interval: Duration::from_secs(60),
            wall_clock: true,
            sensitive_words: SENSITIVE_WORDS.iter().map(|w| w.to_string()).collect(),
            alerts: AlertSettings::default(),
        }
    }
}

impl FileConfig {
    /// The `[detect]` and `[alerts]` tables, checked.
    pub fn detect_settings(&self) -> Result<DetectSettings, DetectConfigError> {
        let mut settings = self.detect.resolve()?;
        settings.alerts = self.alerts.resolve()?;
        Ok(settings)
    }
}

impl DetectFileConfig {
    fn resolve(&self) -> Result<DetectSettings, DetectConfigError> {
        let d = DetectSettings::default();
        let engine = self.engine()?;
        let snapshot = duration_ms("detect.snapshot_interval", &self.snapshot_interval)?;
        let words = match &self.sensitive_words {
            Some(words) if words.iter().any(|w| w.trim().is_empty()) => {
                return Err(error("detect.sensitive_words", "a word is empty"));
            }
            Some(words) => words.clone(),
            None => d.sensitive_words,
        };
        Ok(DetectSettings {
            enabled: self.enabled.unwrap_or(d.enabled),
            engine,
            snapshot_interval: snapshot.map_or(d.snapshot_interval, Duration::from_millis),
            wall_clock: self.wall_clock.unwrap_or(d.wall_clock),
            sensitive_words: words,
            alerts: d.alerts,
        })
    }

    /// The engine's config: defaults, then this table's values, then a check of the whole.
    fn engine(&self) -> Result<Config, DetectConfigError> {
        let mut c = Config::default();
        let ms = |key: &str, value: &Option<String>| duration_ms(key, value);
        set(
            &mut c.learning_ms,
            ms("detect.learning_period", &self.learning_period)?,
        );
        set(&mut c.window_ms, ms("detect.window", &self.window)?);
        set(
            &mut c.forget_after_ms,
            ms("detect.forget_after", &self.forget_after)?,
        );
        set(&mut c.max_consumers, self.max_consumers);
        set(
            &mut c.max_endpoints_per_consumer,
            self.max_endpoints_per_consumer,
        );
        set(&mut c.max_catch_up_windows, self.max_catch_up_windows);
        set(&mut c.resolve_after_windows, self.resolve_after_windows);
        set(&mut c.population_share, self.population_share);
        set(&mut c.rare_share, self.rare_share);
        set(&mut c.rare_min_consumers, self.rare_min_consumers);
        if self.learning_period.is_some() && self.forget_after.is_none() {
            c.forget_after_ms = c.forget_after_ms.max(c.learning_ms);
        }
        for (name, table) in &self.detectors {
            let detector = Detector::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
                let message = format!("unknown detector; known: {}", known.join(", "));
                error(format!("detect.detectors.{name}"), message)
            })?;
            table.apply(&mut c.detectors[detector.index()]);
        }
        if c.learning_ms < c.window_ms {
            let message = "must be at least one window (detect.window)";
            return Err(error("detect.learning_period", message));
        }
        c.validate().map_err(|e| {
            let key = match &e {
                ConfigError::Window(_) => "detect.window".to_string(),
                ConfigError::Learning { .. } => "detect.learning_period".to_string(),
                ConfigError::Forget { .. } => "detect.forget_after".to_string(),
                ConfigError::Zero { name } | ConfigError::Share { name, .. } => {
                    format!("detect.{name}")
                }
                ConfigError::Threshold { detector, .. } => {
                    format!("detect.detectors.{}", detector.name())
                }
            };
            error(key, e.to_string())
        })?;
        Ok(c)
    }
}

impl DetectorFileConfig {
    fn apply(&self, c: &mut plumbline_detect::config::DetectorConfig) {
        set(&mut c.enabled, self.enabled);
        set(&mut c.open, self.open);
        set(&mut c.sustain, self.sustain);
        set(&mut c.sustain_total, self.sustain_total);
        set(&mut c.min_ratio, self.min_ratio);
        set(&mut c.min_excess, self.min_excess);
    }
}

impl AlertsFileConfig {
    fn resolve(&self) -> Result<AlertSettings, DetectConfigError> {
        let d = AlertSettings::default();
        let webhook = match &self.webhook {
            Some(url) => Some(self.webhook(url)?),
            None => None,
        };
        let max_stored = self.max_stored.unwrap_or(d.max_stored);
        if max_stored == 0 {
            return Err(error("alerts.max_stored", "must be at least 1"));
        }
        Ok(AlertSettings {
            jsonl: self.jsonl.clone(),
            webhook,
            max_stored,
        })
    }

    fn webhook(&self, url: &str) -> Result<WebhookSettings, DetectConfigError> {
        if url.starts_with("https://") {
            let message = "https is not supported (this collector is built without TLS); \
                           use an http:// URL, e.g. a local relay";
            return Err(error("alerts.webhook", message));
        }
        if !url.starts_with("http://") || url.len() <= "http://".len() {
            return Err(error(
                "alerts.webhook",
                format!("{url:?} is not an http:// URL"),
            ));
        }
        let timeout = duration_ms("alerts.webhook_timeout", &self.webhook_timeout)?;
        let queue = self.webhook_queue.unwrap_or(1_000);
        if queue == 0 {
            return Err(error("alerts.webhook_queue", "must be at least 1"));
        }
        Ok(WebhookSettings {
            url: url.to_string(),
            timeout: Duration::from_millis(timeout.unwrap_or(5_000)),
            retries: self.webhook_retries.unwrap_or(3),
            queue,
        })
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn duration_ms(key: &str, value: &Option<String>) -> Result<Option<u64>, DetectConfigError> {
    value
        .as_deref()
        .map(|text| {
            parse::ttl_ms(text).map_err(|_| {
                let like = "a duration like 90s, 30m, 1h, 7d or 1h30m, above zero";
                error(key, format!("{text:?} is not {like}"))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_errors_name_the_key_and_the_value_not_a_ttl() {
        // Before: `window = "banana"` said `ttl "banana" is not a duration`, and a learning
        // period shorter than a window named the engine's field `learning_ms`.
        let file = |text: &str| toml::from_str::<DetectFileConfig>(text).unwrap().resolve();
        let err = file("window = \"banana\"").unwrap_err().to_string();
        assert!(
            err.contains("detect.window") && err.contains("\"banana\""),
            "{err}"
        );
        assert!(!err.contains("ttl"), "{err}");
        let err = file("learning_period = \"1h\"\nwindow = \"2h\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("detect.learning_period"), "{err}");
        assert!(!err.contains("learning_ms"), "{err}");
    }
    use plumbline_detect::config::{DAY_MS, HOUR_MS};

    fn settings(text: &str) -> Result<DetectSettings, DetectConfigError> {
        let file: FileConfig = toml::from_str(text).unwrap();
        file.detect_settings()
    }

    #[test]
    fn without_tables_detection_runs_with_a_week_of_learning_and_hour_windows() {
        let s = settings("").unwrap();
        assert!(s.enabled && s.wall_clock);
        assert_eq!(
            (s.engine.learning_ms, s.engine.window_ms),
            (7 * DAY_MS, HOUR_MS)
        );
        assert_eq!(s.alerts, AlertSettings::default());
    }

    #[test]
    fn short_learning_and_windows_suit_demos() {
        let text = r#"
            [detect]
            learning_period = "10s"
            window = "2s"
            snapshot_interval = "5s"
            wall_clock = false
            [detect.detectors.first_use]
            enabled = false
            [detect.detectors.enumeration]
            open = 5.0
            [alerts]
            jsonl = "alerts.jsonl"
            webhook = "http://127.0.0.1:9/hook"
            webhook_timeout = "2s"
        "#;
        let s = settings(text).unwrap();
        assert_eq!((s.engine.learning_ms, s.engine.window_ms), (10_000, 2_000));
        assert_eq!(s.snapshot_interval, Duration::from_secs(5));
        assert!(!s.wall_clock);
        assert!(!s.engine.detector(Detector::FirstUse).enabled);
        assert_eq!(s.engine.detector(Detector::Enumeration).open, 5.0);
        assert_eq!(s.alerts.jsonl, Some(PathBuf::from("alerts.jsonl")));
        let hook = s.alerts.webhook.unwrap();
        assert_eq!((hook.timeout, hook.retries), (Duration::from_secs(2), 3));
    }

    #[test]
    fn bad_values_are_refused_naming_their_key() {
        let cases = [
            ("[detect]\nwindow = \"1x\"", "detect.window"),
            (
                "[detect]\nlearning_period = \"1s\"\nwindow = \"1h\"",
                "detect.learning_period",
            ),
            (
                "[detect.detectors.enumeraton]\nopen = 1.0",
                "detect.detectors.enumeraton",
            ),
            (
                "[alerts]\nwebhook = \"https://siem.example\"",
                "alerts.webhook",
            ),
            ("[alerts]\nwebhook = \"ftp://x\"", "alerts.webhook"),
            ("[alerts]\nmax_stored = 0", "alerts.max_stored"),
        ];
        for (text, key) in cases {
            let err = settings(text).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }
}
