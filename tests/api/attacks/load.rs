//! The public rate limit holds under a flood from wrk (Debian's `wrk` package): against a
//! separate `hejnal serve` process, the limiter admits no more than its budget, the burst
//! plus the per-minute rate over the flood's duration, and answers the rest 429. Counted from
//! the process's own `/metrics`, not from wrk, which leaves out answers still in flight when
//! it stops.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::helpers::{Backend, Process, TestEnv, eventually, in_ci};

const PER_MINUTE: u64 = 600;
const BURST: u64 = 20;
const SECONDS: u64 = 10;
const ROUTE: &str = "/api/v1/subscriptions/resend";

fn on_path(tool: &str) -> Option<PathBuf> {
    let out = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `wrk`, installed from Debian's packages when missing. Under CI=true a failed install fails.
fn wrk() -> Option<PathBuf> {
    if let Some(path) = on_path("wrk") {
        return Some(path);
    }
    let install = |args: &[&str]| Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success());
    if !install(&["install", "-y", "-q", "wrk"]) {
        install(&["update", "-q"]);
        install(&["install", "-y", "-q", "wrk"]);
    }
    match on_path("wrk") {
        Some(path) => Some(path),
        None if in_ci() => panic!("wrk is missing and `apt-get install -y wrk` failed; under CI=true this test must run"),
        None => {
            eprintln!("SKIPPED: wrk is missing and could not be installed (apt-get install -y wrk)");
            None
        }
    }
}

/// The value of the counter line with all of `labels`, or 0.
fn counter(metrics: &str, name: &str, labels: &[&str]) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_wrk_gets_no_more_than_the_limiters_budget() {
    let Some(wrk) = wrk() else { return };
    let env = TestEnv::new(Backend::Embedded).await.expect("SQLite needs no server");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let (per_minute, burst) = (PER_MINUTE.to_string(), BURST.to_string());
    let _service = Process::start(&env, &["serve"], &[
        ("HEJNAL_LISTEN", &listen),
        ("HEJNAL_PUBLIC_RATE_PER_MINUTE", &per_minute),
        ("HEJNAL_PUBLIC_RATE_BURST", &burst),
        ("HEJNAL_LOG_LEVEL", "warn"),
    ]);
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(60), "hejnal serve to be ready", || {
        let url = format!("{base}/readyz");
        let client = client.clone();
        async move { client.get(url).send().await.ok().filter(|r| r.status() == 200).map(|_| ()) }
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("resend.lua");
    std::fs::write(&script, "wrk.method = \"POST\"\nwrk.body = '{\"email\": \"flood@example.com\"}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n").unwrap();
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| {
        Command::new(&wrk)
            .args(["-t2", "-c32", &format!("-d{SECONDS}s"), "--latency", "-s"])
            .arg(&script)
            .arg(format!("{base}{ROUTE}"))
            .output()
            .expect("run wrk")
    });
    let elapsed = started.elapsed();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {report}{}", String::from_utf8_lossy(&out.stderr));

    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let route = format!("route=\"{ROUTE}\"");
    let admitted = counter(&metrics, "hejnal_http_requests_total", &[&route, "status=\"202\""]);
    let limited = counter(&metrics, "hejnal_http_requests_total", &[&route, "status=\"429\""]);
    let other = counter(&metrics, "hejnal_http_requests_total", &[&route]) - admitted - limited;
    // The bucket starts full (the burst) and refills at the rate, for at most the time from
    // before wrk started to after it ended.
    let budget = BURST + (PER_MINUTE as f64 * elapsed.as_secs_f64() / 60.0).ceil() as u64 + 1;
    println!("wrk, {SECONDS} s, 32 connections:\n{report}");
    println!("limiter {PER_MINUTE}/min, burst {BURST}: {admitted} admitted (budget {budget} over {elapsed:.1?}), {limited} answered 429, {other} other");
    assert_eq!(other, 0, "every answer is 202 or 429");
    assert!(limited > 10 * budget, "wrk flooded the endpoint ({limited} refused)");
    assert!(admitted >= BURST, "the burst is let through: {admitted}");
    assert!(admitted <= budget, "the limiter let {admitted} through, over its budget of {budget}");
    // Still answering everyone else once the flood is over.
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
}
