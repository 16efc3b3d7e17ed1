//! SMS through an HTTP gateway: a generic webhook, or APIs shaped after SMSAPI.pl and Twilio.
//! One shared `reqwest::Client` (keep-alive, the provider timeout) serves every send.

mod smsapi;
pub mod text;
mod twilio;
mod webhook;

use std::str::FromStr;

use async_trait::async_trait;
use reqwest::{Client, RequestBuilder};
use url::Url;

use super::{
    Address, Channel, ChannelKind, Message, SendError, Sent,
    http::{Answer, transport_error},
    settings::{ChannelSettings, bad},
    wrong_address,
};
use crate::config::ConfigError;

pub use text::{SmsEncoding, SmsStats, analyse, transliterate_polish};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    /// `POST {HEJNAL_SMS_URL}` with JSON `{to, text, reference, sender}`; answer `{"id": …}`.
    Webhook,
    /// `POST {base}/sms.do`, form fields, answer `{"count":1,"list":[{"id":…}]}` or `{"error":…}`.
    Smsapi,
    /// `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, basic auth, answer `{"sid":…}`.
    Twilio,
}

impl SmsProvider {
    pub fn as_str(&self) -> &'static str {
        match self {
            SmsProvider::Webhook => "webhook",
            SmsProvider::Smsapi => "smsapi",
            SmsProvider::Twilio => "twilio",
        }
    }

    fn default_base(&self) -> Option<&'static str> {
        match self {
            SmsProvider::Webhook => None,
            SmsProvider::Smsapi => Some("https://api.smsapi.pl"),
            SmsProvider::Twilio => Some("https://api.twilio.com"),
        }
    }
}

impl FromStr for SmsProvider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "webhook" => Ok(SmsProvider::Webhook),
            "smsapi" => Ok(SmsProvider::Smsapi),
            "twilio" => Ok(SmsProvider::Twilio),
            other => Err(format!("{other:?} is not one of webhook, smsapi, twilio")),
        }
    }
}

/// One SMS provider's settings, checked.
pub(crate) struct SmsSettings {
    /// What records and metrics call it.
    pub(crate) name: String,
    provider: SmsProvider,
    endpoint: Url,
    auth: Auth,
    sender: String,
    pub(crate) weight: u32,
    pub(crate) timeout: std::time::Duration,
    pub(crate) rate: Option<u32>,
    pub(crate) concurrency: Option<usize>,
}

enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

/// Where a provider's settings come from, so that a wrong one is named as the operator wrote it.
#[derive(Clone, Copy)]
enum Origin {
    /// `HEJNAL_SMS_*`: the first provider.
    Env,
    /// The n-th `[[sms_providers]]` table of the configuration file, from 0.
    Entry(usize),
}

impl Origin {
    fn key(self, field: &str) -> String {
        match self {
            Origin::Env => format!("HEJNAL_SMS_{}", field.to_ascii_uppercase()),
            Origin::Entry(i) => format!("sms_providers[{i}].{field}"),
        }
    }
}

/// A provider's fields as configured, before checking.
struct Raw<'a> {
    origin: Origin,
    name: Option<&'a str>,
    provider: &'a str,
    url: Option<&'a str>,
    token: Option<&'a str>,
    sender: Option<&'a str>,
}

impl SmsSettings {
    /// The first SMS provider; `None` when none is set (the dev outbox takes SMS).
    pub(crate) fn parse(s: &ChannelSettings) -> Result<Option<SmsSettings>, ConfigError> {
        Ok(SmsSettings::parse_all(s)?.into_iter().next())
    }

