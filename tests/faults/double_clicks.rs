//! Scenario 8: double clicks. Fifty identical creates under one Idempotency-Key give one
//! notice; fifty submits and fifty approvals of it, and fifty submits of a notice that needs
//! no approval, each publish once: one fan-out job, one audit entry, and every resident gets
//! each notice exactly once.

use std::time::Duration;

use hejnal::bench::Desk;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Cluster, RESIDENTS, SinkLog, emergency_sms, one_at_a_time, report, routine_sms};

const CLICKS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_identical_clicks_give_one_notice_and_one_fan_out() {
    let _turn = one_at_a_time();
    // Planned notices need no second official here, so that a submit publishes at once.
    let mut cluster = Cluster::start(RESIDENTS, &[("HEJNAL_APPROVAL_FOR_ROUTINE", "false")]).await;
    let _api = cluster.api().await;
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;

    let alert = emergency_sms("[click-alert]", &cluster.districts);
    let created = clicks(&desk, desk.author(), "/api/v1/notices", &alert, Some("the-same-key")).await;
    assert!(created.iter().all(|(s, n)| *s == 201 && n["id"] == created[0].1["id"]), "{created:?}");
    let alert_id = created[0].1["id"].as_i64().unwrap();
    assert_eq!(ledger.count("SELECT count(*) FROM notices").await, 1, "fifty creates with one key");
    let submitted = clicks(&desk, desk.author(), &format!("/api/v1/notices/{alert_id}/submit"), &json!({}), None).await;
    assert!(submitted.iter().all(|(s, n)| *s == 200 && n["state"] == "pending"), "{submitted:?}");
    let approved = clicks(&desk, desk.approver(), &format!("/api/v1/notices/{alert_id}/approve"), &json!({}), None).await;
    assert!(approved.iter().all(|(s, n)| *s == 200 && n["state"] == "published"), "{approved:?}");

    let (status, planned) = desk.send(desk.author(), Method::POST, "/api/v1/notices", Some(&routine_sms("[click-plan]", &cluster.districts)), None).await.unwrap();
    assert_eq!(status, 201, "{planned}");
    let planned_id = planned["id"].as_i64().unwrap();
    let published = clicks(&desk, desk.author(), &format!("/api/v1/notices/{planned_id}/submit"), &json!({}), None).await;
    assert!(published.iter().all(|(s, n)| *s == 200 && n["state"] == "published"), "{published:?}");

    // No worker has run yet: the backlog holds every fan-out job ever queued.
    assert_eq!(ledger.count("SELECT count(*) FROM job_backlog WHERE payload LIKE '%fan_out%'").await, 2, "one fan-out per notice");
    for (action, n) in [("notices.create", 2), ("notices.submit", 1), ("notices.approve", 1), ("notices.publish", 1)] {
        let entries = ledger.count_where("SELECT count(*) FROM audit_log WHERE action = $1", action).await;
        assert_eq!(entries, n, "audit entries {action}");
    }

    let _worker = cluster.worker();
    let total = 2 * RESIDENTS;
    let drained_in = ledger.settle(total, Duration::from_secs(300)).await;
    let verdict = ledger.check_promises(&cluster.sms, total).await;
    assert!(verdict.duplicates.is_empty(), "without a fault nothing may repeat: {}", verdict.summary());
    for id in [alert_id, planned_id] {
        assert_eq!(ledger.deliveries_of(id).await, RESIDENTS, "notice {id} reaches every resident once");
    }
    let sink = SinkLog::of(&cluster.sms);
    for marker in ["[click-alert]", "[click-plan]"] {
        let phones = cluster.sms.requests().iter().map(|r| r.json()).filter(|m| m["text"].as_str().unwrap_or("").contains(marker)).map(|m| m["to"].to_string()).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(phones.len() as i64, RESIDENTS, "{marker}: every phone once");
    }
    report(
        "double clicks",
        format_args!("{CLICKS} creates, submits, approvals, and submits of a second notice: 2 notices, 2 fan-out jobs, {} SMS for {total} deliveries, drained in {drained_in:.1?}; {}", sink.requests, verdict.summary()),
    );
}

/// The same request `CLICKS` times at once.
async fn clicks(desk: &Desk, token: &str, path: &str, body: &Value, key: Option<&str>) -> Vec<(u16, Value)> {
    let one = || async { desk.send(token, Method::POST, path, Some(body), key).await.expect("an answer") };
    futures::future::join_all((0..CLICKS).map(|_| one())).await
}
