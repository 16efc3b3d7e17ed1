//! Scenario 3: Redis stalls (`CLIENT PAUSE 15000`) while a campaign drains. The API keeps
//! accepting work: an alert is written, submitted and approved during the stall, and every
//! answer comes while Redis is still paused. After the stall the alert reaches residents
//! within 30 s, and the API's latency is back to what it was before.

use std::time::{Duration, Instant};

use hejnal::{bench::Desk, testkit::Watch};
use reqwest::Method;
use serde_json::json;

use crate::harness::{Cluster, RESIDENTS, emergency_sms, exercise, one_at_a_time, publish, report, routine_sms};

const PAUSE: Duration = Duration::from_secs(15);
/// The promise: latency is back within this long after the stall.
const RECOVERY: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_paused_the_api_accepts_work_and_latency_recovers_within_30_s() {
    let _turn = one_at_a_time();
    // A provider rate keeps the campaign draining through the stall.
    let mut cluster = Cluster::start(RESIDENTS, &[("HEJNAL_SMS_RATE", "800"), ("HEJNAL_DELIVERY_SWEEP_MS", "1000")]).await;
    let _api = cluster.api().await;
    let _worker = cluster.worker();
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    let baseline = median(10, &desk, &cluster.districts[0]).await;
    publish(&desk, &routine_sms("[stall]", &cluster.districts)).await;
    cluster.sms_reach(1_500, Duration::from_secs(120)).await;

    let alert_marker = "[stall-alert]";
    let watch = Watch::new(alert_marker.as_bytes());
    cluster.sms.add_watch(&watch);
    cluster.redis.pause(PAUSE.as_millis() as u64).await;
    let paused_at = Instant::now();
    let resumes_at = paused_at + PAUSE;
    let alert_id = publish(&desk, &emergency_sms(alert_marker, &cluster.districts[..1])).await;
    let accepted_in = paused_at.elapsed();
    assert!(Instant::now() < resumes_at, "publishing during the stall took {accepted_in:?}: the API waited for Redis");
    let samples = sample_latency(&desk, &cluster.districts[0], resumes_at + RECOVERY + Duration::from_secs(5)).await;

    let first_alert = watch.first_at().expect("the alert reached the gateway");
    let alert_after_resume = first_alert.saturating_duration_since(resumes_at);
    assert!(alert_after_resume < RECOVERY, "the alert's first SMS came {alert_after_resume:?} after Redis resumed");
    let limit = (baseline * 10).max(Duration::from_secs(1));
    let slow_after: Vec<_> = samples.iter().filter(|s| s.at >= resumes_at + RECOVERY && s.took > limit).collect();
    assert!(slow_after.is_empty(), "latency had not recovered 30 s after the stall (baseline {baseline:?}): {slow_after:?}");
    let stalled = window(&samples, paused_at, resumes_at);
    let recovering = window(&samples, resumes_at, resumes_at + RECOVERY);
    let recovered = window(&samples, resumes_at + RECOVERY, Instant::now());

    let in_district = ledger.count("SELECT count(*) FROM subscriber_districts d JOIN districts x ON x.slug = d.district WHERE x.position = 1").await;
    let expected = RESIDENTS + in_district;
    ledger.settle(expected, Duration::from_secs(300)).await;
    let verdict = ledger.check_promises(&cluster.sms, expected).await;
    let alert_sent = ledger.deliveries_of(alert_id).await;
    assert_eq!(alert_sent, in_district, "every resident of the district got the alert");
    report(
        "redis paused",
        format_args!(
            "alert published {accepted_in:.2?} into the 15 s stall; its first SMS {alert_after_resume:.1?} after Redis resumed; \
             write+publish latency (median/max) baseline {baseline:.0?}, during the stall {stalled}, first 30 s after {recovering}, later {recovered}; {}",
            verdict.summary()
        ),
    );
}

#[derive(Debug)]
struct Sample {
    at: Instant,
    took: Duration,
}

/// Write and publish an [`exercise`]: the API's write path, through the queue's outbox.
async fn write_and_publish(desk: &Desk, district: &str) -> Duration {
    let started = Instant::now();
    let (status, created) = desk.send(desk.author(), Method::POST, "/api/v1/notices", Some(&exercise(district)), None).await.expect("an answer");
    assert_eq!(status, 201, "{created}");
    let path = format!("/api/v1/notices/{}/submit", created["id"]);
    let (status, submitted) = desk.send(desk.author(), Method::POST, &path, Some(&json!({})), None).await.expect("an answer");
    assert_eq!((status, submitted["state"].as_str()), (200, Some("published")), "{submitted}");
    started.elapsed()
}

/// Median and maximum latency of the samples taken in [from, to).
fn window(samples: &[Sample], from: Instant, to: Instant) -> String {
    let mut took: Vec<Duration> = samples.iter().filter(|s| s.at >= from && s.at < to).map(|s| s.took).collect();
    took.sort();
    match (took.get(took.len() / 2), took.last()) {
        (Some(median), Some(max)) => format!("{median:.0?}/{max:.0?} ({} samples)", took.len()),
        _ => "no samples".into(),
    }
}

async fn median(n: usize, desk: &Desk, district: &str) -> Duration {
    let mut took = Vec::new();
    for _ in 0..n {
        took.push(write_and_publish(desk, district).await);
    }
    took.sort();
    took[n / 2]
}

/// One write-and-publish every 250 ms until `until`.
async fn sample_latency(desk: &Desk, district: &str, until: Instant) -> Vec<Sample> {
    let mut samples = Vec::new();
    while Instant::now() < until {
        let at = Instant::now();
        let took = write_and_publish(desk, district).await;
        samples.push(Sample { at, took });
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    samples
}
