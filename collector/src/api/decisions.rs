//! Decision routes: list (`GET /v1/decisions`), make (`POST /v1/decisions`), remove by id
//! (`DELETE /v1/decisions/{id}`) or by subject (`POST /v1/decisions/remove`), and the audit
//! log (`GET /v1/audit`).
//!
//! Writes need the operator token; a collector without one refuses them with a message saying
//! how to configure it. A raw key in a request is hashed with the salt here and then dropped:
//! it is never stored, logged or echoed.

use super::error::ApiError;
use super::handlers::{authorize, blocking, read_body};
use super::{now_ms, AppState};
use crate::decide::audit::{AuditView, DEFAULT_LIMIT, MAX_LIMIT};
use crate::decide::view::{
    subject_text, DecisionRequest, DecisionView, DecisionsView, MadeView, RemoveRequest,
    RemovedView, SubjectInput,
};
use crate::decide::{parse, DecideError, NewDecision, StoredDecision, BY_OPERATOR};
use crate::store::persisted::{ChangeError, Persisted};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use plumbline_wire::{consumer_id, Subject};
use serde::de::DeserializeOwned;
use std::sync::Arc;

type Shared = State<Arc<AppState>>;

/// Largest decision request body.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

const NO_OPERATOR_TOKEN: &str = "decision changes and alert acknowledgements need an operator \
     token and this collector has none: set PLUMBLINE_OPERATOR_TOKEN or \
     PLUMBLINE_OPERATOR_TOKEN_FILE (or operator_token_file in the config file) and restart it";

const NO_SALT: &str = "this collector has no salt, so it cannot hash a key: set PLUMBLINE_SALT \
     or PLUMBLINE_SALT_FILE (or salt_file in the config file), or name the consumer by id";

/// `GET /v1/decisions`: the set without expired decisions.
pub async fn list(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<DecisionsView>, ApiError> {
    authorize(&headers, state.operator_token.as_ref())?;
    with_state(state, |persisted| {
        AppState::sweep(persisted, now_ms());
        Ok(DecisionsView::of(&persisted.decisions))
    })
    .await
    .map(Json)
}

/// `POST /v1/decisions`: 201 with the decision made and the one it replaced.
pub async fn create(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<MadeView>), ApiError> {
    authorize_write(&state, &headers)?;
    let request: DecisionRequest = read_json(&headers, body).await?;
    let new = to_new_decision(&state, request)?;
    let shared = state.clone();
    let made = with_state(state, move |persisted| {
        let made = persisted.add_decision(new, BY_OPERATOR, now_ms());
        if let Err(ChangeError::Refused(DecideError::Full { .. })) = &made {
            shared.metrics.decision_refused_full();
        }
        let added = made.map_err(refused)?;
        log_change("decision added", &added.made, persisted);
        Ok(added)
    })
    .await?;
    let view = MadeView {
        decision: DecisionView::of(&made.made),
        replaced: made.replaced.as_ref().map(DecisionView::of),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// `DELETE /v1/decisions/{id}`.
pub async fn delete(
    State(state): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RemovedView>, ApiError> {
    authorize_write(&state, &headers)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("decision id {id:?} is not a number")))?;
    with_state(state, move |persisted| {
        let removed = persisted
            .remove_decision(id, BY_OPERATOR, now_ms())
            .map_err(refused)?;
        Ok(removed_view(&removed, persisted))
    })
    .await
    .map(Json)
}

/// `POST /v1/decisions/remove`: removes the decision on exactly the subject named.
pub async fn remove(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RemovedView>, ApiError> {
    authorize_write(&state, &headers)?;
    let request: RemoveRequest = read_json(&headers, body).await?;
    let subject = resolve(&state, request.subject)?;
    with_state(state, move |persisted| {
        let removed = persisted
            .remove_decision_on(&subject, BY_OPERATOR, now_ms())
            .map_err(refused)?;
        Ok(removed_view(&removed, persisted))
    })
    .await
    .map(Json)
}

/// `GET /v1/audit?limit=N`: the newest entries first.
pub async fn audit(
    State(state): Shared,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<AuditView>, ApiError> {
    authorize(&headers, state.operator_token.as_ref())?;
    let limit = audit_limit(query.as_deref())?;
    with_state(state, move |persisted| {
        let entries = persisted
            .audit(limit)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(AuditView { entries })
    })
    .await
    .map(Json)
}

fn audit_limit(query: Option<&str>) -> Result<usize, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "limit" {
            return Err(ApiError::BadRequest(format!(
                "unknown query parameter {key:?}; /v1/audit takes limit"
            )));
        }
        limit = value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit {value:?} is not a number from 1 to {MAX_LIMIT}"
                ))
            })?;
    }
    Ok(limit)
}

