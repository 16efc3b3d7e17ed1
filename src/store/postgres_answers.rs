//! `save_responses` on PostgreSQL, the hot path of a survey burst: ONE statement per batch,
//! whatever its size, committed on its own (no BEGIN and COMMIT round trips). It takes the batch
//! as arrays (`unnest`), so its text never changes and its plan is cached; it checks each
//! answer's survey and invitation in the same statement instead of reading them first; and both
//! kinds of answer (by invitation, open) are upserted in it, so a batch is stored whole or not
//! at all. (It replaced six round trips per batch, in statements of a new text per batch size,
//! measured 7,900-8,700 answers/s here with `hejnal bench survey --backend postgres`;
//! docs/performance.md has the figures after.) It runs on a connection of its own, outside the
//! pool, which would ping the server before and after it (`postgres_answer_connections.rs`).
//!
//! A close and a batch meet on the survey's row: the batch reads it `FOR SHARE`, the close
//! updates it. A batch that finds the close under way waits for it and then sees the survey
//! closed (a locked read re-checks the newest version of the row); a close that finds a batch
//! being written waits for its commit. So no answer lands after a close.

use sqlx::PgConnection;

use super::{
    StoreResult,
    postgres::PgStore,
    surveys::{SavedResponse, UpsertedRow, invitation_of, judged_at, last_answer_wins, saved_response},
    surveys_types::{NewResponse, Respondent},
};

type Answer<'a> = (&'a NewResponse, i64);

/// `$1` the surveys, `$2` the time the surveys must take answers at; `$3`-`$8` the answers by
/// invitation, `$9`-`$14` the open ones. Rows go in in (survey, respondent) order (the
/// `ORDER BY`s), so two batches at once take the unique indexes' locks in one order and cannot
/// deadlock.
const UPSERT_ANSWERS: &str = "WITH taking AS (
         SELECT id FROM surveys
         WHERE id = ANY($1) AND state = 'published'
           AND (opens_at IS NULL OR opens_at <= $2) AND (closes_at IS NULL OR closes_at > $2)
         ORDER BY id FOR SHARE),
     invited AS (
         INSERT INTO survey_responses (survey_id, invitation_id, ip_digest, answers, revision, created_at, updated_at)
         SELECT a.survey_id, a.invitation_id, a.ip_digest, a.answers, a.revision, a.at, a.at
         FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
                  AS a (survey_id, invitation_id, ip_digest, answers, revision, at),
              taking t, survey_invitations i
         WHERE t.id = a.survey_id AND i.id = a.invitation_id AND i.survey_id = a.survey_id AND i.erased_at IS NULL
         ORDER BY a.survey_id, a.invitation_id
         ON CONFLICT (invitation_id) WHERE invitation_id IS NOT NULL DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at,
            revision = survey_responses.revision + excluded.revision
         RETURNING survey_id, invitation_id, browser_hash, id, revision),
     open AS (
         INSERT INTO survey_responses (survey_id, browser_hash, ip_digest, answers, revision, created_at, updated_at)
         SELECT a.survey_id, a.browser_hash, a.ip_digest, a.answers, a.revision, a.at, a.at
         FROM unnest($9::bigint[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::bigint[])
                  AS a (survey_id, browser_hash, ip_digest, answers, revision, at),
              taking t
         WHERE t.id = a.survey_id
         ORDER BY a.survey_id, a.browser_hash
         ON CONFLICT (survey_id, browser_hash) WHERE browser_hash IS NOT NULL DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at,
            ip_digest = excluded.ip_digest, revision = survey_responses.revision + excluded.revision
         RETURNING survey_id, invitation_id, browser_hash, id, revision)
     SELECT * FROM invited UNION ALL SELECT * FROM open";

impl PgStore {
    pub(crate) async fn store_answers(&self, batch: &[NewResponse]) -> StoreResult<Vec<SavedResponse>> {
        let last = last_answer_wins(batch);
        if last.is_empty() {
            return Ok(vec![]);
        }
        let now = judged_at(&last);
        let mut survey_ids: Vec<i64> = last.iter().map(|(r, _)| r.survey_id).collect();
        survey_ids.sort_unstable();
        survey_ids.dedup();
        let (invited, open): (Vec<Answer>, Vec<Answer>) = last.into_iter().partition(|(r, _)| matches!(r.respondent, Respondent::Invitation(_)));
        let connections = self.answer_connections();
        let mut conn = connections.take(self.pool()).await?;
        let stored = upsert(&mut conn, &survey_ids, now, &invited, &open).await;
        connections.give_back(conn, &stored);
        stored
    }
}

async fn upsert<'a>(conn: &mut PgConnection, survey_ids: &[i64], now: i64, invited: &[Answer<'a>], open: &[Answer<'a>]) -> StoreResult<Vec<SavedResponse>> {
    let (inv, opn) = (Columns::of(invited), Columns::of(open));
    let invitation_ids: Vec<i64> = invited.iter().map(|(r, _)| invitation_of(r)).collect();
    let browser_hashes: Vec<&str> = open
        .iter()
        .map(|(r, _)| match &r.respondent {
            Respondent::Browser(hash) => hash.as_str(),
            Respondent::Invitation(_) => unreachable!("partitioned"),
        })
        .collect();
    let rows: Vec<UpsertedRow> = sqlx::query_as(UPSERT_ANSWERS)
        .bind(survey_ids)
        .bind(now)
        .bind(&inv.survey_ids)
        .bind(&invitation_ids)
        .bind(&inv.ip_digests)
        .bind(&inv.answers)
        .bind(&inv.revisions)
        .bind(&inv.at)
        .bind(&opn.survey_ids)
        .bind(&browser_hashes)
        .bind(&opn.ip_digests)
        .bind(&opn.answers)
        .bind(&opn.revisions)
        .bind(&opn.at)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(saved_response).collect())
}

/// The columns every answer shares, as arrays: survey, ip digest, answers, revision, time.
/// Borrowed from the batch: the answers' JSON is bound as it is, not copied again.
struct Columns<'a> {
    survey_ids: Vec<i64>,
    ip_digests: Vec<Option<&'a str>>,
    answers: Vec<&'a str>,
    revisions: Vec<i64>,
    at: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn of(answers: &[Answer<'a>]) -> Columns<'a> {
        Columns {
            survey_ids: answers.iter().map(|(r, _)| r.survey_id).collect(),
            ip_digests: answers.iter().map(|(r, _)| r.ip_digest.as_deref()).collect(),
            answers: answers.iter().map(|(r, _)| r.answers.as_str()).collect(),
            revisions: answers.iter().map(|(_, given)| *given).collect(),
            at: answers.iter().map(|(r, _)| r.at).collect(),
        }
    }
}
