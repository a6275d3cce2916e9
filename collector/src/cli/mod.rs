//! The `plumbline` command line: `serve`, the read commands (`inventory`, `consumers`,
//! `filters`, `decisions`, `audit`, `alerts`), `ingest`, the decision commands (`block`,
//! `throttle`, `unblock`) and `ack` for alerts.
//!
//! Where the commands other than `serve` go: a data directory only when `--data DIR` is on
//! their command line (`PLUMBLINE_DATA` and the config file's `data` are `serve`'s alone, so
//! exporting them for a running collector never sends a query past it); otherwise the
//! collector at `--server URL`, else `PLUMBLINE_SERVER`, else `http://<listen>` of the config
//! file, else [`DEFAULT_SERVER`]. `--server` and `--data` together are refused. Decision
//! changes go to a running collector only, so filters learn of them.
//!
//! Secrets (tokens, salt) come from environment variables or files, never from flags. A raw
//! key given to `--key` is never printed; `--key -` reads it from stdin, out of the process
//! list.

mod alerts;
mod client;
mod decide;
mod ingest;
mod query;
mod serve;
mod table;

use crate::api::ServeError;
use crate::config::secret::SecretError;
use crate::config::{ConfigError, FileConfig};
use crate::ingest::Format;
use crate::store::StoreError;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Where a running collector is reached by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";
/// The variable naming the collector when `--server` is not given.
pub const SERVER_VAR: &str = "PLUMBLINE_SERVER";
/// `serve`'s data directory; other commands take a data directory from `--data` only.
pub const DATA_VAR: &str = "PLUMBLINE_DATA";

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
    ///
    /// Every file is checked before any is read in: it exists, is a regular file, can be read,
    /// and its first lines read in the --format given. Ingesting adds to what is stored:
    /// ingesting the same file twice counts its requests twice.
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
    /// List the alerts raised by detection, newest first, with their evidence.
    Alerts(AlertsArgs),
    /// Acknowledge an alert (needs the operator token; audited).
    Ack(AckArgs),
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Only alerts of this status.
    #[arg(long, value_enum)]
    pub status: Option<AlertStatusArg>,
    /// Alerts to show at most, newest first.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlertStatusArg {
    Open,
    Acknowledged,
    Resolved,
}

impl From<AlertStatusArg> for plumbline_detect::AlertStatus {
    fn from(arg: AlertStatusArg) -> Self {
        match arg {
            AlertStatusArg::Open => plumbline_detect::AlertStatus::Open,
            AlertStatusArg::Acknowledged => plumbline_detect::AlertStatus::Acknowledged,
            AlertStatusArg::Resolved => plumbline_detect::AlertStatus::Resolved,
        }
    }
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The alert's id.
    pub id: u64,
    /// Print the alert as the API's JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArg,
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
    /// The collector [default: $PLUMBLINE_SERVER, else http://<listen> of the config file,
    /// else http://127.0.0.1:7070].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

impl ServerArg {
    fn url(&self, file: &FileConfig, env: Env<'_>) -> String {
        server_url(self.server.as_deref(), file, env)
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
    /// Requests allowed per Envoy instance, like 10/s, 30/m or 100/h; 429 above it.
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
    /// Data directory [default: data of the config file, else ./plumbline-data].
    #[arg(long, env = "PLUMBLINE_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Where a command finds the state.
#[derive(Debug, Args, Clone)]
pub struct Source {
    /// A running collector [default: $PLUMBLINE_SERVER, else http://<listen> of the config
    /// file, else http://127.0.0.1:7070].
    #[arg(long, value_name = "URL", conflicts_with = "data")]
    pub server: Option<String>,
    /// Use this data directory instead of a collector (none may be running on it).
    /// PLUMBLINE_DATA is never read here: it is for `serve` only.
    #[arg(long, value_name = "DIR")]
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
    /// Log files; `-` reads standard input.
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
    #[error("empty key: {0}")]
    EmptyKey(&'static str),
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error(transparent)]
    Detection(#[from] crate::detect::flow::OfflineError),
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
    file.check().map_err(|source| match &cli.config {
        Some(path) => crate::config::ConfigError::InFile {
            path: path.clone(),
            source: Box::new(source),
        },
        None => source,
    })?;
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
        Command::Alerts(args) => alerts::list(&args, &file),
        Command::Ack(args) => alerts::ack(&args, &file),
    }
}

/// The environment, as a function so tests can give their own.
type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Where a read or ingest command goes: a running collector or a data directory.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Server(String),
    Data(PathBuf),
}

impl Source {
    /// `--data` when given (clap refuses it with `--server`); else the collector of
    /// [`server_url`].
    fn target(&self, file: &FileConfig, env: Env<'_>) -> Target {
        match &self.data {
            Some(dir) => Target::Data(dir.clone()),
            None => Target::Server(server_url(self.server.as_deref(), file, env)),
        }
    }
}

/// The collector's URL: `flag` (`--server`), else `PLUMBLINE_SERVER`, else `http://<listen>`
/// of the config file, else [`DEFAULT_SERVER`].
pub fn server_url(flag: Option<&str>, file: &FileConfig, env: Env<'_>) -> String {
    let url = flag
        .map(str::to_string)
        .or_else(|| env(SERVER_VAR).filter(|v| !v.is_empty()))
        .or_else(|| file.listen.as_deref().map(listen_url))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    url.trim_end_matches('/').to_string()
}

/// `http://` and a listen address, a wildcard address (`0.0.0.0`, `[::]`) made loopback.
fn listen_url(listen: &str) -> String {
    match listen.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback = match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            };
            format!("http://{}", SocketAddr::new(loopback, addr.port()))
        }
        _ => format!("http://{listen}"),
    }
}

