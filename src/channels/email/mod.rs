//! Email over SMTP: lettre builds the message and speaks the protocol; the connections come from
//! our own small pool (`pool.rs`) so that each socket has TCP_NODELAY and holds its writes until
//! a read (`stream.rs`), and the mail transaction is ours (`transaction.rs`), pipelined when the
//! server offers it.
//!
//! Classification: an SMTP 4xx reply is transient and a 5xx permanent, but only within the mail
//! transaction (MAIL, RCPT, DATA). Whatever fails before it (connecting, TLS, the greeting, AUTH)
//! says nothing about the message, so it is transient, as is a server that does not finish in
//! time.

mod dkim;
mod message;
mod pool;
mod stream;
mod target;
mod transaction;

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;

use super::{
    Address, Channel, ChannelKind, Message, SendError, Sent,
    settings::{ChannelSettings, bad, needed},
    wrong_address,
};
use crate::config::ConfigError;

use dkim::DkimSigner;
use pool::{Failure, SmtpPool};
use target::SmtpTarget;

/// The email settings, checked.
pub(crate) struct EmailSettings {
    target: SmtpTarget,
    from: Mailbox,
    domain: String,
    dkim: Option<DkimSigner>,
}

impl EmailSettings {
    /// `None` when no SMTP URL is set (the dev outbox takes email).
    pub(crate) fn parse(s: &ChannelSettings) -> Result<Option<EmailSettings>, ConfigError> {
        let Some(url) = &s.smtp_url else { return Ok(None) };
        let target = SmtpTarget::parse(url).map_err(|e| bad("HEJNAL_SMTP_URL", e))?;
        let from = needed(&s.email_from, "HEJNAL_EMAIL_FROM", "HEJNAL_SMTP_URL")?;
        let from: Mailbox = from
            .parse()
            .map_err(|e| bad("HEJNAL_EMAIL_FROM", format!("{from:?} is not an address like Hejnał <noreply@example.org>: {e}")))?;
        let domain = from.email.domain().to_owned();
        let dkim = dkim_signer(s, &domain)?;
        Ok(Some(EmailSettings { target, from, domain, dkim }))
    }
}

/// The DKIM signer, when a selector and key file are set (both or neither).
fn dkim_signer(s: &ChannelSettings, from_domain: &str) -> Result<Option<DkimSigner>, ConfigError> {
    let (selector, path) = match (&s.dkim_selector, &s.dkim_key_file) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(bad("HEJNAL_DKIM_KEY_FILE", "must be set when HEJNAL_DKIM_SELECTOR is set")),
        (None, Some(_)) => return Err(bad("HEJNAL_DKIM_SELECTOR", "must be set when HEJNAL_DKIM_KEY_FILE is set")),
        (Some(selector), Some(path)) => (selector, path),
    };
    let pem = std::fs::read_to_string(path).map_err(|e| bad("HEJNAL_DKIM_KEY_FILE", format!("cannot read {path}: {e}")))?;
    let domain = s.dkim_domain.as_deref().unwrap_or(from_domain);
    let signer = DkimSigner::new(domain, selector, &pem).map_err(|(key, reason)| match key {
        "HEJNAL_DKIM_KEY_FILE" => bad(key, format!("{path} {reason}")),
        _ => bad(key, reason),
    })?;
    Ok(Some(signer))
}

pub struct EmailChannel {
    pool: SmtpPool,
    from: Mailbox,
    domain: String,
    dkim: Option<DkimSigner>,
    timeout: Duration,
}