    /// Every SMS provider: the first from `HEJNAL_SMS_*`, then the configuration file's
    /// `[[sms_providers]]`. Empty when none is set.
    pub(crate) fn parse_all(s: &ChannelSettings) -> Result<Vec<SmsSettings>, ConfigError> {
        let Some(first) = &s.sms_provider else {
            return match s.sms_providers.is_empty() {
                true => Ok(vec![]),
                false => Err(bad("HEJNAL_SMS_PROVIDER", "must be set when sms_providers lists more SMS providers: it is the first")),
            };
        };
        let raw = Raw { origin: Origin::Env, name: s.sms_name.as_deref(), provider: first, url: s.sms_url.as_deref(), token: s.sms_token.as_deref(), sender: s.sms_sender.as_deref() };
        let mut all = vec![SmsSettings::check_one(&raw, s.sms_weight, s.timeout(super::ChannelKind::Sms), None, None)?];
        for (i, e) in s.sms_providers.iter().enumerate() {
            let origin = Origin::Entry(i);
            let raw = Raw { origin, name: Some(&e.name), provider: &e.provider, url: e.url.as_deref(), token: e.token.as_deref(), sender: e.sender.as_deref().or(s.sms_sender.as_deref()) };
            let timeout = std::time::Duration::from_millis(e.timeout_ms.unwrap_or(s.provider_timeout_ms));
            if e.timeout_ms == Some(0) || e.concurrency == Some(0) {
                let field = if e.timeout_ms == Some(0) { "timeout_ms" } else { "concurrency" };
                return Err(bad(&origin.key(field), "must be greater than 0"));
            }
            let entry = SmsSettings::check_one(&raw, e.weight, timeout, e.rate.filter(|r| *r > 0), e.concurrency)?;
            if all.iter().any(|p: &SmsSettings| p.name == entry.name) {
                return Err(bad(&origin.key("name"), format!("{:?} is already the name of another SMS provider (the first is called by HEJNAL_SMS_NAME, or its adapter)", entry.name)));
            }
            all.push(entry);
        }
        if all.iter().all(|p| p.weight == 0) {
            return Err(bad("HEJNAL_SMS_WEIGHT", "at least one SMS provider needs a weight above 0"));
        }
        Ok(all)
    }

    fn check_one(raw: &Raw, weight: u32, timeout: std::time::Duration, rate: Option<u32>, concurrency: Option<usize>) -> Result<SmsSettings, ConfigError> {
        let key = |field: &str| raw.origin.key(field);
        let by = key("provider");
        let provider: SmsProvider = raw.provider.parse().map_err(|e| bad(&by, e))?;
        let needed = |value: Option<&str>, field: &str| value.map(str::to_owned).ok_or_else(|| bad(&key(field), format!("must be set when {by} is set")));
        let sender = needed(raw.sender, "sender")?;
        let base = match (raw.url, provider.default_base()) {
            (Some(url), _) => url,
            (None, Some(default)) => default,
            (None, None) => return Err(bad(&key("url"), format!("must be set when {by} is webhook"))),
        };
        let base = Url::parse(base).map_err(|e| bad(&key("url"), format!("is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad(&key("url"), "must start with http:// or https://"));
        }
        let (endpoint, auth) = match provider {
            SmsProvider::Webhook => (base, raw.token.map_or(Auth::None, |t| Auth::Bearer(t.to_owned()))),
            SmsProvider::Smsapi => {
                let token = needed(raw.token, "token")?;
                (join(&base, "sms.do", &key("url"))?, Auth::Bearer(token))
            }
            SmsProvider::Twilio => {
                let token = needed(raw.token, "token")?;
                let (sid, secret) = token
                    .split_once(':')
                    .filter(|(sid, secret)| !sid.is_empty() && !secret.is_empty())
                    .ok_or_else(|| bad(&key("token"), "must be AccountSid:AuthToken for twilio"))?;
                let path = format!("2010-04-01/Accounts/{sid}/Messages.json");
                (join(&base, &path, &key("url"))?, Auth::Basic { user: sid.into(), password: secret.into() })
            }
        };
        let name = raw.name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(provider.as_str()).to_owned();
        Ok(SmsSettings { name, provider, endpoint, auth, sender, weight, timeout, rate, concurrency })
    }
}

/// `base` + `path`, keeping any path the base already has (a gateway behind a prefix).
fn join(base: &Url, path: &str, key: &str) -> Result<Url, ConfigError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| bad(key, format!("cannot be joined with {path}: {e}")))
}

/// The SMS channel on one provider.
pub struct SmsChannel {
    settings: SmsSettings,
    client: Client,
}