/// Writes need the operator token, and a collector without one refuses them.
pub(super) fn authorize_write(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match &state.operator_token {
        Some(token) => authorize(headers, Some(token)),
        None => Err(ApiError::Forbidden(NO_OPERATOR_TOKEN.to_string())),
    }
}

async fn read_json<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, MAX_REQUEST_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("request body is not a valid request: {e}")))
}

/// A checked request, its subject resolved.
fn to_new_decision(state: &AppState, request: DecisionRequest) -> Result<NewDecision, ApiError> {
    let bad = |e: crate::decide::view::RequestError| ApiError::BadRequest(e.to_string());
    let action = request.to_action().map_err(bad)?;
    let ttl_ms = request.ttl_ms().map_err(bad)?;
    let reason = request.reason().map_err(bad)?;
    let subject = resolve(state, request.subject)?;
    if state.policy.protects(&subject) {
        return Err(ApiError::Conflict(format!(
            "{} is on the allowlist (policy.allowlist) and is never blocked or throttled",
            subject_text(&subject)
        )));
    }
    Ok(NewDecision {
        subject,
        action,
        ttl_ms,
        reason,
        created_by: BY_OPERATOR.to_string(),
    })
}

/// The subject a request names; a raw key becomes its consumer id and is dropped.
fn resolve(state: &AppState, input: SubjectInput) -> Result<Subject, ApiError> {
    match input {
        SubjectInput::Consumer(id) => id
            .trim()
            .parse()
            .map(Subject::Consumer)
            .map_err(|e| ApiError::BadRequest(format!("{e}"))),
        SubjectInput::Key(raw) => {
            let salt = state
                .salt
                .as_ref()
                .ok_or_else(|| ApiError::BadRequest(NO_SALT.to_string()))?;
            if raw.is_empty() {
                return Err(ApiError::BadRequest("the key is empty".to_string()));
            }
            Ok(Subject::Consumer(consumer_id(
                salt.expose(),
                raw.as_bytes(),
            )))
        }
        SubjectInput::Address(text) => {
            parse::address(&text).map_err(|e| ApiError::BadRequest(e.to_string()))
        }
    }
}

/// A refused or failed change as the API answers it.
fn refused(err: ChangeError) -> ApiError {
    match err {
        ChangeError::Refused(e @ DecideError::TtlTooLong { .. }) => {
            ApiError::BadRequest(e.to_string())
        }
        ChangeError::Refused(e @ DecideError::Full { .. }) => ApiError::Conflict(e.to_string()),
        ChangeError::Refused(e @ (DecideError::NoSuchId(_) | DecideError::NoSuchSubject(_))) => {
            ApiError::NotFound(e.to_string())
        }
        ChangeError::Store(e) => ApiError::Internal(e.to_string()),
        e @ ChangeError::ShuttingDown => ApiError::Internal(e.to_string()),
    }
}

fn removed_view(removed: &StoredDecision, persisted: &Persisted) -> RemovedView {
    log_change("decision removed", removed, persisted);
    RemovedView {
        removed: vec![DecisionView::of(removed)],
        version: persisted.decisions.version(),
    }
}

fn log_change(what: &'static str, d: &StoredDecision, persisted: &Persisted) {
    tracing::info!(
        decision = d.decision.id,
        subject = %subject_text(&d.decision.subject),
        by = BY_OPERATOR,
        version = persisted.decisions.version(),
        "{what}"
    );
}

/// Runs `work` on the persisted state on a blocking thread.
async fn with_state<T: Send + 'static>(
    state: Arc<AppState>,
    work: impl FnOnce(&mut Persisted) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(move || {
        let mut guard = state.lock();
        let persisted = guard
            .as_mut()
            .ok_or_else(|| ApiError::Internal("collector is shutting down".into()))?;
        work(persisted)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_limit_defaults_and_is_bounded() {
        assert_eq!(audit_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(audit_limit(Some("limit=5")).unwrap(), 5);
        assert!(audit_limit(Some("limit=0")).is_err());
        assert!(audit_limit(Some("limit=99999999")).is_err());
        assert!(audit_limit(Some("lmit=5")).is_err());
    }
}
