//! The dev outbox, and which channels it stands in for, by configuration.

use hejnal::channels::{Address, ChannelKind, ChannelSettings, Channels, Environment, Message};

use super::{channels, email_to, phone, push_settings, sms_settings};


#[tokio::test]
async fn without_providers_every_channel_records_into_the_dev_outbox() {
    let all = channels(ChannelSettings::default());
    assert_eq!(all.dev_outbox_channels(), vec![ChannelKind::Sms, ChannelKind::Email, ChannelKind::Push]);
    let target = hejnal::channels::PushTarget { endpoint: "https://fcm.googleapis.com/x".into(), p256dh: "k".into(), auth: "a".into() };
    all.sms.send(&phone(), &Message::new("ref-1", "", "sms text")).await.unwrap();
    all.email.send(&email_to("jan@example.com"), &Message::new("ref-2", "Subject", "email text")).await.unwrap();
    all.push.send(&Address::Push(target), &Message::new("ref-3", "Title", "push body")).await.unwrap();

    let outbox = all.outbox().expect("an outbox");
    let seen: Vec<(ChannelKind, String, String, String, String)> = outbox
        .list()
        .into_iter()
        .map(|e| (e.kind, e.address, e.subject, e.text, e.reference))
        .collect();
    let row = |k, a: &str, s: &str, t: &str, r: &str| (k, a.to_owned(), s.to_owned(), t.to_owned(), r.to_owned());
    assert_eq!(seen, vec![
        row(ChannelKind::Sms, "+48601234567", "", "sms text", "ref-1"),
        row(ChannelKind::Email, "jan@example.com", "Subject", "email text", "ref-2"),
        row(ChannelKind::Push, "https://fcm.googleapis.com/x", "Title", "push body", "ref-3"),
    ]);
}

#[test]
fn a_channel_with_a_provider_is_not_reported_as_dev_outbox() {
    let configured = channels(sms_settings("webhook", "http://127.0.0.1:9/send".into(), "t"));
    assert_eq!(configured.dev_outbox_channels(), vec![ChannelKind::Email, ChannelKind::Push]);
    assert_eq!(configured.sms.name(), "webhook");
    assert!(configured.outbox().is_some());
}

#[test]
fn production_without_a_provider_is_a_configuration_error_naming_the_variable() {
    let production = |s: ChannelSettings| Channels::from_config(&ChannelSettings { environment: Environment::Production, ..s });
    let err = production(ChannelSettings::default()).unwrap_err();
    assert_eq!(err.key, "HEJNAL_SMS_PROVIDER");
    assert!(err.to_string().contains("production"), "{err}");
    let sms = sms_settings("webhook", "https://gw.example/send".into(), "t");
    assert_eq!(production(sms.clone()).unwrap_err().key, "HEJNAL_SMTP_URL");
    let email = ChannelSettings { smtp_url: Some("smtp://relay.example".into()), email_from: Some("noreply@krakow.pl".into()), ..sms };
    assert_eq!(production(email.clone()).unwrap_err().key, "HEJNAL_VAPID_PRIVATE_KEY");
    let push = push_settings(false);
    let all = ChannelSettings { vapid_private_key: push.vapid_private_key, vapid_subject: push.vapid_subject, ..email };
    let built = production(all).expect("every channel has a provider");
    assert!(built.dev_outbox_channels().is_empty() && built.outbox().is_none());
}

#[test]
fn a_production_config_without_providers_stops_at_start_naming_the_variable() {
    let settings = hejnal::config::Settings { environment: "production".into(), ..hejnal::config::Settings::default() };
    let err = hejnal::config::Config::from_settings(settings).unwrap_err();
    assert_eq!(err.key, "HEJNAL_SMS_PROVIDER");
}
