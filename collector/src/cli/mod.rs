//! The `plumbline` command line: `serve`, the read commands (`inventory`, `consumers`,
//! `filters`) and `ingest`. Every command but `serve` works against a running collector
//! (`--server URL`) or, when none runs, directly on a data directory (`--data DIR`).
//!
//! Secrets (tokens, salt) come from environment variables or files, never from flags.

mod client;
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
