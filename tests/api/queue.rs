//! The queue engine through the service: lanes, delays, the broker bound under a flood,
//! shutdown, and recovery of a lost broker.

use std::time::{Duration, Instant};

use hejnal::{app::Role, config::Config};
use hejnal_jobs::{Job, Lane, NewJob};
use uuid::Uuid;

use crate::{
    both_backends,
    helpers::{Backend, TestApp, TestEnv, eventually, probe_finished, probe_started},
};

fn probe(sleep_ms: u64) -> (Uuid, Job) {
    let id = Uuid::new_v4();
    (id, Job::ProbeV1 { probe_id: id, sleep_ms })
}

both_backends! {
    async fn each_lane_runs_its_own_jobs(env) {
        let app = TestApp::spawn(&env, Role::Serve).await;
        let store = env.store().await;
        let queue = env.queue(&store).await;
        let (urgent, job_a) = probe(0);
        let (routine, job_b) = probe(0);
        queue.push(&[NewJob::now(Lane::Emergency, job_a), NewJob::now(Lane::Routine, job_b)]).await.unwrap();
        for (id, lane) in [(urgent, "emergency"), (routine, "routine")] {
            let run = probe_finished(&store, id, Duration::from_secs(30), "the probe to finish").await;
            assert_eq!(run.lane, lane);
        }
        // Finished jobs leave the backlog (the row goes just after the probe records its end).
        eventually(Duration::from_secs(30), "the backlog to empty", || {
            let queue = queue.clone();
            async move {
                let d = queue.backlog().depth(Lane::Routine).await.unwrap();
                ((d.queued, d.released, d.running) == (0, 0, 0)).then_some(())
            }
        })
        .await;
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn an_idle_worker_asks_the_broker_ever_less_often(env) {
        // The test settings ask every 5 ms while busy; idle, at most every 100 ms (the default).
        let app = TestApp::spawn(&env, Role::Serve).await;
        let asks = || Lane::ALL.map(|lane| app.queue.broker_asks(lane)).iter().sum::<u64>();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (before, since) = (asks(), Instant::now());
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (asked, seconds) = (asks() - before, since.elapsed().as_secs_f64());
        // Busy, two lanes would ask 400 times a second; idle for over a second, at most 10 each
        // (a tenth of the idle time, at most 100 ms apart), plus one each for the timer's edge.
        assert!(asked as f64 <= 2.0 * (10.0 * seconds + 1.0), "{asked} asks in {seconds:.2} s while idle");
        assert!(asked >= 2, "an idle worker still asks now and then: {asked} asks in {seconds:.2} s");
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn work_this_process_releases_wakes_its_idle_worker_at_once(env) {
        // Neither the poll timer nor the heartbeat would ask within the test's 10 s: only the
        // pump's nudge, after it put the job into the broker, can make the worker ask.
        let mut settings = env.settings();
        (settings.queue_poll_ms, settings.queue_idle_poll_ms) = (60_000, 60_000);
        (settings.queue_heartbeat_secs, settings.queue_orphan_after_secs) = (30, 60);
        let app = TestApp::spawn_with(Config::from_settings(settings).unwrap(), Role::Serve).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for lane in Lane::ALL {
            let (id, job) = probe(0);
            app.queue.push(&[NewJob::now(lane, job)]).await.unwrap();
            let run = probe_finished(&app.store, id, Duration::from_secs(10), "a job released here to run before any poll or heartbeat").await;
            assert_eq!(run.lane, lane.as_str());
        }
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn emergency_work_arriving_is_told_and_routine_work_is_not(env) {
        let store = env.store().await;
        let queue = env.queue(&store).await;
        let told = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        queue.on_emergency_work({
            let told = told.clone();
            move || { told.fetch_add(1, std::sync::atomic::Ordering::SeqCst); }
        });
        queue.push(&[NewJob::now(Lane::Routine, probe(0).1)]).await.unwrap();
        queue.wake(Lane::Routine);
        assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 0, "routine work pre-empts nothing");
        queue.push(&[NewJob::now(Lane::Emergency, probe(0).1)]).await.unwrap();
        assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 1, "an emergency pushed here is told at once");
        queue.wake(Lane::Emergency);
        assert_eq!(told.load(std::sync::atomic::Ordering::SeqCst), 2, "a transactional insert's wake is told too");
    }
}

both_backends! {
    async fn a_delayed_job_runs_after_its_delay_and_not_before(env) {
        let app = TestApp::spawn(&env, Role::Serve).await;
        let store = env.store().await;
        let queue = env.queue(&store).await;
        let (id, job) = probe(0);
        let pushed_at = chrono::Utc::now().timestamp_millis();
        queue.push(&[NewJob::after(Lane::Routine, job, Duration::from_millis(2000))]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(store.probe_runs(&id.to_string()).await.unwrap().is_empty(), "ran before its delay");
        let run = probe_started(&store, id, Duration::from_secs(30), "the delayed probe").await;
        // The database clock and ours are the same machine's; 100 ms covers rounding.
        assert!(run.started_at >= pushed_at + 1900, "started {} ms after the push", run.started_at - pushed_at);
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn an_emergency_overtakes_a_flood_of_20000_routine_jobs(env) {
        const FLOOD: usize = 20_000;
        let mut settings = env.settings();
        settings.queue_max_ready = 500;
        settings.routine_concurrency = 16;
        let config = Config::from_settings(settings).unwrap();
        let store = env.store().await;
        let queue = env.queue(&store).await;
        let flood: Vec<NewJob> = (0..FLOOD).map(|_| NewJob::now(Lane::Routine, probe(1).1)).collect();
        queue.push(&flood).await.unwrap();

        let app = TestApp::spawn_with(config, Role::Serve).await;
        eventually(Duration::from_secs(60), "the flood to start draining", || {
            let store = store.clone();
            async move { (store.probe_counts().await.unwrap().runs > 100).then_some(()) }
        })
        .await;

        let (urgent, job) = probe(0);
        queue.push(&[NewJob::now(Lane::Emergency, job)]).await.unwrap();
        let most_in_broker = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
        let run = eventually(Duration::from_secs(60), "the emergency probe", || {
            let (store, queue, env) = (store.clone(), queue.clone(), &env);
            let most = most_in_broker.clone();
            async move {
                most.fetch_max(due_in_broker(env, &queue).await, std::sync::atomic::Ordering::Relaxed);
                store.probe_runs(&urgent.to_string()).await.unwrap().into_iter().next()
            }
        })
        .await;

        // Drain the rest, watching that the broker never holds more than the bound.
        eventually(Duration::from_secs(300), "the flood to drain", || {
            let (store, queue, env) = (store.clone(), queue.clone(), &env);
            let most = most_in_broker.clone();
            async move {
                most.fetch_max(due_in_broker(env, &queue).await, std::sync::atomic::Ordering::Relaxed);
                (store.probe_counts().await.unwrap().finished as usize == FLOOD + 1).then_some(())
            }
        })
        .await;

        let overtaken = store.probe_started_after("routine", run.started_at).await.unwrap();
        assert!(overtaken >= 10_000, "the emergency waited behind the flood: only {overtaken} routine jobs started after it");
        let most_in_broker = most_in_broker.load(std::sync::atomic::Ordering::Relaxed);
        assert!(most_in_broker > 0, "the broker sampling saw nothing");
        assert!(most_in_broker <= 500, "the broker held {most_in_broker} due jobs, over the bound of 500");
        let counts = store.probe_counts().await.unwrap();
        assert_eq!(counts.runs, (FLOOD + 1) as i64, "every job ran exactly once");
        assert_eq!(counts.distinct, (FLOOD + 1) as i64);
        app.shutdown().await.unwrap();
    }
}

/// Jobs waiting in the broker: Redis's due and scheduled tasks, or the backlog's released
/// rows on SQLite (apalis-sqlite reads from the database; the same bound applies).
async fn due_in_broker(env: &TestEnv, queue: &hejnal_jobs::Queue) -> i64 {
    match env.backend {
        Backend::Scaled => {
            let client = redis::Client::open(env.queue_url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let name = Lane::Routine.queue_name(&env.prefix);
            let (active, scheduled): (i64, i64) = redis::pipe()
                .cmd("LLEN").arg(format!("{name}:active"))
                .cmd("ZCARD").arg(format!("{name}:scheduled"))
                .query_async(&mut conn)
                .await
                .unwrap();
            active + scheduled
        }
        Backend::Embedded => queue.backlog().depth(Lane::Routine).await.unwrap().released,
    }
}

both_backends! {
    async fn shutdown_lets_an_in_flight_job_finish(env) {
        let app = TestApp::spawn(&env, Role::Serve).await;
        let store = env.store().await;
        let queue = env.queue(&store).await;
        let (id, job) = probe(1500);
        queue.push(&[NewJob::now(Lane::Routine, job)]).await.unwrap();
        probe_started(&store, id, Duration::from_secs(30), "the probe to start").await;
        app.shutdown().await.unwrap();
        let runs = store.probe_runs(&id.to_string()).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert!(runs[0].finished_at.is_some(), "shutdown cut the in-flight job short");
        assert_eq!(queue.backlog().depth(Lane::Routine).await.unwrap().running, 0);
    }
}

both_backends! {
    async fn shutdown_stops_waiting_at_its_timeout(env) {
        let mut settings = env.settings();
        settings.shutdown_timeout_secs = 1;
        let app = TestApp::spawn_with(Config::from_settings(settings).unwrap(), Role::Serve).await;
        let store = env.store().await;
        let queue = env.queue(&store).await;
        let (id, job) = probe(60_000);
        queue.push(&[NewJob::now(Lane::Routine, job)]).await.unwrap();
        probe_started(&store, id, Duration::from_secs(30), "the probe to start").await;
        let asked = Instant::now();
        app.shutdown().await.unwrap();
        // A 1 s timeout against a 60 s job: anything under 30 s proves the timeout acted.
        assert!(asked.elapsed() < Duration::from_secs(30), "shutdown took {:?}", asked.elapsed());
        let runs = store.probe_runs(&id.to_string()).await.unwrap();
        assert_eq!(runs[0].finished_at, None);
        let depth = queue.backlog().depth(Lane::Routine).await.unwrap();
        assert_eq!(depth.running, 1, "the unfinished job stays in the backlog to run again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_lost_by_redis_run_again_from_the_backlog() {
    let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
    let store = env.store().await;
    let queue = env.queue(&store).await;
    // An API process releases jobs to Redis, but no worker takes them.
    let api = TestApp::spawn(&env, Role::Api).await;
    let ids: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
    let jobs: Vec<NewJob> = ids.iter().map(|id| NewJob::now(Lane::Routine, Job::ProbeV1 { probe_id: *id, sleep_ms: 0 })).collect();
    queue.push(&jobs).await.unwrap();
    eventually(Duration::from_secs(30), "the jobs to be released to Redis", || {
        let queue = queue.clone();
        async move { (queue.backlog().depth(Lane::Routine).await.unwrap().released == 50).then_some(()) }
    })
    .await;
    api.shutdown().await.unwrap();

    // Redis loses everything under our prefix.
    let client = redis::Client::open(env.queue_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", env.prefix)).query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();

    // A worker with a short redelivery deadline finds them in the backlog.
    let mut settings = env.settings();
    settings.queue_redeliver_after_secs = 2;
    let worker = TestApp::spawn_with(Config::from_settings(settings).unwrap(), Role::Worker).await;
    eventually(Duration::from_secs(60), "every lost job to run", || {
        let store = store.clone();
        async move { (store.probe_counts().await.unwrap().finished == 50).then_some(()) }
    })
    .await;
    assert_eq!(store.probe_counts().await.unwrap().distinct, 50);
    worker.shutdown().await.unwrap();
}

/// Regression: apalis-core's interval strategy could leave an idle worker asleep until its
/// next heartbeat (jobs/src/poll.rs). With a 30 s heartbeat, that bug shows as emergencies
/// waiting up to 30 s; a 10 s deadline catches it and cannot flake on a healthy queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn emergencies_during_a_flood_never_wait_for_the_heartbeat() {
    let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
    let mut settings = env.settings();
    settings.queue_heartbeat_secs = 30;
    settings.queue_orphan_after_secs = 60;
    let store = env.store().await;
    let queue = env.queue(&store).await;
    let flood: Vec<NewJob> = (0..5_000).map(|_| NewJob::now(Lane::Routine, probe(1).1)).collect();
    queue.push(&flood).await.unwrap();
    let app = TestApp::spawn_with(Config::from_settings(settings).unwrap(), Role::Serve).await;
    let mut worst = Duration::ZERO;
    for _ in 0..30 {
        let (id, job) = probe(0);
        let pushed = Instant::now();
        queue.push(&[NewJob::now(Lane::Emergency, job)]).await.unwrap();
        probe_started(&store, id, Duration::from_secs(10), "an emergency to start well before the 30 s heartbeat").await;
        worst = worst.max(pushed.elapsed());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    eprintln!("slowest emergency start during the flood: {worst:?}");
    app.shutdown().await.unwrap();
}
