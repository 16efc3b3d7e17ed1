//! `hejnal bench estimate --subscribers N`: seed N synthetic residents (spread over the 18
//! districts, the interests and the three languages; all with a verified email, half with a
//! verified phone) by bulk SQL, then time the audience estimate for several audience shapes.
//! It also checks the answer against a plain join, so a fast wrong answer cannot pass.

use std::{process::ExitCode, time::Instant};

use clap::Args;

use super::queue::percentile;
use crate::{app, config::Config, store::AudienceQuery};

#[derive(Args, Debug, Clone)]
pub struct EstimateArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub subscribers: i64,
    /// Timed runs per audience shape.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
}

/// Seeding statements. `{N}` is the count; the marker prefix keeps bench rows apart.
const SEED_POSTGRES: &[&str] = &[
    "INSERT INTO subscribers (public_id, language, created_at, updated_at)
     SELECT 'bench-' || g, CASE g % 3 WHEN 0 THEN 'pl' WHEN 1 THEN 'en' ELSE 'uk' END, 0, 0 FROM generate_series(1, {N}) g",
    "INSERT INTO subscriber_districts (subscriber_id, district)
     SELECT s.id, d.slug FROM subscribers s JOIN districts d ON d.position = 1 + s.id % 18 WHERE s.public_id LIKE 'bench-%'",
    "INSERT INTO subscriber_interests (subscriber_id, interest)
     SELECT s.id, i.slug FROM subscribers s JOIN interests i ON i.position = 1 + s.id % 11 WHERE s.public_id LIKE 'bench-%'",
    "INSERT INTO contacts (subscriber_id, channel, address, status, verified_at, created_at)
     SELECT id, 'email', 'bench' || id || '@example.com', 'verified', 0, 0 FROM subscribers WHERE public_id LIKE 'bench-%'",
    "INSERT INTO contacts (subscriber_id, channel, address, status, verified_at, created_at)
     SELECT id, 'sms', '+4860' || (1000000 + id), 'verified', 0, 0 FROM subscribers WHERE public_id LIKE 'bench-%' AND id % 2 = 0",
    // The masks the service keeps in step on every write, set here in one pass.
    "UPDATE subscribers SET district_mask = CAST(1 AS BIGINT) << CAST(id % 18 AS INTEGER),
                            interest_mask = CAST(1 AS BIGINT) << CAST(id % 11 AS INTEGER),
                            verified_mask = CASE WHEN id % 2 = 0 THEN 3 ELSE 1 END
     WHERE public_id LIKE 'bench-%'",
    // Sets the visibility map, so the estimate can scan the index alone (autovacuum does
    // this in service).
    "VACUUM ANALYZE",
];

const SEED_SQLITE: &[&str] = &[
    "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {N})
     INSERT INTO subscribers (public_id, language, created_at, updated_at)
     SELECT 'bench-' || n, CASE n % 3 WHEN 0 THEN 'pl' WHEN 1 THEN 'en' ELSE 'uk' END, 0, 0 FROM g",
    SEED_POSTGRES[1],
    SEED_POSTGRES[2],
    SEED_POSTGRES[3],
    SEED_POSTGRES[4],
    SEED_POSTGRES[5],
    "ANALYZE",
];

pub async fn run(args: EstimateArgs, config: Config) -> anyhow::Result<ExitCode> {
    let store = app::open_store(&config).await?;
    let started = Instant::now();
    let existing = count_seeded(&config.database_url).await?;
    if existing == 0 {
        seed(&config.database_url, args.subscribers).await?;
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

/// Residents an earlier run seeded here.
async fn count_seeded(url: &str) -> anyhow::Result<i64> {
    scalar(url, "SELECT count(*) FROM subscribers WHERE public_id LIKE 'bench-%'").await
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

/// One number from one query, on a connection of its own (the store hides its pool).
async fn scalar(url: &str, sql: &'static str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let (n,): (i64,) = if url.starts_with("sqlite:") {
        sqlx::query_as(sql).fetch_one(&mut sqlx::SqliteConnection::connect(url).await?).await?
    } else {
        sqlx::query_as(sql).fetch_one(&mut sqlx::PgConnection::connect(url).await?).await?
    };
    Ok(n)
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

async fn seed(url: &str, n: i64) -> anyhow::Result<()> {
    use sqlx::Connection;
    let statements = if url.starts_with("sqlite:") { SEED_SQLITE } else { SEED_POSTGRES };
    let count = n.to_string();
    macro_rules! run_all {
        ($conn:expr) => {
            for sql in statements {
                // The only value spliced in is our own integer; there is no input to inject.
                let sql = sql.replace("{N}", &count);
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut $conn).await?;
            }
        };
    }
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        run_all!(conn);
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        run_all!(conn);
    }
    Ok(())
}
