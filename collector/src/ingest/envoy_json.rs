//! Envoy access logs written with a JSON format, one object per line. Fields read (the first
//! present of each list; `null` and `"-"` count as absent; numbers may be JSON numbers or
//! strings):
//!
//! | what | fields |
//! |---|---|
//! | time (required, RFC 3339) | `start_time` |
//! | method (required) | `method`, `:method` |
//! | path (required; query dropped, names kept) | `x-envoy-original-path`, `x_envoy_original_path`, `path`, `:path` |
//! | host | `authority`, `:authority`, `host` (else the `--host` given to the command) |
//! | status | `response_code` |
//! | bytes | `bytes_received`, `bytes_sent` |
//! | duration (ms) | `duration` |
//! | consumer (keyed hash with the salt) | `x-api-key`, `x_api_key`, `api_key` |
//! | consumer label | `consumer_label`, `x-consumer-label` |
//! | user agent | `user_agent`, `user-agent` |
//! | client address | `downstream_remote_address` (port dropped), `x_forwarded_for`, `x-forwarded-for` (first hop) |
//!
//! A line without a key is an unauthenticated request. Raw keys are hashed at once and never
//! kept.

use super::entry::{check_method, split_target, Entry};
use super::LineError;
use plumbline_wire::consumer_id;
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const TIME: &[&str] = &["start_time"];
const METHOD: &[&str] = &["method", ":method"];
const PATH: &[&str] = &[
    "x-envoy-original-path",
    "x_envoy_original_path",
    "path",
    ":path",
];
const HOST: &[&str] = &["authority", ":authority", "host"];
const KEY: &[&str] = &["x-api-key", "x_api_key", "api_key"];
const LABEL: &[&str] = &["consumer_label", "x-consumer-label"];
const AGENT: &[&str] = &["user_agent", "user-agent"];
const FORWARDED: &[&str] = &["x_forwarded_for", "x-forwarded-for"];

/// Reads one line.
pub fn parse(line: &str, salt: &[u8], host: &str) -> Result<Entry, LineError> {
    let value: Value = serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(LineError::Json("the line is not a JSON object".into()));
    };
    let time = text(&fields, TIME).ok_or(LineError::Missing {
        field: "start_time",
    })?;
    let method = text(&fields, METHOD).ok_or(LineError::Missing { field: "method" })?;
    check_method(method)?;
    let target = text(&fields, PATH).ok_or(LineError::Missing { field: "path" })?;
    let (authority, path, query) = split_target(target)?;
    let key = text(&fields, KEY);
    Ok(Entry {
        time_ms: parse_time(time)?,
        method: method.to_string(),
        host: text(&fields, HOST)
            .or(authority)
            .unwrap_or(host)
            .to_string(),
        path: path.to_string(),
        query,
        status: number(&fields, "response_code")?.map_or(0, |n| n.min(999) as u16),
        request_bytes: number(&fields, "bytes_received")?.unwrap_or(0),
        response_bytes: number(&fields, "bytes_sent")?.unwrap_or(0),
        duration_us: duration_us(number(&fields, "duration")?),
        consumer: key.map(|k| consumer_id(salt, k.as_bytes())),
        label: text(&fields, LABEL).map(str::to_string),
        client: client(&fields),
        user_agent: text(&fields, AGENT).map(str::to_string),
    })
}

/// The first present, non-empty text among `names`.
fn text<'a>(fields: &'a Map<String, Value>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .filter_map(|n| fields.get(*n).and_then(Value::as_str))
        .find(|v| !v.is_empty() && *v != "-")
}

/// A non-negative integer field, written as a number or a string; absent is `None`.
fn number(fields: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, LineError> {
    let invalid = |value: &Value| LineError::Invalid {
        field,
        value: value.to_string(),
    };
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() || s == "-" => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| invalid(&fields[field])),
        Some(v @ Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| invalid(v)),
        Some(other) => Err(invalid(other)),
    }
}

fn duration_us(ms: Option<u64>) -> u32 {
    u32::try_from(ms.unwrap_or(0).saturating_mul(1000)).unwrap_or(u32::MAX)
}

fn parse_time(text: &str) -> Result<u64, LineError> {
    let invalid = || LineError::Invalid {
        field: "start_time",
        value: text.to_string(),
    };
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid())
}

fn client(fields: &Map<String, Value>) -> Option<IpAddr> {
    if let Some(addr) = text(fields, &["downstream_remote_address"]) {
        if let Ok(socket) = addr.parse::<SocketAddr>() {
            return Some(socket.ip());
        }
        if let Ok(ip) = addr.parse::<IpAddr>() {
            return Some(ip);
        }
    }
    let forwarded = text(fields, FORWARDED)?;
    forwarded.split(',').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"start_time":"2024-05-01T12:00:00.250Z","method":"GET","path":"/v1/orders/42?expand=items","x-envoy-original-path":null,"authority":"api.example.com","response_code":404,"bytes_received":"0","bytes_sent":120,"duration":7,"x-api-key":"partner-key-1","consumer_label":"acme","user_agent":"sdk/1.0","downstream_remote_address":"10.1.2.3:51000"}"#;

    #[test]
    fn an_envoy_json_line_gives_every_documented_field() {
        let entry = parse(LINE, b"salt", "fallback").unwrap();
        assert_eq!(entry.time_ms, 1_714_564_800_250);
        assert_eq!(
            (entry.method.as_str(), entry.host.as_str()),
            ("GET", "api.example.com")
        );
        assert_eq!(
            (entry.path.as_str(), entry.query.clone()),
            ("/v1/orders/42", vec!["expand".to_string()])
        );
        assert_eq!(
            (entry.status, entry.request_bytes, entry.response_bytes),
            (404, 0, 120)
        );
        assert_eq!(entry.duration_us, 7000);
        assert_eq!(entry.consumer, Some(consumer_id(b"salt", b"partner-key-1")));
        assert_eq!(entry.label.as_deref(), Some("acme"));
        assert_eq!(entry.client, "10.1.2.3".parse().ok());
    }

    #[test]
    fn the_original_path_wins_and_a_missing_key_means_unauthenticated() {
        let line = r#"{"start_time":"2024-05-01T12:00:00Z","method":"POST","path":"/rewritten","x-envoy-original-path":"/original","x-api-key":"-"}"#;
        let entry = parse(line, b"s", "fallback").unwrap();
        assert_eq!(
            (entry.path.as_str(), entry.host.as_str()),
            ("/original", "fallback")
        );
        assert_eq!(entry.consumer, None);
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"method":"GET","path":"/"}"#, "start_time is missing"),
            (
                r#"{"start_time":"yesterday","method":"GET","path":"/"}"#,
                "start_time has an invalid",
            ),
            (
                r#"{"start_time":"2024-05-01T12:00:00Z","method":"GET","path":"/","response_code":"abc"}"#,
                "response_code",
            ),
        ];
        for (line, expected) in cases {
            let err = parse(line, b"s", "h").unwrap_err().to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
