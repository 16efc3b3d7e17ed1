//! Keeping idle cores from sleeping while a burst of requests lasts. Between answers at a
//! steady rate the cores go idle, and on virtual machines whose idle cores halt at once
//! (`guest_halt_poll_ns` 0) each wake-up goes through the host: there an answer at 70% of the
//! maximum cost the app 1.10-1.40 times what it cost at the maximum, and that spent the
//! headroom the p99 needed. With the cores kept from sleeping the two costs were equal and the
//! p99 was met in 4 runs of 4, against 1 of 4 (`docs/performance.md`, session 28).
//!
//! The kernel's interface for that is PM QoS: while a process holds `/dev/cpu_dma_latency`
//! open with 0 written to it, idle cores poll instead of sleeping. Polling costs power (and the
//! host's CPU, on a virtual machine), so it is held only while requests come at least
//! [`BURST_PER_WINDOW`] per [`WINDOW`], and given back after [`QUIET_WINDOWS`] quieter ones.
//! The device is root's by default: a process that may not open it says so once and goes on
//! without (README, Operations).

use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::Path,
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Requests begun since the process started (the HTTP metrics middleware counts them).
static REQUESTS: AtomicU64 = AtomicU64::new(0);

const DEVICE: &str = "/dev/cpu_dma_latency";
const WINDOW: Duration = Duration::from_millis(100);
/// A burst is at least this many requests in a window: 1,000 a second.
const BURST_PER_WINDOW: u64 = 100;
/// Windows under a burst's rate in a row before the cores may sleep again: a second.
const QUIET_WINDOWS: u32 = 10;

pub fn count_request() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Watch the request rate on a thread of its own, once per process, holding the cores awake
/// during bursts.
pub fn keep_awake_in_bursts() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new().name("cores-awake".into()).spawn(|| {
            let outcome = watch(Path::new(DEVICE), WINDOW, |held| metrics::gauge!("hejnal_cores_kept_awake").set(if held { 1.0 } else { 0.0 }));
            if let Err(e) = outcome {
                tracing::info!(device = DEVICE, error = %e, "cannot keep idle cores awake during bursts; answers at a steady rate may cost more CPU (README, Operations)");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the thread that keeps cores awake during bursts");
        }
    });
}

/// Every `window`, hold or give back `device` as [`Watch`] decides, telling `changed`. Returns
/// only when the device cannot be held.
fn watch(device: &Path, window: Duration, mut changed: impl FnMut(bool)) -> std::io::Result<()> {
    let mut watch = Watch::default();
    let mut held: Option<File> = None;
    let mut seen = REQUESTS.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(window);
        let now = REQUESTS.load(Ordering::Relaxed);
        match watch.after(now - seen) {
            Step::Hold => {
                held = Some(hold(device)?);
                changed(true);
            }
            Step::Release => {
                // Closing the file withdraws the request.
                drop(held.take());
                changed(false);
            }
            Step::Keep => {}
        }
        seen = now;
    }
}

fn hold(device: &Path) -> std::io::Result<File> {
    let mut file = OpenOptions::new().write(true).open(device)?;
    // The latency allowed, in µs, as a binary 32-bit integer: 0 lets no core sleep.
    file.write_all(&0i32.to_ne_bytes())?;
    Ok(file)
}

#[derive(Debug, PartialEq)]
enum Step {
    Hold,
    Release,
    Keep,
}

/// When to hold the cores awake: at once when a window has a burst's requests, until
/// [`QUIET_WINDOWS`] in a row have fewer.
#[derive(Default)]
struct Watch {
    held: bool,
    quiet: u32,
}

impl Watch {
    fn after(&mut self, requests: u64) -> Step {
        if requests >= BURST_PER_WINDOW {
            self.quiet = 0;
            if !self.held {
                self.held = true;
                return Step::Hold;
            }
        } else if self.held {
            self.quiet += 1;
            if self.quiet >= QUIET_WINDOWS {
                self.held = false;
                self.quiet = 0;
                return Step::Release;
            }
        }
        Step::Keep
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::mpsc, time::Instant};

    use super::*;

    #[test]
    fn a_burst_holds_at_once_and_only_a_quiet_second_releases() {
        let mut w = Watch::default();
        assert_eq!(w.after(99), Step::Keep, "under a burst's rate nothing is held");
        assert_eq!(w.after(100), Step::Hold);
        assert_eq!(w.after(5_000), Step::Keep);
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(w.after(10), Step::Keep);
        }
        assert_eq!(w.after(100), Step::Keep, "a burst again before a quiet second keeps it held");
        for _ in 0..QUIET_WINDOWS - 1 {
            assert_eq!(w.after(0), Step::Keep);
        }
        assert_eq!(w.after(0), Step::Release);
        assert_eq!(w.after(0), Step::Keep);
        assert_eq!(w.after(300), Step::Hold);
    }

    /// Against a file standing in for the device: during requests at a burst's rate it is held
    /// open with 0 written, and given back once they stop.
    #[test]
    fn requests_at_a_bursts_rate_hold_the_device_and_their_end_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("cpu_dma_latency");
        std::fs::write(&device, b"").unwrap();
        let (tx, rx) = mpsc::channel();
        let watched = device.clone();
        std::thread::spawn(move || watch(&watched, Duration::from_millis(20), move |held| { let _ = tx.send(held); }));

        let deadline = Instant::now() + Duration::from_secs(10);
        let held = loop {
            for _ in 0..BURST_PER_WINDOW {
                count_request();
            }
            if let Ok(held) = rx.recv_timeout(Duration::from_millis(5)) {
                break held;
            }
            assert!(Instant::now() < deadline, "10 s of requests and the device was not held");
        };
        assert!(held);
        assert_eq!(std::fs::read(&device).unwrap(), 0i32.to_ne_bytes(), "0 µs written");
        // The kernel keeps the request only while the file is open.
        assert!(open_in_this_process(&device), "held open");
        let released = rx.recv_timeout(Duration::from_secs(10)).expect("given back within 10 s of the last request");
        assert!(!released);
        assert!(!open_in_this_process(&device), "closed, which withdraws the request");
    }

    fn open_in_this_process(path: &Path) -> bool {
        std::fs::read_dir("/proc/self/fd").unwrap().flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
    }

    #[test]
    fn a_device_that_cannot_be_opened_ends_the_watch_with_the_reason() {
        let watching = std::thread::spawn(|| watch(Path::new("/nonexistent/cpu_dma_latency"), Duration::from_millis(20), |_| {}));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !watching.is_finished() {
            for _ in 0..BURST_PER_WINDOW {
                count_request();
            }
            std::thread::sleep(Duration::from_millis(5));
            assert!(Instant::now() < deadline, "10 s of requests and the watch went on");
        }
        assert_eq!(watching.join().unwrap().unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}
