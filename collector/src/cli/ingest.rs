//! `plumbline ingest`: reads log files (or standard input, `-`) and feeds their records either
//! straight into a data directory (`--data`) or to a running collector as batches (with
//! `PLUMBLINE_INGEST_TOKEN`). Consumer ids are keyed hashes made with the salt
//! (`PLUMBLINE_SALT`), which must be the filters' salt for ids to match.
//!
//! Nothing is stored before every input has been checked: each file exists, is a regular
//! file, can be read, and its first lines read in the format given; a collector answers and
//! takes the token. A file with lines but no record read fails the command with a hint that
//! `--format` may be wrong; one with more bad lines than records gets a warning. Ingesting adds
//! records, so the same file ingested twice is counted twice.
//!
//! Offline, detection runs on the records' own times as they are read (see
//! [`crate::detect::flow::Offline`]), so `plumbline alerts --data` then shows what replaying
//! the log raised; sent to a collector, the records go through its detection.
//!
//! Batches sent to a collector come from node `plumbline-ingest` with a random instance id,
//! so they show in `/v1/filters`; offline ingest records no filter instance.

use super::client::{Client, ClientError};
use super::{offline_hint, CliError, IngestArgs, Target};
use crate::config::secret::{Secret, SecretError, SecretSource};
use crate::config::{process_env, ConfigError, FileConfig};
use crate::detect::flow::Offline;
use crate::ingest::entry::{batch_ranges, to_batch, to_batches, Entry};
use crate::ingest::logfile::{self, FileError, FileReport, Options, EXAMPLES};
use crate::ingest::LineError;
use crate::store::persisted::Persisted;
use plumbline_wire::Limits;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Node name of batches posted by this command.
pub const NODE: &str = "plumbline-ingest";
/// Lines of each file read before anything is stored, to tell a wrong `--format`.
pub const PROBE_LINES: u64 = 50;
/// How standard input is named in reports.
const STDIN_NAME: &str = "(standard input)";

type Sink<'a> =
    Box<dyn FnMut(&[Entry]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a>;

/// Why `plumbline ingest` read nothing in, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read log file {path}: {source}; nothing was ingested")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("log file {path} is a directory; nothing was ingested")]
    Directory { path: PathBuf },
    #[error(
        "log file {path} is not a regular file; nothing was ingested (to read a pipe, give - \
         and send it to standard input)"
    )]
    NotRegular { path: PathBuf },
    #[error("- (standard input) is given more than once")]
    StdinTwice,
    #[error(
        "{path}: {} is dated more than a day ahead of this machine's clock (line {line}: \
         {error}), so nothing was ingested; is the clock right?",
        first_lines(*.lines)
    )]
    Future {
        path: PathBuf,
        lines: u64,
        line: u64,
        error: LineError,
    },
    #[error(
        "{path}: {} as --format {format} (line {line}: {error}), so nothing was ingested; is \
         --format right?{suggestion}",
        none_read(*.lines)
    )]
    WrongFormat {
        path: PathBuf,
        lines: u64,
        format: &'static str,
        line: u64,
        error: LineError,
        suggestion: String,
    },
    #[error(transparent)]
    File(#[from] FileError),
}

/// One input of the command, checked.
enum Input<'a> {
    Stdin,
    File(&'a Path),
}

pub fn run(args: &IngestArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    super::init_tracing("warn");
    let salt = file
        .secret(SecretSource::Salt, &process_env)?
        .ok_or_else(|| SecretError::missing(SecretSource::Salt))?;
    let options = options(args, &salt);
    let inputs = check_inputs(&args.files, options)?;
    match args.source.target(file, &process_env) {
        Target::Data(dir) => {
            let mut persisted = Persisted::open(&dir, true, file.settings()?)?;
            let detect = file.detect_settings().map_err(ConfigError::from)?;
            let detection = Offline::start(&mut persisted, &detect, file.policy()?)?;
            let sink: Sink<'_> = Box::new(|entries| {
                for batch in to_batches(entries) {
                    persisted.apply_records(&batch)?;
                }
                detection.after_chunk(&mut persisted);
                Ok(())
            });
            let code = ingest_all(&inputs, options, sink);
            detection.finish();
            persisted.close()?;
            Ok(code)
        }
        Target::Server(url) => {
            let token = file
                .secret(SecretSource::IngestToken, &process_env)?
                .ok_or_else(|| SecretError::missing(SecretSource::IngestToken))?;
            let client = Client::new(&url, Some(token), SecretSource::IngestToken)
                .with_hint(offline_hint(&process_env));
            client.post_batch(&to_batch(&[]))?;
            Ok(ingest_all(&inputs, options, poster(&client)))
        }
    }
}

