//! Notices for officials: write, preview, submit, approve or reject, cancel, and watch the
//! deliveries live. See `crate::notices` for the life of a notice.

use std::{collections::BTreeMap, convert::Infallible, str::FromStr, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{Response, Sse, sse::Event},
};
use futures::Stream;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, auth::CurrentOfficial, error::ApiError, idempotency, json::ApiJson, params::Path};
use crate::{
    channels::{ChannelKind, sms::text::{SmsStats, analyse}},
    domain::Language,
    notices::{render, service, spec::NoticeSpec, view::{self, NoticeView}},
    store::{AudienceQuery, DeliveryEvent},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_notice))
        .routes(routes!(events))
        .routes(routes!(preview))
        .routes(routes!(submit))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
        .routes(routes!(delivery_trace))
}

/// Write a notice (a draft until submitted). Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/notices", tag = "notices", request_body = NoticeSpec, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeats with the same key return the first answer")),
    responses((status = 201, body = NoticeView), (status = 401), (status = 403), (status = 422)))]
async fn create(State(state): State<AppState>, official: CurrentOfficial, headers: HeaderMap, ApiJson(spec): ApiJson<NoticeSpec>) -> Result<Response, ApiError> {
    official.require(&["author"])?;
    // The key also goes on the notice, so that a repeat after a lost answer finds it.
    let key = idempotency::key(&headers)?;
    idempotency::once(&state, &official.0, &headers, "notices.create", async {
        let row = service::create(&state.store, &official.0, &spec, None, key.as_deref()).await?;
        Ok((StatusCode::CREATED, present(&state, row).await?))
    })
    .await
}

/// The latest notices, newest first.
#[utoipa::path(get, path = "/api/v1/notices", tag = "notices", security(("bearer" = [])),
    responses((status = 200, body = [NoticeView]), (status = 401)))]
async fn list(State(state): State<AppState>, official: CurrentOfficial) -> Result<Json<Vec<NoticeView>>, ApiError> {
    official.require(&["author", "approver", "analyst"])?;
    let mut out = Vec::new();
    for row in state.store.notices(100).await? {
        out.push(present(&state, row).await?);
    }
    Ok(Json(out))
}

/// A notice with its deliveries counted per channel and status.
#[utoipa::path(get, path = "/api/v1/notices/{id}", tag = "notices", security(("bearer" = [])),
    responses((status = 200, body = NoticeView), (status = 401), (status = 404)))]
