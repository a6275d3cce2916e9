//! The HTTP API: `POST /v1/batches` for filters (its reply carries the decision set when the
//! filter's is another version); `GET /v1/inventory`, `/v1/consumers`, `/v1/filters`,
//! `/v1/decisions` and `/v1/audit` for operators; `POST /v1/decisions`,
//! `POST /v1/decisions/remove` and `DELETE /v1/decisions/{id}` for operators holding the
//! operator token; `GET /v1/alerts` and `POST /v1/alerts/{id}/ack` ([`alerts`]); `/healthz`
//! and `/metrics`.
//!
//! The server holds the data directory for its whole life, loads the state at start, writes
//! it after every stored batch and decision change, removes expired decisions every
//! [`SWEEP_INTERVAL`] (and before every read of the set), and writes and closes the state once
//! more on shutdown. This is one of the edges that reads the clock.

pub mod alerts;
mod decisions;
pub mod error;
mod handlers;
pub mod metrics;
pub mod refusals;
pub mod views;

use crate::config::secret::Secret;
use crate::decide::policy::{Policy, PolicyAlert};
use crate::decide::view::subject_text;
use crate::decide::BY_CONFIG;
use crate::detect::config::DetectSettings;
use crate::detect::sink::{SinkError, Sinks};
use crate::pipeline::Settings;
use crate::store::persisted::{AlertOutcome, ChangeError, Persisted};
use crate::store::StoreError;
use axum::routing::{delete, get, post};
use axum::Router;
use metrics::Metrics;
use plumbline_wire::Limits;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// How often expired decisions are removed (they are also removed before every read).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// How long a stopping server waits for the alerts webhook to deliver what it holds.
const SINKS_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Everything `plumbline serve` needs, resolved from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub data: PathBuf,
    pub max_body_bytes: usize,
    pub settings: Settings,
    pub ingest_token: Secret,
    pub operator_token: Option<Secret>,
    /// The filters' salt, to hash raw keys named in decision requests.
    pub salt: Option<Secret>,
    pub policy: Policy,
    /// Detection, its alerts' sinks and how often baselines are saved.
    pub detect: DetectSettings,
}

impl ServeConfig {
    /// A configuration with the defaults of everything but where to listen, the data
    /// directory and the ingest token.
    pub fn new(listen: &str, data: PathBuf, ingest_token: Secret) -> Self {
        ServeConfig {
            listen: listen.to_string(),
            data,
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            settings: Settings::default(),
            ingest_token,
            operator_token: None,
            salt: None,
            policy: Policy::default(),
            detect: DetectSettings::default(),
        }
    }
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
    #[error(transparent)]
    Sinks(#[from] SinkError),
}

/// State shared by the handlers.
#[derive(Debug)]
pub struct AppState {
    persisted: Mutex<Option<Persisted>>,
    ingest_token: Secret,
    operator_token: Option<Secret>,
    salt: Option<Secret>,
    policy: Policy,
    detect: DetectSettings,
    sinks: Sinks,
    max_body_bytes: usize,
    limits: Limits,
    metrics: Metrics,
    refusals: refusals::RefusalLog,
}

impl AppState {
    /// The persisted state; a handler that panicked while holding it does not poison it.
    fn lock(&self) -> MutexGuard<'_, Option<Persisted>> {
        self.persisted.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Runs an alert through the policy and makes the decision it calls for, at `now_ms`.
    /// Takes the state's lock and writes the database: call it from a blocking thread, and
    /// from code that already holds the lock (the batch path) call
    /// [`Persisted::apply_alert`] with [`AppState::policy`] instead.
    pub fn apply_alert(
        &self,
        alert: &PolicyAlert<'_>,
        now_ms: u64,
    ) -> Result<AlertOutcome, ChangeError> {
        let mut guard = self.lock();
        let persisted = guard.as_mut().ok_or(ChangeError::ShuttingDown)?;
        let outcome = persisted.apply_alert(&self.policy, alert, now_ms);
        if let Err(ChangeError::Refused(crate::decide::DecideError::Full { .. })) = &outcome {
            self.metrics.decision_refused_full();
        }
        let outcome = outcome?;
        if let AlertOutcome::Made(made) = &outcome {
            tracing::info!(
                decision = made.decision.id,
                alert = alert.id,
                detector = alert.detector,
                subject = %subject_text(&made.decision.subject),
                version = persisted.decisions.version(),
                "decision made by policy"
            );
        }
        Ok(outcome)
    }

