//! The whole way: an official writes an alert, a second approves it, and three residents get
//! it exactly once on each channel; receipts, an Update and a Cancel follow.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};

use super::{Desk, alert, count};
use crate::{both_backends, helpers::eventually, residents::Kit};

both_backends! {
    async fn an_approved_alert_reaches_each_resident_once_per_channel_and_an_update_follows(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = desk.residents(3, None).await;
        let (status, created) = desk.post(&desk.author, "/api/v1/notices", &alert(&["sms", "email", "push"])).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!((created["state"].as_str(), created["lane"].as_str()), (Some("draft"), Some("emergency")));
        let id = created["id"].as_i64().unwrap();

        // An Actual alert waits for a second official; its author may not approve it.
        let (_, submitted) = desk.post(&desk.author, &format!("/api/v1/notices/{id}/submit"), &json!({})).await;
        assert_eq!(submitted["state"], "pending");
        let (status, refused) = desk.post(&desk.author, &format!("/api/v1/notices/{id}/approve"), &json!({})).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (403, Some("forbidden")), "an author role cannot approve");
        let (status, approved) = desk.post(&desk.approver, &format!("/api/v1/notices/{id}/approve"), &json!({})).await;
        assert_eq!(status, 200, "{approved}");
        assert_eq!((approved["state"].as_str(), approved["approval"].as_str()), (Some("published"), Some("second_official")));

        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(notice["fanout"]["recipients"], 9);
        for channel in ["sms", "email", "push"] {
            assert_eq!(count(&notice, channel, "sent"), 3, "{channel}: {notice}");
        }

        // Each address exactly once, at the real peers.
        let smtp = &desk.kit.smtp;
        let mails = eventually(Duration::from_secs(10), "3 emails", || async move { Some(smtp.received()).filter(|m| m.len() >= 3) }).await;
        let to: BTreeSet<String> = mails.iter().flat_map(|m| m.rcpt_to.clone()).collect();
        assert_eq!(to, people.iter().map(|p| p.email.clone()).collect::<BTreeSet<_>>());
        assert_eq!(mails.len(), 3);
        let texts: Vec<Value> = desk.kit.sms.requests().iter().map(|r| r.json()).collect();
        let phones: BTreeSet<String> = texts.iter().map(|t| t["to"].as_str().unwrap().to_owned()).collect();
        assert_eq!(phones, people.iter().map(|p| p.phone.clone()).collect::<BTreeSet<_>>());
        assert_eq!(texts.len(), 3);
        assert!(texts.iter().all(|t| t["text"].as_str().unwrap().starts_with("Awaria wodociągu: Brak wody")), "{texts:?}");
        let pushes = desk.kit.push.received();
        assert_eq!(pushes.len(), 3, "each push decrypted under a valid VAPID token");
        assert!(pushes.iter().all(|p| p.json()["title"] == "Awaria wodociągu" && p.urgency.as_deref() == Some("high")), "{pushes:?}");

        // Every delivery is sent with the provider's id, and the request carried its reference.
        for p in &people {
            for (channel, address) in [("email", &p.email), ("sms", &p.phone), ("push", &p.push.endpoint)] {
                let (delivery, status, provider_id) = desk.store.delivery_of(id, channel, address).await.unwrap().expect("a delivery");
                assert_eq!(status, "sent", "{channel}");
                assert!(provider_id.is_some_and(|p| !p.is_empty()), "{channel}");
                if channel == "sms" {
                    let sent = texts.iter().find(|t| t["to"] == **address).unwrap();
                    assert_eq!(sent["reference"], delivery.to_string());
                }
            }
        }

        // Receipts move SMS forward to delivered, once, whatever order and repeats they come in.
        let (delivery, _, _) = desk.store.delivery_of(id, "sms", &people[0].phone).await.unwrap().unwrap();
        for status in ["delivered", "failed", "delivered"] {
            let res = desk.kit.app.client.post(format!("{}/api/v1/sms/receipts", desk.kit.app.address))
                .bearer_auth("inbound-secret")
                .json(&json!({"reference": delivery.to_string(), "status": status}))
                .send().await.unwrap();
            assert_eq!(res.status(), 200);
        }
        let notice = desk.notice(id).await;
        assert_eq!((count(&notice, "sms", "delivered"), count(&notice, "sms", "sent")), (1, 2), "{notice}");
        let trace: Value = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/deliveries/{delivery}/events"), None).await.1;
        let outcomes: Vec<&str> = trace.as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["sent", "receipt:delivered", "receipt:failed", "receipt:delivered"]);

        // An Update reaches the same people on the same channels, without a second approval.
        let update = json!({
            "kind": "alert", "msg_type": "Update", "status": "Actual", "severity": "Minor",
            "urgency": "Past", "certainty": "Observed", "references": id,
            "texts": {"pl": {"title": "Woda wróciła", "body": "Dostawy wody przywrócone."}}
        });
        let (status, created) = desk.post(&desk.author, "/api/v1/notices", &update).await;
        assert_eq!(status, 201, "{created}");
        let update_id = created["id"].as_i64().unwrap();
        let (_, submitted) = desk.post(&desk.author, &format!("/api/v1/notices/{update_id}/submit"), &json!({})).await;
        assert_eq!((submitted["state"].as_str(), submitted["approval"].as_str()), (Some("published"), Some("correction")), "{submitted}");
        assert_eq!(submitted["lane"], "emergency", "a correction of an emergency travels in its lane");
        let notice = desk.settled(update_id, Duration::from_secs(60)).await;
        assert_eq!(notice["fanout"]["recipients"], 9, "{notice}");
        let sms = desk.kit.sms.requests();
        assert_eq!(sms.len(), 6);
        let later: BTreeSet<String> = sms[3..].iter().map(|r| r.json()["to"].as_str().unwrap().to_owned()).collect();
        assert_eq!(later, phones);
        let pushes = desk.kit.push.received();
        assert_eq!(pushes[3].topic, pushes[0].topic, "the update replaces the alert on the screen");
    }
}

