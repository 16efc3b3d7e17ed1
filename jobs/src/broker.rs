//! The broker: apalis over SQLite (embedded default) or Redis (scale-out). It carries
//! envelopes only as a wake-up signal; the backlog holds the truth.

use std::{str::FromStr, time::Duration};

use apalis::prelude::TaskSink;
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};

use crate::{Envelope, Error, Lane, QueueConfig, Result};

#[derive(Clone)]
pub enum Broker {
    Sqlite(SqlitePool),
    Redis(RedisConnections),
}

/// One multiplexed connection per lane for its worker, and one for pushes and upkeep.
/// Commands on a multiplexed connection run in order, so a slow script of the routine lane
/// would otherwise hold up the emergency worker's fetches behind it.
#[derive(Clone)]
pub struct RedisConnections {
    pub(crate) shared: ConnectionManager,
    pub(crate) lanes: [ConnectionManager; 2],
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Broker::Sqlite(_) => "Broker::Sqlite",
            Broker::Redis(_) => "Broker::Redis",
        })
    }
}

/// What SQLite may hold in this process before it hands back page-cache pages it is not using,
/// for every connection together (a process-wide setting; the store sets the same). Each
/// connection's 256 KiB `cache_size` did not bound it: during a 1M campaign SQLite held 18 of the
/// service's 35 MB of heap at its peak, 10 MB of it page cache (heaptrack). With this limit it
/// held at most 8.5 MB, and the service's peak RSS fell from 65.8 to 54.8 MB (`hejnal bench
/// broadcast`, docs/performance.md). Pages handed back are read again from the operating
/// system's file cache when needed.
pub const SQLITE_SOFT_HEAP_LIMIT: u64 = 8 * 1024 * 1024;

impl Broker {
    /// Connect to the broker named by `url`, creating the SQLite file and apalis's tables
    /// when they do not exist.
    pub async fn connect(url: &str) -> Result<Broker> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                // The queue's tables are small; SQLite's default 2 MB cache per connection is RSS.
                .pragma("cache_size", "-256")
                .pragma("soft_heap_limit", SQLITE_SOFT_HEAP_LIMIT.to_string());
            ensure_parent_dir(url);
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
            SqliteStorage::setup(&pool).await.map_err(|e| Error::Broker(e.to_string()))?;
            Ok(Broker::Sqlite(pool))
        } else if url.starts_with("redis:") || url.starts_with("rediss:") {
            let client = redis::Client::open(url)?;
            let connect = || async {
                tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
                    .await
                    .map_err(|_| Error::Broker(format!("redis at {} did not answer in 10 s", redact(url))))?
                    .map_err(Error::from)
            };
            let shared = connect().await?;
            let lanes = [connect().await?, connect().await?];
            Ok(Broker::Redis(RedisConnections { shared, lanes }))
        } else {
            Err(Error::UnsupportedUrl(redact(url)))
        }
    }

    /// Answers when the broker can take and hand out work.
    pub async fn ping(&self) -> Result<()> {
        match self {
            Broker::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Broker::Redis(conns) => {
                let mut conn = conns.shared.clone();
                let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// Hand envelopes of one lane to the broker in one round trip.
    pub async fn push(&self, config: &QueueConfig, lane: Lane, envelopes: Vec<Envelope>) -> Result<()> {
        if envelopes.is_empty() {
            return Ok(());
        }
        match self {
            Broker::Sqlite(_) => {
                let mut storage = self.sqlite_storage(config, lane);
                storage.push_bulk(envelopes).await.map_err(|e| Error::Broker(e.to_string()))
            }
            Broker::Redis(conns) => {
                let mut storage = self.redis_storage_on(conns.shared.clone(), config, lane);
                storage.push_bulk(envelopes).await.map_err(|e| Error::Broker(e.to_string()))
            }
        }
    }

    pub(crate) fn sqlite_storage(&self, config: &QueueConfig, lane: Lane) -> SqliteStorage<Envelope> {
        let Broker::Sqlite(pool) = self else { unreachable!("sqlite storage on a redis broker") };
        let cfg = apalis_sqlite::Config::default()
            .queue(lane.queue_name(&config.prefix))
            .batch_size(batch_size(config, lane))
            .heartbeat_interval(config.heartbeat)
            .missed_heartbeats(config.missed_heartbeats())
            .persist_results(false);
        SqliteStorage::new(pool).with_config(cfg)
    }

    /// The storage a lane's worker fetches from, on that lane's own connection.
    pub(crate) fn redis_storage(&self, config: &QueueConfig, lane: Lane) -> RedisStorage<Envelope> {
        let Broker::Redis(conns) = self else { unreachable!("redis storage on a sqlite broker") };
        self.redis_storage_on(conns.lanes[lane as usize].clone(), config, lane)
    }

    pub(crate) fn redis_storage_on(&self, conn: ConnectionManager, config: &QueueConfig, lane: Lane) -> RedisStorage<Envelope> {
        // lock_tasks stays on: apalis-redis recovers a dead worker's tasks through it. Its
        // cost grows with the active list, which the backlog keeps short (`max_ready`).
        let cfg = apalis_redis::Config::default()
            .queue(lane.queue_name(&config.prefix))
            .batch_size(batch_size(config, lane))
            .heartbeat_interval(config.heartbeat)
            .missed_heartbeats(config.missed_heartbeats())
            .persist_results(false)
            .emit_events(false);
        RedisStorage::new(conn).with_config(cfg)
    }
}

/// Fetch no more than a worker can start at once, so the rest stays available to others.
fn batch_size(config: &QueueConfig, lane: Lane) -> usize {
    config.concurrency(lane).clamp(1, 100)
}

/// Create the folder of a `sqlite://` file, so a first start needs no manual step.
pub fn ensure_parent_dir(url: &str) {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        let _ = std::fs::create_dir_all(parent);
    }
}

/// A URL with its password removed, for errors and logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_and_keeps_the_host() {
        assert_eq!(redact("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact("postgres://app:pw@db/hejnal"), "postgres://app:***@db/hejnal");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
