//! The whole path a resident walks: sign up, confirm each contact, change, export, leave.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Kit, link_after, signup};
use crate::{both_backends, helpers::eventually};

both_backends! {
    async fn a_resident_signs_up_verifies_changes_exports_and_erases(env) {
        let kit = Kit::start(&env).await;
        let target = kit.push.subscribe();
        let res = kit.post("/api/v1/subscriptions", &signup("Jan.Kowalski@Example.com", "601 234 567", &target)).await;
        assert_eq!(res.status(), 202);

        // Email: a link to /v/{token}, in English, with the preferences link beside it.
        let text = kit.email_text(0).await;
        assert!(text.contains("To confirm, open this link"), "{text}");
        let mail = &kit.smtp.received()[0];
        assert_eq!(mail.rcpt_to, vec!["Jan.Kowalski@example.com".to_owned()]);
        let confirm = link_after(&text, "http://127.0.0.1");
        assert!(confirm.contains("/v/"), "{confirm}");
        let preferences_page = link_after(&text[text.find("Settings").unwrap_or_else(|| panic!("{text:?}"))..], "http://127.0.0.1");
        let token = preferences_page.rsplit('/').next().unwrap().to_owned();

        // Nothing is verified yet.
        let prefs: Value = kit.app.get(&format!("/api/v1/preferences/{token}")).await.json().await.unwrap();
        assert!(prefs["contacts"].as_array().unwrap().iter().filter(|c| c["channel"] != "push").all(|c| c["status"] == "pending"), "{prefs}");

        let page = kit.app.client.get(&confirm).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Address confirmed") && html.contains("lang=\"en\""), "{html}");
        assert_eq!(kit.app.client.get(&confirm).send().await.unwrap().status(), 404, "a link works once");

        // SMS: a 6-digit code, sent to the gateway with the number in E.164.
        let sms = kit.sms_text(0).await;
        assert_eq!(sms["to"], "+48601234567");
        let text = sms["text"].as_str().unwrap();
        let code: String = text.chars().filter(|c| c.is_ascii_digit()).take(6).collect();
        assert_eq!(code.len(), 6, "{text}");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let res = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "+48 601 234 567", "code": wrong})).await;
        assert_eq!(res.status(), 422);
        let res = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "601234567", "code": code})).await;
        assert_eq!(res.status(), 200);
        let verified: Value = res.json().await.unwrap();
        assert!(verified["preferences_url"].as_str().unwrap().ends_with(&token));
        let again = kit.post("/api/v1/subscriptions/verify", &json!({"phone": "601234567", "code": code})).await;
        assert_eq!(again.status(), 422, "a code works once");

        // Push: a welcome the receiver decrypted, under a VAPID token it verified.
        let push = &kit.push;
        let welcome = eventually(Duration::from_secs(30), "the push welcome", || async move { push.received().first().cloned() }).await;
        assert_eq!(welcome.json()["title"], "Hejnał: notifications are on");

        let prefs: Value = eventually(Duration::from_secs(30), "every contact verified", || {
            let kit = &kit;
            let token = token.clone();
            async move {
                let p: Value = kit.app.get(&format!("/api/v1/preferences/{token}")).await.json().await.unwrap();
                p["contacts"].as_array().unwrap().iter().all(|c| c["status"] == "verified").then_some(p)
            }
        })
        .await;
        assert_eq!(prefs["districts"], json!(["debniki", "podgorze"]));
        assert_eq!(prefs["quiet_hours"], json!({"from": "22:00", "to": "07:00"}));

        // Change: districts, language, quiet hours cleared.
        let res = kit.put(&format!("/api/v1/preferences/{token}"), &json!({"districts": ["nowa-huta"], "language": "uk", "quiet_hours": null})).await;
        assert_eq!(res.status(), 200);
        let prefs: Value = res.json().await.unwrap();
        assert_eq!((prefs["districts"].clone(), prefs["language"].clone(), prefs["quiet_hours"].clone()), (json!(["nowa-huta"]), json!("uk"), Value::Null));
        let bad = kit.put(&format!("/api/v1/preferences/{token}"), &json!({"districts": ["atlantis"]})).await;
        assert_eq!(bad.status(), 422);
        assert_eq!(bad.json::<Value>().await.unwrap()["error"]["field"], "districts");

        // Leave one channel: consent withdrawn and recorded.
        let res = kit.delete(&format!("/api/v1/preferences/{token}?channel=sms")).await;
        let prefs: Value = res.json().await.unwrap();
        let sms_status = prefs["contacts"].as_array().unwrap().iter().find(|c| c["channel"] == "sms").unwrap()["status"].clone();
        assert_eq!(sms_status, "unsubscribed");

        let export: Value = kit.app.get(&format!("/api/v1/preferences/{token}/export")).await.json().await.unwrap();
        let consents = export["consents"].as_array().unwrap();
        let granted: Vec<&str> = consents.iter().filter(|c| c["action"] == "granted").map(|c| c["method"].as_str().unwrap()).collect();
        assert_eq!(granted.len(), 3, "{consents:?}");
        for method in ["email_link", "sms_code", "push_welcome"] {
            assert!(granted.contains(&method), "{method} missing: {consents:?}");
        }
        assert!(consents.iter().any(|c| c["action"] == "withdrawn" && c["channel"] == "sms"));
        assert!(consents.iter().all(|c| c["consent_version"] == "2026-11-v1"));
        assert_eq!(export["preferences"]["contacts"].as_array().unwrap().len(), 3);

        // The page works without JavaScript, in the resident's language.
        let html = kit.app.get(&format!("/preferences/{token}")).await.text().await.unwrap();
        assert!(html.contains("Ваші сповіщення") && html.contains("<form method=\"post\""), "{html}");
        assert!(!html.contains("<script"));

        // Erase: the link answers 410 from then on; consents stay, without addresses.
        let res = kit.post(&format!("/api/v1/preferences/{token}/erase"), &json!({})).await;
        assert_eq!(res.status(), 204);
        assert_eq!(kit.app.get(&format!("/api/v1/preferences/{token}")).await.status(), 410);
        assert_eq!(kit.app.get(&format!("/api/v1/preferences/{token}/export")).await.status(), 410);
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn the_preferences_form_saves_without_javascript(env) {
        let kit = Kit::start(&env).await;
        let res = kit.post("/api/v1/subscriptions", &json!({"districts": ["krowodrza"], "email": "ola@example.com"})).await;
        assert_eq!(res.status(), 202);
        let text = kit.email_text(0).await;
        let page = link_after(&text[text.find("Ustawienia").unwrap()..], "http://127.0.0.1");
        let form = "district=bronowice&district=zwierzyniec&interest=roads&channel=email&language=pl";
        let res = kit.app.client.post(&page).header("content-type", "application/x-www-form-urlencoded").body(form).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(html.contains("Zapisano zmiany."), "{html}");
        let token = page.rsplit('/').next().unwrap();
        let prefs: Value = kit.app.get(&format!("/api/v1/preferences/{token}")).await.json().await.unwrap();
        assert_eq!(prefs["districts"], json!(["bronowice", "zwierzyniec"]));
        assert_eq!(prefs["interests"], json!(["roads"]));
        kit.app.shutdown().await.unwrap();
    }
}
