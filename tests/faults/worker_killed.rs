//! Scenario 1: a worker SIGKILLed mid-batch, and started again. The new process has a new
//! worker id; the deliveries the dead one held run again; only those may repeat at the sink.

use std::time::{Duration, Instant};

use crate::harness::{Cluster, RESIDENTS, emergency_sms, one_at_a_time, publish, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_is_replaced_and_its_emergency_work_runs_again_within_60_s() {
    let _turn = one_at_a_time();
    // Lease, heartbeat and orphan detection keep their defaults (30 s, 5 s, 20 s): the 60 s
    // recovery promise is checked as shipped.
    let mut cluster = Cluster::start(RESIDENTS, &[]).await;
    let _api = cluster.api().await;
    let mut first = cluster.worker();
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;

    publish(&desk, &emergency_sms("[kill]", &cluster.districts)).await;
    cluster.sms_reach(2_000, Duration::from_secs(120)).await;
    first.kill();
    let killed_at = Instant::now();
    let killed_at_ms = hejnal::store::now_ms();
    let in_flight = ledger.in_flight().await;
    let dead_ids = ledger.writers(&ledger.ids("SELECT id FROM deliveries").await).await;
    assert!(!in_flight.is_empty(), "the kill was not mid-batch: nothing was in flight");
    assert_eq!(dead_ids.len(), 1, "one worker process wrote outcomes before the kill: {dead_ids:?}");
    report("worker killed", format_args!("killed after {} SMS at the gateway, {} deliveries in flight", cluster.sms.count(), in_flight.len()));

    let _second = cluster.worker();
    // The promise: taken up (claimed again by a live worker) within 60 s of the kill.
    let taken_up_in = killed_at.elapsed() + ledger.taken_up(&in_flight, killed_at_ms, Duration::from_secs(120)).await;
    assert!(taken_up_in < Duration::from_secs(60), "the killed worker's emergency work was taken up {taken_up_in:?} after the kill, over 60 s");
    ledger.settle_ids(&in_flight, Duration::from_secs(300)).await;
    let finished_in = killed_at.elapsed();
    let all_in = killed_at.elapsed() + ledger.settle(RESIDENTS, Duration::from_secs(300)).await;

    let verdict = ledger.check_promises(&cluster.sms, RESIDENTS).await;
    let repeated_outside: Vec<_> = verdict.duplicates.difference(&in_flight).take(10).collect();
    assert!(repeated_outside.is_empty(), "repeats of deliveries that were not in flight at the kill: {repeated_outside:?}");
    let new_ids = ledger.writers(&in_flight).await;
    assert!(!new_ids.is_empty() && new_ids.is_disjoint(&dead_ids), "the orphaned work was finished by {new_ids:?}; the dead worker was {dead_ids:?}");
    let dead_jobs = ledger.count("SELECT count(*) FROM job_backlog WHERE state = 'dead'").await;
    assert_eq!(dead_jobs, 0, "jobs buried after the kill");
    report(
        "worker killed",
        format_args!("in-flight work taken up {taken_up_in:.1?} after the kill, final {finished_in:.1?} after, everything {all_in:.1?}; {}", verdict.summary()),
    );
}
