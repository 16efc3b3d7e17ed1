//! The SQLite store: WAL, one file, created on first start.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{District, Interest, Official, ProbeCounts, ProbeRun, Store, StoreError, StoreResult, now_ms};
use hejnal_jobs::Backlog;

use super::residents_types::*;

super::residents::resident_queries!(SqliteStore, sqlx::Sqlite);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        hejnal_jobs::broker::ensure_parent_dir(url);
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a process crash; only an OS crash may lose the
            // last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(max_connections).connect_with(opts).await?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that takes the write lock at once. A deferred one that reads first fails
    /// with SQLITE_BUSY_SNAPSHOT when another writer commits in between, whatever the timeout.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// SQLite: `BEGIN IMMEDIATE` already serialises every writer.
    pub(crate) async fn serialise_verification_sends(&self, _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backlog(&self) -> Backlog {
        Backlog::Sqlite(self.pool.clone())
    }

    async fn districts(&self) -> StoreResult<Vec<District>> {
        Ok(sqlx::query_as("SELECT slug, number, name_pl, name_en, name_uk FROM districts ORDER BY position")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn interests(&self) -> StoreResult<Vec<Interest>> {
        Ok(sqlx::query_as("SELECT slug, name_pl, name_en, name_uk FROM interests ORDER BY position")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn probe_started(&self, probe_id: &str, worker_id: &str, lane: &str) -> StoreResult<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO probe_runs (probe_id, worker_id, lane, started_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(probe_id)
        .bind(worker_id)
        .bind(lane)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn probe_finished(&self, run_id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE probe_runs SET finished_at = ?2 WHERE id = ?1")
            .bind(run_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn probe_runs(&self, probe_id: &str) -> StoreResult<Vec<ProbeRun>> {
        Ok(sqlx::query_as(
            "SELECT probe_id, worker_id, lane, started_at, finished_at FROM probe_runs WHERE probe_id = ?1 ORDER BY id",
        )
        .bind(probe_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn probe_counts(&self) -> StoreResult<ProbeCounts> {
        Ok(sqlx::query_as(
            "SELECT count(*) AS runs, count(finished_at) AS finished, count(DISTINCT probe_id) AS \"distinct\" FROM probe_runs",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn probe_started_after(&self, lane: &str, after_ms: i64) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM probe_runs WHERE lane = ?1 AND started_at > ?2")
            .bind(lane)
            .bind(after_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn add_official(&self, email: &str, role: &str, password_hash: &str) -> StoreResult<i64> {
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO officials (email, role, password_hash) VALUES (?1, ?2, ?3) RETURNING id")
                .bind(email)
                .bind(role)
                .bind(password_hash)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| unique_violation(e, "an official with this email"))?;
        Ok(id)
    }

    async fn add_token(&self, official_email: &str, token_hash: &str, ttl_days: u32) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO api_tokens (official_id, token_hash, expires_at)
             SELECT id, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ?3 || ' days')
             FROM officials WHERE email = ?1 AND disabled_at IS NULL",
        )
        .bind(official_email)
        .bind(token_hash)
        .bind(i64::from(ttl_days))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("official"));
        }
        Ok(())
    }

    async fn revoke_token(&self, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE token_hash = ?1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn official_by_token(&self, token_hash: &str) -> StoreResult<Option<Official>> {
        Ok(sqlx::query_as(
            "SELECT o.id, o.email, o.role FROM api_tokens t JOIN officials o ON o.id = t.official_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND o.disabled_at IS NULL
               AND t.expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }
}
