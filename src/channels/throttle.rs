//! Per-provider discipline: how many sends may be in flight at once, and how many may start
//! each second. A share of both is held back for emergencies, so that an alert finds room at
//! the provider while a routine campaign saturates it.
//!
//! - **Slots.** Of `concurrency` slots, routine work may hold at most `concurrency − reserve`;
//!   urgent work may hold them all. An urgent acquire that has to wait goes before every
//!   routine one: routine work takes no slot while urgent work is waiting.
//! - **Rate.** One token bucket for the whole provider, and a second, smaller one that only
//!   routine work passes as well: `rate × (100 − reserve) / 100` per second. Routine traffic
//!   therefore never takes more than its share of the provider's rate.
//!
//! Clocks: rate waits sleep on tokio's timer and the buckets read tokio's clock, so a paused
//! runtime (tests) controls them.

use std::{
    fmt,
    num::NonZeroU32,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use governor::{
    Quota, RateLimiter,
    clock::Clock,
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
};
use tokio::sync::Notify;

/// The highest emergency reserve: routine work keeps at least a tenth of the provider.
pub const MAX_EMERGENCY_RESERVE_PERCENT: u8 = 90;

/// The sending discipline of one provider. Share it (it sits in `Channels`); a clone of the
/// `Channels` shares the same throttles.
pub struct Throttle {
    slots: Arc<Slots>,
    rate: Option<Rates>,
}

/// A slot at the provider, given back when dropped.
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct ThrottlePermit {
    slots: Arc<Slots>,
    urgent: bool,
}

impl Throttle {
    /// A provider that takes `rate_per_second` sends a second (`None` or 0: no limit) and
    /// `concurrency` at once (at least 1). `emergency_reserve_percent` (at most 90) of both is
    /// kept for urgent work; of the slots, that share rounded up, but routine work always keeps
    /// one.
    pub fn new(rate_per_second: Option<u32>, concurrency: usize, emergency_reserve_percent: u8) -> Throttle {
        let reserve = emergency_reserve_percent.min(MAX_EMERGENCY_RESERVE_PERCENT);
        let rate = rate_per_second.and_then(NonZeroU32::new).map(|rate| Rates::new(rate, reserve));
        Throttle { slots: Arc::new(Slots::new(concurrency.max(1), reserve)), rate }
    }

    /// Wait for a slot and for the rate, then hold the slot until the permit is dropped.
    /// `urgent` (emergency work) may use the reserve and goes first.
    pub async fn acquire(&self, urgent: bool) -> ThrottlePermit {
        self.slots.take(urgent).await;
        // The permit exists before the rate wait, so a cancelled wait gives the slot back.
        let permit = ThrottlePermit { slots: Arc::clone(&self.slots), urgent };
        if let Some(rate) = &self.rate {
            rate.wait(urgent).await;
        }
        permit
    }

    /// Slots all work together may hold.
    pub fn concurrency(&self) -> usize {
        self.slots.capacity
    }

    /// Slots routine work may hold.
    pub fn routine_concurrency(&self) -> usize {
        self.slots.routine_capacity
    }

    /// Slots held now.
    pub fn in_use(&self) -> usize {
        self.slots.counts().held
    }
}

impl Drop for ThrottlePermit {
    fn drop(&mut self) {
        self.slots.give_back(self.urgent);
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("concurrency", &self.slots.capacity)
            .field("routine_concurrency", &self.slots.routine_capacity)
            .field("rate_per_second", &self.rate.as_ref().map(|r| r.per_second))
            .finish()
    }
}

impl fmt::Debug for ThrottlePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottlePermit").field("urgent", &self.urgent).finish()
    }
}

/// The slots of one provider: counts under a lock, and one notification per class of waiter.
/// A slot given back wakes one waiter, urgent if any waits, not all of them: a 1M campaign
/// keeps thousands of sends waiting for a slot (every delivery job's batch), and waking them all
/// on every send made the wake-ups the largest cost of sending email (perf: a third of the
/// service's CPU in `Notify`, `FuturesUnordered` wakes and the slot lock).
struct Slots {
    capacity: usize,
    routine_capacity: usize,
    counts: Mutex<Counts>,
    urgent_turn: Notify,
    routine_turn: Notify,
}

