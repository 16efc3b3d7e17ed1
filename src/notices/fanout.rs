//! The fan-out job: a published notice becomes one delivery row per (resident, channel),
//! bulk-inserted by the database itself (`INSERT … SELECT`, so the audience is never held in
//! memory), then delivery jobs of `batch` ids each. Running it twice inserts nothing twice
//! (a unique key) and queues only batches, which a claim makes harmless.

use std::time::Duration;

use chrono::Utc;
use hejnal_jobs::{HandlerError, Job, Lane, NewJob};

use super::{NoticesCtx, spec::{MsgType, NoticeSpec, Status}};
use crate::{
    domain::QuietHours,
    store::{FanoutPlan, InsertedRange, NoticeRow, ScheduledPublish, Transition, now_ms},
};

/// Subscriber ids per fan-out statement of an urgent notice: its first jobs go out once the
/// first chunk's rows exist, not the whole city's (at 1M residents one statement per channel
/// took seconds on SQLite, and held the one writer meanwhile).
const URGENT_CHUNK: i64 = 10_000;
/// The same for routine notices: fewer, larger statements.
const ROUTINE_CHUNK: i64 = 100_000;
/// An urgent notice's first chunk is smaller still: its statements run while the routine work
/// it pre-empts is still winding down, and its first delivery job waits for them.
const URGENT_FIRST_CHUNK: i64 = 1_000;

/// Subscriber ids in the `n`th chunk (from 0). An urgent notice's chunks double from the first
/// up to `URGENT_CHUNK`: on SQLite the first delivery jobs need the one writer (to start, to
/// claim) while the fan-out's next statement holds it, and a 10,000-id statement made them wait
/// 40-50 ms (debug trace of a 1M bench alert).
fn chunk_size(urgent: bool, n: u32) -> i64 {
    if urgent { URGENT_FIRST_CHUNK.saturating_mul(1 << n.min(8)).min(URGENT_CHUNK) } else { ROUTINE_CHUNK }
}

pub async fn run(ctx: &NoticesCtx, notice_id: i64) -> Result<(), HandlerError> {
    let store = &ctx.residents.store;
    tracing::debug!(notice_id, "fan-out started");
    let Some(mut notice) = store.notice(notice_id).await.map_err(retry)? else {
        return Err(HandlerError::Fatal(format!("notice {notice_id} does not exist")));
    };
    let now = ctx.settings.scheduler_now_ms();
    match notice.state.as_str() {
        "published" => {}
        // Never early: only the database's clock says whether `send_at` has come, so workers
        // whose clocks disagree still publish it once, and not before its time.
        "scheduled" => match store.publish_if_due(notice_id).await.map_err(retry)? {
            ScheduledPublish::Published(row) => notice = row,
            ScheduledPublish::NotYet(left) => {
                return Err(HandlerError::Retry { after: Duration::from_millis(left as u64), reason: "not yet time".into() });
            }
            ScheduledPublish::NotScheduled => return Ok(()), // cancelled meanwhile, or another scheduler published it
        },
        _ => return Ok(()), // cancelled or never published: nothing to send
    }
    let spec: NoticeSpec = serde_json::from_str(&notice.spec).map_err(|e| HandlerError::Fatal(format!("notice {notice_id}: {e}")))?;
    let lane = lane_of(&notice);
    let _urgent = (lane == Lane::Emergency).then(|| ctx.preempt.urgent());
    if spec.msg_type == MsgType::Cancel {
        cancel_original(ctx, &notice, now).await?;
    }
    // Urgent notices hold nobody for quiet hours, so each chunk's jobs go out as soon as its
    // rows exist: the first SMS does not wait for the rest of the city's rows.
    let urgent = spec.severity.is_urgent() && notice.kind != "survey";
    let (ranges, mut queued, district_any) = insert_deliveries(ctx, &notice, &spec, now, urgent.then_some(lane)).await?;
    if notice.kind == "survey" {
        // Before any delivery job: each invitation's link names its invitation.
        let invited = store.create_invitations(notice_id, district_any, now).await.map_err(retry)?;
        tracing::info!(notice_id, invited, "survey invitations created");
    }
    let recipients: i64 = ranges.iter().map(|(_, r)| r.count).sum();
    if !urgent {
        let holds = hold_quiet_residents(ctx, notice_id).await?;
        let jobs = batch_jobs(&ranges, notice_id, lane, ctx.settings.batch as i64, &holds, now);
        push_jobs(ctx, &jobs).await?;
        queued = jobs.len();
    }
    store.finish_fan_out(notice_id, recipients, now_ms()).await.map_err(retry)?;
    tracing::info!(notice_id, recipients, jobs = queued, "fan-out done");
    metrics::counter!("hejnal_deliveries_created_total", "lane" => lane.as_str()).increment(recipients as u64);
    Ok(())
}