    /// Removes expired decisions; a failure is logged and retried on the next sweep.
    fn sweep(persisted: &mut Persisted, now_ms: u64) {
        match persisted.sweep_decisions(now_ms) {
            Ok(0) => {}
            Ok(expired) => tracing::info!(
                expired,
                version = persisted.decisions.version(),
                "expired decisions removed"
            ),
            Err(err) => tracing::warn!(error = %err, "cannot remove expired decisions; will retry"),
        }
    }
}

/// The routes over a state.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/batches", post(handlers::post_batch))
        .route("/v1/inventory", get(handlers::inventory))
        .route("/v1/consumers", get(handlers::consumers))
        .route("/v1/filters", get(handlers::filters))
        .route(
            "/v1/decisions",
            get(decisions::list).post(decisions::create),
        )
        .route("/v1/decisions/remove", post(decisions::remove))
        .route("/v1/decisions/{id}", delete(decisions::delete))
        .route("/v1/audit", get(decisions::audit))
        .route("/v1/alerts", get(alerts::list))
        .route("/v1/alerts/{id}/ack", post(alerts::ack))
        .route("/healthz", get(handlers::healthz))
        .route("/metrics", get(handlers::metrics))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

/// A path the API does not have gets a JSON error like every other refusal.
async fn unknown_path(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::NotFound(format!("no API path {method} {}", uri.path()))
}

/// A known path with a method it does not take.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::MethodNotAllowed(format!("{} does not take {method}", uri.path()))
}

/// A bound, loaded server that has not started serving yet.
pub struct Server {
    listener: TcpListener,
    state: Arc<AppState>,
    data: PathBuf,
}

/// An address that does not parse is named as the setting it came from.
fn with_listen_hint(error: std::io::Error) -> std::io::Error {
    if error.kind() != std::io::ErrorKind::InvalidInput {
        return error;
    }
    let hint = "set --listen or the config's `listen` to an address like 127.0.0.1:7070";
    std::io::Error::new(error.kind(), format!("{error}; {hint}"))
}

impl Server {
    /// Binds the listen address, then holds the data directory and loads its state (an
    /// address in use so leaves a new data directory uncreated).
    pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen.clone(),
                    source: with_listen_hint(source),
                })?;
        let mut persisted =
            Persisted::open(&config.data, true, config.settings).map_err(|e| match e {
                StoreError::Locked { dir } => ServeError::DataInUse { dir },
                other => ServeError::Store(other),
            })?;
        let now = now_ms();
        persisted.set_mode(config.policy.mode, BY_CONFIG, now)?;
        AppState::sweep(&mut persisted, now);
        crate::detect::flow::enable(&mut persisted, &config.detect, now)?;
        let sinks = Sinks::open(&config.detect.alerts)?;
        tracing::info!(
            data = %config.data.display(),
            endpoints = persisted.pipeline.inventory.endpoints().len(),
            consumers = persisted.pipeline.consumers.len(),
            decisions = persisted.decisions.len(),
            decisions_version = persisted.decisions.version(),
            mode = crate::decide::view::mode_name(persisted.decisions.mode()),
            policy_rules = config.policy.rules.len(),
            "state loaded"
        );
        let state = AppState {
            persisted: Mutex::new(Some(persisted)),
            ingest_token: config.ingest_token,
            operator_token: config.operator_token,
            salt: config.salt,
            policy: config.policy,
            detect: config.detect,
            sinks,
            max_body_bytes: config.max_body_bytes,
            limits: Limits::default(),
            metrics: Metrics::default(),
            refusals: refusals::RefusalLog::default(),
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
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let sweeper = tokio::spawn(sweep_every(self.state.clone(), SWEEP_INTERVAL));
        let ticker = tokio::spawn(alerts::tick_every(self.state.clone()));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        ticker.abort();
        served?;
        let state = self.state.clone();
        let closed = tokio::task::spawn_blocking(move || {
            state.sinks.close(SINKS_CLOSE_WAIT);
            close(&state)
        })
        .await;
        closed.map_err(|e| ServeError::Io(std::io::Error::other(e)))??;
        tracing::info!(data = %self.data.display(), "collector stopped; state saved");
        Ok(())
    }
}

/// Removes expired decisions every `interval`, until aborted.
async fn sweep_every(state: Arc<AppState>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(persisted) = state.lock().as_mut() {
                AppState::sweep(persisted, now_ms());
            }
        })
        .await;
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
