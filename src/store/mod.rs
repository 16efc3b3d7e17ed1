//! The store: one interface, two implementations (SQLite for the embedded default,
//! PostgreSQL for scale-out), both checked by one conformance suite (`tests/api/store.rs`).
//! SQL that differs between them stays in each backend's module.

pub mod audience;
pub mod common;
pub mod notices;
pub mod notices_types;
mod postgres;
mod postgres_answer_connections;
mod postgres_answers;
pub mod residents;
pub mod residents_types;
mod sqlite;
mod sqlite_answers;
mod sqlite_checkpoint;
pub mod consultations;
pub mod surveys;
pub mod surveys_types;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use hejnal_jobs::Backlog;

pub use common::CommonQueries;
pub use notices::Notices;
pub use notices_types::*;
pub use postgres::PgStore;
pub use residents::Residents;
pub use residents_types::*;
pub use sqlite::SqliteStore;
pub use consultations::{CommentRow, Consultations, Moderation, NewComment, ReportRow};
pub use surveys::{SavedResponse, Surveys};
pub use surveys_types::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whether a database error means "out of reach for now, try again" rather than a bug: the
/// pool gave up or closed, the connection broke, or the server ended it. PostgreSQL ends
/// connections with SQLSTATE class 08 (connection exception), 57P01 to 57P03 (an
/// administrator's `pg_terminate_backend`, a crash, a restart), 53300 (too many
/// connections) and 55P03 when a statement waited for a lock past [`LOCK_WAIT_LIMIT`]. The
/// API answers these 503 (they once answered 500: found by the fault
/// suite's connection-cut scenario), and writes that must not be lost try them again.
/// SQLite answers busy (5) or locked (6) past its busy timeout.
pub fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            code.starts_with("08") || ["57P01", "57P02", "57P03", "53300", "55P03", "5", "6"].contains(&code.as_ref())
        }
        _ => false,
    }
}

impl StoreError {
    /// The database is out of reach for now (see [`database_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Database(e) if database_unavailable(e))
    }
}

/// A district of Kraków, with its names in the three languages residents use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct District {
    /// Stable identifier used in subscriptions and notices, e.g. `podgorze`.
    pub slug: String,
    /// The official Roman numeral, e.g. `XIII`.
    pub number: String,
    pub name_pl: String,
    pub name_en: String,
    pub name_uk: String,
}

/// A topic residents can follow, e.g. `water` or `air-quality`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Interest {
    pub slug: String,
    pub name_pl: String,
    pub name_en: String,
    pub name_uk: String,
}

/// One run of a probe job, as the worker recorded it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProbeRun {
    pub probe_id: String,
    pub worker_id: String,
    pub lane: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

/// Totals over all probe runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ProbeCounts {
    pub runs: i64,
    pub finished: i64,
    /// Distinct probes; fewer than `runs` means some probe ran twice.
    pub distinct: i64,
}

/// How long a write waits for a lock another session holds before it is refused: SQLite's busy
/// timeout (and the wait for SQLite's writer connection, so at most twice this in all),
/// PostgreSQL's `lock_timeout`, and the statement timeout of its answer commits. A survey answer is
/// answered 503 past it, and none of its batch is stored, rather than hanging its request.
pub const LOCK_WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Roles of officials; what each may do is decided in the HTTP layer.
pub const ROLES: [&str; 4] = ["admin", "author", "approver", "analyst"];

#[async_trait]
pub trait Store: CommonQueries + Residents + Notices + Surveys + Consultations + Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;
    /// Bring the schema up to date; safe to run from several processes at once.
    async fn migrate(&self) -> StoreResult<()>;
    /// The job backlog lives in this database, so the queue shares its transactions.
    fn backlog(&self) -> Backlog;
    /// Connections of this process's pool checked out right now (for tests and health: no
    /// connection may be held while a provider is being waited on).
    fn connections_in_use(&self) -> u32;
    /// Close every connection cleanly, once nothing uses the store any more: PostgreSQL hears
    /// each session end (instead of logging a connection reset), and SQLite checkpoints its WAL
    /// into the database file as the last connection closes, leaving one file to copy.
    async fn close(&self);


    /// Store a token digest for an official; `ttl_days` from now.
    async fn add_token(&self, official_email: &str, token_hash: &str, ttl_days: u32) -> StoreResult<()>;
    /// Revoke a token by digest; false when no live token matched.
    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool>;
    /// The official a live (unexpired, unrevoked) token belongs to.
    async fn official_by_token(&self, token_hash: &str) -> StoreResult<Option<Official>>;
}

pub type DynStore = Arc<dyn Store>;

/// Open the store named by `url`: `sqlite://…` (file created when missing) or `postgres://…`.
pub async fn connect(url: &str, max_connections: u32) -> StoreResult<DynStore> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else {
        Ok(Arc::new(PgStore::connect(url, max_connections).await?))
    }
}

/// Milliseconds since the epoch; probe rows use it so tests can compare across processes.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
