//! The plugin configuration: the JSON an operator writes in Envoy's `configuration` (or Istio's
//! `pluginConfig`), parsed strictly and validated into [`Settings`].
//!
//! Unknown fields are refused and every error names the field it is about, because a bad config
//! is a deployment error that Envoy must reject at load. Error messages never echo the ingest
//! token or the hash salt. This module does no host calls.

use crate::identity::{ConsumerHasher, IdentitySource};
use plumbline_wire::MIN_SALT_BYTES;
use proxy_wasm::types::LogLevel;
use serde::Deserialize;
use serde_json::error::Category;

/// Upper bound on records per batch, so a full batch stays inside the collector's default limits.
pub const MAX_BATCH_RECORDS: usize = 2000;
/// Upper bound on buffered records per VM.
pub const MAX_BUFFERED_RECORDS: usize = 1_000_000;
/// Smallest sample rate accepted; each record then stands for at most this many requests.
pub const MIN_SAMPLE_RATE: f64 = 0.0001;
/// Upper bound on `max_decisions`: the index of that many decisions stays within a VM's memory.
pub const MAX_DECISIONS: usize = 100_000;

/// A configuration that cannot be used; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or a problem with the document as a whole (serde names the field).
    #[error("invalid configuration: {0}")]
    Document(String),
    #[error("field `{field}`: {problem}")]
    Invalid { field: String, problem: String },
}

fn invalid(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Where a record's client address comes from.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientAddress {
    /// The downstream connection's peer address (`source.address`).
    #[default]
    Downstream,
    /// The `trusted_hops`-th address from the right of `x-forwarded-for`.
    XForwardedFor { trusted_hops: u32 },
}

/// The JSON as written, before validation.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    collector_cluster: String,
    #[serde(default)]
    collector_authority: Option<String>,
    #[serde(default = "default_ingest_path")]
    ingest_path: String,
    ingest_token: String,
    hash_salt: String,
    #[serde(default = "default_identity")]
    identity: Vec<IdentitySource>,
    #[serde(default)]
    label_header: Option<String>,
    #[serde(default)]
    client_address: ClientAddress,
    #[serde(default = "default_max_batch_records")]
    max_batch_records: usize,
    #[serde(default = "default_flush_interval_ms")]
    flush_interval_ms: u32,
    #[serde(default = "default_max_buffered_records")]
    max_buffered_records: usize,
    #[serde(default = "default_sample_rate")]
    sample_rate: f64,
    #[serde(default = "default_log_level")]
    log_level: String,
    #[serde(default = "default_batch_timeout_ms")]
    batch_timeout_ms: u32,
    #[serde(default = "default_enforce")]
    enforce: bool,
    #[serde(default = "default_max_decisions")]
    max_decisions: usize,
}

fn default_ingest_path() -> String {
    "/v1/batches".to_string()
}

fn default_identity() -> Vec<IdentitySource> {
    vec![
        IdentitySource::Header {
            name: "x-api-key".to_string(),
        },
        IdentitySource::Bearer {},
    ]
}

fn default_max_batch_records() -> usize {
    500
}

fn default_flush_interval_ms() -> u32 {
    1000
}

fn default_max_buffered_records() -> usize {
    10_000
}

fn default_sample_rate() -> f64 {
    1.0
}

fn default_log_level() -> String {
    "info".to_string()
}

fn default_batch_timeout_ms() -> u32 {
    2000
}

fn default_enforce() -> bool {
    true
}

fn default_max_decisions() -> usize {
    20_000
}

/// A validated configuration, ready for the root and HTTP contexts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub collector_cluster: String,
    pub collector_authority: String,
    pub ingest_path: String,
    /// The whole `authorization` header value sent with each batch.
    pub authorization: String,
    pub hasher: ConsumerHasher,
    pub identity: Vec<IdentitySource>,
    pub label_header: Option<String>,
    pub client_address: ClientAddress,
    pub max_batch_records: usize,
    pub flush_interval_ms: u32,
    pub max_buffered_records: usize,
    pub sample_rate: f64,
    pub log_level: LogLevel,
    pub batch_timeout_ms: u32,
    /// `false` is the local kill-switch: decisions are only recorded, as in monitor mode.
    pub enforce: bool,
    /// Most decisions a VM indexes; past it a set's remaining decisions are ignored and counted.
    pub max_decisions: usize,
}

