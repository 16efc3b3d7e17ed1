//! Residents end to end, on both backends, against a real SMTP server, an HTTP SMS gateway
//! and a web push receiver that verifies VAPID and decrypts the payload.

mod abuse;
mod inbound;
mod journey;
mod one_click;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD}};
use hejnal::{
    app::Role,
    config::{Config, Settings},
    testkit::{push::PushReceiver, sms::{SmsGateway, Style}, smtp::SmtpSink},
};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestEnv, eventually};

/// The app with every channel pointed at a real local peer.
pub struct Kit {
    pub app: TestApp,
    pub smtp: SmtpSink,
    pub sms: SmsGateway,
    pub push: PushReceiver,
    /// What the app was started with, for starting more processes like it.
    pub settings: Settings,
}

impl Kit {
    pub async fn start(env: &TestEnv) -> Kit {
        Kit::start_with(env, |_| {}).await
    }

    pub async fn start_with(env: &TestEnv, tweak: impl FnOnce(&mut Settings)) -> Kit {
        Kit::start_as(env, Role::Serve, tweak).await
    }

    /// The app in `role` (an API alone leaves the work to workers the test starts).
    pub async fn start_as(env: &TestEnv, role: Role, tweak: impl FnOnce(&mut Settings)) -> Kit {
        let (smtp, sms, push) = (SmtpSink::start().await, SmsGateway::start(Style::Webhook).await, PushReceiver::start().await);
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let mut s = env.settings();
        s.smtp_url = Some(smtp.url());
        s.email_from = Some("Hejnał Kraków <noreply@krakow.pl>".into());
        s.sms_provider = Some("webhook".into());
        s.sms_url = Some(format!("{}/sms", sms.base_url()));
        s.sms_token = Some("gateway-token".into());
        s.sms_sender = Some("KRAKOW".into());
        s.vapid_private_key = Some(URL_SAFE_NO_PAD.encode(key.to_bytes()));
        s.vapid_subject = Some("mailto:ops@krakow.pl".into());
        s.push_allow_local = true;
        s.provider_timeout_ms = 5_000;
        s.sms_inbound_secret = Some("inbound-secret".into());
        tweak(&mut s);
        let app = TestApp::spawn_with(Config::from_settings(s.clone()).unwrap(), role).await;
        Kit { app, smtp, sms, push, settings: s }
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.app.client.post(format!("{}{path}", self.app.address)).json(body).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.app.client.put(format!("{}{path}", self.app.address)).json(body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.app.client.delete(format!("{}{path}", self.app.address)).send().await.unwrap()
    }

    /// The plain-text part of the `n`-th email, decoded, once it has arrived.
    pub async fn email_text(&self, n: usize) -> String {
        let smtp = &self.smtp;
        let data = eventually(Duration::from_secs(30), "an email", || async move { smtp.received().get(n).map(|m| m.data.clone()) }).await;
        text_part(&data)
    }

    /// The text of the `n`-th SMS the gateway received.
    pub async fn sms_text(&self, n: usize) -> Value {
        let sms = &self.sms;
        eventually(Duration::from_secs(30), "an SMS", || async move { sms.requests().get(n).map(|r| r.json()) }).await
    }
}

/// A sign-up body with every contact, for `phone` and `email`.
pub fn signup(email: &str, phone: &str, push: &hejnal::channels::PushTarget) -> Value {
    json!({
        "districts": ["podgorze", "debniki"],
        "interests": ["water"],
        "language": "en",
        "email": email,
        "phone": phone,
        "push": {"endpoint": push.endpoint, "keys": {"p256dh": push.p256dh, "auth": push.auth}},
        "quiet_hours": {"from": "22:00", "to": "07:00"}
    })
}

/// The first `/{prefix}/…` link in a text, up to whitespace.
pub fn link_after(text: &str, prefix: &str) -> String {
    let start = text.find(prefix).unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"));
    let rest = &text[start..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// Decode the text/plain part of a MIME message (quoted-printable, base64 or plain).
fn text_part(data: &str) -> String {
    let part = data
        .split("\r\n--")
        .find(|p| p.contains("Content-Type: text/plain"))
        .unwrap_or(data);
    let (head, body) = part.split_once("\r\n\r\n").unwrap_or(("", part));
    let body = body.split("\r\n--").next().unwrap_or(body);
    if head.contains("Content-Transfer-Encoding: base64") {
        let raw: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        String::from_utf8(STANDARD.decode(raw).expect("base64 part")).unwrap()
    } else if head.contains("Content-Transfer-Encoding: quoted-printable") {
        decode_qp(&body.replace("=\r\n", ""))
    } else {
        body.to_owned()
    }
}

fn decode_qp(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
