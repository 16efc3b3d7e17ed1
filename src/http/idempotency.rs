//! `Idempotency-Key`: the first answer to a key is stored and given again, byte for byte, to
//! every repeat of the same official on the same route, which creates nothing new. A repeat
//! that arrives while the first is still running waits for its answer.

use std::{future::Future, time::Duration};

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{AppState, error::ApiError};
use crate::store::{Official, StoreResult, now_ms};

/// How long a repeat waits for the first request's answer.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

/// How long recording a key's answer keeps trying while the database is out of reach.
const PERSIST_FOR: Duration = Duration::from_secs(30);

/// Run `work` once per (official, key, route); without a key, just run it.
pub async fn once<T, F>(state: &AppState, official: &Official, headers: &HeaderMap, route: &str, work: F) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Future<Output = Result<(StatusCode, T), ApiError>>,
{
    let Some(key) = key(headers)? else {
        let (status, body) = work.await?;
        return Ok((status, Json(body)).into_response());
    };
    let store = &state.store;
    match store.idempotency_begin(official.id, &key, route, now_ms()).await? {
        None => match work.await {
            Ok((status, body)) => {
                let json = serde_json::to_string(&body).map_err(ApiError::internal)?;
                persist(|| store.idempotency_finish(official.id, &key, route, i32::from(status.as_u16()), &json)).await?;
                Ok(replay(status.as_u16() as i32, json, false))
            }
            Err(e) => {
                persist(|| store.idempotency_abandon(official.id, &key, route)).await?;
                Err(e)
            }
        },
        Some(answer) => {
            let started = tokio::time::Instant::now();
            let mut answer = answer;
            loop {
                if let (Some(status), Some(body)) = (answer.status, answer.body.clone()) {
                    return Ok(replay(status, body, true));
                }
                if started.elapsed() > WAIT_FOR_FIRST {
                    return Err(ApiError::new(StatusCode::CONFLICT, "in_progress", "a request with this Idempotency-Key is still running; retry shortly"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                match store.idempotency_begin(official.id, &key, route, now_ms()).await? {
                    Some(a) => answer = a,
                    // The first request failed and gave the key up: this one may run it, but
                    // the caller retries rather than this code running the work twice here.
                    None => {
                        store.idempotency_abandon(official.id, &key, route).await?;
                        return Err(ApiError::new(StatusCode::CONFLICT, "retry", "the first request with this Idempotency-Key failed; retry"));
                    }
                }
            }
        }
    }
}

/// Record a key's answer, or give the key up, trying again while the database is out of reach
/// for up to `PERSIST_FOR`. The work has happened (or failed) by then: a reservation left
/// without its answer made every repeat of the key answer 409 for good, so an official could
/// never learn what became of the request (found by the fault suite's connection-cut scenario).
async fn persist<F, Fut>(mut call: F) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match call().await {
            Err(e) if e.is_unavailable() && started.elapsed() < PERSIST_FOR => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            done => return done.map_err(ApiError::from),
        }
    }
}

pub(crate) fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::field("Idempotency-Key", "must be 1 to 200 visible ASCII characters"));
    }
    Ok(Some(key.to_owned()))
}

fn replay(status: i32, body: String, repeated: bool) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut response = (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
    if repeated {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}
