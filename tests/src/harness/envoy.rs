//! Envoy for one test: a config derived from the shipped `envoy/envoy.yaml`, the process, its
//! admin stats, and requests sent through its listener.
//!
//! The config is derived by text substitution (ports, the wasm file's absolute path, chosen
//! plugin settings) so tests exercise the file users run. A substitution that finds nothing
//! fails loudly: the shipped file and the harness must agree.

use super::http::{self, Request, Response};
use super::process::{wait_for, Process};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long Envoy may take to load the wasm filter and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The ports the shipped config uses and the ones a test gives instead.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub admin: u16,
    pub listener: u16,
    pub upstream: u16,
    pub collector: u16,
}

impl Ports {
    /// The ports written in `envoy/envoy.yaml`.
    pub const SHIPPED: Ports = Ports {
        admin: 9901,
        listener: 10000,
        upstream: 8000,
        collector: 7070,
    };
}

/// Why the shipped config could not be turned into a test config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "envoy/envoy.yaml: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The shipped config with the test's ports, the wasm file's absolute path and `plugin`
/// settings (JSON key and JSON value text) set in the plugin configuration.
pub fn derive_config(
    shipped: &str,
    ports: &Ports,
    wasm: &Path,
    plugin: &[(&str, String)],
) -> Result<String, ConfigError> {
    let from = Ports::SHIPPED;
    let mut text = shipped.to_string();
    for (what, old, new) in [
        ("admin", from.admin, ports.admin),
        ("listener", from.listener, ports.listener),
        ("upstream cluster", from.upstream, ports.upstream),
        ("collector cluster", from.collector, ports.collector),
    ] {
        text = replace_required(
            &text,
            &format!("port_value: {old}"),
            &format!("port_value: {new}"),
        )
        .map_err(|e| ConfigError(format!("{e} (the {what} port)")))?;
    }
    text = replace_required(
        &text,
        &format!("127.0.0.1:{}", from.collector),
        &format!("127.0.0.1:{}", ports.collector),
    )
    .map_err(|e| ConfigError(format!("{e} (collector_authority in the plugin JSON)")))?;
    text = set_wasm_path(&text, wasm)?;
    for (key, value) in plugin {
        text = set_plugin_field(&text, key, value)?;
    }
    Ok(text)
}

/// Replaces every `old` that is not followed by another digit; at least one must exist.
fn replace_required(text: &str, old: &str, new: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut found = false;
    while let Some(at) = rest.find(old) {
        let after = &rest[at + old.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(old);
        } else {
            out.push_str(new);
            found = true;
        }
        rest = after;
    }
    out.push_str(rest);
    if !found {
        return Err(format!("no `{old}` to replace"));
    }
    Ok(out)
}

/// Points every `filename:` that names `plumbline_filter.wasm` at `wasm`.
fn set_wasm_path(text: &str, wasm: &Path) -> Result<String, ConfigError> {
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.find("filename:") {
            Some(at) if line.contains("plumbline_filter.wasm") => {
                found = true;
                let end = if line.ends_with('\n') { "\n" } else { "" };
                let path = wasm.display();
                out.push_str(&format!("{}filename: \"{path}\"{end}", &line[..at]));
            }
            _ => out.push_str(line),
        }
    }
    if !found {
        return Err(ConfigError(
            "no `filename:` naming plumbline_filter.wasm".into(),
        ));
    }
    Ok(out)
}

/// Sets `"key": value` in the plugin JSON: replaces the value if the key is there, else adds
/// the pair before `"collector_authority"`.
///
/// Only the plugin JSON is searched (from the `{` that opens the object holding
/// `"collector_cluster"`), so a key quoted in a YAML comment above it is left alone.
pub fn set_plugin_field(text: &str, key: &str, value: &str) -> Result<String, ConfigError> {
    let quoted = format!("\"{key}\"");
    let json = plugin_json_start(text)?;
    if let Some(at) = text[json..].find(&quoted).map(|at| json + at) {
        let after_key = at + quoted.len();
        let colon = text[after_key..]
            .find(':')
            .map(|c| after_key + c + 1)
            .ok_or_else(|| ConfigError(format!("{quoted} has no `:` after it")))?;
        let value_end = text[colon..]
            .find([',', '}', '\n'])
            .map(|e| colon + e)
            .ok_or_else(|| ConfigError(format!("the value of {quoted} has no end")))?;
        return Ok(format!("{} {value}{}", &text[..colon], &text[value_end..]));
    }
    let anchor = "\"collector_authority\"";
    let at = text
        .find(anchor)
        .ok_or_else(|| ConfigError(format!("no {anchor} in the plugin JSON to add {quoted}")))?;
    Ok(format!("{}{quoted}: {value}, {}", &text[..at], &text[at..]))
}

