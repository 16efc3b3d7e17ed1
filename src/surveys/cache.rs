//! Published surveys as the answering path reads them, with their parsed questions, kept for a
//! moment so that a burst of answers does not read and parse the same row for each. Safe because the row only decides which
//! error to show first: `save_responses` checks again, in its own transaction, that the
//! survey takes answers, and an answer it drops is explained from a fresh read.

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
        if let Some((at, survey)) = self.rows.lock().expect("survey cache").get(&id) {
            if at.elapsed() < FRESH_FOR {
                return Ok(Some(survey.clone()));
            }
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
}
