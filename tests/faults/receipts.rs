//! Scenario 7: delivery reports arrive duplicated and out of order while a campaign sends:
//! each message reported delivered twice, one in seven also reported failed, in shuffled
//! order, some before the worker has even written `sent`. A delivery takes its first report
//! and never moves back; replaying every report, and reporting the opposite by the
//! provider's id, changes no count.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use futures::StreamExt;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::harness::{Cluster, Ledger, RECEIPTS_SECRET, RESIDENTS, emergency_sms, one_at_a_time, publish, report};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_receipts_leave_the_counts_stable() {
    let _turn = one_at_a_time();
    // A provider rate, so that reports arrive while the campaign is still sending.
    let mut cluster = Cluster::start(RESIDENTS, &[("HEJNAL_SMS_RATE", "1000")]).await;
    let _api = cluster.api().await;
    let _worker = cluster.worker();
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    publish(&desk, &emergency_sms("[receipts]", &cluster.districts)).await;

    let reporter = Reporter::new(&cluster.api_base);
    let started = Instant::now();
    let mut reported = 0;
    let mut all_reports = Vec::new();
    while reported < RESIDENTS as usize {
        assert!(started.elapsed() < Duration::from_secs(300), "only {reported} messages reached the gateway");
        let requests = cluster.sms.requests();
        let mut batch: Vec<Value> = requests[reported..].iter().flat_map(|r| reports_for(&r.json()["reference"])).collect();
        reported = requests.len();
        batch.shuffle(&mut rand::thread_rng());
        reporter.send(&batch).await;
        all_reports.extend(batch);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ledger.settle(RESIDENTS, Duration::from_secs(300)).await;
    let first = ledger.statuses().await;
    let verdict = ledger.check_promises(&cluster.sms, RESIDENTS).await;
    assert!(verdict.duplicates.is_empty(), "{}", verdict.summary());
    let (delivered, failed) = (first.get("delivered").copied().unwrap_or(0), first.get("failed").copied().unwrap_or(0));
    assert_eq!(delivered + failed, RESIDENTS, "every delivery took a report: {first:?}");
    assert!(failed <= RESIDENTS / 7 + 1, "more failed than were ever reported failed: {first:?}");
    assert_eq!(moved_by_a_later_report(&ledger).await, 0, "deliveries whose status is not their first report's");
    let before = per_delivery(&ledger).await;

    // The provider repeats everything, in another order, and contradicts itself by id.
    all_reports.shuffle(&mut rand::thread_rng());
    let by_id: Vec<Value> = opposite_by_provider_id(&ledger).await;
    reporter.send(&all_reports).await;
    reporter.send(&by_id).await;
    assert_eq!(ledger.statuses().await, first, "replayed reports changed the counts");
    assert_eq!(per_delivery(&ledger).await, before, "replayed reports changed a delivery");
    report(
        "receipts",
        format_args!(
            "{} reports while sending ({} before the worker wrote `sent`), {} replayed, {} contradicting by provider id; counts stay {first:?}",
            all_reports.len(),
            ledger.count("SELECT count(*) FROM deliveries d WHERE EXISTS (SELECT 1 FROM delivery_events e WHERE e.delivery_id = d.id AND e.outcome LIKE 'receipt:%' AND e.id < (SELECT min(s.id) FROM delivery_events s WHERE s.delivery_id = d.id AND s.outcome = 'sent'))").await,
            all_reports.len(),
            by_id.len()
        ),
    );
}

/// What the gateway reports for one message: delivered twice, and for one in seven also failed.
fn reports_for(reference: &Value) -> Vec<Value> {
    let reference = reference.as_str().expect("a reference").to_owned();
    let id: i64 = reference.parse().expect("a delivery id");
    let mut reports = vec![json!({"reference": reference, "status": "delivered"}); 2];
    if id % 7 == 0 {
        reports.push(json!({"reference": reference, "status": "failed", "error": "absent subscriber"}));
    }
    reports
}

/// Reports by the provider's own id, saying the opposite of where each tenth delivery ended.
async fn opposite_by_provider_id(ledger: &Ledger) -> Vec<Value> {
    let rows: Vec<(String, String)> = ledger
        .pairs("SELECT provider_id, status FROM deliveries WHERE provider_id IS NOT NULL AND id % 10 = 0")
        .await;
    rows.into_iter()
        .map(|(id, status)| {
            let opposite = if status == "delivered" { "failed" } else { "delivered" };
            json!({"id": id, "status": opposite, "error": "late report"})
        })
        .collect()
}

/// Deliveries whose status differs from the first report recorded for them.
async fn moved_by_a_later_report(ledger: &Ledger) -> i64 {
    ledger
        .count(
            "SELECT count(*) FROM deliveries d WHERE 'receipt:' || d.status <>
               (SELECT e.outcome FROM delivery_events e WHERE e.delivery_id = d.id AND e.outcome LIKE 'receipt:%' ORDER BY e.id LIMIT 1)",
        )
        .await
}

async fn per_delivery(ledger: &Ledger) -> BTreeMap<String, String> {
    ledger.pairs("SELECT CAST(id AS TEXT), status FROM deliveries").await.into_iter().collect()
}

/// Posts reports as the provider does, 16 at a time; every one must be taken (200).
struct Reporter {
    client: reqwest::Client,
    url: String,
}

impl Reporter {
    fn new(api_base: &str) -> Reporter {
        Reporter { client: reqwest::Client::new(), url: format!("{api_base}/api/v1/sms/receipts") }
    }

    async fn send(&self, reports: &[Value]) {
        let answers: Vec<u16> = futures::stream::iter(reports)
            .map(|r| async move {
                let res = self.client.post(&self.url).bearer_auth(RECEIPTS_SECRET).json(r).send().await.expect("an answer");
                res.status().as_u16()
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let refused: Vec<_> = answers.iter().filter(|s| **s != 200).take(5).collect();
        assert!(refused.is_empty(), "reports refused: {refused:?}");
    }
}
