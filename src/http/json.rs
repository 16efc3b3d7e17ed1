//! `ApiJson<T>`: a JSON body whose every failure comes out in the API's error shape, naming
//! the field at fault (`quiet_hours.from`) rather than serde's line and column.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send the body as application/json"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", "the body could not be read"))?;
        // The path to the field at fault is tracked only once a body has failed: tracking it
        // costs an allocation per key, on every answer of a survey burst.
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(ApiJson(value));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                invalid_json(&inner)
            } else if path == "." {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", strip_position(&inner.to_string()))
            } else {
                ApiError::field(&path, strip_position(&inner.to_string()))
            }
        })?;
        // A value followed by more than whitespace: what the plain parse refused.
        de.end().map_err(|e| invalid_json(&e))?;
        Ok(ApiJson(value))
    }
}

fn invalid_json(e: &serde_json::Error) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("the body is not valid JSON: {e}"))
}

/// serde appends " at line 1 column 17", which means nothing to a caller.
fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}
