//! `hejnal bench estimate --subscribers N`: seed N synthetic residents (spread over the 18
//! districts, the interests and the three languages; all with a verified email, half with a
//! verified phone) by bulk SQL, then time the audience estimate for several audience shapes.
//! It also checks the answer against a plain join, so a fast wrong answer cannot pass.

use std::{process::ExitCode, time::Instant};

use clap::Args;

use super::{
    queue::percentile,
    seed::{SeedPlan, count_seeded, scalar, seed},
};
use crate::{app, config::Config, store::AudienceQuery};

#[derive(Args, Debug, Clone)]
pub struct EstimateArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub subscribers: i64,
    /// Timed runs per audience shape.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
}

pub async fn run(args: EstimateArgs, config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let started = Instant::now();
    let existing = count_seeded(&config.database_url).await?;
    if existing == 0 {
        seed(&config.database_url, &SeedPlan { subscribers: args.subscribers, phone_every: 2, push: &[] }).await?;
        eprintln!("bench: seeded {} residents in {:.1}s", args.subscribers, started.elapsed().as_secs_f64());
    } else {
        anyhow::ensure!(existing == args.subscribers, "this database holds {existing} bench residents, not {}; use a fresh one", args.subscribers);
        eprintln!("bench: reusing {existing} residents seeded earlier");
    }

    let shapes: [(&str, AudienceQuery); 3] = [
        ("one district, one interest", query(&["podgorze"], &["water"], false)),
        ("six districts, any interest (Severe)", query(&["podgorze", "debniki", "krowodrza", "bronowice", "czyzyny", "nowa-huta"], &[], true)),
        ("whole city, three interests", query(&ALL_DISTRICTS, &["water", "roads", "transport"], false)),
    ];
    println!("audience estimate, {} store, {} residents, {} runs each", store.backend(), args.subscribers, args.runs);
    println!("| audience | recipients | median ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    for (name, q) in &shapes {
        let mut times = Vec::with_capacity(args.runs);
        let mut recipients = 0;
        for _ in 0..args.runs {
            let t = Instant::now();
            let counts = store.estimate(q).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            recipients = counts.by_channel_language.iter().map(|(_, _, n)| n).sum::<i64>();
        }
        println!("| {name} | {recipients} | {:.1} | {:.1} |", percentile(&times, 0.5), percentile(&times, 0.99));
        if name.starts_with("one district") {
            let joined = count_by_join(&config.database_url).await?;
            anyhow::ensure!(joined == recipients, "the estimate said {recipients}, a plain join says {joined}");
        }
    }
    println!("(checked: the first audience's count equals a plain join over contacts and choices)");
    Ok(ExitCode::SUCCESS)
}

/// Recipients in podgorze following water, counted the slow, obvious way.
async fn count_by_join(url: &str) -> anyhow::Result<i64> {
    scalar(
        url,
        "SELECT count(*) FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id
         WHERE c.status = 'verified' AND s.erased_at IS NULL
           AND EXISTS (SELECT 1 FROM subscriber_districts sd WHERE sd.subscriber_id = s.id AND sd.district = 'podgorze')
           AND EXISTS (SELECT 1 FROM subscriber_interests si WHERE si.subscriber_id = s.id AND si.interest = 'water')",
    )
    .await
}

const ALL_DISTRICTS: [&str; 18] = [
    "stare-miasto", "grzegorzki", "pradnik-czerwony", "pradnik-bialy", "krowodrza", "bronowice", "zwierzyniec", "debniki",
    "lagiewniki-borek-falecki", "swoszowice", "podgorze-duchackie", "biezanow-prokocim", "podgorze", "czyzyny",
    "mistrzejowice", "bienczyce", "wzgorza-krzeslawickie", "nowa-huta",
];

fn query(districts: &[&str], interests: &[&str], all_interests: bool) -> AudienceQuery {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    AudienceQuery {
        districts: own(districts),
        interests: own(interests),
        all_interests,
        channels: own(&["sms", "email", "push"]),
        languages: own(&["pl", "en", "uk"]),
    }
}
