//! The PostgreSQL store, for several API and worker processes on several hosts.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use sqlx::{PgPool, postgres::{PgConnectOptions, PgPoolOptions}};

use super::{District, Interest, Official, ProbeCounts, ProbeRun, Store, StoreError, StoreResult};
use hejnal_jobs::Backlog;
use super::postgres_answer_connections::AnswerConnections;

use super::residents_types::*;
use super::notices_types::*;
use super::surveys_types::*;
use super::surveys::SavedResponse;
use super::consultations::{CommentRow, Moderation, NewComment, ReportRow};

super::common::common_queries!(PgStore);
super::residents::resident_queries!(PgStore, sqlx::Postgres);
super::notices::notice_queries!(PgStore, sqlx::Postgres, hejnal_jobs::backlog::postgres::insert, hejnal_jobs::backlog::postgres::DB_NOW_MS);
super::surveys::survey_queries!(PgStore, sqlx::Postgres, hejnal_jobs::backlog::postgres::insert);
super::consultations::consultation_queries!(PgStore, sqlx::Postgres);

/// `options` for sessions whose statements give up waiting for a lock after `limit`, as SQLite's
/// writes give up after its busy timeout: a session elsewhere holding a lock (an operator's
/// open transaction, a table lock) makes a request answer 503 after the limit, not hang with
/// its connection taken. Statements that run long without waiting for a lock are not limited.
fn waiting_for_locks_at_most(options: PgConnectOptions, limit: Duration) -> PgConnectOptions {
    options.options([("lock_timeout", format!("{}ms", limit.as_millis()))])
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The answer commits' own connections (`postgres_answer_connections.rs`).
    answer_connections: Arc<AnswerConnections>,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Fail a request fast (503) rather than queue it behind a dead database.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(waiting_for_locks_at_most(url.parse()?, super::LOCK_WAIT_LIMIT))
            .await?;
        Ok(PgStore { pool, answer_connections: Arc::default() })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn answer_connections(&self) -> &AnswerConnections {
        &self.answer_connections
    }

    /// Row locks and constraints serialise writers on PostgreSQL; a plain transaction will do.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Single-statement writes: the one pool (SQLite has a writer connection here).
    pub(crate) fn writes(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction-scoped lock, so that checking the limits and recording a send is one step
    /// across processes. Verification sends are rare; one lock for all of them costs nothing.
    pub(crate) async fn serialise_verification_sends(&self, tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(7243010)").execute(&mut **tx).await?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        // Processes starting together take turns (sqlx's migrator holds an advisory lock); one
        // waits for another's migrations however long they take, not for the pool's lock limit.
        // (A pool of one: the migrator takes `&mut PgConnection` for no lifetime async_trait can name.)
        let unlimited = self.pool.connect_options().as_ref().clone().options([("lock_timeout", "0")]);
        let one = PgPoolOptions::new().max_connections(1).connect_with(unlimited).await?;
        let migrated = sqlx::migrate!("migrations/postgres").run(&one).await;
        one.close().await;
        Ok(migrated?)
    }

    fn backlog(&self) -> Backlog {
        Backlog::Postgres(self.pool.clone())
    }

    fn connections_in_use(&self) -> u32 {
        self.pool.size().saturating_sub(self.pool.num_idle() as u32)
    }

    async fn close(&self) {
        self.answer_connections.close().await;
        self.pool.close().await;
    }

    async fn add_token(&self, official_email: &str, token_hash: &str, ttl_days: u32) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO api_tokens (official_id, token_hash, expires_at)
             SELECT id, $2, now() + make_interval(days => $3)
             FROM officials WHERE email = $1 AND disabled_at IS NULL",
        )
        .bind(official_email)
        .bind(token_hash)
        .bind(ttl_days as i32)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("official"));
        }
        Ok(())
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn official_by_token(&self, token_hash: &str) -> StoreResult<Option<Official>> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.email, o.role FROM api_tokens t JOIN officials o ON o.id = t.official_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND o.disabled_at IS NULL AND t.expires_at > now()",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }
}