impl Settings {
    /// Parses and validates the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Settings, ConfigError> {
        let raw = parse(bytes)?;
        validate_collector(&raw)?;
        validate_identity(&raw)?;
        validate_limits(&raw)?;
        let log_level = log_level(&raw.log_level)?;
        let authority = raw
            .collector_authority
            .clone()
            .unwrap_or_else(|| raw.collector_cluster.clone());
        Ok(Settings {
            authorization: format!("Bearer {}", raw.ingest_token),
            hasher: ConsumerHasher::new(raw.hash_salt.as_bytes()),
            collector_cluster: raw.collector_cluster,
            collector_authority: authority,
            ingest_path: raw.ingest_path,
            identity: raw.identity,
            label_header: raw.label_header.map(|h| h.to_ascii_lowercase()),
            client_address: raw.client_address,
            max_batch_records: raw.max_batch_records,
            flush_interval_ms: raw.flush_interval_ms,
            max_buffered_records: raw.max_buffered_records,
            sample_rate: raw.sample_rate,
            log_level,
            batch_timeout_ms: raw.batch_timeout_ms,
            enforce: raw.enforce,
            max_decisions: raw.max_decisions,
        })
    }
}

fn parse(bytes: &[u8]) -> Result<RawConfig, ConfigError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let syntax = matches!(e.inner().classify(), Category::Syntax | Category::Eof);
        let inner = e.into_inner().to_string();
        if syntax {
            ConfigError::Document(format!("not valid JSON: {inner}"))
        } else if path == "." {
            ConfigError::Document(inner)
        } else {
            invalid(&path, inner)
        }
    })?;
    de.end().map_err(|e| ConfigError::Document(e.to_string()))?;
    Ok(raw)
}

fn validate_collector(raw: &RawConfig) -> Result<(), ConfigError> {
    if raw.collector_cluster.is_empty() {
        return Err(invalid("collector_cluster", "must name an Envoy cluster"));
    }
    if let Some(authority) = &raw.collector_authority {
        if authority.is_empty() || !is_header_value(authority) {
            return Err(invalid(
                "collector_authority",
                "must be a non-empty host[:port]",
            ));
        }
    }
    if !raw.ingest_path.starts_with('/') || !is_header_value(&raw.ingest_path) {
        return Err(invalid("ingest_path", "must be a path starting with `/`"));
    }
    if raw.ingest_token.is_empty() || !is_header_value(&raw.ingest_token) {
        return Err(invalid(
            "ingest_token",
            "must be non-empty printable ASCII without spaces",
        ));
    }
    if raw.hash_salt.len() < MIN_SALT_BYTES {
        let got = raw.hash_salt.len();
        return Err(invalid(
            "hash_salt",
            format!("must be at least {MIN_SALT_BYTES} bytes (got {got})"),
        ));
    }
    Ok(())
}

fn validate_identity(raw: &RawConfig) -> Result<(), ConfigError> {
    for (i, source) in raw.identity.iter().enumerate() {
        if let Err(problem) = source.validate() {
            return Err(invalid(&format!("identity[{i}]"), problem));
        }
    }
    if let Some(name) = &raw.label_header {
        if !is_header_name(name) {
            return Err(invalid("label_header", "must be an HTTP header name"));
        }
    }
    if let ClientAddress::XForwardedFor { trusted_hops } = raw.client_address {
        if !(1..=64).contains(&trusted_hops) {
            return Err(invalid(
                "client_address.trusted_hops",
                "must be between 1 and 64",
            ));
        }
    }
    Ok(())
}

fn validate_limits(raw: &RawConfig) -> Result<(), ConfigError> {
    in_range(
        "max_batch_records",
        raw.max_batch_records,
        1,
        MAX_BATCH_RECORDS,
    )?;
    in_range(
        "max_buffered_records",
        raw.max_buffered_records,
        raw.max_batch_records,
        MAX_BUFFERED_RECORDS,
    )?;
    in_range("flush_interval_ms", raw.flush_interval_ms, 10, 600_000)?;
    in_range("batch_timeout_ms", raw.batch_timeout_ms, 1, 600_000)?;
    in_range("max_decisions", raw.max_decisions, 1, MAX_DECISIONS)?;
    let rate = raw.sample_rate;
    if !(MIN_SAMPLE_RATE..=1.0).contains(&rate) {
        return Err(invalid(
            "sample_rate",
            format!("must be between {MIN_SAMPLE_RATE} and 1 (got {rate})"),
        ));
    }
    Ok(())
}

fn in_range<T>(field: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(invalid(
            field,
            format!("must be between {min} and {max} (got {value})"),
        ));
    }
    Ok(())
}

