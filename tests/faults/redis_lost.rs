//! Scenario 2: Redis loses everything, twice, while a campaign drains: `SHUTDOWN NOSAVE` and
//! a restart (empty), then `FLUSHALL`. The database is the truth: the backlog's redelivery and
//! the delivery sweeper queue the lost work again, and it is sent once.

use std::time::{Duration, Instant};

use crate::harness::{Cluster, RESIDENTS, one_at_a_time, publish, report, routine_sms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_loses_its_data_twice_the_queue_is_rebuilt_from_the_database() {
    let _turn = one_at_a_time();
    // Small batches, few at once and a provider rate: most of the campaign waits in Redis
    // when it goes. Short grace periods and redelivery, so that the rebuild shows quickly.
    let mut cluster = Cluster::start(RESIDENTS, &[
        ("HEJNAL_DELIVERY_BATCH", "50"),
        ("HEJNAL_ROUTINE_CONCURRENCY", "4"),
        ("HEJNAL_SMS_RATE", "800"),
        ("HEJNAL_DELIVERY_GRACE_ROUTINE_SECS", "5"),
        ("HEJNAL_DELIVERY_SWEEP_MS", "1000"),
        ("HEJNAL_QUEUE_REDELIVER_AFTER_SECS", "10"),
        ("HEJNAL_QUEUE_HEARTBEAT_SECS", "1"),
        ("HEJNAL_QUEUE_ORPHAN_AFTER_SECS", "3"),
    ])
    .await;
    let _api = cluster.api().await;
    let _worker = cluster.worker();
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    publish(&desk, &routine_sms("[redis-lost]", &cluster.districts)).await;
    cluster.sms_reach(1_500, Duration::from_secs(120)).await;

    let in_broker = ledger.count("SELECT count(*) FROM job_backlog WHERE state = 'released'").await;
    cluster.redis.shutdown_nosave().await;
    let lost_at = Instant::now();
    let sent_at_loss = cluster.sms.count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.redis.spawn().await;
    let resumed_in = cluster.sms_reach(sent_at_loss + 500, Duration::from_secs(120)).await + Duration::from_secs(2);
    report("redis lost", format_args!("SHUTDOWN NOSAVE after {sent_at_loss} SMS ({in_broker} jobs waiting in Redis lost); 500 more SMS {resumed_in:.1?} later"));

    let sent_at_flush = cluster.sms.count();
    assert!(sent_at_flush < RESIDENTS as u64, "the campaign ended before the FLUSHALL; it must still be draining");
    cluster.redis.flushall().await;
    let drained_in = ledger.settle(RESIDENTS, Duration::from_secs(300)).await;
    let since_loss = lost_at.elapsed();
    let verdict = ledger.check_promises(&cluster.sms, RESIDENTS).await;
    assert!(verdict.duplicates.is_empty(), "losing the queue must not repeat a send: {}", verdict.summary());
    report(
        "redis lost",
        format_args!(
            "FLUSHALL after {sent_at_flush} SMS; everything final {drained_in:.1?} after it ({:.1?} after the first loss); {}",
            since_loss,
            verdict.summary()
        ),
    );
}
