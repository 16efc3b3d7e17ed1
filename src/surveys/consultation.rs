//! Consultations beyond their questions: residents' comments, which are shown only after an
//! official approves them (the decision, who made it, when and why are kept on the comment
//! and in the audit log), and the report officials publish once the period has ended: their
//! summary and the results as they stood, frozen.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    results,
    service::{self, accepting, load},
    spec::{LocalText, SurveyKind, SurveySpec},
};
use crate::{
    http::error::{ApiError, FieldError},
    store::{CommentRow, DynStore, Moderation, NewComment, Official, ReportRow, SurveyRow, now_ms},
};

pub const COMMENT_MAX: usize = 2000;
pub const NAME_MAX: usize = 80;
/// Comments shown on a page and listed for officials at most.
pub const COMMENTS_SHOWN: i64 = 1000;

/// A consultation (by id), or 404: other kinds have no comments or report.
pub async fn consultation(store: &DynStore, id: i64) -> Result<(SurveyRow, SurveySpec), ApiError> {
    let row = load(store, id).await?;
    let spec = service::parse(&row)?;
    if spec.kind != SurveyKind::Consultation {
        return Err(ApiError::not_found("consultation"));
    }
    Ok((row, spec))
}

/// A published (or ended) consultation by its slug, for its public pages.
pub async fn public(store: &DynStore, slug: &str) -> Result<(SurveyRow, SurveySpec), ApiError> {
    let row = service::open_survey(store, slug).await?;
    let spec = service::parse(&row)?;
    if spec.kind != SurveyKind::Consultation {
        return Err(ApiError::not_found("consultation"));
    }
    Ok((row, spec))
}

/// A resident's comment as sent: checked, then kept pending until moderated.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// The name to show with the comment; anonymous when left out.
    #[serde(default)]
    pub name: Option<String>,
    pub text: String,
    /// `pl`, `en` or `uk`: the language it is written in.
    #[serde(default)]
    pub language: Option<String>,
}

/// Check a comment; every problem named by its field.
pub fn check_comment(c: &CommentBody) -> Result<(Option<String>, String), Vec<FieldError>> {
    let mut errors = Vec::new();
    let text = c.text.trim();
    if text.is_empty() {
        errors.push(FieldError { field: "text".into(), message: "write a comment".into() });
    } else if text.chars().count() > COMMENT_MAX {
        errors.push(FieldError { field: "text".into(), message: format!("at most {COMMENT_MAX} characters") });
    }
    let name = c.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = name
        && (n.chars().count() > NAME_MAX || n.contains(['\r', '\n']))
    {
        errors.push(FieldError { field: "name".into(), message: format!("one line of at most {NAME_MAX} characters") });
    }
    if errors.is_empty() { Ok((name.map(str::to_owned), text.to_owned())) } else { Err(errors) }
}

