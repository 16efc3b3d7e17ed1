//! A small pool of SMTP connections, in place of lettre's: ours open their sockets with
//! TCP_NODELAY and hold writes back until a read (see `target.rs`), and send pipelined when the
//! server offers it (`transaction.rs`). It keeps a bounded number idle and opens more on demand:
//! the callers bound how many messages are in flight per provider.
//!
//! lettre's pool sends NOOP to check an idle connection before each reuse: a round trip per
//! message. Ours sends the message straight away, and if a reused connection turns out dead
//! before MAIL is answered (nothing of the message has left then), sends it once more on a new
//! connection.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use lettre::{
    address::Envelope,
    transport::smtp::{Error as SmtpError, response::Response},
};

use super::{
    target::SmtpTarget,
    transaction::{SmtpConnection, TransactionError},
};

/// Connections kept idle for reuse; more may be open while busy.
const MAX_IDLE: usize = 16;
/// Servers drop idle clients after a few minutes (RFC 5321 suggests 5); leave before they do.
const IDLE_FOR: Duration = Duration::from_secs(60);

/// Where a send failed: on the way to the server, in the mail transaction itself, or before it
/// (a message the server cannot take as it is).
#[derive(Debug)]
pub(crate) enum Failure {
    Connect(String),
    Transaction(SmtpError),
    Refused(String),
}

pub(crate) struct SmtpPool {
    target: SmtpTarget,
    idle: Mutex<Vec<(SmtpConnection, Instant)>>,
}

impl SmtpPool {
    pub(crate) fn new(target: SmtpTarget) -> SmtpPool {
        SmtpPool { target, idle: Mutex::new(Vec::new()) }
    }

    /// One mail transaction. If the caller gives up (a timeout drops this future), the
    /// connection is dropped with it and never returns to the pool half-used.
    pub(crate) async fn send(&self, envelope: &Envelope, data: &[u8]) -> Result<Response, Failure> {
        let (mut conn, reused) = match self.pop_idle() {
            Some(conn) => (conn, true),
            None => (self.target.connect().await.map_err(Failure::Connect)?, false),
        };
        let mut sent = conn.send(envelope, data).await;
        if reused && matches!(sent, Err(TransactionError::Unanswered(_))) {
            tracing::debug!("an idle SMTP connection had closed; sending on a new one");
            conn = self.target.connect().await.map_err(Failure::Connect)?;
            sent = conn.send(envelope, data).await;
        }
        match sent {
            Ok(response) => {
                self.checkin(conn);
                Ok(response)
            }
            // Dropped, not returned: the server may still be inside the transaction.
            Err(TransactionError::Unanswered(e) | TransactionError::Failed(e)) => Err(Failure::Transaction(e)),
            Err(TransactionError::Unsupported(why)) => Err(Failure::Refused(why)),
        }
    }

    /// The most recently used idle connection young enough to trust; older ones are closed.
    fn pop_idle(&self) -> Option<SmtpConnection> {
        let mut idle = self.lock();
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_FOR {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: SmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(SmtpConnection, Instant)>> {
        // Only pushes and pops happen under the lock; a poisoned list is still a valid list.
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
