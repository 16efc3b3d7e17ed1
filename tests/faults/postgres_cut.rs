//! Scenario 4: the service's PostgreSQL connections are cut (`pg_terminate_backend`, over and
//! over for 15 s) while a campaign drains and officials keep writing. The API answers 503,
//! never 500; every notice an official retried with its Idempotency-Key exists exactly once
//! and is whole; the pools recover; every delivery ends final.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hejnal::bench::Desk;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Cluster, RESIDENTS, exercise, one_at_a_time, publish, report, routine_sms};

const OUTAGE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_connections_are_cut_the_api_answers_503_and_nothing_is_half_written() {
    let _turn = one_at_a_time();
    let mut cluster = Cluster::start(RESIDENTS, &[
        ("HEJNAL_SMS_RATE", "800"),
        ("HEJNAL_DELIVERY_LEASE_SECS", "10"),
        ("HEJNAL_DELIVERY_GRACE_ROUTINE_SECS", "10"),
        ("HEJNAL_DELIVERY_SWEEP_MS", "1000"),
    ])
    .await;
    let _api = cluster.api().await;
    let worker = cluster.worker();
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    publish(&desk, &routine_sms("[pg-cut]", &cluster.districts)).await;
    cluster.sms_reach(1_500, Duration::from_secs(120)).await;

    let district = cluster.districts[0].clone();
    let started = Instant::now();
    let cutting = async {
        let mut cut = 0;
        while started.elapsed() < OUTAGE {
            cut += cluster.postgres.terminate("hejnal-").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        cut
    };
    let (cut, mut writes) = tokio::join!(cutting, officials_write(&desk, &district, started));
    let ended = Instant::now();
    let answers = tally(&writes);
    assert!(answers.keys().all(|s| [200, 201, 503].contains(s)), "answers during the outage: {answers:?}");
    assert!(answers.contains_key(&503), "the cuts never showed as 503 ({cut} connections cut): {answers:?}");

    // The officials try again, each with the same key: every notice exists once, whole.
    let recovered_in = retry_until_whole(&desk, &district, &mut writes, ended).await;
    let keys = writes.len() as i64;
    let exercises = ledger.count("SELECT count(*) FROM notices WHERE status = 'Exercise'").await;
    assert_eq!(exercises, keys, "one notice per Idempotency-Key");
    let dangling = ledger.count("SELECT count(*) FROM idempotency_keys WHERE status IS NULL").await;
    assert_eq!(dangling, 0, "Idempotency-Keys reserved and never answered");
    wait_fanned_out(&ledger).await;
    let half = ledger.count("SELECT count(*) FROM notices WHERE state = 'published' AND published_at IS NULL").await;
    assert_eq!(half, 0, "published notices without their stamps");
    let unaudited = ledger
        .count(
            "SELECT count(*) FROM notices n WHERE status = 'Exercise' AND (
               NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'notices.create' AND a.subject = 'notice ' || n.id)
               OR NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'notices.publish' AND a.subject LIKE 'notice ' || n.id || ' (%'))",
        )
        .await;
    assert_eq!(unaudited, 0, "notices written or published without their audit entries");

    ledger.settle(RESIDENTS, Duration::from_secs(300)).await;
    let whole_in = ended.elapsed();
    let verdict = ledger.check_promises(&cluster.sms, RESIDENTS).await;
    // Sends whose outcome could not be written before their lease lapsed (the worker says
    // how many) may go again; nothing else may.
    let unwritten = worker.logged_counts("could not be written", "outcomes=");
    let allowed = unwritten + verdict.timeouts.len() as u64;
    assert!(verdict.duplicates.len() as u64 <= allowed, "{} repeats, but only {unwritten} unwritten outcomes and {} timeouts", verdict.duplicates.len(), verdict.timeouts.len());
    report(
        "postgres cut",
        format_args!(
            "{cut} connections cut in {OUTAGE:?}; answers during the cuts {answers:?}; API whole again {recovered_in:.1?} after the last cut; \
             {keys} notices by key, each once; everything final {whole_in:.1?} after the last cut; {unwritten} outcomes unwritable within their lease; {}",
            verdict.summary()
        ),
    );
}

/// One official's attempt: the key, and the answers to create and submit (0: not tried).
struct Write {
    key: String,
    create: u16,
    submit: u16,
    id: Option<i64>,
}

/// Write and publish exercises, each under its own Idempotency-Key, until the outage ends.
async fn officials_write(desk: &Desk, district: &str, started: Instant) -> Vec<Write> {
    let mut writes = Vec::new();
    while started.elapsed() < OUTAGE {
        let mut w = Write { key: format!("cut-{}", writes.len()), create: 0, submit: 0, id: None };
        attempt(desk, district, &mut w).await;
        writes.push(w);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writes
}

/// Create (if not yet created) and submit (if not yet published), with the write's keys.
async fn attempt(desk: &Desk, district: &str, w: &mut Write) {
    if w.id.is_none() {
        let (status, body) = desk.send(desk.author(), Method::POST, "/api/v1/notices", Some(&exercise(district)), Some(&w.key)).await.expect("an answer");
        w.create = status;
        w.id = body["id"].as_i64().filter(|_| status == 201);
    }
    if let (Some(id), false) = (w.id, w.submit == 200) {
        let path = format!("/api/v1/notices/{id}/submit");
        let (status, _) = desk.send(desk.author(), Method::POST, &path, Some(&json!({})), Some(&format!("{}-submit", w.key))).await.expect("an answer");
        w.submit = status;
    }
}

fn tally(writes: &[Write]) -> BTreeMap<u16, usize> {
    let mut answers = BTreeMap::new();
    for status in writes.iter().flat_map(|w| [w.create, w.submit]).filter(|s| *s != 0) {
        *answers.entry(status).or_insert(0) += 1;
    }
    answers
}

/// Repeat every unfinished write until it is created and published (within 60 s); returns
/// how long after the outage the first repeat succeeded.
async fn retry_until_whole(desk: &Desk, district: &str, writes: &mut [Write], ended: Instant) -> Duration {
    let mut first_success = None;
    loop {
        let mut open = 0;
        for w in writes.iter_mut().filter(|w| w.submit != 200) {
            attempt(desk, district, w).await;
            assert!([200, 201, 503].contains(&w.create) && [0, 200, 503].contains(&w.submit), "key {}: create {} submit {}", w.key, w.create, w.submit);
            if w.submit == 200 {
                first_success.get_or_insert_with(|| ended.elapsed());
            } else {
                open += 1;
            }
        }
        if open == 0 {
            return first_success.unwrap_or_default();
        }
        assert!(ended.elapsed() < Duration::from_secs(60), "{open} writes still failing 60 s after the outage");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every published notice's fan-out finishes (the outbox row was written with the state).
async fn wait_fanned_out(ledger: &crate::harness::Ledger) {
    let started = Instant::now();
    loop {
        let open = ledger.count("SELECT count(*) FROM notices WHERE state = 'published' AND fanout_done_at IS NULL").await;
        if open == 0 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{open} published notices never fanned out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
