//! Reads a log file (or any reader, like standard input) line by line (bytes that are not
//! UTF-8 become U+FFFD), parses each line in the chosen format, and hands entries to a sink in
//! chunks. A bad line is counted and reported with its number and reason, never stopping the
//! file; blank lines are skipped. [`probe`] reads only a file's first lines and keeps nothing,
//! to tell a wrong format before anything is stored.

use super::entry::Entry;
use super::{combined, envoy_json, Format, LineError};
use crate::api::views::rfc3339;
use plumbline_wire::{cap_segments, MAX_PATH_BYTES, MAX_SEGMENTS, MAX_TEXT_BYTES};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Entries handed to the sink at a time.
pub const CHUNK: usize = 4096;
/// Bad lines reported in detail per file; the rest are only counted.
pub const EXAMPLES: usize = 10;

/// How to read lines.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub format: Format,
    /// Salt of the keyed hash that makes consumer ids (the filters' salt).
    pub salt: &'a [u8],
    /// Host of requests whose line names none.
    pub host: &'a str,
}

/// What happened to one file.
#[derive(Debug, Default)]
pub struct FileReport {
    pub path: PathBuf,
    pub lines: u64,
    pub records: u64,
    pub bad: u64,
    /// Bad lines dated more than a day ahead of the clock.
    pub future: u64,
    /// The first bad lines: line number and why.
    pub examples: Vec<(u64, LineError)>,
    /// The first bad line reads in the other format: the format given is likely wrong.
    pub other_format_reads: bool,
}

impl FileReport {
    /// There were lines but none could be read: the format given is most likely wrong.
    pub fn none_read(&self) -> bool {
        self.records == 0 && self.bad > 0
    }

    /// More lines were bad than were read.
    pub fn mostly_bad(&self) -> bool {
        self.bad > self.records
    }

    /// Every bad line was dated ahead of the clock: the format is right, the clock (or the
    /// log) is not.
    pub fn all_future(&self) -> bool {
        self.bad > 0 && self.future == self.bad
    }
}

