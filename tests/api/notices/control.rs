//! Approval and control: double clicks, Idempotency-Key, self-approval, the test audience,
//! break glass, the preview and the live progress stream.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Desk, alert, count, token_for};
use crate::{both_backends, residents::Kit};

both_backends! {
    async fn fifty_concurrent_approvals_and_a_repeated_key_give_one_notice_and_one_fan_out(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = desk.residents(2, None).await;
        // The same Idempotency-Key twice: one notice, the same answer.
        let create = |key: &'static str| {
            let desk = &desk;
            async move {
                let res = desk.kit.app.client.post(format!("{}/api/v1/notices", desk.kit.app.address))
                    .bearer_auth(&desk.author).header("Idempotency-Key", key).json(&alert(&["sms"])).send().await.unwrap();
                (res.status().as_u16(), res.json::<Value>().await.unwrap())
            }
        };
        let (first, again) = tokio::join!(create("k-1"), create("k-1"));
        assert_eq!((first.0, again.0), (201, 201));
        assert_eq!(first.1["id"], again.1["id"]);
        let listed = desk.call(&desk.author, reqwest::Method::GET, "/api/v1/notices", None).await.1;
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        let id = first.1["id"].as_i64().unwrap();
        desk.post(&desk.author, &format!("/api/v1/notices/{id}/submit"), &json!({})).await;

        let (path, empty) = (format!("/api/v1/notices/{id}/approve"), json!({}));
        let approvals = futures::future::join_all((0..50).map(|_| desk.post(&desk.approver, &path, &empty))).await;
        assert!(approvals.iter().all(|(status, n)| *status == 200 && n["state"] == "published"), "{approvals:?}");
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "sms", "sent"), 2);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sms = desk.kit.sms.requests();
        assert_eq!(sms.len(), 2, "each resident once: {:?}", sms.iter().map(|r| r.json()).collect::<Vec<_>>());
        assert_ne!(sms[0].json()["to"], sms[1].json()["to"]);
        assert!(people.iter().any(|p| sms[0].json()["to"] == p.phone));
    }
}

both_backends! {
    async fn an_admin_may_not_approve_their_own_alert_and_a_rejection_needs_a_reason(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let admin = token_for(&desk.store, "admin@krakow.pl", "admin").await;
        let (_, created) = desk.post(&admin, "/api/v1/notices", &alert(&["email"])).await;
        let id = created["id"].as_i64().unwrap();
        desk.post(&admin, &format!("/api/v1/notices/{id}/submit"), &json!({})).await;
        let (status, body) = desk.post(&admin, &format!("/api/v1/notices/{id}/approve"), &json!({})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("self_approval")));
        let (status, body) = desk.post(&desk.approver, &format!("/api/v1/notices/{id}/reject"), &json!({"reason": " "})).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some("reason")));
        let (status, body) = desk.post(&desk.approver, &format!("/api/v1/notices/{id}/reject"), &json!({"reason": "wrong district"})).await;
        assert_eq!((status, body["state"].as_str(), body["reject_reason"].as_str()), (200, Some("rejected"), Some("wrong district")));
        let (status, body) = desk.post(&desk.approver, &format!("/api/v1/notices/{id}/approve"), &json!({})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("wrong_state")));
    }
}

both_backends! {
    async fn an_exercise_reaches_only_the_test_audience_and_says_so(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = desk.residents(3, None).await;
        let admin = token_for(&desk.store, "admin@krakow.pl", "admin").await;
        let (status, _) = desk.call(&admin, reqwest::Method::PUT, "/api/v1/test-audience", Some(&json!({"phone": people[1].phone, "member": true}))).await;
        assert_eq!(status, 204);
        let mut exercise = alert(&["sms"]);
        exercise["status"] = json!("Exercise");
        let id = desk.publish(&exercise).await;
        let notice = desk.settled(id, Duration::from_secs(30)).await;
        assert_eq!(notice["approval"], "not_required", "exercises need no second official");
        assert_eq!(notice["fanout"]["recipients"], 1);
        let sms = desk.kit.sms.requests();
        assert_eq!(sms.len(), 1);
        assert_eq!(sms[0].json()["to"], people[1].phone);
        assert!(sms[0].json()["text"].as_str().unwrap().starts_with("[ĆWICZENIA] Awaria"), "{}", sms[0].body);
    }
}

both_backends! {
    async fn break_glass_sends_a_template_two_officials_approved(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(1, None).await;
        let (status, t) = desk.post(&desk.author, "/api/v1/notice-templates", &json!({"name": "Flood: evacuate", "notice": alert(&["sms"])})).await;
        assert_eq!(status, 201, "{t}");
        let tid = t["id"].as_i64().unwrap();
        let (status, body) = desk.post(&desk.other_author, &format!("/api/v1/notice-templates/{tid}/send"), &json!({})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("template_not_approved")));
        let (status, _) = desk.post(&desk.approver, &format!("/api/v1/notice-templates/{tid}/approve"), &json!({})).await;
        assert_eq!(status, 200);
        let (status, sent) = desk.post(&desk.other_author, &format!("/api/v1/notice-templates/{tid}/send"), &json!({})).await;
        assert_eq!(status, 201, "{sent}");
        assert_eq!((sent["state"].as_str(), sent["approval"].as_str(), sent["template_id"].as_i64()), (Some("published"), Some("break_glass"), Some(tid)));
        desk.settled(sent["id"].as_i64().unwrap(), Duration::from_secs(30)).await;
        assert_eq!(desk.kit.sms.requests().len(), 1);
        let audit = desk.store.recent_audit(20).await.unwrap();
        assert!(audit.iter().any(|(_, action, _, _)| action == "notices.break_glass"), "{audit:?}");
    }
}

