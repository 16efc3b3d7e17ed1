//! `hejnal bench survey`: answers at `POST /api/v1/surveys/{id}/responses`, per backend on a
//! fresh database: N residents seeded and invited (invitations written by SQL, no messages
//! sent), the app started in this process, then the load generator (`load.rs`, on a runtime of
//! its own) first finds the most answers a second the app acknowledges, then holds a fixed rate
//! at a share of that (70% by default) and measures latency. Every acknowledged answer is committed before its
//! answer (the group commit); the bench checks afterwards that each one is in the database.

mod bursts;
mod load;
mod machine;
mod others;
mod processes;
mod report;
mod sampler;
mod speed;
mod stalls;

use std::{collections::HashSet, net::SocketAddr, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::Args;
use serde_json::json;

use self::load::{Pace, Phase};
use super::{
    backend::{Backend, BackendChoice, Fresh},
    queue::percentile,
    seed::{SeedPlan, scalar, seed},
};
use crate::{
    app::{self, Application, Role},
    config::Config,
    store::{DynStore, SurveyAudit, SurveyDraft, SurveyPublish, now_ms},
};

#[derive(Args, Debug, Clone)]
pub struct SurveyArgs {
    /// Residents seeded and invited; answers go round their tokens (after the first round,
    /// answers replace earlier ones).
    #[arg(long, default_value_t = 200_000)]
    pub invitations: u64,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    pub backend: BackendChoice,
    /// Seconds of each measured phase.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Connections the load generator keeps open: each has one answer in flight, so they
    /// bound what the app is offered (at 64, both stores waited on their commits with a
    /// quarter of the CPU idle); a burst of 100,000 invitations is thousands of phones.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,
    /// The fixed rate as a share of the measured maximum, in percent.
    #[arg(long, default_value_t = 70.0)]
    pub share: f64,
    /// A PostgreSQL server where the bench may create and drop a database.
    #[arg(long, env = "HEJNAL_TEST_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    #[arg(long, env = "HEJNAL_TEST_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// At the fixed rate, also note when a core did not run at all (`stalls.rs`): a thread
    /// per core at real-time priority, waking every millisecond. Needs root or CAP_SYS_NICE.
    #[arg(long)]
    pub stall_probe: bool,
    /// Bursts of another process during the fixed rate, on purpose (`bursts.rs`): a busy
    /// shell loop in a session of its own, spread evenly over the phase. 0: none.
    #[arg(long, default_value_t = 0)]
    pub bursts: u32,
    /// How long each of `--bursts` lasts, in milliseconds.
    #[arg(long, default_value_t = 400)]
    pub burst_ms: u64,
}

/// What one backend measured.
pub(super) struct SurveyResult {
    backend: Backend,
    measured: Measured,
    /// Distinct invitations acknowledged, and the rows stored.
    acknowledged: usize,
    stored: i64,
    load_before: String,
    load_after: String,
}

pub async fn run(args: SurveyArgs, config: Config) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.invitations > 0 && args.seconds > 0.0 && args.connections > 0, "--invitations, --seconds and --connections must be positive");
    anyhow::ensure!(args.share > 0.0 && args.share <= 100.0, "--share is a percentage, above 0 and at most 100");
    let mut results = Vec::new();
    for backend in args.backend.backends() {
        let fresh = Fresh::create(backend, &args.postgres_url, &args.redis_url).await?;
        let result = run_backend(backend, &fresh, &args, &config).await;
        fresh.remove().await.context("cannot remove the bench's database")?;
        results.push(result?);
    }
    report::print(&args, &results);
    Ok(ExitCode::SUCCESS)
}

async fn run_backend(backend: Backend, fresh: &Fresh, args: &SurveyArgs, base: &Config) -> anyhow::Result<SurveyResult> {
    let load_before = load_average();
    eprintln!("bench: {}: seeding and inviting {} residents (load average {load_before})", backend.name(), args.invitations);
    let config = bench_config(base, fresh)?;
    let store = app::open_store(&config).await?;
    let plan = SeedPlan { subscribers: args.invitations as i64, phone_every: args.invitations as i64 + 1, push: &[] };
    seed(&fresh.database_url, &plan).await?;
    let survey_id = publish_survey(&store).await?;
    let (first_invitation, last_invitation) = invite_everyone(&fresh.database_url, survey_id).await?;
    // One store per database, as in a service: kept open, this one's checkpoints (every 250 ms,
    // each with its syncs) ran beside the app's on the same file, and counted as the app's CPU.
    store.close().await;
    drop(store);

    let app = Application::build(config, Role::Serve).await?;
    let addr: SocketAddr = format!("127.0.0.1:{}", app.port().context("the app listens")?).parse()?;
    let links = app.state().residents.links.clone();
    let stop = app.stop_token();
    let running = tokio::spawn(app.run_until_stopped());

    let path = format!("/api/v1/surveys/{survey_id}/responses");
    let requests: Vec<Vec<u8>> = (first_invitation..=last_invitation)
        .map(|inv| {
            let answers = json!({"q1": 1 + inv % 4, "q2": 1 + inv % 5, "q3": inv % 2 == 0});
            load::post(&path, &json!({"token": links.sign_invitation(inv), "answers": answers}).to_string())
        })
        .collect();
    let requests = Arc::new(requests);
    let measured = measure(addr, &requests, args).await;
    stop.cancel();
    running.await??;
    let measured = measured?;

    let acknowledged: HashSet<usize> = [&measured.warm, &measured.max, &measured.fixed].iter().flat_map(|phase| &phase.acknowledged).copied().collect();
    let stored = scalar(&fresh.database_url, "SELECT count(*) FROM survey_responses").await?;
    let load_after = load_average();
    Ok(SurveyResult { backend, measured, acknowledged: acknowledged.len(), stored, load_before, load_after })
}

