//! Rows and arguments of the survey queries.

use hejnal_jobs::Lane;

use super::NewNotice;

/// A survey as stored. `spec` is the official's request (texts and questions), as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SurveyRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub slug: Option<String>,
    pub spec: String,
    pub audience: Option<String>,
    pub opens_at: Option<i64>,
    pub closes_at: Option<i64>,
    pub author_id: i64,
    pub approver_id: Option<i64>,
    pub notice_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    pub closed_at: Option<i64>,
}

/// Who changed a survey and how (`surveys.create`, `surveys.publish`, …): the store writes the
/// audit entry (subject `survey {id}`) in the same transaction as the change, so a change is
/// never left without its entry, and an entry that cannot be written undoes the change.
#[derive(Debug, Clone, Copy)]
pub struct SurveyAudit {
    pub official_id: i64,
    pub action: &'static str,
}

impl SurveyAudit {
    pub fn entry(self, survey_id: i64) -> super::AuditEntry {
        super::AuditEntry { official_id: self.official_id, action: self.action, subject: format!("survey {survey_id}") }
    }
}

/// What `create_survey` and `update_draft` store.
#[derive(Debug, Clone)]
pub struct SurveyDraft {
    pub kind: String,
    pub slug: Option<String>,
    pub spec: String,
    pub opens_at: Option<i64>,
    pub closes_at: Option<i64>,
}

/// Publishing in one transaction: the survey moves from one of `from` to `published`, the
/// invitation notice is inserted already published (or scheduled for `opens_at`), and its
/// fan-out job is written beside it. Without `notice` (a survey nobody is invited to, only
/// answered openly) only the survey changes.
#[derive(Debug, Clone)]
pub struct SurveyPublish {
    pub from: &'static [&'static str],
    /// `published`, or `pending` when a second official must approve first.
    pub to: &'static str,
    pub audience: Option<String>,
    pub opens_at: i64,
    pub approver_id: Option<i64>,
    pub notice: Option<InvitationNotice>,
}

#[derive(Debug, Clone)]
pub struct InvitationNotice {
    pub notice: NewNotice,
    /// `published`, or `scheduled` until `notice.send_at`.
    pub state: &'static str,
    pub lane: Lane,
    /// Until the fan-out may run (opens_at in the future).
    pub delay_ms: i64,
}

/// One invitation as the answering side needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: i64,
    pub survey_id: i64,
    pub language: String,
    pub erased_at: Option<i64>,
}

/// Who gives an answer: an invitation (one row per invitation) or a browser (open answers,
/// one row per browser token digest and survey).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Respondent {
    Invitation(i64),
    Browser(String),
}

/// An answer to store. Several may go in one `save_responses` call (group commit); for the
/// same survey and respondent, the last one wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponse {
    pub survey_id: i64,
    pub respondent: Respondent,
    /// The checked answers, as JSON (`{"q1": 2, …}`).
    pub answers: String,
    pub ip_digest: Option<String>,
    pub at: i64,
}

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponseRow {
    pub id: i64,
    pub survey_id: i64,
    pub invitation_id: Option<i64>,
    pub answers: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Other open responses of the same survey from the same client address.
    pub same_address: i64,
}

/// Invitations of a survey grouped by (districts, channels, answered), for response rates.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvitationGroup {
    pub district_mask: i64,
    pub channel_mask: i64,
    pub answered: bool,
    pub count: i64,
}
