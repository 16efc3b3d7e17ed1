//! The durable backlog: table `job_backlog` in the service's own database (its DDL lives in
//! `migrations/{sqlite,postgres}`). A row is a job that was accepted and is not done yet.
//!
//! States: `queued` (waiting for `run_at`), `released` (handed to the broker), `running`
//! (a worker started it), `dead` (a handler gave up; kept for operators). Done rows are deleted.
//! Times are milliseconds since the epoch, read from the database's clock so that processes
//! with skewed clocks agree on what is due.

// Public so that a producer can insert jobs inside its own transaction (the outbox pattern):
// `sqlite::insert` and `postgres::insert` take the transaction's connection.
pub mod postgres;
pub mod sqlite;

use std::time::Duration;

use sqlx::{PgPool, SqlitePool};

use crate::{Envelope, Job, Lane, Result};

/// A job to enqueue: which lane, what, and how long to wait first.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub lane: Lane,
    pub job: Job,
    pub delay: Duration,
}

impl NewJob {
    pub fn now(lane: Lane, job: Job) -> Self {
        NewJob { lane, job, delay: Duration::ZERO }
    }

    pub fn after(lane: Lane, job: Job, delay: Duration) -> Self {
        NewJob { lane, job, delay }
    }

    fn delay_ms(&self) -> i64 {
        i64::try_from(self.delay.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

/// How many rows of a lane are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneDepth {
    pub queued: i64,
    pub released: i64,
    pub running: i64,
    pub dead: i64,
}

/// The backlog over whichever database the service uses.
#[derive(Debug, Clone)]
pub enum Backlog {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Rows per INSERT statement; keeps bind counts under SQLite's limit.
const INSERT_CHUNK: usize = 1000;

impl Backlog {
    /// Accept jobs durably. Returns their backlog ids in order.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    pub async fn push(&self, jobs: &[NewJob]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(jobs.len());
        match self {
            Backlog::Sqlite(pool) => {
                // IMMEDIATE: take SQLite's write lock up front rather than fail mid-transaction.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                for chunk in jobs.chunks(INSERT_CHUNK) {
                    ids.extend(sqlite::insert(&mut tx, chunk).await?);
                }
                tx.commit().await?;
            }
            Backlog::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for chunk in jobs.chunks(INSERT_CHUNK) {
                    ids.extend(postgres::insert(&mut tx, chunk).await?);
                }
                tx.commit().await?;
            }
        }
        Ok(ids)
    }

    /// Mark up to `max_ready - released` due rows of `lane` as released and return them.
    /// One release at a time per lane (an advisory lock on PostgreSQL, the single writer on
    /// SQLite), so several processes together never overfill the broker.
    pub async fn release_due(&self, lane: Lane, max_ready: u32) -> Result<Vec<Envelope>> {
        let rows = match self {
            Backlog::Sqlite(pool) => sqlite::release_due(pool, lane, max_ready).await?,
            Backlog::Postgres(pool) => postgres::release_due(pool, lane, max_ready).await?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for (backlog_id, payload) in rows {
            match serde_json::from_str::<Job>(&payload) {
                Ok(job) => out.push(Envelope { backlog_id, job }),
                Err(e) => {
                    tracing::error!(backlog_id, error = %e, "unreadable job payload; burying it");
                    self.bury(backlog_id, &format!("unreadable payload: {e}")).await?;
                }
            }
        }
        Ok(out)
    }

    /// Put rows back to `queued` after the broker refused them.
    pub async fn unrelease(&self, ids: &[i64]) -> Result<()> {
        match self {
            Backlog::Sqlite(pool) => sqlite::set_queued(pool, ids).await,
            Backlog::Postgres(pool) => postgres::set_queued(pool, ids).await,
        }
    }

    /// A worker starts a row and learns which attempt this is. `None` when the row is gone
    /// (done already: a duplicate signal) or dead, in which case the job must not run.
    pub async fn start(&self, id: i64, worker: &str) -> Result<Option<i32>> {
        match self {
            Backlog::Sqlite(pool) => sqlite::start(pool, id, worker).await,
            Backlog::Postgres(pool) => postgres::start(pool, id, worker).await,
        }
    }

    /// The job is done: forget it.
    pub async fn finish(&self, id: i64) -> Result<()> {
        match self {
            Backlog::Sqlite(pool) => sqlite::finish(pool, id).await,
            Backlog::Postgres(pool) => postgres::finish(pool, id).await,
        }
    }

    /// Run it again after `delay`; the attempt count grows.
    pub async fn retry(&self, id: i64, delay: Duration, error: &str) -> Result<()> {
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        match self {
            Backlog::Sqlite(pool) => sqlite::retry(pool, id, delay_ms, error).await,
            Backlog::Postgres(pool) => postgres::retry(pool, id, delay_ms, error).await,
        }
    }

    /// Give up on it; the row stays, `dead`, with the reason.
    pub async fn bury(&self, id: i64, error: &str) -> Result<()> {
        match self {
            Backlog::Sqlite(pool) => sqlite::bury(pool, id, error).await,
            Backlog::Postgres(pool) => postgres::bury(pool, id, error).await,
        }
    }

    /// Release again every row handed out longer than `older_than` ago and not finished.
    pub async fn redeliver_stale(&self, older_than: Duration) -> Result<u64> {
        let ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX / 2);
        match self {
            Backlog::Sqlite(pool) => sqlite::redeliver_stale(pool, ms).await,
            Backlog::Postgres(pool) => postgres::redeliver_stale(pool, ms).await,
        }
    }

    pub async fn depth(&self, lane: Lane) -> Result<LaneDepth> {
        let rows = match self {
            Backlog::Sqlite(pool) => sqlite::depth(pool, lane).await?,
            Backlog::Postgres(pool) => postgres::depth(pool, lane).await?,
        };
        let mut depth = LaneDepth::default();
        for (state, n) in rows {
            match state.as_str() {
                "queued" => depth.queued = n,
                "released" => depth.released = n,
                "running" => depth.running = n,
                "dead" => depth.dead = n,
                _ => {}
            }
        }
        Ok(depth)
    }
}

fn payload(job: &Job) -> String {
    // A Job is plain data; serialising it cannot fail.
    serde_json::to_string(job).expect("job serialises")
}