/// Why a file could not be ingested (bad lines are not errors).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sink {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Reads `path`, sending entries to `sink` in chunks of [`CHUNK`].
pub fn ingest_file(
    path: &Path,
    options: Options<'_>,
    sink: &mut dyn FnMut(&[Entry]) -> SinkResult,
) -> Result<FileReport, FileError> {
    let file = File::open(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    ingest_reader(path, file, options, u64::MAX, sink)
}

/// Reads the first `lines` lines of `path` and counts them, handing entries to no one.
pub fn probe(path: &Path, options: Options<'_>, lines: u64) -> Result<FileReport, FileError> {
    let file = File::open(path).map_err(|source| FileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    ingest_reader(path, file, options, lines, &mut |_| Ok(()))
}

/// Reads at most `max_lines` lines of `reader` (called `path` in the report and errors),
/// sending entries to `sink` in chunks of [`CHUNK`].
pub fn ingest_reader(
    path: &Path,
    reader: impl Read,
    options: Options<'_>,
    max_lines: u64,
    sink: &mut dyn FnMut(&[Entry]) -> SinkResult,
) -> Result<FileReport, FileError> {
    let read_error = |source| FileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(reader);
    let mut report = FileReport {
        path: path.to_path_buf(),
        ..FileReport::default()
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut buf = Vec::new();
    while report.lines < max_lines {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(read_error)? == 0 {
            break;
        }
        report.lines += 1;
        read_line(&buf, options, &mut report, &mut chunk);
        if chunk.len() >= CHUNK {
            flush(path, &mut chunk, &mut report, sink)?;
        }
    }
    flush(path, &mut chunk, &mut report, sink)?;
    Ok(report)
}

fn read_line(bytes: &[u8], options: Options<'_>, report: &mut FileReport, chunk: &mut Vec<Entry>) {
    let text = String::from_utf8_lossy(bytes);
    let line = text.trim_end_matches(['\n', '\r']);
    if line.trim().is_empty() {
        return;
    }
    match parse(line, options.format, options) {
        Ok(entry) => chunk.push(entry),
        Err(err) => {
            report.bad += 1;
            report.future += u64::from(matches!(err, LineError::Future(_)));
            if report.bad == 1 {
                report.other_format_reads = parse(line, options.format.other(), options).is_ok();
            }
            if report.examples.len() < EXAMPLES {
                report.examples.push((report.lines, err));
            }
        }
    }
}

fn parse(line: &str, format: Format, options: Options<'_>) -> Result<Entry, LineError> {
    let entry = match format {
        Format::Combined => combined::parse(line, options.salt, options.host),
        Format::EnvoyJson => envoy_json::parse(line, options.salt, options.host),
    }?;
    bounded(entry, now_ms())
}

/// A request logged more than this after the clock reads is a broken line: its time would
/// move every later window of detection past the rest of the log.
const FUTURE_MS: u64 = 86_400_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Refuses a time in the future and keeps text within what a filter's record keeps (a
/// path of 1,024 bytes and 64 segments, 64 query names, other text of 256 bytes), cut on a
/// character boundary; a collector refuses a batch with more.
fn bounded(mut e: Entry, now_ms: u64) -> Result<Entry, LineError> {
    if e.time_ms > now_ms.saturating_add(FUTURE_MS) {
        return Err(LineError::Future(rfc3339(e.time_ms)));
    }
    cut(&mut e.path, MAX_PATH_BYTES);
    let segments = cap_segments(&e.path, MAX_SEGMENTS).len();
    e.path.truncate(segments);
    e.query.truncate(MAX_SEGMENTS);
    cut(&mut e.host, MAX_TEXT_BYTES);
    for text in [&mut e.label, &mut e.user_agent].into_iter().flatten() {
        cut(text, MAX_TEXT_BYTES);
    }
    for name in &mut e.query {
        cut(name, MAX_TEXT_BYTES);
    }
    Ok(e)
}

fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

fn flush(
    path: &Path,
    chunk: &mut Vec<Entry>,
    report: &mut FileReport,
    sink: &mut dyn FnMut(&[Entry]) -> SinkResult,
) -> Result<(), FileError> {
    if chunk.is_empty() {
        return Ok(());
    }
    sink(chunk).map_err(|source| FileError::Sink {
        path: path.to_path_buf(),
        source,
    })?;
    report.records += chunk.len() as u64;
    chunk.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;

    #[test]
    fn bad_lines_are_counted_with_their_numbers_and_the_rest_is_read() {
        let dir = TempDir::new("logfile");
        let path = dir.path().join("access.log");
        let good = r#"10.0.0.1 - - [17/May/2015:10:05:03 +0000] "GET /a HTTP/1.1" 200 5 "-" "ua""#;
        let lines = [
            good,
            "garbage",
            "",
            good,
            "10.0.0.2 - - [bad time] \"GET / HTTP/1.1\" 200 1",
            good,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let options = Options {
            format: Format::Combined,
            salt: b"s",
            host: "h",
        };
        let mut seen = 0;
        let report = ingest_file(&path, options, &mut |entries| {
            seen += entries.len();
            Ok(())
        })
        .unwrap();
        assert_eq!((report.lines, report.records, report.bad), (6, 3, 2));
        let numbers: Vec<u64> = report.examples.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [2, 5]);
        assert_eq!(seen, 3);
    }

    const JSON_LINE: &str = r#"{"start_time":"2024-01-01T00:00:00Z","method":"GET","path":"/a"}"#;

    fn combined() -> Options<'static> {
        Options {
            format: Format::Combined,
            salt: b"s",
            host: "h",
        }
    }

    #[test]
    fn lines_of_which_none_reads_are_told_apart_with_the_format_that_reads_them() {
        // Before, a JSON log read as combined was "6 lines, 0 records, 6 bad lines" and no more.
        let text = [JSON_LINE; 6].join("\n");
        let report = ingest_reader(
            Path::new("j"),
            text.as_bytes(),
            combined(),
            u64::MAX,
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!((report.lines, report.records, report.bad), (6, 0, 6));
        assert!(report.none_read() && report.mostly_bad());
        assert!(report.other_format_reads);
        let binary: Vec<u8> = (0..=255u8).cycle().take(4000).collect();
        let report = ingest_reader(
            Path::new("b"),
            &binary[..],
            combined(),
            u64::MAX,
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(report.none_read(), "{report:?}");
        assert!(!report.other_format_reads);
    }

    #[test]
    fn a_probe_reads_only_the_first_lines_and_hands_nothing_on() {
        let dir = TempDir::new("probe");
        let path = dir.path().join("mixed.log");
        std::fs::write(&path, [JSON_LINE; 80].join("\n")).unwrap();
        let report = probe(&path, combined(), 50).unwrap();
        assert_eq!((report.lines, report.records, report.bad), (50, 0, 50));
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, "\n\n").unwrap();
        assert!(!probe(&empty, combined(), 50).unwrap().none_read());
    }

    #[test]
    fn a_line_from_the_future_is_refused_and_long_text_is_cut_on_a_character() {
        let now = 1_764_000_000_000;
        let entry = |time_ms, path: &str| Entry {
            time_ms,
            method: "GET".into(),
            host: "h".repeat(300),
            path: path.into(),
            user_agent: Some("u".repeat(1_000)),
            ..Entry::default()
        };
        let far = bounded(entry(now + 2 * FUTURE_MS, "/a"), now);
        let Err(err) = far else {
            panic!("a time two days ahead was kept: {far:?}");
        };
        assert!(matches!(err, LineError::Future(_)), "{err:?}");
        assert!(err.to_string().contains("more than a day ahead"), "{err}");
        let mut many = entry(now, &"/s".repeat(70));
        many.query = (0..70).map(|i| format!("q{i}")).collect();
        let kept = bounded(many, now).unwrap();
        assert_eq!(kept.path, "/s".repeat(64));
        assert_eq!(kept.query.len(), MAX_SEGMENTS);
        let long = format!("/{}", "é".repeat(5_000));
        let kept = bounded(entry(now, &long), now).unwrap();
        assert!(kept.path.len() <= MAX_PATH_BYTES && kept.path.len() >= MAX_PATH_BYTES - 1);
        assert!(long.starts_with(&kept.path));
        assert_eq!(kept.host.len(), MAX_TEXT_BYTES);
        assert_eq!(kept.user_agent.map(|u| u.len()), Some(MAX_TEXT_BYTES));
        assert!(bounded(entry(now + FUTURE_MS / 2, "/a"), now).is_ok());
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let options = Options {
            format: Format::EnvoyJson,
            salt: b"s",
            host: "h",
        };
        let err = ingest_file(Path::new("no-such.log"), options, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("no-such.log"), "{err}");
    }
}
