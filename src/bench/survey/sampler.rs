//! A thread of its own that samples something while a phase runs, until it is stopped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

pub(super) struct Sampler<T> {
    running: Arc<AtomicBool>,
    thread: JoinHandle<T>,
}

impl<T: Send + 'static> Sampler<T> {
    /// Run `sample` on a new thread; it goes on while the flag it is given holds.
    pub fn spawn(sample: impl FnOnce(&AtomicBool) -> T + Send + 'static) -> Sampler<T> {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let thread = std::thread::spawn(move || sample(&flag));
        Sampler { running, thread }
    }

    /// Tell the sampler to stop, and take what it gathered; None if its thread panicked.
    pub fn stop(self) -> Option<T> {
        self.running.store(false, Ordering::Relaxed);
        self.thread.join().ok()
    }
}

/// Whether a sampler should go on.
pub(super) fn going_on(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
