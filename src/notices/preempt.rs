//! Emergencies pre-empt routine work inside a worker process. While an emergency fan-out or
//! delivery job runs, routine jobs finish the sends and writes they have started but begin no
//! new ones. On SQLite this keeps the emergency's writes from queueing behind a campaign's
//! (one writer at a time, and a busy writer is retried with sleeps of up to 100 ms); on any
//! backend it leaves the two cores to the emergency. Measured by `hejnal bench broadcast`:
//! the first message of an alert during a campaign (docs/performance.md).

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Preemption {
    urgent_jobs: AtomicUsize,
    quiet: Notify,
}

/// Held by an emergency job for as long as it runs.
pub struct UrgentGuard<'a>(&'a Preemption);

impl Preemption {
    pub fn urgent(&self) -> UrgentGuard<'_> {
        self.urgent_jobs.fetch_add(1, Ordering::SeqCst);
        UrgentGuard(self)
    }

    pub fn is_urgent_running(&self) -> bool {
        self.urgent_jobs.load(Ordering::SeqCst) > 0
    }

    /// Returns at once when no emergency job runs, else when the last one ends.
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
            quiet.await;
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
}
