//! Officials authenticate with `Authorization: Bearer <token>` (from `hejnal tokens create`).
//! No token or a dead one: 401. A role that may not act: 403. `admin` may do everything.

use axum::{
    extract::FromRequestParts,
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};

use super::{AppState, error::ApiError};
use crate::{residents::secrets::digest as token_digest, store::Official};

pub struct CurrentOfficial(pub Official);

impl CurrentOfficial {
    /// Refuse unless the official holds one of `roles` (or is an admin).
    pub fn require(&self, roles: &[&str]) -> Result<(), ApiError> {
        if self.0.role == "admin" || roles.contains(&self.0.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("the {} role may not do this; it needs {}", self.0.role, roles.join(" or "))))
        }
    }
}

pub struct Unauthorized(ApiError);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl FromRequestParts<AppState> for CurrentOfficial {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let unauthorized = |message: &str| Unauthorized(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)).into_response();
        let Some(value) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Err(unauthorized("send Authorization: Bearer <token>"));
        };
        let Some(token) = value.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(unauthorized("the Authorization header must be Bearer <token>"));
        };
        match state.store.official_by_token(&token_digest(token)).await {
            Ok(Some(official)) => Ok(CurrentOfficial(official)),
            Ok(None) => Err(unauthorized("the token is unknown, expired or revoked")),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}