both_backends! {
    async fn the_preview_counts_segments_and_recipients_and_progress_streams_live(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(2, None).await;
        let (status, preview) = desk.post(&desk.author, "/api/v1/notices/preview", &alert(&["sms", "email"])).await;
        assert_eq!(status, 200, "{preview}");
        let sms = &preview["messages"]["sms"]["pl"];
        assert_eq!(sms["sms"]["encoding"], "ucs2", "Polish letters need UCS-2: {sms}");
        assert!(sms["sms"]["segments"].as_u64().unwrap() >= 2, "{sms}");
        assert_eq!(preview["recipients"], json!({"email": 2, "sms": 2}));
        let mut plain = alert(&["sms"]);
        plain["transliterate"] = json!(true);
        let (_, preview) = desk.post(&desk.author, "/api/v1/notices/preview", &plain).await;
        assert_eq!(preview["messages"]["sms"]["pl"]["sms"]["encoding"], "gsm7", "{preview}");

        let id = desk.publish(&alert(&["sms"])).await;
        let res = desk.kit.app.client.get(format!("{}/api/v1/notices/{id}/events", desk.kit.app.address)).bearer_auth(&desk.author).send().await.unwrap();
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let mut res = res;
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, res.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let last: Value = seen.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().map(|d| serde_json::from_str(d).unwrap()).expect("progress events");
        assert!(seen.contains("event: progress"), "{seen}");
        assert_eq!(count(&last, "sms", "sent"), 2, "the stream ends on the settled counts: {last}");
    }
}

both_backends! {
    async fn an_approved_notice_with_send_at_waits_for_it_and_never_goes_early(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(1, None).await;
        let send_at = chrono::Utc::now() + chrono::Duration::seconds(3);
        let mut body = alert(&["sms"]);
        body["send_at"] = json!(send_at.to_rfc3339());
        let (_, created) = desk.post(&desk.author, "/api/v1/notices", &body).await;
        let id = created["id"].as_i64().unwrap();
        desk.post(&desk.author, &format!("/api/v1/notices/{id}/submit"), &json!({})).await;
        let (_, approved) = desk.post(&desk.approver, &format!("/api/v1/notices/{id}/approve"), &json!({})).await;
        assert_eq!(approved["state"], "scheduled", "{approved}");
        desk.settled(id, Duration::from_secs(30)).await;
        assert!(chrono::Utc::now() >= send_at, "sent before send_at");
        assert_eq!(desk.notice(id).await["state"], "published");
        assert_eq!(desk.kit.sms.requests().len(), 1);
    }
}

both_backends! {
    async fn a_fan_out_chunk_run_again_or_twice_at_once_adds_each_resident_once(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(3, None).await;
        // A draft: nothing fans it out but this test.
        let (status, created) = desk.post(&desk.author, "/api/v1/notices", &alert(&["sms"])).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        let (low, high) = desk.store.subscriber_id_span().await.unwrap();
        let chunk = hejnal::store::FanoutPlan {
            notice_id: id, channel: "sms".into(), district_any: -1, interest_any: 0,
            testers_only: false, follows: None, subscribers: (low, high + 100),
        };
        let queued = || async { desk.store.notice_progress(id).await.unwrap() };

        // Two runs racing over a fresh chunk: one inserts; the other finds the rows or fails on
        // the unique key (PostgreSQL), and its job would run again.
        let (a, b) = tokio::join!(desk.store.fan_out_channel(&chunk, 1), desk.store.fan_out_channel(&chunk, 1));
        let first = a.as_ref().or(b.as_ref()).expect("one of two racing runs succeeds").expect("the notice is not cancelled");
        assert_eq!(first.count, 3);
        assert_eq!(queued().await, vec![("sms".to_string(), "queued".to_string(), 3)]);

        // Run again (a resumed fan-out): the same range, nothing added.
        assert_eq!(desk.store.fan_out_channel(&chunk, 2).await.unwrap(), Some(first));
        // Residents who joined since: only they are added.
        desk.residents(2, None).await;
        let grown = desk.store.fan_out_channel(&chunk, 3).await.unwrap().unwrap();
        assert_eq!((grown.first, grown.count), (first.first, 5));
        assert_eq!(queued().await, vec![("sms".to_string(), "queued".to_string(), 5)]);

        // Cancelled: its queued deliveries are closed, and a fan-out still running inserts no
        // more (its next chunk answers None, and the job stops there).
        let (status, cancelled) = desk.post(&desk.author, &format!("/api/v1/notices/{id}/cancel"), &json!({})).await;
        assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");
        desk.residents(4, None).await;
        assert_eq!(desk.store.fan_out_channel(&chunk, 4).await.unwrap(), None);
        assert_eq!(queued().await, vec![("sms".to_string(), "cancelled".to_string(), 5)], "the 4 new residents got no row");
    }
}
