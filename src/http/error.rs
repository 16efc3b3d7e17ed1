//! One error shape for every API answer:
//! `{"error": {"code", "message", "field"?, "details"?: [{"field", "message"}]}}`.
//! Client errors say exactly what is wrong; internal errors are logged and answered opaquely.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `invalid_field`, `not_found`, `unavailable`, …
    pub code: String,
    /// For people: what went wrong and what to do.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody { code: code.into(), message: message.into(), field: None, details: vec![] },
            retry_after: None,
        }
    }

    /// One field is wrong (422).
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
        e.body.field = Some(field.into());
        e
    }

    /// Several fields are wrong (422).
    pub fn fields(details: Vec<FieldError>) -> Self {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fields", "several fields are invalid");
        e.body.details = details;
        e
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// A dependency is down: try again soon.
    pub fn unavailable(what: &str) -> Self {
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{what} is unavailable; try again shortly"));
        e.retry_after = Some(5);
        e
    }

    /// Log the cause, tell the caller nothing about it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// One wrong field gives `field`; several give `details`.
    pub fn from_fields(mut details: Vec<FieldError>) -> Self {
        if details.len() == 1 {
            let one = details.remove(0);
            ApiError::field(&one.field, one.message)
        } else {
            ApiError::fields(details)
        }
    }

    pub fn gone(message: &str) -> Self {
        ApiError::new(StatusCode::GONE, "gone", message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &ErrorBody {
        &self.body
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, "conflict", format!("{what} already exists")),
            ref unavailable if unavailable.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::unavailable("the database")
            }
            other => ApiError::internal(other),
        }
    }
}

impl ApiError {
    /// Queueing work failed: 503 when the database or the broker is out of reach, else 500.
    pub fn from_queue(e: anyhow::Error) -> Self {
        match e.downcast_ref::<hejnal_jobs::Error>() {
            Some(hejnal_jobs::Error::Database(db)) if crate::store::database_unavailable(db) => ApiError::unavailable("the database"),
            Some(hejnal_jobs::Error::Redis(_) | hejnal_jobs::Error::Broker(_)) => ApiError::unavailable("the queue"),
            _ => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorEnvelope { error: self.body })).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The answer to a path no route serves, in the same shape.
pub async fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such endpoint; see /api/v1/openapi.json")
}
