//! Two schedulers whose clocks are ten minutes apart, one ahead and one behind: a notice with
//! `send_at` is published once and never early, because only the database's clock decides when
//! it is due.

use std::time::Duration;

use hejnal::{
    app::Role,
    config::{Config, Settings},
};
use hejnal_jobs::{Job, Lane, NewJob};
use serde_json::json;

use super::{Desk, alert, count};
use crate::{
    both_backends,
    helpers::TestApp,
    residents::Kit,
};

const TEN_MINUTES_MS: i64 = 10 * 60 * 1000;

async fn skewed_worker(settings: &Settings, offset_ms: i64) -> TestApp {
    let config = Config::from_settings(Settings { clock_offset_ms: offset_ms, ..settings.clone() }).unwrap();
    TestApp::spawn_with(config, Role::Worker).await
}

both_backends! {
    async fn schedulers_with_skewed_clocks_publish_a_notice_once_and_never_early(env) {
        let kit = Kit::start_as(&env, Role::Api, |_| {}).await;
        let _ahead = skewed_worker(&kit.settings, TEN_MINUTES_MS).await;
        let settings = kit.settings.clone();
        let desk = Desk::open(kit).await;
        let people = desk.residents(3, None).await;
        let send_at = chrono::Utc::now() + chrono::Duration::seconds(5);
        let mut body = alert(&["sms"]);
        body["send_at"] = json!(send_at.to_rfc3339());
        let id = desk.publish(&body).await;
        assert_eq!(desk.notice(id).await["state"], "scheduled");
        // Wake-ups that come early, as a redelivered job or a wrong clock would make them, to
        // the worker ten minutes ahead, which thinks the time has long come; then the worker
        // ten minutes behind joins in.
        let early = vec![NewJob::now(Lane::Emergency, Job::FanOutV1 { notice_id: id }); 8];
        env.queue(&desk.store).await.push(&early).await.unwrap();
        let _behind = skewed_worker(&settings, -TEN_MINUTES_MS).await;
        // Until just before its time, nothing has gone and the notice is still scheduled.
        let almost = (send_at - chrono::Utc::now() - chrono::Duration::milliseconds(1_500)).to_std().unwrap_or_default();
        tokio::time::sleep(almost).await;
        assert_eq!(desk.kit.sms.count(), 0, "sent before send_at");
        assert_eq!(desk.notice(id).await["state"], "scheduled", "published before send_at");
        let notice = desk.settled(id, Duration::from_secs(60)).await;
        assert_eq!(count(&notice, "sms", "sent"), 3, "{notice}");
        let row = desk.store.notice(id).await.unwrap().unwrap();
        let send_at_ms = send_at.timestamp_millis();
        assert!(row.published_at.unwrap() >= send_at_ms, "published {} ms early", send_at_ms - row.published_at.unwrap());
        // Exactly once: one request per resident, each with its own delivery's id, none early.
        let requests = desk.kit.sms.requests();
        assert_eq!(requests.len(), 3);
        for p in &people {
            let (delivery, _, _) = desk.store.delivery_of(id, "sms", &p.phone).await.unwrap().unwrap();
            assert_eq!(requests.iter().filter(|r| r.reference() == Some(delivery.to_string())).count(), 1);
            let events = desk.store.delivery_events(delivery).await.unwrap();
            assert_eq!(events.len(), 1, "{events:?}");
            assert!(events[0].at >= send_at_ms, "sent {} ms early", send_at_ms - events[0].at);
        }
    }
}
