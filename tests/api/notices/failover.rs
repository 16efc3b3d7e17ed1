//! SMS over two gateways with failover (as GOV.UK Notify does it): a gateway that keeps
//! failing loses its share of traffic, a message it fails goes out through the other one in the
//! same attempt, and every try is recorded with the provider that took it.

use std::time::Duration;

use hejnal::{
    channels::settings::SmsProviderEntry,
    testkit::sms::{Reply, SmsGateway, Style},
};

use super::{Desk, alert, count};
use crate::{both_backends, residents::Kit};

fn backup(url: String) -> SmsProviderEntry {
    SmsProviderEntry {
        name: "backup".into(),
        provider: "webhook".into(),
        url: Some(url),
        token: Some("backup-token".into()),
        sender: None,
        weight: 100,
        timeout_ms: None,
        rate: None,
        concurrency: None,
    }
}

/// The kit's gateway as `primary` and a second one as `backup`, both of weight 100.
async fn two_gateways(env: &crate::helpers::TestEnv) -> (Desk, SmsGateway) {
    let second = SmsGateway::start(Style::Webhook).await;
    let url = format!("{}/sms", second.base_url());
    let kit = Kit::start_with(env, |s| {
        s.sms_name = Some("primary".into());
        // One send at a time, so that each choice of gateway knows how the ones before went.
        s.sms_concurrency = 1;
        s.sms_providers = vec![backup(url)];
    })
    .await;
    (Desk::open(kit).await, second)
}

both_backends! {
    async fn a_failing_gateway_loses_its_traffic_and_every_message_goes_out_through_the_other(env) {
        let (desk, second) = two_gateways(&env).await;
        desk.kit.sms.pattern(vec![Some(Reply::new(500, "gateway down"))]);
        let people = desk.residents(40, None).await;
        let id = desk.publish(&alert(&["sms"])).await;
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "sms", "sent"), 40, "{notice}");
        let mut references = Vec::new();
        for p in &people {
            let (delivery, status, _) = desk.store.delivery_of(id, "sms", &p.phone).await.unwrap().unwrap();
            assert_eq!(status, "sent");
            references.push(delivery.to_string());
            // One attempt each: the failing gateway's try, if it had one, then the backup's.
            let events = desk.store.delivery_events(delivery).await.unwrap();
            let (last, before) = events.split_last().unwrap();
            assert_eq!((last.attempt, last.outcome.as_str(), last.provider.as_deref()), (1, "sent", Some("backup")), "{events:?}");
            assert!(before.len() <= 1, "{events:?}");
            for e in before {
                assert_eq!((e.attempt, e.outcome.as_str(), e.provider.as_deref()), (1, "failover", Some("primary")), "{events:?}");
                assert!(e.detail.as_deref().unwrap_or("").contains("500") && !e.maybe_sent, "{events:?}");
            }
        }
        // The backup took each message once, and each request carried its delivery's id.
        let mut taken: Vec<String> = second.requests().iter().map(|r| r.reference().expect("a reference")).collect();
        taken.sort();
        references.sort();
        assert_eq!(taken, references);
        // With an even split, the failing gateway would have seen about 20 of the 40; its share
        // halves with each failure, so after the first few it sees almost none.
        let primary = desk.kit.sms.requests();
        assert!(primary.len() <= 12, "the failing gateway still got {} of 40 messages", primary.len());
        assert!(primary.iter().all(|r| r.reference().is_some_and(|r| references.contains(&r))));
    }
}

both_backends! {
    async fn a_message_refused_as_such_is_not_tried_on_the_other_gateway(env) {
        let (desk, second) = two_gateways(&env).await;
        desk.kit.sms.pattern(vec![Some(Reply::new(400, r#"{"error": "invalid number"}"#))]);
        second.pattern(vec![Some(Reply::new(400, r#"{"error": "invalid number"}"#))]);
        let people = desk.residents(1, None).await;
        let id = desk.publish(&alert(&["sms"])).await;
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "sms", "failed"), 1, "{notice}");
        assert_eq!(desk.kit.sms.count() + second.count(), 1, "one gateway was asked, once");
        let (delivery, _, _) = desk.store.delivery_of(id, "sms", &people[0].phone).await.unwrap().unwrap();
        let events = desk.store.delivery_events(delivery).await.unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].outcome, "failed");
        assert!(events[0].detail.as_deref().unwrap_or("").contains("400"), "{events:?}");
    }
}