pub fn lane_of(notice: &NoticeRow) -> Lane {
    if notice.lane == "emergency" { Lane::Emergency } else { Lane::Routine }
}

/// A Cancel withdraws what it references: whatever of the original still waits is cancelled.
async fn cancel_original(ctx: &NoticesCtx, notice: &NoticeRow, now: i64) -> Result<(), HandlerError> {
    let Some(original) = notice.references_id else { return Ok(()) };
    let cancel = Transition { from: &["published", "scheduled", "pending", "draft"], to: "cancelled", stamps: &["cancelled_at"], approver_id: None, approval: None, reject_reason: None, jobs: vec![], cancel_deliveries: true, audit: None };
    ctx.residents.store.transition(original, &cancel, now).await.map_err(retry)?;
    Ok(())
}

/// The delivery rows, by chunks of subscriber ids and channel by channel; with
/// `queue_now`, each chunk's jobs are queued in that lane right after its rows. Returns the
/// ranges, how many jobs were queued and the audience's district mask.
async fn insert_deliveries(ctx: &NoticesCtx, notice: &NoticeRow, spec: &NoticeSpec, now: i64, queue_now: Option<Lane>) -> Result<(Vec<(String, InsertedRange)>, usize, i64), HandlerError> {
    let store = &ctx.residents.store;
    // One round of reads at once, not three in turn: each is a hop to a database thread, and an
    // emergency's first message waits for them while routine work winds down.
    let (districts, interests, span) = tokio::join!(store.districts(), store.interests(), store.subscriber_id_span());
    let (lowest, highest) = span.map_err(retry)?;
    let (district_any, interest_any, channels) = match (&spec.audience, notice.references_id) {
        (Some(a), None) => {
            let districts: Vec<String> = districts.map_err(retry)?.into_iter().map(|d| d.slug).collect();
            let interests: Vec<String> = interests.map_err(retry)?.into_iter().map(|i| i.slug).collect();
            let bits = |all: &[String], asked: &[String]| asked.iter().filter_map(|s| all.iter().position(|a| a == s)).fold(0i64, |m, i| m | 1 << i);
            // Extreme and Severe reach everyone in the districts, whatever they follow.
            let interest_any = if spec.severity.is_urgent() { 0 } else { bits(&interests, &a.interests) };
            (bits(&districts, &a.districts), interest_any, a.channels.clone())
        }
        // An Update or Cancel follows the original, channel by channel.
        _ => (0, 0, ["sms", "email", "push"].map(String::from).to_vec()),
    };
    let mut plans = Vec::new();
    let (mut from, mut n) = (lowest, 0);
    while from <= highest {
        let to = from.saturating_add(chunk_size(queue_now.is_some(), n) - 1);
        n += 1;
        for channel in &channels {
            plans.push(FanoutPlan {
                notice_id: notice.id,
                channel: channel.clone(),
                district_any,
                interest_any,
                testers_only: spec.status != Status::Actual,
                follows: notice.references_id,
                subscribers: (from, to),
            });
        }
        from = to.saturating_add(1);
    }
    let routine = lane_of(notice) == Lane::Routine;
    // One chunk statement at a time, from the lowest ids, so that an urgent notice's jobs go
    // out chunk by chunk, and each chunk's ids are a run of their own (PostgreSQL's sequence
    // interleaves concurrent inserts, and jobs over overlapping id ranges wait on each other's
    // leases). Two at once on PostgreSQL was slower too: 1M in 3.9 s against 3.2 s.
    let (mut ranges, mut queued) = (Vec::new(), 0);
    for plan in plans {
        if routine {
            ctx.preempt.yield_to_urgent().await;
        }
        // A cancelled notice's fan-out stops here: a 1M-resident alert cancelled after its first
        // 10,000 messages went on inserting rows for 12-16 s, holding the emergency lane and
        // pausing routine work (`hejnal bench broadcast`). The cancel closed its rows so far;
        // jobs already queued for them find nothing to send.
        let Some(range) = store.fan_out_channel(&plan, now).await.map_err(retry)? else {
            tracing::info!(notice_id = plan.notice_id, "fan-out stopped: the notice was cancelled");
            break;
        };
        tracing::debug!(notice_id = plan.notice_id, channel = plan.channel, from = plan.subscribers.0, rows = range.count, "chunk fanned out");
        if range.count > 0 {
            ranges.push((plan.channel, range));
            if let Some(lane) = queue_now {
                let jobs = batch_jobs(&ranges[ranges.len() - 1..], notice.id, lane, ctx.settings.batch as i64, &[], now);
                push_jobs(ctx, &jobs).await?;
                queued += jobs.len();
            }
        }
    }
    Ok((ranges, queued, district_any))
}

