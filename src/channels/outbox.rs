//! The dev outbox: a channel that sends nothing and remembers what it would have sent, so that
//! a newcomer sees the whole flow work on one machine. It takes over a channel that has no
//! provider configured (never in production: see `ChannelSettings::check`).

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Address, Channel, ChannelKind, Message, SendError, Sent, wrong_address};

/// How many messages the outbox keeps; older ones are forgotten.
pub const OUTBOX_CAPACITY: usize = 1000;

/// One message the outbox took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// The provider id it answered, `outbox-<n>`.
    pub id: String,
    pub kind: ChannelKind,
    /// The number, email address or push endpoint.
    pub address: String,
    pub subject: String,
    pub text: String,
    pub reference: String,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
struct Log {
    entries: Mutex<VecDeque<OutboxEntry>>,
    next: AtomicU64,
}

/// A dev outbox standing in for one channel. Outboxes made with [`DevOutbox::for_kind`] share
/// one log, so `list()` on any of them shows every channel's messages.
#[derive(Clone)]
pub struct DevOutbox {
    kind: ChannelKind,
    log: Arc<Log>,
}

impl DevOutbox {
    pub fn new(kind: ChannelKind) -> DevOutbox {
        DevOutbox { kind, log: Arc::default() }
    }

    /// The outbox of another channel, sharing this one's log.
    pub fn for_kind(&self, kind: ChannelKind) -> DevOutbox {
        DevOutbox { kind, log: Arc::clone(&self.log) }
    }

    /// What was sent, oldest first (at most [`OUTBOX_CAPACITY`]).
    pub fn list(&self) -> Vec<OutboxEntry> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<OutboxEntry>> {
        // A panic while holding the lock cannot leave the deque half-changed; keep using it.
        self.log.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Channel for DevOutbox {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn name(&self) -> &str {
        "dev-outbox"
    }

    async fn send(&self, to: &Address, msg: &Message) -> Result<Sent, SendError> {
        if to.kind() != self.kind {
            return Err(wrong_address(self.kind, to));
        }
        let id = format!("outbox-{}", self.log.next.fetch_add(1, Ordering::Relaxed) + 1);
        let entry = OutboxEntry {
            id: id.clone(),
            kind: self.kind,
            address: to.display().to_owned(),
            subject: msg.subject.clone(),
            text: msg.text.clone(),
            reference: msg.reference.clone(),
            at: Utc::now(),
        };
        tracing::info!(kind = %self.kind, to = %entry.address, reference = %msg.reference, "dev outbox: message recorded, not sent");
        let mut entries = self.lock();
        if entries.len() == OUTBOX_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
        Ok(Sent { provider_id: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_outbox_keeps_only_the_latest_messages() {
        let outbox = DevOutbox::new(ChannelKind::Sms);
        for i in 0..OUTBOX_CAPACITY + 5 {
            let msg = Message::new(format!("ref-{i}"), "", "hello");
            outbox.send(&Address::Phone("+48601234567".into()), &msg).await.unwrap();
        }
        let list = outbox.list();
        assert_eq!(list.len(), OUTBOX_CAPACITY);
        assert_eq!(list[0].reference, "ref-5");
        assert_eq!(list.last().unwrap().id, format!("outbox-{}", OUTBOX_CAPACITY + 5));
    }

    #[tokio::test]
    async fn an_outbox_refuses_another_channels_address() {
        let outbox = DevOutbox::new(ChannelKind::Email);
        let err = outbox.send(&Address::Phone("+48601234567".into()), &Message::new("r", "s", "t")).await;
        assert!(matches!(err, Err(SendError::Permanent(_))));
    }
}
