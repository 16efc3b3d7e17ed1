//! The three channels of a process, built from its settings. A channel without a provider goes
//! to the dev outbox, which start-up logs loudly and `/readyz` reports; in production that is a
//! configuration error instead (see `ChannelSettings::check`). Each channel also has its
//! provider's [`Throttle`], shared by every clone of the `Channels`.

use std::{fmt, sync::Arc, time::Duration};

use super::{
    Channel, ChannelKind, DevOutbox,
    email::{EmailChannel, EmailSettings},
    failover::{Failover, Member},
    http,
    push::{PushChannel, PushSettings},
    settings::{ChannelSettings, bad, required_for},
    sms::{SmsChannel, SmsSettings},
    throttle::Throttle,
};
use crate::config::ConfigError;

#[derive(Clone)]
pub struct Channels {
    pub sms: Arc<dyn Channel>,
    pub email: Arc<dyn Channel>,
    pub push: Arc<dyn Channel>,
    outbox: Option<Arc<DevOutbox>>,
    throttles: Arc<Throttles>,
}

/// One throttle per provider.
struct Throttles {
    sms: Throttle,
    email: Throttle,
    push: Throttle,
}

impl Throttles {
    fn from_config(settings: &ChannelSettings) -> Throttles {
        let throttle = |kind| Throttle::new(settings.rate(kind), settings.concurrency(kind), settings.emergency_reserve_percent);
        Throttles { sms: throttle(ChannelKind::Sms), email: throttle(ChannelKind::Email), push: throttle(ChannelKind::Push) }
    }
}

impl Channels {
    /// Build every channel. Nothing is contacted yet: providers are reached on the first send.
    pub fn from_config(settings: &ChannelSettings) -> Result<Channels, ConfigError> {
        settings.check()?;
        let mut outbox: Option<Arc<DevOutbox>> = None;
        let mut dev = |kind: ChannelKind| -> Arc<dyn Channel> {
            let shared = outbox.get_or_insert_with(|| Arc::new(DevOutbox::new(kind)));
            Arc::new(shared.for_kind(kind))
        };
        let sms = match sms_channel(settings)? {
            Some(sms) => sms,
            None => dev(ChannelKind::Sms),
        };
        let email: Arc<dyn Channel> = match EmailSettings::parse(settings)? {
            Some(email) => Arc::new(EmailChannel::new(email, settings.timeout(ChannelKind::Email))),
            None => dev(ChannelKind::Email),
        };
        let push: Arc<dyn Channel> = match PushSettings::parse(settings)? {
            Some(push) => Arc::new(
                PushChannel::new(push, settings.timeout(ChannelKind::Push), settings.push_concurrency).map_err(|e| client_error(ChannelKind::Push, e))?,
            ),
            None => dev(ChannelKind::Push),
        };
        Ok(Channels { sms, email, push, outbox, throttles: Arc::new(Throttles::from_config(settings)) })
    }

    /// Every channel to one dev outbox: for tests and tools that must not reach anyone.
    pub fn dev_outbox() -> Channels {
        Channels::from_config(&ChannelSettings::default()).expect("the default settings need no provider")
    }

    pub fn get(&self, kind: ChannelKind) -> &Arc<dyn Channel> {
        match kind {
            ChannelKind::Sms => &self.sms,
            ChannelKind::Email => &self.email,
            ChannelKind::Push => &self.push,
        }
    }

    /// The sending discipline of the provider of `kind`: acquire a permit before each send.
    pub fn throttle(&self, kind: ChannelKind) -> &Throttle {
        match kind {
            ChannelKind::Sms => &self.throttles.sms,
            ChannelKind::Email => &self.throttles.email,
            ChannelKind::Push => &self.throttles.push,
        }
    }

    /// The channels that only record into the dev outbox (empty when all have providers).
    pub fn dev_outbox_channels(&self) -> Vec<ChannelKind> {
        ChannelKind::ALL.into_iter().filter(|&kind| self.get(kind).name() == "dev-outbox").collect()
    }

    /// The dev outbox, when any channel uses it; its `list()` shows every channel's messages.
    pub fn outbox(&self) -> Option<Arc<DevOutbox>> {
        self.outbox.clone()
    }
}

/// The SMS channel: one provider as it is, several behind a [`Failover`]; `None` for none.
fn sms_channel(settings: &ChannelSettings) -> Result<Option<Arc<dyn Channel>>, ConfigError> {
    let mut members = Vec::new();
    for sms in SmsSettings::parse_all(settings)? {
        let concurrency = sms.concurrency.unwrap_or(settings.sms_concurrency);
        let client = http::client(sms.timeout, concurrency).map_err(|e| client_error(ChannelKind::Sms, e))?;
        let (name, weight) = (sms.name.clone(), sms.weight);
        // A provider's own limits, when it has any, apply beyond the channel's.
        let throttle = (sms.rate.is_some() || sms.concurrency.is_some())
            .then(|| Throttle::new(sms.rate, concurrency, settings.emergency_reserve_percent));
        let channel: Arc<dyn Channel> = Arc::new(SmsChannel::new(sms, client));
        members.push(Member { name, weight, channel, throttle });
    }
    if members.len() <= 1 {
        return Ok(members.pop().map(|m| m.channel));
    }
    let restore = Duration::from_secs(settings.sms_failover_restore_secs);
    Ok(Some(Arc::new(Failover::new(ChannelKind::Sms, members, restore))))
}

fn client_error(kind: ChannelKind, e: reqwest::Error) -> ConfigError {
    bad(required_for(kind), format!("the HTTP client for {kind} could not be built: {e}"))
}

impl fmt::Debug for Channels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channels")
            .field("sms", &self.sms.name())
            .field("email", &self.email.name())
            .field("push", &self.push.name())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_channel_has_the_throttle_its_settings_describe() {
        let settings = ChannelSettings { sms_concurrency: 8, email_concurrency: 4, emergency_reserve_percent: 50, ..ChannelSettings::default() };
        let channels = Channels::from_config(&settings).unwrap();
        let sms = channels.throttle(ChannelKind::Sms);
        assert_eq!((sms.concurrency(), sms.routine_concurrency()), (8, 4));
        assert_eq!(channels.throttle(ChannelKind::Email).concurrency(), 4);
        assert_eq!(channels.throttle(ChannelKind::Push).concurrency(), 64);
    }

    #[tokio::test]
    async fn clones_share_their_throttles() {
        let channels = Channels::dev_outbox();
        let clone = channels.clone();
        let _permit = channels.throttle(ChannelKind::Sms).acquire(true).await;
        assert_eq!(clone.throttle(ChannelKind::Sms).in_use(), 1);
        assert_eq!(clone.throttle(ChannelKind::Email).in_use(), 0);
    }
}
