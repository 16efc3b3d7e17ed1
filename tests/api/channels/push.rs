//! Web push to a receiver that verifies VAPID and decrypts the payload.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hejnal::channels::{Address, Message, SendError, check_push_endpoint};

use super::{channels, push_settings};
use hejnal::testkit::push::PushReceiver;


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
