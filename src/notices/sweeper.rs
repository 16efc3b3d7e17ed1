//! The delivery sweeper: the database is the truth, the queue only a signal. Every
//! `HEJNAL_DELIVERY_SWEEP_MS` it looks for deliveries left waiting past their lane's grace
//! period (a lost Redis, a job that died) and fan-outs that never finished, and queues them
//! again. A claim makes the repeat harmless: a delivery is sent by whoever takes it first.

use hejnal_jobs::{Job, Lane, NewJob};
use tokio_util::sync::CancellationToken;

use super::SharedNotices;
use crate::store::now_ms;

pub async fn run(ctx: SharedNotices, stop: CancellationToken) {
    let mut every = tokio::time::interval(ctx.settings.sweep_every);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.cancelled() => return,
        }
        if let Err(e) = sweep(&ctx).await {
            tracing::warn!(error = %e, "delivery sweep failed; trying again shortly");
        }
    }
}

/// One pass; returns how many jobs it queued.
pub async fn sweep(ctx: &SharedNotices) -> anyhow::Result<usize> {
    let store = &ctx.residents.store;
    let now = now_ms();
    let mut jobs = Vec::new();
    for (lane, grace) in [(Lane::Emergency, ctx.settings.grace_emergency), (Lane::Routine, ctx.settings.grace_routine)] {
        let stale_before = now - grace.as_millis() as i64;
        for (notice_id, channel, first_id, last_id) in store.stale_ranges(lane.as_str(), stale_before, now, ctx.settings.batch as i64).await? {
            jobs.push(NewJob::now(lane, Job::DeliverV1 { notice_id, channel, first_id, last_id }));
        }
    }
    let stuck_before = now - ctx.settings.grace_emergency.as_millis() as i64;
    for (notice_id, lane) in store.unfinished_fan_outs(stuck_before).await? {
        let lane = if lane == "emergency" { Lane::Emergency } else { Lane::Routine };
        jobs.push(NewJob::now(lane, Job::FanOutV1 { notice_id }));
    }
    if !jobs.is_empty() {
        tracing::warn!(jobs = jobs.len(), "deliveries waited past their grace period; queued again");
        metrics::counter!("hejnal_sweeper_requeued_total").increment(jobs.len() as u64);
        ctx.queue.push(&jobs).await?;
    }
    Ok(jobs.len())
}
