//! Route handlers: authenticate, read a bounded body, then do the work on a blocking thread
//! (decoding and SQLite writes must not stall the async workers).

use super::error::ApiError;
use super::views::{ConsumersView, FiltersView, InventoryView};
use super::{now_ms, AppState};
use crate::config::secret::Secret;
use crate::pipeline::{Outcome, Pipeline};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use plumbline_wire::{Batch, BatchReply, CONTENT_TYPE as BATCH_TYPE};
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// `POST /v1/batches`.
pub async fn post_batch(State(state): Shared, headers: HeaderMap, body: Body) -> Response {
    match receive(&state, &headers, body).await {
        Ok(outcome) => reply(&outcome),
        Err(err) => {
            state.metrics.rejected(err.reason());
            tracing::debug!(reason = err.reason(), error = %err, "batch refused");
            err.into_response()
        }
    }
}

async fn receive(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Outcome, ApiError> {
    authorize(headers, Some(&state.ingest_token))?;
    let bytes = read_body(headers, body, state.max_body_bytes).await?;
    let shared = state.clone();
    let outcome = blocking(move || accept(&shared, &bytes)).await??;
    if outcome.duplicate {
        state.metrics.duplicate();
    } else {
        state.metrics.accepted(u64::from(outcome.accepted));
    }
    Ok(outcome)
}

fn accept(state: &AppState, bytes: &[u8]) -> Result<Outcome, ApiError> {
    let batch = Batch::decode(bytes, &state.limits)?;
    let mut guard = state.lock();
    let persisted = guard
        .as_mut()
        .ok_or_else(|| ApiError::Internal("collector is shutting down".into()))?;
    let outcome = persisted
        .apply_batch(&batch, now_ms())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::debug!(
        node = %batch.node,
        instance = %format_args!("{:016x}", batch.instance),
        seq = batch.seq,
        accepted = outcome.accepted,
        duplicate = outcome.duplicate,
        "batch received"
    );
    Ok(outcome)
}

fn reply(outcome: &Outcome) -> Response {
    let reply = BatchReply::new(outcome.accepted, outcome.duplicate, 0);
    ([(CONTENT_TYPE, BATCH_TYPE)], reply.encode()).into_response()
}

/// Reads at most `limit` bytes; a larger body (declared or actual) is refused.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
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
fn authorize(headers: &HeaderMap, token: Option<&Secret>) -> Result<(), ApiError> {
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

async fn blocking<T: Send + 'static>(
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
        guard.as_ref().map(|p| shared.metrics.render(&p.pipeline))
    })
    .await?
    .unwrap_or_default();
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(CONTENT_TYPE, content_type)], text).into_response())
}
