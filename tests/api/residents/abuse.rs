//! What an attacker or a careless client can try: enumeration, bad input, floods, guessing.

use std::time::Duration;

use serde_json::{Value, json};

use super::Kit;
use crate::{both_backends, helpers::eventually};

both_backends! {
    async fn a_known_and_an_unknown_contact_get_the_same_answer_and_no_extra_message(env) {
        let kit = Kit::start(&env).await;
        let body = json!({"districts": ["podgorze"], "email": "anna@example.com", "phone": "+48 602 000 111"});
        let first = kit.post("/api/v1/subscriptions", &body).await;
        let (s1, b1) = (first.status(), first.text().await.unwrap());
        let smtp = &kit.smtp;
        eventually(Duration::from_secs(30), "the first email", || async move { (!smtp.received().is_empty()).then_some(()) }).await;
        let second = kit.post("/api/v1/subscriptions", &body).await;
        let (s2, b2) = (second.status(), second.text().await.unwrap());
        let fresh = kit.post("/api/v1/subscriptions", &json!({"districts": ["podgorze"], "email": "someone.else@example.com"})).await;
        let (s3, b3) = (fresh.status(), fresh.text().await.unwrap());
        assert_eq!((s1.as_u16(), s2.as_u16(), s3.as_u16()), (202, 202, 202));
        assert_eq!(b1, b2);
        assert_eq!(b1, b3);
        // The repeat was within the per-contact minute: no second message to either address.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let to_anna = kit.smtp.received().iter().filter(|m| m.rcpt_to.contains(&"anna@example.com".to_owned())).count();
        assert_eq!(to_anna, 1);
        assert_eq!(kit.sms.requests().len(), 1);
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn wrong_fields_are_named_with_their_reason(env) {
        let kit = Kit::start(&env).await;
        let cases = [
            (json!({"districts": ["podgorze"], "phone": "12 616 12 00"}), "phone", "mobile"),
            (json!({"districts": ["podgorze"], "phone": "+380 67 123 4567"}), "phone", "UA"),
            (json!({"districts": ["podgorze"], "email": "not-an-email"}), "email", "@"),
            (json!({"districts": [], "email": "a@example.com"}), "districts", "at least one"),
            (json!({"districts": ["podgorze"]}), "email", "at least one contact"),
            (json!({"districts": ["podgorze"], "email": "a@example.com", "language": "de"}), "language", "pl, en, uk"),
            (json!({"districts": ["podgorze"], "email": "a@example.com", "quiet_hours": {"from": "22:00", "to": "7"}}), "quiet_hours.to", "22:00"),
            (json!({"districts": "podgorze", "email": "a@example.com"}), "districts", "sequence"),
            (json!({"districts": ["podgorze"], "push": {"endpoint": "not a url", "keys": {"p256dh": "x", "auth": "y"}}}), "push.endpoint", ""),
        ];
        for (body, field, reason) in cases {
            let res = kit.post("/api/v1/subscriptions", &body).await;
            assert_eq!(res.status(), 422, "{body}");
            let err: Value = res.json().await.unwrap();
            assert_eq!(err["error"]["field"], field, "{body} gave {err}");
            assert!(err["error"]["message"].as_str().unwrap().contains(reason), "{body} gave {err}");
        }
        let res = kit.post("/api/v1/subscriptions", &json!({"districts": ["atlantis", "podgorze"], "interests": ["golf"], "email": "a@example.com"})).await;
        assert_eq!(res.status(), 422);
        let err: Value = res.json().await.unwrap();
        let details = err["error"]["details"].as_array().unwrap();
        assert_eq!(details.len(), 2, "{err}");
        assert!(details[0]["message"].as_str().unwrap().contains("atlantis"));
        assert!(details[1]["message"].as_str().unwrap().contains("golf"));
        let not_json = kit.app.client.post(format!("{}/api/v1/subscriptions", kit.app.address)).header("content-type", "application/json").body("{").send().await.unwrap();
        assert_eq!(not_json.status(), 400);
        let trailing = kit.app.client.post(format!("{}/api/v1/subscriptions", kit.app.address)).header("content-type", "application/json").body(r#"{"email": "a@example.com"} and more"#).send().await.unwrap();
        assert_eq!(trailing.status(), 400, "a JSON value followed by more text is not a JSON body");
        let err: Value = trailing.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_json", "{err}");
        // Nothing was stored or sent for any of these.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(kit.smtp.received().is_empty() && kit.sms.requests().is_empty());
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn a_flood_from_one_address_gets_429_with_retry_after(env) {
        let kit = Kit::start_with(&env, |s| {
            s.public_rate_per_minute = 1;
            s.public_rate_burst = 3;
        })
        .await;
        let body = json!({"districts": ["podgorze"], "email": "flood@example.com"});
        for _ in 0..3 {
            assert_eq!(kit.post("/api/v1/subscriptions", &body).await.status(), 202);
        }
        let res = kit.post("/api/v1/subscriptions", &body).await;
        assert_eq!(res.status(), 429);
        let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "rate_limited");
        // Reference data is not behind the public limit.
        assert_eq!(kit.app.get("/api/v1/districts").await.status(), 200);
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn an_sms_code_allows_five_tries_then_none(env) {
        let kit = Kit::start(&env).await;
        assert_eq!(kit.post("/api/v1/subscriptions", &json!({"districts": ["podgorze"], "phone": "603 000 222"})).await.status(), 202);
        let sms = kit.sms_text(0).await;
        let code: String = sms["text"].as_str().unwrap().chars().filter(|c| c.is_ascii_digit()).take(6).collect();
        let wrong = if code == "999999" { "888888" } else { "999999" };
        for _ in 0..5 {
            let res = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "603000222", "code": wrong})).await;
            assert_eq!(res.status(), 422);
        }
        let res = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "603000222", "code": code})).await;
        assert_eq!(res.status(), 422, "the right code after five wrong tries must fail");
        // An unknown number answers exactly like a wrong code.
        let unknown = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "604999888", "code": "123456"})).await;
        let known = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "603000222", "code": "123456"})).await;
        assert_eq!(unknown.text().await.unwrap(), known.text().await.unwrap());
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn a_tampered_preferences_link_is_refused(env) {
        let kit = Kit::start(&env).await;
        for token in ["AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "nonsense"] {
            assert_eq!(kit.app.get(&format!("/api/v1/preferences/{token}")).await.status(), 404);
            assert_eq!(kit.app.get(&format!("/preferences/{token}")).await.status(), 404);
        }
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn the_daily_sms_budget_stops_verification_sms_silently(env) {
        let kit = Kit::start_with(&env, |s| s.sms_daily_budget = 2).await;
        for phone in ["606 000 001", "606 000 002", "606 000 003"] {
            assert_eq!(kit.post("/api/v1/subscriptions", &json!({"districts": ["bienczyce"], "phone": phone})).await.status(), 202);
        }
        kit.sms_text(1).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(kit.sms.requests().len(), 2, "the third number is over the city's budget");
        let metrics = kit.app.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains("hejnal_sms_verification_budget_used_ratio"), "the alarm gauge is exported");
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn resend_answers_the_same_for_known_and_unknown_and_sends_after_the_minute(env) {
        let kit = Kit::start(&env).await;
        assert_eq!(kit.post("/api/v1/subscriptions", &json!({"districts": ["debniki"], "email": "late@example.com"})).await.status(), 202);
        kit.email_text(0).await;
        let known = kit.post("/api/v1/subscriptions/resend", &json!({"email": "late@example.com"})).await;
        let unknown = kit.post("/api/v1/subscriptions/resend", &json!({"email": "nobody@example.com"})).await;
        assert_eq!((known.status().as_u16(), unknown.status().as_u16()), (202, 202));
        assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(kit.smtp.received().len(), 1, "within the minute, the resend is silently skipped");
        let bad = kit.post("/api/v1/subscriptions/resend", &json!({"email": "x"})).await;
        assert_eq!(bad.status(), 422);
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn a_verification_sms_the_gateway_refused_once_is_retried_and_arrives(env) {
        use hejnal::testkit::sms::Reply;
        let kit = Kit::start(&env).await;
        kit.sms.then(Reply::new(500, "{}"));
        assert_eq!(kit.post("/api/v1/subscriptions", &json!({"districts": ["swoszowice"], "phone": "607 000 333"})).await.status(), 202);
        let sms = &kit.sms;
        // The first try fails (500); the retry comes 30 s later and must not be held back by
        // the per-contact limit its own first try recorded.
        eventually(Duration::from_secs(90), "the retried SMS", || async move { (sms.requests().len() >= 2).then_some(()) }).await;
        let second = kit.sms.requests()[1].json();
        assert_eq!(second["to"], "+48607000333");
        kit.app.shutdown().await.unwrap();
    }
}
