//! The collector as a test sees it: a `plumbline serve` child process on a free port with its
//! own data directory, and typed views of its HTTP API.
//!
//! The process can be stopped and started again on the same port and data directory, which is
//! how tests check that state survives a restart and that filters reconnect. A collector given
//! an operator token presents it on every API call (reads need it then too) and can make and
//! remove decisions; a config file gives it a `[policy]`.

use super::process::{wait_for, Process};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a collector may take to answer `/healthz` after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// One endpoint of `GET /v1/inventory`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Endpoint {
    pub host: String,
    pub method: String,
    pub path: String,
    pub calls: u64,
    pub consumers: u64,
    pub status: StatusClasses,
    pub first_seen: String,
    pub last_seen: String,
}

/// Calls per status class of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct StatusClasses {
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
}

/// One consumer of `GET /v1/consumers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub label: Option<String>,
    pub calls: u64,
    pub endpoints: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// One reporting filter instance of `GET /v1/filters`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FilterInstance {
    pub node: String,
    /// Kept as JSON: the collector may render the 64-bit id as a number or a string.
    pub instance: serde_json::Value,
    pub last_batch: serde_json::Value,
    pub records: u64,
    pub dropped: u64,
    pub batches: u64,
}

#[derive(Deserialize)]
struct InventoryReply {
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
struct ConsumersReply {
    consumers: Vec<Consumer>,
}

#[derive(Deserialize)]
struct FiltersReply {
    filters: Vec<FilterInstance>,
}

/// What a collector needs to start.
#[derive(Debug, Clone)]
pub struct CollectorSetup {
    pub bin: PathBuf,
    pub port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    pub ingest_token: String,
    pub salt: String,
    /// `PLUMBLINE_OPERATOR_TOKEN`, when decisions are to be made.
    pub operator_token: Option<String>,
    /// A TOML config file, passed with `--config`.
    pub config: Option<PathBuf>,
}

/// A running (or stopped) collector.
#[derive(Debug)]
pub struct Collector {
    setup: CollectorSetup,
    process: Option<Process>,
    agent: ureq::Agent,
}

/// A plain HTTP answer from the collector.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status and the start of the body, escaped (a batch reply is binary), for messages.
    pub fn describe(&self) -> String {
        let text: String = self.text().chars().take(200).collect();
        format!("{} {:?}", self.status, text)
    }
}

