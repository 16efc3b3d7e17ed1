//! Survey, invitation and response queries, written once in SQL both dialects accept and
//! generated for each store by `survey_queries!` (see `residents.rs` for the placeholder rule).
//! The hot path is `save_responses`: many answers in one transaction, one upsert per kind.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{StoreResult, surveys_types::*};

#[async_trait]
pub trait Surveys: Send + Sync {
    /// A new draft by `audit.official_id`, with its audit entry.
    async fn create_survey(&self, d: &SurveyDraft, audit: SurveyAudit, now: i64) -> StoreResult<i64>;
    /// Replace a draft's texts and questions, with the audit entry; None (and no entry) unless
    /// it is still a draft.
    async fn update_draft(&self, id: i64, d: &SurveyDraft, audit: SurveyAudit, now: i64) -> StoreResult<Option<SurveyRow>>;
    async fn survey(&self, id: i64) -> StoreResult<Option<SurveyRow>>;
    async fn survey_by_slug(&self, slug: &str) -> StoreResult<Option<SurveyRow>>;
    async fn surveys(&self, limit: i64) -> StoreResult<Vec<SurveyRow>>;
    /// See [`SurveyPublish`], with the audit entry; None (and no entry) when the survey is not
    /// in one of `p.from`.
    async fn publish_survey(&self, id: i64, p: &SurveyPublish, audit: SurveyAudit, now: i64) -> StoreResult<Option<SurveyRow>>;
    /// Close a published survey, with the audit entry; invitations still waiting to be sent
    /// are cancelled.
    async fn close_survey(&self, id: i64, audit: SurveyAudit, now: i64) -> StoreResult<Option<SurveyRow>>;
    /// The survey whose invitations a notice carries.
    async fn survey_of_notice(&self, notice_id: i64) -> StoreResult<Option<i64>>;
    /// One invitation per resident the notice's fan-out reached (existing ones stay), with
    /// their districts (within `district_any`) and the channels it went over.
    async fn create_invitations(&self, notice_id: i64, district_any: i64, now: i64) -> StoreResult<u64>;
    /// (subscriber id, invitation id) of these residents' invitations to a survey.
    async fn invitations_of(&self, survey_id: i64, subscriber_ids: &[i64]) -> StoreResult<Vec<(i64, i64)>>;
    async fn invitation(&self, id: i64) -> StoreResult<Option<InvitationRow>>;
    /// The latest invitation, sent by SMS to this verified number, to a poll still published:
    /// what an SMS reply from that number answers.
    async fn poll_invitation_by_phone(&self, phone: &str) -> StoreResult<Option<InvitationRow>>;
    /// Store answers in one transaction. Answers to the same survey by the same respondent
    /// are resolved here, the last one winning, before the upsert (which replaces an earlier
    /// stored answer; `revision` counts every answer given, those replaced within the batch
    /// too). Answers to a survey that does not take answers at that moment (not published,
    /// not yet open, closed) are dropped: the survey rows are read in the same transaction
    /// (locked against a concurrent close on PostgreSQL), so an answer never lands after a
    /// close. So are answers by an invitation that is not to that survey or whose resident
    /// erased their data: the caller need not read the invitation first. Returns what was
    /// stored.
    async fn save_responses(&self, batch: &[NewResponse]) -> StoreResult<Vec<SavedResponse>>;
    async fn response_of(&self, survey_id: i64, respondent: &Respondent) -> StoreResult<Option<ResponseRow>>;
    /// Responses of a survey with ids above `after`, in id order, at most `limit`.
    async fn responses(&self, survey_id: i64, after: i64, limit: i64) -> StoreResult<Vec<ResponseRow>>;
    async fn invitation_groups(&self, survey_id: i64) -> StoreResult<Vec<InvitationGroup>>;
    /// A resident's own answers, for their data export: (survey id, answers JSON, updated at).
    async fn answers_of_resident(&self, public_id: &str) -> StoreResult<Vec<(i64, String, i64)>>;
}

