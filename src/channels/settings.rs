//! What the channel adapters are configured with. The fields mirror the flat `Settings` of
//! `crate::config` (environment names `HEJNAL_<FIELD>`); `Config::from_settings` copies them here
//! and calls [`ChannelSettings::check`], so a wrong value stops the process at start.

use std::{fmt, str::FromStr, time::Duration};

use hejnal_jobs::broker::redact;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

use super::{ChannelKind, email, push, sms, throttle::MAX_EMERGENCY_RESERVE_PERCENT};

/// Where the process runs. In production every channel needs a real provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "development" => Ok(Environment::Development),
            "production" => Ok(Environment::Production),
            other => Err(format!("{other:?} is not one of development, production")),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ChannelSettings {
    /// `HEJNAL_ENVIRONMENT`.
    pub environment: Environment,
    /// `HEJNAL_SMS_PROVIDER`: `webhook`, `smsapi` or `twilio`; unset means the dev outbox.
    pub sms_provider: Option<String>,
    /// `HEJNAL_SMS_URL`: the webhook's URL, or the base URL of SMSAPI or Twilio.
    pub sms_url: Option<String>,
    /// `HEJNAL_SMS_TOKEN` (secret): a bearer token; for Twilio `AccountSid:AuthToken`.
    pub sms_token: Option<String>,
    /// `HEJNAL_SMS_SENDER`: the sender name or number.
    pub sms_sender: Option<String>,
    /// `HEJNAL_SMS_NAME`: what the first SMS provider is called in records and metrics;
    /// unset means its adapter's name (`webhook`, `smsapi`, `twilio`).
    pub sms_name: Option<String>,
    /// `HEJNAL_SMS_WEIGHT`: the first SMS provider's share of traffic, relative to the others.
    pub sms_weight: u32,
    /// `HEJNAL_SMS_TIMEOUT_MS`: the longest one request to the first SMS provider may take;
    /// unset means `HEJNAL_PROVIDER_TIMEOUT_MS`.
    pub sms_timeout_ms: Option<u64>,
    /// `sms_providers` (configuration file): more SMS providers, after the first.
    pub sms_providers: Vec<SmsProviderEntry>,
    /// `HEJNAL_SMS_FAILOVER_RESTORE_SECS`: how long a failing SMS provider takes to get its
    /// whole weight back once it stops failing.
    pub sms_failover_restore_secs: u64,
    /// `HEJNAL_SMTP_URL`: `smtp://[user:password@]host[:port][?tls=required|opportunistic]` or
    /// `smtps://…`; unset means the dev outbox.
    pub smtp_url: Option<String>,
    /// `HEJNAL_EMAIL_FROM`: `Name <address>` or a bare address.
    pub email_from: Option<String>,
    /// `HEJNAL_DKIM_SELECTOR`: sign email with DKIM under this selector (with the key file).
    pub dkim_selector: Option<String>,
    /// `HEJNAL_DKIM_KEY_FILE`: the DKIM private key, a PEM file (PKCS#8 RSA or Ed25519, or PKCS#1 RSA).
    pub dkim_key_file: Option<String>,
    /// `HEJNAL_DKIM_DOMAIN`: the signing domain (`d=`); unset means the From address's domain.
    pub dkim_domain: Option<String>,
    /// `HEJNAL_VAPID_PRIVATE_KEY` (secret): base64url of the P-256 scalar (`hejnal vapid-keygen`);
    /// unset means the dev outbox.
    pub vapid_private_key: Option<String>,
    /// `HEJNAL_VAPID_SUBJECT`: `mailto:…` or an `https://` URL push services can reach us at.
    pub vapid_subject: Option<String>,
    /// `HEJNAL_PUSH_ALLOW_LOCAL`: also allow `http://` and local push endpoints (tests, dev).
    pub push_allow_local: bool,
    /// `HEJNAL_PROVIDER_TIMEOUT_MS`: the longest one provider request may take, end to end.
    pub provider_timeout_ms: u64,
    /// `HEJNAL_EMAIL_TIMEOUT_MS`: the same for one SMTP transaction; unset means the above.
    pub email_timeout_ms: Option<u64>,
    /// `HEJNAL_PUSH_TIMEOUT_MS`: the same for one push request; unset means the above.
    pub push_timeout_ms: Option<u64>,
    /// `HEJNAL_SMS_RATE`: SMS a second the provider takes; unset or 0: no limit.
    pub sms_rate: Option<u32>,
    /// `HEJNAL_SMS_CONCURRENCY`: SMS requests in flight at once, per process.
    pub sms_concurrency: usize,
    /// `HEJNAL_EMAIL_RATE`: emails a second the SMTP relay takes; unset or 0: no limit.
    pub email_rate: Option<u32>,
    /// `HEJNAL_EMAIL_CONCURRENCY`: emails in flight at once, per process.
    pub email_concurrency: usize,
    /// `HEJNAL_PUSH_RATE`: pushes a second; unset or 0: no limit.
    pub push_rate: Option<u32>,
    /// `HEJNAL_PUSH_CONCURRENCY`: push requests in flight at once, per process.
    pub push_concurrency: usize,
    /// `HEJNAL_EMERGENCY_RESERVE_PERCENT`: the share of every provider's concurrency and rate
    /// that routine work leaves to emergencies (0 to 90).
    pub emergency_reserve_percent: u8,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        ChannelSettings {
            environment: Environment::Development,
            sms_provider: None,
            sms_url: None,
            sms_token: None,
            sms_sender: None,
            sms_name: None,
            sms_weight: 100,
            sms_timeout_ms: None,
            sms_providers: Vec::new(),
            sms_failover_restore_secs: 300,
            smtp_url: None,
            email_from: None,
            dkim_selector: None,
            dkim_key_file: None,
            dkim_domain: None,
            vapid_private_key: None,
            vapid_subject: None,
            push_allow_local: false,
            provider_timeout_ms: 10_000,
            email_timeout_ms: None,
            push_timeout_ms: None,
            sms_rate: None,
            sms_concurrency: 64,
            email_rate: None,
            email_concurrency: 32,
            push_rate: None,
            push_concurrency: 64,
            emergency_reserve_percent: 25,
        }
    }
}

