//! Group commit for answers. Each answer waits in a channel; a committer takes everything
//! waiting (up to `MAX_BATCH`) and stores it with ONE `store.save_responses` call, one
//! transaction, then tells each waiting request what was stored. A request is answered only
//! after the commit of its batch: durable before "thank you". While `in_flight` commits run,
//! new answers gather into the next batch, so the batch grows with the load and a lone answer
//! waits for nobody.
//!
//! If a commit fails, every answer of that batch is refused (503) and none of it is stored:
//! it was one transaction.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{
    http::error::ApiError,
    precise_sleep::PreciseSleep,
    store::{DynStore, NewResponse, Respondent, SavedResponse},
};

/// Answers in one commit at most.
pub const MAX_BATCH: usize = 2000;

/// Answers waiting at most; past it a request waits to join (backpressure, not memory).
const WAITING_MAX: usize = 16 * MAX_BATCH;

/// What a request learns of its answer: stored (with its revision), or dropped because the
/// survey takes no answers or the invitation does not fit (see `save_responses`).
pub type Outcome = Result<Option<SavedResponse>, ApiError>;

struct Waiting {
    response: NewResponse,
    reply: oneshot::Sender<Outcome>,
}

/// The sending side; cheap to clone. The committer task ends when every clone is dropped.
#[derive(Clone)]
pub struct AnswerBatcher {
    tx: mpsc::Sender<Waiting>,
}

impl AnswerBatcher {
    /// Start the committer: `in_flight` commits at once (1 for SQLite, whose writes take
    /// turns anyway; a few for PostgreSQL, which commits them in parallel).
    /// Commits start at least `period` apart (see [`Pacing`]); zero starts each at once.
    pub fn start(store: DynStore, in_flight: usize, period: Duration) -> AnswerBatcher {
        let (tx, rx) = mpsc::channel(WAITING_MAX);
        tokio::spawn(commit_loop(store, rx, Arc::new(Semaphore::new(in_flight.max(1))), Pacing::new(period)));
        AnswerBatcher { tx }
    }

    /// How many commits run at once: `configured` (`HEJNAL_ANSWER_COMMITS`), or for 0 what
    /// suits the store.
    pub fn in_flight_for(store: &DynStore, configured: u32) -> usize {
        match (configured, store.backend()) {
            (0, "postgres") => 2,
            (0, _) => 1,
            (n, _) => n as usize,
        }
    }

    /// Store one answer in the next commit; returns once that commit is done.
    pub async fn save(&self, response: NewResponse) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Waiting { response, reply }).await.map_err(|_| ApiError::unavailable("the answer store"))?;
        answer.await.map_err(|_| ApiError::unavailable("the answer store"))?
    }
}

async fn commit_loop(store: DynStore, mut rx: mpsc::Receiver<Waiting>, in_flight: Arc<Semaphore>, mut pacing: Pacing) {
    while let Some(first) = rx.recv().await {
        // Wait for a free commit slot and this commit's turn first: whatever arrives meanwhile
        // joins this batch.
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        pacing.wait_turn().await;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            commit(&store, batch).await;
            drop(permit);
        });
    }
}

/// Commits start at least a period apart. A commit costs the app and the database about the
/// same whatever it holds, up to a few hundred answers, so under load small batches cost more
/// per answer than big ones: at 70% of the maximum a commit held 8-13 answers against 70-77 at
/// the maximum, and an answer cost the app 39-48 µs of CPU against 29-35 (`hejnal bench
/// survey --backend embedded`). A lone answer, or the first after a quiet period, waits for
/// nothing: the previous commit started more than a period ago.
struct Pacing {
    period: Duration,
    timer: Option<PreciseSleep>,
    last_start: Option<Instant>,
}

impl Pacing {
    fn new(period: Duration) -> Pacing {
        let timer = if period.is_zero() {
            None
        } else {
            PreciseSleep::new()
                .inspect_err(|e| tracing::warn!(error = %e, "no timer for the answer commits' pacing; each commit starts at once"))
                .ok()
        };
        Pacing { period, timer, last_start: None }
    }

    /// Returns when the next commit may start, and counts it as started.
    async fn wait_turn(&mut self) {
        if let (Some(timer), Some(turn)) = (&self.timer, self.next_turn())
            && let Err(e) = timer.until(turn).await
        {
            tracing::warn!(error = %e, "the answer commits' pacing timer failed; this commit starts at once");
        }
        self.last_start = Some(Instant::now());
    }