#[derive(Default)]
struct Counts {
    held: usize,
    routine_held: usize,
    urgent_waiting: usize,
}

impl Slots {
    fn new(capacity: usize, reserve_percent: u8) -> Slots {
        let reserved = (capacity * usize::from(reserve_percent)).div_ceil(100).min(capacity - 1);
        Slots {
            capacity,
            routine_capacity: capacity - reserved,
            counts: Mutex::default(),
            urgent_turn: Notify::new(),
            routine_turn: Notify::new(),
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The lock guards plain arithmetic that cannot panic halfway; a poisoned lock still
        // holds consistent counts.
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn take(&self, urgent: bool) {
        if self.try_take(urgent) {
            return;
        }
        let _waiting = urgent.then(|| UrgentWaiting::register(self));
        let turn = if urgent { &self.urgent_turn } else { &self.routine_turn };
        loop {
            // Registered before the check, so a slot given back in between still wakes us. A
            // waiter woken by `notify_one` and then dropped passes its wake-up on (tokio's
            // `Notified` does), so a cancelled send loses no slot's turn.
            let mut turn = pin!(turn.notified());
            turn.as_mut().enable();
            if self.try_take(urgent) {
                return;
            }
            turn.await;
        }
    }

    fn try_take(&self, urgent: bool) -> bool {
        let mut counts = self.counts();
        let allowed = counts.held < self.capacity
            && (urgent || (counts.routine_held < self.routine_capacity && counts.urgent_waiting == 0));
        if allowed {
            counts.held += 1;
            counts.routine_held += usize::from(!urgent);
        }
        allowed
    }

    fn give_back(&self, urgent: bool) {
        let mut counts = self.counts();
        counts.held -= 1;
        counts.routine_held -= usize::from(!urgent);
        let urgent_waits = counts.urgent_waiting > 0;
        drop(counts);
        // One slot, one waiter. A routine waiter woken for an urgent slot it may not take
        // sleeps again; the slot is then only urgent work's anyway.
        if urgent_waits { self.urgent_turn.notify_one() } else { self.routine_turn.notify_one() }
    }
}

/// An urgent acquire that is waiting, counted so that routine work lets it pass; uncounted when
/// it gets its slot or is cancelled.
struct UrgentWaiting<'a>(&'a Slots);

impl<'a> UrgentWaiting<'a> {
    fn register(slots: &'a Slots) -> UrgentWaiting<'a> {
        slots.counts().urgent_waiting += 1;
        UrgentWaiting(slots)
    }
}

impl Drop for UrgentWaiting<'_> {
    fn drop(&mut self) {
        let mut counts = self.0.counts();
        counts.urgent_waiting -= 1;
        let last = counts.urgent_waiting == 0;
        drop(counts);
        if last {
            // Routine waiters held back for urgent work may go now, as many as there are free
            // slots: rare (once per emergency's wait), so all of them look.
            self.0.routine_turn.notify_waiters();
        }
    }
}

/// governor reading tokio's clock.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// The provider's bucket, and routine work's smaller one.
struct Rates {
    per_second: u32,
    all: Bucket,
    routine: Bucket,
}

impl Rates {
    fn new(per_second: NonZeroU32, reserve_percent: u8) -> Rates {
        Rates {
            per_second: per_second.get(),
            all: RateLimiter::direct_with_clock(Quota::per_second(per_second), TokioClock),
            routine: RateLimiter::direct_with_clock(routine_quota(per_second, reserve_percent), TokioClock),
        }
    }

