//! Route handlers of batches and the read API: authenticate, read a bounded body, then do the
//! work on a blocking thread (decoding and SQLite writes must not stall the async workers).
//!
//! A batch with no records and no drops is a poll: a filter with nothing to ship asking for
//! the decision set. It is answered like a batch but stores and counts nothing.
//!
//! A batch must be declared `application/x-plumbline-batch`; a refused batch is counted by
//! reason and warned of with the client's address, rate-limited ([`super::refusals`]).

use super::error::ApiError;
use super::views::{ConsumersView, FiltersView, InventoryView};
use super::{now_ms, AppState};
use crate::config::secret::Secret;
use crate::decide::reply;
use crate::pipeline::{Outcome, Pipeline};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use plumbline_wire::{Batch, CONTENT_TYPE as BATCH_TYPE};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

type Shared = State<Arc<AppState>>;

/// The client's address, when the server was started with it (see [`super::Server::run`]).
type Remote = Option<Extension<ConnectInfo<SocketAddr>>>;

/// `POST /v1/batches`.
pub async fn post_batch(
    State(state): Shared,
    remote: Remote,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match receive(&state, &headers, body).await {
        Ok(answer) => reply(&answer),
        Err(err) => {
            state.metrics.rejected(err.reason());
            let remote = remote.map(|Extension(ConnectInfo(addr))| addr);
            log_refusal(&state, &err, remote, headers.contains_key(AUTHORIZATION));
            err.into_response()
        }
    }
}

/// A refused batch at WARN, at most once per reason every
/// [`super::refusals::WARN_EVERY`] with the count of those not logged since (`suppressed`),
/// else at debug. An internal error is logged where it becomes a response.
fn log_refusal(state: &AppState, err: &ApiError, remote: Option<SocketAddr>, token: bool) {
    let reason = err.reason();
    let remote = remote.map_or_else(|| "unknown".to_string(), |addr| addr.to_string());
    let token = if token { "presented" } else { "absent" };
    let warn = match err {
        ApiError::Internal(_) => None,
        _ => state.refusals.admit(reason, Instant::now()),
    };
    match warn {
        Some(suppressed) => tracing::warn!(
            reason,
            error = %err,
            remote = %remote,
            token,
            suppressed,
            "batch refused"
        ),
        None => tracing::debug!(reason, error = %err, remote = %remote, token, "batch refused"),
    }
}

/// What a batch reply says.
struct Answer {
    outcome: Outcome,
    /// The batch held no records and reported no drops: a filter asking for decisions only.
    poll: bool,
    version: u64,
    /// The encoded decision set, when the filter holds another version.
    set: Option<Arc<[u8]>>,
}

async fn receive(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Answer, ApiError> {
    authorize(headers, Some(&state.ingest_token))?;
    check_content_type(headers)?;
    let bytes = read_body(headers, body, state.max_body_bytes).await?;
    let shared = state.clone();
    let answer = blocking(move || accept(&shared, &bytes)).await??;
    if answer.poll {
        state.metrics.poll();
    } else if answer.outcome.duplicate {
        state.metrics.duplicate();
    } else {
        state.metrics.accepted(u64::from(answer.outcome.accepted));
    }
    if answer.set.is_some() {
        state.metrics.set_sent();
    }
    Ok(answer)
}

fn accept(state: &AppState, bytes: &[u8]) -> Result<Answer, ApiError> {
    let batch = Batch::decode(bytes, &state.limits)?;
    let now = now_ms();
    let poll = batch.records.is_empty() && batch.dropped == 0;
    let mut guard = state.lock();
    let persisted = guard
        .as_mut()
        .ok_or_else(|| ApiError::Internal("collector is shutting down".into()))?;
    let outcome = if poll {
        Outcome::default()
    } else {
        let outcome = persisted
            .apply_batch(&batch, now)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        state.settle_records(persisted, now);
        outcome
    };
    AppState::sweep(persisted, now);
    let version = persisted.decisions.version();
    let set = (batch.decisions_version != version).then(|| persisted.decisions.encoded());
    drop(guard);
    tracing::debug!(
        node = %batch.node,
        instance = %format_args!("{:016x}", batch.instance),
        seq = batch.seq,
        poll,
        accepted = outcome.accepted,
        duplicate = outcome.duplicate,
        held_version = batch.decisions_version,
        version,
        "batch received"
    );
    Ok(Answer {
        outcome,
        poll,
        version,
        set,
    })
}

fn reply(answer: &Answer) -> Response {
    let o = &answer.outcome;
    let bytes = reply::encode(
        o.accepted,
        o.duplicate,
        answer.version,
        answer.set.as_deref(),
    );
    ([(CONTENT_TYPE, BATCH_TYPE)], bytes).into_response()
}

/// Refuses a body not declared as a batch; parameters after `;` are ignored.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers.get(CONTENT_TYPE).map(|v| v.as_bytes());
    let essence = declared.and_then(|v| v.split(|b| *b == b';').next());
    if essence.is_some_and(|e| e.trim_ascii().eq_ignore_ascii_case(BATCH_TYPE.as_bytes())) {
        return Ok(());
    }
    let found = declared.map(|v| String::from_utf8_lossy(v).chars().take(100).collect());
    Err(ApiError::ContentType { found })
}

/// Reads at most `limit` bytes; a larger body (declared or actual) is refused.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::TooLarge { limit })
        }
        Err(err) => Err(ApiError::BadBody(err.to_string())),
    }
}

/// Checks `authorization: Bearer <token>` when a token is required.
pub(super) fn authorize(headers: &HeaderMap, token: Option<&Secret>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let value = headers
        .get(AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let presented = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .and_then(|_| value.get(7..))
        .unwrap_or_default();
    if token.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))
}

/// Runs `view` over the pipeline for an operator.
async fn read<T: Send + 'static>(
    state: Arc<AppState>,
    headers: &HeaderMap,
    view: fn(&Pipeline) -> T,
) -> Result<T, ApiError> {
    authorize(headers, state.operator_token.as_ref())?;
    blocking(move || {
        let guard = state.lock();
        let persisted = guard
            .as_ref()
            .ok_or_else(|| ApiError::Internal("collector is shutting down".into()))?;
        Ok(view(&persisted.pipeline))
    })
    .await?
}

/// `GET /v1/inventory`.
pub async fn inventory(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<InventoryView>, ApiError> {
    read(state, &headers, InventoryView::of).await.map(Json)
}

/// `GET /v1/consumers`.
pub async fn consumers(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<ConsumersView>, ApiError> {
    read(state, &headers, ConsumersView::of).await.map(Json)
}

/// `GET /v1/filters`.
pub async fn filters(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<FiltersView>, ApiError> {
    read(state, &headers, FiltersView::of).await.map(Json)
}

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`, Prometheus text format.
pub async fn metrics(State(state): Shared) -> Result<Response, ApiError> {
    let shared = state.clone();
    let text = blocking(move || {
        let guard = shared.lock();
        guard.as_ref().map(|p| {
            let text = shared.metrics.render(&p.pipeline, &p.decisions);
            text + &super::alerts::render_metrics(&shared, &p.pipeline)
        })
    })
    .await?
    .unwrap_or_default();
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(CONTENT_TYPE, content_type)], text).into_response())
}
