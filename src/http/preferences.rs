//! Self-service by signed link: read, change, unsubscribe (also in one click from an email, RFC
//! 8058), export, erase. A link that is not genuine answers 404; a link whose resident was
//! erased answers 410.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::Redirect,
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, error::{ApiError, FieldError}, json::ApiJson, one_click::asks_one_click, params::{Path, Query}};
use crate::{
    channels::ChannelKind,
    domain::{Language, QuietHours, QuietHoursJson},
    residents::CONSENT_VERSION,
    store::{Preferences, PreferencesUpdate, SubscriberState, now_ms},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_preferences, put_preferences, unsubscribe))
        .routes(routes!(one_click_page, one_click))
        .routes(routes!(erase))
        .routes(routes!(export))
}

/// The public id inside a genuine link.
pub fn open_link(state: &AppState, token: &str) -> Result<String, ApiError> {
    state.residents.links.open(token).ok_or_else(|| ApiError::not_found("this link"))
}

pub fn active(state: SubscriberState) -> Result<Preferences, ApiError> {
    match state {
        SubscriberState::Active(p) => Ok(p),
        SubscriberState::Erased => Err(ApiError::gone("this resident's data was erased")),
        SubscriberState::Missing => Err(ApiError::not_found("this link")),
    }
}

/// A resident's choices and contacts.
#[utoipa::path(get, path = "/api/v1/preferences/{token}", tag = "residents",
    responses((status = 200, body = Preferences), (status = 404), (status = 410)))]
async fn get_preferences(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<Preferences>, ApiError> {
    let id = open_link(&state, &token)?;
    Ok(Json(active(state.store.preferences(&id).await?)?))
}

/// A change of choices: fields left out stay as they are; `quiet_hours: null` clears them;
/// `channels` lists the channels to keep (the others are unsubscribed).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPut {
    pub districts: Option<Vec<String>>,
    pub interests: Option<Vec<String>>,
    pub language: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<QuietHoursJson>)]
    pub quiet_hours: Option<Option<QuietHoursJson>>,
    pub channels: Option<Vec<String>>,
}

/// Change choices.
#[utoipa::path(put, path = "/api/v1/preferences/{token}", tag = "residents", request_body = PreferencesPut,
    responses((status = 200, body = Preferences), (status = 404), (status = 410), (status = 422)))]
async fn put_preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(body): ApiJson<PreferencesPut>,
) -> Result<Json<Preferences>, ApiError> {
    let id = open_link(&state, &token)?;
    let update = parse_update(&state, &body).await?;
    Ok(Json(active(state.store.update_preferences(&id, &update, now_ms(), CONSENT_VERSION).await?)?))
}

/// Tell a field sent as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

pub async fn parse_update(state: &AppState, body: &PreferencesPut) -> Result<PreferencesUpdate, ApiError> {
    let mut errors = Vec::new();
    let mut update = PreferencesUpdate::default();
    if let Some(l) = &body.language {
        match Language::parse(l) {
            Ok(l) => update.language = Some(l),
            Err(m) => errors.push(FieldError { field: "language".into(), message: m }),
        }
    }
    if let Some(q) = &body.quiet_hours {
        match q.as_ref().map(QuietHours::parse).transpose() {
            Ok(q) => update.quiet_hours = Some(q),
            Err((f, m)) => errors.push(FieldError { field: f.into(), message: m }),
        }
    }
    if let Some(d) = &body.districts
        && d.is_empty()
    {
        errors.push(FieldError { field: "districts".into(), message: "keep at least one district, or unsubscribe".into() });
    }
    let (bad_d, bad_i) = state
        .store
        .unknown_slugs(body.districts.as_deref().unwrap_or(&[]), body.interests.as_deref().unwrap_or(&[]))
        .await?;
    errors.extend(bad_d.into_iter().map(|d| FieldError { field: "districts".into(), message: format!("{d:?} is not a district") }));
    errors.extend(bad_i.into_iter().map(|i| FieldError { field: "interests".into(), message: format!("{i:?} is not an interest") }));
    if let Some(ch) = &body.channels {
        for c in ch.iter().filter(|c| !["email", "sms", "push"].contains(&c.as_str())) {
            errors.push(FieldError { field: "channels".into(), message: format!("{c:?} is not one of email, sms, push") });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::from_fields(errors));
    }
    update.districts = body.districts.clone();
    update.interests = body.interests.clone();
    update.channels = body.channels.clone();
    Ok(update)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UnsubscribeQuery {
    /// One channel (`email`, `sms`, `push`); without it, every channel.
    pub channel: Option<String>,
}

/// Unsubscribe from one channel or from everything. Consent withdrawals are recorded.
#[utoipa::path(delete, path = "/api/v1/preferences/{token}", tag = "residents", params(UnsubscribeQuery),
    responses((status = 200, body = Preferences), (status = 404), (status = 410), (status = 422)))]
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<UnsubscribeQuery>,
) -> Result<Json<Preferences>, ApiError> {
    let id = open_link(&state, &token)?;
    let channel = q.channel.as_deref().map(channel_param).transpose()?;
    let unsubscribed = state.store.unsubscribe(&id, channel.map(|c| c.as_str()), "preferences_link", now_ms(), CONSENT_VERSION).await?;
    Ok(Json(active(unsubscribed)?))
}