async fn get_notice(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<NoticeView>, ApiError> {
    official.require(&["author", "approver", "analyst"])?;
    let row = service::load(&state.store, id).await?;
    Ok(Json(present(&state, row).await?))
}

/// The same counts, live: a `progress` event each second until every delivery is settled.
#[utoipa::path(get, path = "/api/v1/notices/{id}/events", tag = "notices", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "`progress` events carrying the notice"), (status = 401), (status = 404)))]
async fn events(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    official.require(&["author", "approver", "analyst"])?;
    service::load(&state.store, id).await?;
    let stream = futures::stream::unfold((state, false), move |(state, done)| async move {
        if done {
            return None;
        }
        let first = tokio::time::Instant::now();
        let view = match service::load(&state.store, id).await {
            Ok(row) => present(&state, row).await.ok(),
            Err(_) => None,
        };
        let (event, done) = match view {
            Some(v) => {
                let settled = v.settled();
                (Event::default().event("progress").json_data(&v).unwrap_or_default(), settled)
            }
            None => (Event::default().event("error").data("the notice could not be read"), false),
        };
        tokio::time::sleep_until(first + Duration::from_secs(1)).await;
        Some((Ok(event), (state, done)))
    });
    Ok(Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelPreview {
    pub subject: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// SMS only: characters, encoding (gsm7 or ucs2) and segments, with a typical link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsStats>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// channel → language → the message as residents will see it.
    pub messages: BTreeMap<String, BTreeMap<String, ChannelPreview>>,
    /// Messages per channel the audience would receive now.
    pub recipients: BTreeMap<String, i64>,
}

/// Render a notice for every channel and language it would use, and count its audience.
#[utoipa::path(post, path = "/api/v1/notices/preview", tag = "notices", request_body = NoticeSpec, security(("bearer" = [])),
    responses((status = 200, body = Preview), (status = 401), (status = 403), (status = 422)))]
async fn preview(State(state): State<AppState>, official: CurrentOfficial, ApiJson(spec): ApiJson<NoticeSpec>) -> Result<Json<Preview>, ApiError> {
    official.require(&["author", "approver"])?;
    spec.check(chrono::Utc::now())?;
    let transliterate = spec.transliterate.unwrap_or(state.config.delivery.sms_transliterate);
    // A link of the length residents get, so that the counts are true.
    let sample_link = state.residents.public_url(&format!("preferences/{}", state.residents.links.sign("0123456789abcdef0123456789abcdef")));
    let channels: Vec<String> = spec.audience.as_ref().map(|a| a.channels.clone()).unwrap_or_else(|| vec!["sms".into(), "email".into(), "push".into()]);
    let mut messages = BTreeMap::new();
    for channel in &channels {
        let kind = ChannelKind::from_str(channel).map_err(|m| ApiError::field("audience.channels", m))?;
        let mut per_language = BTreeMap::new();
        for lang in [Language::Pl, Language::En, Language::Uk] {
            let r = render::render(&state.residents.messages, &spec, kind, lang, transliterate).map_err(ApiError::internal)?;
            let p = r.for_recipient(&sample_link);
            let sms = (kind == ChannelKind::Sms).then(|| analyse(&p.text));
            per_language.insert(lang.as_str().to_owned(), ChannelPreview { subject: p.subject, text: p.text, html: p.html, sms });
        }
        messages.insert(channel.clone(), per_language);
    }
    let mut recipients = BTreeMap::new();
    if let Some(a) = &spec.audience {
        let q = AudienceQuery {
            districts: a.districts.clone(),
            interests: a.interests.clone(),
            all_interests: spec.severity.is_urgent(),
            channels: a.channels.clone(),
            languages: vec!["pl".into(), "en".into(), "uk".into()],
        };
        for (channel, _, n) in state.store.estimate(&q).await?.by_channel_language {
            *recipients.entry(channel).or_default() += n;
        }
    }
    Ok(Json(Preview { messages, recipients }))
}

/// Submit a draft: it waits for a second official, or goes at once when none is needed
/// (Exercise and Test, corrections, and routine notices when the setting allows).
#[utoipa::path(post, path = "/api/v1/notices/{id}/submit", tag = "notices", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeats with the same key return the first answer")),
    responses((status = 200, body = NoticeView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn submit(State(state): State<AppState>, official: CurrentOfficial, headers: HeaderMap, Path(id): Path<i64>) -> Result<Response, ApiError> {
    official.require(&["author"])?;
    idempotency::once(&state, &official.0, &headers, &format!("notices.submit:{id}"), async {
        let row = service::submit(&state.store, &state.config.delivery, &official.0, id).await?;
        state.queue.wake(crate::notices::fanout::lane_of(&row));
        Ok((StatusCode::OK, present(&state, row).await?))
    })
    .await
}

/// Approve a pending notice; it is published at once, or at `send_at`. Not by its author.
#[utoipa::path(post, path = "/api/v1/notices/{id}/approve", tag = "notices", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "repeats with the same key return the first answer")),
    responses((status = 200, body = NoticeView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn approve(State(state): State<AppState>, official: CurrentOfficial, headers: HeaderMap, Path(id): Path<i64>) -> Result<Response, ApiError> {
    official.require(&["approver"])?;
    idempotency::once(&state, &official.0, &headers, &format!("notices.approve:{id}"), async {
        let row = service::approve(&state.store, &official.0, id).await?;
        state.queue.wake(crate::notices::fanout::lane_of(&row));
        Ok((StatusCode::OK, present(&state, row).await?))
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    #[schema(min_length = 1)]
    pub reason: String,
}

/// Send a pending notice back to its author, with the reason.
#[utoipa::path(post, path = "/api/v1/notices/{id}/reject", tag = "notices", request_body = Rejection, security(("bearer" = [])),
    responses((status = 200, body = NoticeView), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn reject(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, ApiJson(body): ApiJson<Rejection>) -> Result<Json<NoticeView>, ApiError> {
    official.require(&["approver"])?;
    let row = service::reject(&state.store, &official.0, id, &body.reason).await?;
    Ok(Json(present(&state, row).await?))
}

/// Stop a notice: nothing new is sent and every delivery still queued is cancelled.
#[utoipa::path(post, path = "/api/v1/notices/{id}/cancel", tag = "notices", security(("bearer" = [])),
    responses((status = 200, body = NoticeView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn cancel(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<NoticeView>, ApiError> {
    official.require(&["author", "approver"])?;
    let row = service::cancel(&state.store, &official.0, id).await?;
    Ok(Json(present(&state, row).await?))
}

/// Every attempt and receipt of one delivery, in order: the trace from click to provider.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}/events", tag = "notices", security(("bearer" = [])),
    responses((status = 200, body = [DeliveryEvent]), (status = 401)))]
async fn delivery_trace(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<Vec<DeliveryEvent>>, ApiError> {
    official.require(&["author", "approver", "analyst"])?;
    Ok(Json(state.store.delivery_events(id).await?))
}

pub async fn present(state: &AppState, row: crate::store::NoticeRow) -> Result<NoticeView, ApiError> {
    view::load(&state.store, row).await?.map_err(ApiError::internal)
}
