//! Apache/nginx combined log format (`%h %l %u %t "%r" %>s %b "%{Referer}i"
//! "%{User-agent}i"`); the common format (without the last two) is read too.
//!
//! Such logs carry no API identity, so the client address is the consumer: its id is the
//! keyed hash of the address text (with the salt shared with the filters) and its label is
//! the address. The host is not in the line, so the caller names it. Times come from the log.

use super::entry::{check_method, split_target, Entry};
use super::LineError;
use plumbline_wire::consumer_id;
use time::macros::format_description;
use time::OffsetDateTime;

const FORMAT: &str = "combined";

/// Reads one line.
pub fn parse(line: &str, salt: &[u8], host: &str) -> Result<Entry, LineError> {
    let mut cursor = Cursor(line);
    let client = cursor.word().ok_or(layout("no client address"))?;
    cursor.word().ok_or(layout("no identity field"))?;
    cursor.word().ok_or(layout("no user field"))?;
    let time = cursor.bracketed().ok_or(layout("no [time]"))?;
    let request = cursor.quoted().ok_or(layout("no \"request line\""))?;
    let status = cursor.word().ok_or(layout("no status"))?;
    let bytes = cursor.word().ok_or(layout("no response size"))?;
    let _referer = cursor.quoted();
    let user_agent = cursor.quoted();

    let mut parts = request.split(' ');
    let method = parts.next().unwrap_or("");
    check_method(method)?;
    let target = parts.next().ok_or(LineError::Missing {
        field: "request target",
    })?;
    let (authority, path, query) = split_target(target)?;
    Ok(Entry {
        time_ms: parse_time(time)?,
        method: method.to_string(),
        host: authority.unwrap_or(host).to_string(),
        path: path.to_string(),
        query,
        status: number(status, "status")?,
        response_bytes: if bytes == "-" {
            0
        } else {
            number(bytes, "response size")?
        },
        consumer: Some(consumer_id(salt, client.as_bytes())),
        label: Some(client.to_string()),
        client: client.parse().ok(),
        user_agent: user_agent
            .filter(|ua| !ua.is_empty() && *ua != "-")
            .map(str::to_string),
        ..Entry::default()
    })
}

fn layout(detail: &'static str) -> LineError {
    LineError::Layout {
        format: FORMAT,
        detail,
    }
}

fn number<T: std::str::FromStr>(text: &str, field: &'static str) -> Result<T, LineError> {
    text.parse().map_err(|_| LineError::Invalid {
        field,
        value: text.chars().take(40).collect(),
    })
}

/// `10/Oct/2000:13:55:36 -0700` as Unix milliseconds.
fn parse_time(text: &str) -> Result<u64, LineError> {
    let format = format_description!(
        "[day]/[month repr:short case_sensitive:false]/[year]:[hour]:[minute]:[second] \
         [offset_hour sign:mandatory][offset_minute]"
    );
    let invalid = || LineError::Invalid {
        field: "time",
        value: text.to_string(),
    };
    let time = OffsetDateTime::parse(text, &format).map_err(|_| invalid())?;
    let ms = time.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| invalid())
}

/// Reads fields from the front of a line.
struct Cursor<'a>(&'a str);

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        self.0 = self.0.trim_start_matches(' ');
    }

    /// The next space-separated word.
    fn word(&mut self) -> Option<&'a str> {
        self.skip_spaces();
        let end = self.0.find(' ').unwrap_or(self.0.len());
        let (word, rest) = self.0.split_at(end);
        self.0 = rest;
        (!word.is_empty()).then_some(word)
    }

    /// The next `[...]` field, without the brackets.
    fn bracketed(&mut self) -> Option<&'a str> {
        self.skip_spaces();
        let inner = self.0.strip_prefix('[')?;
        let end = inner.find(']')?;
        self.0 = &inner[end + 1..];
        Some(&inner[..end])
    }

    /// The next `"..."` field, without the quotes; `\"` inside does not end it.
    fn quoted(&mut self) -> Option<&'a str> {
        self.skip_spaces();
        let inner = self.0.strip_prefix('"')?;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    self.0 = &inner[i + 1..];
                    return Some(&inner[..i]);
                }
                _ => escaped = false,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash/images/kibana-search.png?size=2 HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/" "Mozilla/5.0 (Macintosh)""#;

    #[test]
    fn a_combined_line_gives_time_request_status_size_and_agent() {
        let entry = parse(LINE, b"salt", "example.org").unwrap();
        assert_eq!(entry.time_ms, 1_431_857_103_000);
        assert_eq!(entry.method, "GET");
        assert_eq!(entry.host, "example.org");
        assert_eq!(
            entry.path,
            "/presentations/logstash/images/kibana-search.png"
        );
        assert_eq!(entry.query, ["size"]);
        assert_eq!((entry.status, entry.response_bytes), (200, 203023));
        assert_eq!(entry.user_agent.as_deref(), Some("Mozilla/5.0 (Macintosh)"));
    }

    #[test]
    fn the_client_address_is_the_consumer_hashed_with_the_salt() {
        let entry = parse(LINE, b"salt", "h").unwrap();
        assert_eq!(entry.consumer, Some(consumer_id(b"salt", b"83.149.9.216")));
        assert_eq!(entry.label.as_deref(), Some("83.149.9.216"));
        assert_eq!(entry.client, "83.149.9.216".parse().ok());
    }

    #[test]
    fn the_common_format_and_a_dash_size_are_read() {
        let line = r#"::1 - frank [10/Oct/2000:13:55:36 -0700] "POST /a HTTP/1.0" 304 -"#;
        let entry = parse(line, b"s", "h").unwrap();
        assert_eq!(entry.time_ms, 971_211_336_000);
        assert_eq!((entry.status, entry.response_bytes), (304, 0));
        assert_eq!(entry.user_agent, None);
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        let cases = [
            ("", "no client address"),
            ("1.2.3.4 - - 17/May/2015", "no [time]"),
            (
                r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "-" 400 0"#,
                "method",
            ),
            (r#"1.2.3.4 - - [bad] "GET / HTTP/1.1" 200 1"#, "time"),
            (
                r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" OK 1"#,
                "status",
            ),
        ];
        for (line, expected) in cases {
            let err = parse(line, b"s", "h").unwrap_err().to_string();
            assert!(err.contains(expected), "{line:?}: {err}");
        }
    }
}
