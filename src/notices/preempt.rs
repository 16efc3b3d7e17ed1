//! Emergencies pre-empt routine work inside a worker process. While an emergency fan-out or
//! delivery job runs, routine jobs finish the sends and writes they have started but begin no
//! new ones. On SQLite this keeps the emergency's writes from queueing behind a campaign's
//! (one writer at a time, and a busy writer is retried with sleeps of up to 100 ms); on any
//! backend it leaves the two cores to the emergency. Measured by `hejnal bench broadcast`:
//! the first message of an alert during a campaign (docs/performance.md).
//!
//! Routine work also pauses for a short while when emergency work *arrives* in the process
//! (the queue's `on_emergency_work`), before its job starts: the hops from the approval to the
//! emergency job (queue release, broker, start) each waited behind the campaign's writes and
//! tasks, about 130 ms of an alert's first-message time at 1M residents.

use std::{
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// How long routine work waits for an arriving emergency job to start. Renewed by every
/// arrival; if the job runs in another process, this process's routine work lost that much.
pub const EXPECT_FOR: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Preemption {
    urgent_jobs: AtomicUsize,
    /// Until when an arriving emergency job is expected, in ms after `epoch`.
    expected_until_ms: AtomicU64,
    epoch: Instant,
    quiet: Notify,
}

impl Default for Preemption {
    fn default() -> Self {
        Preemption { urgent_jobs: AtomicUsize::new(0), expected_until_ms: AtomicU64::new(0), epoch: Instant::now(), quiet: Notify::new() }
    }
}

/// Held by an emergency job for as long as it runs.
pub struct UrgentGuard<'a>(&'a Preemption);

impl Preemption {
    pub fn urgent(&self) -> UrgentGuard<'_> {
        self.urgent_jobs.fetch_add(1, Ordering::SeqCst);
        UrgentGuard(self)
    }

    /// Emergency work arrived: routine work pauses for [`EXPECT_FOR`] (or until the
    /// emergency jobs that start meanwhile end).
    pub fn expect_urgent(&self) {
        let until = self.elapsed_ms() + EXPECT_FOR.as_millis() as u64;
        self.expected_until_ms.fetch_max(until, Ordering::SeqCst);
    }

    /// An emergency job runs, or one is expected.
    pub fn is_urgent_running(&self) -> bool {
        self.urgent_jobs.load(Ordering::SeqCst) > 0 || self.expected_left().is_some()
    }

    fn elapsed_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How long an expected emergency job is still waited for.
    fn expected_left(&self) -> Option<Duration> {
        let left = self.expected_until_ms.load(Ordering::SeqCst).saturating_sub(self.elapsed_ms());
        (left > 0).then(|| Duration::from_millis(left))
    }

    /// Returns at once when no emergency job runs or is expected, else when the last one ends
    /// and the expectation has passed.
    pub async fn yield_to_urgent(&self) {
        // The common case, on every routine send: no emergency, so no lock on `quiet`.
        if !self.is_urgent_running() {
            return;
        }
        loop {
            let quiet = self.quiet.notified();
            tokio::pin!(quiet);
            // Registered before the check, so an end between the check and the wait still wakes us.
            quiet.as_mut().enable();
            if !self.is_urgent_running() {
                return;
            }
            match self.expected_left() {
                // Only expected: wait until the expectation passes or the jobs end.
                Some(left) if self.urgent_jobs.load(Ordering::SeqCst) == 0 => {
                    let _ = tokio::time::timeout(left, quiet).await;
                }
                _ => quiet.await,
            }
        }
    }
}

impl Drop for UrgentGuard<'_> {
    fn drop(&mut self) {
        if self.0.urgent_jobs.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.quiet.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn routine_work_waits_while_an_emergency_runs_and_resumes_after() {
        let p = Arc::new(Preemption::default());
        p.yield_to_urgent().await; // nothing urgent: no wait
        let first = p.urgent();
        let second = p.urgent();
        let waiter = tokio::spawn({
            let p = Arc::clone(&p);
            async move { p.yield_to_urgent().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "routine work went on during an emergency");
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "routine work went on while a second emergency still ran");
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("routine work resumes").unwrap();
        assert!(!p.is_urgent_running());
    }

    #[tokio::test(start_paused = true)]
    async fn routine_work_waits_for_an_arriving_emergency_for_a_while_only() {
        let p = Arc::new(Preemption::default());
        p.expect_urgent();
        assert!(p.is_urgent_running());
        let started = Instant::now();
        p.yield_to_urgent().await;
        let waited = started.elapsed();
        assert!(waited >= EXPECT_FOR && waited < EXPECT_FOR + Duration::from_millis(50), "waited {waited:?}");
        assert!(!p.is_urgent_running());
    }

    #[tokio::test(start_paused = true)]
    async fn an_expected_emergency_that_starts_holds_routine_work_until_it_ends() {
        let p = Arc::new(Preemption::default());
        p.expect_urgent();
        let job = p.urgent();
        let waiter = tokio::spawn({
            let p = Arc::clone(&p);
            async move { p.yield_to_urgent().await }
        });
        tokio::time::sleep(EXPECT_FOR * 3).await;
        assert!(!waiter.is_finished(), "routine work went on while the emergency job ran");
        drop(job);
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("routine work resumes").unwrap();
    }
}
