//! The one place API errors become HTTP statuses: precise 4xx for bad input with a short JSON
//! message, a generic 500 whose cause is logged once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use plumbline_wire::{DecodeError, CONTENT_TYPE as BATCH_TYPE};

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong bearer token")]
    Unauthenticated,
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Malformed(#[from] DecodeError),
    #[error("{}", content_type_message(found.as_deref()))]
    ContentType { found: Option<String> },
    #[error("cannot read the request body: {0}")]
    BadBody(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::ContentType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Malformed(_) | ApiError::BadBody(_) | ApiError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The label of the rejection in `/metrics`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::ContentType { .. } => "content_type",
            ApiError::Malformed(_) | ApiError::BadBody(_) | ApiError::BadRequest(_) => "malformed",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// What a batch posted with another content type (or none) is told.
fn content_type_message(found: Option<&str>) -> String {
    match found {
        Some(found) => format!("content type must be {BATCH_TYPE}, not {found:?}"),
        None => format!("content type must be {BATCH_TYPE}; the request has none"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = %cause, "request failed");
                "internal error; see the collector's log".to_string()
            }
            other => other.to_string(),
        };
        let body = Json(serde_json::json!({ "error": message }));
        (status, body).into_response()
    }
}
