//! The generic, documented gateway contract:
//!
//! `POST {HEJNAL_SMS_URL}` with `Authorization: Bearer {HEJNAL_SMS_TOKEN}` (when set) and JSON
//! `{"to": "+48…", "text": "…", "reference": "<delivery id>", "sender": "<HEJNAL_SMS_SENDER>"}`.
//! A 2xx carrying `{"id": "…"}` means accepted. 429 (with `Retry-After` in seconds) asks us to
//! wait; 5xx or no answer in time is transient; any other 4xx is permanent. The gateway should
//! treat a repeated `reference` as the same message.

use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use crate::channels::{
    Message, SendError, Sent,
    http::{Answer, classify_status},
};

#[derive(Serialize)]
struct Request<'a> {
    to: &'a str,
    text: &'a str,
    reference: &'a str,
    sender: &'a str,
}

#[derive(Deserialize)]
struct Accepted {
    id: serde_json::Value,
}

pub(super) fn request(post: RequestBuilder, phone: &str, sender: &str, msg: &Message) -> RequestBuilder {
    post.json(&Request { to: phone, text: &msg.text, reference: &msg.reference, sender })
}

pub(super) fn answer(answer: &Answer) -> Result<Sent, SendError> {
    if let Some(error) = classify_status(answer) {
        return Err(error);
    }
    // A success without an id breaks the contract. It is not retried (the text may have gone
    // out), and it is not counted as sent: the failure shows the gateway needs fixing.
    let id = serde_json::from_str::<Accepted>(&answer.body).ok().and_then(|a| match a.id {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    match id {
        Some(provider_id) => Ok(Sent { provider_id }),
        None => Err(SendError::Permanent(format!("gateway answered without an id: {}", answer.describe()))),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::{StatusCode, header::HeaderMap};

    use super::*;

    fn reply(status: u16, body: &str) -> Result<Sent, SendError> {
        answer(&Answer { status: StatusCode::from_u16(status).unwrap(), headers: HeaderMap::new(), body: body.into() })
    }

    #[test]
    fn an_id_in_a_success_is_the_provider_id() {
        assert_eq!(reply(200, r#"{"id":"gw-1"}"#), Ok(Sent { provider_id: "gw-1".into() }));
        assert_eq!(reply(202, r#"{"id":42}"#), Ok(Sent { provider_id: "42".into() }));
    }

    #[test]
    fn a_success_without_an_id_is_a_permanent_failure() {
        assert!(matches!(reply(200, "OK"), Err(SendError::Permanent(_))));
        assert!(matches!(reply(200, r#"{"id":""}"#), Err(SendError::Permanent(_))));
    }
}
