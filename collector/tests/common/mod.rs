//! What the integration tests share: temporary directories, the real server on a free port
//! run on its own thread, HTTP helpers, batches, and the `plumbline` binary with a time limit.
//! Each test binary uses a part of it.

#![allow(dead_code)]

use plumbline_collector::api::{ServeConfig, Server};
use plumbline_collector::config::secret::Secret;
use plumbline_wire::{consumer_id, Batch, BatchBuilder, Method, Record, CONTENT_TYPE};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ureq::Agent;

pub const TOKEN: &str = "ingest-token-for-tests";
pub const BASE_MS: u64 = 1_700_000_000_000;

/// The defaults, on a free port, with the state in `data/state` and the tests' ingest token.
pub fn config(data: &Path) -> ServeConfig {
    ServeConfig::new("127.0.0.1:0", data.join("state"), Secret::new(TOKEN))
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("plumbline-it-{tag}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server running on its own runtime thread until stopped (or dropped).
pub struct TestServer {
    pub addr: SocketAddr,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub thread: Option<JoinHandle<Result<(), String>>>,
}

impl TestServer {
    pub fn start(data: &Path, max_body_bytes: usize, operator: Option<&str>) -> TestServer {
        let mut config = config(data);
        config.max_body_bytes = max_body_bytes;
        config.operator_token = operator.map(Secret::new);
        TestServer::start_with(config)
    }

    /// Starts a server with `config`, listening on a free port.
    pub fn start_with(config: ServeConfig) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let server = Server::bind(config).await.map_err(|e| e.to_string())?;
                let _ = addr_tx.send(server.local_addr().map_err(|e| e.to_string())?);
                let stopped = async {
                    let _ = stop_rx.await;
                };
                server.run(stopped).await.map_err(|e| e.to_string())
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server did not start");
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let result = thread.join().expect("server thread panicked");
            result.expect("server failed");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Status and body of a POST of `body` to `/v1/batches` with an optional bearer token.
pub fn post(server: &TestServer, body: &[u8], token: Option<&str>) -> (u16, Vec<u8>, String) {
    let mut request = agent()
        .post(server.url("/v1/batches"))
        .header("content-type", CONTENT_TYPE);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.send(body).expect("post failed");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.body_mut().read_to_vec().unwrap();
    (status, body, content_type)
}

pub fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, String) {
    let mut request = agent().get(server.url(path));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let mut response = request.call().expect("get failed");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

pub fn get_json(server: &TestServer, path: &str) -> Value {
    let (status, body) = get(server, path, None);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// (path, key, status, offset ms): GET requests, a POST when the path starts with "POST ".
pub fn batch(requests: &[(&str, &str, u16, u64)], seq: u64) -> Batch {
    let mut b = BatchBuilder::new(BASE_MS);
    for (target, key, status, offset) in requests {
        let (method, path) = match target.strip_prefix("POST ") {
            Some(path) => (Method::Post, path),
            None => (Method::Get, *target),
        };
        let (segments, flags) = b.path(path);
        let consumer = (!key.is_empty()).then(|| b.consumer(consumer_id(b"salt", key.as_bytes())));
        let label = (!key.is_empty()).then(|| b.intern(&format!("partner-{key}")));
        let record = Record {
            offset_ms: b.offset_ms(BASE_MS + offset),
            method,
            host: b.intern("api.example.com"),
            path: segments,
            query: vec![],
            status: *status,
            request_bytes: 10,
            response_bytes: 100,
            duration_us: 1500,
            consumer,
            label,
            client: None,
            user_agent: None,
            request_type: None,
            response_type: None,
            flags,
            weight: 1,
        };
        b.push(record);
    }
    let mut batch = b.finish();
    batch.node = "envoy-test".into();
    batch.instance = 42;
    batch.seq = seq;
    batch.dropped = 3;
    batch
}

/// Runs the `plumbline` binary with `env`, killed if it takes more than 60 seconds.
pub fn plumbline(args: &[&str], env: &[(&str, &str)]) -> Output {
    plumbline_with_stdin(args, env, None)
}

/// As [`plumbline`], with `stdin` written to its standard input (closed after it).
pub fn plumbline_with_stdin(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plumbline"));
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "PLUMBLINE_DATA",
        "PLUMBLINE_SERVER",
        "PLUMBLINE_CONFIG",
        "PLUMBLINE_SALT",
        "PLUMBLINE_SALT_FILE",
        "PLUMBLINE_OPERATOR_TOKEN",
        "PLUMBLINE_OPERATOR_TOKEN_FILE",
        "PLUMBLINE_INGEST_TOKEN",
        "PLUMBLINE_INGEST_TOKEN_FILE",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("cannot run plumbline");
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        use std::io::{ErrorKind, Write};
        // A command that refuses its arguments may exit before it reads its input.
        match input.write_all(text.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
            Err(e) => panic!("cannot write plumbline's standard input: {e}"),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("plumbline {args:?} took too long");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
