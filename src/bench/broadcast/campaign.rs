//! One routine campaign: a planned notice to every resident over one channel, approved, then
//! timed at the sink: fan-out (server stamps), the drain (approval to the last message at the
//! sink) and the rate. Emergency alerts can run while it drains.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use super::desk::{Desk, between_ms, count, waiting};
use crate::{
    bench::{queue::percentile, sinks::BenchSinks},
    testkit::Watch,
};

/// No routine message for this long means the campaign is stuck, not slow.
const STALL_LIMIT: Duration = Duration::from_secs(60);

pub(super) struct Campaign<'a> {
    pub desk: &'a Desk,
    pub sinks: &'a BenchSinks,
    pub channel: &'a str,
    pub districts: &'a [String],
    /// Every resident has every channel, so the campaign reaches them all.
    pub recipients: u64,
    /// Names this run's markers apart from any other run's.
    pub run_id: &'a str,
}

#[derive(Debug, Clone)]
pub(crate) struct CampaignResult {
    pub channel: String,
    /// Publication to the end of the fan-out, by the server's stamps.
    pub fanout_ms: f64,
    /// Approval request to the last routine message at the sink.
    pub drain_secs: f64,
    /// Routine messages a second at the sink, median of the whole 1-second windows after the
    /// emergencies (which pause routine work) were done.
    pub rate: f64,
    pub failed: i64,
}

impl Campaign<'_> {
    /// Publish, then drive the drain and `during` (emergencies) together once the fan-out is done.
    pub(super) async fn run<D, T>(&self, during: impl FnOnce(Arc<Watch>) -> D) -> anyhow::Result<(CampaignResult, T)>
    where
        D: Future<Output = anyhow::Result<T>>,
    {
        let text_marker = format!("[rt-{}-{}]", self.run_id, self.channel);
        let id = self.desk.draft_and_submit(&planned(&text_marker, self.channel, self.districts)).await?;
        let watch = self.watch(id, &text_marker);
        let approved_at = Instant::now();
        self.desk.approve(id).await?;
        let notice = self.wait_for_fanout(id).await?;
        let recipients = notice["fanout"]["recipients"].as_u64().unwrap_or(0);
        ensure!(recipients == self.recipients, "the fan-out made {recipients} deliveries, not {}", self.recipients);
        let fanout_ms = between_ms(&notice, "published_at", "fanout.done_at").context("no fan-out stamps")?;
        eprintln!("bench: {} campaign: fan-out of {recipients} in {fanout_ms:.0} ms", self.channel);
        // The rate counts only seconds after the emergencies: while they run, routine work
        // pauses on purpose (notices::preempt).
        let alerts_done = std::sync::atomic::AtomicBool::new(false);
        let during = async {
            let result = during(Arc::clone(&watch)).await;
            alerts_done.store(true, std::sync::atomic::Ordering::SeqCst);
            result
        };
        let (rates, during) = tokio::join!(self.drain(&watch, &alerts_done), during);
        let (rates, during) = (rates?, during?);
        let last = watch.milestone_at().context("the drain ended without its last message")?;
        let settled = self.wait_settled(id).await?;
        let failed = ["failed", "expired", "cancelled"].iter().map(|s| count(&settled, self.channel, s)).sum();
        let result = CampaignResult {
            channel: self.channel.to_owned(),
            fanout_ms,
            drain_secs: (last - approved_at).as_secs_f64(),
            rate: if rates.is_empty() { whole_drain_rate(&watch) } else { percentile(&rates, 0.5) },
            failed,
        };
        Ok((result, during))
    }

    /// Counts this campaign's messages at its sink, and notes when the last one came. Pushes
    /// are mostly not decrypted: their Topic names the notice.
    fn watch(&self, id: i64, text_marker: &str) -> Arc<Watch> {
        let sinks = self.sinks;
        match self.channel {
            "sms" => with(Watch::with_milestone(text_marker.as_bytes(), self.recipients), |w| sinks.sms.add_watch(w)),
            "email" => with(Watch::with_milestone(text_marker.as_bytes(), self.recipients), |w| sinks.smtp.add_watch(w)),
            _ => with(Watch::with_milestone(format!("topic:notice-{id}\n").as_bytes(), self.recipients), |w| sinks.push.add_watch(w)),
        }
    }

    async fn wait_for_fanout(&self, id: i64) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let notice = self.desk.notice(id).await?;
            if notice["fanout"]["done_at"].is_string() {
                return Ok(notice);
            }
            ensure!(Instant::now() < deadline, "the fan-out of notice {id} did not finish in 10 minutes: {notice}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The routine rate in each whole second until the last message arrives.
    async fn drain(&self, watch: &Watch, alerts_done: &std::sync::atomic::AtomicBool) -> anyhow::Result<Vec<f64>> {
        let mut rates = Vec::new();
        let (mut seen, mut at, mut moved_at) = (watch.count(), Instant::now(), Instant::now());
        let mut report_at = Instant::now();
        while watch.milestone_at().is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (now_seen, now) = (watch.count(), Instant::now());
            // Whole windows only: not the first (before any arrived) nor the last (partial).
            if seen > 0 && watch.milestone_at().is_none() && alerts_done.load(std::sync::atomic::Ordering::SeqCst) {
                rates.push((now_seen - seen) as f64 / (now - at).as_secs_f64());
            }
            if now_seen > seen {
                moved_at = now;
            } else if now - moved_at > STALL_LIMIT {
                bail!("the {} campaign stalled at {now_seen} of {} messages at the sink", self.channel, self.recipients);
            }
            if now - report_at > Duration::from_secs(10) {
                eprintln!("bench: {} campaign: {now_seen} of {} at the sink", self.channel, self.recipients);
                report_at = now;
            }
            (seen, at) = (now_seen, now);
        }
        Ok(rates)
    }

    async fn wait_settled(&self, id: i64) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let notice = self.desk.notice(id).await?;
            if waiting(&notice) == 0 {
                return Ok(notice);
            }
            if Instant::now() >= deadline {
                // A defect to report, not a reason to lose the run's figures.
                eprintln!("bench: WARNING: notice {id} did not settle in 120 s: {} deliveries still waiting: {}", waiting(&notice), notice["progress"]);
                return Ok(notice);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// For a drain shorter than a whole window: messages over first-to-last arrival.
fn whole_drain_rate(watch: &Watch) -> f64 {
    match (watch.first_at(), watch.milestone_at()) {
        (Some(first), Some(last)) if last > first => watch.count() as f64 / (last - first).as_secs_f64(),
        _ => f64::NAN,
    }
}

fn with(watch: Arc<Watch>, add: impl FnOnce(&Arc<Watch>)) -> Arc<Watch> {
    add(&watch);
    watch
}

/// A planned water-main renewal for the whole city, over one channel. ASCII, so the marker
/// reaches the sinks as written (an email subject stays unencoded).
fn planned(marker: &str, channel: &str, districts: &[String]) -> Value {
    json!({
        "kind": "planned", "msg_type": "Alert", "status": "Actual", "severity": "Minor",
        "urgency": "Expected", "certainty": "Likely",
        "texts": {"pl": {
            "title": format!("{marker} Wymiana wodociagu"),
            "body": "W sobote 8:00-16:00 mozliwe spadki cisnienia wody. Beczkowozy przy szkolach."
        }},
        "audience": {"districts": districts, "interests": [], "channels": [channel]}
    })
}
