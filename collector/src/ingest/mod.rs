//! Ingest from access logs: parsers turn each line into an [`entry::Entry`] (the same fields
//! a filter records), [`logfile`] reads files line by line, counts and reports bad lines
//! without stopping, and packs entries into batches for the pipeline or for a collector.
//!
//! Batches from filters arrive over HTTP ([`crate::api`]) and go through the same pipeline.

pub mod combined;
pub mod entry;
pub mod envoy_json;
pub mod logfile;

/// Why one log line was not read; the line is counted as bad and skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line does not have the {format} layout: {detail}")]
    Layout {
        format: &'static str,
        detail: &'static str,
    },
    #[error("line is not JSON: {0}")]
    Json(String),
    #[error("field {field} is missing")]
    Missing { field: &'static str },
    #[error("field {field} has an invalid value {value:?}")]
    Invalid { field: &'static str, value: String },
    #[error("time {0} is more than a day ahead of this machine's clock")]
    Future(String),
}

/// Log formats `plumbline ingest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache/nginx combined (or common) log format.
    Combined,
    /// Envoy access log with a JSON format, one object per line.
    EnvoyJson,
}

impl Format {
    /// The format's name on the command line (`--format`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Combined => "combined",
            Format::EnvoyJson => "envoy-json",
        }
    }

    /// The format that is not this one, to suggest when this one reads nothing.
    pub fn other(self) -> Format {
        match self {
            Format::Combined => Format::EnvoyJson,
            Format::EnvoyJson => Format::Combined,
        }
    }
}