/// Take a resident's comment while the consultation's period runs.
pub async fn comment(store: &DynStore, row: &SurveyRow, body: &CommentBody, lang: &str, browser_hash: Option<String>, ip_digest: Option<String>) -> Result<CommentRow, ApiError> {
    accepting(row, now_ms())?;
    let (name, text) = check_comment(body).map_err(ApiError::from_fields)?;
    let language = body.language.clone().unwrap_or_else(|| lang.to_owned());
    if !super::spec::LANGUAGES.contains(&language.as_str()) {
        return Err(ApiError::field("language", "must be pl, en or uk"));
    }
    let new = NewComment { survey_id: row.id, name, body: text, language, browser_hash, ip_digest, at: now_ms() };
    let saved = store.add_comment(&new).await?;
    metrics::counter!("hejnal_consultation_comments_total").increment(1);
    Ok(saved)
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModerationBody {
    pub decision: Decision,
    /// Why; required to reject (kept with the comment, never shown publicly).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Approve or reject a pending comment. A second decision on the same comment is refused
/// (409), unless it is the same decision (a double click).
pub async fn moderate(store: &DynStore, official: &Official, survey_id: i64, comment_id: i64, body: &ModerationBody) -> Result<CommentRow, ApiError> {
    consultation(store, survey_id).await?;
    let reason = body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(ApiError::field("reason", "at most 1000 characters"));
    }
    let decision = match body.decision {
        Decision::Approve => "approved",
        Decision::Reject if reason.is_none() => return Err(ApiError::field("reason", "say why the comment is rejected")),
        Decision::Reject => "rejected",
    };
    let now = now_ms();
    let m = Moderation { decision, reason, moderator_id: official.id, at: now };
    if let Some(row) = store.moderate_comment(survey_id, comment_id, &m).await? {
        return Ok(row);
    }
    match store.comment(survey_id, comment_id).await? {
        None => Err(ApiError::not_found("comment")),
        Some(row) if row.state == decision => Ok(row),
        Some(row) => Err(ApiError::new(StatusCode::CONFLICT, "already_moderated", format!("comment {comment_id} was already {}", row.state))),
    }
}

/// A comment as officials see it, with its moderation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CommentView {
    pub id: i64,
    pub name: Option<String>,
    pub text: String,
    pub language: String,
    /// pending, approved or rejected.
    pub state: String,
    pub created_at: Option<DateTime<Utc>>,
    pub moderation: Option<ModerationView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModerationView {
    /// The official who decided.
    pub moderator_id: i64,
    pub at: Option<DateTime<Utc>>,
    pub decision: String,
    pub reason: Option<String>,
}

impl From<CommentRow> for CommentView {
    fn from(c: CommentRow) -> Self {
        let moderation = c.moderator_id.map(|moderator_id| ModerationView {
            moderator_id,
            at: c.moderated_at.and_then(DateTime::from_timestamp_millis),
            decision: c.state.clone(),
            reason: c.reason.clone(),
        });
        CommentView { id: c.id, name: c.name, text: c.body, language: c.language, state: c.state, created_at: DateTime::from_timestamp_millis(c.created_at), moderation }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// The officials' summary of the consultation, per language (`pl` required).
    pub summary: LocalText,
}

/// A report as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub survey_id: i64,
    pub summary: LocalText,
    /// The results when the report was published (as `GET …/results` gave them).
    #[schema(value_type = Object)]
    pub results: serde_json::Value,
    /// Approved comments when the report was published.
    pub comments: i64,
    pub author_id: i64,
    pub published_at: Option<DateTime<Utc>>,
    /// The public page: `/c/{slug}/report`.
    pub url: String,
}

/// Whether the consultation's period is over: closed, or past its `closes_at`.
pub fn ended(row: &SurveyRow, now: i64) -> bool {
    row.state == "closed" || (row.state == "published" && row.closes_at.is_some_and(|c| c <= now))
}

/// Publish the report: only once the period has ended, only once.
pub async fn publish_report(store: &DynStore, official: &Official, survey_id: i64, body: &ReportBody) -> Result<ReportRow, ApiError> {
    let (row, spec) = consultation(store, survey_id).await?;
    let now = now_ms();
    if !ended(&row, now) {
        return Err(ApiError::new(StatusCode::CONFLICT, "consultation_open", "the report can be published once the consultation's period has ended (or it is closed)"));
    }
    let mut errors = Vec::new();
    super::spec::check_required_text("summary", &body.summary, 20_000, &mut |field: String, message: &str| errors.push(FieldError { field, message: message.into() }));
    if !errors.is_empty() {
        return Err(ApiError::from_fields(errors));
    }
    let results = results::compute(store, &row, &spec).await?;
    let comments = store.comments(survey_id, Some("approved"), i64::MAX).await?.len() as i64;
    let report = ReportRow {
        survey_id,
        summary: serde_json::to_string(&body.summary).map_err(ApiError::internal)?,
        results: serde_json::to_string(&results).map_err(ApiError::internal)?,
        comments,
        author_id: official.id,
        published_at: now,
    };
    match store.publish_report(&report).await? {
        Some(saved) => Ok(saved),
        None => Err(ApiError::new(StatusCode::CONFLICT, "report_published", "this consultation's report is already published")),
    }
}
