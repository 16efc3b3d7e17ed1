//! Notices: what officials publish, from the request to every resident's phone, inbox and
//! browser. `spec` parses and checks a notice; `service` moves it through approval; `fanout`
//! turns a published notice into delivery rows and batch jobs; `deliver` sends a batch;
//! `render` turns a notice into each channel's text; `sweeper` re-queues what a lost queue
//! dropped. The database is the truth throughout: jobs carry ids, never addresses.

pub mod deliver;
pub mod fanout;
pub mod preempt;
pub mod render;
pub mod service;
pub mod spec;
pub mod sweeper;
pub mod view;

use std::{sync::Arc, time::Duration};

use hejnal_jobs::Queue;

use crate::residents::SharedResidents;

/// How deliveries are paced and recovered (`HEJNAL_DELIVERY_*`, `HEJNAL_APPROVAL_FOR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Planned and info notices also need a second official's approval.
    pub approval_for_routine: bool,
    /// Publishing a survey also needs a second official (`HEJNAL_APPROVAL_FOR_SURVEYS`).
    pub approval_for_surveys: bool,
    /// How long a worker holds a delivery it is sending before another may take it up.
    pub lease: Duration,
    /// A send starts only while this much of its lease is left: the provider's timeout and a
    /// second, so that it ends before another worker may take the delivery up.
    pub send_margin: Duration,
    /// Deliveries waiting longer than this are queued again by the sweeper.
    pub grace_emergency: Duration,
    pub grace_routine: Duration,
    /// How often the sweeper looks.
    pub sweep_every: Duration,
    /// Deliveries per job.
    pub batch: u32,
    pub sms_transliterate: bool,
    /// Tests only (`HEJNAL_CLOCK_OFFSET_MS`): shift the scheduler's clock by this much, to play
    /// a host whose clock is wrong. Whether a scheduled notice is due is decided by the
    /// database's clock, so the shift must change nothing a resident sees.
    pub clock_offset_ms: i64,
}

impl DeliverySettings {
    /// The scheduler's notion of now: this host's clock, shifted in tests. It stamps fan-out
    /// work; it never decides whether `send_at` has come (`Notices::publish_if_due` does).
    pub fn scheduler_now_ms(&self) -> i64 {
        crate::store::now_ms() + self.clock_offset_ms
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            approval_for_routine: true,
            approval_for_surveys: false,
            lease: Duration::from_secs(30),
            send_margin: Duration::from_secs(11),
            grace_emergency: Duration::from_secs(120),
            grace_routine: Duration::from_secs(3600),
            sweep_every: Duration::from_secs(5),
            batch: 500,
            sms_transliterate: false,
            clock_offset_ms: 0,
        }
    }
}

/// What notice work needs: resident context (store, channels, templates, link keys), the queue
/// and the delivery settings.
pub struct NoticesCtx {
    pub residents: SharedResidents,
    pub queue: Queue,
    pub settings: DeliverySettings,
    /// Emergency jobs pause this process's routine ones.
    pub preempt: std::sync::Arc<preempt::Preemption>,
}

pub type SharedNotices = Arc<NoticesCtx>;

/// ms since the epoch of an optional timestamp.
pub(crate) fn ms(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}
