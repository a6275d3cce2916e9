//! Configuration: the TOML config file, defaults, and secrets (ingest token, operator token,
//! salt) read from environment variables or files, never from the command line.
//!
//! Precedence: command-line flag, then environment variable, then config file, then default.
//! For a secret: `PLUMBLINE_X`, then the file named by `PLUMBLINE_X_FILE` (both set is refused
//! as ambiguous), then the file named by the config file's `x_file`. A secret file's trailing
//! newline is ignored.

pub mod secret;

use crate::decide::policy::{Policy, PolicyConfig, PolicyError};
use crate::decide::{parse, Limits};
use crate::inventory::tree::Rules;
use crate::pipeline::Settings;
use secret::{Secret, SecretSource};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where `plumbline serve` listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// The data directory by default, relative to the working directory.
pub const DEFAULT_DATA: &str = "./plumbline-data";
/// Largest batch body accepted by default (8 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The smallest `max_body_bytes` a config may set.
const MIN_BODY_BYTES: usize = 64 * 1024;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `message` holds the line and column, and the key when the value was of the wrong type.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value of the file that parsed but cannot be used.
    #[error("config file {path}: {source}")]
    InFile {
        path: PathBuf,
        source: Box<ConfigError>,
    },
    #[error("config value {key} = {value} is too small: it must be at least {min}")]
    Range {
        key: &'static str,
        value: usize,
        min: usize,
    },
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Detect(#[from] crate::detect::config::DetectConfigError),
}

