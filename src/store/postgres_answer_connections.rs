//! The connections PostgreSQL's answer commits use, kept apart from the pool. sqlx's pool
//! sends a ping (Sync, then a wait for ReadyForQuery) when it hands a connection out and
//! another when it takes it back, so a commit through it cost three round trips to the server,
//! each waking a server process on cores the app shares; here it costs one. As many
//! connections as commits run at once (the batcher's slots) are made, on first use.
//!
//! A connection idle longer than [`PING_AFTER_IDLE`] is pinged before use: a restart between
//! bursts costs no answers. (One in use when the database restarts fails its batch, 503.) One
//! that failed with the database out of reach is dropped, not kept; one whose statement the
//! database refused (a constraint, a trigger) is kept, sqlx having read its error to the end.

use std::{
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, postgres::PgConnectOptions};

use super::{StoreError, StoreResult};

/// The pool's options, with a statement timeout: a commit that waits on a lock (a long
/// transaction elsewhere, a table lock) is cancelled by the server, so nothing of its batch is
/// stored and each of its answers hears 503, as on SQLite after its busy timeout.
fn answer_connect_options(pool: &PgPool) -> PgConnectOptions {
    let limit = format!("{}ms", super::LOCK_WAIT_LIMIT.as_millis());
    pool.connect_options().as_ref().clone().options([("statement_timeout", limit)])
}

/// A connection idle longer than this is pinged before it is used.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(super) struct AnswerConnections {
    idle: Mutex<Vec<(PgConnection, Instant)>>,
}

impl AnswerConnections {
    /// An idle connection, checked if it waited long; or a new one, like the pool's. Gives up
    /// after the pool's acquire timeout, as the pool would: an unreachable server must not hold
    /// a batch of residents for the minutes a TCP connect can take.
    pub(super) async fn take(&self, pool: &PgPool) -> StoreResult<PgConnection> {
        let idle = self.idle().pop();
        let checked_or_new = async {
            if let Some((mut conn, since)) = idle
                && (since.elapsed() <= PING_AFTER_IDLE || conn.ping().await.is_ok())
            {
                return Ok(conn);
            }
            answer_connect_options(pool).connect().await
        };
        match tokio::time::timeout(pool.options().get_acquire_timeout(), checked_or_new).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    /// End the idle connections' sessions (at shutdown, when no commit runs).
    pub(super) async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle());
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
    }

    /// Keep `conn` for the next commit, unless `outcome` says it may be broken.
    pub(super) fn give_back<T>(&self, conn: PgConnection, outcome: &StoreResult<T>) {
        let usable = match outcome {
            Ok(_) => true,
            Err(e @ StoreError::Database(sqlx::Error::Database(_))) => !e.is_unavailable(),
            Err(_) => false,
        };
        if usable {
            self.idle().push((conn, Instant::now()));
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<(PgConnection, Instant)>> {
        self.idle.lock().expect("the answer connections' lock is never held across a panic")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    use super::AnswerConnections;
    use crate::store::StoreError;

    /// A server that accepts the connection and then says nothing: a TCP connect succeeds,
    /// the startup never ends. Taking a connection must give up at the pool's acquire timeout
    /// rather than hold the batch's residents until TCP does.
    #[tokio::test]
    async fn taking_a_connection_from_a_silent_server_gives_up_at_the_pools_acquire_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let options = PgConnectOptions::new().host("127.0.0.1").port(port).username("hejnal");
        let pool = PgPoolOptions::new().acquire_timeout(Duration::from_millis(500)).connect_lazy_with(options);
        let started = Instant::now();
        let taken = tokio::time::timeout(Duration::from_secs(10), AnswerConnections::default().take(&pool)).await.expect("still waiting after 10 s");
        let waited = started.elapsed();
        assert!(matches!(taken, Err(StoreError::Database(sqlx::Error::PoolTimedOut))), "{taken:?}");
        assert!(waited >= Duration::from_millis(500), "gave up after {waited:?}, before the timeout");
        silent.abort();
    }
}
