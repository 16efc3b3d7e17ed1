//! The inbound-SMS webhook: replies residents send to our number. `STOP` unsubscribes that
//! number from SMS and `START` brings it back; consent records follow. The provider
//! authenticates with the shared secret `HEJNAL_SMS_INBOUND_SECRET` as a Bearer token. The
//! answer is the same whether the number is known or not.

use axum::{Json, extract::State, http::{HeaderMap, StatusCode, header}};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::ApiError, json::ApiJson};
use crate::{
    domain::PhoneNumber,
    residents::{CONSENT_VERSION, secrets::{digest, same_digest}},
    store::now_ms,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(inbound))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct InboundSms {
    /// The sender, any format the provider uses (`+48…` or `48…`).
    pub from: String,
    pub text: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct InboundAck {
    pub status: &'static str,
}

/// Take a reply from the SMS provider.
#[utoipa::path(post, path = "/api/v1/sms/inbound", tag = "providers", request_body = InboundSms,
    responses((status = 200, body = InboundAck), (status = 401), (status = 503)))]
async fn inbound(State(state): State<AppState>, headers: HeaderMap, ApiJson(sms): ApiJson<InboundSms>) -> Result<Json<InboundAck>, ApiError> {
    let Some(secret) = state.config.sms_inbound_secret.as_deref() else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", "inbound SMS is not configured (HEJNAL_SMS_INBOUND_SECRET)"));
    };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    // Compare digests so the comparison takes the same time whatever the guess.
    if !same_digest(&digest(given), &digest(secret)) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "wrong or missing provider secret"));
    }
    let keyword = sms.text.trim().to_uppercase();
    let stop = matches!(keyword.as_str(), "STOP" | "STOP ALL" | "UNSUBSCRIBE" | "NIE" | "СТОП");
    let start = matches!(keyword.as_str(), "START" | "TAK" | "СТАРТ");
    if stop || start {
        if let Ok(phone) = PhoneNumber::parse(&sms.from, &state.config.sms_countries) {
            let changed = state.store.sms_keyword(phone.as_str(), stop, now_ms(), CONSENT_VERSION).await?;
            if changed {
                metrics::counter!("hejnal_sms_keywords_total", "keyword" => if stop { "stop" } else { "start" }).increment(1);
            }
        }
    }
    Ok(Json(InboundAck { status: "received" }))
}
