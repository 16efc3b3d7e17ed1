//! Providers that misbehave, and what the delivery code must do about it: a reply that comes
//! after the client's timeout is counted as "may have been sent", SMTP deferrals are retried and
//! refusals are final, and a stalled SMTP server holds no database connection while it stalls.

use std::time::Duration;

use hejnal::testkit::{sms::Reply, smtp::{Act, Stage}};

use super::{Desk, alert, count};
use crate::{both_backends, helpers::eventually, residents::Kit};

both_backends! {
    async fn an_answer_after_the_timeout_counts_as_maybe_sent_and_the_repeat_carries_the_same_reference(env) {
        let kit = Kit::start_with(&env, |s| s.sms_timeout_ms = Some(300)).await;
        // The gateway takes the message, but says so only after the client stopped waiting.
        kit.sms.then(Reply::new(200, r#"{"id": "late"}"#).after(Duration::from_millis(1_500)));
        let desk = Desk::open(kit).await;
        let people = desk.residents(1, None).await;
        let id = desk.publish(&alert(&["sms"])).await;
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "sms", "sent"), 1, "{notice}");
        let (delivery, _, provider_id) = desk.store.delivery_of(id, "sms", &people[0].phone).await.unwrap().unwrap();
        assert_ne!(provider_id.as_deref(), Some("late"));
        let events = desk.store.delivery_events(delivery).await.unwrap();
        let outcomes: Vec<(&str, bool)> = events.iter().map(|e| (e.outcome.as_str(), e.maybe_sent)).collect();
        assert_eq!(outcomes, [("retry", true), ("sent", false)], "{events:?}");
        assert!(events[0].detail.as_deref().unwrap_or("").contains("timed out"), "{events:?}");
        // The gateway took it twice, both times with the same reference: a duplicate it can
        // recognise, and no more duplicates than tries that may have been sent.
        let requests = desk.kit.sms.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().all(|r| r.accepted() && r.reference() == Some(delivery.to_string())));
        let duplicates = requests.len() - 1;
        assert!(duplicates <= events.iter().filter(|e| e.maybe_sent).count());
    }
}

both_backends! {
    async fn smtp_deferrals_are_retried_and_a_refusal_is_final(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        desk.residents(3, None).await;
        for code in [421, 451, 550] {
            desk.kit.smtp.script(Stage::EndOfData, Act::Reply(code));
        }
        let id = desk.publish(&alert(&["email"])).await;
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!((count(&notice, "email", "sent"), count(&notice, "email", "failed")), (2, 1), "{notice}");
        assert_eq!(desk.kit.smtp.count(), 2, "the server accepted each deferred message once, on the retry");
        let mut details = Vec::new();
        for r in desk.kit.smtp.received() {
            let reference = r.header("Message-ID").unwrap();
            let delivery: i64 = reference.trim_matches(['<', '>']).split(['.', '@']).find_map(|p| p.parse().ok()).expect("the delivery id in the Message-ID");
            let events = desk.store.delivery_events(delivery).await.unwrap();
            let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
            assert_eq!(outcomes, ["retry", "sent"], "{events:?}");
            details.push(events[0].detail.clone().unwrap_or_default());
        }
        details.sort();
        assert!(details[0].contains("421") && details[1].contains("451"), "{details:?}");
    }
}

both_backends! {
    async fn no_database_connection_is_held_while_the_smtp_server_stalls(env) {
        // One connection in the pool: a send that held it while waiting would stop everything else.
        let kit = Kit::start_with(&env, |s| {
            s.database_max_connections = 1;
            s.email_timeout_ms = Some(20_000);
            s.delivery_lease_secs = 45;
        })
        .await;
        kit.smtp.pattern(Stage::EndOfData, vec![Some(Act::Stall(Duration::from_secs(10)))]);
        let desk = Desk::open(kit).await;
        desk.residents(3, None).await;
        let id = desk.publish(&alert(&["email", "sms"])).await;
        eventually(Duration::from_secs(30), "every SMS sent", || async {
            (count(&desk.notice(id).await, "sms", "sent") == 3).then_some(())
        })
        .await;
        let smtp = &desk.kit.smtp;
        eventually(Duration::from_secs(30), "the emails to reach the stalled server", || async {
            (smtp.connections() >= 1).then_some(())
        })
        .await;
        // The pool is free while the emails wait (other work takes it only for moments).
        let mut free = 0;
        for _ in 0..50 {
            free += usize::from(desk.store.connections_in_use() == 0);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let notice = desk.notice(id).await;
        assert_eq!((smtp.count(), count(&notice, "email", "sent")), (0, 0), "the emails were still stalled: {notice}");
        assert!(free > 0, "a connection was checked out all through the stall");
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "email", "sent"), 3, "{notice}");
    }
}
