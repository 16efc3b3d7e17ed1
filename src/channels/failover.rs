//! One channel over several providers, by weight, with failover (as GOV.UK Notify does for SMS).
//!
//! Each message goes to a provider chosen at random in proportion to its *share*: its configured
//! weight times its health. Health is 1 for a provider that works. Every failure that is the
//! provider's trouble (transient, rate-limited, timed out) halves it, down to a floor, and time
//! restores it: it climbs back linearly to 1 over the restore period. So a provider that keeps
//! failing is left with a sliver of the traffic (enough to notice when it comes back), and one
//! that recovers gets its share back gradually rather than all at once.
//!
//! A try that fails that way moves on, in the same attempt, to another provider (chosen the
//! same way among those not tried yet). A message refused as such (permanent, gone) is not
//! tried elsewhere: the number or the text is at fault, not the provider.
//!
//! Health is kept per process: each worker learns on its own, from its own sends, within a few
//! failures.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use rand::Rng;

use super::{Address, Channel, ChannelKind, Message, SendError, Sent, Traced, throttle::Throttle};

/// The lowest health: a failing provider keeps this fraction of its weight, so it still gets
/// the odd message and its recovery is noticed.
pub const FLOOR: f64 = 1.0 / 64.0;

/// One provider of the channel.
pub struct Member {
    pub name: String,
    /// Its share of traffic when healthy, relative to the others; 0 is a standby, used only
    /// when every weighted provider has failed a message.
    pub weight: u32,
    pub channel: Arc<dyn Channel>,
    /// The provider's own limits, beyond the channel's.
    pub throttle: Option<Throttle>,
}

/// A provider's health: `level` at `since`, climbing back to 1 over the restore period.
#[derive(Debug, Clone, Copy)]
struct Health {
    level: f64,
    since: Instant,
}

impl Health {
    fn at(&self, now: Instant, restore: Duration) -> f64 {
        let regained = now.saturating_duration_since(self.since).as_secs_f64() / restore.as_secs_f64();
        (self.level + regained).min(1.0)
    }

    fn failed(&mut self, now: Instant, restore: Duration) {
        self.level = (self.at(now, restore) / 2.0).max(FLOOR);
        self.since = now;
    }
}

pub struct Failover {
    kind: ChannelKind,
    members: Vec<Member>,
    health: Mutex<Vec<Health>>,
    restore: Duration,
}

impl Failover {
    /// `restore`: how long a provider at the floor takes to get its whole weight back.
    pub fn new(kind: ChannelKind, members: Vec<Member>, restore: Duration) -> Failover {
        let now = Instant::now();
        let health = Mutex::new(members.iter().map(|_| Health { level: 1.0, since: now }).collect());
        Failover { kind, members, health, restore: restore.max(Duration::from_millis(1)) }
    }

    fn current_shares(&self, now: Instant) -> Vec<f64> {
        let health = self.lock();
        self.members.iter().zip(health.iter()).map(|(m, h)| f64::from(m.weight) * h.at(now, self.restore)).collect()
    }

    fn failed(&self, index: usize) {
        let mut health = self.lock();
        health[index].failed(Instant::now(), self.restore);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Health>> {
        // Only arithmetic happens under the lock; a poisoned list is still a valid list.
        self.health.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send_with(&self, member: &Member, to: &Address, msg: &Message) -> Result<Sent, SendError> {
        let _permit = match &member.throttle {
            Some(throttle) => Some(throttle.acquire(msg.urgent).await),
            None => None,
        };
        member.channel.send(to, msg).await
    }
}

/// The index of the provider to try next among those not `tried`: at random by share, or the
/// first untried one when every remaining share is zero (standbys). `roll` is in `0..1`.
fn pick(shares: &[f64], tried: &[bool], roll: f64) -> Option<usize> {
    let open = || shares.iter().enumerate().filter(|(i, _)| !tried[*i]);
    let total: f64 = open().map(|(_, s)| s).sum();
    if total <= 0.0 {
        return open().map(|(i, _)| i).next();
    }
    let mut left = roll * total;
    let mut last = None;
    for (i, share) in open().filter(|(_, s)| **s > 0.0) {
        if left < *share {
            return Some(i);
        }
        left -= share;
        last = Some(i);
    }
    last
}

#[async_trait]
impl Channel for Failover {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn name(&self) -> &str {
        "failover"
    }

    async fn send(&self, to: &Address, msg: &Message) -> Result<Sent, SendError> {
        self.send_traced(to, msg).await.result
    }

    async fn send_traced(&self, to: &Address, msg: &Message) -> Traced {
        let mut tried = vec![false; self.members.len()];
        let mut failed_over = Vec::new();
        loop {
            let roll = rand::thread_rng().gen_range(0.0..1.0);
            let index = pick(&self.current_shares(Instant::now()), &tried, roll).expect("a failover channel has a provider");
            tried[index] = true;
            let member = &self.members[index];
            let result = self.send_with(member, to, msg).await;
            let trouble = result.as_ref().err().filter(|e| e.is_provider_trouble()).cloned();
            let Some(error) = trouble else {
                return Traced { provider: member.name.clone(), result, failed_over };
            };
            self.failed(index);
            metrics::counter!("hejnal_provider_failures_total", "channel" => self.kind.as_str(), "provider" => member.name.clone()).increment(1);
            if tried.iter().all(|t| *t) {
                return Traced { provider: member.name.clone(), result: Err(error), failed_over };
            }
            tracing::debug!(provider = %member.name, error = %error, "provider failed; trying another");
            failed_over.push((member.name.clone(), error));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_the_shares_and_skip_what_was_tried() {
        let shares = [3.0, 1.0, 0.0];
        assert_eq!(pick(&shares, &[false; 3], 0.0), Some(0));
        assert_eq!(pick(&shares, &[false; 3], 0.74), Some(0));
        assert_eq!(pick(&shares, &[false; 3], 0.76), Some(1));
        assert_eq!(pick(&shares, &[true, false, false], 0.0), Some(1));
        // Only the standby is left: it is used although its weight is zero.
        assert_eq!(pick(&shares, &[true, true, false], 0.5), Some(2));
        assert_eq!(pick(&shares, &[true, true, true], 0.5), None);
    }

    #[test]
    fn failures_halve_health_down_to_the_floor_and_time_restores_it() {
        let restore = Duration::from_secs(100);
        let start = Instant::now();
        let mut h = Health { level: 1.0, since: start };
        h.failed(start, restore);
        assert_eq!(h.at(start, restore), 0.5);
        for _ in 0..20 {
            h.failed(start, restore);
        }
        assert_eq!(h.at(start, restore), FLOOR);
        // Linear: a tenth of the period gives back a tenth of full health.
        let later = start + Duration::from_secs(10);
        assert!((h.at(later, restore) - (FLOOR + 0.1)).abs() < 1e-9);
        assert_eq!(h.at(start + restore, restore), 1.0);
    }

    #[test]
    fn a_provider_that_keeps_failing_keeps_less_than_a_tenth_of_an_equal_split() {
        let restore = Duration::from_secs(300);
        let start = Instant::now();
        let mut h = Health { level: 1.0, since: start };
        // Seven failures in the first second of an outage.
        for i in 0..7 {
            h.failed(start + Duration::from_millis(i * 100), restore);
        }
        let level = h.at(start + Duration::from_secs(1), restore);
        let share = level / (level + 1.0);
        assert!(share < 0.1, "the failing provider still gets {share}");
    }
}
