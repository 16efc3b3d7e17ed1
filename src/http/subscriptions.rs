//! Sign-up and SMS code verification. Answers never tell whether an address was known: not by
//! their status, headers or body, nor by when they come (`even_time`).

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::{ApiError, FieldError}, even_time::no_sooner_than, json::ApiJson};
use crate::{
    domain::PhoneNumber,
    residents::{CONSENT_VERSION, secrets, signup::{self, SignupRules, SubscribeRequest}, verify::sms_code_digest},
    store::{CodeCheck, now_ms},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(subscribe)).routes(routes!(verify_code)).routes(routes!(resend))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub message: &'static str,
}

/// The one answer to every acceptable sign-up, known address or not.
const ACCEPTED: Accepted = Accepted {
    status: "accepted",
    message: "Check your messages: each contact must be confirmed before it receives anything.",
};

/// Sign up for notices about districts and interests. Every contact is confirmed before use.
#[utoipa::path(post, path = "/api/v1/subscriptions", tag = "residents", request_body = SubscribeRequest,
    responses((status = 202, body = Accepted), (status = 422, body = super::error::ErrorEnvelope), (status = 429)))]
async fn subscribe(State(state): State<AppState>, ApiJson(req): ApiJson<SubscribeRequest>) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let rules = SignupRules {
        sms_countries: &state.config.sms_countries,
        push_allow_local: state.config.channels.push_allow_local,
    };
    let parsed = signup::parse(&req, &rules).map_err(ApiError::from_fields)?;
    let (bad_districts, bad_interests) = state.store.unknown_slugs(&parsed.districts, &parsed.interests).await?;
    let mut errors: Vec<FieldError> = Vec::new();
    for d in bad_districts {
        errors.push(FieldError { field: "districts".into(), message: format!("{d:?} is not a district; see /api/v1/districts") });
    }
    for i in bad_interests {
        errors.push(FieldError { field: "interests".into(), message: format!("{i:?} is not an interest; see /api/v1/interests") });
    }
    if !errors.is_empty() {
        return Err(ApiError::from_fields(errors));
    }
    no_sooner_than(state.config.contact_answer_floor, async {
        let contacts = state.store.signup(&parsed, &secrets::random_token(16), now_ms()).await?;
        state.residents.queue_verifications(&state.queue, &contacts).await.map_err(ApiError::from_queue)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyCode {
    pub phone: String,
    /// The 6 digits from the SMS.
    #[schema(pattern = "^\\s*[0-9]{6}\\s*$")]
    pub code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Verified {
    pub status: &'static str,
    /// The resident's own page to change or leave.
    pub preferences_url: String,
}

/// Confirm a phone number with the 6-digit code sent to it. Single use, 10 minutes, 5 tries.
#[utoipa::path(post, path = "/api/v1/subscriptions/verify", tag = "residents", request_body = VerifyCode,
    responses((status = 200, body = Verified), (status = 422, body = super::error::ErrorEnvelope), (status = 429)))]
async fn verify_code(State(state): State<AppState>, ApiJson(req): ApiJson<VerifyCode>) -> Result<Json<Verified>, ApiError> {
    let phone = PhoneNumber::parse(&req.phone, &state.config.sms_countries).map_err(|m| ApiError::field("phone", m))?;
    let code = req.code.trim();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::field("code", "must be the 6 digits from the SMS"));
    }
    let digest = sms_code_digest(phone.as_str(), code);
    let check = no_sooner_than(state.config.contact_answer_floor, state.store.verify_sms(phone.as_str(), &digest, now_ms(), CONSENT_VERSION)).await?;
    match check {
        CodeCheck::Verified { public_id, .. } => {
            Ok(Json(Verified { status: "verified", preferences_url: state.residents.preferences_url(&public_id) }))
        }
        // The same words whether the number is unknown, the code wrong, or its tries spent.
        CodeCheck::Wrong | CodeCheck::NoLiveCode => Err(ApiError::field("code", "the code is wrong or has expired; ask for a new one by signing up again")),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Send the verification message of a pending contact again. Always `202` with the same body,
/// known address or not; the per-address limits apply, silently.
#[utoipa::path(post, path = "/api/v1/subscriptions/resend", tag = "residents", request_body = Resend,
    responses((status = 202, body = Accepted), (status = 422, body = super::error::ErrorEnvelope), (status = 429)))]
async fn resend(State(state): State<AppState>, ApiJson(req): ApiJson<Resend>) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let (channel, address) = match (&req.email, &req.phone) {
        (Some(e), None) => ("email", crate::domain::EmailAddress::parse(e).map_err(|m| ApiError::field("email", m))?.as_str().to_owned()),
        (None, Some(p)) => ("sms", PhoneNumber::parse(p, &state.config.sms_countries).map_err(|m| ApiError::field("phone", m))?.as_str().to_owned()),
        _ => return Err(ApiError::field("email", "give exactly one of email or phone")),
    };
    no_sooner_than(state.config.contact_answer_floor, async {
        if let Some(contact) = state.store.pending_contact(channel, &address).await? {
            let contact = crate::store::SignupContact { contact_id: contact, channel: channel.into(), status: "pending".into(), new: false };
            state.residents.queue_verifications(&state.queue, &[contact]).await.map_err(ApiError::from_queue)?;
        }
        Ok::<(), ApiError>(())
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}
