//! The SQLite store: WAL, one file, created on first start.

use std::{str::FromStr, sync::Arc};

use async_trait::async_trait;
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{sqlite_checkpoint, District, Interest, Official, ProbeCounts, ProbeRun, Store, StoreError, StoreResult};
use hejnal_jobs::Backlog;

use super::residents_types::*;
use super::notices_types::*;
use super::surveys_types::*;
use super::surveys::SavedResponse;
use super::consultations::{CommentRow, Moderation, NewComment, ReportRow};

super::common::common_queries!(SqliteStore);
super::residents::resident_queries!(SqliteStore, sqlx::Sqlite);
super::notices::notice_queries!(SqliteStore, sqlx::Sqlite, hejnal_jobs::backlog::sqlite::insert, hejnal_jobs::backlog::sqlite::DB_NOW_MS);
super::surveys::survey_queries!(SqliteStore, sqlx::Sqlite, hejnal_jobs::backlog::sqlite::insert);
super::consultations::consultation_queries!(SqliteStore, sqlx::Sqlite);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for write transactions. SQLite lets one writer in at a time anyway; a
    /// pool of one makes the others wait in order (the pool is first come, first served)
    /// instead of in SQLite's busy handler, which retries with sleeps of up to 100 ms and lets
    /// a newcomer overtake: an emergency's approval waited up to 600 ms behind a campaign's
    /// writes before this (`hejnal bench broadcast`).
    writer: SqlitePool,
    _checkpointer: Arc<sqlite_checkpoint::Checkpointer>,
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
            .busy_timeout(super::LOCK_WAIT_LIMIT)
            // 256 KiB of page cache per connection, not SQLite's 2 MB: the OS caches the file
            // anyway, and every connection's cache counts in RSS (1M bench: 100 MB -> 79 MB).
            .pragma("cache_size", "-256")
            .pragma("soft_heap_limit", hejnal_jobs::broker::SQLITE_SOFT_HEAP_LIMIT.to_string())
            // Checkpoints are the background task's work (`sqlite_checkpoint.rs`).
            .pragma("wal_autocheckpoint", sqlite_checkpoint::AUTOCHECKPOINT_PAGES)
            .pragma("journal_size_limit", sqlite_checkpoint::WAL_SIZE_LIMIT_BYTES);
        let pool = SqlitePoolOptions::new().max_connections(max_connections).connect_with(opts.clone()).await?;
        // A write queued behind others that wait on a lock held elsewhere (another process's
        // transaction) gives up after the same limit as theirs: by sqlx's default of 30 s it
        // waited for each of theirs in turn, then its own (an official's save: 30 s, not 10).
        let writer = SqlitePoolOptions::new().max_connections(1).acquire_timeout(super::LOCK_WAIT_LIMIT).connect_with(opts).await?;
        let checkpointer = sqlite_checkpoint::start(pool.clone());
        Ok(SqliteStore { pool, writer, _checkpointer: checkpointer })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that takes the write lock at once. A deferred one that reads first fails
    /// with SQLITE_BUSY_SNAPSHOT when another writer commits in between, whatever the timeout.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// Where single-statement writes go: the writer connection, so that they too wait in
    /// order rather than in the busy handler.
    pub(crate) fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    /// SQLite: `BEGIN IMMEDIATE` already serialises every writer.
    pub(crate) async fn serialise_verification_sends(&self, _tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Result<(), sqlx::Error> {
        Ok(())
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

    // The queue's own writes (release, start, finish) take the writer connection in turn with
    // the store's: by the general pool they waited in SQLite's busy handler behind a campaign,
    // 1.1-1.3 s per release (`hejnal bench broadcast`, 1M residents).
    fn backlog(&self) -> Backlog {
        Backlog::Sqlite(self.writer.clone())
    }

    fn connections_in_use(&self) -> u32 {
        let in_use = |pool: &SqlitePool| pool.size().saturating_sub(pool.num_idle() as u32);
        in_use(&self.pool) + in_use(&self.writer)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
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

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    /// A store on a file of its own; the folder goes when the first value is dropped.
    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("h.db").display()), 2).await.unwrap();
        (dir, store)
    }

    /// The fan-out's span of subscriber ids reads the ends of the primary key, not the table:
    /// a scan of 1M residents delayed every emergency's first chunk by 60 ms.
    #[tokio::test]
    async fn the_subscriber_id_span_searches_the_key_instead_of_scanning_the_table() {
        let (_dir, store) = fresh_store().await;
        crate::store::Store::migrate(&store).await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", crate::store::notices::SUBSCRIBER_ID_SPAN)))
            .fetch_all(store.pool()).await.unwrap();
        let steps: Vec<&str> = plan.iter().map(|(_, _, _, detail)| detail.as_str()).collect();
        assert_eq!(steps.iter().filter(|s| s.starts_with("SEARCH subscribers")).count(), 2, "{steps:?}");
        assert!(!steps.iter().any(|s| s.starts_with("SCAN subscribers")), "{steps:?}");
    }

    /// SQLite's memory is bounded for the whole process, whichever connection asks.
    #[tokio::test]
    async fn every_connection_reports_the_soft_heap_limit() {
        let (_dir, store) = fresh_store().await;
        for pool in [store.pool(), store.writes()] {
            let limit: i64 = sqlx::query_scalar("PRAGMA soft_heap_limit").fetch_one(pool).await.unwrap();
            assert_eq!(limit as u64, hejnal_jobs::broker::SQLITE_SOFT_HEAP_LIMIT);
        }
    }
}
