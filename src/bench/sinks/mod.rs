//! `hejnal bench sinks`: how fast each test sink takes messages from a bare client that does
//! nothing else, the ceiling against which the broadcast bench's delivery rates are read. The
//! clients and the sinks share this machine's cores, as they do in the broadcast bench.

mod push;
mod sms;
mod smtp;

use std::{
    future::Future,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::queue::percentile;
use crate::{
    channels::PushTarget,
    testkit::{
        Keep,
        push::{PushOptions, PushReceiver},
        sms::{SmsGateway, Style},
        smtp::{SmtpOptions, SmtpSink},
    },
};

/// Push subscriptions (key pairs) in the receiver; residents' endpoints sit below them.
const PUSH_KEY_PAIRS: usize = 8;

#[derive(Args, Debug, Clone)]
pub struct SinksArgs {
    /// Seconds each sink is blasted; the rate is the median of its 1-second windows.
    #[arg(long, default_value_t = 5)]
    pub seconds: u32,
    /// The push receiver decrypts one push in this many (it checks VAPID on every one).
    #[arg(long, default_value_t = 100)]
    pub decrypt_one_in: u64,
}

/// The three sinks, bound to count what arrives instead of keeping it.
pub(crate) struct BenchSinks {
    pub smtp: SmtpSink,
    pub sms: SmsGateway,
    pub push: PushReceiver,
    /// A few subscriptions; each resident's endpoint is one of these plus `/{resident}`.
    pub push_targets: Vec<PushTarget>,
}

impl BenchSinks {
    pub(crate) async fn bind(decrypt_one_in: u64) -> std::io::Result<BenchSinks> {
        let smtp = SmtpSink::bind(SmtpOptions { keep: Keep::Last(0), offer_pipelining: true }).await?;
        let sms = SmsGateway::bind(Style::Webhook, Keep::Last(0)).await?;
        let push = PushReceiver::bind(PushOptions { keep: Keep::Last(0), decrypt_one_in, decrypt_urgent: false }).await?;
        let push_targets = (0..PUSH_KEY_PAIRS).map(|_| push.subscribe()).collect();
        Ok(BenchSinks { smtp, sms, push, push_targets })
    }
}

/// Each sink's ceiling, in messages per second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ceilings {
    pub sms: f64,
    pub email: f64,
    pub push: f64,
}

pub async fn run(args: SinksArgs) -> anyhow::Result<ExitCode> {
    let sinks = BenchSinks::bind(args.decrypt_one_in).await?;
    let ceilings = measure(&sinks, args.seconds).await?;
    println!("sink ceilings (bare clients, {} s each, median of 1-second windows)", args.seconds);
    print_ceilings(&ceilings, args.decrypt_one_in);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_ceilings(c: &Ceilings, decrypt_one_in: u64) {
    println!("| sink | bare client | messages/s |");
    println!("| --- | --- | --- |");
    println!("| SMS gateway (webhook) | {} | {:.0} |", sms::CLIENT, c.sms);
    println!("| SMTP server | {} | {:.0} |", smtp::CLIENT, c.email);
    println!("| push receiver (decrypts 1 in {decrypt_one_in}) | {} | {:.0} |", push::CLIENT, c.push);
}

/// Blast each sink in turn, one after another so that they do not share the cores.
pub(crate) async fn measure(sinks: &BenchSinks, seconds: u32) -> anyhow::Result<Ceilings> {
    let sms = rate(seconds, || sinks.sms.count(), |stop| sms::blast(sinks.sms.base_url(), stop)).await?;
    eprintln!("bench: SMS gateway ceiling {sms:.0}/s");
    let email = rate(seconds, || sinks.smtp.count(), |stop| smtp::blast(sinks.smtp.addr(), stop)).await?;
    eprintln!("bench: SMTP ceiling {email:.0}/s");
    let push = rate(seconds, || sinks.push.count(), |stop| push::blast(sinks.push_targets.clone(), stop)).await?;
    eprintln!("bench: push receiver ceiling {push:.0}/s");
    Ok(Ceilings { sms, email, push })
}

/// The median of the 1-second rates of `count` while `blast` runs, over `seconds` windows.
async fn rate<B, F>(seconds: u32, count: impl Fn() -> u64, blast: B) -> anyhow::Result<f64>
where
    B: FnOnce(CancellationToken) -> F,
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let stop = CancellationToken::new();
    let blaster = tokio::spawn(blast(stop.clone()));
    let mut rates = Vec::new();
    let (mut last_count, mut last_at) = (count(), Instant::now());
    for _ in 0..seconds.max(1) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (now_count, now_at) = (count(), Instant::now());
        rates.push((now_count - last_count) as f64 / (now_at - last_at).as_secs_f64());
        (last_count, last_at) = (now_count, now_at);
    }
    stop.cancel();
    blaster.await??;
    Ok(percentile(&rates, 0.5))
}

/// Run `one` in `in_flight` loops at once until `stop`; the first error ends them all.
async fn in_flight<M, F>(in_flight: usize, stop: CancellationToken, one: M) -> anyhow::Result<()>
where
    M: Fn(u64) -> F + Clone + Send + 'static,
    F: Future<Output = anyhow::Result<()>> + Send,
{
    let loops = (0..in_flight).map(|lane| {
        let (one, stop) = (one.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = lane as u64;
            while !stop.is_cancelled() {
                one(n).await?;
                n += in_flight as u64;
            }
            anyhow::Ok(())
        })
    });
    for result in futures::future::join_all(loops).await {
        result??;
    }
    Ok(())
}
