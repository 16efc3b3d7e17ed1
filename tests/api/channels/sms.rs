//! SMS through each gateway adapter to an HTTP gateway fake.

use std::time::{Duration, Instant};

use base64::Engine;
use hejnal::channels::{Address, ChannelSettings, Message, SendError};

use super::{channels, phone, sms_settings};
use hejnal::testkit::sms::{Reply, SmsGateway, Style};


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
async fn a_gateway_success_that_arrives_after_the_timeout_is_an_unknown_outcome() {
    let gateway = SmsGateway::start(Style::Webhook).await;
    let settings = ChannelSettings { provider_timeout_ms: 300, ..sms_settings("webhook", gateway.base_url(), "t") };
    let sms = channels(settings).sms;
    gateway.then(Reply::new(200, r#"{"id":"late"}"#).after(Duration::from_secs(2)));
    let started = Instant::now();
    let result = sms.send(&phone(), &Message::new("ref-late", "", "text")).await;
    assert!(matches!(&result, Err(e) if e.may_have_been_sent() && e.class() == "unknown"), "{result:?}");
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
