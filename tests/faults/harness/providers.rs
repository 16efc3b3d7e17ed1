//! For the provider scenarios (misbehaving providers, failover): what the sinks *accepted*, as
//! opposed to what reached them (a request answered 500 sent nothing), and SQL over the
//! per-try columns of `delivery_events` (`provider`, `maybe_sent`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hejnal::testkit::{sms::SmsGateway, smtp::SmtpSink};
use sqlx::PgPool;

/// How often the gateway accepted each reference (a 2xx, whatever the client learnt).
pub fn accepted_sms(gateways: &[&SmsGateway]) -> HashMap<i64, u32> {
    let mut seen = HashMap::new();
    for gateway in gateways {
        for r in gateway.requests().iter().filter(|r| r.accepted()) {
            let reference = r.reference().and_then(|s| s.parse::<i64>().ok()).expect("every SMS carries its delivery id");
            *seen.entry(reference).or_insert(0) += 1;
        }
    }
    seen
}

/// How often the SMTP server accepted each delivery (its id is the left of the Message-ID).
pub fn accepted_email(smtp: &SmtpSink) -> HashMap<i64, u32> {
    let mut seen = HashMap::new();
    for m in smtp.received() {
        let id = m.header("Message-ID").expect("a Message-ID");
        let reference = id.trim_matches(['<', '>']).split('@').next().and_then(|s| s.parse::<i64>().ok()).expect("the delivery id in the Message-ID");
        *seen.entry(reference).or_insert(0) += 1;
    }
    seen
}

/// The references accepted more than once.
pub fn repeated(accepted: &HashMap<i64, u32>) -> BTreeSet<i64> {
    accepted.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect()
}

/// Deliveries with a try that may have been sent although no answer said so (a timeout).
pub async fn maybe_sent(pool: &PgPool) -> BTreeSet<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT DISTINCT delivery_id FROM delivery_events WHERE maybe_sent").fetch_all(pool).await.expect("maybe sent");
    rows.into_iter().map(|(id,)| id).collect()
}

/// Ids of the deliveries of one channel.
pub async fn deliveries(pool: &PgPool, channel: &str) -> BTreeSet<i64> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM deliveries WHERE channel = $1").bind(channel).fetch_all(pool).await.expect("deliveries");
    rows.into_iter().map(|(id,)| id).collect()
}

/// Statuses of one channel's deliveries.
pub async fn statuses(pool: &PgPool, channel: &str) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM deliveries WHERE channel = $1 GROUP BY status").bind(channel).fetch_all(pool).await.expect("statuses");
    rows.into_iter().collect()
}

/// A configuration file for the service (`HEJNAL_CONFIG`), kept while the handle lives.
pub fn config_file(toml: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().expect("temp file");
    std::fs::write(file.path(), toml).expect("write the configuration file");
    file
}
