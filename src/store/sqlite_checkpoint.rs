//! SQLite's WAL checkpoints, taken off the writer. By default the connection whose commit
//! takes the WAL past 1,000 pages copies them into the database file and syncs both files
//! before that commit returns, and here that connection is the one writer every answer batch,
//! claim and outcome waits for: on a burst of survey answers a commit stalled for up to 111 ms
//! each time (`hejnal bench survey --backend embedded`, p99 96 ms at 70% of the maximum). A
//! background task now checkpoints on a reader connection a few times a second; a PASSIVE
//! checkpoint runs beside the writer's commits and never waits for them. Each connection
//! still checkpoints by itself past a much larger WAL, so the file stays bounded even if this
//! task falls behind.

use std::{sync::Arc, time::Duration};

use sqlx::SqlitePool;

/// Pages (4 KiB) past which a connection checkpoints on its own commit: a safety net only.
pub(super) const AUTOCHECKPOINT_PAGES: &str = "16384";
/// A WAL file that grew past this is cut back to it once it has been checkpointed.
pub(super) const WAL_SIZE_LIMIT_BYTES: &str = "67108864";
/// How often the background checkpoint runs. Each one copies what the commits since the last
/// one wrote, so a shorter period means smaller, more frequent copies.
const EVERY: Duration = Duration::from_millis(250);

/// The running checkpoint task; it stops when the last clone of the store is dropped.
#[derive(Debug)]
pub(super) struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Start checkpointing `pool`'s database in the background.
pub(super) fn start(pool: SqlitePool) -> Arc<Checkpointer> {
    Arc::new(Checkpointer(tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                Ok(_) => warned = false,
                // Once per run of failures: the connections' own checkpoints still bound the WAL.
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(error = %e, "background WAL checkpoint failed; commits will checkpoint past 64 MB of WAL");
                }
                Err(_) => {}
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::super::sqlite::SqliteStore;

    /// What an operator would see: rows written reach the database file itself, not only its
    /// WAL, without any commit having to copy them there (the WAL stays far below the size at
    /// which a commit would).
    #[tokio::test]
    async fn written_rows_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hejnal.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", path.display()), 2).await.unwrap();
        sqlx::query("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT NOT NULL)").execute(store.writes()).await.unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        for i in 0..64 {
            sqlx::query("INSERT INTO filler (id, body) VALUES (?, ?)").bind(i).bind("x".repeat(32 * 1024)).execute(store.writes()).await.unwrap();
        }
        // Two MiB written; the commits' own checkpoint would wait for 64 MiB of WAL.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut size = before;
        while size < before + 2 * 1024 * 1024 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            size = std::fs::metadata(&path).unwrap().len();
        }
        assert!(size >= before + 2 * 1024 * 1024, "the database file grew from {before} to only {size} bytes in 10 s");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM filler").fetch_one(store.pool()).await.unwrap();
        assert_eq!(rows, 64);
    }
}
