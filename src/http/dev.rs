//! `/dev/outbox`: what the dev outbox recorded, when a channel has no provider. It exists so a
//! newcomer sees the whole flow on one machine; it is never delivery (start-up and /readyz say so).

use axum::{Json, Router, extract::State, routing::get};
use serde_json::{Value, json};

use super::{AppState, error::ApiError};

pub fn router() -> Router<AppState> {
    Router::new().route("/dev/outbox", get(outbox))
}

async fn outbox(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(outbox) = state.residents.channels.outbox() else {
        return Err(ApiError::not_found("the dev outbox (every channel has a provider)"));
    };
    let entries: Vec<Value> = outbox
        .list()
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    Ok(Json(json!({"warning": "recorded, not delivered", "messages": entries})))
}
