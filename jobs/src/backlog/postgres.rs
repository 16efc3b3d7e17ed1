//! The backlog's SQL for PostgreSQL. Releases of one lane are serialised by an advisory lock
//! held for the transaction, and rows are claimed with `FOR UPDATE SKIP LOCKED`.

use sqlx::{QueryBuilder, PgConnection, PgPool, Postgres};

use super::{NewJob, payload};
use crate::{Lane, Result};

/// Milliseconds since the epoch by the database's clock, as a literal for `concat!`.
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}
/// Also for the service's own queries that must read the one clock every process shares.
pub const DB_NOW_MS: &str = now_ms!();
const NOW: &str = DB_NOW_MS;

/// Insert jobs on a connection the caller holds, so they can share the caller's transaction
/// (the outbox pattern: a notice and its fan-out job commit together).
pub async fn insert(conn: &mut PgConnection, jobs: &[NewJob]) -> Result<Vec<i64>> {
    if jobs.is_empty() {
        return Ok(vec![]);
    }
    let mut q = QueryBuilder::<Postgres>::new(
        "INSERT INTO job_backlog (lane, payload, state, run_at, created_at, updated_at) ",
    );
    q.push_values(jobs, |mut row, job| {
        row.push_bind(job.lane.as_str())
            .push_bind(payload(&job.job))
            .push("'queued'")
            .push(NOW)
            .push_unseparated(" + ")
            .push_bind_unseparated(job.delay_ms())
            .push(NOW)
            .push(NOW);
    });
    q.push(" RETURNING id");
    let ids: Vec<(i64,)> = q.build_query_as().fetch_all(&mut *conn).await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

pub(super) async fn release_due(pool: &PgPool, lane: Lane, max_ready: u32) -> Result<Vec<(i64, String)>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lane.lock_key()).execute(&mut *tx).await?;
    let (released,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM job_backlog WHERE lane = $1 AND state = 'released'",
    )
    .bind(lane.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let room = i64::from(max_ready) - released;
    if room <= 0 {
        return Ok(vec![]);
    }
    let rows = sqlx::query_as(
        concat!(
        "UPDATE job_backlog SET state = 'released', updated_at = ", now_ms!(), "
         WHERE id IN (SELECT id FROM job_backlog
                      WHERE lane = $1 AND state = 'queued'
                        AND run_at <= ", now_ms!(), "
                      ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, payload"
    ),
    )
    .bind(lane.as_str())
    .bind(room)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

pub(super) async fn set_queued(pool: &PgPool, ids: &[i64]) -> Result<()> {
    let mut q = QueryBuilder::<Postgres>::new("UPDATE job_backlog SET state = 'queued' WHERE state = 'released' AND id IN ");
    q.push_tuples(ids, |mut b, id| {
        b.push_bind(*id);
    });
    q.build().execute(pool).await?;
    Ok(())
}

pub(super) async fn start(pool: &PgPool, id: i64, worker: &str) -> Result<Option<i32>> {
    let done: Option<(i32,)> = sqlx::query_as(
        concat!(
        "UPDATE job_backlog SET state = 'running', worker_id = $2, attempts = attempts + 1,
                updated_at = ", now_ms!(), "
         WHERE id = $1 AND state IN ('released', 'running', 'queued')
         RETURNING attempts"
    ),
    )
    .bind(id)
    .bind(worker)
    .fetch_optional(pool)
    .await?;
    Ok(done.map(|(attempts,)| attempts))
}

pub(super) async fn finish(pool: &PgPool, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM job_backlog WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

pub(super) async fn retry(pool: &PgPool, id: i64, delay_ms: i64, error: &str) -> Result<()> {
    sqlx::query(
        concat!(
        "UPDATE job_backlog SET state = 'queued', last_error = $3,
                run_at = ", now_ms!(), " + $2,
                updated_at = ", now_ms!(), "
         WHERE id = $1"
    ),
    )
    .bind(id)
    .bind(delay_ms)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn bury(pool: &PgPool, id: i64, error: &str) -> Result<()> {
    sqlx::query(
        concat!(
        "UPDATE job_backlog SET state = 'dead', last_error = $2,
                updated_at = ", now_ms!(), "
         WHERE id = $1"
    ),
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn redeliver_stale(pool: &PgPool, older_than_ms: i64) -> Result<u64> {
    let done = sqlx::query(
        concat!(
        "UPDATE job_backlog SET state = 'queued'
         WHERE state IN ('released', 'running')
           AND updated_at < ", now_ms!(), " - $1"
    ),
    )
    .bind(older_than_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub(super) async fn depth(pool: &PgPool, lane: Lane) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT state, count(*) FROM job_backlog WHERE lane = $1 GROUP BY state")
        .bind(lane.as_str())
        .fetch_all(pool)
        .await?)
}
