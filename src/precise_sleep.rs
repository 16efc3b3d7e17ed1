//! A sleep to the microsecond. tokio's timer wheel counts in whole milliseconds and rounds a
//! deadline up to the next one (tokio issues #5021, #6866). The survey bench's load generator
//! sent each request about a millisecond after its moment with it, and since latency counts
//! from the moment, that millisecond was charged to the app; the answer batcher's pacing
//! (`surveys/batcher.rs`) waits for less than a millisecond at a time. A Linux `timerfd` fires
//! at its time to within microseconds and wakes the runtime through its epoll like any socket.
//! Elsewhere than on Linux this falls back to tokio's timer.

#[cfg(not(target_os = "linux"))]
pub use tokio_timer::PreciseSleep;
#[cfg(target_os = "linux")]
pub use timerfd::PreciseSleep;

#[cfg(target_os = "linux")]
mod timerfd {
    use std::{
        io,
        os::fd::{AsRawFd, FromRawFd, OwnedFd},
        time::{Duration, Instant},
    };

    use tokio::io::unix::AsyncFd;

    /// One timer, for one task: armed for each wait in turn.
    pub struct PreciseSleep {
        fd: AsyncFd<OwnedFd>,
    }

    impl PreciseSleep {
        pub fn new() -> io::Result<Self> {
            // SAFETY: timerfd_create takes no pointers; a non-negative result is a new descriptor
            // that nothing else owns.
            let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor (checked above), owned from here on.
            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an OwnedFd stays open, and gives the same descriptor, until it is dropped,
            // which only the AsyncFd that holds it does.
            let fd = unsafe { AsyncFd::register(owned) }.map_err(io::Error::from)?;
            Ok(Self { fd })
        }

        /// Returns at `moment`, or at once if it has passed.
        pub async fn until(&self, moment: Instant) -> io::Result<()> {
            let left = moment.saturating_duration_since(Instant::now());
            // A zero time would disarm the timer instead of firing it.
            if left < Duration::from_micros(1) {
                return Ok(());
            }
            self.arm(left)?;
            // The expiry wakes the runtime's epoll (edge-triggered) once; forgetting that readiness
            // is enough, since arming the timer again resets it: no read of its count needed.
            self.fd.readable().await?.clear_ready();
            Ok(())
        }

        /// Fire once, `after` from now.
        fn arm(&self, after: Duration) -> io::Result<()> {
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec { tv_sec: after.as_secs() as libc::time_t, tv_nsec: after.subsec_nanos() as libc::c_long },
            };
            // SAFETY: the descriptor is ours and open; `spec` outlives the call; no old value is asked for.
            let done = unsafe { libc::timerfd_settime(self.fd.get_ref().as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if done < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod tokio_timer {
    use std::{io, time::Instant};

    /// tokio's timer: to the millisecond, rounded up.
    pub struct PreciseSleep;

    impl PreciseSleep {
        pub fn new() -> io::Result<Self> {
            Ok(Self)
        }

        pub async fn until(&self, moment: Instant) -> io::Result<()> {
            tokio::time::sleep_until(moment.into()).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test]
    async fn it_returns_at_its_moment_not_before() {
        let timer = PreciseSleep::new().unwrap();
        for wait_us in [300, 1_500, 2_250] {
            let moment = Instant::now() + Duration::from_micros(wait_us);
            timer.until(moment).await.unwrap();
            assert!(Instant::now() >= moment, "returned before a moment {wait_us} µs ahead");
        }
        let passed = Instant::now() - Duration::from_millis(5);
        timer.until(passed).await.unwrap();
    }
}