/// Reads a JSON string field (`"key": "value"`) out of the shipped config's plugin JSON.
pub fn plugin_string(text: &str, key: &str) -> Result<String, ConfigError> {
    let quoted = format!("\"{key}\"");
    let missing = || ConfigError(format!("no string {quoted} in the plugin JSON"));
    let json = plugin_json_start(text)?;
    let at = text[json..].find(&quoted).ok_or_else(missing)? + json;
    let rest = &text[at + quoted.len()..];
    let rest = rest.trim_start().strip_prefix(':').ok_or_else(missing)?;
    let rest = rest.trim_start().strip_prefix('"').ok_or_else(missing)?;
    let end = rest.find('"').ok_or_else(missing)?;
    Ok(rest[..end].to_string())
}

/// Reads a JSON number field (`"key": 123`) out of the shipped config's plugin JSON.
pub fn plugin_number(text: &str, key: &str) -> Result<u64, ConfigError> {
    let quoted = format!("\"{key}\"");
    let missing = || ConfigError(format!("no number {quoted} in the plugin JSON"));
    let json = plugin_json_start(text)?;
    let at = text[json..].find(&quoted).ok_or_else(missing)? + json;
    let rest = text[at + quoted.len()..].trim_start();
    let rest = rest.strip_prefix(':').ok_or_else(missing)?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().map_err(|_| missing())
}

/// Where the plugin JSON starts: the `{` before the first `"collector_cluster"`.
fn plugin_json_start(text: &str) -> Result<usize, ConfigError> {
    let anchor = "\"collector_cluster\"";
    let at = text
        .find(anchor)
        .ok_or_else(|| ConfigError(format!("no {anchor} opening the plugin JSON")))?;
    text[..at]
        .rfind('{')
        .ok_or_else(|| ConfigError(format!("no `{{` before {anchor}")))
}

/// A running Envoy.
#[derive(Debug)]
pub struct Envoy {
    process: Process,
    ports: Ports,
    agent: ureq::Agent,
    bin: PathBuf,
    dir: PathBuf,
    concurrency: u32,
}

/// How often Envoy writes its log file (its default, 10 s, would hide recent lines from tests).
const LOG_FLUSH_MS: u64 = 100;

/// Log lines that mean a filter VM failed: a Rust panic, a wasm trap, a V8 runtime error, or
/// anything Envoy logs at critical level or the wasm extension at error level.
const VM_FAILURE_MARKS: [&str; 6] = [
    "panicked",
    "wasm trap",
    "RuntimeError",
    "[critical]",
    "[error][wasm]",
    "Plugin configured to fail",
];