/// A file's first lines, all of which are dated ahead.
fn first_lines(lines: u64) -> String {
    if lines == 1 {
        "its one line".to_string()
    } else {
        format!("each of its first {lines} lines")
    }
}

/// How many of a file's first lines were tried, none of which read.
fn none_read(lines: u64) -> String {
    if lines == 1 {
        "its one line does not read".to_string()
    } else {
        format!("none of its first {lines} lines reads")
    }
}

fn options<'a>(args: &'a IngestArgs, salt: &'a Secret) -> Options<'a> {
    Options {
        format: args.format.into(),
        salt: salt.expose(),
        host: &args.host,
    }
}

/// Every input checked before any is read in: `-` at most once; each file exists, is a
/// regular file, can be read, and its first [`PROBE_LINES`] lines are not all bad.
fn check_inputs<'a>(
    files: &'a [PathBuf],
    options: Options<'_>,
) -> Result<Vec<Input<'a>>, IngestError> {
    let mut inputs = Vec::with_capacity(files.len());
    let mut stdin = false;
    for path in files {
        if path.as_os_str() == "-" {
            if std::mem::replace(&mut stdin, true) {
                return Err(IngestError::StdinTwice);
            }
            inputs.push(Input::Stdin);
        } else {
            check_file(path, options)?;
            inputs.push(Input::File(path));
        }
    }
    Ok(inputs)
}

fn check_file(path: &Path, options: Options<'_>) -> Result<(), IngestError> {
    let open = |source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(open)?;
    if meta.is_dir() {
        return Err(IngestError::Directory {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        return Err(IngestError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let report = logfile::probe(path, options, PROBE_LINES).map_err(|e| match e {
        FileError::Read { source, .. } => open(source),
        other => IngestError::File(other),
    })?;
    match report.examples.first() {
        Some((line, error)) if report.none_read() && report.all_future() => {
            Err(IngestError::Future {
                path: path.to_path_buf(),
                lines: report.lines,
                line: *line,
                error: error.clone(),
            })
        }
        Some((line, error)) if report.none_read() => Err(IngestError::WrongFormat {
            path: path.to_path_buf(),
            lines: report.lines,
            format: options.format.name(),
            line: *line,
            error: error.clone(),
            suggestion: suggestion(&report, options),
        }),
        _ => Ok(()),
    }
}

/// ` --format OTHER reads them` when the first bad line reads in the other format.
fn suggestion(report: &FileReport, options: Options<'_>) -> String {
    if report.other_format_reads {
        format!(" --format {} reads them", options.format.other().name())
    } else {
        String::new()
    }
}

/// A sink posting each chunk as a batch of this process's own instance.
fn poster(client: &Client) -> Sink<'_> {
    let mut sender = Sender {
        client,
        instance: RandomState::new().hash_one(std::process::id()),
        seq: 0,
        stored: 0,
        fits: usize::MAX,
    };
    Box::new(move |entries| {
        for range in batch_ranges(entries) {
            sender.post(&entries[range]).map_err(|source| SendError {
                stored: sender.stored,
                source,
            })?;
        }
        Ok(())
    })
}

/// A batch the collector did not take, and what it took before.
#[derive(Debug, thiserror::Error)]
#[error(
    "{source} ({stored} records were stored before it; sending the same input again counts \
     those twice)"
)]
struct SendError {
    stored: u64,
    source: ClientError,
}

/// Posts entries as batches of one instance, numbered in turn.
struct Sender<'a> {
    client: &'a Client,
    instance: u64,
    seq: u64,
    /// Entries the collector took.
    stored: u64,
    /// Most entries a batch holds since one was refused as too large, so later chunks are cut
    /// to that size at once instead of being halved down to it again.
    fits: usize,
}