/// What `save_responses` stored for one respondent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    pub survey_id: i64,
    pub respondent: Respondent,
    pub id: i64,
    pub revision: i64,
}

pub(super) const SURVEY_COLUMNS: &str = "id, kind, state, slug, spec, audience, opens_at, closes_at, author_id, approver_id, notice_id, \
    created_at, updated_at, published_at, closed_at";

pub(super) const RESPONSE_COLUMNS: &str = "r.id, r.survey_id, r.invitation_id, r.answers, r.revision, r.created_at, r.updated_at, \
    (SELECT count(*) FROM survey_responses o WHERE o.survey_id = r.survey_id AND o.ip_digest = r.ip_digest AND o.id <> r.id) AS same_address";

/// The last answer of each respondent in a batch, in the order they were first seen, with
/// how many answers the respondent gave in the batch (each counts as a revision).
pub fn last_answer_wins(batch: &[NewResponse]) -> Vec<(&NewResponse, i64)> {
    let mut index: HashMap<(i64, &Respondent), usize> = HashMap::new();
    let mut out: Vec<(&NewResponse, i64)> = Vec::new();
    for r in batch {
        match index.get(&(r.survey_id, &r.respondent)) {
            Some(&i) => out[i] = (r, out[i].1 + 1),
            None => {
                index.insert((r.survey_id, &r.respondent), out.len());
                out.push((r, 1));
            }
        }
    }
    out
}

/// The invitation of an answer given by invitation (0, matching nothing, otherwise).
pub fn invitation_of(r: &NewResponse) -> i64 {
    match r.respondent {
        Respondent::Invitation(id) => id,
        Respondent::Browser(_) => 0,
    }
}

/// The time a batch is judged at: a survey takes the batch's answers if it does at the time of
/// the latest of them.
pub(super) fn judged_at(last: &[(&NewResponse, i64)]) -> i64 {
    last.iter().map(|(r, _)| r.at).max().unwrap_or_default()
}

/// A row the answer upsert returned (survey, invitation, browser, id, revision) as what was saved.
pub(super) type UpsertedRow = (i64, Option<i64>, Option<String>, i64, i64);

pub(super) fn saved_response((survey_id, invitation_id, browser_hash, id, revision): UpsertedRow) -> SavedResponse {
    let respondent = match (invitation_id, browser_hash) {
        (Some(invitation), _) => Respondent::Invitation(invitation),
        (None, hash) => Respondent::Browser(hash.unwrap_or_default()),
    };
    SavedResponse { survey_id, respondent, id, revision }
}