impl Envoy {
    /// Writes `config` to `dir/envoy.yaml`, starts Envoy on it and waits for `/ready` and for
    /// its listener to accept connections.
    pub fn start(bin: &Path, config: &str, ports: Ports, concurrency: u32, dir: &Path) -> Envoy {
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, config).expect("write the test's envoy.yaml");
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_global(Some(Duration::from_secs(10)))
                .build(),
        );
        let process = spawn(bin, dir, concurrency);
        let mut envoy = Envoy {
            process,
            ports,
            agent,
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            concurrency,
        };
        envoy.wait_ready();
        envoy
    }

    /// Kills Envoy and starts it again on the same config: new worker VMs that hold nothing.
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = spawn(&self.bin, &self.dir, self.concurrency);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let log = self.log_path();
        let ready = format!("http://127.0.0.1:{}/ready", self.ports.admin);
        let listener = self.listener();
        let (process, agent) = (&mut self.process, &self.agent);
        wait_for(
            "Envoy to report ready and accept on its listener",
            READY_TIMEOUT,
            Duration::from_millis(100),
            || {
                if let Some(status) = process.exited() {
                    panic!(
                        "envoy exited ({status}) while starting; last lines of {}:\n{}\n{}",
                        log.display(),
                        super::process::log_tail(&log, 30),
                        process.log_tail(10)
                    );
                }
                let live = agent.get(&ready).call().map_err(|e| e.to_string())?;
                if live.status() != 200 {
                    return Err(format!("/ready answered {}", live.status()));
                }
                std::net::TcpStream::connect(listener)
                    .map(drop)
                    .map_err(|e| format!("listener: {e}"))
            },
        );
    }

    /// Envoy's own log (`--log-path`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("envoy.log")
    }

    /// Envoy's log as written so far, after waiting for one more flush of it.
    pub fn log_text(&self) -> String {
        std::thread::sleep(Duration::from_millis(3 * LOG_FLUSH_MS));
        let bytes = std::fs::read(self.log_path()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines of Envoy's log that show a filter VM failing (see [`VM_FAILURE_MARKS`]).
    pub fn vm_failures(&self) -> Vec<String> {
        let text = self.log_text();
        text.lines()
            .filter(|line| VM_FAILURE_MARKS.iter().any(|mark| line.contains(mark)))
            .map(str::to_string)
            .collect()
    }

    /// Connections each worker has accepted on the listener, by worker index, from Envoy's
    /// per-worker listener stats (`listener.<address>.worker_<n>.downstream_cx_total`).
    pub fn worker_connections(&self) -> Result<Vec<u64>, String> {
        let prefix = format!("listener.127.0.0.1_{}.worker_", self.ports.listener);
        let filter = format!(
            "^{}[0-9]+\\.downstream_cx_total$",
            prefix.replace('.', "\\.")
        );
        let stats = self.stats_matching(&filter)?;
        let mut workers = vec![0; self.concurrency as usize];
        for (name, value) in stats {
            let index = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split('.').next())
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(slot) = index.and_then(|i| workers.get_mut(i)) {
                *slot = value;
            }
        }
        Ok(workers)
    }

    pub fn listener(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.listener))
    }

    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// Sends one request through Envoy's listener on a new connection.
    pub fn send(&self, request: &Request) -> io::Result<Response> {
        http::send(self.listener(), request)
    }

    /// Every stat of the admin `/stats` page with an integer value.
    pub fn stats(&self) -> Result<BTreeMap<String, u64>, String> {
        self.stats_matching("")
    }

    /// The integer stats whose names match the regular expression `filter` (all when empty).
    pub fn stats_matching(&self, filter: &str) -> Result<BTreeMap<String, u64>, String> {
        let url = format!("http://127.0.0.1:{}/stats", self.ports.admin);
        let mut request = self.agent.get(&url);
        if !filter.is_empty() {
            request = request.query("filter", filter);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        let text = response
            .body_mut()
            .with_config()
            .limit(32 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok(parse_stats(&text))
    }

    /// The sum of the stats whose names end with `suffix` (e.g. `plumbline.batches_failed`,
    /// which Envoy shows with a `wasmcustom.` prefix); 0 when there is none yet.
    pub fn counter(&self, suffix: &str) -> Result<u64, String> {
        let stats = self.stats()?;
        Ok(stats
            .iter()
            .filter(|(name, _)| name.ends_with(suffix))
            .map(|(_, value)| value)
            .sum())
    }

    /// The Plumbline stats (names containing `plumbline`), for failure messages.
    pub fn plumbline_stats(&self) -> String {
        match self.stats() {
            Ok(stats) => stats
                .iter()
                .filter(|(name, _)| name.contains("plumbline"))
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("(stats unavailable: {e})"),
        }
    }
}

fn spawn(bin: &Path, dir: &Path, concurrency: u32) -> Process {
    let mut command = Command::new(bin);
    command
        .arg("-c")
        .arg(dir.join("envoy.yaml"))
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .arg("--disable-hot-restart")
        .arg("--log-level")
        .arg("info")
        .arg("--log-path")
        .arg(dir.join("envoy.log"))
        .arg("--file-flush-interval-msec")
        .arg(LOG_FLUSH_MS.to_string());
    Process::spawn("envoy", command, &dir.join("envoy.stdout.log"))
}

/// Parses `name: value` lines, keeping those whose value is an integer.
pub fn parse_stats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(": ")?;
            Some((name.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 9901 } }
static_resources:
  listeners:
  - address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
    filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: envoy.filters.http.wasm
            typed_config:
              config:
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {"collector_cluster": "plumbline_collector",
                     "collector_authority": "127.0.0.1:7070",
                     "ingest_token": "plumbline-demo-token"}
                vm_config:
                  code: { local: { filename: target/wasm32-wasip1/wasm/plumbline_filter.wasm } }
  clusters:
  - name: upstream
    load_assignment: { endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8000 } } } } ] } ] }
  - name: plumbline_collector
    load_assignment: { endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 7070 } } } } ] } ] }
