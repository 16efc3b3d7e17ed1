//! The worker runtime: one apalis worker per lane in each process, each with its own
//! concurrency, so a flood of routine work never delays an emergency job.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use apalis::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Backlog, Broker, Envelope, Job, Lane, NewJob, QueueConfig, Result, WorkerId};

/// What the service does with a job.
pub trait JobHandler: Send + Sync + 'static {
    fn handle(&self, job: Job, ctx: JobContext) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>>;
}

/// Facts about the run of a job that a handler may need.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub backlog_id: i64,
    pub lane: Lane,
    pub worker_id: WorkerId,
    /// 1 on the first run.
    pub attempt: i32,
}

/// How a handler failed, which decides what happens to the job.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Try again after the delay (durably: the backlog row waits, not memory).
    #[error("retry in {after:?}: {reason}")]
    Retry { after: Duration, reason: String },
    /// Never try again; the row stays `dead` with the reason.
    #[error("fatal: {0}")]
    Fatal(String),
}

/// The queue as the service sees it: push jobs, run workers, read depths.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: QueueConfig,
    pub(crate) backlog: Backlog,
    pub(crate) broker: Broker,
    pub(crate) worker_id: WorkerId,
    /// Wakes this process's pump of each lane when work arrives or room frees up.
    pub(crate) wake: [Notify; 2],
    /// Wakes this process's worker of each lane when the pump put work into the broker.
    pub(crate) nudge: [Arc<Notify>; 2],
    /// Times each lane's worker asked the broker for work (see [`Queue::broker_asks`]).
    pub(crate) asks: [Arc<AtomicU64>; 2],
    /// Jobs finished per lane since the pump was last woken for room (see `note_finished`).
    pub(crate) finished: [AtomicU32; 2],
    /// Told whenever emergency work arrives in this process (see [`Queue::on_emergency_work`]).
    pub(crate) on_emergency: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl Queue {
    /// Connect to the broker. The backlog lives in the service's database, already migrated.
    pub async fn connect(config: QueueConfig, backlog: Backlog) -> Result<Queue> {
        let broker = Broker::connect(&config.url).await?;
        let worker_id = WorkerId::generate();
        tracing::info!(%worker_id, broker = ?broker, prefix = %config.prefix, "queue connected");
        Ok(Queue {
            inner: Arc::new(Inner {
                config,
                backlog,
                broker,
                worker_id,
                wake: [Notify::new(), Notify::new()],
                nudge: [Arc::new(Notify::new()), Arc::new(Notify::new())],
                asks: [Arc::default(), Arc::default()],
                finished: [AtomicU32::new(0), AtomicU32::new(0)],
                on_emergency: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    pub fn backlog(&self) -> &Backlog {
        &self.inner.backlog
    }

    pub fn broker(&self) -> &Broker {
        &self.inner.broker
    }

    /// This process's worker id: new at every start, never reused.
    pub fn worker_id(&self) -> &WorkerId {
        &self.inner.worker_id
    }

    /// Accept jobs durably and wake the pump of their lanes.
    pub async fn push(&self, jobs: &[NewJob]) -> Result<Vec<i64>> {
        let ids = self.inner.backlog.push(jobs).await?;
        for lane in Lane::ALL {
            if jobs.iter().any(|j| j.lane == lane) {
                self.wake(lane);
            }
        }
        Ok(ids)
    }

    /// Call `notify` whenever emergency work arrives in this process: pushed or woken here, or
    /// released by this process's pump (pushed elsewhere). The service uses it to pause routine
    /// work before the emergency job has even started. Set once; later calls are ignored.
    pub fn on_emergency_work(&self, notify: impl Fn() + Send + Sync + 'static) {
        let _ = self.inner.on_emergency.set(Box::new(notify));
    }

    /// How many times this process's worker of `lane` has asked the broker for work: once per
    /// poll period while busy, less and less often while idle (`poll.rs`).
    pub fn broker_asks(&self, lane: Lane) -> u64 {
        self.inner.asks[lane as usize].load(Ordering::Relaxed)
    }

    /// Tell the pump that a lane has new work (after a transactional insert by the caller).
    pub fn wake(&self, lane: Lane) {
        self.inner.wake(lane);
    }

    /// Close the broker's connections cleanly, once the workers and the pump have stopped: the
    /// embedded broker's SQLite file is checkpointed as its last connection closes. (Redis's
    /// connections close as they are dropped.)
    pub async fn close(&self) {
        if let Broker::Sqlite(pool) = &self.inner.broker {
            pool.close().await;
        }
    }

    /// Ready when both the backlog's database and the broker answer.
    pub async fn ping(&self) -> Result<()> {
        self.inner.broker.ping().await
    }

    /// Run the pump and the sweeper until `stop` is cancelled. Every process that pushes or
    /// works runs one; releases are serialised per lane in the database.
    pub fn spawn_pump(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::pump::run(self.inner.clone(), stop))
    }

    /// Run both lanes' workers until `stop` is cancelled, then let in-flight jobs finish for
    /// up to the configured shutdown timeout.
    pub async fn run_workers(&self, handler: Arc<dyn JobHandler>, stop: CancellationToken) -> Result<()> {
        let dispatcher = Arc::new(Dispatcher { inner: self.inner.clone(), handler });
        let config = &self.inner.config;
        // apalis restarts nothing by default: one broker error (SQLite busy, a Redis blip)
        // would leave a lane without a worker, silently. Restart it, under a new name (see
        // `restart_name`), unless we are shutting down.
        let stopping = stop.clone();
        let mut monitor = Monitor::new()
            .shutdown_timeout(config.shutdown_timeout)
            .should_restart(move |worker, error| {
                if stopping.is_cancelled() {
                    return false;
                }
                tracing::error!(worker = worker.name(), %error, restarts = worker.restarts(), "worker failed; restarting it");
                metrics::counter!("hejnal_worker_restarts_total").increment(1);
                true
            });
        for lane in Lane::ALL {
            let name = format!("{}-{}", self.inner.worker_id, lane);
            let concurrency = config.concurrency(lane);
            let tick = {
                let (busy, idle) = (config.poll_interval, config.idle_poll_interval);
                let (nudge, asks) = (self.inner.nudge[lane as usize].clone(), self.inner.asks[lane as usize].clone());
                move || crate::poll::Tick::new(lane, busy, idle, nudge.clone(), asks.clone())
            };
            let d = dispatcher.clone();
            match &self.inner.broker {
                Broker::Sqlite(_) => {
                    let storage = self.inner.broker.sqlite_storage(config, lane);
                    monitor = monitor.register(move |restarts| {
                        WorkerBuilder::new(restart_name(&name, restarts).as_str())
                            .backend(storage.clone().poll_with_strategy(tick()))
                            .concurrency(concurrency)
                            .data((d.clone(), lane))
                            .build(run_envelope)
                    });
                }
                Broker::Redis(_) => {
                    let storage = self.inner.broker.redis_storage(config, lane);
                    monitor = monitor.register(move |restarts| {
                        WorkerBuilder::new(restart_name(&name, restarts).as_str())
                            .backend(storage.clone().poll_with_strategy(tick()))
                            .concurrency(concurrency)
                            .data((d.clone(), lane))
                            .build(run_envelope)
                    });
                }
            }
        }
        tracing::info!(worker_id = %self.inner.worker_id, "workers started");
        monitor
            .run_with_signal(async move {
                stop.cancelled().await;
                tracing::info!("stopping workers; in-flight jobs may finish");
                Ok(())
            })
            .await
            .map_err(|e| crate::Error::Broker(e.to_string()))
    }
}

/// A restarted worker takes a fresh name: apalis-redis refuses to register a name that
/// heartbeated recently, and the old name's in-flight jobs are then recovered as orphans.
fn restart_name(name: &str, restarts: usize) -> String {
    if restarts == 0 { name.to_owned() } else { format!("{name}-r{restarts}") }
}

impl Inner {
    pub(crate) fn wake(&self, lane: Lane) {
        if lane == Lane::Emergency {
            self.emergency_arrived();
        }
        self.wake[lane as usize].notify_one();
    }

    pub(crate) fn emergency_arrived(&self) {
        if let Some(notify) = self.on_emergency.get() {
            notify();
        }
    }

    /// A job finished. Wake the pump once a quarter of the lane's room has freed, not after
    /// every job: each release is a database transaction, and the pump's idle tick releases
    /// the rest.
    fn note_finished(&self, lane: Lane) {
        let every = (self.config.max_ready / 4).max(1);
        let count = &self.finished[lane as usize];
        if count.fetch_add(1, Ordering::Relaxed) + 1 >= every {
            count.store(0, Ordering::Relaxed);
            // Room, not new work: the pump only.
            self.wake[lane as usize].notify_one();
        }
    }
}

/// Runs one envelope against the backlog's record of it.
struct Dispatcher {
    inner: Arc<Inner>,
    handler: Arc<dyn JobHandler>,
}

/// The job runs in a task of its own. When the broker connection breaks, apalis ends the
/// worker's future and drops the jobs it was polling: a delivery job dropped between its sends
/// and the write of their outcomes sent messages nobody recorded, and they went out again once
/// their lease lapsed (the fault suite's Redis scenario saw 192 such repeats). A spawned job
/// finishes and records what it did whatever happens to the worker that fetched it.
async fn run_envelope(envelope: Envelope, data: Data<(Arc<Dispatcher>, Lane)>) -> Result<(), BoxDynError> {
    let (dispatcher, lane) = (*data).clone();
    let job = tokio::spawn(async move { dispatcher.run(lane, envelope).await });
    match job.await {
        Ok(done) => done.map_err(|e| Box::new(e) as BoxDynError),
        Err(e) => Err(Box::new(e) as BoxDynError),
    }
}

impl Dispatcher {
    #[tracing::instrument(skip_all, fields(lane = %lane, backlog_id = envelope.backlog_id, job = envelope.job.kind()))]
    async fn run(&self, lane: Lane, envelope: Envelope) -> Result<()> {
        let backlog = &self.inner.backlog;
        let id = envelope.backlog_id;
        let Some(attempt) = persist(|| backlog.start(id, self.inner.worker_id.as_str())).await? else {
            // Done already, or dead: a repeated signal (sweeper or orphan recovery).
            metrics::counter!("hejnal_jobs_skipped_total", "lane" => lane.as_str()).increment(1);
            return Ok(());
        };
        tracing::debug!(attempt, "job started");
        let ctx = JobContext { backlog_id: id, lane, worker_id: self.inner.worker_id.clone(), attempt };
        let kind = envelope.job.kind();
        let outcome = self.handler.handle(envelope.job, ctx).await;
        match outcome {
            Ok(()) => {
                persist(|| backlog.finish(id)).await?;
                metrics::counter!("hejnal_jobs_done_total", "lane" => lane.as_str(), "job" => kind).increment(1);
            }
            Err(HandlerError::Retry { after, reason }) => {
                tracing::warn!(%reason, ?after, attempt, "job will run again");
                persist(|| backlog.retry(id, after, &reason)).await?;
                metrics::counter!("hejnal_jobs_failed_total", "lane" => lane.as_str(), "job" => kind, "outcome" => "retry").increment(1);
            }
            Err(HandlerError::Fatal(reason)) => {
                tracing::error!(%reason, attempt, "job failed for good");
                persist(|| backlog.bury(id, &reason)).await?;
                metrics::counter!("hejnal_jobs_failed_total", "lane" => lane.as_str(), "job" => kind, "outcome" => "dead").increment(1);
            }
        }
        self.inner.note_finished(lane);
        Ok(())
    }
}

/// How long a job's result keeps trying to reach its backlog row.
const PERSIST_FOR: Duration = Duration::from_secs(30);

/// Write a job's start or result to its backlog row, trying again while the database fails. A row left
/// `running` waits for redelivery (`HEJNAL_QUEUE_REDELIVER_AFTER_SECS`, ten minutes by
/// default): in the fault suite's connection-cut scenario, notices published during the cuts
/// waited two minutes for their fan-out, until the delivery sweeper ran them again.
async fn persist<T, F, Fut>(mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match write().await {
            Err(crate::Error::Database(e)) if started.elapsed() < PERSIST_FOR => {
                tracing::warn!(error = %e, "cannot write the job's result yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            done => return done,
        }
    }
}
