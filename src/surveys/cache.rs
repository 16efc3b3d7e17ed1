//! Published surveys as the answering path reads them, with their parsed questions, kept for a
//! moment so that a burst of answers does not read and parse the same row for each. Safe because the row only decides which
//! error to show first: `save_responses` checks again, in its own transaction, that the
//! survey takes answers, and an answer it drops is explained from a fresh read.
//!
//! When a row goes stale, ONE request reads it again; the others meanwhile go on with the row
//! they have. Before, every request arriving during the re-read read it too: at 256 answers in
//! flight on PostgreSQL, hundreds of reads queued for the pool's connections together with the
//! answer commits, and each answer of that moment waited ~50 ms.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::spec::SurveySpec;
use crate::{http::error::ApiError, store::{DynStore, SurveyRow}};

/// A survey and its parsed questions.
pub type Answerable = (Arc<SurveyRow>, Arc<SurveySpec>);

/// How long a row is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct SurveyCache {
    rows: Mutex<HashMap<i64, (Instant, Answerable)>>,
}

impl SurveyCache {
    /// The survey, from the cache while fresh. Drafts and pending surveys are never kept:
    /// they may be published at any moment.
    pub async fn get(&self, store: &DynStore, id: i64) -> Result<Option<Answerable>, ApiError> {
        if let Some(survey) = self.kept_or_refresh(id, Instant::now()) {
            return Ok(Some(survey));
        }
        let Some(row) = store.survey(id).await? else { return Ok(None) };
        let spec = Arc::new(super::service::parse(&row)?);
        let survey = (Arc::new(row), spec);
        if survey.0.state == "published" || survey.0.state == "closed" {
            let mut rows = self.rows.lock().expect("survey cache");
            rows.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
            rows.insert(id, (Instant::now(), survey.clone()));
        }
        Ok(Some(survey))
    }

    /// The kept row while fresh. A stale one is handed out too, with its time moved on, to all
    /// but the caller who first finds it stale: that one gets None and reads it again. (If the
    /// read fails, the row is used for another [`FRESH_FOR`] at most.)
    fn kept_or_refresh(&self, id: i64, now: Instant) -> Option<Answerable> {
        let mut rows = self.rows.lock().expect("survey cache");
        let (at, survey) = rows.get_mut(&id)?;
        if now.saturating_duration_since(*at) < FRESH_FOR {
            return Some(survey.clone());
        }
        *at = now;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(id: i64) -> Answerable {
        let spec: SurveySpec = serde_json::from_value(serde_json::json!({"title": {"pl": "Ankieta"}, "questions": []})).unwrap();
        let row = SurveyRow {
            id, kind: "survey".into(), state: "published".into(), slug: None, spec: String::new(), audience: None, opens_at: None,
            closes_at: None, author_id: 1, approver_id: None, notice_id: None, created_at: 0, updated_at: 0, published_at: Some(0), closed_at: None,
        };
        (Arc::new(row), Arc::new(spec))
    }

    #[test]
    fn a_stale_row_is_read_again_by_one_caller_while_the_others_keep_using_it() {
        let cache = SurveyCache::default();
        let kept_at = Instant::now();
        cache.rows.lock().unwrap().insert(7, (kept_at, survey(7)));
        assert!(cache.kept_or_refresh(7, kept_at + FRESH_FOR / 2).is_some(), "fresh: from the cache");
        let stale = kept_at + FRESH_FOR + Duration::from_millis(1);
        assert!(cache.kept_or_refresh(7, stale).is_none(), "the first to find it stale reads it again");
        for _ in 0..100 {
            assert_eq!(cache.kept_or_refresh(7, stale).map(|s| s.0.id), Some(7), "the others go on with the kept row");
        }
        assert!(cache.kept_or_refresh(7, stale + FRESH_FOR).is_none(), "a re-read that never came back is tried again");
        assert!(cache.kept_or_refresh(8, stale).is_none(), "a survey never kept is read");
    }
}
