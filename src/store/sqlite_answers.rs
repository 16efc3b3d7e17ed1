//! `save_responses` on SQLite: one write transaction (writers take turns, so no lock is
//! needed against a close), a read of the surveys and invitations the batch names, then one
//! upsert per kind of respondent, in chunks under SQLite's limit of bound parameters.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{
    StoreResult,
    sqlite::SqliteStore,
    surveys::{SavedResponse, UPSERT_CHUNK, invitation_of, last_answer_wins},
    surveys_types::{NewResponse, Respondent},
};

type Answer<'a> = (&'a NewResponse, i64);

impl SqliteStore {
    pub(crate) async fn store_answers(&self, batch: &[NewResponse]) -> StoreResult<Vec<SavedResponse>> {
        let last = last_answer_wins(batch);
        let mut tx = self.begin_write().await?;
        let taking = surveys_taking_answers(&mut tx, &last).await?;
        let (mut invited, open): (Vec<Answer>, Vec<Answer>) = last
            .into_iter()
            .filter(|(r, _)| taking.contains(&r.survey_id))
            .partition(|(r, _)| matches!(r.respondent, Respondent::Invitation(_)));
        let valid = valid_invitations(&mut tx, &invited).await?;
        invited.retain(|(r, _)| valid.contains(&(invitation_of(r), r.survey_id)));
        let mut saved = Vec::with_capacity(invited.len() + open.len());
        for chunk in invited.chunks(UPSERT_CHUNK) {
            saved.extend(upsert_invited(&mut tx, chunk).await?);
        }
        for chunk in open.chunks(UPSERT_CHUNK) {
            saved.extend(upsert_open(&mut tx, chunk).await?);
        }
        tx.commit().await?;
        Ok(saved)
    }
}

/// The surveys of the batch that take answers at the time of its latest answer.
async fn surveys_taking_answers(tx: &mut SqliteConnection, last: &[Answer<'_>]) -> StoreResult<HashSet<i64>> {
    let now = last.iter().map(|(r, _)| r.at).max().unwrap_or_default();
    let mut ids: Vec<i64> = last.iter().map(|(r, _)| r.survey_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let mut b = QueryBuilder::<Sqlite>::new("SELECT id FROM surveys WHERE state = 'published' AND (opens_at IS NULL OR opens_at <= ");
    b.push_bind(now).push(") AND (closes_at IS NULL OR closes_at > ").push_bind(now).push(") AND id IN ");
    b.push_tuples(&ids, |mut t, id| {
        t.push_bind(*id);
    });
    let rows: Vec<(i64,)> = b.build_query_as().fetch_all(&mut *tx).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// (invitation, survey) of the batch's invitations that exist and were not erased.
async fn valid_invitations(tx: &mut SqliteConnection, invited: &[Answer<'_>]) -> StoreResult<HashSet<(i64, i64)>> {
    let mut valid = HashSet::with_capacity(invited.len());
    for chunk in invited.chunks(UPSERT_CHUNK) {
        let mut b = QueryBuilder::<Sqlite>::new("SELECT id, survey_id FROM survey_invitations WHERE erased_at IS NULL AND id IN ");
        b.push_tuples(chunk, |mut t, (r, _)| {
            t.push_bind(invitation_of(r));
        });
        valid.extend(b.build_query_as::<(i64, i64)>().fetch_all(&mut *tx).await?);
    }
    Ok(valid)
}

async fn upsert_invited(tx: &mut SqliteConnection, chunk: &[Answer<'_>]) -> StoreResult<Vec<SavedResponse>> {
    let mut b = QueryBuilder::<Sqlite>::new("INSERT INTO survey_responses (survey_id, invitation_id, ip_digest, answers, revision, created_at, updated_at) ");
    b.push_values(chunk, |mut row, (r, given)| {
        row.push_bind(r.survey_id).push_bind(invitation_of(r)).push_bind(r.ip_digest.clone()).push_bind(r.answers.clone())
            .push_bind(*given).push_bind(r.at).push_bind(r.at);
    });
    b.push(" ON CONFLICT (invitation_id) DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at,
             revision = survey_responses.revision + excluded.revision RETURNING survey_id, invitation_id, id, revision");
    let rows: Vec<(i64, Option<i64>, i64, i64)> = b.build_query_as().fetch_all(&mut *tx).await?;
    Ok(rows
        .into_iter()
        .map(|(survey_id, inv, id, revision)| SavedResponse { survey_id, respondent: Respondent::Invitation(inv.unwrap_or_default()), id, revision })
        .collect())
}

async fn upsert_open(tx: &mut SqliteConnection, chunk: &[Answer<'_>]) -> StoreResult<Vec<SavedResponse>> {
    let mut b = QueryBuilder::<Sqlite>::new("INSERT INTO survey_responses (survey_id, browser_hash, ip_digest, answers, revision, created_at, updated_at) ");
    b.push_values(chunk, |mut row, (r, given)| {
        let Respondent::Browser(hash) = &r.respondent else { unreachable!("partitioned") };
        row.push_bind(r.survey_id).push_bind(hash.clone()).push_bind(r.ip_digest.clone()).push_bind(r.answers.clone())
            .push_bind(*given).push_bind(r.at).push_bind(r.at);
    });
    b.push(" ON CONFLICT (survey_id, browser_hash) DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at,
             ip_digest = excluded.ip_digest, revision = survey_responses.revision + excluded.revision
             RETURNING survey_id, browser_hash, id, revision");
    let rows: Vec<(i64, Option<String>, i64, i64)> = b.build_query_as().fetch_all(&mut *tx).await?;
    Ok(rows
        .into_iter()
        .map(|(survey_id, hash, id, revision)| SavedResponse { survey_id, respondent: Respondent::Browser(hash.unwrap_or_default()), id, revision })
        .collect())
}
