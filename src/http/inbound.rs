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
    OpenApiRouter::new().routes(routes!(inbound)).routes(routes!(receipt))
}

/// The provider's secret, checked in constant time; 503 when none is configured.
fn check_provider(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(secret) = state.config.sms_inbound_secret.as_deref() else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", "provider callbacks are not configured (HEJNAL_SMS_INBOUND_SECRET)"));
    };
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    // Compare digests so the comparison takes the same time whatever the guess.
    if !same_digest(&digest(given), &digest(secret)) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "wrong or missing provider secret"));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeliveryReport {
    /// Our delivery id, as sent in the request's `reference`.
    pub reference: Option<String>,
    /// The provider's message id, as it answered the send.
    pub id: Option<String>,
    /// `delivered` or `failed`.
    pub status: String,
    /// The provider's reason, for failures.
    pub error: Option<String>,
}

/// A delivery report from the SMS provider: moves a sent message to delivered or failed.
/// Reports may come twice or out of order; a delivery only ever moves forward.
#[utoipa::path(post, path = "/api/v1/sms/receipts", tag = "providers", request_body = DeliveryReport, security(("provider" = [])),
    responses((status = 200, body = InboundAck), (status = 401), (status = 422), (status = 503)))]
async fn receipt(State(state): State<AppState>, headers: HeaderMap, ApiJson(report): ApiJson<DeliveryReport>) -> Result<Json<InboundAck>, ApiError> {
    check_provider(&state, &headers)?;
    let status = match report.status.as_str() {
        "delivered" | "DELIVERED" => "delivered",
        "failed" | "FAILED" | "undelivered" | "UNDELIVERED" | "rejected" => "failed",
        other => return Err(ApiError::field("status", format!("{other:?} is not one of delivered, failed"))),
    };
    let reference = match report.reference.as_deref() {
        Some(r) => Some(r.parse::<i64>().map_err(|_| ApiError::field("reference", "must be the delivery id we sent"))?),
        None => None,
    };
    if reference.is_none() && report.id.is_none() {
        return Err(ApiError::field("reference", "give the reference we sent or the provider's id"));
    }
    let moved = state.store.apply_receipt(reference, report.id.as_deref(), status, report.error.as_deref(), now_ms()).await?;
    metrics::counter!("hejnal_receipts_total", "status" => status, "applied" => if moved { "yes" } else { "no" }).increment(1);
    Ok(Json(InboundAck { status: "received" }))
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
#[utoipa::path(post, path = "/api/v1/sms/inbound", tag = "providers", request_body = InboundSms, security(("provider" = [])),
    responses((status = 200, body = InboundAck), (status = 401), (status = 503)))]
async fn inbound(State(state): State<AppState>, headers: HeaderMap, ApiJson(sms): ApiJson<InboundSms>) -> Result<Json<InboundAck>, ApiError> {
    check_provider(&state, &headers)?;
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
