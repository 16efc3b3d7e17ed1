//! One-click unsubscribe from an email (RFC 8058): the URL in `List-Unsubscribe`, posted to as a
//! mail client does.

use serde_json::{Value, json};

use super::{Kit, link_after};
use crate::both_backends;

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

async fn post_form(kit: &Kit, url: &str, body: &'static str) -> reqwest::Response {
    kit.app.client.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap()
}

async fn contact_status(kit: &Kit, token: &str, channel: &str) -> String {
    let prefs: Value = kit.app.get(&format!("/api/v1/preferences/{token}")).await.json().await.unwrap();
    let contact = prefs["contacts"].as_array().unwrap().iter().find(|c| c["channel"] == channel).unwrap();
    contact["status"].as_str().unwrap().to_owned()
}

both_backends! {
    async fn a_one_click_post_unsubscribes_email_only_and_records_it(env) {
        let kit = Kit::start(&env).await;
        let signup = json!({"districts": ["krowodrza"], "language": "pl", "email": "ola@example.com", "phone": "603 222 333"});
        assert_eq!(kit.post("/api/v1/subscriptions", &signup).await.status(), 202);
        let text = kit.email_text(0).await;
        kit.app.client.get(link_after(&text, "http://127.0.0.1")).send().await.unwrap().error_for_status().unwrap();
        let page = link_after(&text[text.find("Ustawienia").unwrap()..], "http://127.0.0.1");
        let token = page.rsplit('/').next().unwrap().to_owned();

        // The email's header carries the one-click URL of this resident's link.
        let header = kit.smtp.received()[0].header("List-Unsubscribe").expect("a List-Unsubscribe header");
        let url: String = header.trim_start_matches('<').trim_end_matches('>').split_whitespace().collect();
        assert_eq!(url, format!("{}/api/v1/preferences/{token}/one-click?channel=email", kit.app.address));
        assert_eq!(kit.smtp.received()[0].header("List-Unsubscribe-Post").as_deref(), Some(ONE_CLICK));

        // A POST without the RFC 8058 field changes nothing.
        let refused = post_form(&kit, &url, "unsubscribe=yes").await;
        assert_eq!(refused.status(), 422);
        assert_eq!(contact_status(&kit, &token, "email").await, "verified");

        let res = post_form(&kit, &url, ONE_CLICK).await;
        assert_eq!(res.status(), 200);
        let body = res.text().await.unwrap();
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"unsubscribed": "email"}));
        assert!(!body.contains("ola@") && !body.contains("603"), "no personal data: {body}");
        assert_eq!(contact_status(&kit, &token, "email").await, "unsubscribed");
        assert_eq!(contact_status(&kit, &token, "sms").await, "pending", "SMS is left as it was");

        // Mail clients may repeat it: the same answer, and no second withdrawal.
        assert_eq!(post_form(&kit, &url, ONE_CLICK).await.status(), 200);
        let export: Value = kit.app.get(&format!("/api/v1/preferences/{token}/export")).await.json().await.unwrap();
        let consents: Vec<(&str, &str, &str)> = export["consents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["channel"].as_str().unwrap(), c["action"].as_str().unwrap(), c["method"].as_str().unwrap()))
            .collect();
        assert_eq!(consents, [("email", "granted", "email_link"), ("email", "withdrawn", "one_click")]);

        // A browser opening the link (a mail client without one-click) lands on the preferences page.
        let opened = kit.app.get(&format!("/api/v1/preferences/{token}/one-click?channel=email")).await;
        assert_eq!((opened.status().as_u16(), opened.url().path()), (200, format!("/preferences/{token}").as_str()));
        kit.app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn a_link_that_is_not_genuine_answers_as_everywhere_else(env) {
        let kit = Kit::start(&env).await;
        for token in ["AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", "nonsense"] {
            let elsewhere = kit.app.get(&format!("/api/v1/preferences/{token}")).await;
            let url = format!("{}/api/v1/preferences/{token}/one-click?channel=email", kit.app.address);
            let one_click = post_form(&kit, &url, ONE_CLICK).await;
            assert_eq!(one_click.status(), elsewhere.status(), "{token}");
            assert_eq!(one_click.status(), 404, "{token}");
            let (a, b): (Value, Value) = (one_click.json().await.unwrap(), elsewhere.json().await.unwrap());
            assert_eq!(a["error"]["code"], b["error"]["code"], "{token}");
        }
        kit.app.shutdown().await.unwrap();
    }
}
