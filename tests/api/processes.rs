//! The scale-out deployment as separate `hejnal` processes on PostgreSQL and Redis: API and
//! worker apart, a worker killed mid-job, and a graceful stop on SIGTERM.

use std::time::Duration;

use hejnal_jobs::{Job, Lane, NewJob};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Backend, Process, TestEnv, eventually, probe_finished, probe_started};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_and_worker_run_as_separate_processes() {
    let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
    let store = env.store().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _api = Process::start(&env, &["api"], &[("HEJNAL_LISTEN", &listen)]);
    let _worker = Process::start(&env, &["worker"], &[]);

    let client = reqwest::Client::new();
    let base = format!("http://{listen}");
    let ready = eventually(Duration::from_secs(60), "the API to be ready", || {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let res = client.get(format!("{base}/readyz")).send().await.ok()?;
            (res.status() == 200).then_some(res)
        }
    })
    .await;
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["queue"], "ok");
    let districts: Vec<Value> = client.get(format!("{base}/api/v1/districts")).send().await.unwrap().json().await.unwrap();
    assert_eq!(districts.len(), 18);
    for path in ["/healthz", "/metrics", "/api/v1/openapi.json", "/api/v1/interests"] {
        assert_eq!(client.get(format!("{base}{path}")).send().await.unwrap().status(), 200, "{path}");
    }

    // Work accepted anywhere is done by the worker process.
    let queue = env.queue(&store).await;
    let id = Uuid::new_v4();
    queue.push(&[NewJob::now(Lane::Emergency, Job::ProbeV1 { probe_id: id, sleep_ms: 0 })]).await.unwrap();
    let run = probe_finished(&store, id, Duration::from_secs(60), "the worker process to run the probe").await;
    assert_eq!(run.lane, "emergency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_of_a_killed_worker_completes_in_another_worker() {
    let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
    let store = env.store().await;
    let queue = env.queue(&store).await;
    let mut first = Process::start(&env, &["worker"], &[]);

    let id = Uuid::new_v4();
    queue.push(&[NewJob::now(Lane::Emergency, Job::ProbeV1 { probe_id: id, sleep_ms: 5_000 })]).await.unwrap();
    let started = probe_started(&store, id, Duration::from_secs(60), "the first worker to start the probe").await;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).expect("killed worker exits");
    let killed_at = std::time::Instant::now();

    let _second = Process::start(&env, &["worker"], &[]);
    let finished = probe_finished(&store, id, Duration::from_secs(90), "another worker to complete the probe").await;
    let recovered_in = killed_at.elapsed();
    assert_ne!(finished.worker_id, started.worker_id, "the restarted process must have a new worker id");
    assert!(recovered_in < Duration::from_secs(60), "recovery took {recovered_in:?}, over the 60 s promise");
    let runs = store.probe_runs(&id.to_string()).await.unwrap();
    assert_eq!(runs.len(), 2, "one cut-short run and one complete run");
    // The backlog row goes just after the probe records its end.
    eventually(Duration::from_secs(30), "the backlog to be empty", || {
        let queue = queue.clone();
        async move { (queue.backlog().depth(Lane::Emergency).await.unwrap() == Default::default()).then_some(()) }
    })
    .await;
    eprintln!("orphan recovery after SIGKILL: {recovered_in:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_the_in_flight_job_then_exits_cleanly() {
    let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
    let store = env.store().await;
    let queue = env.queue(&store).await;
    let mut worker = Process::start(&env, &["worker"], &[]);
    let id = Uuid::new_v4();
    queue.push(&[NewJob::now(Lane::Routine, Job::ProbeV1 { probe_id: id, sleep_ms: 2_000 })]).await.unwrap();
    probe_started(&store, id, Duration::from_secs(60), "the probe to start").await;
    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(30)).expect("the worker exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let runs = store.probe_runs(&id.to_string()).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].finished_at.is_some(), "the in-flight job was cut short");
}
