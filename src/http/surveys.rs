//! Surveys for officials (write, edit as a draft, publish to an audience, close, results),
//! and the answering endpoint residents reach, by invitation token or openly.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, State},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppState, auth::CurrentOfficial, error::ApiError, json::ApiJson, params::{Path, Query}};
use crate::{
    notices::spec::Audience,
    residents::secrets,
    store::{Respondent, SurveyRow},
    surveys::{results::{self, Results, TextAnswer}, service, spec::SurveySpec, view::SurveyView},
};

/// For officials.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_survey, replace, patch))
        .routes(routes!(publish))
        .routes(routes!(approve))
        .routes(routes!(close))
        .routes(routes!(get_results))
        .routes(routes!(results_csv))
        .routes(routes!(text_answers))
}

/// For residents: rate-limited with the other public endpoints.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(respond))
}

const READERS: &[&str] = &["author", "approver", "analyst"];

fn present(state: &AppState, row: SurveyRow) -> Result<SurveyView, ApiError> {
    SurveyView::new(row, &state.residents).map_err(ApiError::internal)
}

/// Write a survey; it stays a draft, editable, until published.
#[utoipa::path(post, path = "/api/v1/surveys", tag = "surveys", request_body = SurveySpec, security(("bearer" = [])),
    responses((status = 201, body = SurveyView), (status = 401), (status = 403), (status = 409, description = "the slug is taken"), (status = 422)))]
async fn create(State(state): State<AppState>, official: CurrentOfficial, ApiJson(spec): ApiJson<SurveySpec>) -> Result<(StatusCode, Json<SurveyView>), ApiError> {
    official.require(&["author"])?;
    let row = service::create(&state.store, &official.0, spec).await?;
    Ok((StatusCode::CREATED, Json(present(&state, row)?)))
}

/// The latest surveys, newest first.
#[utoipa::path(get, path = "/api/v1/surveys", tag = "surveys", security(("bearer" = [])),
    responses((status = 200, body = [SurveyView]), (status = 401)))]
async fn list(State(state): State<AppState>, official: CurrentOfficial) -> Result<Json<Vec<SurveyView>>, ApiError> {
    official.require(READERS)?;
    let rows = state.store.surveys(100).await?;
    Ok(Json(rows.into_iter().map(|r| present(&state, r)).collect::<Result<_, _>>()?))
}

#[utoipa::path(get, path = "/api/v1/surveys/{id}", tag = "surveys", security(("bearer" = [])),
    responses((status = 200, body = SurveyView), (status = 401), (status = 404)))]
