//! The pump moves due jobs from the backlog to the broker while the broker holds fewer than
//! `max_ready` of a lane, and the sweeper puts back what a lost broker dropped.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{Broker, Lane, runtime::Inner};

/// How often an idle pump looks for due work pushed by other processes or delays that end.
const IDLE_TICK: Duration = Duration::from_millis(100);

pub(crate) async fn run(inner: Arc<Inner>, stop: CancellationToken) {
    let lanes = Lane::ALL.map(|lane| tokio::spawn(pump_lane(inner.clone(), lane, stop.clone())));
    let sweeper = tokio::spawn(sweep(inner.clone(), stop.clone()));
    for task in lanes {
        let _ = task.await;
    }
    let _ = sweeper.await;
}

async fn pump_lane(inner: Arc<Inner>, lane: Lane, stop: CancellationToken) {
    let max_ready = inner.config.max_ready;
    loop {
        let moved = release_once(&inner, lane).await;
        if stop.is_cancelled() {
            return;
        }
        // A full release means more may be due at once: go again without waiting.
        if moved < max_ready as usize / 2 {
            tokio::select! {
                _ = inner.wake[lane as usize].notified() => {}
                _ = tokio::time::sleep(IDLE_TICK) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// Release what fits and hand it to the broker; returns how many moved.
async fn release_once(inner: &Inner, lane: Lane) -> usize {
    let envelopes = match inner.backlog.release_due(lane, inner.config.max_ready).await {
        Ok(envelopes) => envelopes,
        Err(e) => {
            tracing::warn!(%lane, error = %e, "backlog unavailable; will retry");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return 0;
        }
    };
    let moved = envelopes.len();
    if moved == 0 {
        return 0;
    }
    if lane == Lane::Emergency {
        inner.emergency_arrived();
    }
    let ids: Vec<i64> = envelopes.iter().map(|e| e.backlog_id).collect();
    if let Err(e) = inner.broker.push(&inner.config, lane, envelopes).await {
        tracing::warn!(%lane, error = %e, jobs = moved, "broker refused jobs; they stay queued");
        if let Err(e) = inner.backlog.unrelease(&ids).await {
            tracing::warn!(%lane, error = %e, "could not put jobs back; the sweeper will");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        return 0;
    }
    inner.nudge[lane as usize].notify_one();
    tracing::debug!(%lane, jobs = moved, "released to the broker");
    metrics::counter!("hejnal_jobs_released_total", "lane" => lane.as_str()).increment(moved as u64);
    moved
}

/// Every so often: release again what was handed out long ago and never finished (the broker
/// lost it), and on Redis drop the records of finished tasks so memory stays flat.
async fn sweep(inner: Arc<Inner>, stop: CancellationToken) {
    let every = (inner.config.redeliver_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match inner.backlog.redeliver_stale(inner.config.redeliver_after).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(jobs = n, "re-released jobs the broker never finished");
                metrics::counter!("hejnal_jobs_redelivered_total").increment(n);
                for lane in Lane::ALL {
                    inner.wake(lane);
                }
            }
            Err(e) => tracing::warn!(error = %e, "sweeper could not read the backlog"),
        }
        if let Broker::Redis(_) = &inner.broker {
            for lane in Lane::ALL {
                if let Err(e) = compact_redis(&inner, lane).await {
                    tracing::debug!(%lane, error = %e, "redis compaction skipped");
                }
            }
        }
    }
}

/// apalis-redis keeps every finished task's data, metadata and id; the backlog already
/// records what matters, so drop them.
async fn compact_redis(inner: &Inner, lane: Lane) -> crate::Result<()> {
    use apalis_core::backend::Vacuum;
    let Broker::Redis(conns) = &inner.broker else { return Ok(()) };
    let mut storage = inner.broker.redis_storage_on(conns.shared.clone(), &inner.config, lane);
    storage.vacuum().await.map_err(|e| crate::Error::Broker(e.to_string()))?;
    let done_set = storage.get_config().done_jobs_set();
    let _: () = redis::cmd("UNLINK").arg(done_set).query_async(storage.get_connection()).await?;
    Ok(())
}
