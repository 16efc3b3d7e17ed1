//! What providers throw at deliveries: rate limits, outages, refusals, vanished push
//! subscriptions, a stalled SMTP server, and an emergency that expires before it can go.

use std::time::{Duration, Instant};

use hejnal::testkit::{sms::Reply, smtp::{Act, Stage}};
use serde_json::json;

use super::{Desk, alert, count};
use crate::{both_backends, helpers::eventually, residents::Kit};

both_backends! {
    async fn rate_limits_and_outages_are_retried_and_refusals_fail_for_good(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = desk.residents(3, None).await;
        // One 429 asking for 2 s, one 500, one permanent 400; everything after succeeds.
        desk.kit.sms.then(Reply::new(429, "slow down").header("Retry-After", "2"));
        desk.kit.sms.then(Reply::new(500, "oops"));
        desk.kit.sms.then(Reply::new(400, r#"{"error": "invalid number"}"#));
        let started = Instant::now();
        let id = desk.publish(&alert(&["sms"])).await;
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!((count(&notice, "sms", "sent"), count(&notice, "sms", "failed")), (2, 1), "{notice}");
        assert!(started.elapsed() >= Duration::from_secs(2), "the Retry-After was honoured");
        // The refused one failed at once; the other two needed a second attempt.
        let requests: Vec<_> = desk.kit.sms.requests().iter().map(|r| r.json()["to"].as_str().unwrap().to_owned()).collect();
        assert_eq!(requests.len(), 5, "{requests:?}");
        let mut failed = 0;
        for p in &people {
            let (_, status, _) = desk.store.delivery_of(id, "sms", &p.phone).await.unwrap().unwrap();
            failed += usize::from(status == "failed");
        }
        assert_eq!(failed, 1);
    }
}

both_backends! {
    async fn a_retry_that_falls_due_while_its_batch_is_still_sending_is_taken_up(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(2, None).await;
        // One SMS fails (retry in 1.6-2.4 s); the other is accepted only after 4 s, so the
        // retry falls due before the batch ends.
        desk.kit.sms.then(Reply::new(500, "oops"));
        desk.kit.sms.then(Reply::new(200, r#"{"id": "slow-1"}"#).after(Duration::from_secs(4)));
        let id = desk.publish(&alert(&["sms"])).await;
        // Within the 120-s grace after which the sweeper would queue it again.
        let notice = desk.settled(id, Duration::from_secs(30)).await;
        assert_eq!(count(&notice, "sms", "sent"), 2, "{notice}");
        assert_eq!(desk.kit.sms.requests().len(), 3, "one failure, one slow acceptance, one retry");
    }
}

both_backends! {
    async fn a_gone_push_subscription_fails_and_is_never_used_again(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = desk.residents(1, None).await;
        desk.kit.push.then(410, None);
        let id = desk.publish(&alert(&["push"])).await;
        let notice = desk.settled(id, Duration::from_secs(30)).await;
        assert_eq!(count(&notice, "push", "failed"), 1, "{notice}");
        let (delivery, _, _) = desk.store.delivery_of(id, "push", &people[0].push.endpoint).await.unwrap().unwrap();
        let trace = desk.store.delivery_events(delivery).await.unwrap();
        assert_eq!(trace.len(), 1, "{trace:?}");
        assert!(trace[0].detail.as_deref().unwrap_or("").contains("410"), "{trace:?}");
        let again = desk.publish(&alert(&["push"])).await;
        let notice = desk.settled(again, Duration::from_secs(30)).await;
        assert_eq!(notice["fanout"]["recipients"], 0, "the gone subscription is no longer in the audience: {notice}");
        assert!(desk.store.delivery_of(again, "push", &people[0].push.endpoint).await.unwrap().is_none());
    }
}

both_backends! {
    async fn a_stalled_smtp_server_does_not_hold_up_sms(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(2, None).await;
        desk.kit.smtp.script(Stage::EndOfData, Act::Stall(Duration::from_secs(4)));
        let id = desk.publish(&alert(&["email", "sms"])).await;
        let started = Instant::now();
        let notice = eventually(Duration::from_secs(30), "SMS sent", || async {
            let n = desk.notice(id).await;
            (count(&n, "sms", "sent") == 2).then_some(n)
        }).await;
        let sms_done = started.elapsed();
        assert!(count(&notice, "email", "sent") < 2, "email is still stalled when SMS is done: {notice}");
        let notice = desk.settled(id, Duration::from_secs(30)).await;
        assert_eq!(count(&notice, "email", "sent"), 2, "{notice}");
        assert!(sms_done < Duration::from_secs(4), "SMS waited for the stalled SMTP server ({sms_done:?})");
    }
}

both_backends! {
    async fn an_emergency_that_cannot_go_before_it_expires_is_marked_expired(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(1, None).await;
        for _ in 0..20 {
            desk.kit.sms.then(Reply::new(503, "down"));
        }
        let mut body = alert(&["sms"]);
        body["expires"] = json!((chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339());
        let id = desk.publish(&body).await;
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "sms", "expired"), 1, "{notice}");
        let tried = desk.kit.sms.requests().len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(desk.kit.sms.requests().len(), tried, "nothing is sent after expiry");
    }
}
