//! Endpoints for city officials (Bearer token; see `auth`): the audience estimate and erasure
//! of a resident on request, which is audited.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::{OpenApiRouter, UtoipaMethodRouterExt}, routes};

use super::{AppState, auth::CurrentOfficial, error::{ApiError, FieldError}, json::ApiJson};
use crate::{
    domain::{EmailAddress, PhoneNumber},
    residents::{import::RejectedLine, secrets, signup::SignupRules},
    store::{AudienceQuery, now_ms},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(estimate))
        .routes(routes!(erase_resident))
        // Imports are whole files; allow more than axum's default 2 MB.
        .routes(routes!(import).layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Residents created.
    pub imported: i64,
    /// Contacts already known, left as they were.
    pub skipped_known: i64,
    /// Lines refused; when any is, nothing was imported.
    pub rejected: Vec<RejectedLine>,
}

/// Import residents from CSV (`text/csv`), whole or not at all. See `docs/import.md`.
#[utoipa::path(post, path = "/api/v1/imports", tag = "officials", request_body(content = String, content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 201, body = ImportReport), (status = 401), (status = 403), (status = 422, body = ImportReport)))]
async fn import(State(state): State<AppState>, official: CurrentOfficial, body: axum::body::Bytes) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    official.require(&["author"])?;
    let districts: Vec<String> = state.store.districts().await?.into_iter().map(|d| d.slug).collect();
    let interests: Vec<String> = state.store.interests().await?.into_iter().map(|i| i.slug).collect();
    let rules = SignupRules { sms_countries: &state.config.sms_countries, push_allow_local: false };
    let rows = match crate::residents::import::parse(&body, &rules, &districts, &interests) {
        Ok(rows) => rows,
        Err(rejected) => {
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(ImportReport { imported: 0, skipped_known: 0, rejected })));
        }
    };
    let now = now_ms();
    let (imported, skipped_known) = state.store.import(&rows, now).await?;
    state.store.audit(official.0.id, "residents.import", &format!("{} lines", rows.len()), imported, now).await?;
    Ok((StatusCode::CREATED, Json(ImportReport { imported, skipped_known, rejected: vec![] })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    #[schema(min_items = 1)]
    pub districts: Vec<String>,
    #[serde(default)]
    pub interests: Vec<String>,
    /// Default: all three.
    pub channels: Option<Vec<String>>,
    /// Default: all three.
    pub languages: Option<Vec<String>>,
    /// `Extreme` and `Severe` reach every resident of the districts, whatever their interests.
    pub severity: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Estimate {
    /// Residents reached on at least one channel.
    pub subscribers: i64,
    /// Messages that would go out, one per verified contact.
    pub recipients: i64,
    pub by_channel: BTreeMap<String, i64>,
    pub by_language: BTreeMap<String, i64>,
    pub by_district: BTreeMap<String, i64>,
}

/// How many residents an audience reaches, per channel, district and language.
#[utoipa::path(post, path = "/api/v1/audiences/estimate", tag = "officials", request_body = EstimateRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Estimate), (status = 401), (status = 403), (status = 422)))]
async fn estimate(State(state): State<AppState>, official: CurrentOfficial, ApiJson(req): ApiJson<EstimateRequest>) -> Result<Json<Estimate>, ApiError> {
    official.require(&["author"])?;
    let query = audience(&state, req).await?;
    let counts = state.store.estimate(&query).await?;
    let mut out = Estimate { subscribers: counts.subscribers, recipients: 0, by_channel: BTreeMap::new(), by_language: BTreeMap::new(), by_district: BTreeMap::new() };
    for (channel, language, n) in counts.by_channel_language {
        out.recipients += n;
        *out.by_channel.entry(channel).or_default() += n;
        *out.by_language.entry(language).or_default() += n;
    }
    out.by_district = counts.by_district.into_iter().collect();
    Ok(Json(out))
}

async fn audience(state: &AppState, req: EstimateRequest) -> Result<AudienceQuery, ApiError> {
    let mut errors = Vec::new();
    let mut wrong = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });
    if req.districts.is_empty() {
        wrong("districts", "name at least one district".into());
    }
    let channels = req.channels.unwrap_or_else(|| vec!["sms".into(), "email".into(), "push".into()]);
    if let Some(c) = channels.iter().find(|c| !["sms", "email", "push"].contains(&c.as_str())) {
        wrong("channels", format!("{c:?} is not one of sms, email, push"));
    }
    let languages = req.languages.unwrap_or_else(|| vec!["pl".into(), "en".into(), "uk".into()]);
    if let Some(l) = languages.iter().find(|l| !["pl", "en", "uk"].contains(&l.as_str())) {
        wrong("languages", format!("{l:?} is not one of pl, en, uk"));
    }
    let all_interests = match req.severity.as_deref() {
        None | Some("Moderate" | "Minor") => false,
        Some("Extreme" | "Severe") => true,
        Some(other) => {
            wrong("severity", format!("{other:?} is not one of Extreme, Severe, Moderate, Minor"));
            false
        }
    };
    let (bad_d, bad_i) = state.store.unknown_slugs(&req.districts, &req.interests).await?;
    errors.extend(bad_d.into_iter().map(|d| FieldError { field: "districts".into(), message: format!("{d:?} is not a district") }));
    errors.extend(bad_i.into_iter().map(|i| FieldError { field: "interests".into(), message: format!("{i:?} is not an interest") }));
    if channels.is_empty() || languages.is_empty() {
        errors.push(FieldError { field: "channels".into(), message: "name at least one channel and language".into() });
    }
    if !errors.is_empty() {
        return Err(ApiError::from_fields(errors));
    }
    Ok(AudienceQuery { districts: req.districts, interests: req.interests, all_interests, channels, languages })
}

/// The one contact an official names a resident by: (channel, normalised address).
pub fn contact_named(state: &AppState, email: Option<&str>, phone: Option<&str>) -> Result<(&'static str, String), ApiError> {
    match (email, phone) {
        (Some(e), None) => Ok(("email", EmailAddress::parse(e).map_err(|m| ApiError::field("email", m))?.as_str().to_owned())),
        (None, Some(p)) => Ok(("sms", PhoneNumber::parse(p, &state.config.sms_countries).map_err(|m| ApiError::field("phone", m))?.as_str().to_owned())),
        _ => Err(ApiError::field("email", "give exactly one of email or phone")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Erase a resident on their request (by phone or letter to the contact centre). Audited.
#[utoipa::path(post, path = "/api/v1/residents/erasures", tag = "officials", request_body = ErasureRequest,
    security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn erase_resident(State(state): State<AppState>, official: CurrentOfficial, ApiJson(req): ApiJson<ErasureRequest>) -> Result<StatusCode, ApiError> {
    official.require(&[])?;
    let (channel, address) = contact_named(&state, req.email.as_deref(), req.phone.as_deref())?;
    let Some(public_id) = state.store.subscriber_by_contact(channel, &address).await? else {
        return Err(ApiError::not_found("a resident with this contact"));
    };
    let now = now_ms();
    state.store.erase(&public_id, now).await?;
    // The audit names the contact only by digest: the log must not keep what was erased.
    let subject = format!("{channel}:{}", &secrets::digest(&address)[..16]);
    state.store.audit(official.0.id, "resident.erase", &subject, 1, now).await?;
    Ok(StatusCode::NO_CONTENT)
}
