//! `hejnal bench queue`: a routine flood with emergencies pushed while it drains, against the
//! configured database and broker, with workers in this process. It leaves probe rows behind.

use std::{process::ExitCode, sync::Arc, time::{Duration, Instant}};

use clap::Args;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use hejnal_jobs::{Job, Lane, NewJob, Queue};

use crate::{app, config::Config, store::DynStore, worker::Handlers};

#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    /// Routine jobs in the flood.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Emergency jobs pushed, one at a time, while the flood drains.
    #[arg(long, default_value_t = 50)]
    pub emergencies: usize,
    /// Milliseconds each routine job takes (a stand-in for a provider call).
    #[arg(long, default_value_t = 0)]
    pub work_ms: u64,
}

pub async fn run(args: QueueArgs, config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let queue = Queue::connect(config.queue.clone(), store.backlog()).await?;
    let stop = CancellationToken::new();
    let pump = queue.spawn_pump(stop.clone());
    let residents = app::build_residents(&config, &store).await?;
    let workers = {
        let (queue, stop) = (queue.clone(), stop.clone());
        let handlers = Arc::new(Handlers::new(store.clone(), residents, queue.clone(), config.delivery.clone()));
        tokio::spawn(async move { queue.run_workers(handlers, stop).await })
    };
    eprintln!("bench: store={} queue={} jobs={} emergencies={}", store.backend(), hejnal_jobs::broker::redact(&config.queue.url), args.jobs, args.emergencies);

    let done_before = store.probe_counts().await?.finished;
    let flood: Vec<NewJob> = (0..args.jobs)
        .map(|_| NewJob::now(Lane::Routine, Job::ProbeV1 { probe_id: Uuid::new_v4(), sleep_ms: args.work_ms }))
        .collect();
    let started = Instant::now();
    queue.push(&flood).await?;
    let push_secs = started.elapsed().as_secs_f64();
    eprintln!("bench: pushed {} routine jobs in {:.2}s ({:.0}/s)", args.jobs, push_secs, args.jobs as f64 / push_secs);

    let latencies = emergencies_during_flood(&queue, &store, args.emergencies).await?;
    let target = done_before + args.jobs as i64 + args.emergencies as i64;
    wait_until_done(&store, target, args.jobs).await?;
    let drain_secs = started.elapsed().as_secs_f64();

    stop.cancel();
    let _ = workers.await;
    let _ = pump.await;

    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    println!("queue bench ({} store, {} broker)", store.backend(), broker_name(&config));
    println!("  routine flood: {} jobs drained in {:.2}s = {:.0} jobs/s", args.jobs, drain_secs, args.jobs as f64 / drain_secs);
    println!("  emergency start latency during the flood: median {p50:.1} ms, p99 {p99:.1} ms ({} samples)", latencies.len());
    if let Some((i, worst)) = latencies.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) {
        println!("  slowest emergency: sample {} of {}, {worst:.1} ms", i + 1, latencies.len());
    }
    println!("  ratio: flood drain time / emergency median = {:.0}x", drain_secs * 1000.0 / p50.max(0.001));
    Ok(ExitCode::SUCCESS)
}

fn broker_name(config: &Config) -> &'static str {
    if config.queue.url.starts_with("redis") { "redis" } else { "sqlite" }
}

/// Push emergencies one by one while routine work drains; return each one's start latency
/// in milliseconds (push to handler start, both by this machine's clock).
async fn emergencies_during_flood(queue: &Queue, store: &DynStore, count: usize) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let probe = Uuid::new_v4();
        let pushed_at = chrono::Utc::now().timestamp_micros() as f64 / 1000.0;
        queue.push(&[NewJob::now(Lane::Emergency, Job::ProbeV1 { probe_id: probe, sleep_ms: 0 })]).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let runs = store.probe_runs(&probe.to_string()).await?;
            if let Some(run) = runs.first() {
                latencies.push((run.started_at as f64 - pushed_at).max(0.0));
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("an emergency job did not start within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(latencies)
}

async fn wait_until_done(store: &DynStore, target: i64, total: usize) -> anyhow::Result<()> {
    let mut last_report = Instant::now();
    loop {
        let done = store.probe_counts().await?.finished;
        if done >= target {
            return Ok(());
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!("bench: {} of {total} routine jobs left", target - done);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank]
}
