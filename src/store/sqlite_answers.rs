//! `save_responses` on SQLite: ONE statement per batch, committed on its own, as on PostgreSQL
//! (`postgres_answers.rs`). The batch goes in as one JSON array (`json_each`), so the text never
//! changes and the statement stays prepared; the survey and invitation checks are joins in it;
//! and both kinds of answer go through one upsert with two conflict targets. Each statement
//! the store sends is a hop to sqlx's SQLite thread and back: the five of the earlier version
//! (BEGIN, read the surveys, read the invitations, upsert, COMMIT) kept 64 clients at 16-17k
//! answers/s with a sixth of the CPU idle (`hejnal bench survey --backend embedded`).
//!
//! Writers take turns on SQLite, and one statement is atomic, so a close cannot come between
//! the survey check and the write.
//!
//! Each stored answer comes back as ONE text value, a JSON array, not five columns: sqlx copies
//! every returned value on its SQLite thread (`sqlite3_value_dup`: one glibc allocation, two
//! for text) and the commit frees them on a tokio worker. Memory that one thread allocates and
//! another frees misses glibc's per-thread caches, so both sides took the arena lock for each
//! value (`docs/performance.md`, session 22).

use serde::Serialize;

use super::{
    StoreResult,
    sqlite::SqliteStore,
    surveys::{SavedResponse, UpsertedRow, judged_at, last_answer_wins, saved_response},
    surveys_types::{NewResponse, Respondent},
};

/// `?1` the answers as a JSON array of [`Row`]s, `?2` the time the surveys must take answers
/// at. An answer whose survey does not take answers, or whose invitation is missing, erased or
/// another survey's, drops out in the joins.
const UPSERT_ANSWERS: &str = "INSERT INTO survey_responses
         (survey_id, invitation_id, browser_hash, ip_digest, answers, revision, created_at, updated_at)
     SELECT a.value ->> 0, a.value ->> 1, a.value ->> 2, a.value ->> 3, a.value ->> 4, a.value ->> 5, a.value ->> 6, a.value ->> 6
     FROM json_each(?1) AS a
     JOIN surveys s ON s.id = a.value ->> 0
     LEFT JOIN survey_invitations i ON i.id = a.value ->> 1
     WHERE s.state = 'published' AND (s.opens_at IS NULL OR s.opens_at <= ?2) AND (s.closes_at IS NULL OR s.closes_at > ?2)
       AND (a.value ->> 1 IS NULL OR (i.survey_id = s.id AND i.erased_at IS NULL))
     ON CONFLICT (invitation_id) DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at,
        revision = survey_responses.revision + excluded.revision
     ON CONFLICT (survey_id, browser_hash) DO UPDATE SET answers = excluded.answers, updated_at = excluded.updated_at,
        ip_digest = excluded.ip_digest, revision = survey_responses.revision + excluded.revision
     RETURNING json_array(survey_id, invitation_id, browser_hash, id, revision)";

/// One answer as the statement reads it: survey, invitation or browser, ip digest, answers,
/// revisions given in the batch, time.
#[derive(Serialize)]
struct Row<'a>(i64, Option<i64>, Option<&'a str>, Option<&'a str>, &'a str, i64, i64);

impl SqliteStore {
    pub(crate) async fn store_answers(&self, batch: &[NewResponse]) -> StoreResult<Vec<SavedResponse>> {
        let last = last_answer_wins(batch);
        if last.is_empty() {
            return Ok(vec![]);
        }
        let now = judged_at(&last);
        let rows: Vec<Row> = last.iter().map(|(r, given)| row(r, *given)).collect();
        let json = serde_json::to_string(&rows).expect("numbers and strings serialise");
        let stored: Vec<String> = sqlx::query_scalar(UPSERT_ANSWERS).bind(json).bind(now).fetch_all(self.writes()).await?;
        stored.iter().map(|row| upserted_row(row).map(saved_response)).collect()
    }
}

/// One returned row: the JSON array of `UPSERT_ANSWERS`'s `RETURNING`.
fn upserted_row(text: &str) -> StoreResult<UpsertedRow> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(format!("a stored answer's row {text:?}: {e}").into()).into())
}

fn row(r: &NewResponse, given: i64) -> Row<'_> {
    let (invitation, browser) = match &r.respondent {
        Respondent::Invitation(id) => (Some(*id), None),
        Respondent::Browser(hash) => (None, Some(hash.as_str())),
    };
    Row(r.survey_id, invitation, browser, r.ip_digest.as_deref(), &r.answers, given, r.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_row_reads_as_survey_respondent_id_and_revision() {
        assert_eq!(upserted_row("[3,7,null,11,2]").unwrap(), (3, Some(7), None, 11, 2));
        assert_eq!(upserted_row(r#"[3,null,"ab12",12,1]"#).unwrap(), (3, None, Some("ab12".into()), 12, 1));
        let e = upserted_row("[3,7]").unwrap_err().to_string();
        assert!(e.contains("a stored answer's row \"[3,7]\""), "{e}");
    }
}