impl ChannelSettings {
    pub fn provider_timeout(&self) -> Duration {
        Duration::from_millis(self.provider_timeout_ms)
    }

    /// The longest one request to the provider of `kind` may take (the first SMS provider's,
    /// for SMS).
    pub fn timeout(&self, kind: ChannelKind) -> Duration {
        let own = match kind {
            ChannelKind::Sms => self.sms_timeout_ms,
            ChannelKind::Email => self.email_timeout_ms,
            ChannelKind::Push => self.push_timeout_ms,
        };
        Duration::from_millis(own.unwrap_or(self.provider_timeout_ms))
    }

    /// The longest one SMS attempt may take when it fails over through every provider.
    pub fn sms_attempt_timeout(&self) -> Duration {
        let first = self.timeout(ChannelKind::Sms);
        let more = self.sms_providers.iter().map(|p| Duration::from_millis(p.timeout_ms.unwrap_or(self.provider_timeout_ms)));
        first + more.sum::<Duration>()
    }

    /// Sends a second the provider of `kind` takes; `None` for no limit (unset or 0).
    pub fn rate(&self, kind: ChannelKind) -> Option<u32> {
        let rate = match kind {
            ChannelKind::Sms => self.sms_rate,
            ChannelKind::Email => self.email_rate,
            ChannelKind::Push => self.push_rate,
        };
        rate.filter(|&r| r > 0)
    }

    /// Sends to the provider of `kind` in flight at once, per process.
    pub fn concurrency(&self, kind: ChannelKind) -> usize {
        match kind {
            ChannelKind::Sms => self.sms_concurrency,
            ChannelKind::Email => self.email_concurrency,
            ChannelKind::Push => self.push_concurrency,
        }
    }

