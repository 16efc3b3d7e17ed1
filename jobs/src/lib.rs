//! Hejnał's queue engine.
//!
//! The database is the queue of record; the broker (apalis over SQLite or Redis) is only the
//! signal that wakes workers. Work flows like this:
//!
//! ```text
//! producer ──push──▶ job_backlog (database, state = queued, run_at)
//!                       │  pump: per lane, releases due rows while fewer than
//!                       │        `max_ready` are waiting in the broker
//!                       ▼
//!                    broker (apalis: SQLite, or Redis), one queue per lane
//!                       │  worker: one per lane per process, own concurrency
//!                       ▼
//!                    handler ──ok──▶ row deleted · retry ──▶ row queued again with run_at
//! sweeper: rows released or running for longer than `redeliver_after` go back to queued,
//!          so a lost broker loses nothing.
//! ```
//!
//! Why: apalis-redis 1.0 fails once about 8,000 tasks are due at once and its lease cost grows
//! with the queue (see docs/architecture.md). Bounding what sits in the broker avoids both, and
//! keeps the backlog durable. The crate knows nothing of subscribers or HTTP.

pub mod backlog;
pub mod broker;
pub mod config;
pub mod job;
pub mod lane;
mod poll;
mod pump;
pub mod runtime;
pub mod worker_id;

pub use backlog::{Backlog, NewJob};
pub use broker::Broker;
pub use config::QueueConfig;
pub use job::{Envelope, Job};
pub use lane::Lane;
pub use runtime::{HandlerError, JobContext, JobHandler, Queue};
pub use worker_id::WorkerId;

/// Errors of the queue engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("broker: {0}")]
    Broker(String),
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("queue url {0:?}: expected sqlite://… or redis://…")]
    UnsupportedUrl(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
