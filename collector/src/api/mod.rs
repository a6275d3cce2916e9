//! The HTTP API: `POST /v1/batches` for filters, `GET /v1/inventory`, `/v1/consumers`,
//! `/v1/filters` for operators, `/healthz` and `/metrics`.
//!
//! The server holds the data directory for its whole life, loads the state at start, writes
//! it after every stored batch, and writes and closes it once more on shutdown. This is one of
//! the edges that reads the clock.

pub mod error;
mod handlers;
pub mod metrics;
pub mod views;

use crate::config::secret::Secret;
use crate::pipeline::Settings;
use crate::store::persisted::Persisted;
use crate::store::StoreError;
use axum::routing::{get, post};
use axum::Router;
use metrics::Metrics;
use plumbline_wire::Limits;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// Everything `plumbline serve` needs, resolved from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub data: PathBuf,
    pub max_body_bytes: usize,
    pub settings: Settings,
    pub ingest_token: Secret,
    pub operator_token: Option<Secret>,
}

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "data directory {dir} is in use by another plumbline process (a running collector or \
         an offline command); stop it or use another --data"
    )]
    DataInUse { dir: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// State shared by the handlers.
#[derive(Debug)]
pub struct AppState {
    persisted: Mutex<Option<Persisted>>,
    ingest_token: Secret,
    operator_token: Option<Secret>,
    max_body_bytes: usize,
    limits: Limits,
    metrics: Metrics,
}

impl AppState {
    /// The persisted state; a handler that panicked while holding it does not poison it.
    fn lock(&self) -> MutexGuard<'_, Option<Persisted>> {
        self.persisted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The routes over a state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/batches", post(handlers::post_batch))
        .route("/v1/inventory", get(handlers::inventory))
        .route("/v1/consumers", get(handlers::consumers))
        .route("/v1/filters", get(handlers::filters))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .with_state(state)
}

/// A bound, loaded server that has not started serving yet.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    data: PathBuf,
}

impl Server {
    /// Holds the data directory, loads its state, and binds the listen address.
    pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        let persisted =
            Persisted::open(&config.data, true, config.settings).map_err(|e| match e {
                StoreError::Locked { dir } => ServeError::DataInUse { dir },
                other => ServeError::Store(other),
            })?;
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen.clone(),
                    source,
                })?;
        tracing::info!(
            data = %config.data.display(),
            endpoints = persisted.pipeline.inventory.endpoints().len(),
            consumers = persisted.pipeline.consumers.len(),
            "state loaded"
        );
        let state = AppState {
            persisted: Mutex::new(Some(persisted)),
            ingest_token: config.ingest_token,
            operator_token: config.operator_token,
            max_body_bytes: config.max_body_bytes,
            limits: Limits::default(),
            metrics: Metrics::default(),
        };
        Ok(Server {
            listener,
            state: Arc::new(state),
            data: config.data,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then saves and closes the state.
    pub async fn run<F>(self, shutdown: F) -> Result<(), ServeError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let addr = self.local_addr()?;
        tracing::info!(%addr, "collector listening");
        let app = router(self.state.clone());
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        let state = self.state.clone();
        let closed = tokio::task::spawn_blocking(move || close(&state)).await;
        closed.map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
        tracing::info!(data = %self.data.display(), "collector stopped; state saved");
        Ok(())
    }
}

fn close(state: &AppState) -> Result<(), StoreError> {
    match state.lock().take() {
        Some(persisted) => persisted.close(),
        None => Ok(()),
    }
}

/// The collector's clock, in Unix milliseconds.
pub fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