/// The three phases, the rate offered in the last, and the group commit in the last two.
struct Measured {
    warm: Phase,
    max: Phase,
    fixed: Phase,
    offered: f64,
    /// Mean answers per commit at the maximum and at the fixed rate.
    batch_max: Option<f64>,
    batch_fixed: Option<f64>,
    /// Commits over 10 ms at the fixed rate, of all its commits.
    slow_commits_fixed: Option<(u64, u64)>,
    /// Answers the app took over 10 ms for at the fixed rate, of all it handled.
    slow_in_app_fixed: Option<(u64, u64)>,
    /// The cores other processes used, and those stolen, in each 100 ms of the fixed rate.
    others_fixed: others::Windows,
    /// With `--stall-probe`: how late a real-time thread woke, the worst core's, in ms per
    /// 100 ms of the fixed rate; or why it could not run.
    stalls_fixed: Option<Result<Vec<f64>, String>>,
    /// The bursts of another process asked for with `--bursts`, if any.
    bursts_fixed: Option<bursts::Done>,
    /// The CPU time of the speed probe's fixed work, each 100 ms of the maximum and of the
    /// fixed rate: whether the machine ran at one speed through both.
    speed_max: speed::Took,
    speed_fixed: speed::Took,
    /// CPU per answer, in µs, of the app and of the load generator, at the maximum and at the
    /// fixed rate: what each commit's and wake-up's share adds when batches are small.
    cpu_per_answer_max: CpuPerAnswer,
    cpu_per_answer_fixed: CpuPerAnswer,
    /// How often the cores slept, and what this process read from disk, in each phase.
    machine_max: machine::Counts,
    machine_fixed: machine::Counts,
}

/// A warm-up, the maximum, then the fixed rate.
async fn measure(addr: SocketAddr, requests: &Arc<Vec<Vec<u8>>>, args: &SurveyArgs) -> anyhow::Result<Measured> {
    let warm = load::drive_apart(addr, requests.clone(), 0, args.connections, 1.0, Pace::AsFastAsPossible).await?;
    let mut offset = warm.sent;
    settle().await;
    let batches = BatchMeter { addr };
    let before = batches.read().await;
    eprintln!("bench: finding the maximum ({} connections, {} s)", args.connections, args.seconds);
    let speed = speed::SpeedProbe::start();
    let cpu_before_max = others::own_cpu_seconds();
    let machine_before_max = machine::Counts::now();
    let max = load::drive_apart(addr, requests.clone(), offset, args.connections, args.seconds, Pace::AsFastAsPossible).await;
    let machine_max = machine::Counts::now().since(machine_before_max);
    let speed_max = speed.stop();
    let max = max?;
    let cpu_per_answer_max = cpu_per_answer(others::cpu_since(cpu_before_max), &max);
    offset += max.sent;
    let after_max = batches.read().await;
    let offered = max.rate() * args.share / 100.0;
    settle().await;
    eprintln!("bench: maximum {:.0} answers/s; now {offered:.0}/s for {} s", max.rate(), args.seconds);
    let others = others::OthersCpu::start();
    let stalls = args.stall_probe.then(stalls::StallProbe::start);
    let burst_length = std::time::Duration::from_millis(args.burst_ms);
    let bursts = (args.bursts > 0).then(|| bursts::Bursts::start(args.bursts, burst_length, std::time::Duration::from_secs_f64(args.seconds)));
    let speed = speed::SpeedProbe::start();
    let cpu_before_fixed = others::own_cpu_seconds();
    let machine_before_fixed = machine::Counts::now();
    let fixed = load::drive_apart(addr, requests.clone(), offset, args.connections, args.seconds, Pace::Fixed { per_second: offered }).await;
    let machine_fixed = machine::Counts::now().since(machine_before_fixed);
    let others_fixed = others.stop();
    let stalls_fixed = stalls.map(stalls::StallProbe::stop);
    let bursts_fixed = bursts.map(|b| b.stop(burst_length));
    let speed_fixed = speed.stop();
    let fixed = fixed?;
    let cpu_per_answer_fixed = cpu_per_answer(others::cpu_since(cpu_before_fixed), &fixed);
    let after_fixed = batches.read().await;
    Ok(Measured {
        warm,
        max,
        fixed,
        offered,
        batch_max: BatchMeter::mean(before, after_max),
        batch_fixed: BatchMeter::mean(after_max, after_fixed),
        slow_commits_fixed: BatchMeter::slow_commits(after_max, after_fixed),
        slow_in_app_fixed: BatchMeter::slow_in_app(after_max, after_fixed),
        others_fixed,
        stalls_fixed,
        bursts_fixed,
        speed_max,
        speed_fixed,
        cpu_per_answer_max,
        cpu_per_answer_fixed,
        machine_max,
        machine_fixed,
    })
}

