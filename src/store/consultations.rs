//! Consultation comments (moderated) and reports, written once for both stores by
//! `consultation_queries!` (see `residents.rs` for the placeholder rule).

use async_trait::async_trait;

use super::StoreResult;

#[async_trait]
pub trait Consultations: Send + Sync {
    /// A new comment, waiting for moderation.
    async fn add_comment(&self, c: &NewComment) -> StoreResult<CommentRow>;
    /// A consultation's comments, oldest first; only those in `state` when given.
    async fn comments(&self, survey_id: i64, state: Option<&str>, limit: i64) -> StoreResult<Vec<CommentRow>>;
    async fn comment(&self, survey_id: i64, id: i64) -> StoreResult<Option<CommentRow>>;
    /// Decide a pending comment (`approved` or `rejected`), recording who, when and why, in
    /// one conditional update, with the moderator's audit entry in the same transaction; None
    /// (and no entry) when it was not pending (or is not there).
    async fn moderate_comment(&self, survey_id: i64, id: i64, m: &Moderation) -> StoreResult<Option<CommentRow>>;
    /// Publish the report, with its author's audit entry in the same transaction; None (and
    /// no entry) when one was already published.
    async fn publish_report(&self, r: &ReportRow) -> StoreResult<Option<ReportRow>>;
    async fn report(&self, survey_id: i64) -> StoreResult<Option<ReportRow>>;
}

#[derive(Debug, Clone)]
pub struct NewComment {
    pub survey_id: i64,
    pub name: Option<String>,
    pub body: String,
    pub language: String,
    pub browser_hash: Option<String>,
    pub ip_digest: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommentRow {
    pub id: i64,
    pub survey_id: i64,
    pub name: Option<String>,
    pub body: String,
    pub language: String,
    pub state: String,
    pub created_at: i64,
    pub moderator_id: Option<i64>,
    pub moderated_at: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Moderation {
    /// `approved` or `rejected`.
    pub decision: &'static str,
    pub reason: Option<String>,
    pub moderator_id: i64,
    pub at: i64,
}

/// The audit action of a moderation decision.
pub(crate) fn moderation_action(decision: &str) -> &'static str {
    if decision == "approved" { "consultations.comment.approved" } else { "consultations.comment.rejected" }
}

/// A published report: `summary` (per language) and `results` as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRow {
    pub survey_id: i64,
    pub summary: String,
    pub results: String,
    /// Approved comments when it was published.
    pub comments: i64,
    pub author_id: i64,
    pub published_at: i64,
}

pub(super) const COMMENT_COLUMNS: &str = "id, survey_id, name, body, language, state, created_at, moderator_id, moderated_at, reason";

macro_rules! consultation_queries {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::consultations::Consultations for $store {
            async fn add_comment(&self, c: &NewComment) -> StoreResult<CommentRow> {
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO consultation_comments (survey_id, name, body, language, browser_hash, ip_digest, state, created_at) VALUES (");
                b.push_bind(c.survey_id).push(", ").push_bind(c.name.clone()).push(", ").push_bind(c.body.clone()).push(", ")
                    .push_bind(c.language.clone()).push(", ").push_bind(c.browser_hash.clone()).push(", ").push_bind(c.ip_digest.clone())
                    .push(", 'pending', ").push_bind(c.at).push(") RETURNING ").push($crate::store::consultations::COMMENT_COLUMNS);
                Ok(b.build_query_as().fetch_one(&self.pool).await?)
            }

            async fn comments(&self, survey_id: i64, state: Option<&str>, limit: i64) -> StoreResult<Vec<CommentRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::consultations::COMMENT_COLUMNS).push(" FROM consultation_comments WHERE survey_id = ").push_bind(survey_id);
                if let Some(s) = state {
                    b.push(" AND state = ").push_bind(s.to_owned());
                }
                b.push(" ORDER BY id LIMIT ").push_bind(limit);
                Ok(b.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn comment(&self, survey_id: i64, id: i64) -> StoreResult<Option<CommentRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::consultations::COMMENT_COLUMNS).push(" FROM consultation_comments WHERE survey_id = ").push_bind(survey_id)
                    .push(" AND id = ").push_bind(id);
                Ok(b.build_query_as().fetch_optional(&self.pool).await?)
            }

            async fn moderate_comment(&self, survey_id: i64, id: i64, m: &Moderation) -> StoreResult<Option<CommentRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("UPDATE consultation_comments SET state = ");
                b.push_bind(m.decision).push(", moderator_id = ").push_bind(m.moderator_id).push(", moderated_at = ").push_bind(m.at)
                    .push(", reason = ").push_bind(m.reason.clone())
                    .push(" WHERE state = 'pending' AND survey_id = ").push_bind(survey_id).push(" AND id = ").push_bind(id)
                    .push(" RETURNING ").push($crate::store::consultations::COMMENT_COLUMNS);
                let mut tx = self.begin_write().await?;
                let row: Option<CommentRow> = b.build_query_as().fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                let entry = $crate::store::AuditEntry {
                    official_id: m.moderator_id,
                    action: $crate::store::consultations::moderation_action(m.decision),
                    subject: format!("survey {survey_id} comment {id}"),
                };
                $crate::store::notices::insert_audit!(tx, entry, m.at);
                tx.commit().await?;
                Ok(Some(row))
            }

            async fn publish_report(&self, r: &ReportRow) -> StoreResult<Option<ReportRow>> {
                let mut tx = self.begin_write().await?;
                let saved: Option<ReportRow> = sqlx::query_as(
                    "INSERT INTO consultation_reports (survey_id, summary, results, comments, author_id, published_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (survey_id) DO NOTHING
                     RETURNING survey_id, summary, results, comments, author_id, published_at")
                    .bind(r.survey_id).bind(&r.summary).bind(&r.results).bind(r.comments).bind(r.author_id).bind(r.published_at)
                    .fetch_optional(&mut *tx).await?;
                let Some(saved) = saved else { return Ok(None) };
                let entry = $crate::store::AuditEntry { official_id: r.author_id, action: "consultations.report", subject: format!("survey {}", r.survey_id) };
                $crate::store::notices::insert_audit!(tx, entry, r.published_at);
                tx.commit().await?;
                Ok(Some(saved))
            }

            async fn report(&self, survey_id: i64) -> StoreResult<Option<ReportRow>> {
                Ok(sqlx::query_as("SELECT survey_id, summary, results, comments, author_id, published_at FROM consultation_reports WHERE survey_id = $1")
                    .bind(survey_id).fetch_optional(&self.pool).await?)
            }
        }
    };
}

pub(crate) use consultation_queries;
