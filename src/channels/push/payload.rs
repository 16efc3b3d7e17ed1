//! What a push carries and what its answer means.
//!
//! The payload, encrypted, is JSON for our service worker:
//! `{"title", "body", "url"?, "reference"}`. The service worker shows `title` and `body`, opens
//! `url`, and uses `reference` as the notification tag, so a repeated push replaces the shown
//! notification instead of adding a second one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header::LOCATION};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::channels::{
    Message, SendError, Sent,
    http::{Answer, classify_status},
};

/// Push services must take 4096 bytes of encrypted body (RFC 8030 §7.2); aes128gcm adds an
/// 86-byte header, a 16-byte tag and a 1-byte delimiter.
pub(crate) const MAX_PLAINTEXT: usize = 4096 - 86 - 16 - 1;

#[derive(Serialize)]
struct Payload<'a> {
    title: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    reference: &'a str,
}

/// The JSON payload, its body shortened (with "…") when the whole would not fit.
pub(crate) fn payload(msg: &Message) -> Result<Vec<u8>, SendError> {
    let mut body = msg.text.as_str();
    let mut shortened = String::new();
    loop {
        let text = if shortened.is_empty() { body } else { shortened.as_str() };
        let json = serde_json::to_vec(&Payload { title: &msg.subject, body: text, url: msg.link.as_deref(), reference: &msg.reference })
            .expect("strings serialise");
        if json.len() <= MAX_PLAINTEXT {
            return Ok(json);
        }
        if body.is_empty() {
            return Err(SendError::Permanent(format!("push payload is {} bytes even without its body; at most {MAX_PLAINTEXT}", json.len())));
        }
        // Cut at least the excess (escaping can make the JSON longer than the text), on a char boundary.
        let keep = body.len().saturating_sub(json.len() - MAX_PLAINTEXT + 3);
        let cut = (0..=keep).rev().find(|&i| body.is_char_boundary(i)).unwrap_or(0);
        body = &body[..cut];
        shortened = if body.is_empty() { String::new() } else { format!("{body}…") };
    }
}

/// A `Topic` must be at most 32 characters of the base64url alphabet (RFC 8030 §5.4). Any
/// other topic is replaced by a digest of it: the same topic still gives the same header.
pub(crate) fn topic(raw: &str) -> String {
    let valid = !raw.is_empty() && raw.len() <= 32 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid { raw.to_owned() } else { URL_SAFE_NO_PAD.encode(&Sha256::digest(raw.as_bytes())[..24]) }
}

/// The push service's answer, classified. 404 and 410 mean the subscription is gone.
pub(crate) fn answer(answer: &Answer, reference: &str) -> Result<Sent, SendError> {
    match answer.status {
        StatusCode::NOT_FOUND | StatusCode::GONE => return Err(SendError::Gone(answer.describe())),
        StatusCode::PAYLOAD_TOO_LARGE => return Err(SendError::Permanent(answer.describe())),
        _ => {}
    }
    if let Some(error) = classify_status(answer) {
        return Err(error);
    }
    // The push message resource (RFC 8030 §5), when the service names one.
    let location = answer.headers.get(LOCATION).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    Ok(Sent { provider_id: location.unwrap_or(reference).to_owned() })
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    fn reply(status: u16, location: Option<&str>) -> Result<Sent, SendError> {
        let mut headers = HeaderMap::new();
        if let Some(l) = location {
            headers.insert(LOCATION, l.parse().unwrap());
        }
        answer(&Answer { status: StatusCode::from_u16(status).unwrap(), headers, body: String::new() }, "ref-1")
    }

    #[test]
    fn push_answers_are_classified() {
        assert_eq!(reply(201, Some("https://push.example/m/1")), Ok(Sent { provider_id: "https://push.example/m/1".into() }));
        assert_eq!(reply(202, None), Ok(Sent { provider_id: "ref-1".into() }));
        assert!(matches!(reply(404, None), Err(SendError::Gone(_))));
        assert!(matches!(reply(410, None), Err(SendError::Gone(_))));
        assert!(matches!(reply(413, None), Err(SendError::Permanent(_))));
        assert!(matches!(reply(400, None), Err(SendError::Permanent(_))));
        assert!(matches!(reply(429, None), Err(SendError::RateLimited { .. })));
        assert!(matches!(reply(502, None), Err(SendError::Transient(_))));
    }

    #[test]
    fn topics_are_kept_when_valid_and_digested_otherwise() {
        assert_eq!(topic("notice-42_update"), "notice-42_update");
        let long = topic("notice:0190a6b2-7c1e-7d3a-9f00-1234567890ab");
        assert_eq!(long.len(), 32);
        assert!(long.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(long, topic("notice:0190a6b2-7c1e-7d3a-9f00-1234567890ab"));
    }

    #[test]
    fn a_long_body_is_shortened_to_fit_one_push() {
        let mut msg = Message::new("ref-1", "Alert", "ż\"".repeat(3000));
        msg.link = Some("https://hejnal.example/n/1".into());
        let json = payload(&msg).unwrap();
        assert!(json.len() <= MAX_PLAINTEXT, "{}", json.len());
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(value["body"].as_str().unwrap().ends_with('…'));
        assert_eq!(value["reference"], "ref-1");
        let short = Message::new("ref-2", "Alert", "Woda wraca o 18:00");
        let value: serde_json::Value = serde_json::from_slice(&payload(&short).unwrap()).unwrap();
        assert_eq!(value, serde_json::json!({"title": "Alert", "body": "Woda wraca o 18:00", "reference": "ref-2"}));
    }
}
