//! Replies to our SMS number: STOP and START, authenticated by the provider's shared secret.

use serde_json::{Value, json};

use super::Kit;
use crate::both_backends;

async fn inbound(kit: &Kit, secret: Option<&str>, from: &str, text: &str) -> reqwest::Response {
    let mut req = kit.app.client.post(format!("{}/api/v1/sms/inbound", kit.app.address)).json(&json!({"from": from, "text": text}));
    if let Some(s) = secret {
        req = req.bearer_auth(s);
    }
    req.send().await.unwrap()
}

both_backends! {
    async fn stop_unsubscribes_a_number_and_start_brings_it_back(env) {
        let kit = Kit::start(&env).await;
        assert_eq!(kit.post("/api/v1/subscriptions", &json!({"districts": ["czyzyny"], "phone": "605 111 222"})).await.status(), 202);
        let sms = kit.sms_text(0).await;
        let code: String = sms["text"].as_str().unwrap().chars().filter(|c| c.is_ascii_digit()).take(6).collect();
        let verified: Value = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "605111222", "code": code})).await.json().await.unwrap();
        let token = verified["preferences_url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
        let status = |p: Value| p["contacts"][0]["status"].as_str().unwrap().to_owned();

        assert_eq!(inbound(&kit, None, "48605111222", "STOP").await.status(), 401);
        assert_eq!(inbound(&kit, Some("guess"), "48605111222", "STOP").await.status(), 401);
        let stop = inbound(&kit, Some("inbound-secret"), "48605111222", " stop ").await;
        assert_eq!(stop.status(), 200);
        let stop_body = stop.text().await.unwrap();
        let prefs: Value = kit.app.get(&format!("/api/v1/preferences/{token}")).await.json().await.unwrap();
        assert_eq!(status(prefs), "unsubscribed");

        let start = inbound(&kit, Some("inbound-secret"), "+48 605 111 222", "START").await;
        assert_eq!(start.status(), 200);
        let prefs: Value = kit.app.get(&format!("/api/v1/preferences/{token}")).await.json().await.unwrap();
        assert_eq!(status(prefs), "verified");

        let export: Value = kit.app.get(&format!("/api/v1/preferences/{token}/export")).await.json().await.unwrap();
        let methods: Vec<&str> = export["consents"].as_array().unwrap().iter().map(|c| c["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["sms_code", "sms_stop", "sms_start"]);

        // An unknown number gets the same answer.
        let unknown = inbound(&kit, Some("inbound-secret"), "48609999999", "STOP").await;
        assert_eq!(unknown.text().await.unwrap(), stop_body);
        kit.app.shutdown().await.unwrap();
    }
}
