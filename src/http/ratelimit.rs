//! Per-IP rate limit of the public endpoints. Over the limit: 429 with `Retry-After`. It
//! limits by the peer address; behind a proxy every resident would share one address, so run
//! the proxy's own limit there (see README).

use std::{net::{IpAddr, SocketAddr}, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::{Clock, DefaultClock}};

use super::error::ApiError;

#[derive(Clone)]
pub struct PublicLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl PublicLimiter {
    /// `per_hour` requests an hour per address, all of them at once if need be.
    pub fn per_hour(per_hour: u32) -> Self {
        let n = NonZeroU32::new(per_hour.max(1)).unwrap();
        PublicLimiter { limiter: Arc::new(RateLimiter::keyed(Quota::per_hour(n).allow_burst(n))) }
    }

    /// Ok, or the 429 to answer (with `Retry-After`).
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.limiter.check_key(&ip.unwrap_or(IpAddr::from([0, 0, 0, 0]))).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            metrics::counter!("hejnal_rate_limited_total").increment(1);
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests from this address; try again later")
                .with_retry_after(wait.as_secs().max(1))
        })
    }

    pub fn new(per_minute: u32, burst: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap())
            .allow_burst(NonZeroU32::new(burst.max(1)).unwrap());
        PublicLimiter { limiter: Arc::new(RateLimiter::keyed(quota)) }
    }
}

pub async fn limit(State(limiter): State<PublicLimiter>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    match limiter.check(Some(ip)) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}