/// Hold the deliveries of residents now in their quiet hours; returns when each hold ends (ms).
async fn hold_quiet_residents(ctx: &NoticesCtx, notice_id: i64) -> Result<Vec<i64>, HandlerError> {
    let store = &ctx.residents.store;
    let now = Utc::now();
    let mut ends = Vec::new();
    for pair in store.quiet_hours_in_use().await.map_err(retry)? {
        let json = crate::domain::QuietHoursJson { from: pair.0.clone(), to: pair.1.clone() };
        let Ok(quiet) = QuietHours::parse(&json) else { continue };
        if let Some(end) = quiet.ends_after(now) {
            let end = end.timestamp_millis();
            if store.hold_for_quiet_hours(notice_id, &pair, end).await.map_err(retry)? > 0 && !ends.contains(&end) {
                ends.push(end);
            }
        }
    }
    Ok(ends)
}

/// Jobs of at most `batch` ids over each channel's inserted range: now, and again when each
/// quiet-hours hold ends (a claim takes only what is due, so the early pass skips the held).
fn batch_jobs(ranges: &[(String, InsertedRange)], notice_id: i64, lane: Lane, batch: i64, holds: &[i64], now: i64) -> Vec<NewJob> {
    let mut jobs = Vec::new();
    let delays = std::iter::once(0).chain(holds.iter().map(|end| (end - now).max(0)));
    for delay in delays {
        for (channel, r) in ranges {
            let mut first = r.first;
            while first <= r.last {
                let last = (first + batch - 1).min(r.last);
                let job = Job::DeliverV1 { notice_id, channel: channel.clone(), first_id: first, last_id: last };
                jobs.push(NewJob::after(lane, job, Duration::from_millis(delay as u64)));
                first = last + 1;
            }
        }
    }
    jobs
}

async fn push_jobs(ctx: &NoticesCtx, jobs: &[NewJob]) -> Result<(), HandlerError> {
    for chunk in jobs.chunks(1000) {
        ctx.queue.push(chunk).await.map_err(|e| retry(e.to_string()))?;
    }
    Ok(())
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retry { after: Duration::from_secs(2), reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgent_chunks_double_from_the_first_to_the_largest_and_routine_ones_do_not() {
        let urgent: Vec<i64> = (0..7).map(|n| chunk_size(true, n)).collect();
        assert_eq!(urgent, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
        assert_eq!(chunk_size(true, u32::MAX), URGENT_CHUNK);
        assert_eq!((chunk_size(false, 0), chunk_size(false, 5)), (ROUTINE_CHUNK, ROUTINE_CHUNK));
    }

    #[test]
    fn ranges_split_into_batches_and_quiet_holds_repeat_them_later() {
        let ranges = vec![("sms".to_string(), InsertedRange { first: 10, last: 1209, count: 1200 })];
        let jobs = batch_jobs(&ranges, 7, Lane::Routine, 500, &[60_000], 0);
        let spans: Vec<(i64, i64, u128)> = jobs
            .iter()
            .map(|j| match &j.job {
                Job::DeliverV1 { first_id, last_id, .. } => (*first_id, *last_id, j.delay.as_millis()),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(spans, [(10, 509, 0), (510, 1009, 0), (1010, 1209, 0), (10, 509, 60_000), (510, 1009, 60_000), (1010, 1209, 60_000)]);
    }
}
