//! Web push: RFC 8030 (the protocol), RFC 8291 (aes128gcm encryption with `ring`: see
//! `encrypt.rs`) and RFC 8292 (VAPID, signed here: see `vapid.rs`).
//!
//! Answers: 201/202 sent; 404/410 gone (deactivate the subscription); 413 permanent; 429 rate
//! limited (honouring `Retry-After`); 5xx and no answer in time transient. A 401/403 means the
//! service refused our token, so the cached one for that origin is dropped.
//!
//! The push client is not the SMS one: it resolves names through [`endpoint::GuardedResolver`]
//! (unless local endpoints are allowed), so that a resident's endpoint cannot reach inside.

mod encrypt;
mod endpoint;
mod payload;
pub(crate) mod vapid;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Client, StatusCode, header};

pub use endpoint::check_push_endpoint;
pub(crate) use encrypt::encrypt;

use super::{
    Address, Channel, ChannelKind, Message, PushTarget, SendError, Sent,
    http::{self, Answer, transport_error},
    settings::{ChannelSettings, bad, needed},
    wrong_address,
};
use crate::config::ConfigError;

use vapid::{Vapid, decode_b64url};

/// The push settings, checked.
pub(crate) struct PushSettings {
    vapid: Vapid,
    allow_local: bool,
}

impl PushSettings {
    /// `None` when no VAPID key is set (the dev outbox takes pushes).
    pub(crate) fn parse(s: &ChannelSettings) -> Result<Option<PushSettings>, ConfigError> {
        let Some(key) = &s.vapid_private_key else { return Ok(None) };
        let subject = needed(&s.vapid_subject, "HEJNAL_VAPID_SUBJECT", "HEJNAL_VAPID_PRIVATE_KEY")?;
        let vapid = Vapid::new(key, subject).map_err(|(key, reason)| bad(key, reason))?;
        Ok(Some(PushSettings { vapid, allow_local: s.push_allow_local }))
    }
}

pub struct PushChannel {
    client: Client,
    vapid: Vapid,
    allow_local: bool,
}

impl PushChannel {
    /// `concurrency` caps the idle connections kept to each push service, as for SMS gateways.
    pub(crate) fn new(settings: PushSettings, timeout: std::time::Duration, concurrency: usize) -> Result<PushChannel, reqwest::Error> {
        let mut builder = http::builder(timeout).pool_max_idle_per_host(concurrency);
        if !settings.allow_local {
            builder = builder.dns_resolver(Arc::new(endpoint::GuardedResolver));
        }
        let client = builder.build()?;
        Ok(PushChannel { client, vapid: settings.vapid, allow_local: settings.allow_local })
    }

    fn encrypt(&self, target: &PushTarget, plaintext: &[u8]) -> Result<Vec<u8>, SendError> {
        // Bad keys will not get better: the subscription is broken, not the push service.
        let ua_public = decode_b64url(&target.p256dh)
            .ok_or_else(|| SendError::Permanent("the subscription's p256dh is not base64url".into()))?;
        let auth: [u8; 16] = decode_b64url(&target.auth)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| SendError::Permanent("the subscription's auth is not 16 bytes of base64url".into()))?;
        encrypt(plaintext, &ua_public, &auth).map_err(|e| match e {
            encrypt::EncryptError::Random => SendError::Transient(e.to_string()),
            _ => SendError::Permanent(e.to_string()),
        })
    }
}

#[async_trait]
impl Channel for PushChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Push
    }

    fn name(&self) -> &str {
        "webpush"
    }

    async fn send(&self, to: &Address, msg: &Message) -> Result<Sent, SendError> {
        let Address::Push(target) = to else { return Err(wrong_address(ChannelKind::Push, to)) };
        check_push_endpoint(&target.endpoint, self.allow_local).map_err(SendError::Permanent)?;
        let url = url::Url::parse(&target.endpoint).map_err(|e| SendError::Permanent(e.to_string()))?;
        let origin = url.origin().ascii_serialization();
        let body = self.encrypt(target, &payload::payload(msg)?)?;
        let mut request = self
            .client
            .post(url)
            .header(header::AUTHORIZATION, self.vapid.authorization(&origin))
            .header("TTL", msg.ttl.as_secs())
            .header("Urgency", if msg.urgent { "high" } else { "normal" })
            .header(header::CONTENT_ENCODING, "aes128gcm")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if let Some(topic) = &msg.topic {
            request = request.header("Topic", payload::topic(topic));
        }
        let answer = Answer::read(request.send().await.map_err(transport_error)?).await?;
        if matches!(answer.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            self.vapid.forget(&origin);
        }
        payload::answer(&answer, &msg.reference)
    }
}
