//! The channel adapters against real peers on port 0 (`sinks`): what arrives, and how every
//! kind of answer is classified.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hejnal::channels::{
    Address, ChannelKind, ChannelSettings, Channels, Environment, Message, SendError, check_push_endpoint,
};

use crate::sinks::{
    push::PushReceiver,
    sms::{Reply, SmsGateway, Style},
    smtp::{Act, SmtpSink, Stage},
};

fn channels(settings: ChannelSettings) -> Channels {
    Channels::from_config(&settings).expect("valid channel settings")
}

fn email_settings(sink: &SmtpSink) -> ChannelSettings {
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

fn push_settings(allow_local: bool) -> ChannelSettings {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    ChannelSettings {
        vapid_private_key: Some(URL_SAFE_NO_PAD.encode(key.to_bytes())),
        vapid_subject: Some("mailto:ops@krakow.pl".into()),
        push_allow_local: allow_local,
        provider_timeout_ms: 5_000,
        ..ChannelSettings::default()
    }
}

fn email_to(address: &str) -> Address {
    Address::Email(address.into())
}

fn phone() -> Address {
    Address::Phone("+48601234567".into())
}

// ---------------------------------------------------------------- email

#[tokio::test]
async fn an_email_arrives_multipart_with_both_parts_one_click_unsubscribe_and_the_reference() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    let mut msg = Message::new("0190a6b2-7c1e-7d3a-9f00-1234567890ab", "Water returns at 18:00", "Water is back in Podgorze at 18:00.");
    msg.html = Some("<p>Water is back in <b>Podgorze</b> at 18:00.</p>".into());
    msg.unsubscribe_url = Some("https://hejnal.example/u/tok-1".into());

    let sent = email.send(&email_to("jan@example.com"), &msg).await.unwrap();

    let mail = sink.received().pop().expect("one email");
    assert_eq!((mail.mail_from.as_str(), mail.rcpt_to.as_slice()), ("noreply@krakow.pl", &["jan@example.com".to_owned()][..]));
    assert!(mail.header("Content-Type").unwrap().starts_with("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("Content-Type: text/plain") && mail.data.contains("Water is back in Podgorze at 18:00."));
    assert!(mail.data.contains("Content-Type: text/html") && mail.data.contains("<b>Podgorze</b>"));
    assert_eq!(mail.header("List-Unsubscribe").as_deref(), Some("<https://hejnal.example/u/tok-1>"));
    assert_eq!(mail.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert_eq!(mail.header("Message-ID").as_deref(), Some("<0190a6b2-7c1e-7d3a-9f00-1234567890ab@krakow.pl>"));
    assert_eq!(sent.provider_id, "0190a6b2-7c1e-7d3a-9f00-1234567890ab@krakow.pl");
}

#[tokio::test]
async fn an_email_without_html_or_unsubscribe_link_is_plain_text_without_those_headers() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    email.send(&email_to("jan@example.com"), &Message::new("ref-plain", "Hello", "Just text.")).await.unwrap();
    let mail = sink.received().pop().unwrap();
    assert!(mail.header("Content-Type").unwrap().starts_with("text/plain"), "{}", mail.data);
    assert_eq!(mail.header("List-Unsubscribe"), None);
    assert_eq!(mail.header("List-Unsubscribe-Post"), None);
}

#[tokio::test]
async fn a_subject_with_cr_lf_does_not_inject_a_header() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    let msg = Message::new("ref-inject", "Alert\r\nBcc: evil@example.com\r\nX-Evil: 1", "text");
    email.send(&email_to("jan@example.com"), &msg).await.unwrap();
    let mail = sink.received().pop().unwrap();
    assert_eq!(mail.rcpt_to, vec!["jan@example.com".to_owned()]);
    assert_eq!(mail.header("Bcc"), None, "{}", mail.data);
    assert_eq!(mail.header("X-Evil"), None, "{}", mail.data);
    assert!(mail.header("Subject").unwrap().starts_with("Alert"), "{}", mail.data);
}

#[tokio::test]
async fn smtp_451_is_transient_and_550_is_permanent() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    let to = email_to("jan@example.com");
    let msg = Message::new("ref-smtp", "s", "t");

    sink.script(Stage::Mail, Act::Reply(451));
    assert!(matches!(email.send(&to, &msg).await, Err(SendError::Transient(_))));
    email.send(&to, &msg).await.expect("the next attempt goes through");

    sink.script(Stage::Rcpt, Act::Reply(550));
    assert!(matches!(email.send(&to, &msg).await, Err(SendError::Permanent(_))));
    sink.script(Stage::EndOfData, Act::Reply(554));
    assert!(matches!(email.send(&to, &msg).await, Err(SendError::Permanent(_))));
    sink.script(Stage::EndOfData, Act::Reply(452));
    assert!(matches!(email.send(&to, &msg).await, Err(SendError::Transient(_))));
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn a_stalled_smtp_server_is_transient_within_the_timeout() {
    let sink = SmtpSink::start().await;
    let email = channels(ChannelSettings { provider_timeout_ms: 400, ..email_settings(&sink) }).email;
    sink.script(Stage::EndOfData, Act::Stall(Duration::from_secs(5)));
    let started = Instant::now();
    let result = email.send(&email_to("jan@example.com"), &Message::new("ref-stall", "s", "t")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let settings = ChannelSettings {
        smtp_url: Some(format!("smtp://{closed}")),
        email_from: Some("noreply@krakow.pl".into()),
        ..ChannelSettings::default()
    };
    let result = channels(settings).email.send(&email_to("jan@example.com"), &Message::new("r", "s", "t")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
}

#[tokio::test]
async fn tls_that_cannot_be_had_is_transient_and_nothing_goes_out_in_clear() {
    let sink = SmtpSink::start().await;
    let port = sink.url().rsplit(':').next().unwrap().to_owned();
    for url in [format!("smtps://127.0.0.1:{port}"), format!("smtp://127.0.0.1:{port}?tls=required")] {
        let settings = ChannelSettings { smtp_url: Some(url.clone()), ..email_settings(&sink) };
        let result = channels(settings).email.send(&email_to("jan@example.com"), &Message::new("r", "s", "t")).await;
        assert!(matches!(result, Err(SendError::Transient(_))), "{url}: {result:?}");
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn emails_sent_one_after_another_reuse_one_pooled_connection() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    for i in 0..5 {
        email.send(&email_to("jan@example.com"), &Message::new(format!("ref-{i}"), "s", "t")).await.unwrap();
    }
    assert_eq!(sink.received().len(), 5);
    assert_eq!(sink.connections(), 1);
}

// ---------------------------------------------------------------- SMS

#[tokio::test]
async fn the_webhook_adapter_posts_json_with_the_bearer_token_and_returns_the_gateway_id() {
    let gateway = SmsGateway::start(Style::Webhook).await;
    let sms = channels(sms_settings("webhook", format!("{}/send", gateway.base_url()), "tok-1")).sms;
    let sent = sms.send(&phone(), &Message::new("ref-sms-1", "", "Zamknięta ulica Wielicka")).await.unwrap();
    assert_eq!(sent.provider_id, "gw-1");
    let request = gateway.requests().pop().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/send"));
    assert_eq!(request.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(
        request.json(),
        serde_json::json!({"to": "+48601234567", "text": "Zamknięta ulica Wielicka", "reference": "ref-sms-1", "sender": "KRAKOW"})
    );
}

#[tokio::test]
async fn the_smsapi_adapter_posts_form_fields_with_the_reference_as_idx_and_returns_the_listed_id() {
    let gateway = SmsGateway::start(Style::Smsapi).await;
    let sms = channels(sms_settings("smsapi", gateway.base_url(), "tok-2")).sms;
    let sent = sms.send(&phone(), &Message::new("ref-sms-2", "", "Komunikat")).await.unwrap();
    assert_eq!(sent.provider_id, "1");
    let request = gateway.requests().pop().unwrap();
    assert_eq!(request.path, "/sms.do");
    assert_eq!(request.header("authorization"), Some("Bearer tok-2"));
    let form = request.form();
    assert_eq!(form["to"], "48601234567");
    assert_eq!(form["message"], "Komunikat");
    assert_eq!(form["from"], "KRAKOW");
    assert_eq!(form["format"], "json");
    assert_eq!(form["idx"], "ref-sms-2");
    assert_eq!(form["check_idx"], "1");
}

#[tokio::test]
async fn the_twilio_adapter_posts_a_basic_auth_form_and_returns_the_sid() {
    let gateway = SmsGateway::start(Style::Twilio).await;
    let sms = channels(sms_settings("twilio", gateway.base_url(), "AC0042:s3cret")).sms;
    let sent = sms.send(&phone(), &Message::new("ref-sms-3", "", "Alert")).await.unwrap();
    assert!(sent.provider_id.starts_with("SM"), "{sent:?}");
    let request = gateway.requests().pop().unwrap();
    assert_eq!(request.path, "/2010-04-01/Accounts/AC0042/Messages.json");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("AC0042:s3cret"));
    assert_eq!(request.header("authorization"), Some(basic.as_str()));
    assert_eq!(request.header("x-hejnal-reference"), Some("ref-sms-3"));
    let form = request.form();
    assert_eq!((form["To"].as_str(), form["From"].as_str(), form["Body"].as_str()), ("+48601234567", "KRAKOW", "Alert"));
}

#[tokio::test]
async fn gateway_answers_are_classified_the_same_by_every_sms_adapter() {
    for (style, provider, token) in [(Style::Webhook, "webhook", "t"), (Style::Smsapi, "smsapi", "t"), (Style::Twilio, "twilio", "AC1:t")] {
        let gateway = SmsGateway::start(style).await;
        let url = if provider == "webhook" { format!("{}/send", gateway.base_url()) } else { gateway.base_url() };
        let sms = channels(sms_settings(provider, url, token)).sms;
        let msg = Message::new("ref-classes", "", "text");

        gateway.then(Reply::new(429, r#"{"code":20429,"message":"Too Many Requests"}"#).header("retry-after", "7"));
        assert_eq!(sms.send(&phone(), &msg).await, Err(SendError::RateLimited { retry_after: Duration::from_secs(7) }), "{provider}");
        gateway.then(Reply::new(500, "boom"));
        assert!(matches!(sms.send(&phone(), &msg).await, Err(SendError::Transient(_))), "{provider}");
        gateway.then(Reply::new(400, r#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#));
        assert!(matches!(sms.send(&phone(), &msg).await, Err(SendError::Permanent(_))), "{provider}");
        assert!(sms.send(&phone(), &msg).await.is_ok(), "{provider} recovers");
    }
}

#[tokio::test]
async fn a_gateway_success_that_arrives_after_the_timeout_is_transient() {
    let gateway = SmsGateway::start(Style::Webhook).await;
    let settings = ChannelSettings { provider_timeout_ms: 300, ..sms_settings("webhook", gateway.base_url(), "t") };
    let sms = channels(settings).sms;
    gateway.then(Reply::new(200, r#"{"id":"late"}"#).after(Duration::from_secs(2)));
    let started = Instant::now();
    let result = sms.send(&phone(), &Message::new("ref-late", "", "text")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_number_that_is_not_e164_is_refused_without_a_request() {
    let gateway = SmsGateway::start(Style::Webhook).await;
    let sms = channels(sms_settings("webhook", gateway.base_url(), "t")).sms;
    let result = sms.send(&Address::Phone("601 234 567".into()), &Message::new("r", "", "t")).await;
    assert!(matches!(result, Err(SendError::Permanent(_))));
    assert!(gateway.requests().is_empty());
}

// ---------------------------------------------------------------- web push

#[tokio::test]
async fn a_push_is_decrypted_by_the_receiver_to_exactly_the_payload_sent_with_a_verified_vapid_token() {
    let receiver = PushReceiver::start().await;
    let push = channels(push_settings(true)).push;
    let mut msg = Message::new("ref-push-1", "Burza nad Krakowem", "Silny wiatr do 22:00.");
    msg.link = Some("https://hejnal.example/n/42".into());
    msg.urgent = true;
    msg.ttl = Duration::from_secs(600);
    msg.topic = Some("notice-42".into());

    let sent = push.send(&Address::Push(receiver.subscribe()), &msg).await.unwrap();

    assert_eq!(receiver.refused(), Vec::<String>::new());
    let got = receiver.received().pop().expect("one push");
    assert_eq!(got.subscription, 0);
    let expected = r#"{"title":"Burza nad Krakowem","body":"Silny wiatr do 22:00.","url":"https://hejnal.example/n/42","reference":"ref-push-1"}"#;
    assert_eq!(String::from_utf8(got.plaintext.clone()).unwrap(), expected);
    assert_eq!((got.ttl.as_deref(), got.urgency.as_deref(), got.topic.as_deref()), (Some("600"), Some("high"), Some("notice-42")));
    assert_eq!(got.claims["aud"], receiver.origin());
    assert_eq!(sent.provider_id, format!("{}/message/1", receiver.origin()));
}

#[tokio::test]
async fn a_routine_push_has_normal_urgency_and_no_topic() {
    let receiver = PushReceiver::start().await;
    let push = channels(push_settings(true)).push;
    push.send(&Address::Push(receiver.subscribe()), &Message::new("ref-push-2", "Info", "Nothing urgent")).await.unwrap();
    let got = receiver.received().pop().unwrap();
    assert_eq!((got.urgency.as_deref(), got.topic.as_deref()), (Some("normal"), None));
    assert_eq!(got.json()["body"], "Nothing urgent");
}

#[tokio::test]
async fn push_service_answers_are_classified() {
    let receiver = PushReceiver::start().await;
    let push = channels(push_settings(true)).push;
    let to = Address::Push(receiver.subscribe());
    let msg = Message::new("ref-push-3", "t", "b");
    for (status, expected) in [(410, "gone"), (404, "gone"), (413, "permanent"), (500, "transient"), (503, "transient")] {
        receiver.then(status, None);
        let err = push.send(&to, &msg).await.unwrap_err();
        assert_eq!(err.class(), expected, "{status}: {err}");
    }
    receiver.then(429, Some("9"));
    assert_eq!(push.send(&to, &msg).await, Err(SendError::RateLimited { retry_after: Duration::from_secs(9) }));
    assert_eq!(receiver.refused(), Vec::<String>::new(), "every push was valid");
}

#[tokio::test]
async fn pushes_to_one_origin_share_one_vapid_token_and_another_origin_gets_its_own() {
    let (first, second) = (PushReceiver::start().await, PushReceiver::start().await);
    let push = channels(push_settings(true)).push;
    let msg = Message::new("ref-push-4", "t", "b");
    for target in [first.subscribe(), first.subscribe(), second.subscribe()] {
        push.send(&Address::Push(target), &msg).await.unwrap();
    }
    let (a, b) = (first.received(), second.received());
    assert_eq!((a.len(), b.len()), (2, 1));
    assert_eq!(a[0].token, a[1].token, "one token for one origin");
    assert_ne!(a[0].token, b[0].token);
    assert_eq!(b[0].claims["aud"], second.origin(), "each token names its own origin, port included");
}

#[tokio::test]
async fn a_local_push_endpoint_is_refused_before_any_request_unless_allowed() {
    let receiver = PushReceiver::start().await;
    let push = channels(push_settings(false)).push;
    let result = push.send(&Address::Push(receiver.subscribe()), &Message::new("r", "t", "b")).await;
    assert!(matches!(result, Err(SendError::Permanent(ref why)) if why.contains("https")), "{result:?}");
    assert!(receiver.received().is_empty() && receiver.refused().is_empty());
}

#[tokio::test]
async fn a_subscription_with_broken_keys_is_a_permanent_failure() {
    let receiver = PushReceiver::start().await;
    let push = channels(push_settings(true)).push;
    let mut target = receiver.subscribe();
    target.p256dh = URL_SAFE_NO_PAD.encode([4u8; 65]);
    let result = push.send(&Address::Push(target), &Message::new("r", "t", "b")).await;
    assert!(matches!(result, Err(SendError::Permanent(_))), "{result:?}");
}

#[test]
fn check_push_endpoint_refuses_plain_http_and_inside_hosts_unless_local_is_allowed() {
    for (url, named) in [
        ("http://push.example.com/x", "https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://localhost:8443/x", "local"),
        ("https://10.0.0.7/x", "private"),
        ("https://192.168.1.10/x", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("not a url", "not a URL"),
    ] {
        let why = check_push_endpoint(url, false).expect_err(url);
        assert!(why.contains(named), "{url}: {why}");
    }
    assert_eq!(check_push_endpoint("https://fcm.googleapis.com/fcm/send/abc:APA91b", false), Ok(()));
    assert_eq!(check_push_endpoint("https://updates.push.services.mozilla.com/wpush/v2/gAAAA", false), Ok(()));
    assert_eq!(check_push_endpoint("http://127.0.0.1:4000/push/1", true), Ok(()));
    assert_eq!(check_push_endpoint("https://localhost/x", true), Ok(()));
}

// ---------------------------------------------------------------- dev outbox and configuration

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
