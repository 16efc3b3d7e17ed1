//! `hejnal bench broadcast`: the whole path from an official's approval to messages at real
//! peers, at city scale. It binds the test sinks in counting mode and measures their ceilings,
//! then, per backend, seeds N residents into a fresh database, starts the service as a process
//! of its own (`hejnal serve`, see `served.rs`) with its channels pointed at the sinks, and runs a routine campaign to everyone over each
//! channel in turn, with emergency alerts published while the first one drains.

mod alerts;
mod campaign;
mod desk;
mod report;
mod served;

pub use desk::{Desk, waiting};

use std::{process::ExitCode, time::Instant};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::Args;
use uuid::Uuid;

use self::{
    alerts::{Alerts, AlertsResult},
    campaign::{Campaign, CampaignResult},
};
use super::{
    backend::{Backend, BackendChoice, Fresh},
    rss,
    seed::{SeedPlan, seed},
    sinks::{self, BenchSinks},
};
use crate::{
    app,
    config::Config,
};

#[derive(Args, Debug, Clone)]
pub struct BroadcastArgs {
    /// Residents to seed, each with a verified email, phone and push subscription.
    #[arg(long, default_value_t = 100_000)]
    pub subscribers: u64,
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    pub backend: BackendChoice,
    /// Routine campaigns, one per channel, in this order; the alerts run during the first.
    #[arg(long, value_delimiter = ',', default_value = "sms,email,push")]
    pub channels: Vec<String>,
    /// Emergency alerts published, one after another, during the first campaign.
    #[arg(long, default_value_t = 10)]
    pub alerts: usize,
    /// The push receiver decrypts one push in this many, urgent or not.
    #[arg(long, default_value_t = 100)]
    pub decrypt_one_in: u64,
    /// Seconds each sink's ceiling is measured.
    #[arg(long, default_value_t = 5)]
    pub ceiling_seconds: u32,
    /// A PostgreSQL server where the bench may create and drop a database.
    #[arg(long, env = "HEJNAL_TEST_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub postgres_url: String,
    #[arg(long, env = "HEJNAL_TEST_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
}

/// What one backend measured.
pub(crate) struct BackendResult {
    backend: Backend,
    seed_secs: f64,
    campaigns: Vec<CampaignResult>,
    alerts: AlertsResult,
    /// The service's process (`hejnal serve`).
    peak_rss_mb: Option<f64>,
    /// The bench's own process while the service ran: the sinks, the load, the bench's reads.
    bench_peak_rss_mb: Option<f64>,
}

impl BackendResult {
    fn campaign(&self, channel: &str) -> Option<&CampaignResult> {
        self.campaigns.iter().find(|c| c.channel == channel)
    }
}

pub async fn run(args: BroadcastArgs, config: Config) -> anyhow::Result<ExitCode> {
    for channel in &args.channels {
        anyhow::ensure!(["sms", "email", "push"].contains(&channel.as_str()), "--channels: {channel:?} is not sms, email or push");
    }
    let sinks = BenchSinks::bind(args.decrypt_one_in).await?;
    let ceilings = sinks::measure(&sinks, args.ceiling_seconds).await?;
    let mut results = Vec::new();
    for backend in args.backend.backends() {
        let fresh = Fresh::create(backend, &args.postgres_url, &args.redis_url).await?;
        let result = run_backend(backend, &fresh, &args, &config, &sinks).await;
        fresh.remove().await.context("cannot remove the bench's database")?;
        results.push(result?);
    }
    sinks::print_ceilings(&ceilings, args.decrypt_one_in);
    report::print(args.subscribers, &ceilings, &results);
    Ok(ExitCode::SUCCESS)
}

async fn run_backend(backend: Backend, fresh: &Fresh, args: &BroadcastArgs, base: &Config, sinks: &BenchSinks) -> anyhow::Result<BackendResult> {
    eprintln!("bench: {}: seeding {} residents", backend.name(), args.subscribers);
    let config = bench_config(base, fresh, sinks)?;
    // The bench's own reads (the desk, following notices) need few connections; every SQLite
    // connection is a thread and a page cache in this process, counted in its peak RSS.
    let store = app::open_store(&Config { database_max_connections: 2, ..config.clone() }).await?;
    let started = Instant::now();
    let plan = SeedPlan { subscribers: args.subscribers as i64, phone_every: 1, push: &sinks.push_targets };
    seed(&fresh.database_url, &plan).await?;
    let seed_secs = started.elapsed().as_secs_f64();
    eprintln!("bench: seeded in {seed_secs:.1} s");
    if !rss::reset_peak() {
        eprintln!("bench: cannot reset the peak RSS; it includes the seeding");
    }
    let served = served::Served::start(&config).await?;
    let refused_before = sinks.push.refused_count();
    let measured = measure(args, &store, served.base_url.clone(), sinks).await;
    let peak_rss_mb = served.peak_rss_mb();
    let bench_peak_rss_mb = rss::peak_mb();
    if sinks.push.refused_count() > refused_before {
        eprintln!("bench: the push receiver refused {} pushes, lately: {:?}", sinks.push.refused_count() - refused_before, sinks.push.refused());
    }
    served.stop().await?;
    let (campaigns, alerts) = measured?;
    Ok(BackendResult { backend, seed_secs, campaigns, alerts, peak_rss_mb, bench_peak_rss_mb })
}

/// The campaigns one after another, the alerts during the first.
async fn measure(args: &BroadcastArgs, store: &crate::store::DynStore, base_url: String, sinks: &BenchSinks) -> anyhow::Result<(Vec<CampaignResult>, AlertsResult)> {
    let desk = Desk::open(store, base_url).await?;
    let districts: Vec<String> = store.districts().await?.into_iter().map(|d| d.slug).collect();
    let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut campaigns = Vec::new();
    let mut alerts = AlertsResult::default();
    for (i, channel) in args.channels.iter().enumerate() {
        let campaign = Campaign { desk: &desk, sinks, channel, districts: &districts, recipients: args.subscribers, run_id: &run_id };
        let count = if i == 0 { args.alerts } else { 0 };
        let during = Alerts { desk: &desk, sinks, count, districts: &districts, run_id: &run_id };
        let (result, emergencies) = campaign.run(|routine| during.run(routine)).await?;
        eprintln!("bench: {channel} campaign drained in {:.1} s at {:.0}/s", result.drain_secs, result.rate);
        campaigns.push(result);
        if i == 0 {
            alerts = emergencies;
        }
    }
    Ok((campaigns, alerts))
}

/// This process's configuration, on the fresh data, on a free port, with every channel
/// pointed at the sinks.
fn bench_config(base: &Config, fresh: &Fresh, sinks: &BenchSinks) -> anyhow::Result<Config> {
    let mut config = fresh.config(base)?;
    let c = &mut config.channels;
    c.sms_provider = Some("webhook".into());
    c.sms_url = Some(format!("{}/sms", sinks.sms.base_url()));
    c.sms_sender = Some("KRAKOW".into());
    c.smtp_url = Some(sinks.smtp.url());
    c.email_from = Some("Hejnal Krakow <noreply@krakow.pl>".into());
    c.vapid_private_key = Some(URL_SAFE_NO_PAD.encode(p256::SecretKey::random(&mut rand::rngs::OsRng).to_bytes()));
    c.vapid_subject = Some("mailto:bench@krakow.pl".into());
    c.push_allow_local = true;
    c.check()?;
    Ok(config)
}
