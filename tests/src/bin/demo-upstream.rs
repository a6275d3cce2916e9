//! `demo-upstream`: the API behind Envoy in the demo and the end-to-end tests.
//!
//! Answers every request with a small JSON body naming its method and path. A request header
//! `x-demo-status: NNN` (200-599) makes it answer with that status. It counts the requests it
//! served, in all and per `x-api-key` value, and shows the counts at `GET /__demo/stats`
//! (`{"requests":n,"by_key":{"<key>":n}}`), so tests can tell whether a request of a consumer
//! reached the upstream. Keys past [`MAX_KEYS`] are counted under `"(other)"`. It logs only its
//! start and its stop.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Distinct `x-api-key` values counted apart; the rest share one count.
const MAX_KEYS: usize = 10_000;
/// Where requests with a key past [`MAX_KEYS`] are counted.
const OTHER_KEYS: &str = "(other)";
/// Where requests without an `x-api-key` are counted.
const NO_KEY: &str = "(none)";

#[derive(Parser, Debug)]
#[command(about = "Demo upstream API for Plumbline's demo and end-to-end tests")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
}

#[derive(Default)]
struct Served {
    requests: AtomicU64,
    by_key: Mutex<BTreeMap<String, u64>>,
}

impl Served {
    fn count(&self, request: &Request) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let key = request
            .headers()
            .get("x-api-key")
            .map_or(NO_KEY.to_string(), |v| {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            });
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let key = if by_key.contains_key(&key) || by_key.len() < MAX_KEYS {
            key
        } else {
            OTHER_KEYS.to_string()
        };
        *by_key.entry(key).or_insert(0) += 1;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let served = Arc::new(Served::default());
    let app = Router::new()
        .route("/__demo/stats", get(stats))
        .fallback(answer)
        .with_state(served);

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("demo-upstream listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    eprintln!("demo-upstream stopped");
    Ok(())
}

async fn stats(State(served): State<Arc<Served>>) -> Json<serde_json::Value> {
    let requests = served.requests.load(Ordering::Relaxed);
    let by_key = served
        .by_key
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Json(serde_json::json!({ "requests": requests, "by_key": by_key }))
}

async fn answer(State(served): State<Arc<Served>>, request: Request) -> impl IntoResponse {
    served.count(&request);
    let status = demo_status(&request).unwrap_or(StatusCode::OK);
    let body = serde_json::json!({
        "ok": status.is_success(),
        "method": request.method().as_str(),
        "path": request.uri().path(),
    });
    (status, Json(body))
}

/// The status asked for with `x-demo-status`, if it is a number from 200 to 599.
fn demo_status(request: &Request) -> Option<StatusCode> {
    let value = request.headers().get("x-demo-status")?.to_str().ok()?;
    let code: u16 = value.trim().parse().ok()?;
    if !(200..=599).contains(&code) {
        return None;
    }
    StatusCode::from_u16(code).ok()
}

async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
