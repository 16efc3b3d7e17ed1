//! Synthetic residents by bulk SQL, for the benches: spread evenly over the 18 districts, the
//! 11 interests and the three languages, each with a verified email, and (as the plan says)
//! a verified phone and a verified push subscription. Rows are marked `bench-` in `public_id`.

use sqlx::Connection;

use crate::channels::PushTarget;

/// Who gets which contacts.
pub struct SeedPlan<'a> {
    pub subscribers: i64,
    /// Every resident whose id is a multiple of this has a phone (1: everyone, 2: half).
    pub phone_every: i64,
    /// Push subscriptions to spread over the residents, each resident with an endpoint of its
    /// own below one of these (`{endpoint}/{id}`) and that one's keys; none: no push contacts.
    pub push: &'a [PushTarget],
}

/// `{N}` is the count, `{PHONE}` the phone divisor, `{PUSH}` the push bit (4 or 0): our own
/// integers, spliced in; there is no input to inject.
const SUBSCRIBERS_POSTGRES: &str = "INSERT INTO subscribers (public_id, language, created_at, updated_at)
     SELECT 'bench-' || g, CASE g % 3 WHEN 0 THEN 'pl' WHEN 1 THEN 'en' ELSE 'uk' END, 0, 0 FROM generate_series(1, {N}) g";

const SUBSCRIBERS_SQLITE: &str = "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {N})
     INSERT INTO subscribers (public_id, language, created_at, updated_at)
     SELECT 'bench-' || n, CASE n % 3 WHEN 0 THEN 'pl' WHEN 1 THEN 'en' ELSE 'uk' END, 0, 0 FROM g";

const CHOICES_AND_CONTACTS: &[&str] = &[
    "INSERT INTO subscriber_districts (subscriber_id, district)
     SELECT s.id, d.slug FROM subscribers s JOIN districts d ON d.position = 1 + s.id % 18 WHERE s.public_id LIKE 'bench-%'",
    "INSERT INTO subscriber_interests (subscriber_id, interest)
     SELECT s.id, i.slug FROM subscribers s JOIN interests i ON i.position = 1 + s.id % 11 WHERE s.public_id LIKE 'bench-%'",
    "INSERT INTO contacts (subscriber_id, channel, address, status, verified_at, created_at)
     SELECT id, 'email', 'bench' || id || '@example.com', 'verified', 0, 0 FROM subscribers WHERE public_id LIKE 'bench-%'",
    "INSERT INTO contacts (subscriber_id, channel, address, status, verified_at, created_at)
     SELECT id, 'sms', '+4860' || (1000000 + id), 'verified', 0, 0 FROM subscribers WHERE public_id LIKE 'bench-%' AND id % {PHONE} = 0",
];

/// The masks the service keeps in step on every write, set here in one pass.
const MASKS: &str = "UPDATE subscribers SET district_mask = CAST(1 AS BIGINT) << CAST(id % 18 AS INTEGER),
                            interest_mask = CAST(1 AS BIGINT) << CAST(id % 11 AS INTEGER),
                            verified_mask = 1 + CASE WHEN id % {PHONE} = 0 THEN 2 ELSE 0 END + {PUSH}
     WHERE public_id LIKE 'bench-%'";

/// One subscription's share of the residents; the endpoint and keys are bound, not spliced.
const PUSH_CONTACTS: &str = "INSERT INTO contacts (subscriber_id, channel, address, push_p256dh, push_auth, status, verified_at, created_at)
     SELECT id, 'push', CAST($1 AS TEXT) || '/' || CAST(id AS TEXT), $2, $3, 'verified', 0, 0
     FROM subscribers WHERE public_id LIKE 'bench-%' AND id % $4 = $5";

/// The same statements on either connection type.
macro_rules! seed_on {
    ($conn:expr, $plan:expr, $subscribers:expr, $finish:expr) => {{
        let plan = $plan;
        let push_bit = if plan.push.is_empty() { "0" } else { "4" };
        let fill = |sql: &str| sql.replace("{N}", &plan.subscribers.to_string()).replace("{PHONE}", &plan.phone_every.to_string()).replace("{PUSH}", push_bit);
        for sql in std::iter::once($subscribers).chain(CHOICES_AND_CONTACTS.iter().copied()) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(fill(sql))).execute(&mut $conn).await?;
        }
        for (k, target) in plan.push.iter().enumerate() {
            sqlx::query(PUSH_CONTACTS)
                .bind(&target.endpoint)
                .bind(&target.p256dh)
                .bind(&target.auth)
                .bind(plan.push.len() as i64)
                .bind(k as i64)
                .execute(&mut $conn)
                .await?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(fill(MASKS))).execute(&mut $conn).await?;
        sqlx::raw_sql($finish).execute(&mut $conn).await?;
    }};
}

/// Seed into the (migrated) database at `url`.
pub async fn seed(url: &str, plan: &SeedPlan<'_>) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        seed_on!(conn, plan, SUBSCRIBERS_SQLITE, "ANALYZE");
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        // VACUUM sets the visibility map, so the estimate can scan the index alone (autovacuum
        // does this in service).
        seed_on!(conn, plan, SUBSCRIBERS_POSTGRES, "VACUUM ANALYZE");
    }
    Ok(())
}


/// Residents an earlier run seeded here.
pub(super) async fn count_seeded(url: &str) -> anyhow::Result<i64> {
    scalar(url, "SELECT count(*) FROM subscribers WHERE public_id LIKE 'bench-%'").await
}

/// One number from one query, on a connection of its own (the store hides its pool).
pub(super) async fn scalar(url: &str, sql: &'static str) -> anyhow::Result<i64> {
    let (n,): (i64,) = if url.starts_with("sqlite:") {
        sqlx::query_as(sql).fetch_one(&mut sqlx::SqliteConnection::connect(url).await?).await?
    } else {
        sqlx::query_as(sql).fetch_one(&mut sqlx::PgConnection::connect(url).await?).await?
    };
    Ok(n)
}
