//! Queries that read the same in both dialects (`$N` placeholders, which SQLite accepts too),
//! written once and generated for each store by `common_queries!`, like `resident_queries!`.

use async_trait::async_trait;

use super::{District, Interest, ProbeCounts, ProbeRun, StoreError, StoreResult};

#[async_trait]
pub trait CommonQueries: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    async fn districts(&self) -> StoreResult<Vec<District>>;
    async fn interests(&self) -> StoreResult<Vec<Interest>>;
    async fn probe_started(&self, probe_id: &str, worker_id: &str, lane: &str) -> StoreResult<i64>;
    async fn probe_finished(&self, run_id: i64) -> StoreResult<()>;
    async fn probe_runs(&self, probe_id: &str) -> StoreResult<Vec<ProbeRun>>;
    /// How many probe runs have started and finished in all: for the flood test and bench.
    async fn probe_counts(&self) -> StoreResult<ProbeCounts>;
    /// How many runs of a lane started after `after_ms`: did an emergency overtake a flood?
    async fn probe_started_after(&self, lane: &str, after_ms: i64) -> StoreResult<i64>;
    async fn add_official(&self, email: &str, role: &str, password_hash: &str) -> StoreResult<i64>;
}

/// A unique-constraint failure is a conflict the caller can name; anything else is an error.
pub(super) fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

/// A failure to write jobs in the caller's transaction, as a store error.
pub(crate) fn backlog_error(e: hejnal_jobs::Error) -> StoreError {
    match e {
        hejnal_jobs::Error::Database(e) => StoreError::Database(e),
        other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

macro_rules! common_queries {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::common::CommonQueries for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
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
                .bind(probe_id).bind(worker_id).bind(lane).bind($crate::store::now_ms())
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }

            async fn probe_finished(&self, run_id: i64) -> StoreResult<()> {
                sqlx::query("UPDATE probe_runs SET finished_at = $1 WHERE id = $2")
                    .bind($crate::store::now_ms()).bind(run_id)
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
                    .bind(lane).bind(after_ms)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }

            async fn add_official(&self, email: &str, role: &str, password_hash: &str) -> StoreResult<i64> {
                let (id,): (i64,) =
                    sqlx::query_as("INSERT INTO officials (email, role, password_hash) VALUES ($1, $2, $3) RETURNING id")
                        .bind(email).bind(role).bind(password_hash)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| $crate::store::common::unique_violation(e, "an official with this email"))?;
                Ok(id)
            }
        }
    };
}

pub(crate) use common_queries;
