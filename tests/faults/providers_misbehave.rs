//! Scenario 5: providers misbehave while an alert goes out by SMS and email to everyone. The SMS
//! gateway answers, in every hundred requests, five 429s with `Retry-After: 1`, a run of ten
//! 500s, and two 200s that come only after the client's timeout (so they count as "may have been
//! sent"). The SMTP server answers, in every hundred messages, two 421s, two 451s, one 550, and
//! stalls 30 s on one. Promised: everything final (the 550s failed with their reason), no
//! duplicate beyond the timed-out tries, SMS not held up by the stalled email, and no database
//! transaction held open while a provider is waited on (the workers' pools are small besides).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use hejnal::testkit::{
    sms::Reply,
    smtp::{Act, SmtpSink, Stage},
};
use serde_json::json;
use sqlx::PgPool;

use crate::harness::{Cluster, RESIDENTS, one_at_a_time, providers, publish, report};

fn sms_pattern() -> Vec<Option<Reply>> {
    let mut p: Vec<Option<Reply>> = Vec::new();
    p.extend((0..5).map(|_| Some(Reply::new(429, "slow down").header("Retry-After", "1"))));
    p.extend((0..40).map(|_| None));
    p.extend((0..10).map(|_| Some(Reply::new(500, "internal error"))));
    p.extend((0..40).map(|_| None));
    // Accepted, but after the client's timeout (1 s).
    p.extend((0..2).map(|n| Some(Reply::new(200, format!(r#"{{"id": "late-{n}"}}"#)).after(Duration::from_millis(1_500)))));
    p.extend((0..3).map(|_| None));
    p
}

fn smtp_pattern() -> Vec<Option<Act>> {
    let mut p: Vec<Option<Act>> = vec![Some(Act::Reply(421)), Some(Act::Reply(421)), Some(Act::Reply(451)), Some(Act::Reply(451))];
    p.extend((0..45).map(|_| None));
    p.push(Some(Act::Reply(550)));
    p.extend((0..45).map(|_| None));
    p.push(Some(Act::Stall(Duration::from_secs(30))));
    p.extend((0..3).map(|_| None));
    p
}

fn alert(districts: &[String]) -> serde_json::Value {
    json!({
        "kind": "alert", "msg_type": "Alert", "status": "Actual", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed",
        "texts": {"pl": {"title": "[misbehave] Awaria sieci", "body": "Brak pradu do 18:00."}},
        "audience": {"districts": districts, "interests": [], "channels": ["sms", "email"]}
    })
}

/// Open transactions of the workers idle for over a second: a transaction held while waiting.
async fn held_transactions(pool: &PgPool) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'hejnal-worker%'
           AND state LIKE 'idle in transaction%' AND now() - state_change > interval '1 second'",
    )
    .fetch_one(pool)
    .await
    .expect("pg_stat_activity");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_providers_lose_nothing_repeat_only_what_timed_out_and_hold_no_connection() {
    let _turn = one_at_a_time();
    let smtp = SmtpSink::start().await;
    let smtp_url = smtp.url();
    let mut cluster = Cluster::start(RESIDENTS, &[
        ("HEJNAL_SMTP_URL", &smtp_url),
        ("HEJNAL_EMAIL_FROM", "Hejnal Krakow <noreply@krakow.pl>"),
        ("HEJNAL_SMS_TIMEOUT_MS", "1000"),
        ("HEJNAL_EMAIL_TIMEOUT_MS", "45000"),
        ("HEJNAL_DELIVERY_LEASE_SECS", "100"),
        // Few connections: a send that held one while waiting would stop the others.
        ("HEJNAL_DATABASE_MAX_CONNECTIONS", "3"),
    ])
    .await;
    cluster.sms.pattern(sms_pattern());
    smtp.pattern(Stage::EndOfData, smtp_pattern());
    let _api = cluster.api().await;
    let _workers = [cluster.worker(), cluster.worker()];
    let desk = cluster.desk().await;
    let ledger = cluster.ledger().await;
    let pool = PgPool::connect(&cluster.postgres.url("hejnal", "faults-misbehave")).await.expect("connect");

    let started = Instant::now();
    publish(&desk, &alert(&cluster.districts)).await;
    // Watch while it drains: when SMS is done, and whether a worker keeps a transaction open.
    let (mut sms_done, mut email_done, mut held_max) = (None, None, 0);
    loop {
        held_max = held_max.max(held_transactions(&pool).await);
        let sms = providers::statuses(&pool, "sms").await;
        let email = providers::statuses(&pool, "email").await;
        let open = |s: &BTreeMap<String, i64>| s.get("queued").copied().unwrap_or(0) + s.get("sending").copied().unwrap_or(0);
        let total = |s: &BTreeMap<String, i64>| s.values().sum::<i64>();
        if sms_done.is_none() && total(&sms) == RESIDENTS && open(&sms) == 0 {
            sms_done = Some((started.elapsed(), smtp.count()));
        }
        if email_done.is_none() && total(&email) == RESIDENTS && open(&email) == 0 {
            email_done = Some(started.elapsed());
        }
        if email_done.is_some() && sms_done.is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "not final after 10 minutes: SMS {sms:?}, email {email:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // When email became final, seen in the same passes as SMS: equal or earlier if the stalled
    // SMTP server had held SMS back.
    let all_done = email_done.unwrap();
    ledger.settle(2 * RESIDENTS, Duration::from_secs(10)).await;
    let (sms_done, emails_by_then) = sms_done.unwrap();

    // Nothing lost: SMS all sent; email sent or, for the 550s, failed with the reason.
    let sms = providers::statuses(&pool, "sms").await;
    let email = providers::statuses(&pool, "email").await;
    assert_eq!(sms.get("sent").copied(), Some(RESIDENTS), "{sms:?}");
    let refused: i64 = ledger.count("SELECT count(*) FROM deliveries WHERE channel = 'email' AND status = 'failed' AND error LIKE '%550%'").await;
    assert!(refused > 0, "no email was refused: {email:?}");
    assert_eq!(email.get("failed").copied().unwrap_or(0), refused, "every failed email is a 550: {email:?}");
    assert_eq!(email.get("sent").copied().unwrap_or(0) + refused, RESIDENTS, "{email:?}");

    // Nothing twice, except where the provider's answer came after the timeout.
    let sms_accepted = providers::accepted_sms(&[&cluster.sms]);
    let email_accepted = providers::accepted_email(&smtp);
    assert_eq!(sms_accepted.len() as i64, RESIDENTS);
    assert_eq!(email_accepted.len() as i64, RESIDENTS - refused);
    let maybe = providers::maybe_sent(&pool).await;
    let sms_repeats = providers::repeated(&sms_accepted);
    let email_repeats = providers::repeated(&email_accepted);
    let unexplained: Vec<_> = sms_repeats.iter().chain(&email_repeats).filter(|id| !maybe.contains(id)).take(10).collect();
    assert!(unexplained.is_empty(), "sent twice without a timeout that may have sent them: {unexplained:?}");
    let retried: i64 = ledger.count("SELECT count(*) FROM delivery_events WHERE outcome = 'retry'").await;
    let limited: i64 = ledger.count("SELECT count(*) FROM delivery_events WHERE outcome = 'retry' AND detail LIKE 'rate limited%'").await;
    assert!(limited > 0 && retried > limited, "the 429s and 500s were retried ({limited} rate-limited of {retried} retries)");

    // SMS went on while emails stalled; no worker held a transaction while it waited.
    assert!(sms_done < all_done, "SMS finished {sms_done:?}, email {all_done:?}");
    assert_eq!(held_max, 0, "a worker kept a transaction open for over a second");
    report(
        "providers misbehave",
        format_args!(
            "{RESIDENTS} SMS + {RESIDENTS} email: SMS all sent in {sms_done:.1?} (SMTP had accepted {emails_by_then} emails by then), email final in {all_done:.1?}: {} sent, {refused} refused (550); {retried} retries ({limited} after a 429); repeats at the sinks: SMS {}, email {} (maybe-sent deliveries: {}); transactions held over 1 s while waiting: {held_max}",
            RESIDENTS - refused,
            sms_repeats.len(),
            email_repeats.len(),
            maybe.len()
        ),
    );
}
