//! An SMSAPI.pl-style gateway: `POST {base}/sms.do` with a bearer token and form fields `to`,
//! `message`, `from`, `format=json` and `idx` (our reference, with `check_idx=1` so that the
//! gateway refuses a second message with the same reference). It answers
//! `{"count":1,"list":[{"id":"…"}]}`, or `{"error":<code>,"message":"…"}`, often with HTTP 200.

use std::time::Duration;

use reqwest::RequestBuilder;
use serde::Deserialize;

use crate::channels::{
    Message, SendError, Sent,
    http::{Answer, classify_status},
};

/// The idx was already used: a repeat of a message the gateway accepted before.
const DUPLICATE_IDX: i64 = 53;
/// Too many messages to one number in a short time.
const NUMBER_FLOODED: i64 = 52;
/// The gateway's own trouble, or too many requests.
const SYSTEM_ERROR: i64 = 201;
const TOO_MANY_REQUESTS: i64 = 203;

#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    list: Vec<Item>,
    error: Option<i64>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    id: serde_json::Value,
}

pub(super) fn request(post: RequestBuilder, phone: &str, sender: &str, msg: &Message) -> RequestBuilder {
    // SMSAPI numbers carry no '+'.
    let to = phone.trim_start_matches('+');
    post.form(&[
        ("to", to),
        ("message", msg.text.as_str()),
        ("from", sender),
        ("format", "json"),
        ("encoding", "utf-8"),
        ("idx", msg.reference.as_str()),
        ("check_idx", "1"),
    ])
}

pub(super) fn answer(answer: &Answer, reference: &str) -> Result<Sent, SendError> {
    let reply = serde_json::from_str::<Reply>(&answer.body).ok();
    // An error code says more than the status it came with (200 or 4xx, depending on the
    // gateway), except for 429 and 5xx, whose meaning does not depend on the body.
    let status_class = classify_status(answer);
    let code = reply.as_ref().and_then(|r| r.error);
    match (status_class, code) {
        (Some(error @ (SendError::RateLimited { .. } | SendError::Transient(_))), _) => return Err(error),
        (_, Some(code)) => {
            let message = reply.and_then(|r| r.message).unwrap_or_default();
            return by_code(code, format!("SMSAPI error {code}: {message}"), reference);
        }
        (Some(error), None) => return Err(error),
        (None, None) => {}
    }
    let id = reply.and_then(|r| r.list.into_iter().next()).map(|item| match item.id {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    // An answer without an id leaves the outcome unknown. Retrying is safe here: `check_idx`
    // turns a repeat of an accepted message into error 53, which counts as sent.
    id.filter(|id| !id.is_empty())
        .map(|provider_id| Sent { provider_id })
        .ok_or_else(|| SendError::Transient(format!("gateway answer has no id: {}", answer.describe())))
}

fn by_code(code: i64, text: String, reference: &str) -> Result<Sent, SendError> {
    match code {
        // The first attempt got through (its answer was lost): this is that message, sent.
        DUPLICATE_IDX => Ok(Sent { provider_id: format!("idx:{reference}") }),
        NUMBER_FLOODED => Err(SendError::RateLimited { retry_after: Duration::from_secs(60) }),
        TOO_MANY_REQUESTS => Err(SendError::RateLimited { retry_after: Duration::from_secs(5) }),
        SYSTEM_ERROR => Err(SendError::Transient(text)),
        _ => Err(SendError::Permanent(text)),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::{StatusCode, header::HeaderMap};

    use super::*;

    fn reply(status: u16, body: &str) -> Result<Sent, SendError> {
        let a = Answer { status: StatusCode::from_u16(status).unwrap(), headers: HeaderMap::new(), body: body.into() };
        answer(&a, "ref-1")
    }

    #[test]
    fn the_first_listed_id_is_the_provider_id() {
        let ok = reply(200, r#"{"count":1,"list":[{"id":"17823","points":0.16,"status":"QUEUE"}]}"#);
        assert_eq!(ok, Ok(Sent { provider_id: "17823".into() }));
    }

    #[test]
    fn error_codes_are_classified() {
        assert!(matches!(reply(200, r#"{"error":13,"message":"No correct phone numbers"}"#), Err(SendError::Permanent(_))));
        assert!(matches!(reply(200, r#"{"error":201,"message":"System error"}"#), Err(SendError::Transient(_))));
        assert_eq!(
            reply(200, r#"{"error":203,"message":"Too many requests"}"#),
            Err(SendError::RateLimited { retry_after: Duration::from_secs(5) })
        );
        assert!(matches!(reply(401, r#"{"error":101,"message":"Authorization failed"}"#), Err(SendError::Permanent(_))));
        assert!(matches!(reply(502, "Bad Gateway"), Err(SendError::Transient(_))));
    }

    #[test]
    fn a_repeated_reference_counts_as_sent() {
        let repeat = reply(200, r#"{"error":53,"message":"Not unique idx"}"#);
        assert_eq!(repeat, Ok(Sent { provider_id: "idx:ref-1".into() }));
        let repeat = reply(400, r#"{"error":53,"message":"Not unique idx"}"#);
        assert_eq!(repeat, Ok(Sent { provider_id: "idx:ref-1".into() }));
    }
}