/// µs of CPU per answer sent: the app's and the load generator's.
#[derive(Clone, Copy, Default)]
struct CpuPerAnswer {
    app: Option<f64>,
    generator: Option<f64>,
}

/// `process_cpu_s`, this process's CPU during `phase` (seconds), less the generator's, per
/// answer sent. What is left is the app's, with the bench's own few reads of `/proc` and
/// `/metrics`.
fn cpu_per_answer(process_cpu_s: Option<f64>, phase: &Phase) -> CpuPerAnswer {
    if phase.sent == 0 {
        return CpuPerAnswer::default();
    }
    let per_answer = |seconds: f64| seconds * 1e6 / phase.sent as f64;
    let generator = phase.generator_cpu_s;
    CpuPerAnswer { app: process_cpu_s.zip(generator).map(|(all, g)| per_answer(all - g)), generator: generator.map(per_answer) }
}

/// A pause between two phases, so that the next one starts on a quiet app: the maximum leaves
/// SQLite's WAL checkpoint behind (it runs beside the commits, every 250 ms) and 256
/// connections to close. A burst of invitations does not arrive on the heels of another.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
}

/// The answer route's labels in the app's request histogram.
const ANSWER_ROUTE: &str = r#"route="/api/v1/surveys/{id}/responses",method="POST""#;

/// The group commit's batch sizes and durations, from the app's own `/metrics`.
struct BatchMeter {
    addr: SocketAddr,
}

/// Totals of the group commit's histograms at one moment.
#[derive(Clone, Copy)]
struct Commits {
    /// Sum and count of `hejnal_survey_answer_batch_size`.
    answers: f64,
    commits: f64,
    /// Commits that took at most 10 ms (`hejnal_survey_answer_commit_seconds`).
    within_10_ms: f64,
    /// Answers the app handled, and those it handled in at most 10 ms, from its request
    /// histogram (from the request's routing to its response: what the app itself took).
    handled: f64,
    handled_within_10_ms: f64,
}

impl BatchMeter {
    async fn read(&self) -> Option<Commits> {
        let text = reqwest::get(format!("http://{}/metrics", self.addr)).await.ok()?.text().await.ok()?;
        let value = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
        Some(Commits {
            answers: value("hejnal_survey_answer_batch_size_sum")?,
            commits: value("hejnal_survey_answer_batch_size_count")?,
            within_10_ms: value("hejnal_survey_answer_commit_seconds_bucket{le=\"0.01\"}")?,
            handled: value(&format!("hejnal_http_request_duration_seconds_count{{{ANSWER_ROUTE}}}"))?,
            handled_within_10_ms: value(&format!("hejnal_http_request_duration_seconds_bucket{{{ANSWER_ROUTE},le=\"0.01\"}}"))?,
        })
    }

    fn mean(before: Option<Commits>, after: Option<Commits>) -> Option<f64> {
        let (b, a) = (before?, after?);
        (a.commits > b.commits).then(|| (a.answers - b.answers) / (a.commits - b.commits))
    }

    /// Commits between the two readings that took over 10 ms, and all of them.
    fn slow_commits(before: Option<Commits>, after: Option<Commits>) -> Option<(u64, u64)> {
        Some(Self::over_10_ms(before?, after?, |c| (c.commits, c.within_10_ms)))
    }

    /// Answers between the two readings that took the app over 10 ms, and all of them.
    fn slow_in_app(before: Option<Commits>, after: Option<Commits>) -> Option<(u64, u64)> {
        Some(Self::over_10_ms(before?, after?, |c| (c.handled, c.handled_within_10_ms)))
    }

    /// Of a histogram's (count, count within 10 ms): those over 10 ms between the readings, and all.
    fn over_10_ms(before: Commits, after: Commits, counts: fn(&Commits) -> (f64, f64)) -> (u64, u64) {
        let ((all_before, within_before), (all_after, within_after)) = (counts(&before), counts(&after));
        let all = all_after - all_before;
        ((all - (within_after - within_before)) as u64, all as u64)
    }
}

