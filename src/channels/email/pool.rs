//! A small pool of SMTP connections, in place of lettre's: ours open their sockets with
//! TCP_NODELAY (see `target.rs`). Like lettre's pool it checks an idle connection with NOOP
//! before reuse, keeps a bounded number idle, and opens more on demand: the callers bound how
//! many messages are in flight per provider.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use lettre::{
    address::Envelope,
    transport::smtp::{Error as SmtpError, client::AsyncSmtpConnection, response::Response},
};

use super::target::SmtpTarget;

/// Connections kept idle for reuse; more may be open while busy.
const MAX_IDLE: usize = 16;
/// Servers drop idle clients after a few minutes (RFC 5321 suggests 5); leave before they do.
const IDLE_FOR: Duration = Duration::from_secs(60);

/// Where a send failed: on the way to the server, or in the mail transaction itself.
#[derive(Debug)]
pub(crate) enum Failure {
    Connect(String),
    Transaction(SmtpError),
}

pub(crate) struct SmtpPool {
    target: SmtpTarget,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpPool {
    pub(crate) fn new(target: SmtpTarget) -> SmtpPool {
        SmtpPool { target, idle: Mutex::new(Vec::new()) }
    }

    /// One mail transaction. If the caller gives up (a timeout drops this future), the
    /// connection is dropped with it and never returns to the pool half-used.
    pub(crate) async fn send(&self, envelope: &Envelope, data: &[u8]) -> Result<Response, Failure> {
        let mut conn = self.checkout().await.map_err(Failure::Connect)?;
        match conn.send(envelope, data).await {
            Ok(response) => {
                self.checkin(conn);
                Ok(response)
            }
            // lettre has already sent QUIT and closed this connection.
            Err(e) => Err(Failure::Transaction(e)),
        }
    }

    async fn checkout(&self) -> Result<AsyncSmtpConnection, String> {
        while let Some((mut conn, since)) = self.pop_idle() {
            if since.elapsed() < IDLE_FOR && conn.test_connected().await {
                return Ok(conn);
            }
            // Stale or dead: drop it (closing the socket) and try the next one.
        }
        self.target.connect().await
    }

    fn pop_idle(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        self.lock().pop()
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        // Only pushes and pops happen under the lock; a poisoned list is still a valid list.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