/// What to add when a collector cannot be reached by a command that could read a data
/// directory instead; says so when `PLUMBLINE_DATA` is set, which such commands ignore.
fn offline_hint(env: Env<'_>) -> String {
    let mut hint = String::from(
        " --server URL names another collector; --data DIR reads a stopped collector's data \
         directory",
    );
    if let Some(dir) = env(DATA_VAR).filter(|v| !v.is_empty()) {
        hint.push_str(&format!(
            "; {DATA_VAR} is used by `serve` only: give --data {dir} to read it here"
        ));
    }
    hint
}

/// A raw key from its argument; `-` reads it from stdin (one trailing newline dropped).
fn read_key(arg: &str) -> Result<String, CliError> {
    use std::io::Read;
    if arg.is_empty() {
        return Err(CliError::EmptyKey(
            "--key needs a consumer's raw key, or - to read it from stdin",
        ));
    }
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(CliError::Stdin)?;
    let raw = text.trim_end_matches(['\n', '\r']);
    if raw.is_empty() {
        return Err(CliError::EmptyKey("stdin held no key for --key -"));
    }
    Ok(raw.to_string())
}

/// An error and its causes on one line, each said once: a cause whose text is already in the
/// message (`cannot read x: No such file...` over the `io::Error` it wraps) is not repeated.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let said = next.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = next.source();
    }
    text
}

/// Logs to stderr; `RUST_LOG` overrides `default`. A log line that cannot be written (stderr
/// a closed pipe) is lost, not reported on stderr, which would panic the collector.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(args: &[&str]) -> Source {
        let mut argv = vec!["plumbline", "inventory"];
        argv.extend(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Inventory(query) => query.source,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn server(url: &str) -> Target {
        Target::Server(url.to_string())
    }

    #[test]
    fn plumbline_data_is_never_where_a_query_goes() {
        // Before, an exported PLUMBLINE_DATA sent queries offline, to the running collector's
        // own (held) data directory.
        let env = |name: &str| (name == DATA_VAR).then(|| "held-by-serve".to_string());
        let file = FileConfig::default();
        assert_eq!(source(&[]).target(&file, &env), server(DEFAULT_SERVER));
        let given = source(&["--data", "d"]).target(&file, &env);
        assert_eq!(given, Target::Data(PathBuf::from("d")));
    }

    #[test]
    fn the_collector_is_the_flag_then_plumbline_server_then_the_config_listen_address() {
        // Before, the config file's `listen` was ignored by every command but `serve`.
        let file = FileConfig {
            listen: Some("0.0.0.0:7171".into()),
            ..FileConfig::default()
        };
        let var = |name: &str| (name == SERVER_VAR).then(|| "http://var:1/".to_string());
        let none = |_: &str| None;
        let flag = source(&["--server", "http://flag:1"]);
        assert_eq!(flag.target(&file, &var), server("http://flag:1"));
        assert_eq!(source(&[]).target(&file, &var), server("http://var:1"));
        assert_eq!(
            source(&[]).target(&file, &none),
            server("http://127.0.0.1:7171")
        );
        let v6 = FileConfig {
            listen: Some("[::]:7171".into()),
            ..FileConfig::default()
        };
        assert_eq!(source(&[]).target(&v6, &none), server("http://[::1]:7171"));
        let named = FileConfig {
            listen: Some("collector.internal:7171".into()),
            ..FileConfig::default()
        };
        let url = source(&[]).target(&named, &none);
        assert_eq!(url, server("http://collector.internal:7171"));
    }

    #[test]
    fn data_and_server_on_one_command_line_are_refused() {
        // Before, --server silently won and --data was ignored.
        let argv = [
            "plumbline",
            "inventory",
            "--data",
            "d",
            "--server",
            "http://s",
        ];
        let err = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(err.contains("cannot be used with"), "{err}");
    }

    #[test]
    fn each_cause_of_an_error_is_said_once() {
        // Before: `cannot read config file x: No such file or directory (os error 2): No such
        // file or directory (os error 2)`.
        let source = std::io::Error::from(std::io::ErrorKind::NotFound);
        let said = source.to_string();
        let err = ConfigError::Read {
            path: PathBuf::from("x.toml"),
            source,
        };
        let text = error_chain(&err);
        assert_eq!(text, format!("cannot read config file x.toml: {said}"));
        let quiet = std::io::Error::other(ConfigError::Range {
            key: "k",
            value: 0,
            min: 1,
        });
        let wrapped = ServeError::Io(quiet);
        assert_eq!(
            error_chain(&wrapped),
            "server failed: config value k = 0 is too small: it must be at least 1"
        );
    }

    #[test]
    fn an_empty_key_is_refused_as_such() {
        // Before, `--key ''` was looked up after the collector was asked.
        let err = read_key("").unwrap_err().to_string();
        assert!(err.starts_with("empty key: "), "{err}");
    }
}
