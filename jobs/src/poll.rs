//! How idle workers ask the broker for work.
//!
//! Each ask is a transaction on the broker (on SQLite: BEGIN, a claiming UPDATE that apalis
//! prepares anew each time, COMMIT; on Redis: a Lua script). At a fixed 10 ms per lane, an idle
//! `hejnal serve` took 10-12% of a core and about 4,400 thread switches a second doing nothing
//! (docs/performance.md, session 23). So a lane asks every `busy` period while it finds work
//! and for the first second after, then ever less often, a tenth of the time it has been idle,
//! up to `idle`. Work released into the broker by this process's own pump nudges the lane at
//! once, so an idle lane still takes local work without waiting for its next ask.
//!
//! apalis-core 1.0's `IntervalStrategy` replaces its timer when it fires but does not poll the
//! new one, so no waker is armed for the next tick. `PollWith` ignores the strategy's answer,
//! and when the fetch that follows returns nothing, the worker sleeps until its next heartbeat.
//! Measured here on Redis: emergency jobs now and then waited up to the 5 s heartbeat, during a
//! routine flood (p99 4.9 s; docs/performance.md). `Tick` always leaves a waker armed. The
//! upstream fix is in `patches/apalis-core-interval-strategy.md`.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use tokio::{
    sync::{Notify, futures::OwnedNotified},
    time::{Instant, Sleep},
};

use crate::Lane;

/// How long a lane keeps asking at the busy period after it last found work.
const STAY_BUSY: Duration = Duration::from_secs(1);

pub(crate) struct Tick {
    busy: Duration,
    idle: Duration,
    last_work: Instant,
    next: Pin<Box<Sleep>>,
    nudges: Arc<Notify>,
    nudged: Pin<Box<OwnedNotified>>,
    lane: Lane,
    asks: Arc<AtomicU64>,
}

impl Tick {
    /// Ask every `busy` while there is work, back off to every `idle` without it, and at once
    /// when `nudges` is notified. Each ask adds one to `asks`.
    pub(crate) fn new(lane: Lane, busy: Duration, idle: Duration, nudges: Arc<Notify>, asks: Arc<AtomicU64>) -> Tick {
        let now = Instant::now();
        Tick {
            busy,
            idle: idle.max(busy),
            last_work: now,
            next: Box::pin(tokio::time::sleep_until(now + busy)),
            nudged: Box::pin(nudges.clone().notified_owned()),
            nudges,
            lane,
            asks,
        }
    }

    /// The wait before the next ask, `idle_for` after the lane last found work.
    fn period(&self, idle_for: Duration) -> Duration {
        if idle_for < STAY_BUSY { self.busy } else { (idle_for / 10).clamp(self.busy, self.idle) }
    }

    /// Whether the nudge fired; leaves a fresh one armed either way.
    fn poll_nudge(&mut self, cx: &mut Context<'_>) -> bool {
        let mut fired = false;
        while self.nudged.as_mut().poll(cx).is_ready() {
            fired = true;
            self.nudged = Box::pin(self.nudges.clone().notified_owned());
        }
        fired
    }

    /// Whether the timer fired; leaves it armed for the next ask either way.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        let mut fired = false;
        while self.next.as_mut().poll(cx).is_ready() {
            fired = true;
            let now = Instant::now();
            let wait = self.period(now - self.last_work);
            self.next.as_mut().reset(now + wait);
        }
        fired
    }
}

impl PollStrategy for Tick {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        // Both are polled every time, so that each keeps a waker.
        let nudged = self.poll_nudge(cx);
        let ticked = self.poll_timer(cx);
        if nudged || ticked {
            self.asks.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("hejnal_queue_polls_total", "lane" => self.lane.as_str()).increment(1);
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }

    fn on_poll(&mut self, snapshot: &PollSnapshot) {
        if snapshot.consecutive_ready > 0 {
            self.last_work = Instant::now();
            // Back from idle: the next ask comes a busy period from now, not a long one.
            let soon = self.last_work + self.busy;
            if self.next.deadline() > soon {
                self.next.as_mut().reset(soon);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn tick(busy_ms: u64, idle_ms: u64) -> Tick {
        Tick::new(Lane::Routine, Duration::from_millis(busy_ms), Duration::from_millis(idle_ms), Arc::new(Notify::new()), Arc::default())
    }

    #[tokio::test]
    async fn the_wait_stays_busy_for_a_second_then_grows_with_the_idle_time_up_to_the_idle_period() {
        let t = tick(10, 250);
        let ms = |n| Duration::from_millis(n);
        assert_eq!(t.period(ms(0)), ms(10));
        assert_eq!(t.period(ms(999)), ms(10), "busy for a second after the last work");
        assert_eq!(t.period(ms(1_000)), ms(100), "then a tenth of the idle time");
        assert_eq!(t.period(ms(2_000)), ms(200));
        assert_eq!(t.period(ms(60_000)), ms(250), "never more than the idle period");
        assert_eq!(tick(10, 5).period(ms(60_000)), ms(10), "an idle period below the busy one is the busy one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_nudge_asks_at_once_and_a_tick_comes_after_the_period() {
        let mut t = tick(10, 10_000);
        let mut cx = Context::from_waker(Waker::noop());
        let snapshot = PollSnapshot::default();
        assert!(t.poll_drive(&mut cx, &snapshot).is_pending(), "nothing is due at the start");
        t.nudges.notify_one();
        assert!(t.poll_drive(&mut cx, &snapshot).is_ready(), "a nudge asks at once");
        assert!(t.poll_drive(&mut cx, &snapshot).is_pending(), "one nudge, one ask");
        tokio::time::advance(Duration::from_millis(11)).await;
        assert!(t.poll_drive(&mut cx, &snapshot).is_ready(), "the busy period passed");
        assert!(t.poll_drive(&mut cx, &snapshot).is_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn finding_work_after_a_long_idle_brings_the_next_ask_back_to_the_busy_period() {
        let mut t = tick(10, 10_000);
        let mut cx = Context::from_waker(Waker::noop());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(t.poll_drive(&mut cx, &PollSnapshot::default()).is_ready());
        // Idle for a minute: the next ask is the idle period away.
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(t.poll_drive(&mut cx, &PollSnapshot::default()).is_pending(), "backed off");
        t.on_poll(&PollSnapshot { consecutive_ready: 1, ..PollSnapshot::default() });
        tokio::time::advance(Duration::from_millis(11)).await;
        assert!(t.poll_drive(&mut cx, &PollSnapshot::default()).is_ready(), "work found: busy again");
    }
}