/// The survey answered: three questions, published, taking answers from now.
async fn publish_survey(store: &DynStore) -> anyhow::Result<i64> {
    let official = store.add_official("bench-survey@krakow.pl", "author", "$argon2id$bench").await?;
    let spec = json!({
        "title": {"pl": "Ankieta obciążeniowa"},
        "questions": [
            {"id": "q1", "type": "single_choice", "required": true, "text": {"pl": "Które?"}, "options": [{"pl": "A"}, {"pl": "B"}, {"pl": "C"}, {"pl": "D"}]},
            {"id": "q2", "type": "scale", "required": true, "text": {"pl": "Jak bardzo?"}},
            {"id": "q3", "type": "yes_no", "text": {"pl": "Czy?"}}
        ]
    });
    let now = now_ms();
    let draft = SurveyDraft { kind: "survey".into(), slug: None, spec: spec.to_string(), opens_at: None, closes_at: None };
    let audit = SurveyAudit { official_id: official, action: "surveys.create" };
    let id = store.create_survey(&draft, audit, now).await?;
    let publish = SurveyPublish { from: &["draft"], to: "published", audience: None, opens_at: now, approver_id: None, notice: None };
    store.publish_survey(id, &publish, SurveyAudit { action: "surveys.publish", ..audit }, now).await?.context("the bench's survey was not published")?;
    Ok(id)
}

/// One invitation per seeded resident, by email, as a fan-out would make them; returns the
/// first and last invitation id. Then a checkpoint: seeding writes about 500 MB of WAL on
/// PostgreSQL, whose checkpoint otherwise ran through both measured phases and stalled every
/// commit for ~55 ms once (a p99 of 30-46 ms at 70% from that one stall). The answers' own
/// WAL and checkpoints stay in the measurement.
async fn invite_everyone(url: &str, survey_id: i64) -> anyhow::Result<(i64, i64)> {
    use sqlx::Connection;
    const INVITE: &str = "INSERT INTO survey_invitations (survey_id, subscriber_id, language, district_mask, channel_mask, created_at)
                          SELECT $1, id, language, district_mask, 1, 0 FROM subscribers WHERE public_id LIKE 'bench-%' ORDER BY id";
    const RANGE: &str = "SELECT min(id), max(id) FROM survey_invitations WHERE survey_id = $1";
    let range: (Option<i64>, Option<i64>) = if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query(INVITE).bind(survey_id).execute(&mut c).await?;
        sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut c).await?;
        sqlx::query_as(RANGE).bind(survey_id).fetch_one(&mut c).await?
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query(INVITE).bind(survey_id).execute(&mut c).await?;
        sqlx::raw_sql("VACUUM ANALYZE survey_invitations").execute(&mut c).await?;
        sqlx::raw_sql("CHECKPOINT").execute(&mut c).await.context("the bench's role may not CHECKPOINT (it needs pg_checkpoint or a superuser)")?;
        sqlx::query_as(RANGE).bind(survey_id).fetch_one(&mut c).await?
    };
    match range {
        (Some(first), Some(last)) => Ok((first, last)),
        _ => anyhow::bail!("no invitations were made"),
    }
}

/// This process's configuration, on the fresh data, on a free port, with the public rate
/// limit out of the way: every answer comes from one address here.
fn bench_config(base: &Config, fresh: &Fresh) -> anyhow::Result<Config> {
    let mut config = fresh.config(base)?;
    config.public_rate_per_minute = u32::MAX;
    config.public_rate_burst = u32::MAX;
    Ok(config)
}

/// The machine's 1, 5 and 15-minute load averages, as the kernel gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "unknown".into())
}

/// p50 and p99 of a phase, in ms.
fn p50_p99(phase: &Phase) -> (f64, f64) {
    (percentile(&phase.latencies_ms, 0.50), percentile(&phase.latencies_ms, 0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_answer_is_the_app_and_the_generator_apart_in_microseconds() {
        let phase = Phase { sent: 200_000, generator_cpu_s: Some(2.0), ..Phase::default() };
        let got = cpu_per_answer(Some(12.0), &phase);
        assert_eq!((got.app, got.generator), (Some(50.0), Some(10.0)), "10 s of 12 are the app's, over 200,000 answers");
        let unknown = cpu_per_answer(Some(12.0), &Phase { generator_cpu_s: None, ..phase });
        assert_eq!((unknown.app, unknown.generator), (None, None), "without the generator's share the app's is not known either");
        let none_sent = cpu_per_answer(Some(12.0), &Phase::default());
        assert_eq!((none_sent.app, none_sent.generator), (None, None));
    }
}