impl EmailChannel {
    pub(crate) fn new(settings: EmailSettings, timeout: Duration) -> EmailChannel {
        if let Some(dkim) = &settings.dkim {
            // The operator publishes this; it is public, so it may be logged.
            let (name, record) = dkim.dns_record();
            tracing::info!(%name, %record, "email is DKIM-signed; the TXT record must be published at this name");
        }
        EmailChannel { pool: SmtpPool::new(settings.target), from: settings.from, domain: settings.domain, dkim: settings.dkim, timeout }
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn name(&self) -> &str {
        "smtp"
    }

    async fn send(&self, to: &Address, msg: &Message) -> Result<Sent, SendError> {
        let Address::Email(address) = to else { return Err(wrong_address(ChannelKind::Email, to)) };
        let email = message::build(&self.from, &self.domain, address, msg)?;
        let data = match &self.dkim {
            Some(dkim) => dkim.sign(&email.formatted(), unix_now()).map_err(SendError::Transient)?,
            None => email.formatted(),
        };
        match tokio::time::timeout(self.timeout, self.pool.send(email.envelope(), &data)).await {
            // The message may have gone through before the server stalled on its last reply.
            Err(_) => Err(SendError::Unknown(format!(
                "the SMTP server did not finish within {} ms",
                self.timeout.as_millis()
            ))),
            Ok(Err(failure)) => Err(classify(failure)),
            Ok(Ok(response)) => {
                tracing::debug!(reference = %msg.reference, reply = ?response.first_line(), "email accepted");
                // The Message-ID, not the server's queue id: bounces quote the Message-ID.
                let id = message::message_id(&msg.reference, &self.domain);
                Ok(Sent { provider_id: id.trim_matches(['<', '>']).to_owned() })
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn classify(failure: Failure) -> SendError {
    match failure {
        Failure::Connect(text) => SendError::Transient(format!("SMTP connection: {text}")),
        Failure::Transaction(e) => classify_reply(e.status().map(u16::from), e.is_client(), e.to_string()),
        Failure::Refused(why) => SendError::Permanent(why),
    }
}

/// Within a transaction: 4xx transient, 5xx permanent; a message lettre itself refuses to send
/// (say, 8-bit content to a 7-bit server) is permanent; a lost connection is transient.
fn classify_reply(code: Option<u16>, refused_by_client: bool, text: String) -> SendError {
    match code {
        Some(400..=499) => SendError::Transient(text),
        Some(500..=599) => SendError::Permanent(text),
        _ if refused_by_client => SendError::Permanent(text),
        _ => SendError::Transient(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_replies_are_classified_by_their_first_digit() {
        assert!(matches!(classify_reply(Some(451), false, "451".into()), SendError::Transient(_)));
        assert!(matches!(classify_reply(Some(421), false, "421".into()), SendError::Transient(_)));
        assert!(matches!(classify_reply(Some(550), false, "550".into()), SendError::Permanent(_)));
        assert!(matches!(classify_reply(Some(552), false, "552".into()), SendError::Permanent(_)));
        assert!(matches!(classify_reply(None, true, "8bit".into()), SendError::Permanent(_)));
        assert!(matches!(classify_reply(None, false, "reset".into()), SendError::Transient(_)));
    }

    #[test]
    fn connection_failures_are_transient_and_a_message_the_server_cannot_take_is_permanent() {
        assert!(matches!(classify(Failure::Connect("refused".into())), SendError::Transient(_)));
        assert!(matches!(classify(Failure::Refused("no SMTPUTF8".into())), SendError::Permanent(_)));
    }

    #[test]
    fn email_settings_name_their_variable() {
        let s = |url: &str, from: Option<&str>| ChannelSettings {
            smtp_url: Some(url.into()),
            email_from: from.map(Into::into),
            ..ChannelSettings::default()
        };
        let key = |s: ChannelSettings| EmailSettings::parse(&s).err().unwrap().key;
        assert_eq!(key(s("mailto:x", Some("a@b.c"))), "HEJNAL_SMTP_URL");
        assert_eq!(key(s("smtp://relay", None)), "HEJNAL_EMAIL_FROM");
        assert_eq!(key(s("smtp://relay", Some("not an address"))), "HEJNAL_EMAIL_FROM");
        let ok = EmailSettings::parse(&s("smtp://relay", Some("Hejnał <noreply@krakow.pl>"))).unwrap().unwrap();
        assert_eq!(ok.domain, "krakow.pl");
    }
}
