//! Whether the machine's cores ran at all: one thread per core, pinned to it at real-time
//! priority, wakes every millisecond and notes how late it woke. A real-time thread takes its
//! core from any ordinary thread at once, so it wakes late only when the core itself did not
//! run: the host gave it to another machine, or the kernel held it (this machine's kernel
//! never preempts itself: `Dynamic Preempt: none` at boot). The answers' own latency cannot
//! tell those stalls from the app running short of CPU; this can.
//!
//! Opt-in (`--stall-probe`): it costs each core a wake-up a millisecond, and it needs the
//! privilege to set a real-time priority.

use std::{
    sync::atomic::AtomicBool,
    time::{Duration, Instant},
};

use super::{
    others::WINDOW,
    sampler::{Sampler, going_on},
};

/// How often each probe thread wakes.
const PERIOD: Duration = Duration::from_millis(1);

/// One probe thread per core until [`StallProbe::stop`].
pub(super) struct StallProbe(Vec<Sampler<Result<Vec<f64>, String>>>);

impl StallProbe {
    pub fn start() -> StallProbe {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let start = Instant::now();
        StallProbe((0..cores).map(|core| Sampler::spawn(move |flag| probe_core(core, start, flag))).collect())
    }

    /// The longest lateness in each window of [`WINDOW`], in ms, the worst core's; or why
    /// there is none (no real-time priority, say).
    pub fn stop(self) -> Result<Vec<f64>, String> {
        let mut worst: Vec<f64> = Vec::new();
        for core in self.0 {
            let windows = core.stop().ok_or("a probe thread panicked")??;
            if worst.len() < windows.len() {
                worst.resize(windows.len(), 0.0);
            }
            for (w, late) in worst.iter_mut().zip(windows) {
                *w = w.max(late);
            }
        }
        Ok(worst)
    }
}

fn probe_core(core: usize, start: Instant, running: &AtomicBool) -> Result<Vec<f64>, String> {
    pin_real_time(core)?;
    let mut windows: Vec<f64> = Vec::new();
    let mut due = start;
    while going_on(running) {
        due += PERIOD;
        sleep_until(due);
        let woke = Instant::now();
        let late_ms = woke.saturating_duration_since(due).as_secs_f64() * 1e3;
        let window = (due - start).as_nanos() / WINDOW.as_nanos();
        let window = usize::try_from(window).unwrap_or(usize::MAX);
        if windows.len() <= window {
            windows.resize(window + 1, 0.0);
        }
        windows[window] = windows[window].max(late_ms);
        // After a stall, carry on from now: the missed wake-ups are one stall, not many.
        if woke > due + PERIOD {
            due = woke;
        }
    }
    Ok(windows)
}

/// Pin the calling thread to `core` at the lowest real-time priority.
fn pin_real_time(core: usize) -> Result<(), String> {
    // SAFETY: the set is a plain bit array, zeroed, then filled by the libc macros; both
    // calls read it through a pointer valid for the call.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("cannot pin a probe to core {core}: {}", std::io::Error::last_os_error()));
        }
        let param = libc::sched_param { sched_priority: libc::sched_get_priority_min(libc::SCHED_FIFO) };
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
            return Err(format!("no real-time priority: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Sleep to `due`; `thread::sleep` is a `nanosleep` on the monotonic clock, to the
/// microsecond at real-time priority.
fn sleep_until(due: Instant) {
    std::thread::sleep(due.saturating_duration_since(Instant::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_gives_each_window_its_lateness_or_says_why_it_cannot() {
        let probe = StallProbe::start();
        std::thread::sleep(Duration::from_millis(250));
        // SAFETY: geteuid reads the process's user id and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        match probe.stop() {
            Ok(late_ms) => {
                assert!(late_ms.len() >= 2, "a window per 100 ms: {late_ms:?}");
                assert!(late_ms.iter().all(|ms| ms.is_finite() && *ms >= 0.0), "{late_ms:?}");
            }
            // Without the privilege the bench says so in its table instead of a number.
            Err(why) => assert!(!root && why.starts_with("no real-time priority"), "{why}"),
        }
    }
}
