//! What workers do with each job type. Handlers load by id from the store and keep all
//! state there, so running a job twice is safe.

use std::{future::Future, pin::Pin, time::Duration};

use hejnal_jobs::{HandlerError, Job, JobContext, JobHandler};

use crate::{
    notices::{self, SharedNotices},
    residents::{self, SharedResidents},
    store::{DeliveryRange, DynStore, now_ms},
};

pub struct Handlers {
    pub store: DynStore,
    pub residents: SharedResidents,
    pub notices: SharedNotices,
}

impl Handlers {
    /// Every handler of a worker process, sharing one store, one set of channels and one queue.
    pub fn new(store: DynStore, residents: SharedResidents, queue: hejnal_jobs::Queue, settings: notices::DeliverySettings) -> Handlers {
        let preempt = std::sync::Arc::new(notices::preempt::Preemption::default());
        queue.on_emergency_work({
            let preempt = preempt.clone();
            move || preempt.expect_urgent()
        });
        let notices = std::sync::Arc::new(notices::NoticesCtx { residents: residents.clone(), queue, settings, preempt });
        Handlers { store, residents, notices }
    }
}

impl JobHandler for Handlers {
    fn handle(&self, job: Job, ctx: JobContext) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>> {
        let store = self.store.clone();
        let residents = self.residents.clone();
        let notices = self.notices.clone();
        Box::pin(async move {
            match job {
                Job::ProbeV1 { probe_id, sleep_ms } => run_probe(&store, &probe_id.to_string(), sleep_ms, &ctx).await,
                Job::VerifyContactV1 { contact_id } => residents::verify::run(&residents, contact_id, ctx.attempt).await,
                Job::FanOutV1 { notice_id } => notices::fanout::run(&notices, notice_id).await,
                Job::DeliverV1 { notice_id, channel, first_id, last_id } => {
                    let range = DeliveryRange { notice_id, channel: &channel, first: first_id, last: last_id };
                    notices::deliver::run(&notices, range, ctx.worker_id.as_str()).await
                }
                Job::PurgeUnverifiedV1 => {
                    let purged = store.purge_unverified(now_ms() - residents::UNVERIFIED_RETENTION_MS).await.map_err(transient)?;
                    tracing::info!(purged, "unverified sign-ups purged");
                    Ok(())
                }
            }
        })
    }
}

/// Record the start, pause, record the end: enough to see which worker ran it, when, and
/// whether it was cut short.
async fn run_probe(store: &DynStore, probe_id: &str, sleep_ms: u64, ctx: &JobContext) -> Result<(), HandlerError> {
    let run = store
        .probe_started(probe_id, ctx.worker_id.as_str(), ctx.lane.as_str())
        .await
        .map_err(transient)?;
    if sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    }
    store.probe_finished(run).await.map_err(transient)
}

/// A store error is worth another try after a short pause.
fn transient(e: crate::store::StoreError) -> HandlerError {
    HandlerError::Retry { after: Duration::from_secs(2), reason: e.to_string() }
}