macro_rules! survey_queries {
    // `save_responses` is each store's own `store_answers` (`sqlite_answers.rs`,
    // `postgres_answers.rs`).
    ($store:ty, $db:ty, $backlog_insert:path) => {
        #[async_trait::async_trait]
        impl $crate::store::surveys::Surveys for $store {
            async fn create_survey(&self, d: &SurveyDraft, audit: SurveyAudit, now: i64) -> StoreResult<i64> {
                let mut tx = self.begin_write().await?;
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO surveys (kind, state, slug, spec, opens_at, closes_at, author_id, created_at, updated_at)
                     VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7, $7) RETURNING id")
                    .bind(&d.kind).bind(&d.slug).bind(&d.spec).bind(d.opens_at).bind(d.closes_at).bind(audit.official_id).bind(now)
                    .fetch_one(&mut *tx).await
                    .map_err(|e| $crate::store::common::unique_violation(e, "a survey with this slug"))?;
                let entry = audit.entry(id);
                $crate::store::notices::insert_audit!(tx, entry, now);
                tx.commit().await?;
                Ok(id)
            }

            async fn update_draft(&self, id: i64, d: &SurveyDraft, audit: SurveyAudit, now: i64) -> StoreResult<Option<SurveyRow>> {
                let mut tx = self.begin_write().await?;
                let mut b = sqlx::QueryBuilder::<$db>::new("UPDATE surveys SET kind = ");
                b.push_bind(d.kind.clone()).push(", slug = ").push_bind(d.slug.clone()).push(", spec = ").push_bind(d.spec.clone())
                    .push(", opens_at = ").push_bind(d.opens_at).push(", closes_at = ").push_bind(d.closes_at)
                    .push(", updated_at = ").push_bind(now)
                    .push(" WHERE state = 'draft' AND id = ").push_bind(id)
                    .push(" RETURNING ").push($crate::store::surveys::SURVEY_COLUMNS);
                let row: Option<SurveyRow> = b.build_query_as().fetch_optional(&mut *tx).await
                    .map_err(|e| $crate::store::common::unique_violation(e, "a survey with this slug"))?;
                let Some(row) = row else { return Ok(None) };
                let entry = audit.entry(id);
                $crate::store::notices::insert_audit!(tx, entry, now);
                tx.commit().await?;
                Ok(Some(row))
            }

            async fn survey(&self, id: i64) -> StoreResult<Option<SurveyRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::surveys::SURVEY_COLUMNS).push(" FROM surveys WHERE id = ").push_bind(id);
                Ok(b.build_query_as().fetch_optional(&self.pool).await?)
            }

            async fn survey_by_slug(&self, slug: &str) -> StoreResult<Option<SurveyRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::surveys::SURVEY_COLUMNS).push(" FROM surveys WHERE slug = ").push_bind(slug.to_owned());
                Ok(b.build_query_as().fetch_optional(&self.pool).await?)
            }

            async fn surveys(&self, limit: i64) -> StoreResult<Vec<SurveyRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::surveys::SURVEY_COLUMNS).push(" FROM surveys ORDER BY id DESC LIMIT ").push_bind(limit);
                Ok(b.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn publish_survey(&self, id: i64, p: &SurveyPublish, audit: SurveyAudit, now: i64) -> StoreResult<Option<SurveyRow>> {
                let mut tx = self.begin_write().await?;
                let notice_id: Option<i64> = match &p.notice {
                    Some(inv) => {
                        let n = &inv.notice;
                        let published_at = (inv.state == "published").then_some(now);
                        let (nid,): (i64,) = sqlx::query_as(
                            "INSERT INTO notices (kind, msg_type, status, severity, spec, state, lane, send_at, expires_at, author_id,
                                                  approver_id, approval, created_at, submitted_at, approved_at, published_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $13, $14) RETURNING id")
                            .bind(&n.kind).bind(&n.msg_type).bind(&n.status).bind(&n.severity).bind(&n.spec).bind(inv.state)
                            .bind(&n.lane).bind(n.send_at).bind(n.expires_at).bind(n.author_id).bind(p.approver_id)
                            .bind(if p.approver_id.is_some() { "second_official" } else { "not_required" }).bind(now).bind(published_at)
                            .fetch_one(&mut *tx).await?;
                        Some(nid)
                    }
                    None => None,
                };
                let mut b = sqlx::QueryBuilder::<$db>::new("UPDATE surveys SET state = ");
                b.push_bind(p.to).push(", audience = ").push_bind(p.audience.clone()).push(", opens_at = ").push_bind(p.opens_at)
                    .push(", notice_id = ").push_bind(notice_id).push(", updated_at = ").push_bind(now);
                if let Some(a) = p.approver_id {
                    b.push(", approver_id = ").push_bind(a);
                }
                if p.to == "published" {
                    b.push(", published_at = ").push_bind(now);
                }
                b.push(" WHERE id = ").push_bind(id).push(" AND state IN ");
                b.push_tuples(p.from.iter(), |mut s, state| { s.push_bind(*state); });
                b.push(" RETURNING ").push($crate::store::surveys::SURVEY_COLUMNS);
                let row: Option<SurveyRow> = b.build_query_as().fetch_optional(&mut *tx).await?;
                if row.is_none() {
                    return Ok(None); // the transaction rolls back, notice and all
                }
                if let (Some(nid), Some(inv)) = (notice_id, &p.notice) {
                    let job = hejnal_jobs::NewJob::after(inv.lane, hejnal_jobs::Job::FanOutV1 { notice_id: nid },
                        std::time::Duration::from_millis(inv.delay_ms.max(0) as u64));
                    $backlog_insert(&mut *tx, &[job]).await.map_err($crate::store::common::backlog_error)?;
                }
                let entry = audit.entry(id);
                $crate::store::notices::insert_audit!(tx, entry, now);
                tx.commit().await?;
                Ok(row)
            }

            async fn close_survey(&self, id: i64, audit: SurveyAudit, now: i64) -> StoreResult<Option<SurveyRow>> {
                let mut tx = self.begin_write().await?;
                // On PostgreSQL the update waits for the answer batches holding the row `FOR
                // SHARE`, and makes those that come after it see the survey closed.
                let mut b = sqlx::QueryBuilder::<$db>::new("UPDATE surveys SET state = 'closed', closed_at = ");
                b.push_bind(now).push(", updated_at = ").push_bind(now).push(" WHERE state = 'published' AND id = ").push_bind(id)
                    .push(" RETURNING ").push($crate::store::surveys::SURVEY_COLUMNS);
                let row: Option<SurveyRow> = b.build_query_as().fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                if let Some(nid) = row.notice_id {
                    // An invitation to a closed survey would only lead to a refusal.
                    sqlx::query("UPDATE notices SET state = 'cancelled', cancelled_at = $1 WHERE id = $2 AND state = 'scheduled'")
                        .bind(now).bind(nid).execute(&mut *tx).await?;
                    sqlx::query("UPDATE deliveries SET status = 'cancelled', error = 'survey closed', updated_at = $1
                                 WHERE notice_id = $2 AND (status = 'queued' OR (status = 'sending' AND lease_until < $1))")
                        .bind(now).bind(nid).execute(&mut *tx).await?;
                }
                let entry = audit.entry(id);
                $crate::store::notices::insert_audit!(tx, entry, now);
                tx.commit().await?;
                Ok(Some(row))
            }

            async fn survey_of_notice(&self, notice_id: i64) -> StoreResult<Option<i64>> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM surveys WHERE notice_id = $1")
                    .bind(notice_id).fetch_optional(&self.pool).await?;
                Ok(row.map(|(id,)| id))
            }

            async fn create_invitations(&self, notice_id: i64, district_any: i64, now: i64) -> StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                // Each (notice, subscriber, channel) delivery is unique, so the sum of channel
                // bits is their union.
                let done = sqlx::query(
                    "INSERT INTO survey_invitations (survey_id, subscriber_id, language, district_mask, channel_mask, created_at)
                     SELECT v.id, d.subscriber_id, min(d.language), min(s.district_mask) & $1,
                            sum(CASE d.channel WHEN 'email' THEN 1 WHEN 'sms' THEN 2 ELSE 4 END), $2
                     FROM deliveries d JOIN surveys v ON v.notice_id = d.notice_id JOIN subscribers s ON s.id = d.subscriber_id
                     WHERE d.notice_id = $3
                     GROUP BY v.id, d.subscriber_id
                     ON CONFLICT DO NOTHING")
                    .bind(district_any).bind(now).bind(notice_id)
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected())
            }

            async fn invitations_of(&self, survey_id: i64, subscriber_ids: &[i64]) -> StoreResult<Vec<(i64, i64)>> {
                if subscriber_ids.is_empty() {
                    return Ok(vec![]);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT subscriber_id, id FROM survey_invitations WHERE survey_id = ");
                b.push_bind(survey_id).push(" AND subscriber_id IN ");
                b.push_tuples(subscriber_ids, |mut t, id| { t.push_bind(*id); });
                Ok(b.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn invitation(&self, id: i64) -> StoreResult<Option<InvitationRow>> {
                Ok(sqlx::query_as("SELECT id, survey_id, language, erased_at FROM survey_invitations WHERE id = $1")
                    .bind(id).fetch_optional(&self.pool).await?)
            }

            async fn poll_invitation_by_phone(&self, phone: &str) -> StoreResult<Option<InvitationRow>> {
                // channel_mask bit 2 is SMS (see create_invitations).
                Ok(sqlx::query_as(
                    "SELECT i.id, i.survey_id, i.language, i.erased_at FROM contacts c
                     JOIN survey_invitations i ON i.subscriber_id = c.subscriber_id
                     JOIN surveys v ON v.id = i.survey_id
                     WHERE c.channel = 'sms' AND c.address = $1 AND c.status = 'verified'
                       AND v.kind = 'poll' AND v.state = 'published' AND (i.channel_mask & 2) <> 0
                     ORDER BY i.id DESC LIMIT 1")
                    .bind(phone).fetch_optional(&self.pool).await?)
            }

            async fn save_responses(&self, batch: &[NewResponse]) -> StoreResult<Vec<SavedResponse>> {
                self.store_answers(batch).await
            }

            async fn response_of(&self, survey_id: i64, respondent: &Respondent) -> StoreResult<Option<ResponseRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::surveys::RESPONSE_COLUMNS).push(" FROM survey_responses r WHERE r.survey_id = ").push_bind(survey_id);
                match respondent {
                    Respondent::Invitation(id) => b.push(" AND r.invitation_id = ").push_bind(*id),
                    Respondent::Browser(hash) => b.push(" AND r.browser_hash = ").push_bind(hash.clone()),
                };
                Ok(b.build_query_as().fetch_optional(&self.pool).await?)
            }

            async fn responses(&self, survey_id: i64, after: i64, limit: i64) -> StoreResult<Vec<ResponseRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::surveys::RESPONSE_COLUMNS).push(" FROM survey_responses r WHERE r.survey_id = ").push_bind(survey_id)
                    .push(" AND r.id > ").push_bind(after).push(" ORDER BY r.id LIMIT ").push_bind(limit);
                Ok(b.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn invitation_groups(&self, survey_id: i64) -> StoreResult<Vec<InvitationGroup>> {
                Ok(sqlx::query_as(
                    "SELECT i.district_mask, i.channel_mask, (r.id IS NOT NULL) AS answered, count(*) AS count
                     FROM survey_invitations i LEFT JOIN survey_responses r ON r.invitation_id = i.id
                     WHERE i.survey_id = $1 GROUP BY i.district_mask, i.channel_mask, (r.id IS NOT NULL)")
                    .bind(survey_id).fetch_all(&self.pool).await?)
            }

            async fn answers_of_resident(&self, public_id: &str) -> StoreResult<Vec<(i64, String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT r.survey_id, r.answers, r.updated_at FROM survey_responses r
                     JOIN survey_invitations i ON i.id = r.invitation_id JOIN subscribers s ON s.id = i.subscriber_id
                     WHERE s.public_id = $1 ORDER BY r.id")
                    .bind(public_id).fetch_all(&self.pool).await?)
            }
        }
    };
}

pub(crate) use survey_queries;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(survey_id: i64, who: Respondent, answers: &str) -> NewResponse {
        NewResponse { survey_id, respondent: who, answers: answers.into(), ip_digest: None, at: 1 }
    }

    #[test]
    fn in_a_batch_the_last_answer_of_a_respondent_wins_in_its_first_place() {
        let batch = vec![
            answer(1, Respondent::Invitation(7), "a"),
            answer(1, Respondent::Browser("x".into()), "b"),
            answer(2, Respondent::Browser("x".into()), "c"),
            answer(1, Respondent::Invitation(7), "d"),
        ];
        let kept: Vec<(&str, i64)> = last_answer_wins(&batch).iter().map(|(r, n)| (r.answers.as_str(), *n)).collect();
        assert_eq!(kept, [("d", 2), ("b", 1), ("c", 1)]);
    }
}
