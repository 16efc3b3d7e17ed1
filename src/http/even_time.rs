//! Answers whose timing could tell whether a contact is known come no sooner than a floor
//! after the request arrived. Their status, headers and body are already the same for known
//! and unknown contacts (`tests/api/attacks/enumeration.rs`), but the work behind them is not:
//! a sign-up for a new address inserts a subscriber and a contact and queues a verification,
//! one for a known address inserts nothing. Measured against `hejnal serve` on SQLite, 300 of
//! each in turn on one connection: medians of 4.1 ms for new addresses against 3.3 ms for
//! known ones, enough for a patient caller to tell them apart. With the floor of 100 ms the
//! medians were 102.90 and 102.92 ms.
//!
//! The floor hides the difference only while the work fits in it. Under heavy load it does
//! not: in the enumeration test (a debug build, 32 sign-ups at once, beside the other tests)
//! new addresses took medians of 375-428 ms against 127-315 ms for known ones. One caller
//! cannot make that load alone, being held to the public rate limit, but a crowd could.

use std::{future::Future, time::Duration};

use tokio::time::{Instant, sleep_until};

/// Run `work`, then wait until `floor` has passed since it started; errors wait too, because
/// an error's timing may also depend on what was found.
pub async fn no_sooner_than<T>(floor: Duration, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = work.await;
    sleep_until(started + floor).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quick_work_waits_for_the_floor_and_slow_work_does_not_wait_more() {
        let floor = Duration::from_millis(100);
        let started = Instant::now();
        assert_eq!(no_sooner_than(floor, async { 7 }).await, 7);
        assert_eq!(started.elapsed(), floor, "quick work answers at the floor");
        let started = Instant::now();
        no_sooner_than(floor, tokio::time::sleep(Duration::from_millis(250))).await;
        assert_eq!(started.elapsed(), Duration::from_millis(250), "slow work answers when it is done");
        let started = Instant::now();
        no_sooner_than(Duration::ZERO, async {}).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "no floor, no wait");
    }
}
