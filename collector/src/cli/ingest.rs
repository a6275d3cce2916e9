//! `plumbline ingest`: reads log files and feeds their records either straight into a data
//! directory (`--data`) or to a running collector as batches (`--server`, with
//! `PLUMBLINE_INGEST_TOKEN`). Consumer ids are keyed hashes made with the salt
//! (`PLUMBLINE_SALT`), which must be the filters' salt for ids to match.
//!
//! Batches sent to a collector come from node `plumbline-ingest` with a random instance id,
//! so they show in `/v1/filters`; offline ingest records no filter instance.

use super::client::Client;
use super::{CliError, IngestArgs, Target};
use crate::config::secret::{Secret, SecretError, SecretSource};
use crate::config::{process_env, FileConfig};
use crate::ingest::entry::{to_batch, Entry};
use crate::ingest::logfile::{self, FileReport, Options, EXAMPLES};
use crate::store::persisted::Persisted;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::process::ExitCode;

/// Node name of batches posted by this command.
pub const NODE: &str = "plumbline-ingest";

type Sink<'a> =
    Box<dyn FnMut(&[Entry]) -> Result<(), Box<dyn std::error::Error + Send + Sync>> + 'a>;

pub fn run(args: &IngestArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    super::init_tracing("warn");
    let salt = file
        .secret(SecretSource::Salt, &process_env)?
        .ok_or_else(|| SecretError::missing(SecretSource::Salt))?;
    match args.source.target() {
        Target::Data(dir) => {
            let mut persisted = Persisted::open(&dir, true, file.settings()?)?;
            let sink: Sink<'_> = Box::new(|entries| {
                persisted.apply_records(&to_batch(entries))?;
                Ok(())
            });
            let code = ingest_all(args, &salt, sink);
            persisted.close()?;
            Ok(code)
        }
        Target::Server(url) => {
            let token = file
                .secret(SecretSource::IngestToken, &process_env)?
                .ok_or_else(|| SecretError::missing(SecretSource::IngestToken))?;
            let client = Client::new(&url, Some(token));
            Ok(ingest_all(args, &salt, poster(&client)))
        }
    }
}

/// A sink posting each chunk as a batch of this process's own instance.
fn poster(client: &Client) -> Sink<'_> {
    let instance = RandomState::new().hash_one(std::process::id());
    let mut seq = 0u64;
    Box::new(move |entries| {
        let mut batch = to_batch(entries);
        batch.node = NODE.to_string();
        batch.instance = instance;
        batch.seq = seq;
        seq += 1;
        client.post_batch(&batch)?;
        Ok(())
    })
}

/// Every file through the sink; a file that cannot be read is reported and skipped.
fn ingest_all(args: &IngestArgs, salt: &Secret, mut sink: Sink<'_>) -> ExitCode {
    let options = Options {
        format: args.format.into(),
        salt: salt.expose(),
        host: &args.host,
    };
    let mut failed = false;
    for path in &args.files {
        match logfile::ingest_file(path, options, &mut sink) {
            Ok(report) => print_report(&report),
            Err(err) => {
                eprintln!("plumbline: {err}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
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