impl Collector {
    /// Starts the collector and waits until `/healthz` answers 200.
    pub fn start(setup: CollectorSetup) -> Collector {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .proxy(None)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        );
        let mut collector = Collector {
            setup,
            process: None,
            agent,
        };
        collector.start_again();
        collector
    }

    /// Starts the process again on the same port and data directory.
    pub fn start_again(&mut self) {
        assert!(self.process.is_none(), "collector is already running");
        let s = &self.setup;
        let mut command = Command::new(&s.bin);
        command
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", s.port))
            .arg("--data")
            .arg(&s.data)
            .env("PLUMBLINE_INGEST_TOKEN", &s.ingest_token)
            .env("PLUMBLINE_SALT", &s.salt)
            .env("RUST_LOG", "info");
        if let Some(token) = &s.operator_token {
            command.env("PLUMBLINE_OPERATOR_TOKEN", token);
        }
        if let Some(config) = &s.config {
            command.arg("--config").arg(config);
        }
        self.process = Some(Process::spawn("collector", command, &s.log));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let url = self.url("/healthz");
        let agent = self.agent.clone();
        let process = self.process.as_mut().expect("collector process");
        wait_for(
            "the collector to answer /healthz",
            READY_TIMEOUT,
            Duration::from_millis(50),
            || {
                process.assert_running();
                match agent.get(&url).call() {
                    Ok(r) if r.status() == 200 => Ok(()),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            },
        );
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s); the data directory stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate(Duration::from_secs(10));
        }
    }

    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    pub fn port(&self) -> u16 {
        self.setup.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.setup.data
    }

    pub fn log_path(&self) -> &Path {
        &self.setup.log
    }

    pub fn ingest_token(&self) -> &str {
        &self.setup.ingest_token
    }

    pub fn operator_token(&self) -> Option<&str> {
        self.setup.operator_token.as_deref()
    }

    /// The `plumbline` binary, for tests that drive its CLI.
    pub fn bin(&self) -> &Path {
        &self.setup.bin
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.setup.port)
    }

    /// `GET path` (with the operator token, if any), with any transport failure as text.
    pub fn get(&self, path: &str) -> Result<Reply, String> {
        let mut request = self.agent.get(&self.url(path));
        if let Some(auth) = self.operator_auth() {
            request = request.header("authorization", auth);
        }
        into_reply(request.call())
    }

    /// `POST path` with a JSON body and the operator token.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<Reply, String> {
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json");
        if let Some(auth) = self.operator_auth() {
            request = request.header("authorization", auth);
        }
        into_reply(request.send(body.to_string().as_bytes()))
    }

    /// `DELETE path` with the operator token.
    pub fn delete(&self, path: &str) -> Result<Reply, String> {
        let mut request = self.agent.delete(&self.url(path));
        if let Some(auth) = self.operator_auth() {
            request = request.header("authorization", auth);
        }
        into_reply(request.call())
    }

    fn operator_auth(&self) -> Option<String> {
        let token = self.setup.operator_token.as_deref()?;
        Some(format!("Bearer {token}"))
    }

    /// `POST /v1/decisions`, expecting 201; the decision made, as the API shows it.
    pub fn decide(&self, request: &serde_json::Value) -> Result<serde_json::Value, String> {
        let reply = self.post_json("/v1/decisions", request)?;
        if reply.status != 201 {
            return Err(format!(
                "POST /v1/decisions {request}: {}",
                reply.describe()
            ));
        }
        serde_json::from_slice(&reply.body)
            .map_err(|e| format!("POST /v1/decisions: not JSON ({e}): {}", reply.text()))
    }

    /// `DELETE /v1/decisions/{id}`, expecting 200.
    pub fn remove_decision(&self, id: u64) -> Result<(), String> {
        let reply = self.delete(&format!("/v1/decisions/{id}"))?;
        if reply.status != 200 {
            return Err(format!("DELETE /v1/decisions/{id}: {}", reply.describe()));
        }
        Ok(())
    }

    /// `GET /v1/decisions`: the set's version, mode and decisions.
    pub fn decisions(&self) -> Result<serde_json::Value, String> {
        self.get_json("/v1/decisions")
    }

    /// `GET path`, expecting 200 and JSON.
    pub fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, String> {
        let reply = self.get(path)?;
        if reply.status != 200 {
            return Err(format!(
                "GET {path}: status {}: {}",
                reply.status,
                reply.text()
            ));
        }
        serde_json::from_slice(&reply.body)
            .map_err(|e| format!("GET {path}: not the expected JSON ({e}): {}", reply.text()))
    }

    pub fn inventory(&self) -> Result<Vec<Endpoint>, String> {
        self.get_json::<InventoryReply>("/v1/inventory")
            .map(|r| r.endpoints)
    }

    pub fn consumers(&self) -> Result<Vec<Consumer>, String> {
        self.get_json::<ConsumersReply>("/v1/consumers")
            .map(|r| r.consumers)
    }

    pub fn filters(&self) -> Result<Vec<FilterInstance>, String> {
        self.get_json::<FiltersReply>("/v1/filters")
            .map(|r| r.filters)
    }

    /// `POST /v1/batches` with `body` and, when given, the whole `Authorization` value.
    pub fn post_batch(&self, body: &[u8], authorization: Option<&str>) -> Result<Reply, String> {
        let mut request = self
            .agent
            .post(&self.url("/v1/batches"))
            .header("content-type", plumbline_wire::CONTENT_TYPE);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        into_reply(request.send(body))
    }

    /// The last lines of the collector's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        super::process::log_tail(&self.setup.log, lines)
    }
}

fn into_reply(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Reply, String> {
    let mut response = response.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok(Reply { status, body })
}
