//! The `plumbline` command line: `serve`, the read commands (`inventory`, `consumers`,
//! `filters`, `decisions`, `audit`), `ingest`, and the decision commands (`block`, `throttle`,
//! `unblock`). The read commands and `ingest` work against a running collector (`--server
//! URL`) or, when none runs, directly on a data directory (`--data DIR`); decision changes go
//! to a running collector only, so filters learn of them.
//!
//! Secrets (tokens, salt) come from environment variables or files, never from flags. A raw
//! key given to `--key` is never printed; `--key -` reads it from stdin, out of the process
//! list.

mod client;
mod decide;
mod ingest;
mod query;
mod serve;
mod table;

use crate::api::ServeError;
use crate::config::secret::SecretError;
use crate::config::ConfigError;
use crate::ingest::Format;
use crate::store::StoreError;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where a running collector is reached by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

#[derive(Debug, Parser)]
#[command(
    name = "plumbline",
    version,
    about = "Plumbline collector: API inventory and consumer profiles from traffic"
)]
pub struct Cli {
    /// Config file (TOML).
    #[arg(long, global = true, env = "PLUMBLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: receive batches, serve the API.
    Serve(ServeArgs),
    /// List the endpoints seen (sorted by calls).
    Inventory(QueryArgs),
    /// List the consumers seen (sorted by calls).
    Consumers(ConsumersArgs),
    /// List the filter instances that reported.
    Filters(QueryArgs),
    /// Read access log files into the inventory and consumer profiles.
    Ingest(IngestArgs),
    /// Block a consumer, key or client address for a while (needs the operator token).
    Block(BlockArgs),
    /// Throttle a consumer, key or client address to a rate for a while (operator token).
    Throttle(ThrottleArgs),
    /// Remove a decision, by id or by subject (operator token).
    Unblock(UnblockArgs),
    /// List the decisions filters enforce, with the set's version and mode.
    Decisions(QueryArgs),
    /// Show the audit log of decision changes, newest first.
    Audit(AuditArgs),
}

/// Who a decision applies to: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SubjectArgs {
    /// A consumer id (32 hex digits).
    #[arg(long, value_name = "ID")]
    pub consumer: Option<String>,
    /// A consumer's raw key, hashed by the collector with the salt; `-` reads it from stdin.
    #[arg(long, value_name = "RAW_KEY")]
    pub key: Option<String>,
    /// A client address or CIDR prefix, like 203.0.113.7 or 10.0.0.0/8.
    #[arg(long, value_name = "IP|CIDR")]
    pub address: Option<String>,
}

/// A running collector, for commands that change decisions.
#[derive(Debug, Args, Clone)]
pub struct ServerArg {
    /// The collector [default: http://127.0.0.1:7070].
    #[arg(long, env = "PLUMBLINE_SERVER", value_name = "URL")]
    pub server: Option<String>,
}

impl ServerArg {
    fn url(&self) -> String {
        let url = self.server.as_deref().unwrap_or(DEFAULT_SERVER);
        url.trim_end_matches('/').to_string()
    }
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// How long the block lasts, like 90s, 30m, 1h or 7d.
    #[arg(long)]
    pub ttl: String,
    /// Why: shown with the decision and kept in the audit log.
    #[arg(long)]
    pub reason: String,
    /// The status blocked requests get.
    #[arg(long, default_value_t = 403)]
    pub status: u16,
    /// Print the decision as the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, Args)]
pub struct ThrottleArgs {
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// Requests allowed per Envoy instance, like 10/s, 600/m or 36000/h; 429 above it.
    #[arg(long)]
    pub rate: String,
    /// Requests allowed in a burst [default: one second's worth of the rate].
    #[arg(long)]
    pub burst: Option<u32>,
    /// How long the throttle lasts, like 90s, 30m, 1h or 7d.
    #[arg(long)]
    pub ttl: String,
    /// Why: shown with the decision and kept in the audit log.
    #[arg(long)]
    pub reason: String,
    /// Print the decision as the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArg,
}

/// Which decision to remove: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct UnblockTarget {
    /// The decision's id.
    #[arg(long)]
    pub id: Option<u64>,
    /// The consumer id the decision is on.
    #[arg(long, value_name = "ID")]
    pub consumer: Option<String>,
    /// The raw key of the consumer the decision is on; `-` reads it from stdin.
    #[arg(long, value_name = "RAW_KEY")]
    pub key: Option<String>,
    /// The exact address or prefix the decision is on (a covering prefix is not removed).
    #[arg(long, value_name = "IP|CIDR")]
    pub address: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    #[command(flatten)]
    pub target: UnblockTarget,
    /// Print what was removed as the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArg,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Entries to show, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7070].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory [default: ./plumbline-data].
    #[arg(long, env = "PLUMBLINE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Where a command finds the state.
#[derive(Debug, Args, Clone)]
pub struct Source {
    /// A running collector [default: http://127.0.0.1:7070].
    #[arg(long, env = "PLUMBLINE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Use this data directory directly (no collector may be running on it).
    #[arg(long, env = "PLUMBLINE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: Source,
}

#[derive(Debug, Args)]
pub struct ConsumersArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Show only the consumer of this raw key (hashed with the salt); `-` reads it from stdin.
    #[arg(long, value_name = "RAW_KEY")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Log format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Host of requests whose log line names none.
    #[arg(long, default_value = "-")]
    pub host: String,
    #[command(flatten)]
    pub source: Source,
    /// Log files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Apache/nginx combined (or common) log format.
    Combined,
    /// Envoy JSON access log.
    EnvoyJson,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Format {
        match arg {
            FormatArg::Combined => Format::Combined,
            FormatArg::EnvoyJson => Format::EnvoyJson,
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read the key from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("the key is empty")]
    EmptyKey,
    #[error(transparent)]
    Value(#[from] crate::decide::parse::ParseError),
    #[error(transparent)]
    ConsumerId(#[from] plumbline_wire::ParseConsumerIdError),
    #[error("burst must be at least 1")]
    Burst,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let file = crate::config::FileConfig::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve(args) => serve::run(args, &file),
        Command::Inventory(args) => query::inventory(&args, &file),
        Command::Consumers(args) => query::consumers(&args, &file),
        Command::Filters(args) => query::filters(&args, &file),
        Command::Ingest(args) => ingest::run(&args, &file),
        Command::Block(args) => decide::block(&args, &file),
        Command::Throttle(args) => decide::throttle(&args, &file),
        Command::Unblock(args) => decide::unblock(&args, &file),
        Command::Decisions(args) => decide::list(&args, &file),
        Command::Audit(args) => decide::audit(&args, &file),
    }
}

/// Where a read or ingest command goes: a running collector or a data directory.
enum Target {
    Server(String),
    Data(PathBuf),
}

impl Source {
    /// `--server` wins; then `--data`; else the default server.
    fn target(&self) -> Target {
        match (&self.server, &self.data) {
            (Some(url), _) => Target::Server(url.trim_end_matches('/').to_string()),
            (None, Some(dir)) => Target::Data(dir.clone()),
            (None, None) => Target::Server(DEFAULT_SERVER.to_string()),
        }
    }
}

/// A raw key from its argument; `-` reads it from stdin (one trailing newline dropped).
fn read_key(arg: &str) -> Result<String, CliError> {
    use std::io::Read;
    let raw = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(CliError::Stdin)?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else {
        arg.to_string()
    };
    if raw.is_empty() {
        return Err(CliError::EmptyKey);
    }
    Ok(raw)
}

/// Logs to stderr; `RUST_LOG` overrides `default`.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
