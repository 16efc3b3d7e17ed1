//! What the HTTP adapters (SMS gateways, web push) share: the client, and reading answers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{
    Client, ClientBuilder, StatusCode,
    header::{HeaderMap, RETRY_AFTER},
};

use super::SendError;

/// When a 429 names no time, wait this long: long enough not to hammer, short enough for alerts.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// A provider asking for more than this is clamped; the retry schedule can always wait longer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);
/// How much of an error answer is kept in the error text.
const ERROR_TEXT_LIMIT: usize = 300;

/// A client with keep-alive, made once per adapter family and shared by every send. It keeps
/// at most `concurrency` idle connections to a host: no more requests than that are ever in
/// flight to one provider, so any more would only hold their read and write buffers.
pub(crate) fn client(timeout: Duration, concurrency: usize) -> Result<Client, reqwest::Error> {
    builder(timeout).pool_max_idle_per_host(concurrency).build()
}

/// The settings every provider client has. `timeout` bounds a whole request (connect, send,
/// answer). Redirects are not followed: a provider that redirects a POST is misconfigured, and
/// for push a redirect could lead inside our network.
pub(crate) fn builder(timeout: Duration) -> ClientBuilder {
    Client::builder()
        .user_agent(concat!("hejnal/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(60))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
}

/// A request that got no HTTP answer. A failed connection may succeed later (transient); a
/// timeout or a broken exchange may also have been sent (unknown); a request we could not even
/// build will not succeed. The URL is left out of the text: push endpoints
/// are capabilities, and some gateways take credentials in the query.
pub(crate) fn transport_error(e: reqwest::Error) -> SendError {
    let e = e.without_url();
    if e.is_builder() {
        return SendError::Permanent(format!("request could not be built: {e}"));
    }
    // A connection that was never made sent nothing; any other timeout or break came after the
    // request may have left, so the provider may have taken the message.
    let (what, maybe_sent) = if e.is_connect() {
        ("could not connect", false)
    } else if e.is_timeout() {
        ("timed out", true)
    } else {
        ("failed", true)
    };
    // The source chain says why (DNS, TLS, reset), which the top-level message often does not.
    let mut cause = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let text = format!("request {what}: {e}{}", if cause.is_empty() { String::new() } else { format!(" ({cause})") });
    if maybe_sent { SendError::Unknown(text) } else { SendError::Transient(text) }
}

/// An answer, read whole: its status, headers and (bounded) text.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub(crate) async fn read(response: reqwest::Response) -> Result<Answer, SendError> {
        let status = response.status();
        let headers = response.headers().clone();
        // A body that fails to arrive after a success status leaves the outcome unknown: retry,
        // and let the reference recognise the repeat.
        let body = response.text().await.map_err(transport_error)?;
        Ok(Answer { status, headers, body })
    }

    /// The provider's `Retry-After`, or the default.
    pub(crate) fn retry_after(&self) -> Duration {
        let value = self.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
        parse_retry_after(value, Utc::now())
    }

    /// For error texts: the status and the start of the body, on one line.
    pub(crate) fn describe(&self) -> String {
        let text: String =
            self.body.chars().take(ERROR_TEXT_LIMIT).map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("HTTP {}: {}", self.status.as_u16(), text.trim())
    }
}

/// The classes every HTTP provider shares: 429 asks us to wait, 408 and 5xx are the provider's
/// trouble, any other 4xx is ours and will not change by retrying. `None` for success.
pub(crate) fn classify_status(answer: &Answer) -> Option<SendError> {
    let status = answer.status;
    if status.is_success() {
        None
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        Some(SendError::RateLimited { retry_after: answer.retry_after() })
    } else if status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
        Some(SendError::Transient(answer.describe()))
    } else {
        Some(SendError::Permanent(answer.describe()))
    }
}

/// `Retry-After` is either seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: Option<&str>, now: DateTime<Utc>) -> Duration {
    let Some(value) = value.map(str::trim) else { return DEFAULT_RETRY_AFTER };
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(at) = DateTime::parse_from_rfc2822(value) {
        (at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO)
    } else {
        return DEFAULT_RETRY_AFTER;
    };
    wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(RETRY_AFTER, v.parse().unwrap());
        }
        Answer { status: StatusCode::from_u16(status).unwrap(), headers, body: "nope\r\nInjected: x".into() }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(parse_retry_after(Some("17"), now), Duration::from_secs(17));
        assert_eq!(parse_retry_after(Some("Sat, 10 Jan 2026 12:02:00 GMT"), now), Duration::from_secs(120));
        assert_eq!(parse_retry_after(Some("soon"), now), DEFAULT_RETRY_AFTER);
        assert_eq!(parse_retry_after(None, now), DEFAULT_RETRY_AFTER);
        assert_eq!(parse_retry_after(Some("0"), now), Duration::from_secs(1));
        assert_eq!(parse_retry_after(Some("999999"), now), MAX_RETRY_AFTER);
    }

    #[test]
    fn http_statuses_fall_into_the_four_classes() {
        assert_eq!(classify_status(&answer(200, None)), None);
        assert_eq!(
            classify_status(&answer(429, Some("5"))),
            Some(SendError::RateLimited { retry_after: Duration::from_secs(5) })
        );
        assert!(matches!(classify_status(&answer(500, None)), Some(SendError::Transient(_))));
        assert!(matches!(classify_status(&answer(503, None)), Some(SendError::Transient(_))));
        assert!(matches!(classify_status(&answer(408, None)), Some(SendError::Transient(_))));
        assert!(matches!(classify_status(&answer(400, None)), Some(SendError::Permanent(_))));
        assert!(matches!(classify_status(&answer(401, None)), Some(SendError::Permanent(_))));
    }

    #[test]
    fn error_texts_stay_on_one_line() {
        let text = answer(400, None).describe();
        assert_eq!(text, "HTTP 400: nope  Injected: x");
    }
}
