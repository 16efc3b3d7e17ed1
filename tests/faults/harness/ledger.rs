//! The promises, checked with SQL over `deliveries` and `delivery_events` and against the
//! SMS gateway's own log of what it received (each request carries the delivery id as its
//! `reference`, so a repeat is visible).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::{Duration, Instant},
};

use hejnal::testkit::sms::SmsGateway;
use sqlx::{PgPool, postgres::PgPoolOptions};

/// Statuses a delivery ends in.
pub const FINAL: &[&str] = &["sent", "delivered", "failed", "expired", "cancelled"];

pub struct Ledger {
    pool: PgPool,
}

impl Ledger {
    pub async fn connect(url: &str) -> Ledger {
        let pool = PgPoolOptions::new().max_connections(2).connect(url).await.expect("ledger connects");
        Ledger { pool }
    }

    /// Deliveries per status, over every notice.
    pub async fn statuses(&self) -> BTreeMap<String, i64> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM deliveries GROUP BY status").fetch_all(&self.pool).await.expect("statuses");
        rows.into_iter().collect()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        n
    }

    /// A count with one text parameter (`$1`).
    pub async fn count_where(&self, sql: &'static str, value: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql).bind(value).fetch_one(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        n
    }

    /// The ids a query returns (its first column).
    pub async fn ids(&self, sql: &'static str) -> BTreeSet<i64> {
        let rows: Vec<(i64,)> = sqlx::query_as(sql).fetch_all(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|(id,)| id).collect()
    }

    /// How many deliveries a notice has.
    pub async fn deliveries_of(&self, notice_id: i64) -> i64 {
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM deliveries WHERE notice_id = $1").bind(notice_id).fetch_one(&self.pool).await.expect("deliveries of");
        n
    }

    /// Two text columns of every row a query returns.
    pub async fn pairs(&self, sql: &'static str) -> Vec<(String, String)> {
        sqlx::query_as(sql).fetch_all(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn strings(&self, sql: &'static str) -> Vec<String> {
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&self.pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().map(|(s,)| s).collect()
    }

    /// Deliveries a worker holds right now (claimed, outcome not written yet).
    pub async fn in_flight(&self) -> BTreeSet<i64> {
        self.ids("SELECT id FROM deliveries WHERE status = 'sending'").await
    }

    /// Deliveries claimed more often than an outcome was written for them: sends whose result
    /// was lost (the worker died, or could not write it), which may therefore repeat.
    pub async fn unrecorded_claims(&self) -> BTreeSet<i64> {
        self.ids(
            "SELECT d.id FROM deliveries d WHERE d.attempts >
               (SELECT count(*) FROM delivery_events e WHERE e.delivery_id = d.id AND e.worker_id IS NOT NULL)",
        )
        .await
    }

    /// Deliveries with an attempt that timed out waiting for the provider (it may have sent).
    pub async fn timeouts(&self) -> BTreeSet<i64> {
        self.ids("SELECT DISTINCT delivery_id FROM delivery_events WHERE outcome = 'retry' AND detail ILIKE '%timed out%'").await
    }

    /// The worker ids that wrote outcomes for these deliveries.
    pub async fn writers(&self, ids: &BTreeSet<i64>) -> BTreeSet<String> {
        let ids: Vec<i64> = ids.iter().copied().collect();
        let rows: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT worker_id FROM delivery_events WHERE worker_id IS NOT NULL AND delivery_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .expect("writers");
        rows.into_iter().map(|(w,)| w).collect()
    }

    /// Wait until every delivery of `expected` is final, up to `limit` (a deadline with a wide
    /// margin, never a speed target); returns how long it took.
    pub async fn settle(&self, expected: i64, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let statuses = self.statuses().await;
            let total: i64 = statuses.values().sum();
            let settled: i64 = FINAL.iter().map(|s| statuses.get(*s).copied().unwrap_or(0)).sum();
            if total >= expected && settled == total {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "deliveries not final after {limit:?}: {statuses:?} (expected {expected})");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Wait until a worker has taken up every one of `ids` since `since_ms` (claimed it again,
    /// or finished it: either writes `updated_at`); returns how long it took.
    pub async fn taken_up(&self, ids: &BTreeSet<i64>, since_ms: i64, limit: Duration) -> Duration {
        let list: Vec<i64> = ids.iter().copied().collect();
        let sql = "SELECT count(*) FROM deliveries WHERE id = ANY($1) AND updated_at < $2";
        until_none_left(limit, "taken up", ids.len(), || sqlx::query_as(sql).bind(&list).bind(since_ms).fetch_one(&self.pool)).await
    }

    /// Wait until all of `ids` are final; returns how long it took.
    pub async fn settle_ids(&self, ids: &BTreeSet<i64>, limit: Duration) -> Duration {
        let list: Vec<i64> = ids.iter().copied().collect();
        let sql = "SELECT count(*) FROM deliveries WHERE id = ANY($1) AND status IN ('queued', 'sending')";
        until_none_left(limit, "final", ids.len(), || sqlx::query_as(sql).bind(&list).fetch_one(&self.pool)).await
    }

    /// Check the promises once everything has settled, and return what was counted.
    /// Nothing lost: `expected` deliveries exist and every one is final, a failed one with its
    /// reason; everything marked sent reached the sink, and the sink saw nothing else.
    /// Nothing duplicated beyond what cannot be known: every reference the sink saw twice is a
    /// delivery whose claim lost its outcome, or whose send timed out.
    pub async fn check_promises(&self, sms: &SmsGateway, expected: i64) -> Verdict {
        let statuses = self.statuses().await;
        let total: i64 = statuses.values().sum();
        assert_eq!(total, expected, "deliveries: {statuses:?}");
        for open in ["queued", "sending"] {
            assert_eq!(statuses.get(open).copied().unwrap_or(0), 0, "deliveries left {open}: {statuses:?}");
        }
        let reasonless = self.count("SELECT count(*) FROM deliveries WHERE status = 'failed' AND coalesce(error, '') = ''").await;
        assert_eq!(reasonless, 0, "failed deliveries without a reason");
        let sink = SinkLog::of(sms);
        let sent = self.ids("SELECT id FROM deliveries WHERE status IN ('sent', 'delivered') AND provider_id IS NOT NULL").await;
        let unseen: Vec<_> = sent.iter().filter(|id| !sink.seen.contains_key(id)).take(10).collect();
        assert!(unseen.is_empty(), "deliveries marked sent that the gateway never received, e.g. {unseen:?}");
        let all = self.ids("SELECT id FROM deliveries").await;
        let strays: Vec<_> = sink.seen.keys().filter(|id| !all.contains(id)).take(10).collect();
        assert!(strays.is_empty(), "the gateway received references that are no delivery: {strays:?}");
        let duplicates = sink.duplicates();
        let unrecorded = self.unrecorded_claims().await;
        let timeouts = self.timeouts().await;
        let unexplained: Vec<_> = duplicates.iter().filter(|id| !unrecorded.contains(id) && !timeouts.contains(id)).take(10).collect();
        assert!(
            unexplained.is_empty(),
            "{} references reached the gateway twice without a lost outcome or a timeout, e.g. {unexplained:?}",
            duplicates.len()
        );
        Verdict { statuses, at_sink: sink.requests, duplicates, unrecorded, timeouts }
    }
}

/// Poll `left` (a count of `of` deliveries) until it is 0, up to `limit`; returns the wait.
async fn until_none_left<F, Fut>(limit: Duration, what: &str, of: usize, mut left: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<(i64,)>>,
{
    let started = Instant::now();
    loop {
        let (n,) = left().await.expect("count deliveries");
        if n == 0 {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{n} of {of} deliveries not {what} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the checks counted.
#[derive(Debug)]
pub struct Verdict {
    pub statuses: BTreeMap<String, i64>,
    /// Requests the gateway received.
    pub at_sink: u64,
    /// References the gateway received more than once.
    pub duplicates: BTreeSet<i64>,
    /// Claims whose outcome was never written.
    pub unrecorded: BTreeSet<i64>,
    pub timeouts: BTreeSet<i64>,
}

impl Verdict {
    pub fn summary(&self) -> String {
        format!(
            "statuses {:?}; gateway requests {}; duplicates {} (allowed: {} unrecorded claims, {} timeouts)",
            self.statuses,
            self.at_sink,
            self.duplicates.len(),
            self.unrecorded.len(),
            self.timeouts.len()
        )
    }
}

/// The gateway's log: how often each reference arrived.
pub struct SinkLog {
    pub seen: HashMap<i64, u32>,
    pub requests: u64,
}

impl SinkLog {
    pub fn of(sms: &SmsGateway) -> SinkLog {
        let mut seen = HashMap::new();
        let requests = sms.requests();
        for r in &requests {
            let reference = r.json()["reference"].as_str().and_then(|s| s.parse::<i64>().ok()).expect("every SMS carries its delivery id");
            *seen.entry(reference).or_insert(0) += 1;
        }
        SinkLog { seen, requests: requests.len() as u64 }
    }

    pub fn duplicates(&self) -> BTreeSet<i64> {
        self.seen.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect()
    }
}
