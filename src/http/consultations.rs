//! Consultations for officials (comments to moderate, the report) and for residents (a
//! comment through the API; the pages are in `consultation_pages.rs`).

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    auth::CurrentOfficial,
    error::ApiError,
    json::ApiJson,
    params::{Path, Query},
    surveys::ClientIp,
};
use crate::{
    store::ReportRow,
    surveys::consultation::{self, CommentBody, CommentView, ModerationBody, ReportBody, ReportView},
};

/// For officials.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_comments)).routes(routes!(moderate)).routes(routes!(publish_report, get_report))
}

/// For residents: rate-limited with the other public endpoints.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_comment))
}

const READERS: &[&str] = &["author", "approver", "analyst"];
const MODERATORS: &[&str] = &["author", "approver"];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CommentsQuery {
    /// pending, approved or rejected; every comment when left out.
    pub state: Option<String>,
}

/// A consultation's comments, oldest first, with their moderation.
#[utoipa::path(get, path = "/api/v1/surveys/{id}/comments", tag = "consultations", params(CommentsQuery), security(("bearer" = [])),
    responses((status = 200, body = [CommentView]), (status = 401), (status = 404), (status = 422)))]
async fn list_comments(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, Query(q): Query<CommentsQuery>) -> Result<Json<Vec<CommentView>>, ApiError> {
    official.require(READERS)?;
    if let Some(s) = q.state.as_deref()
        && !["pending", "approved", "rejected"].contains(&s)
    {
        return Err(ApiError::field("state", "must be pending, approved or rejected"));
    }
    consultation::consultation(&state.store, id).await?;
    let rows = state.store.comments(id, q.state.as_deref(), consultation::COMMENTS_SHOWN).await?;
    Ok(Json(rows.into_iter().map(CommentView::from).collect()))
}

/// Approve a comment (it is shown on the consultation's page) or reject it (with a reason).
#[utoipa::path(post, path = "/api/v1/surveys/{id}/comments/{comment_id}/moderation", tag = "consultations", request_body = ModerationBody,
    security(("bearer" = [])),
    responses((status = 200, body = CommentView), (status = 401), (status = 403), (status = 404), (status = 409, description = "already decided otherwise"), (status = 422)))]
async fn moderate(State(state): State<AppState>, official: CurrentOfficial, Path((id, comment_id)): Path<(i64, i64)>, ApiJson(body): ApiJson<ModerationBody>) -> Result<Json<CommentView>, ApiError> {
    official.require(MODERATORS)?;
    Ok(Json(consultation::moderate(&state.store, &official.0, id, comment_id, &body).await?.into()))
}

fn report_view(state: &AppState, slug: Option<&str>, r: ReportRow) -> Result<ReportView, ApiError> {
    Ok(ReportView {
        survey_id: r.survey_id,
        summary: serde_json::from_str(&r.summary).map_err(ApiError::internal)?,
        results: serde_json::from_str(&r.results).map_err(ApiError::internal)?,
        comments: r.comments,
        author_id: r.author_id,
        published_at: chrono::DateTime::from_timestamp_millis(r.published_at),
        url: state.residents.public_url(&format!("c/{}/report", slug.unwrap_or_default())),
    })
}

/// Publish the report page once the period has ended: the summary, and the results as they
/// stand now (they do not change afterwards). Once only.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/report", tag = "consultations", request_body = ReportBody, security(("bearer" = [])),
    responses((status = 201, body = ReportView), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "consultation_open or report_published"), (status = 422)))]
async fn publish_report(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, ApiJson(body): ApiJson<ReportBody>) -> Result<(StatusCode, Json<ReportView>), ApiError> {
    official.require(MODERATORS)?;
    let report = consultation::publish_report(&state.store, &official.0, id, &body).await?;
    let (row, _) = consultation::consultation(&state.store, id).await?;
    Ok((StatusCode::CREATED, Json(report_view(&state, row.slug.as_deref(), report)?)))
}

#[utoipa::path(get, path = "/api/v1/surveys/{id}/report", tag = "consultations", security(("bearer" = [])),
    responses((status = 200, body = ReportView), (status = 401), (status = 404)))]
async fn get_report(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<ReportView>, ApiError> {
    official.require(READERS)?;
    let (row, _) = consultation::consultation(&state.store, id).await?;
    let report = state.store.report(id).await?.ok_or_else(|| ApiError::not_found("report"))?;
    Ok(Json(report_view(&state, row.slug.as_deref(), report)?))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommentReceived {
    pub comment_id: i64,
    /// Always `pending`: the comment is shown once an official approves it.
    pub state: String,
}

/// Comment on a consultation while its period runs. It is shown on the consultation's page
/// only after an official approves it.
#[utoipa::path(post, path = "/api/v1/consultations/{slug}/comments", tag = "consultations", request_body = CommentBody,
    responses((status = 202, body = CommentReceived), (status = 404), (status = 409, description = "survey_closed or survey_not_open"), (status = 422), (status = 429, description = "past the public rate or HEJNAL_COMMENT_RATE_PER_HOUR")))]
async fn add_comment(State(state): State<AppState>, ClientIp(ip): ClientIp, Path(slug): Path<String>, ApiJson(body): ApiJson<CommentBody>) -> Result<(StatusCode, Json<CommentReceived>), ApiError> {
    let (row, _) = consultation::public(&state.store, &slug).await?;
    state.comment_limiter.check(ip)?;
    let ip_digest = ip.map(|ip| state.residents.links.keyed("ip", &format!("{}:{ip}", row.id)));
    let saved = consultation::comment(&state.store, &row, &body, "pl", None, ip_digest).await?;
    Ok((StatusCode::ACCEPTED, Json(CommentReceived { comment_id: saved.id, state: saved.state })))
}

