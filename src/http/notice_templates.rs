//! Pre-approved notice templates (the break-glass path) and the test audience that Exercise
//! and Test notices reach.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, auth::CurrentOfficial, error::ApiError, json::ApiJson, notices::present, params::Path};
use crate::{
    notices::{service, spec::NoticeSpec, view::NoticeView},
    store::{TemplateRow, now_ms},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(approve_template))
        .routes(routes!(send_template))
        .routes(routes!(test_audience))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    pub name: String,
    pub notice: NoticeSpec,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub id: i64,
    pub name: String,
    pub notice: NoticeSpec,
    pub author_id: i64,
    /// Set once a second official approved it; only then can it be sent alone.
    pub approver_id: Option<i64>,
}

impl TemplateView {
    fn new(row: TemplateRow) -> Result<TemplateView, ApiError> {
        Ok(TemplateView {
            notice: serde_json::from_str(&row.spec).map_err(ApiError::internal)?,
            id: row.id,
            name: row.name,
            author_id: row.author_id,
            approver_id: row.approver_id,
        })
    }
}

/// Write a template for a notice that may one day have to go out without an approver at hand.
#[utoipa::path(post, path = "/api/v1/notice-templates", tag = "notices", request_body = NewTemplate, security(("bearer" = [])),
    responses((status = 201, body = TemplateView), (status = 401), (status = 403), (status = 422)))]
async fn create_template(State(state): State<AppState>, official: CurrentOfficial, ApiJson(t): ApiJson<NewTemplate>) -> Result<(StatusCode, Json<TemplateView>), ApiError> {
    official.require(&["author"])?;
    if t.name.trim().is_empty() {
        return Err(ApiError::field("name", "must not be empty"));
    }
    t.notice.check(chrono::Utc::now())?;
    if t.notice.send_at.is_some() || t.notice.expires.is_some() {
        return Err(ApiError::field("notice.expires", "a template has no fixed times; they would be stale when it is used"));
    }
    let spec = serde_json::to_string(&t.notice).map_err(ApiError::internal)?;
    let now = now_ms();
    let id = state.store.create_template(t.name.trim(), &spec, official.0.id, now).await?;
    state.store.audit(official.0.id, "templates.create", &format!("template {id}"), 0, now).await?;
    let row = state.store.template(id).await?.ok_or_else(|| ApiError::internal("template vanished"))?;
    Ok((StatusCode::CREATED, Json(TemplateView::new(row)?)))
}

#[utoipa::path(get, path = "/api/v1/notice-templates", tag = "notices", security(("bearer" = [])),
    responses((status = 200, body = [TemplateView]), (status = 401)))]
async fn list_templates(State(state): State<AppState>, official: CurrentOfficial) -> Result<Json<Vec<TemplateView>>, ApiError> {
    official.require(&["author", "approver"])?;
    let rows = state.store.templates().await?;
    Ok(Json(rows.into_iter().map(TemplateView::new).collect::<Result<_, _>>()?))
}

/// The second official's approval of a template. Not by its author.
#[utoipa::path(post, path = "/api/v1/notice-templates/{id}/approve", tag = "notices", security(("bearer" = [])),
    responses((status = 200, body = TemplateView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn approve_template(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<TemplateView>, ApiError> {
    official.require(&["approver"])?;
    let row = state.store.template(id).await?.ok_or_else(|| ApiError::not_found("template"))?;
    if row.author_id == official.0.id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "self_approval", "a template must be approved by someone other than its author"));
    }
    let now = now_ms();
    if !state.store.approve_template(id, official.0.id, now).await? && row.approver_id.is_none() {
        return Err(ApiError::new(StatusCode::CONFLICT, "wrong_state", "the template could not be approved"));
    }
    state.store.audit(official.0.id, "templates.approve", &format!("template {id}"), 0, now).await?;
    let row = state.store.template(id).await?.ok_or_else(|| ApiError::not_found("template"))?;
    Ok(Json(TemplateView::new(row)?))
}

/// Break glass: send an approved template now, by one author alone. Audited and shown as such.
#[utoipa::path(post, path = "/api/v1/notice-templates/{id}/send", tag = "notices", security(("bearer" = [])),
    responses((status = 201, body = NoticeView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn send_template(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<(StatusCode, Json<NoticeView>), ApiError> {
    official.require(&["author"])?;
    let template = state.store.template(id).await?.ok_or_else(|| ApiError::not_found("template"))?;
    let row = service::send_template(&state.store, &official.0, &template).await?;
    state.queue.wake(crate::notices::fanout::lane_of(&row));
    tracing::warn!(notice_id = row.id, template_id = id, official_id = official.0.id, "BREAK GLASS: a pre-approved template was sent without a second approval");
    Ok((StatusCode::CREATED, Json(present(&state, row).await?)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestAudienceChange {
    /// The resident's email or phone.
    pub email: Option<String>,
    pub phone: Option<String>,
    /// true adds them to the test audience, false removes them.
    pub member: bool,
}

/// Add a resident to the test audience (or remove them). Only they receive Exercise and Test notices.
#[utoipa::path(put, path = "/api/v1/test-audience", tag = "notices", request_body = TestAudienceChange, security(("bearer" = [])),
    responses((status = 204), (status = 401), (status = 403), (status = 404), (status = 422)))]
async fn test_audience(State(state): State<AppState>, official: CurrentOfficial, ApiJson(req): ApiJson<TestAudienceChange>) -> Result<StatusCode, ApiError> {
    official.require(&[])?;
    let (channel, address) = super::officials::contact_named(&state, req.email.as_deref(), req.phone.as_deref())?;
    if !state.store.set_tester(channel, &address, req.member).await? {
        return Err(ApiError::not_found("a resident with this contact"));
    }
    state.store.audit(official.0.id, "test_audience.change", &format!("{channel} member={}", req.member), 1, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}