    async fn wait(&self, urgent: bool) {
        if !urgent {
            wait_for(&self.routine).await;
        }
        wait_for(&self.all).await;
    }
}

/// `per_second × (100 − reserve) / 100` a second, kept exact below one a second (a period
/// rather than a count), with a burst of one second's worth.
fn routine_quota(per_second: NonZeroU32, reserve_percent: u8) -> Quota {
    let hundredths_per_second = u64::from(per_second.get()) * u64::from(100 - reserve_percent);
    let period = Duration::from_nanos((100 * 1_000_000_000 / hundredths_per_second).max(1));
    let burst = u32::try_from(hundredths_per_second / 100).ok().and_then(NonZeroU32::new).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).expect("the period is at least a nanosecond").allow_burst(burst)
}

async fn wait_for(bucket: &Bucket) {
    while let Err(not_until) = bucket.check() {
        tokio::time::sleep(not_until.wait_time_from(TokioClock.now())).await;
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;
    use tokio::time::{Instant, timeout};

    use super::*;

    /// Whether `acquire` would wait: under paused time, an idle runtime jumps to the deadline.
    async fn waits(throttle: &Throttle, urgent: bool) -> bool {
        timeout(Duration::from_secs(3600), throttle.acquire(urgent)).await.is_err()
    }

    #[tokio::test(start_paused = true)]
    async fn routine_work_leaves_the_reserve_to_emergencies() {
        let throttle = Throttle::new(None, 4, 25);
        assert_eq!((throttle.concurrency(), throttle.routine_concurrency()), (4, 3));
        let campaign: Vec<ThrottlePermit> = (0..3).map(|_| throttle.acquire(false).now_or_never().unwrap()).collect();
        assert!(waits(&throttle, false).await, "a 4th routine send must wait");
        let alert = throttle.acquire(true).now_or_never();
        assert!(alert.is_some(), "the emergency must get the reserved slot at once");
        assert_eq!(throttle.in_use(), 4);
        drop(campaign);
        assert_eq!(throttle.in_use(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_work_may_use_every_slot() {
        let throttle = Throttle::new(None, 4, 25);
        let held: Vec<ThrottlePermit> = (0..4).map(|_| throttle.acquire(true).now_or_never().unwrap()).collect();
        assert!(waits(&throttle, true).await, "a 5th send must wait, urgent or not");
        drop(held);
        assert!(throttle.acquire(false).now_or_never().is_some());
    }

    /// A slot given back wakes one waiter, not all: none may be lost, whether waiters are
    /// routine or urgent, or give up (a cancelled wait passes its turn on).
    #[tokio::test(start_paused = true)]
    async fn hundreds_of_waiters_all_get_a_slot_in_turn_even_when_some_give_up() {
        let throttle = Arc::new(Throttle::new(None, 3, 34));
        let held: Vec<ThrottlePermit> = (0..3).map(|_| throttle.acquire(true).now_or_never().unwrap()).collect();
        let mut sends = Vec::new();
        for i in 0..300 {
            let throttle = Arc::clone(&throttle);
            sends.push(tokio::spawn(async move {
                let urgent = i % 10 == 0;
                if i % 7 == 0 {
                    // Gives up if still queued after 1 ms: its place must not swallow a slot's turn.
                    return timeout(Duration::from_millis(1), throttle.acquire(urgent)).await.is_err();
                }
                let permit = throttle.acquire(urgent).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                drop(permit);
                false
            }));
        }
        tokio::task::yield_now().await;
        drop(held);
        let all = timeout(Duration::from_secs(3600), futures::future::join_all(sends)).await.expect("every waiter got a slot");
        let gave_up = all.into_iter().filter(|gave_up| *gave_up.as_ref().unwrap()).count();
        assert!(gave_up > 0, "some waits gave up while queued, which is what this checks");
        assert_eq!(throttle.in_use(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_given_back_goes_to_a_waiting_emergency_first() {
        let throttle = Arc::new(Throttle::new(None, 4, 25));
        let mut held: Vec<ThrottlePermit> = (0..4).map(|_| throttle.acquire(true).now_or_never().unwrap()).collect();
        let routine = tokio::spawn({
            let throttle = Arc::clone(&throttle);
            async move { drop(throttle.acquire(false).await) }
        });
        tokio::task::yield_now().await;
        let urgent = tokio::spawn({
            let throttle = Arc::clone(&throttle);
            async move { throttle.acquire(true).await }
        });
        tokio::task::yield_now().await;
        held.pop();
        let urgent_permit = timeout(Duration::from_secs(1), urgent).await.expect("the emergency got the slot").unwrap();
        assert!(!routine.is_finished(), "the routine send queued first but must still wait");
        held.pop();
        timeout(Duration::from_secs(1), routine).await.expect("the routine send got the next slot").unwrap();
        drop(urgent_permit);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_emergency_wait_does_not_hold_routine_work_back() {
        let throttle = Throttle::new(None, 4, 25);
        let mut campaign: Vec<ThrottlePermit> = (0..3).map(|_| throttle.acquire(false).now_or_never().unwrap()).collect();
        let _alert = throttle.acquire(true).now_or_never().unwrap();
        assert!(waits(&throttle, true).await, "every slot is taken, so this emergency waits and gives up");
        campaign.pop();
        assert!(throttle.acquire(false).now_or_never().is_some(), "no emergency waits any more");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_spaces_sends_after_a_burst_of_one_second() {
        let throttle = Throttle::new(Some(10), 100, 25);
        let start = Instant::now();
        for _ in 0..30 {
            drop(throttle.acquire(true).await);
        }
        // 10 at once, then 20 more at 10 a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn routine_traffic_gets_only_its_share_of_the_rate() {
        let throttle = Arc::new(Throttle::new(Some(10), 100, 50));
        let campaign = tokio::spawn({
            let throttle = Arc::clone(&throttle);
            async move {
                let start = Instant::now();
                let mut sent = 0;
                while start.elapsed() < Duration::from_secs(10) {
                    drop(throttle.acquire(false).await);
                    sent += 1;
                }
                sent
            }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        let start = Instant::now();
        for _ in 0..5 {
            drop(throttle.acquire(true).await);
        }
        assert!(start.elapsed() <= Duration::from_secs(1), "emergencies waited {:?} behind the campaign", start.elapsed());
        // 5 at once, then 5 a second for 10 s: half the provider's 10 a second.
        let sent = campaign.await.unwrap();
        assert!((50..=56).contains(&sent), "{sent} routine sends in 10 s");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_nothing_waits_for_time() {
        let throttle = Throttle::new(Some(0), 1, 25);
        let start = Instant::now();
        for _ in 0..10_000 {
            drop(throttle.acquire(false).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[test]
    fn the_reserve_rounds_up_but_routine_work_keeps_a_slot() {
        let routine = |concurrency, reserve| Throttle::new(None, concurrency, reserve).routine_concurrency();
        assert_eq!(routine(64, 25), 48);
        assert_eq!(routine(32, 25), 24);
        assert_eq!(routine(10, 25), 7);
        assert_eq!(routine(2, 25), 1);
        assert_eq!(routine(1, 25), 1);
        assert_eq!(routine(10, 0), 10);
        assert_eq!(routine(10, 90), 1);
        assert_eq!(routine(10, 255), 1, "a reserve above 90% counts as 90%");
        assert_eq!(Throttle::new(None, 0, 25).concurrency(), 1);
    }

    #[test]
    fn the_routine_rate_is_the_rest_of_the_provider_rate() {
        let per_period = |rate, reserve| {
            let quota = routine_quota(NonZeroU32::new(rate).unwrap(), reserve);
            (quota.replenish_interval(), quota.burst_size().get())
        };
        assert_eq!(per_period(100, 25), (Duration::from_nanos(13_333_333), 75));
        assert_eq!(per_period(10, 50), (Duration::from_millis(200), 5));
        assert_eq!(per_period(1, 25), (Duration::from_nanos(1_333_333_333), 1));
        assert_eq!(per_period(u32::MAX, 0).1, u32::MAX);
    }
}
