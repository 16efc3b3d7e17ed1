//! When to try a failed send again, read from the class of its [`SendError`] alone (see the
//! classification contract in the module documentation of `channels`).
//!
//! Every delay is jittered, so that the thousands of deliveries one provider outage failed
//! together do not all come back in the same second.

use std::time::Duration;

use rand::Rng;

use super::SendError;

/// Attempts a delivery gets in all; after the last one fails, it fails for good. Transient
/// failures are retried for about four minutes in all (2 + 4 + … + 128 s).
pub const MAX_ATTEMPTS: u32 = 8;

/// The first transient retry waits this long, nominally; each further one twice as long.
const FIRST_TRANSIENT_DELAY: Duration = Duration::from_secs(2);
/// The longest nominal transient delay.
const LONGEST_TRANSIENT_DELAY: Duration = Duration::from_secs(5 * 60);
/// Transient delays are the nominal one give or take this share of it.
const TRANSIENT_JITTER: f64 = 0.2;
/// A provider's `Retry-After` is waited out, plus up to this share of it (at least up to a
/// second), so that everything it slowed down does not return at once.
const RATE_LIMITED_JITTER: f64 = 0.1;

/// How long to wait before trying again, when attempt number `attempt` (counted from one)
/// failed with `error`; `None` when the delivery must not be tried again: the message or the
/// address is at fault (`Permanent`, `Gone`), or `attempt` was the last of [`MAX_ATTEMPTS`].
///
/// - `RateLimited`: the provider's `retry_after`, never less, plus a little jitter.
/// - `Transient`: nominally 2 s doubling with each attempt, at most 5 min, then ±20%, so the
///   longest delay is 6 min.
pub fn retry_delay(attempt: u32, error: &SendError) -> Option<Duration> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    match error {
        SendError::Permanent(_) | SendError::Gone(_) => None,
        SendError::RateLimited { retry_after } => Some(after_rate_limit(*retry_after)),
        SendError::Transient(_) | SendError::Unknown(_) => Some(after_transient(attempt)),
    }
}

fn after_rate_limit(retry_after: Duration) -> Duration {
    let spread = retry_after.mul_f64(RATE_LIMITED_JITTER).max(Duration::from_secs(1));
    retry_after + spread.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
}

fn after_transient(attempt: u32) -> Duration {
    let factor = rand::thread_rng().gen_range(1.0 - TRANSIENT_JITTER..=1.0 + TRANSIENT_JITTER);
    nominal_transient_delay(attempt).mul_f64(factor)
}

/// 2 s, 4 s, 8 s … for attempts 1, 2, 3 …, never more than 5 min.
fn nominal_transient_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_TRANSIENT_DELAY.saturating_mul(1 << doublings).min(LONGEST_TRANSIENT_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient() -> SendError {
        SendError::Transient("connection refused".into())
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn permanent_failures_and_gone_addresses_are_never_retried() {
        for attempt in 1..=MAX_ATTEMPTS {
            assert_eq!(retry_delay(attempt, &SendError::Permanent("invalid number".into())), None);
            assert_eq!(retry_delay(attempt, &SendError::Gone("410".into())), None);
        }
    }

    #[test]
    fn nothing_is_retried_after_the_last_attempt() {
        let limited = SendError::RateLimited { retry_after: Duration::from_secs(1) };
        for error in [transient(), limited] {
            assert!(retry_delay(MAX_ATTEMPTS - 1, &error).is_some(), "{error}");
            assert_eq!(retry_delay(MAX_ATTEMPTS, &error), None, "{error}");
            assert_eq!(retry_delay(MAX_ATTEMPTS + 1, &error), None, "{error}");
        }
    }

    #[test]
    fn a_rate_limited_send_waits_at_least_what_the_provider_asked() {
        for asked in [0, 1, 30, 600] {
            let retry_after = Duration::from_secs(asked);
            let most = retry_after + retry_after.mul_f64(0.1).max(Duration::from_secs(1));
            for attempt in 1..MAX_ATTEMPTS {
                let delay = retry_delay(attempt, &SendError::RateLimited { retry_after }).unwrap();
                assert!(delay >= retry_after && delay <= most, "asked {asked} s, waits {delay:?}");
            }
        }
    }

    #[test]
    fn transient_delays_double_from_two_seconds_within_twenty_percent() {
        for _ in 0..200 {
            for (attempt, nominal) in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (7, 128.0)] {
                let delay = secs(retry_delay(attempt, &transient()).unwrap());
                assert!((0.8 * nominal..=1.2 * nominal).contains(&delay), "attempt {attempt}: {delay} s");
            }
        }
    }

    #[test]
    fn transient_delays_stop_growing_at_five_minutes() {
        for attempt in [10, 20, 32, 1000, u32::MAX] {
            assert_eq!(nominal_transient_delay(attempt), Duration::from_secs(300), "attempt {attempt}");
        }
        assert_eq!(nominal_transient_delay(0), Duration::from_secs(2));
    }

    #[test]
    fn transient_delays_are_spread_out() {
        let delays: Vec<Duration> = (0..50).map(|_| retry_delay(3, &transient()).unwrap()).collect();
        assert!(delays.iter().any(|d| *d != delays[0]), "50 delays all equal: {:?}", delays[0]);
        assert!(delays.iter().any(|d| secs(*d) < 8.0) && delays.iter().any(|d| secs(*d) > 8.0));
    }
}
