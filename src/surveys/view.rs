//! What the API shows of a survey: its request, where it is in its life, and its links.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::spec::SurveySpec;
use crate::{notices::spec::Audience, residents::ResidentsCtx, store::SurveyRow};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveyView {
    pub id: i64,
    /// draft, pending (awaiting a second official), published or closed.
    pub state: String,
    #[serde(flatten)]
    pub spec: SurveySpec,
    /// Who was invited, once published.
    pub audience: Option<Audience>,
    /// Whether answers are taken right now.
    pub accepting_answers: bool,
    /// `/s/open/{slug}` when anyone may answer.
    pub open_url: Option<String>,
    /// The notice carrying the invitations: its progress is at `/api/v1/notices/{id}`.
    pub invitation_notice_id: Option<i64>,
    pub author_id: i64,
    pub approver_id: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

impl SurveyView {
    pub fn new(row: SurveyRow, residents: &ResidentsCtx) -> Result<SurveyView, serde_json::Error> {
        let mut spec: SurveySpec = serde_json::from_str(&row.spec)?;
        // The opening set at publishing, when the request left it out.
        spec.opens_at = row.opens_at.and_then(at);
        let audience = row.audience.as_deref().map(serde_json::from_str).transpose()?;
        let accepting_answers = super::service::accepting(&row, crate::store::now_ms()).is_ok();
        Ok(SurveyView {
            id: row.id,
            state: row.state,
            open_url: row.slug.as_deref().map(|s| super::open_url(residents, s)),
            spec,
            audience,
            accepting_answers,
            invitation_notice_id: row.notice_id,
            author_id: row.author_id,
            approver_id: row.approver_id,
            created_at: at(row.created_at),
            updated_at: at(row.updated_at),
            published_at: row.published_at.and_then(at),
            closed_at: row.closed_at.and_then(at),
        })
    }
}
