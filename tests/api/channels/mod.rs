//! The channel adapters against real peers on port 0 (`hejnal::testkit`): what arrives, and how every
//! kind of answer is classified. One file per channel; the settings helpers are here.

mod email;
mod outbox;
mod push;
mod sms;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hejnal::channels::{Address, ChannelSettings, Channels};

use hejnal::testkit::smtp::SmtpSink;

pub(crate) fn channels(settings: ChannelSettings) -> Channels {
    Channels::from_config(&settings).expect("valid channel settings")
}

pub(crate) fn email_settings(sink: &SmtpSink) -> ChannelSettings {
    ChannelSettings {
        smtp_url: Some(sink.url()),
        email_from: Some("Hejnał Kraków <noreply@krakow.pl>".into()),
        provider_timeout_ms: 5_000,
        ..ChannelSettings::default()
    }
}

fn sms_settings(provider: &str, url: String, token: &str) -> ChannelSettings {
    ChannelSettings {
        sms_provider: Some(provider.into()),
        sms_url: Some(url),
        sms_token: Some(token.into()),
        sms_sender: Some("KRAKOW".into()),
        provider_timeout_ms: 5_000,
        ..ChannelSettings::default()
    }
}

pub(crate) fn push_settings(allow_local: bool) -> ChannelSettings {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    ChannelSettings {
        vapid_private_key: Some(URL_SAFE_NO_PAD.encode(key.to_bytes())),
        vapid_subject: Some("mailto:ops@krakow.pl".into()),
        push_allow_local: allow_local,
        provider_timeout_ms: 5_000,
        ..ChannelSettings::default()
    }
}

pub(crate) fn email_to(address: &str) -> Address {
    Address::Email(address.into())
}

fn phone() -> Address {
    Address::Phone("+48601234567".into())
}