fn log_level(name: &str) -> Result<LogLevel, ConfigError> {
    Ok(match name {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        "off" => LogLevel::Critical,
        other => {
            return Err(invalid(
                "log_level",
                format!("must be trace, debug, info, warn, error or off (got {other:?})"),
            ))
        }
    })
}

/// An HTTP header name: a non-empty token (RFC 9110), or a pseudo-header such as `:authority`.
pub fn is_header_name(name: &str) -> bool {
    let token = name.strip_prefix(':').unwrap_or(name);
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Printable ASCII without spaces: safe to place in a header value as is.
fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "collector_cluster": "plumbline_collector",
        "ingest_token": "token-1",
        "hash_salt": "0123456789abcdef"
    }"#;

    fn with(extra: &str) -> String {
        MINIMAL.replacen('{', &format!("{{ {extra},"), 1)
    }

    fn error_of(json: &str) -> String {
        match Settings::from_json(json.as_bytes()) {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let s = Settings::from_json(MINIMAL.as_bytes()).unwrap();
        assert_eq!(s.collector_authority, "plumbline_collector");
        assert_eq!(s.ingest_path, "/v1/batches");
        assert_eq!(s.authorization, "Bearer token-1");
        assert_eq!(s.identity, default_identity());
        assert_eq!(s.client_address, ClientAddress::Downstream);
        assert_eq!(s.max_batch_records, 500);
        assert_eq!(s.flush_interval_ms, 1000);
        assert_eq!(s.max_buffered_records, 10_000);
        assert_eq!(s.sample_rate, 1.0);
        assert_eq!(s.log_level, LogLevel::Info);
        assert_eq!(s.batch_timeout_ms, 2000);
        assert_eq!(s.label_header, None);
        assert!(s.enforce, "enforcement is on unless switched off locally");
        assert_eq!(s.max_decisions, 20_000);
    }

    #[test]
    fn a_json_syntax_error_is_called_that_with_its_line_and_column() {
        // Before, a missing comma was reported as a problem with "field `?`".
        let err = error_of(&MINIMAL.replacen(',', "", 1));
        assert!(
            err.starts_with("invalid configuration: not valid JSON: "),
            "{err}"
        );
        assert!(err.contains("line 3 column"), "{err}");
    }

    #[test]
    fn the_enforcement_switch_can_be_turned_off() {
        let s = Settings::from_json(with(r#""enforce": false"#).as_bytes()).unwrap();
        assert!(!s.enforce);
        let err = error_of(&with(r#""enforce": "no""#));
        assert!(err.contains("enforce"), "{err}");
    }

    #[test]
    fn every_documented_field_is_accepted() {
        let json = r#"{
            "collector_cluster": "c", "collector_authority": "127.0.0.1:7070",
            "ingest_path": "/v1/batches", "ingest_token": "t", "hash_salt": "0123456789abcdef",
            "identity": [
                {"type": "header", "name": "x-api-key"}, {"type": "bearer"},
                {"type": "jwt", "payload_in_metadata": "jwt_payload", "claim": "sub"},
                {"type": "mtls_peer"}
            ],
            "label_header": "X-Partner",
            "client_address": {"source": "x_forwarded_for", "trusted_hops": 2},
            "max_batch_records": 100, "flush_interval_ms": 250, "max_buffered_records": 1000,
            "sample_rate": 0.25, "log_level": "debug", "batch_timeout_ms": 500,
            "enforce": true, "max_decisions": 500
        }"#;
        let s = Settings::from_json(json.as_bytes()).unwrap();
        assert_eq!(s.collector_authority, "127.0.0.1:7070");
        assert_eq!(s.identity.len(), 4);
        assert_eq!(s.label_header.as_deref(), Some("x-partner"));
        let xff = ClientAddress::XForwardedFor { trusted_hops: 2 };
        assert_eq!(s.client_address, xff);
        assert_eq!(s.log_level, LogLevel::Debug);
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let err = error_of(&with(r#""colector_cluster": "x""#));
        assert!(err.contains("colector_cluster"), "{err}");
    }

    #[test]
    fn an_unknown_field_inside_an_identity_source_is_refused() {
        let err = error_of(&with(r#""identity": [{"type": "bearer", "name": "x"}]"#));
        assert!(err.contains("identity[0]") && err.contains("name"), "{err}");
    }

    #[test]
    fn an_unknown_identity_type_is_refused_with_its_position() {
        let err = error_of(&with(
            r#""identity": [{"type": "bearer"}, {"type": "cookie"}]"#,
        ));
        assert!(
            err.contains("identity[1]") && err.contains("cookie"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let err = error_of(r#"{"collector_cluster": "c", "hash_salt": "0123456789abcdef"}"#);
        assert!(err.contains("ingest_token"), "{err}");
    }

    #[test]
    fn a_short_salt_is_refused_without_echoing_it() {
        let err = error_of(
            r#"{"collector_cluster": "c", "ingest_token": "t", "hash_salt": "short-salt"}"#,
        );
        assert!(err.contains("hash_salt") && err.contains("16"), "{err}");
        assert!(!err.contains("short-salt"), "{err}");
    }

    #[test]
    fn a_token_that_cannot_go_in_a_header_is_refused() {
        let json = MINIMAL.replace("token-1", "two words");
        let err = error_of(&json);
        assert!(
            err.contains("ingest_token") && !err.contains("two words"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_numbers_are_refused_by_field() {
        let cases = [
            (r#""max_batch_records": 0"#, "max_batch_records"),
            (r#""max_batch_records": 5000"#, "max_batch_records"),
            (r#""max_buffered_records": 10"#, "max_buffered_records"),
            (r#""flush_interval_ms": 1"#, "flush_interval_ms"),
            (r#""batch_timeout_ms": 0"#, "batch_timeout_ms"),
            (r#""sample_rate": 0"#, "sample_rate"),
            (r#""sample_rate": 1.5"#, "sample_rate"),
            (r#""max_batch_records": -1"#, "max_batch_records"),
            (r#""max_decisions": 0"#, "max_decisions"),
            (r#""max_decisions": 1000000"#, "max_decisions"),
        ];
        for (extra, field) in cases {
            let err = error_of(&with(extra));
            assert!(err.contains(field), "{extra}: {err}");
        }
    }

    #[test]
    fn zero_trusted_hops_are_refused() {
        let extra = r#""client_address": {"source": "x_forwarded_for", "trusted_hops": 0}"#;
        let err = error_of(&with(extra));
        assert!(err.contains("trusted_hops"), "{err}");
    }

    #[test]
    fn an_unknown_log_level_is_refused() {
        let err = error_of(&with(r#""log_level": "loud""#));
        assert!(err.contains("log_level") && err.contains("loud"), "{err}");
    }

    #[test]
    fn an_empty_header_name_is_refused() {
        let err = error_of(&with(r#""identity": [{"type": "header", "name": ""}]"#));
        assert!(err.contains("identity[0]"), "{err}");
        let err = error_of(&with(r#""label_header": "bad header""#));
        assert!(err.contains("label_header"), "{err}");
    }

    #[test]
    fn trailing_garbage_and_non_json_are_refused() {
        assert!(error_of(&format!("{MINIMAL} x")).contains("invalid configuration"));
        assert!(error_of("not json").contains("invalid configuration"));
        assert!(error_of("").contains("invalid configuration"));
    }

    #[test]
    fn a_relative_ingest_path_is_refused() {
        let err = error_of(&with(r#""ingest_path": "v1/batches""#));
        assert!(err.contains("ingest_path"), "{err}");
    }

    /// A YAML node as JSON, as Istio hands a WasmPlugin's `pluginConfig` to the filter.
    fn yaml_to_json(node: &yaml_rust2::Yaml) -> serde_json::Value {
        use yaml_rust2::Yaml;
        match node {
            Yaml::Hash(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().unwrap().to_string(), yaml_to_json(v)))
                    .collect(),
            ),
            Yaml::Array(items) => items.iter().map(yaml_to_json).collect(),
            Yaml::String(text) => text.clone().into(),
            Yaml::Integer(n) => (*n).into(),
            Yaml::Real(text) => text.parse::<f64>().unwrap().into(),
            Yaml::Boolean(b) => (*b).into(),
            other => panic!("unexpected YAML node {other:?}"),
        }
    }

    #[test]
    fn the_shipped_istio_wasmplugin_config_is_accepted() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../envoy/istio/wasmplugin.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
        let plugin = docs
            .iter()
            .find(|d| d["kind"].as_str() == Some("WasmPlugin"))
            .unwrap();
        let config = yaml_to_json(&plugin["spec"]["pluginConfig"]);
        let settings = Settings::from_json(config.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            settings.collector_cluster,
            "outbound|7070||plumbline-collector.example.internal"
        );
        assert!(settings.enforce);
    }
}