async fn get_survey(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<SurveyView>, ApiError> {
    official.require(READERS)?;
    Ok(Json(present(&state, service::load(&state.store, id).await?)?))
}

/// Replace a draft. A published survey answers 409 `survey_published`.
#[utoipa::path(put, path = "/api/v1/surveys/{id}", tag = "surveys", request_body = SurveySpec, security(("bearer" = [])),
    responses((status = 200, body = SurveyView), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn replace(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, ApiJson(spec): ApiJson<SurveySpec>) -> Result<Json<SurveyView>, ApiError> {
    official.require(&["author"])?;
    Ok(Json(present(&state, service::replace_draft(&state.store, &official.0, id, spec).await?)?))
}

/// Change some fields of a draft: a JSON merge patch (RFC 7396) of its request.
#[utoipa::path(patch, path = "/api/v1/surveys/{id}", tag = "surveys", request_body = Object, security(("bearer" = [])),
    responses((status = 200, body = SurveyView), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn patch(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, ApiJson(body): ApiJson<Value>) -> Result<Json<SurveyView>, ApiError> {
    official.require(&["author"])?;
    Ok(Json(present(&state, service::patch_draft(&state.store, &official.0, id, &body).await?)?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// Who is invited (as for notices). Leave it out for a survey answered only openly.
    #[serde(default)]
    pub audience: Option<Audience>,
}

/// Publish: invitations go out at once (or at `opens_at`), unless `HEJNAL_APPROVAL_FOR_SURVEYS`
/// asks for a second official first (then the survey is `pending`). A poll sent by SMS under
/// an alphanumeric sender is published with the warning `sms_sender_not_a_number`: residents
/// cannot reply to a name.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/publish", tag = "surveys", request_body = PublishBody, security(("bearer" = [])),
    responses((status = 200, body = SurveyView), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn publish(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, ApiJson(body): ApiJson<PublishBody>) -> Result<Json<SurveyView>, ApiError> {
    official.require(&["author"])?;
    let row = service::publish(&state.store, &state.config.delivery, &official.0, id, body.audience).await?;
    state.queue.wake(hejnal_jobs::Lane::Routine);
    with_warnings(&state, row)
}

/// A published (or submitted) survey, with what the official should know about it.
fn with_warnings(state: &AppState, row: SurveyRow) -> Result<Json<SurveyView>, ApiError> {
    let c = &state.config.channels;
    let first = c.sms_sender.as_deref();
    let senders: Vec<&str> = first.into_iter().chain(c.sms_providers.iter().filter_map(|p| p.sender.as_deref().or(first))).collect();
    let warnings = service::publish_warnings(&row, &senders);
    for w in &warnings {
        tracing::warn!(survey = row.id, code = w.code, "{}", w.message);
    }
    let mut view = present(state, row)?;
    view.warnings = warnings;
    Ok(Json(view))
}

/// Approve a pending survey (not by its author): it is published and the invitations go.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/approve", tag = "surveys", security(("bearer" = [])),
    responses((status = 200, body = SurveyView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn approve(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<SurveyView>, ApiError> {
    official.require(&["approver"])?;
    let row = service::approve(&state.store, &official.0, id).await?;
    state.queue.wake(hejnal_jobs::Lane::Routine);
    with_warnings(&state, row)
}

/// Close a survey now: no more answers; invitations not yet sent are cancelled.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/close", tag = "surveys", security(("bearer" = [])),
    responses((status = 200, body = SurveyView), (status = 401), (status = 403), (status = 404), (status = 409)))]
async fn close(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<SurveyView>, ApiError> {
    official.require(&["author", "approver"])?;
    Ok(Json(present(&state, service::close(&state.store, &official.0, id).await?)?))
}

async fn compute(state: &AppState, id: i64) -> Result<Results, ApiError> {
    let row = service::load(&state.store, id).await?;
    let spec = service::parse(&row)?;
    Ok(results::compute(&state.store, &row, &spec).await?)
}

/// Counts per option, scale distribution and mean, ranking, response rate per district and
/// channel; answers by invitation apart from open ones. Live while the survey is open.
#[utoipa::path(get, path = "/api/v1/surveys/{id}/results", tag = "surveys", security(("bearer" = [])),
    responses((status = 200, body = Results), (status = 401), (status = 404)))]
async fn get_results(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>) -> Result<Json<Results>, ApiError> {
    official.require(READERS)?;
    Ok(Json(compute(&state, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CsvQuery {
    /// `;` for Polish spreadsheets (decimals then take a comma); `,` by default.
    pub sep: Option<String>,
}

/// The results as CSV (UTF-8 with BOM; cells that would run as formulas are escaped).
#[utoipa::path(get, path = "/api/v1/surveys/{id}/results.csv", tag = "surveys", params(CsvQuery), security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401), (status = 404), (status = 422)))]
async fn results_csv(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, Query(q): Query<CsvQuery>) -> Result<Response, ApiError> {
    official.require(READERS)?;
    let sep = match q.sep.as_deref() {
        None | Some(",") => b',',
        Some(";") => b';',
        Some(_) => return Err(ApiError::field("sep", "must be , or ;")),
    };
    let csv = results::to_csv(&compute(&state, id).await?, sep);
    let disposition = format!("attachment; filename=\"survey-{id}-results.csv\"");
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)], csv).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TextQuery {
    /// One question's id; every text question when left out.
    pub question: Option<String>,
}

/// Free-text answers for analysts, without anything that identifies who wrote them.
#[utoipa::path(get, path = "/api/v1/surveys/{id}/answers", tag = "surveys", params(TextQuery), security(("bearer" = [])),
    responses((status = 200, body = [TextAnswer]), (status = 401), (status = 404), (status = 422)))]
async fn text_answers(State(state): State<AppState>, official: CurrentOfficial, Path(id): Path<i64>, Query(q): Query<TextQuery>) -> Result<Json<Vec<TextAnswer>>, ApiError> {
    official.require(READERS)?;
    let row = service::load(&state.store, id).await?;
    let spec = service::parse(&row)?;
    if let Some(question) = q.question.as_deref()
        && !spec.question(question).is_some_and(|q| q.kind.is_text())
    {
        return Err(ApiError::field("question", format!("{question:?} is not a text question of this survey")));
    }
    Ok(Json(results::text_answers(&state.store, id, &spec, q.question.as_deref()).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseBody {
    /// The invitation token (the last part of `/s/{token}`).
    #[serde(default)]
    pub token: Option<String>,
    /// Open surveys: this browser's token, from an earlier answer; a new one is made when
    /// left out. The same token replaces its earlier answer.
    #[serde(default)]
    pub browser_token: Option<String>,
    /// Question id → answer: an option number, a list of them (multiple choice; a ranking,
    /// first place first), a scale value, a text, or true/false.
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Answered {
    pub response_id: i64,
    /// 1 for a first answer; each change adds one.
    pub revision: i64,
    /// `invitation` or `open`.
    pub source: &'static str,
    /// Open answers: send it again to change this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_token: Option<String>,
    /// The answers as stored (hidden questions dropped, texts trimmed).
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
}

/// The client's address, when the server knows it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// Answer a survey, by invitation token or (open surveys) by browser token. A second answer
/// replaces the first (200; a first answer is 201). Stored durably before the answer.
#[utoipa::path(post, path = "/api/v1/surveys/{id}/responses", tag = "surveys", request_body = ResponseBody,
    responses((status = 201, body = Answered), (status = 200, body = Answered), (status = 404), (status = 409, description = "survey_closed or survey_not_open"),
        (status = 410, description = "the invited resident erased their data"), (status = 422), (status = 429)))]
async fn respond(State(state): State<AppState>, ClientIp(ip): ClientIp, Path(id): Path<i64>, ApiJson(body): ApiJson<ResponseBody>) -> Result<(StatusCode, Json<Answered>), ApiError> {
    let (survey, respondent, browser_token) = match (&body.token, &body.browser_token) {
        (Some(_), Some(_)) => return Err(ApiError::field("browser_token", "send token or browser_token, not both")),
        (Some(token), None) => {
            let inv = state.residents.links.open_invitation(token).ok_or_else(|| ApiError::not_found("this link"))?;
            let survey = service::load_for_answer(&state.residents, id).await?;
            if service::accepting(&survey.0, crate::store::now_ms()).is_ok() {
                // The commit checks that the invitation is to this survey and not erased.
                (survey, Respondent::Invitation(inv), None)
            } else {
                // Refused anyway: say first what is wrong with the link, as the pages do.
                let (inv, survey) = service::invitation(&state.residents, token).await?;
                if survey.id != id {
                    return Err(ApiError::field("token", "this invitation is for another survey"));
                }
                let spec = std::sync::Arc::new(service::parse(&survey)?);
                ((std::sync::Arc::new(survey), spec), Respondent::Invitation(inv.id), None)
            }
        }
        (None, browser) => {
            let survey = service::load_for_answer(&state.residents, id).await?;
            if survey.0.slug.is_none() {
                return Err(ApiError::field("token", "this survey is answered by invitation only: send the invitation's token"));
            }
            let token = browser.clone().unwrap_or_else(|| secrets::random_token(16));
            (survey, service::browser_respondent(&token)?, Some(token))
        }
    };
    let source = if browser_token.is_some() { "open" } else { "invitation" };
    let (row, spec) = &survey;
    let (saved, answers) = service::answer(&state.residents, row, spec, respondent, &body.answers, ip).await.map_err(service::Refused::into_api)?;
    let status = if saved.revision == 1 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(Answered { response_id: saved.id, revision: saved.revision, source, browser_token, answers })))
}
