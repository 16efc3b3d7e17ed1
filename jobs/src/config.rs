//! Settings of the queue engine. The service fills them from its own configuration.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// `sqlite://…` or `redis://…`.
    pub url: String,
    /// Namespace of every broker key, so installations and tests can share one Redis.
    pub prefix: String,
    /// Jobs per lane allowed to wait in the broker; the rest waits in the database.
    pub max_ready: u32,
    pub heartbeat: Duration,
    /// A worker silent for this long is dead; its jobs run again elsewhere.
    pub orphan_after: Duration,
    /// A backlog row released or running for this long is released again (lost broker).
    pub redeliver_after: Duration,
    /// How often a worker asks the broker for work while it finds some, and for a second after.
    pub poll_interval: Duration,
    /// How often a worker idle for long asks at most (see `poll.rs`). Work this process puts
    /// into the broker wakes its workers at once; work another process puts there waits for
    /// this at most.
    pub idle_poll_interval: Duration,
    pub emergency_concurrency: usize,
    pub routine_concurrency: usize,
    /// How long shutdown waits for in-flight jobs.
    pub shutdown_timeout: Duration,
}

impl QueueConfig {
    pub fn concurrency(&self, lane: crate::Lane) -> usize {
        match lane {
            crate::Lane::Emergency => self.emergency_concurrency,
            crate::Lane::Routine => self.routine_concurrency,
        }
    }

    /// apalis counts missed heartbeats, not seconds.
    pub fn missed_heartbeats(&self) -> usize {
        let beats = self.orphan_after.as_millis() / self.heartbeat.as_millis().max(1);
        beats.max(1) as usize
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            url: "sqlite://data/queue.db".into(),
            prefix: "hejnal".into(),
            max_ready: 1000,
            heartbeat: Duration::from_secs(5),
            orphan_after: Duration::from_secs(20),
            redeliver_after: Duration::from_secs(600),
            poll_interval: Duration::from_millis(10),
            idle_poll_interval: Duration::from_millis(100),
            emergency_concurrency: 16,
            routine_concurrency: 32,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}
