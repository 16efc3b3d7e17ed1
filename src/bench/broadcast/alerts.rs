//! Emergency alerts while a routine campaign drains: each an Extreme alert to one whole
//! district over every channel, timed from the approval request to its first message at any
//! sink and to its 10,000th. Once an alert has reached that many (or all of its audience), it
//! is cancelled and left to settle, so that the next one starts from a quiet emergency lane.
//! Until session 9 the bench waited for the alert's fan-out to end before it cancelled (it read
//! the audience from the finished fan-out), so each alert sent its whole district (166,668 of a
//! 1M city) and paused the campaign 10-16 s; see docs/performance.md.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use super::desk::{Desk, waiting};
use crate::{bench::sinks::BenchSinks, testkit::Watch};

/// The milestone the targets name: the first 10,000 emergency deliveries.
pub(crate) const MILESTONE: u64 = 10_000;
const ALERT_LIMIT: Duration = Duration::from_secs(60);
/// How often the bench reads an alert's notice while it follows it.
const NOTICE_EVERY: Duration = Duration::from_millis(250);

pub(super) struct Alerts<'a> {
    pub desk: &'a Desk,
    pub sinks: &'a BenchSinks,
    pub count: usize,
    pub districts: &'a [String],
    pub run_id: &'a str,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct AlertsResult {
    /// Approval request to the first message at a sink, per alert.
    pub first_ms: Vec<f64>,
    /// Approval request to the 10,000th message, for alerts with that many recipients.
    pub to_milestone_ms: Vec<f64>,
    /// Deliveries each alert had created when its cancellation stopped its fan-out.
    pub recipients: Vec<u64>,
    /// Alerts whose first message arrived before the routine campaign had drained.
    pub during_routine: usize,
}

impl Alerts<'_> {
    /// `routine` is the campaign's watch: its milestone says when the routine drain ended.
    pub(super) async fn run(&self, routine: Arc<Watch>) -> anyhow::Result<AlertsResult> {
        let mut result = AlertsResult::default();
        for k in 0..self.count {
            let district = &self.districts[k % self.districts.len()];
            let marker = format!("[al-{}-{k}]", self.run_id);
            let id = self.desk.draft_and_submit(&extreme(&marker, district)).await?;
            // SMS and email carry the marker; a push is known by its Topic, since the receiver
            // decrypts only a sample (as the issue asks: the sink must not take the service's cores).
            let texts = Watch::new(marker.as_bytes());
            let pushes = Watch::new(format!("topic:notice-{id}\n").as_bytes());
            self.sinks.sms.add_watch(&texts);
            self.sinks.smtp.add_watch(&texts);
            self.sinks.push.add_watch(&pushes);
            let watches = [texts, pushes];
            let (approved_at, approved_wall) = (Instant::now(), chrono::Utc::now());
            self.desk.approve(id).await?;
            let answered_ms = ms(approved_at.elapsed());
            let milestone_at = self.follow(id, &watches).await?;
            let first = watches.iter().filter_map(|w| w.first_at()).min().context("no first message")?;
            result.first_ms.push(ms(first - approved_at));
            if let Some(at) = milestone_at {
                result.to_milestone_ms.push(ms(at - approved_at));
            }
            if routine.milestone_at().is_none_or(|drained| first < drained) {
                result.during_routine += 1;
            }
            eprintln!("bench: alert {k}: first message after {:.1} ms", ms(first - approved_at));
            self.cancel_and_settle(id).await?;
            let recipients = self.print_stages(id, approved_wall, answered_ms, ms(first - approved_at)).await?;
            result.recipients.push(recipients);
        }
        Ok(result)
    }

    /// Wait until the alert's messages at the sinks number [`MILESTONE`] (when, to within the
    /// 5-ms poll), or until its fan-out ended with fewer recipients and all of them have theirs.
    async fn follow(&self, id: i64, watches: &[Arc<Watch>]) -> anyhow::Result<Option<Instant>> {
        let deadline = Instant::now() + ALERT_LIMIT;
        let mut recipients = None;
        let mut asked = Instant::now() - NOTICE_EVERY;
        loop {
            let seen: u64 = watches.iter().map(|w| w.count()).sum();
            if seen >= MILESTONE {
                return Ok(Some(Instant::now()));
            }
            // The sinks' counts are free to watch; the notice is not (its progress counts the
            // alert's deliveries), so it is asked only now and then, away from the alert's path.
            if recipients.is_none() && asked.elapsed() >= NOTICE_EVERY {
                asked = Instant::now();
                let notice = self.desk.notice(id).await?;
                recipients = notice["fanout"]["recipients"].as_u64();
            }
            if recipients.is_some_and(|n| seen >= n) {
                return Ok(None);
            }
            ensure!(Instant::now() < deadline, "alert {id} reached {seen} messages in {ALERT_LIMIT:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Where an alert's first-message time went: the approval's answer, publication, and the end
    /// of the fan-out (server stamps; the cancellation ends it early). Returns the deliveries the
    /// fan-out created.
    async fn print_stages(&self, id: i64, approved: chrono::DateTime<chrono::Utc>, answered_ms: f64, first_ms: f64) -> anyhow::Result<u64> {
        let notice = self.desk.notice(id).await?;
        let stamp = |v: &Value| v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let since = |v: &Value| stamp(v).map(|t| (t.with_timezone(&chrono::Utc) - approved).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        let (published, fanned) = (since(&notice["published_at"]), since(&notice["fanout"]["done_at"]));
        let created = notice["fanout"]["recipients"].as_u64().unwrap_or(0);
        eprintln!(
            "bench:   approved at {}; answered {answered_ms:.1} ms; published +{:.1} ms; fan-out done +{:.1} ms ({created} deliveries); first message +{first_ms:.1} ms",
            approved.format("%H:%M:%S%.6f"),
            published.unwrap_or(f64::NAN),
            fanned.unwrap_or(f64::NAN)
        );
        Ok(created)
    }

    async fn cancel_and_settle(&self, id: i64) -> anyhow::Result<()> {
        if waiting(&self.desk.notice(id).await?) > 0 {
            self.desk.cancel(id).await?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let notice = self.desk.notice(id).await?;
            // Settled: nothing left to send, and the fan-out has stopped (it ends at its next chunk).
            if waiting(&notice) == 0 && !notice["fanout"]["done_at"].is_null() {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "alert {id} did not settle after its cancellation: {notice}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A flood warning: Extreme, so it reaches the whole district whatever residents follow, at
/// any hour, in the emergency lane.
fn extreme(marker: &str, district: &str) -> Value {
    json!({
        "kind": "alert", "msg_type": "Alert", "status": "Actual", "severity": "Extreme",
        "urgency": "Immediate", "certainty": "Observed",
        "texts": {"pl": {"title": format!("{marker} ALARM powodziowy"), "body": "Wisla przekracza stan alarmowy. Udaj sie na wyzsze pietro."}},
        "audience": {"districts": [district], "interests": [], "channels": ["sms", "email", "push"]}
    })
}
