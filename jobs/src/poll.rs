//! How idle workers ask the broker for work.
//!
//! apalis-core 1.0's `IntervalStrategy` replaces its timer when it fires but does not poll the
//! new one, so no waker is armed for the next tick. `PollWith` ignores the strategy's answer,
//! and when the fetch that follows returns nothing, the worker sleeps until its next heartbeat.
//! Measured here on Redis: emergency jobs now and then waited up to the 5 s heartbeat, during a
//! routine flood (p99 4.9 s; docs/performance.md). `Tick` always leaves a waker armed. The
//! upstream fix is in `patches/apalis-core-interval-strategy.md`.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use tokio::time::{Interval, MissedTickBehavior};

pub(crate) struct Tick {
    interval: Interval,
}

impl Tick {
    pub(crate) fn every(period: Duration) -> Tick {
        let mut interval = tokio::time::interval(period);
        // After a busy stretch, poll once, not a burst of catch-up polls.
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Tick { interval }
    }
}

impl PollStrategy for Tick {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = false;
        // Poll until Pending: that last poll registers the waker for the next tick.
        while self.interval.poll_tick(cx).is_ready() {
            fired = true;
        }
        if fired { Poll::Ready(Some(())) } else { Poll::Pending }
    }
}