    /// Check every channel setting without connecting anywhere; the first wrong one is reported.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("HEJNAL_PROVIDER_TIMEOUT_MS", Some(self.provider_timeout_ms)),
            ("HEJNAL_SMS_TIMEOUT_MS", self.sms_timeout_ms),
            ("HEJNAL_EMAIL_TIMEOUT_MS", self.email_timeout_ms),
            ("HEJNAL_PUSH_TIMEOUT_MS", self.push_timeout_ms),
            ("HEJNAL_SMS_FAILOVER_RESTORE_SECS", Some(self.sms_failover_restore_secs)),
        ] {
            if value == Some(0) {
                return Err(bad(key, "must be greater than 0"));
            }
        }
        self.check_throttles()?;
        if self.push_allow_local && self.environment == Environment::Production {
            // Residents choose push endpoints; in production they must not reach our own network.
            return Err(bad("HEJNAL_PUSH_ALLOW_LOCAL", "must not be true in production"));
        }
        let sms = sms::SmsSettings::parse(self)?.is_some();
        let email = email::EmailSettings::parse(self)?.is_some();
        let push = push::PushSettings::parse(self)?.is_some();
        for (kind, configured) in [(ChannelKind::Sms, sms), (ChannelKind::Email, email), (ChannelKind::Push, push)] {
            if !configured && self.environment == Environment::Production {
                return Err(bad(
                    required_for(kind),
                    format!("must be set in production; without it {kind} messages would only reach the dev outbox"),
                ));
            }
        }
        Ok(())
    }

    /// Every provider needs a slot; routine work keeps some of every provider.
    fn check_throttles(&self) -> Result<(), ConfigError> {
        for kind in ChannelKind::ALL {
            if self.concurrency(kind) == 0 {
                return Err(bad(&format!("HEJNAL_{}_CONCURRENCY", kind.as_str().to_ascii_uppercase()), "must be greater than 0"));
            }
        }
        if self.emergency_reserve_percent > MAX_EMERGENCY_RESERVE_PERCENT {
            return Err(bad(
                "HEJNAL_EMERGENCY_RESERVE_PERCENT",
                format!("must be between 0 and {MAX_EMERGENCY_RESERVE_PERCENT}: routine work needs some of every provider"),
            ));
        }
        Ok(())
    }
}

/// One more SMS provider, from the configuration file's `[[sms_providers]]` tables. The fields
/// are those of the first provider's `HEJNAL_SMS_*` settings, plus its own limits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsProviderEntry {
    /// Unique; what records and metrics call it.
    pub name: String,
    /// `webhook`, `smsapi` or `twilio`.
    pub provider: String,
    pub url: Option<String>,
    /// Secret.
    pub token: Option<String>,
    /// Unset: the first provider's sender.
    pub sender: Option<String>,
    /// Its share of traffic, relative to the others (default 100; 0 is a standby).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Unset: `HEJNAL_PROVIDER_TIMEOUT_MS`.
    pub timeout_ms: Option<u64>,
    /// Messages a second this provider takes, per process; unset: no limit of its own.
    pub rate: Option<u32>,
    /// Its requests in flight at once, per process; unset: no limit of its own.
    pub concurrency: Option<usize>,
}

fn default_weight() -> u32 {
    100
}

impl fmt::Debug for SmsProviderEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsProviderEntry")
            .field("name", &self.name)
            .field("provider", &self.provider)
            .field("url", &self.url.as_deref().map(redact))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("weight", &self.weight)
            .field("timeout_ms", &self.timeout_ms)
            .finish_non_exhaustive()
    }
}

/// The variable that turns a channel from the dev outbox into a real provider.
pub(crate) fn required_for(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Sms => "HEJNAL_SMS_PROVIDER",
        ChannelKind::Email => "HEJNAL_SMTP_URL",
        ChannelKind::Push => "HEJNAL_VAPID_PRIVATE_KEY",
    }
}

/// A wrong channel setting, named by its environment variable.
pub(crate) fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), reason: reason.into() }
}

/// A setting another one needs.
pub(crate) fn needed<'a>(value: &'a Option<String>, key: &str, by: &str) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or_else(|| bad(key, format!("must be set when {by} is set")))
}

