//! Channel adapters: SMS gateways, SMTP email, web push, and a dev outbox, all behind one
//! object-safe trait, [`Channel`]. An adapter takes a rendered [`Message`] and an [`Address`],
//! and answers with the provider's id for it ([`Sent`]) or a classified [`SendError`].
//!
//! # The classification contract
//!
//! Retry decisions elsewhere read only the class of a [`SendError`], never its text, so each
//! adapter maps every provider answer to exactly one class:
//!
//! - [`SendError::Transient`]: the provider or the path to it failed (timeout, refused
//!   connection, 5xx, SMTP 4xx). The same message may succeed later: retry with backoff.
//! - [`SendError::RateLimited`]: the provider asked us to slow down (HTTP 429). Retry no sooner
//!   than `retry_after`, which comes from the provider's `Retry-After` when it sent one.
//! - [`SendError::Permanent`]: this message to this address will not succeed as it is (invalid
//!   number, SMTP 5xx, payload too large, other HTTP 4xx). Do not retry; mark it failed.
//! - [`SendError::Gone`]: the address itself no longer exists (push 404/410, an SMS recipient who
//!   opted out at the carrier). Do not retry, and deactivate the address.
//!
//! - [`SendError::Unknown`]: no answer came in time after the request left, so the provider may
//!   have sent the message. Retried like a transient failure, and recorded as "may have been
//!   sent" (`delivery_events.maybe_sent`), because the repeat may be a duplicate. The request
//!   carries the delivery's reference ([`Message::reference`]) so that a repeat can be
//!   recognised: the SMS `reference`/`idx` field, the email `Message-ID`, the push payload.
//!
//! A channel may spread its messages over several providers (SMS, [`failover`]); then
//! [`Channel::send_traced`] says which provider took a message and which failed before it.
//!
//! Adapters hold no database connection; they are given everything they need.

mod http;
mod registry;

pub mod backoff;
pub mod email;
pub mod failover;
pub mod outbox;
pub mod push;
pub mod settings;
pub mod sms;
pub mod throttle;

use std::{fmt, time::Duration};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use outbox::{DevOutbox, OutboxEntry};
pub use push::check_push_endpoint;
pub use registry::Channels;
pub use settings::{ChannelSettings, Environment};
pub use throttle::{Throttle, ThrottlePermit};

/// The three ways a resident can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Sms,
    Email,
    Push,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 3] = [ChannelKind::Sms, ChannelKind::Email, ChannelKind::Push];

    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Sms => "sms",
            ChannelKind::Email => "email",
            ChannelKind::Push => "push",
        }
    }
}

impl std::str::FromStr for ChannelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("{s:?} is not one of sms, email, push"))
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A browser's `PushSubscription`: the endpoint URL and its keys, base64url as browsers give them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTarget {
    pub endpoint: String,
    /// The browser's P-256 public key (65-byte uncompressed point).
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
}

// The auth secret stays out of logs.
impl fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushTarget").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// E.164, e.g. `+48601234567`.
    Phone(String),
    Email(String),
    Push(PushTarget),
}

impl Address {
    /// The channel that can reach this address.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Address::Phone(_) => ChannelKind::Sms,
            Address::Email(_) => ChannelKind::Email,
            Address::Push(_) => ChannelKind::Push,
        }
    }

    /// A short form for people (the outbox, logs): the number, the address, the push endpoint.
    pub fn display(&self) -> &str {
        match self {
            Address::Phone(p) => p,
            Address::Email(e) => e,
            Address::Push(t) => &t.endpoint,
        }
    }
}

/// A message rendered for one recipient and one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The delivery's id. Every provider request carries it so that repeats can be recognised.
    pub reference: String,
    /// Email subject, push title.
    pub subject: String,
    /// SMS text, email text part, push body.
    pub text: String,
    /// Email HTML part.
    pub html: Option<String>,
    /// A URL the push notification opens.
    pub link: Option<String>,
    /// Email: `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058).
    pub unsubscribe_url: Option<String>,
    /// Push `Urgency: high` when true, `normal` otherwise.
    pub urgent: bool,
    /// Push `TTL`: how long the push service keeps an undelivered message.
    pub ttl: Duration,
    /// Push `Topic`, so that an Update replaces the message it updates.
    pub topic: Option<String>,
}

impl Message {
    /// A plain message; the optional parts are empty, TTL one day, normal urgency.
    pub fn new(reference: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Message {
        Message {
            reference: reference.into(),
            subject: subject.into(),
            text: text.into(),
            html: None,
            link: None,
            unsubscribe_url: None,
            urgent: false,
            ttl: Duration::from_secs(24 * 60 * 60),
            topic: None,
        }
    }
}

/// The provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id for it (SMS id, Message-ID, push `Location`), for receipts and support.
    pub provider_id: String,
}

/// Why a message was not sent, classified for the retry logic (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("transient failure: {0}")]
    Transient(String),
    #[error("rate limited: retry after {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("permanent failure: {0}")]
    Permanent(String),
    #[error("address gone: {0}")]
    Gone(String),
    #[error("outcome unknown, it may have been sent: {0}")]
    Unknown(String),
}

impl SendError {
    /// The class alone, for metrics and logs: `transient`, `rate_limited`, `permanent`, `gone`.
    pub fn class(&self) -> &'static str {
        match self {
            SendError::Transient(_) => "transient",
            SendError::RateLimited { .. } => "rate_limited",
            SendError::Permanent(_) => "permanent",
            SendError::Gone(_) => "gone",
            SendError::Unknown(_) => "unknown",
        }
    }

    /// The provider may have sent the message although it did not say so.
    pub fn may_have_been_sent(&self) -> bool {
        matches!(self, SendError::Unknown(_))
    }

    /// A failure of the provider rather than of the message or the address: another provider
    /// of the channel may well succeed with it.
    pub fn is_provider_trouble(&self) -> bool {
        matches!(self, SendError::Transient(_) | SendError::RateLimited { .. } | SendError::Unknown(_))
    }
}

/// What one send did, provider by provider (see [`Channel::send_traced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// The provider whose answer `result` is.
    pub provider: String,
    pub result: Result<Sent, SendError>,
    /// Providers tried before it, which failed, in order.
    pub failed_over: Vec<(String, SendError)>,
}

/// One way of sending messages. Object-safe: the service holds `Arc<dyn Channel>`.
#[async_trait]
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;
    /// The adapter, e.g. `webhook`, `smsapi`, `twilio`, `smtp`, `webpush`, `dev-outbox`.
    fn name(&self) -> &str;
    async fn send(&self, to: &Address, msg: &Message) -> Result<Sent, SendError>;

    /// Send, and say which provider answered. A channel over one provider is that provider; a
    /// channel over several ([`failover::Failover`]) also reports the ones it moved on from.
    async fn send_traced(&self, to: &Address, msg: &Message) -> Traced {
        Traced { provider: self.name().to_owned(), result: self.send(to, msg).await, failed_over: vec![] }
    }
}

/// The refusal an adapter gives to an address of another channel (a bug in the caller).
fn wrong_address(channel: ChannelKind, to: &Address) -> SendError {
    SendError::Permanent(format!("the {channel} channel cannot send to an address of the {} channel", to.kind()))
}
