//! Scenario 6: failover between two SMS gateways, weights from the configuration file (as
//! GOV.UK Notify does it). The first gateway (`HEJNAL_SMS_*`, named `primary`) always answers
//! 500; the second (`[[sms_providers]]`, `backup`) works; both weigh 100. Within 2 minutes at
//! least 90% of the traffic must go to the healthy one, and every message must go out once.

use std::time::Duration;

use hejnal::testkit::sms::{Reply, SmsGateway, Style};
use sqlx::PgPool;

use crate::harness::{Cluster, RESIDENTS, emergency_sms, one_at_a_time, providers, publish, report};

/// Within this long of the first try, the failing gateway's share must stay at or under 10%.
const DEADLINE_SECS: i64 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_gateway_always_failing_its_traffic_moves_to_the_healthy_one_within_2_minutes() {
    let _turn = one_at_a_time();
    let backup = SmsGateway::start(Style::Webhook).await;
    let config = providers::config_file(&format!(
        "[[sms_providers]]\nname = \"backup\"\nprovider = \"webhook\"\nurl = \"{}/sms\"\nweight = 100\n",
        backup.base_url()
    ));
    let config_path = config.path().display().to_string();
    let mut cluster = Cluster::start(RESIDENTS, &[("HEJNAL_SMS_NAME", "primary"), ("HEJNAL_SMS_WEIGHT", "100"), ("HEJNAL_CONFIG", &config_path)]).await;
    cluster.sms.pattern(vec![Some(Reply::new(500, "gateway down"))]);
    let _api = cluster.api().await;
    // Two worker processes: each learns about the failing gateway from its own sends.
    let _workers = [cluster.worker(), cluster.worker()];
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    let pool = PgPool::connect(&cluster.postgres.url("hejnal", "faults-failover")).await.expect("connect");

    publish(&desk, &emergency_sms("[failover]", &cluster.districts)).await;
    let drained = ledger.settle(RESIDENTS, Duration::from_secs(300)).await;

    // Nothing lost, nothing twice: every delivery sent, each accepted once, by the backup.
    let statuses = providers::statuses(&pool, "sms").await;
    assert_eq!(statuses.get("sent").copied(), Some(RESIDENTS), "{statuses:?}");
    let accepted = providers::accepted_sms(&[&cluster.sms, &backup]);
    assert_eq!(accepted.len() as i64, RESIDENTS, "messages accepted");
    assert!(providers::repeated(&accepted).is_empty(), "a message went out twice");
    assert_eq!(accepted.keys().copied().collect::<std::collections::BTreeSet<_>>(), providers::deliveries(&pool, "sms").await);
    assert!(cluster.sms.requests().iter().all(|r| !r.accepted()));

    // The split, from the trace: every try names its provider, and the gateways agree.
    let tries: Vec<(String, i64)> = sqlx::query_as("SELECT provider, count(*) FROM delivery_events WHERE provider IS NOT NULL GROUP BY provider ORDER BY provider")
        .fetch_all(&pool)
        .await
        .unwrap();
    let count_of = |name: &str| tries.iter().find(|(p, _)| p == name).map_or(0, |(_, n)| *n);
    let (primary, second) = (count_of("primary"), count_of("backup"));
    assert_eq!((primary as u64, second as u64), (cluster.sms.count(), backup.count()), "the trace and the gateways' logs disagree: {tries:?}");
    // Each failed try was retried at once, in the same attempt, on the other gateway.
    let (unfollowed,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM delivery_events f WHERE f.outcome = 'failover' AND NOT EXISTS
           (SELECT 1 FROM delivery_events s WHERE s.delivery_id = f.delivery_id AND s.attempt = f.attempt
              AND s.outcome = 'sent' AND s.provider = 'backup')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unfollowed, 0, "tries failed over without a send on the other gateway in the same attempt");
    // Per second from the first try: the primary's share of the tries in that second.
    let seconds: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT (e.at - f.first) / 1000 AS second, count(*) FILTER (WHERE e.provider = 'primary'), count(*)
         FROM delivery_events e, (SELECT min(at) AS first FROM delivery_events) f
         WHERE e.provider IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // The first second after which the primary never again had more than 10% of a second's tries.
    let moved_after = seconds.iter().rev().find(|(_, p, all)| *p * 10 > *all).map_or(0, |(s, _, _)| s + 1);
    assert!(moved_after <= DEADLINE_SECS, "the failing gateway kept over 10% of the traffic until {moved_after} s: {seconds:?}");
    let share = primary as f64 / (primary + second) as f64;
    assert!(share <= 0.10, "the failing gateway got {:.1}% of all tries", share * 100.0);
    report(
        "sms failover",
        format_args!(
            "{RESIDENTS} SMS, all sent through the healthy gateway, none twice; tries: primary {primary}, backup {second} (primary {:.2}% overall); the primary's share stayed ≤ 10% from second {moved_after} on; drained in {drained:.1?}",
            share * 100.0
        ),
    );
}