// Secrets (the SMS token, the SMTP password, the VAPID key) never reach logs through Debug.
impl fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("ChannelSettings")
            .field("environment", &self.environment)
            .field("sms_provider", &self.sms_provider)
            .field("sms_url", &self.sms_url.as_deref().map(redact))
            .field("sms_token", &hidden(&self.sms_token))
            .field("sms_sender", &self.sms_sender)
            .field("sms_name", &self.sms_name)
            .field("sms_weight", &self.sms_weight)
            .field("sms_timeout_ms", &self.sms_timeout_ms)
            .field("sms_providers", &self.sms_providers)
            .field("sms_failover_restore_secs", &self.sms_failover_restore_secs)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact))
            .field("email_from", &self.email_from)
            .field("dkim_selector", &self.dkim_selector)
            .field("dkim_key_file", &self.dkim_key_file)
            .field("dkim_domain", &self.dkim_domain)
            .field("vapid_private_key", &hidden(&self.vapid_private_key))
            .field("vapid_subject", &self.vapid_subject)
            .field("push_allow_local", &self.push_allow_local)
            .field("provider_timeout_ms", &self.provider_timeout_ms)
            .field("email_timeout_ms", &self.email_timeout_ms)
            .field("push_timeout_ms", &self.push_timeout_ms)
            .field("sms_rate", &self.sms_rate)
            .field("sms_concurrency", &self.sms_concurrency)
            .field("email_rate", &self.email_rate)
            .field("email_concurrency", &self.email_concurrency)
            .field("push_rate", &self.push_rate)
            .field("push_concurrency", &self.push_concurrency)
            .field("emergency_reserve_percent", &self.emergency_reserve_percent)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_every_secret() {
        let s = ChannelSettings {
            sms_token: Some("tok-123".into()),
            smtp_url: Some("smtp://mailer:hunter2@relay.example:587?tls=required".into()),
            vapid_private_key: Some("c2VjcmV0LXNjYWxhcg".into()),
            ..ChannelSettings::default()
        };
        let shown = format!("{s:?}");
        for secret in ["tok-123", "hunter2", "c2VjcmV0LXNjYWxhcg"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("relay.example:587"), "{shown}");
    }

    #[test]
    fn production_refuses_local_push_endpoints() {
        let s = ChannelSettings { environment: Environment::Production, push_allow_local: true, ..ChannelSettings::default() };
        assert_eq!(s.check().unwrap_err().key, "HEJNAL_PUSH_ALLOW_LOCAL");
    }

    #[test]
    fn throttle_settings_are_checked_and_named_by_their_variable() {
        let s = ChannelSettings { email_concurrency: 0, ..ChannelSettings::default() };
        assert_eq!(s.check().unwrap_err().key, "HEJNAL_EMAIL_CONCURRENCY");
        let s = ChannelSettings { emergency_reserve_percent: 91, ..ChannelSettings::default() };
        let e = s.check().unwrap_err();
        assert_eq!(e.key, "HEJNAL_EMERGENCY_RESERVE_PERCENT");
        assert!(e.reason.contains("between 0 and 90"), "{e}");
        assert!(ChannelSettings { emergency_reserve_percent: 90, ..ChannelSettings::default() }.check().is_ok());
    }

    #[test]
    fn a_rate_of_zero_means_no_limit() {
        let s = ChannelSettings { sms_rate: Some(0), email_rate: Some(20), ..ChannelSettings::default() };
        assert_eq!((s.rate(ChannelKind::Sms), s.rate(ChannelKind::Email), s.rate(ChannelKind::Push)), (None, Some(20), None));
        let d = ChannelSettings::default();
        assert_eq!(ChannelKind::ALL.map(|k| d.concurrency(k)), [64, 32, 64]);
        assert_eq!(d.emergency_reserve_percent, 25);
    }

    #[test]
    fn the_environment_is_development_or_production() {
        assert_eq!("production".parse::<Environment>(), Ok(Environment::Production));
        assert!("prod".parse::<Environment>().unwrap_err().contains("development, production"));
    }
}
