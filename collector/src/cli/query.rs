//! `plumbline inventory`, `consumers` and `filters`: the API's views from a running collector
//! or a data directory, printed as aligned tables or as the API's exact JSON.

use super::client::Client;
use super::table::{number, render, text};
use super::{offline_hint, CliError, ConsumersArgs, QueryArgs, Source, Target};
use crate::api::views::{ConsumerView, ConsumersView, FiltersView, InventoryView};
use crate::config::secret::{SecretError, SecretSource};
use crate::config::{process_env, FileConfig};
use crate::pipeline::Pipeline;
use crate::store::persisted::Persisted;
use plumbline_wire::consumer_id;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::process::ExitCode;

/// `plumbline inventory`.
pub fn inventory(args: &QueryArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let view: InventoryView = fetch(&args.source, file, "/v1/inventory", InventoryView::of)?;
    if args.json {
        print_json(&view);
    } else {
        print(&inventory_table(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// `plumbline consumers`.
pub fn consumers(args: &ConsumersArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let q = &args.query;
    let wanted = args
        .key
        .as_deref()
        .map(|k| key_to_id(k, file))
        .transpose()?;
    let mut view: ConsumersView = fetch(&q.source, file, "/v1/consumers", ConsumersView::of)?;
    if let Some(id) = wanted {
        view.consumers.retain(|c| c.id == id);
        if view.consumers.is_empty() {
            if q.json {
                print_json(&view);
            }
            eprintln!("plumbline: no consumer has the id {id} (the key hashed with the salt)");
            return Ok(ExitCode::FAILURE);
        }
    }
    if q.json {
        print_json(&view);
    } else {
        print(&consumers_table(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// `plumbline filters`.
pub fn filters(args: &QueryArgs, file: &FileConfig) -> Result<ExitCode, CliError> {
    let view: FiltersView = fetch(&args.source, file, "/v1/filters", FiltersView::of)?;
    if args.json {
        print_json(&view);
    } else {
        print(&filters_table(&view));
    }
    Ok(ExitCode::SUCCESS)
}

/// A view from the collector (`path`) or built from the data directory (`build`).
fn fetch<T: DeserializeOwned>(
    source: &Source,
    file: &FileConfig,
    path: &str,
    build: fn(&Pipeline) -> T,
) -> Result<T, CliError> {
    fetch_state(source, file, path, |persisted| {
        Ok(build(&persisted.pipeline))
    })
}

/// A view from the collector (`path`) or built from the whole state of the data directory.
pub(super) fn fetch_state<T: DeserializeOwned>(
    source: &Source,
    file: &FileConfig,
    path: &str,
    build: impl FnOnce(&mut Persisted) -> Result<T, CliError>,
) -> Result<T, CliError> {
    match source.target(file, &process_env) {
        Target::Server(url) => {
            let token = file.secret(SecretSource::OperatorToken, &process_env)?;
            let client = Client::new(&url, token, SecretSource::OperatorToken)
                .with_hint(offline_hint(&process_env));
            Ok(client.get_json(path)?)
        }
        Target::Data(dir) => {
            let mut persisted = Persisted::open(&dir, false, file.settings()?)?;
            let view = build(&mut persisted);
            persisted.close()?;
            view
        }
    }
}

/// The consumer id of a raw key (`-`: read from stdin), with the configured salt.
fn key_to_id(key: &str, file: &FileConfig) -> Result<String, CliError> {
    let raw = super::read_key(key)?;
    let salt = file
        .secret(SecretSource::Salt, &process_env)?
        .ok_or_else(|| SecretError::missing(SecretSource::Salt))?;
    Ok(consumer_id(salt.expose(), raw.as_bytes()).to_string())
}

pub(super) fn print_json<T: Serialize>(view: &T) {
    let mut text = serde_json::to_string(view).unwrap_or_default();
    text.push('\n');
    print(&text);
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(super) fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub fn inventory_table(view: &InventoryView) -> String {
    let columns = [
        text("METHOD"),
        text("HOST"),
        text("PATH"),
        number("CALLS"),
        number("CONSUMERS"),
        number("2XX"),
        number("3XX"),
        number("4XX"),
        number("5XX"),
        text("FIRST SEEN"),
        text("LAST SEEN"),
    ];
    let rows: Vec<Vec<String>> = view
        .endpoints
        .iter()
        .map(|e| {
            let s = e.status;
            vec![
                e.method.clone(),
                e.host.clone(),
                e.path.clone(),
                e.calls.to_string(),
                e.consumers.to_string(),
                s.s2xx.to_string(),
                s.s3xx.to_string(),
                s.s4xx.to_string(),
                s.s5xx.to_string(),
                e.first_seen.clone(),
                e.last_seen.clone(),
            ]
        })
        .collect();
    render(&columns, &rows)
}

pub fn consumers_table(view: &ConsumersView) -> String {
    let columns = [
        text("CONSUMER"),
        text("LABEL"),
        number("CALLS"),
        number("ENDPOINTS"),
        text("FIRST SEEN"),
        text("LAST SEEN"),
        text("ENFORCED"),
    ];
    let rows: Vec<Vec<String>> = view
        .consumers
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.label.clone().unwrap_or_else(|| "-".to_string()),
                c.calls.to_string(),
                c.endpoints.to_string(),
                c.first_seen.clone(),
                c.last_seen.clone(),
                enforced(c),
            ]
        })
        .collect();
    render(&columns, &rows)
}

/// `"670 blocked, 3 throttled"`; `-` when no decision touched the consumer.
fn enforced(c: &ConsumerView) -> String {
    let parts: Vec<String> = [
        (c.blocked, "blocked"),
        (c.throttled, "throttled"),
        (c.would_block, "would block"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        return "-".to_string();
    }
    parts.join(", ")
}

pub fn filters_table(view: &FiltersView) -> String {
    let columns = [
        text("NODE"),
        text("INSTANCE"),
        number("RECORDS"),
        number("DROPPED"),
        number("BATCHES"),
        text("LAST BATCH"),
    ];
    let rows: Vec<Vec<String>> = view
        .filters
        .iter()
        .map(|f| {
            vec![
                f.node.clone(),
                f.instance.clone(),
                f.records.to_string(),
                f.dropped.to_string(),
                f.batches.to_string(),
                f.last_batch.clone(),
            ]
        })
        .collect();
    render(&columns, &rows)
}
