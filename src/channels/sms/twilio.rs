//! A Twilio-style gateway: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with basic auth
//! `sid:secret` and form fields `To`, `From`, `Body`; it answers 201 `{"sid":"SM…"}`, or an error
//! status with JSON `{"code": …, "message": …}`. The API has no field for our reference, so it
//! travels in the `X-Hejnal-Reference` header (visible in the provider's request logs).

use reqwest::RequestBuilder;
use serde::Deserialize;

use crate::channels::{
    Message, SendError, Sent,
    http::{Answer, classify_status},
};

/// "Attempt to send to unsubscribed recipient": the person replied STOP; the number is gone to us.
const UNSUBSCRIBED: i64 = 21610;

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct Failure {
    code: Option<i64>,
}

pub(super) fn request(post: RequestBuilder, phone: &str, sender: &str, msg: &Message) -> RequestBuilder {
    post.header("X-Hejnal-Reference", &msg.reference)
        .form(&[("To", phone), ("From", sender), ("Body", msg.text.as_str())])
}

pub(super) fn answer(answer: &Answer) -> Result<Sent, SendError> {
    if let Some(error) = classify_status(answer) {
        let code = serde_json::from_str::<Failure>(&answer.body).ok().and_then(|f| f.code);
        return Err(match (code, error) {
            (Some(UNSUBSCRIBED), _) => SendError::Gone(answer.describe()),
            (_, error) => error,
        });
    }
    match serde_json::from_str::<Created>(&answer.body) {
        Ok(created) if !created.sid.is_empty() => Ok(Sent { provider_id: created.sid }),
        _ => Err(SendError::Permanent(format!("gateway answered without a sid: {}", answer.describe()))),
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
    fn the_sid_is_the_provider_id() {
        assert_eq!(reply(201, r#"{"sid":"SM123","status":"queued"}"#), Ok(Sent { provider_id: "SM123".into() }));
    }

    #[test]
    fn twilio_errors_are_classified() {
        let invalid = r#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#;
        assert!(matches!(reply(400, invalid), Err(SendError::Permanent(_))));
        let stopped = r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}"#;
        assert!(matches!(reply(400, stopped), Err(SendError::Gone(_))));
        assert!(matches!(reply(429, r#"{"code":20429}"#), Err(SendError::RateLimited { .. })));
        assert!(matches!(reply(503, ""), Err(SendError::Transient(_))));
    }
}