impl SmsChannel {
    pub(crate) fn new(settings: SmsSettings, client: Client) -> SmsChannel {
        SmsChannel { settings, client }
    }

    fn post(&self) -> RequestBuilder {
        let request = self.client.post(self.settings.endpoint.clone());
        match &self.settings.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        }
    }
}

#[async_trait]
impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn name(&self) -> &str {
        &self.settings.name
    }

    async fn send(&self, to: &Address, msg: &Message) -> Result<Sent, SendError> {
        let Address::Phone(phone) = to else { return Err(wrong_address(ChannelKind::Sms, to)) };
        check_e164(phone)?;
        let sender = &self.settings.sender;
        let request = match self.settings.provider {
            SmsProvider::Webhook => webhook::request(self.post(), phone, sender, msg),
            SmsProvider::Smsapi => smsapi::request(self.post(), phone, sender, msg),
            SmsProvider::Twilio => twilio::request(self.post(), phone, sender, msg),
        };
        let answer = Answer::read(request.send().await.map_err(transport_error)?).await?;
        match self.settings.provider {
            SmsProvider::Webhook => webhook::answer(&answer),
            SmsProvider::Smsapi => smsapi::answer(&answer, &msg.reference),
            SmsProvider::Twilio => twilio::answer(&answer),
        }
    }
}

/// A number the gateway could never deliver to is refused before any request: `+` and 7 to 15
/// digits, no leading zero (E.164).
fn check_e164(phone: &str) -> Result<(), SendError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok { Ok(()) } else { Err(SendError::Permanent(format!("{phone:?} is not an E.164 number like +48601234567"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(provider: &str, url: Option<&str>, token: Option<&str>) -> ChannelSettings {
        ChannelSettings {
            sms_provider: Some(provider.into()),
            sms_url: url.map(Into::into),
            sms_token: token.map(Into::into),
            sms_sender: Some("KRAKOW".into()),
            ..ChannelSettings::default()
        }
    }

    fn endpoint(s: &ChannelSettings) -> String {
        SmsSettings::parse(s).unwrap().unwrap().endpoint.to_string()
    }

    #[test]
    fn provider_endpoints_are_built_from_the_base_url() {
        assert_eq!(endpoint(&settings("smsapi", None, Some("t"))), "https://api.smsapi.pl/sms.do");
        assert_eq!(endpoint(&settings("smsapi", Some("http://gw:8080/api"), Some("t"))), "http://gw:8080/api/sms.do");
        assert_eq!(
            endpoint(&settings("twilio", None, Some("AC12:secret"))),
            "https://api.twilio.com/2010-04-01/Accounts/AC12/Messages.json"
        );
        assert_eq!(endpoint(&settings("webhook", Some("http://gw/send"), None)), "http://gw/send");
    }

    #[test]
    fn wrong_sms_settings_name_their_variable() {
        let key = |s: ChannelSettings| SmsSettings::parse(&s).err().unwrap().key;
        assert_eq!(key(settings("nexmo", None, None)), "HEJNAL_SMS_PROVIDER");
        assert_eq!(key(settings("webhook", None, None)), "HEJNAL_SMS_URL");
        assert_eq!(key(settings("webhook", Some("ftp://gw"), None)), "HEJNAL_SMS_URL");
        assert_eq!(key(settings("smsapi", None, None)), "HEJNAL_SMS_TOKEN");
        assert_eq!(key(settings("twilio", None, Some("no-colon"))), "HEJNAL_SMS_TOKEN");
        assert_eq!(key(ChannelSettings { sms_sender: None, ..settings("smsapi", None, Some("t")) }), "HEJNAL_SMS_SENDER");
    }

    #[test]
    fn only_e164_numbers_are_sent() {
        assert!(check_e164("+48601234567").is_ok());
        for wrong in ["48601234567", "+48 601 234 567", "+0601234567", "+48", "+4860123456789012", ""] {
            assert!(matches!(check_e164(wrong), Err(SendError::Permanent(_))), "{wrong}");
        }
    }
}
