//! The PostgreSQL store, for several API and worker processes on several hosts.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgPool, postgres::PgPoolOptions};

use super::{District, Interest, Official, ProbeCounts, ProbeRun, Store, StoreError, StoreResult, now_ms};
use hejnal_jobs::Backlog;

use super::residents_types::*;

super::residents::resident_queries!(PgStore, sqlx::Postgres);

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // Fail a request fast (503) rather than queue it behind a dead database.
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Row locks and constraints serialise writers on PostgreSQL; a plain transaction will do.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// A transaction-scoped lock, so that checking the limits and recording a send is one step
    /// across processes. Verification sends are rare; one lock for all of them costs nothing.
    pub(crate) async fn serialise_verification_sends(&self, tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock(7243010)").execute(&mut **tx).await?;
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
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backlog(&self) -> Backlog {
        Backlog::Postgres(self.pool.clone())
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
            "INSERT INTO probe_runs (probe_id, worker_id, lane, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
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
        sqlx::query("UPDATE probe_runs SET finished_at = $2 WHERE id = $1")
            .bind(run_id)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn probe_runs(&self, probe_id: &str) -> StoreResult<Vec<ProbeRun>> {
        Ok(sqlx::query_as(
            "SELECT probe_id, worker_id, lane, started_at, finished_at FROM probe_runs WHERE probe_id = $1 ORDER BY id",
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
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM probe_runs WHERE lane = $1 AND started_at > $2")
            .bind(lane)
            .bind(after_ms)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn add_official(&self, email: &str, role: &str, password_hash: &str) -> StoreResult<i64> {
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO officials (email, role, password_hash) VALUES ($1, $2, $3) RETURNING id")
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