    fn next_turn(&self) -> Option<Instant> {
        self.last_start.map(|last| last + self.period)
    }
}

/// The batch goes to the store in arrival order: a respondent's last answer wins. (PostgreSQL's
/// statement orders the rows itself, so that parallel commits lock them in one order.)
async fn commit(store: &DynStore, batch: Vec<Waiting>) {
    let (responses, replies): (Vec<NewResponse>, Vec<_>) = batch.into_iter().map(|w| (w.response, w.reply)).unzip();
    metrics::histogram!("hejnal_survey_answer_batch_size").record(responses.len() as f64);
    let started = std::time::Instant::now();
    let stored = store.save_responses(&responses).await;
    metrics::histogram!("hejnal_survey_answer_commit_seconds").record(started.elapsed().as_secs_f64());
    match stored {
        Ok(saved) => {
            for (reply, outcome) in replies.into_iter().zip(each_outcome(&responses, &saved)) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, answers = replies.len(), "a batch of answers could not be stored; each is refused");
            for reply in replies {
                let _ = reply.send(Err(ApiError::unavailable("the answer store")));
            }
        }
    }
}

/// What each answer of a batch became. Answers of one respondent in one batch share the
/// stored row; each gets its own place in the revisions the store counted (the last one the
/// stored revision, the one before it one less, …).
fn each_outcome(batch: &[NewResponse], saved: &[SavedResponse]) -> Vec<Option<SavedResponse>> {
    let stored: HashMap<(i64, &Respondent), &SavedResponse> = saved.iter().map(|s| ((s.survey_id, &s.respondent), s)).collect();
    let mut left: HashMap<(i64, &Respondent), i64> = HashMap::new();
    for r in batch {
        *left.entry((r.survey_id, &r.respondent)).or_default() += 1;
    }
    batch
        .iter()
        .map(|r| {
            let key = (r.survey_id, &r.respondent);
            let later = left.get_mut(&key).map(|n| {
                *n -= 1;
                *n
            })?;
            stored.get(&key).map(|s| SavedResponse { revision: s.revision - later, ..(*s).clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(who: i64) -> NewResponse {
        NewResponse { survey_id: 1, respondent: Respondent::Invitation(who), answers: "{}".into(), ip_digest: None, at: 1 }
    }

    #[tokio::test]
    async fn commits_start_a_period_apart_and_the_first_after_a_quiet_period_at_once() {
        let period = Duration::from_millis(100);
        let mut pacing = Pacing::new(period);
        assert_eq!(pacing.next_turn(), None, "the first commit waits for nothing");
        pacing.wait_turn().await;
        let first = pacing.last_start.unwrap();
        pacing.wait_turn().await;
        let gap = pacing.last_start.unwrap() - first;
        assert!(gap >= period, "the second commit started {gap:?} after the first");
        tokio::time::sleep(period * 2).await;
        assert!(pacing.next_turn().unwrap() <= Instant::now(), "after a quiet period the next commit starts at once");
        // And it does: a commit that waited a period from now would start 3 periods after the
        // second; at once is 2 periods after it (a period of margin for a busy machine).
        let second = pacing.last_start.unwrap();
        pacing.wait_turn().await;
        let third = pacing.last_start.unwrap() - second;
        assert!(third < period * 3, "after a quiet period the commit started {third:?} after the one before");
    }

    #[tokio::test]
    async fn with_no_period_each_commit_starts_at_once() {
        let mut pacing = Pacing::new(Duration::ZERO);
        assert!(pacing.timer.is_none(), "no timer, so no wait");
        pacing.wait_turn().await;
        assert_eq!(pacing.next_turn(), pacing.last_start, "the next turn is the moment the last one started");
    }

    #[test]
    fn answers_of_one_respondent_in_a_batch_take_consecutive_revisions_ending_at_the_stored_one() {
        let batch = [answer(7), answer(8), answer(7), answer(7), answer(9)];
        let saved = [
            SavedResponse { survey_id: 1, respondent: Respondent::Invitation(7), id: 70, revision: 5 },
            SavedResponse { survey_id: 1, respondent: Respondent::Invitation(8), id: 80, revision: 1 },
        ];
        let got: Vec<Option<(i64, i64)>> = each_outcome(&batch, &saved).into_iter().map(|o| o.map(|s| (s.id, s.revision))).collect();
        assert_eq!(got, [Some((70, 3)), Some((80, 1)), Some((70, 4)), Some((70, 5)), None], "9 was dropped");
    }
}