impl Sender<'_> {
    /// Posts the entries as one batch or, when the collector refuses that as too large (its
    /// `max_body_bytes` may be set below a chunk's size) or it holds more strings than a
    /// collector takes, as two halves, and so on down to one entry; later chunks go in pieces
    /// of the size that fitted. A refused batch was not stored, so its entries are sent once.
    fn post(&mut self, entries: &[Entry]) -> Result<(), ClientError> {
        if entries.len() > self.fits {
            for piece in entries.chunks(self.fits) {
                self.post(piece)?;
            }
            return Ok(());
        }
        let mut batch = to_batch(entries);
        let halves = |sender: &mut Self| {
            let (first, second) = entries.split_at(entries.len() / 2);
            sender.fits = sender.fits.min(first.len());
            sender.post(first)?;
            sender.post(second)
        };
        if batch.strings.len() > Limits::default().max_strings && entries.len() > 1 {
            return halves(self);
        }
        batch.node = NODE.to_string();
        batch.instance = self.instance;
        batch.seq = self.seq;
        self.seq += 1;
        match self.client.post_batch(&batch) {
            Err(err) if err.too_large() && entries.len() > 1 => halves(self),
            Err(err) if err.too_large() => Err(ClientError::RecordTooLarge {
                bytes: batch.encode().len(),
                refused: Box::new(err),
            }),
            Err(err) => Err(err),
            Ok(_) => {
                self.stored += entries.len() as u64;
                Ok(())
            }
        }
    }
}

/// Every input through the sink, reported; stops at the first that cannot be read in. Fails
/// when an input had lines but gave no record.
fn ingest_all(inputs: &[Input<'_>], options: Options<'_>, mut sink: Sink<'_>) -> ExitCode {
    let mut failed = false;
    for (done, input) in inputs.iter().enumerate() {
        let read = match input {
            Input::Stdin => {
                let stdin = std::io::stdin().lock();
                let name = Path::new(STDIN_NAME);
                logfile::ingest_reader(name, stdin, options, u64::MAX, &mut sink)
            }
            Input::File(path) => logfile::ingest_file(path, options, &mut sink),
        };
        match read {
            Ok(report) => failed |= !judge(&report, options),
            Err(err) => {
                let left = inputs.len() - done - 1;
                eprintln!("plumbline: {err}; stopped, {left} more inputs not read");
                return ExitCode::FAILURE;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the report; false when nothing of a file with lines could be read.
fn judge(report: &FileReport, options: Options<'_>) -> bool {
    print_report(report);
    let path = report.path.display();
    let format = options.format.name();
    let suggestion = suggestion(report, options);
    let ahead = "dated more than a day ahead of this machine's clock; is the clock right?";
    if report.none_read() && report.all_future() {
        eprintln!("plumbline: {path}: every line is {ahead}");
        return false;
    }
    if report.none_read() {
        eprintln!(
            "plumbline: {path}: no line reads as --format {format}; is --format right?{suggestion}"
        );
        return false;
    }
    if report.mostly_bad() {
        let why = if report.all_future() {
            format!(", each {ahead}")
        } else {
            format!("; is --format {format} right?{suggestion}")
        };
        eprintln!(
            "plumbline: warning: {path}: {} of {} lines are bad, more than read as records \
             ({}){why}",
            report.bad, report.lines, report.records
        );
    }
    true
}

fn print_report(report: &FileReport) {
    let path = report.path.display();
    println!(
        "{path}: {} lines, {} records, {} bad lines",
        report.lines, report.records, report.bad
    );
    for (line, err) in &report.examples {
        eprintln!("{path}:{line}: {err}");
    }
    let more = report.bad.saturating_sub(EXAMPLES as u64);
    if more > 0 {
        eprintln!("{path}: ... and {more} more bad lines");
    }
}
