//! Scenario 9: two schedulers with skewed clocks. The API process's clock runs ten minutes
//! ahead, one worker's ten minutes ahead and the other's ten minutes behind
//! (`HEJNAL_CLOCK_OFFSET_MS`, a test-only setting). An alert to everyone with `send_at` 30 s
//! away must fire exactly once, never early: only the database's clock decides when it is due.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;

use crate::harness::{Cluster, RESIDENTS, emergency_sms, one_at_a_time, providers, publish, report};

const AHEAD: &str = "600000";
const BEHIND: &str = "-600000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_alert_fires_once_and_never_early_whatever_the_schedulers_clocks_say() {
    let _turn = one_at_a_time();
    let mut cluster = Cluster::start(RESIDENTS, &[]).await;
    let _api = cluster.api_with(&[("HEJNAL_CLOCK_OFFSET_MS", AHEAD)]).await;
    let _workers = [cluster.worker_with(&[("HEJNAL_CLOCK_OFFSET_MS", AHEAD)]), cluster.worker_with(&[("HEJNAL_CLOCK_OFFSET_MS", BEHIND)])];
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    let pool = PgPool::connect(&cluster.postgres.url("hejnal", "faults-schedule")).await.expect("connect");

    let send_at = Utc::now() + chrono::Duration::seconds(30);
    let mut body = emergency_sms("[scheduled]", &cluster.districts);
    body["send_at"] = serde_json::json!(send_at.to_rfc3339());
    let id = publish(&desk, &body).await;
    let state = |pool: PgPool| async move {
        let (state, published_at): (String, Option<i64>) =
            sqlx::query_as("SELECT state, published_at FROM notices WHERE id = $1").bind(id).fetch_one(&pool).await.expect("notice");
        (state, published_at)
    };
    assert_eq!(state(pool.clone()).await.0, "scheduled");
    // Up to two seconds before its time, nothing has gone and it is still scheduled.
    while Utc::now() < send_at - chrono::Duration::seconds(2) {
        assert_eq!(cluster.sms.count(), 0, "an SMS went out before send_at");
        assert_eq!(state(pool.clone()).await.0, "scheduled", "published before send_at");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = ledger.settle(RESIDENTS, Duration::from_secs(300)).await;

    let send_at_ms = send_at.timestamp_millis();
    let (state, published_at) = state(pool.clone()).await;
    let published_at = published_at.expect("published");
    assert_eq!(state, "published");
    assert!(published_at >= send_at_ms, "published {} ms early", send_at_ms - published_at);
    let (first_send,): (Option<i64>,) = sqlx::query_as("SELECT min(at) FROM delivery_events").fetch_one(&pool).await.unwrap();
    let first_send = first_send.expect("sends recorded");
    assert!(first_send >= send_at_ms, "an outcome was recorded {} ms before send_at", send_at_ms - first_send);
    // Exactly once: every delivery sent, each accepted by the gateway once.
    let statuses = providers::statuses(&pool, "sms").await;
    assert_eq!(statuses.get("sent").copied(), Some(RESIDENTS), "{statuses:?}");
    let accepted = providers::accepted_sms(&[&cluster.sms]);
    assert_eq!(accepted.len() as i64, RESIDENTS);
    assert!(providers::repeated(&accepted).is_empty(), "an SMS went out twice");
    report(
        "skewed schedulers",
        format_args!(
            "API and a worker 10 min ahead, a worker 10 min behind: published {} ms after send_at (database clock), first outcome {} ms after; {RESIDENTS} SMS once each; all final {drained:.1?} after send_at - 2 s",
            published_at - send_at_ms,
            first_send - send_at_ms
        ),
    );
}
