//! Rows and arguments of the notice and delivery queries.

use hejnal_jobs::NewJob;
use serde::Serialize;

/// A notice as stored. `spec` is the official's request, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NoticeRow {
    pub id: i64,
    pub kind: String,
    pub msg_type: String,
    pub status: String,
    pub severity: String,
    pub references_id: Option<i64>,
    pub root_id: Option<i64>,
    pub spec: String,
    pub state: String,
    pub lane: String,
    pub send_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub author_id: i64,
    pub approver_id: Option<i64>,
    pub approval: Option<String>,
    pub template_id: Option<i64>,
    pub reject_reason: Option<String>,
    pub recipients: Option<i64>,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub approved_at: Option<i64>,
    pub published_at: Option<i64>,
    pub fanout_done_at: Option<i64>,
    pub cancelled_at: Option<i64>,
}

/// Whether a scheduled notice was published, by the database's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduledPublish {
    /// It was due and is now published (by this call).
    Published(NoticeRow),
    /// Not due yet: this many milliseconds are left, by the database's clock.
    NotYet(i64),
    /// It is not scheduled (any more): published by someone else, or cancelled.
    NotScheduled,
}

/// What `create_notice` stores.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub kind: String,
    pub msg_type: String,
    pub status: String,
    pub severity: String,
    pub references_id: Option<i64>,
    pub root_id: Option<i64>,
    pub spec: String,
    pub lane: String,
    pub send_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub author_id: i64,
    pub template_id: Option<i64>,
    /// The author's Idempotency-Key: a second insert with it returns the first notice.
    pub idempotency_key: Option<String>,
}

/// An audit entry, written in the same transaction as the change it records, so that no
/// change is ever left without its entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub official_id: i64,
    pub action: &'static str,
    pub subject: String,
}

/// A change of a notice's state, applied only when it is in one of `from`, with the jobs it
/// starts written in the same transaction (the outbox): a publish either happens whole or not.
#[derive(Debug, Clone)]
pub struct Transition {
    pub from: &'static [&'static str],
    pub to: &'static str,
    /// Columns set to now, e.g. `approved_at`, `published_at`.
    pub stamps: &'static [&'static str],
    pub approver_id: Option<i64>,
    pub approval: Option<String>,
    pub reject_reason: Option<String>,
    pub jobs: Vec<NewJob>,
    /// Also cancel every delivery of the notice still waiting.
    pub cancel_deliveries: bool,
    pub audit: Option<AuditEntry>,
}

/// Who a fan-out reaches on one channel.
#[derive(Debug, Clone)]
pub struct FanoutPlan {
    pub notice_id: i64,
    pub channel: String,
    /// Residents of any of these districts (bit masks, see `store::audience`).
    pub district_any: i64,
    /// 0: interests do not narrow the audience.
    pub interest_any: i64,
    /// Exercise and Test notices reach only the test audience.
    pub testers_only: bool,
    /// An Update or Cancel goes to whoever received this notice on this channel instead.
    pub follows: Option<i64>,
    /// Only subscribers with ids in this inclusive range (one chunk of the fan-out).
    pub subscribers: (i64, i64),
}

/// The ids a channel's fan-out inserted: `first..=last`, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InsertedRange {
    pub first: i64,
    pub last: i64,
    pub count: i64,
}

/// A delivery a worker has claimed to send.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub subscriber_id: i64,
    pub contact_id: Option<i64>,
    pub language: String,
    pub attempts: i32,
}

/// The address a claimed delivery goes to, read when it is sent (never copied into jobs).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryTarget {
    pub contact_id: i64,
    pub public_id: String,
    pub address: String,
    pub push_p256dh: Option<String>,
    pub push_auth: Option<String>,
    pub status: String,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Sent { provider_id: String },
    /// Try again no sooner than `at` (ms).
    Retry { at: i64, reason: String },
    Failed { reason: String },
    /// The address no longer exists; the contact is marked gone too.
    Gone { reason: String, contact_id: i64 },
    /// Not sent: the resident left, or the notice was cancelled.
    Cancelled { reason: String },
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub delivery_id: i64,
    pub attempt: i32,
    pub outcome: AttemptOutcome,
    /// The provider whose answer is the outcome; none when nothing was sent.
    pub provider: Option<String>,
    /// That provider may have sent it although it did not say so (a timeout).
    pub maybe_sent: bool,
    /// Providers tried earlier in the same attempt that failed (SMS failover), in order.
    pub failed_over: Vec<ProviderTry>,
}

/// A provider's failed try that the attempt moved on from to another provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderTry {
    pub provider: String,
    pub error: String,
    pub maybe_sent: bool,
}

/// Deliveries of one notice and channel with ids in `first..=last`: what one job sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeliveryRange<'a> {
    pub notice_id: i64,
    pub channel: &'a str,
    pub first: i64,
    pub last: i64,
}

/// A stored answer to an Idempotency-Key; `status` is None while the first request runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentAnswer {
    pub status: Option<i32>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: i64,
    pub name: String,
    pub spec: String,
    pub author_id: i64,
    pub approver_id: Option<i64>,
    pub created_at: i64,
    pub approved_at: Option<i64>,
}

/// One step of a delivery's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeliveryEvent {
    pub attempt: i32,
    pub outcome: String,
    pub detail: Option<String>,
    pub worker_id: Option<String>,
    pub at: i64,
    /// The provider that took this try (`webhook`, a configured SMS provider's name, `smtp`,
    /// `webpush`); none for receipts and for deliveries closed without a send.
    pub provider: Option<String>,
    /// The request may have reached the provider though no answer came back (a timeout): a
    /// repeat may be a duplicate, which the reference lets the provider recognise.
    pub maybe_sent: bool,
}