/// The `channel` query parameter, checked.
fn channel_param(channel: &str) -> Result<ChannelKind, ApiError> {
    ChannelKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == channel)
        .ok_or_else(|| ApiError::field("channel", format!("{channel:?} is not one of email, sms, push")))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct OneClickQuery {
    /// The channel to leave: `email` in the links of our emails.
    pub channel: Option<String>,
}

/// The form a mail client posts (RFC 8058). Documentation only: the handler reads the body
/// itself (`one_click::asks_one_click`), as a form or as multipart.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct OneClickForm {
    #[schema(rename = "List-Unsubscribe", pattern = "^One-Click$")]
    list_unsubscribe: String,
}

/// The answer to a one-click unsubscribe. A mail provider makes the request, so it holds none
/// of the resident's data.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OneClickDone {
    pub unsubscribed: ChannelKind,
}

/// One-click unsubscribe (RFC 8058): the mail client POSTs `List-Unsubscribe=One-Click` to the
/// URL in an email's `List-Unsubscribe` header. The withdrawal is recorded as `one_click`.
/// Repeating it changes nothing more.
#[utoipa::path(post, path = "/api/v1/preferences/{token}/one-click", tag = "residents", params(OneClickQuery),
    request_body(content = OneClickForm, content_type = "application/x-www-form-urlencoded",
        description = "`List-Unsubscribe=One-Click`, as a form or as multipart/form-data"),
    responses((status = 200, body = OneClickDone), (status = 404), (status = 410), (status = 422)))]
async fn one_click(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<OneClickQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<OneClickDone>, ApiError> {
    let id = open_link(&state, &token)?;
    let channel = channel_param(q.channel.as_deref().ok_or_else(|| ApiError::field("channel", "is required"))?)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if !asks_one_click(content_type, &body) {
        return Err(ApiError::field("List-Unsubscribe", "the body must be List-Unsubscribe=One-Click (RFC 8058)"));
    }
    active(state.store.unsubscribe(&id, Some(channel.as_str()), "one_click", now_ms(), CONSENT_VERSION).await?)?;
    Ok(Json(OneClickDone { unsubscribed: channel }))
}

/// A mail client without one-click support opens the `List-Unsubscribe` link in a browser:
/// send the resident to the preferences page, where leaving is one button.
#[utoipa::path(get, path = "/api/v1/preferences/{token}/one-click", tag = "residents",
    responses((status = 303, description = "to the preferences page"), (status = 404)))]
async fn one_click_page(State(state): State<AppState>, Path(token): Path<String>) -> Result<Redirect, ApiError> {
    open_link(&state, &token)?;
    // Absolute: the public base may have a path of its own (behind a proxy).
    Ok(Redirect::to(&state.residents.public_url(&format!("preferences/{token}"))))
}

/// Erase everything that identifies the resident. The link answers 410 afterwards.
#[utoipa::path(post, path = "/api/v1/preferences/{token}/erase", tag = "residents",
    responses((status = 204), (status = 404), (status = 410)))]
async fn erase(State(state): State<AppState>, Path(token): Path<String>) -> Result<StatusCode, ApiError> {
    let id = open_link(&state, &token)?;
    if state.store.erase(&id, now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        active(state.store.preferences(&id).await?).map(|_| StatusCode::NO_CONTENT)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub channel: String,
    pub consent_version: String,
    pub action: String,
    pub method: String,
    /// Milliseconds since the epoch.
    pub at: i64,
}

/// One of the resident's survey answers (given through their invitation).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SurveyAnswerRecord {
    pub survey_id: i64,
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
    /// Milliseconds since the epoch.
    pub updated_at: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Export {
    pub preferences: Preferences,
    pub consents: Vec<ConsentRecord>,
    pub survey_answers: Vec<SurveyAnswerRecord>,
    pub exported_at: String,
}

/// Everything held about the resident, as JSON (GDPR art. 15 and 20).
#[utoipa::path(get, path = "/api/v1/preferences/{token}/export", tag = "residents",
    responses((status = 200, body = Export), (status = 404), (status = 410)))]
async fn export(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<Export>, ApiError> {
    let id = open_link(&state, &token)?;
    let preferences = active(state.store.preferences(&id).await?)?;
    let consents = state
        .store
        .consent_history(&id)
        .await?
        .into_iter()
        .map(|(channel, consent_version, action, method, at)| ConsentRecord { channel, consent_version, action, method, at })
        .collect();
    let survey_answers = state
        .store
        .answers_of_resident(&id)
        .await?
        .into_iter()
        .map(|(survey_id, answers, updated_at)| SurveyAnswerRecord { survey_id, answers: serde_json::from_str(&answers).unwrap_or_default(), updated_at })
        .collect();
    Ok(Json(Export { preferences, consents, survey_answers, exported_at: chrono::Utc::now().to_rfc3339() }))
}