/// The config file, every key optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub ingest_token_file: Option<PathBuf>,
    pub operator_token_file: Option<PathBuf>,
    pub salt_file: Option<PathBuf>,
    pub max_consumers: Option<usize>,
    pub max_filters: Option<usize>,
    #[serde(default)]
    pub inventory: InventoryConfig,
    #[serde(default)]
    pub decisions: DecisionsConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[detect]`: see [`crate::detect::config`].
    #[serde(default)]
    pub detect: crate::detect::config::DetectFileConfig,
    #[serde(default)]
    pub alerts: crate::detect::config::AlertsFileConfig,
}

/// The `[decisions]` table: caps on decisions and their audit log.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DecisionsConfig {
    pub max_decisions: Option<usize>,
    /// Longest TTL a decision may have, like `30d`.
    pub max_ttl: Option<String>,
    pub max_audit: Option<usize>,
}

/// The `[inventory]` table.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InventoryConfig {
    pub param_threshold: Option<usize>,
    pub param_min_bound: Option<usize>,
    pub max_literals: Option<usize>,
    pub max_endpoints: Option<usize>,
    pub max_hosts: Option<usize>,
}

impl FileConfig {
    /// Reads the file at `path`, or the empty config when there is none.
    pub fn load(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Rules and caps of the pipeline, checked.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let d = Settings::default();
        let inv = &self.inventory;
        let rules = Rules {
            param_threshold: at_least("inventory.param_threshold", inv.param_threshold, 2)?
                .unwrap_or(d.rules.param_threshold),
            param_min_bound: at_least("inventory.param_min_bound", inv.param_min_bound, 2)?
                .unwrap_or(d.rules.param_min_bound),
            max_literals: at_least("inventory.max_literals", inv.max_literals, 2)?
                .unwrap_or(d.rules.max_literals),
            max_endpoints: at_least("inventory.max_endpoints", inv.max_endpoints, 1)?
                .unwrap_or(d.rules.max_endpoints),
        };
        Ok(Settings {
            rules,
            max_hosts: at_least("inventory.max_hosts", inv.max_hosts, 1)?.unwrap_or(d.max_hosts),
            max_consumers: at_least("max_consumers", self.max_consumers, 1)?
                .unwrap_or(d.max_consumers),
            max_filters: at_least("max_filters", self.max_filters, 1)?.unwrap_or(d.max_filters),
            decisions: self.decision_limits()?,
        })
    }

    fn decision_limits(&self) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let c = &self.decisions;
        let max_ttl_ms = match &c.max_ttl {
            Some(text) => parse::ttl_ms(text).map_err(|e| PolicyError {
                key: "decisions.max_ttl".into(),
                message: e.to_string(),
            })?,
            None => d.max_ttl_ms,
        };
        Ok(Limits {
            max_decisions: at_least("decisions.max_decisions", c.max_decisions, 1)?
                .unwrap_or(d.max_decisions),
            max_ttl_ms,
            max_audit: at_least("decisions.max_audit", c.max_audit, 1)?.unwrap_or(d.max_audit),
        })
    }

    /// The `[policy]` table, checked.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let limits = self.decision_limits()?;
        Ok(Policy::from_config(&self.policy, limits.max_ttl_ms)?)
    }

    /// Checks every value of the file that can be checked without its secrets, so a broken
    /// config file is refused by every command, not only by the one that uses the value.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.settings()?;
        self.max_body_bytes()?;
        self.policy()?;
        self.detect_settings()?;
        Ok(())
    }

    pub fn max_body_bytes(&self) -> Result<usize, ConfigError> {
        // Room for one record at the wire's limits (about 19 KB: a 1,024-byte path, 64 query
        // names of 256 bytes, four texts of 256) with its batch around it.
        let value = at_least("max_body_bytes", self.max_body_bytes, MIN_BODY_BYTES)?;
        Ok(value.unwrap_or(DEFAULT_MAX_BODY_BYTES))
    }

    /// Where to look for a secret, given the config file's key for its file.
    pub fn source(&self, which: SecretSource) -> Option<&Path> {
        match which {
            SecretSource::IngestToken => self.ingest_token_file.as_deref(),
            SecretSource::OperatorToken => self.operator_token_file.as_deref(),
            SecretSource::Salt => self.salt_file.as_deref(),
        }
    }

    /// Reads a secret from the environment (`env`) or the files named there or here.
    pub fn secret(
        &self,
        which: SecretSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        Ok(secret::read(which, env, self.source(which))?)
    }
}

fn at_least(
    key: &'static str,
    value: Option<usize>,
    min: usize,
) -> Result<Option<usize>, ConfigError> {
    match value {
        Some(v) if v < min => Err(ConfigError::Range { key, value: v, min }),
        other => Ok(other),
    }
}

/// A TOML error on one line: where it is (`line L, column C`), the key whose value has the
/// wrong type when there is one, and what was wrong in words rather than Rust types.
/// The config in `text`, or what is wrong with it on one line.
fn parse(text: &str) -> Result<FileConfig, String> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        // A missing key has no place in the text: say which table lacks it.
        if inner.message().contains("missing field") && at != "." {
            return format!("in {at}: {}", inner.message().trim());
        }
        parse_message(text, &inner)
    })
}

fn parse_message(text: &str, err: &toml::de::Error) -> String {
    let what = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let what = plain_types(&what);
    let Some(start) = err.span().map(|s| s.start).filter(|s| *s <= text.len()) else {
        return what;
    };
    let before = text.get(..start).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    match key_before(before) {
        Some(key) => format!("line {line}, column {column}: key {key}: {what}"),
        None => format!("line {line}, column {column}: {what}"),
    }
}

/// The key assigned the value that starts where `before` ends (`key = ` on the same line),
/// with the table it is in: `inventory.param_threshold`. None when the error is not in a
/// value (an unknown key, a syntax error) or the key cannot be told with certainty.
fn key_before(before: &str) -> Option<String> {
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let (lhs, rest) = before.get(line_start..)?.rsplit_once('=')?;
    if !rest.trim().is_empty() {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    let table = before
        .get(..line_start)?
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    if let Some(table) = table {
        parts.push(table.trim_matches(['[', ']']).trim());
    }
    if let Some((outer, inner)) = lhs.split_once('{') {
        parts.push(outer.trim().trim_end_matches('=').trim());
        parts.push(inner.rsplit(',').next()?.trim());
    } else {
        parts.push(lhs.trim());
    }
    let bare = |k: &&str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    parts.iter().all(bare).then(|| parts.join("."))
}

/// serde's names of integer types (`expected usize`) as a reader of the config knows them.
fn plain_types(message: &str) -> String {
    let mut out = message.to_string();
    for ty in ["usize", "u64", "u32", "u16", "u8", "i64", "i32"] {
        out = out.replace(&format!("expected {ty}"), "expected an integer");
    }
    out
}

/// The process environment, as the secret readers take it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_key_is_read() {
        let text = r#"
            listen = "0.0.0.0:9000"
            data = "state"
            max_body_bytes = 65536
            ingest_token_file = "ingest.token"
            salt_file = "salt"
            max_consumers = 50
            [inventory]
            param_threshold = 30
            max_endpoints = 10
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(config.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(config.max_body_bytes().unwrap(), 65536);
        let settings = config.settings().unwrap();
        assert_eq!(settings.rules.param_threshold, 30);
        assert_eq!(settings.rules.max_endpoints, 10);
        assert_eq!(settings.max_consumers, 50);
    }

    #[test]
    fn the_policy_and_decision_tables_are_read() {
        let text = r#"
            [decisions]
            max_decisions = 10
            max_ttl = "2d"
            max_audit = 50
            [policy]
            mode = "enforce"
            allowlist = ["00000000000000000000000000000001"]
            [[policy.rule]]
            detector = "enumeration"
            min_severity = "high"
            action = "block"
            ttl = "1h"
        "#;
        let config: FileConfig = toml::from_str(text).unwrap();
        let limits = config.settings().unwrap().decisions;
        assert_eq!(
            (limits.max_decisions, limits.max_ttl_ms, limits.max_audit),
            (10, 2 * 86_400_000, 50)
        );
        let policy = config.policy().unwrap();
        assert_eq!(policy.mode, plumbline_wire::Mode::Enforce);
        assert_eq!(policy.rules.len(), 1);
    }

    #[test]
    fn a_rule_ttl_past_max_ttl_is_refused_naming_both_keys() {
        let text = "[decisions]\nmax_ttl = \"1h\"\n[[policy.rule]]\ndetector = \"any\"\n\
                    min_severity = \"low\"\naction = \"block\"\nttl = \"2h\"";
        let config: FileConfig = toml::from_str(text).unwrap();
        let err = config.policy().unwrap_err().to_string();
        assert!(err.contains("policy.rule[0].ttl"), "{err}");
        assert!(err.contains("decisions.max_ttl"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = toml::from_str::<FileConfig>("listn = \"x\"").unwrap_err();
        assert!(err.message().contains("listn"), "{}", err.message());
    }

    /// The message `FileConfig::load` gives for `text`.
    fn parse_error(text: &str) -> String {
        parse(text).err().unwrap()
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_key_line_and_column_in_plain_words() {
        // Before, the message was only `invalid type: string "big", expected usize`.
        let dir = crate::store::tests::TempDir::new("config");
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1\"\nmax_body_bytes = \"big\"\n",
        )
        .unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err().to_string();
        let expected = "bad.toml: line 2, column 18: key max_body_bytes: invalid type: \
                        string \"big\", expected an integer";
        assert!(err.ends_with(expected), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_wrong_value_in_a_table_or_inline_table_is_named_with_its_table() {
        // Before, the key was not named at all.
        let in_table = parse_error("[inventory]\nparam_threshold = true");
        assert!(
            in_table.starts_with("line 2, column 19: key inventory.param_threshold: "),
            "{in_table}"
        );
        let inline = parse_error("inventory = { max_hosts = 1, param_threshold = \"x\" }");
        assert!(
            inline.contains("key inventory.param_threshold: invalid type: string \"x\""),
            "{inline}"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column_on_one_line() {
        // Before, the line and column were dropped with the rest of toml's report.
        let err = parse_error("listen = \"127.0.0.1:1\"\nmax_body_bytes = \n");
        assert!(
            err.starts_with("line 2, column 18: key max_body_bytes: invalid string"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let header = parse_error("listen = \"a\"\n\n[inventory\n");
        assert!(header.starts_with("line 3, column "), "{header}");
        let unknown = parse_error("\nlistn = 1");
        assert!(
            unknown.starts_with("line 2, column 1: unknown field `listn`"),
            "{unknown}"
        );
    }

    #[test]
    fn a_missing_key_names_the_table_that_lacks_it() {
        // Before: "line 1, column 1: missing field `min_severity`".
        let err = parse_error(
            "[[policy.rule]]\ndetector = \"any\"\nmin_severity = \"low\"\naction = \"block\"\n\
             ttl = \"1h\"\n[[policy.rule]]\ndetector = \"any\"\n",
        );
        assert!(
            err.starts_with("in policy.rule[1]: missing field `min_severity`"),
            "{err}"
        );
    }

    #[test]
    fn the_smallest_body_limit_holds_a_record_at_every_text_limit() {
        // Before, 1,024 bytes was allowed, and a record within the wire's limits needed about
        // 1,400: such a record could never be stored.
        use crate::ingest::entry::{to_batch, Entry};
        let segment = "s".repeat(15);
        let entry = Entry {
            time_ms: 1_700_000_000_000,
            method: "M".repeat(256),
            host: "h".repeat(256),
            path: format!("/{}", vec![segment; 64].join("/")),
            query: (0..64).map(|i| format!("{i:0>256}")).collect(),
            label: Some("l".repeat(256)),
            user_agent: Some("u".repeat(256)),
            client: Some("2001:db8::1".parse().unwrap()),
            consumer: Some(plumbline_wire::ConsumerId([9; 16])),
            ..Entry::default()
        };
        assert_eq!(entry.path.len(), 1_024);
        let bytes = to_batch(&[entry]).encode().len();
        assert!(bytes > 16 * 1024 && bytes < MIN_BODY_BYTES, "{bytes}");
    }

    #[test]
    fn a_value_below_its_minimum_says_the_minimum_in_plain_words() {
        // Before: `is out of range (at least 2 (1024 for max_body_bytes))`.
        let config: FileConfig = toml::from_str("max_body_bytes = 0").unwrap();
        let err = config.max_body_bytes().unwrap_err().to_string();
        assert_eq!(
            err,
            "config value max_body_bytes = 0 is too small: it must be at least 65536"
        );
    }

    #[test]
    fn a_threshold_of_one_is_refused_naming_the_key() {
        let config: FileConfig = toml::from_str("[inventory]\nparam_threshold = 1").unwrap();
        let err = config.settings().unwrap_err().to_string();
        assert!(err.contains("inventory.param_threshold = 1"), "{err}");
    }
}