both_backends! {
    async fn a_cancel_stops_what_is_queued_and_a_cancel_message_reaches_whoever_got_the_original(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        // Residents asleep now (quiet hours around this minute, Kraków time) hold a Moderate notice.
        let now = chrono::Utc::now() + chrono::Duration::seconds(hejnal::domain::warsaw_offset(chrono::Utc::now()).local_minus_utc() as i64);
        let from = (now - chrono::Duration::hours(1)).format("%H:%M").to_string();
        let to = (now + chrono::Duration::hours(1)).format("%H:%M").to_string();
        desk.residents(2, Some((&from, &to))).await;
        let awake = desk.residents(1, None).await;
        let mut planned = alert(&["sms"]);
        planned["severity"] = json!("Moderate");
        planned["kind"] = json!("planned");
        let id = desk.publish(&planned).await;
        let notice = eventually(Duration::from_secs(30), "the awake resident's SMS", || async {
            let n = desk.notice(id).await;
            (count(&n, "sms", "sent") == 1 && count(&n, "sms", "queued") == 2).then_some(n)
        }).await;
        assert_eq!(notice["fanout"]["recipients"], 3);
        assert_eq!(desk.kit.sms.requests()[0].json()["to"], awake[0].phone, "only the resident outside quiet hours");

        // Cancel: the two held deliveries are cancelled and never sent.
        let (status, cancelled) = desk.post(&desk.author, &format!("/api/v1/notices/{id}/cancel"), &json!({})).await;
        assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")));
        assert_eq!((count(&cancelled, "sms", "cancelled"), count(&cancelled, "sms", "queued")), (2, 0), "{cancelled}");

        // A Cancel message goes to the one who got the original, and no one else.
        let withdrawal = json!({
            "kind": "planned", "msg_type": "Cancel", "status": "Actual", "severity": "Minor",
            "urgency": "Past", "certainty": "Observed", "references": id,
            "texts": {"pl": {"title": "Odwołane", "body": "Prace nie odbędą się."}}
        });
        let (status, created) = desk.post(&desk.author, "/api/v1/notices", &withdrawal).await;
        assert_eq!(status, 201, "{created}");
        let cancel_id = created["id"].as_i64().unwrap();
        desk.post(&desk.author, &format!("/api/v1/notices/{cancel_id}/submit"), &json!({})).await;
        let notice = desk.settled(cancel_id, Duration::from_secs(30)).await;
        assert_eq!(notice["fanout"]["recipients"], 1, "{notice}");
        let sms = desk.kit.sms.requests();
        assert_eq!(sms.len(), 2);
        assert_eq!(sms[1].json()["to"], awake[0].phone);
        assert!(sms[1].json()["text"].as_str().unwrap().starts_with("Odwołane"));
    }
}
