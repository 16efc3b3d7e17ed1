//! Liveness and readiness, for load balancers and orchestrators.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<&'static str>,
    /// Channels whose messages are only recorded in the dev outbox, never delivered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dev_outbox: Vec<&'static str>,
}

/// The process is alive. It checks nothing else, so a slow database never restarts it.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", database: None, queue: None, dev_outbox: vec![] })
}

/// Ready to take work: the database and the queue both answer within two seconds.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let limit = Duration::from_secs(2);
    let (db, queue) = tokio::join!(
        tokio::time::timeout(limit, state.store.ping()),
        tokio::time::timeout(limit, state.queue.ping()),
    );
    let db_ok = matches!(db, Ok(Ok(())));
    let queue_ok = matches!(queue, Ok(Ok(())));
    if !db_ok {
        tracing::warn!(result = ?db.map(|r| r.map_err(|e| e.to_string())), "readiness: database not ready");
    }
    if !queue_ok {
        tracing::warn!(result = ?queue.map(|r| r.map_err(|e| e.to_string())), "readiness: queue not ready");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let all = db_ok && queue_ok;
    let status = if all { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let dev_outbox = state.residents.channels.dev_outbox_channels().iter().map(|k| k.as_str()).collect();
    (status, Json(Health { status: word(all), database: Some(word(db_ok)), queue: Some(word(queue_ok)), dev_outbox }))
}