"#;

    fn ports() -> Ports {
        Ports {
            admin: 40001,
            listener: 40002,
            upstream: 40003,
            collector: 40004,
        }
    }

    #[test]
    fn every_port_and_the_wasm_path_are_replaced() {
        let wasm = Path::new("/abs/plumbline_filter.wasm");
        let out = derive_config(SAMPLE, &ports(), wasm, &[]).unwrap();
        for gone in ["9901", "10000", "8000", "7070", "target/wasm32"] {
            assert!(!out.contains(gone), "{gone} still in:\n{out}");
        }
        assert!(out.contains("\"collector_authority\": \"127.0.0.1:40004\""));
        assert!(out.contains("{ local: { filename: \"/abs/plumbline_filter.wasm\""));
        assert!(out.contains("port_value: 40003"));
    }

    #[test]
    fn a_missing_plugin_field_is_added_and_a_present_one_replaced() {
        let out = set_plugin_field(SAMPLE, "flush_interval_ms", "200").unwrap();
        assert!(out.contains("\"flush_interval_ms\": 200, \"collector_authority\""));
        let again = set_plugin_field(&out, "flush_interval_ms", "50").unwrap();
        assert!(again.contains("\"flush_interval_ms\": 50, \"collector_authority\""));
        let token = set_plugin_field(SAMPLE, "ingest_token", "\"other\"").unwrap();
        assert_eq!(plugin_string(&token, "ingest_token").unwrap(), "other");
    }

    #[test]
    fn a_plugin_field_quoted_in_a_comment_above_the_json_is_left_alone() {
        // Before: `"enforce": false` in the shipped file's header comment was the one replaced.
        let commented = format!("# `\"enforce\": false` turns it off\n{SAMPLE}");
        let out = set_plugin_field(&commented, "enforce", "false").unwrap();
        assert!(
            out.starts_with("# `\"enforce\": false` turns it off\n"),
            "{out}"
        );
        assert!(
            out.contains("\"enforce\": false, \"collector_authority\""),
            "{out}"
        );
    }

    #[test]
    fn a_port_is_not_replaced_inside_a_longer_number() {
        let out = replace_required(
            "port_value: 80001, port_value: 8000 ",
            "port_value: 8000",
            "X",
        );
        assert_eq!(out.unwrap(), "port_value: 80001, X ");
    }

    #[test]
    fn plugin_numbers_are_read_from_the_json() {
        let text = set_plugin_field(SAMPLE, "flush_interval_ms", "1000").unwrap();
        assert_eq!(plugin_number(&text, "flush_interval_ms").unwrap(), 1000);
        assert!(plugin_number(SAMPLE, "ingest_token").is_err());
    }

    #[test]
    fn plugin_strings_are_read_from_the_json() {
        let token = plugin_string(SAMPLE, "ingest_token").unwrap();
        assert_eq!(token, "plumbline-demo-token");
        assert!(plugin_string(SAMPLE, "hash_salt").is_err());
    }

    #[test]
    fn a_config_without_the_expected_port_is_refused_with_the_port_named() {
        let broken = SAMPLE.replace("port_value: 9901", "port_value: 9999");
        let err = derive_config(&broken, &ports(), Path::new("/w.wasm"), &[]).unwrap_err();
        assert!(err.to_string().contains("port_value: 9901"), "{err}");
        assert!(err.to_string().contains("admin"), "{err}");
    }

    #[test]
    fn stats_lines_with_integer_values_are_parsed() {
        let text = "wasmcustom.plumbline.records_shipped: 12\n\
                    cluster.x.upstream_rq_time: P0(nan,1)\n\
                    server.live: 1\n";
        let stats = parse_stats(text);
        assert_eq!(stats.get("wasmcustom.plumbline.records_shipped"), Some(&12));
        assert_eq!(stats.len(), 2);
    }
}
