//! Notice and delivery queries, written once in SQL both dialects accept and generated for
//! each store by `notice_queries!` (see `residents.rs` for the placeholder rule). The bulk
//! paths (fan-out `INSERT … SELECT`, outcome updates from a `VALUES` list) are the hot ones.

use async_trait::async_trait;

use super::{StoreResult, notices_types::*};

#[async_trait]
pub trait Notices: Send + Sync {
    /// Insert a draft, and its `notices.create` audit entry, in one transaction. With an
    /// idempotency key the author used before, nothing is inserted and that notice's id returns.
    async fn create_notice(&self, n: &NewNotice, now: i64) -> StoreResult<i64>;
    async fn notice(&self, id: i64) -> StoreResult<Option<NoticeRow>>;
    async fn notices(&self, limit: i64) -> StoreResult<Vec<NoticeRow>>;
    /// Apply `t` if the notice is in one of `t.from`; None when it is not (or unknown).
    async fn transition(&self, id: i64, t: &Transition, now: i64) -> StoreResult<Option<NoticeRow>>;
    /// Milliseconds since the epoch by the database's clock: the one clock every process
    /// agrees on, which decides when a scheduled notice is due.
    async fn database_now_ms(&self) -> StoreResult<i64>;
    /// Publish a scheduled notice if its `send_at` has come by the database's clock.
    async fn publish_if_due(&self, id: i64) -> StoreResult<ScheduledPublish>;
    /// Insert one channel's deliveries of a fan-out (existing ones are left alone). `None`: the
    /// notice has been cancelled, and nothing was inserted.
    async fn fan_out_channel(&self, plan: &FanoutPlan, now: i64) -> StoreResult<Option<InsertedRange>>;
    /// The lowest and highest subscriber id, (1, 0) when there are none: the fan-out's chunks.
    async fn subscriber_id_span(&self) -> StoreResult<(i64, i64)>;
    /// The distinct quiet hours residents chose, as (from, to).
    async fn quiet_hours_in_use(&self) -> StoreResult<Vec<(String, String)>>;
    /// Hold the queued deliveries of residents with these quiet hours until `not_before`.
    async fn hold_for_quiet_hours(&self, notice_id: i64, quiet: &(String, String), not_before: i64) -> StoreResult<u64>;
    async fn finish_fan_out(&self, notice_id: i64, recipients: i64, now: i64) -> StoreResult<()>;
    /// Take the sendable deliveries of a range: queued and due, or sending with a lapsed lease.
    async fn claim_deliveries(&self, range: DeliveryRange<'_>, now: i64, lease_until: i64) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Hand back claims that were never sent, (delivery id, attempt): queued again, the attempt
    /// not counted. A claim someone else has taken since is left alone.
    async fn release_claims(&self, claims: &[(i64, i32)], now: i64) -> StoreResult<u64>;
    async fn delivery_targets(&self, contact_ids: &[i64]) -> StoreResult<Vec<DeliveryTarget>>;
    /// Record attempts and move their deliveries forward, in one transaction.
    async fn record_attempts(&self, attempts: &[Attempt], worker_id: &str, now: i64) -> StoreResult<()>;
    /// End every delivery of a range still waiting, as `expired` or `cancelled`.
    async fn close_range(&self, range: DeliveryRange<'_>, status: &str, reason: &str, now: i64) -> StoreResult<u64>;
    /// The earliest time a delivery of the range held by a worker may be taken up again (in
    /// the past when a lease has lapsed), or None when none is held.
    async fn range_busy_until(&self, range: DeliveryRange<'_>) -> StoreResult<Option<i64>>;
    /// Deliveries of published notices in `lane` left waiting since before `stale_before`,
    /// grouped into ranges of at most `batch` ids: (notice, channel, first, last).
    async fn stale_ranges(&self, lane: &str, stale_before: i64, now: i64, batch: i64) -> StoreResult<Vec<(i64, String, i64, i64)>>;
    /// Published notices whose fan-out never finished, started before `before`.
    async fn unfinished_fan_outs(&self, before: i64) -> StoreResult<Vec<(i64, String)>>;
    /// A provider's report: move the delivery to `delivered` or `failed` if it is not final yet.
    async fn apply_receipt(&self, delivery_id: Option<i64>, provider_id: Option<&str>, status: &str, detail: Option<&str>, now: i64) -> StoreResult<bool>;
    /// (channel, status, count) for a notice.
    async fn notice_progress(&self, notice_id: i64) -> StoreResult<Vec<(String, String, i64)>>;
    async fn delivery_events(&self, delivery_id: i64) -> StoreResult<Vec<DeliveryEvent>>;
    /// The delivery of a notice to a subscriber's contact on a channel: (id, status, provider id).
    async fn delivery_of(&self, notice_id: i64, channel: &str, address: &str) -> StoreResult<Option<(i64, String, Option<String>)>>;
    /// Reserve an Idempotency-Key. None: it is ours to answer; Some: an earlier request's.
    async fn idempotency_begin(&self, official_id: i64, key: &str, route: &str, now: i64) -> StoreResult<Option<IdempotentAnswer>>;
    async fn idempotency_finish(&self, official_id: i64, key: &str, route: &str, status: i32, body: &str) -> StoreResult<()>;
    /// Forget a reservation whose request failed, so that a retry can run.
    async fn idempotency_abandon(&self, official_id: i64, key: &str, route: &str) -> StoreResult<()>;
    async fn create_template(&self, name: &str, spec: &str, author_id: i64, now: i64) -> StoreResult<i64>;
    /// The second official's approval; false when already approved or by its own author.
    async fn approve_template(&self, id: i64, approver_id: i64, now: i64) -> StoreResult<bool>;
    async fn template(&self, id: i64) -> StoreResult<Option<TemplateRow>>;
    async fn templates(&self) -> StoreResult<Vec<TemplateRow>>;
    /// Add a resident (found by a contact's address) to the test audience or remove them.
    async fn set_tester(&self, channel: &str, address: &str, tester: bool) -> StoreResult<bool>;
}

/// The lowest and highest subscriber id, as two subqueries: SQLite reads one end of the primary
/// key for a lone min() or max(), but scans the whole table for both in one SELECT (60 ms at 1M
/// residents, before every emergency's first chunk: a debug trace of `hejnal bench broadcast`).
pub(super) const SUBSCRIBER_ID_SPAN: &str = "SELECT (SELECT min(id) FROM subscribers), (SELECT max(id) FROM subscribers)";

pub(super) const NOTICE_COLUMNS: &str = "id, kind, msg_type, status, severity, references_id, root_id, spec, state, lane, send_at, \
    expires_at, author_id, approver_id, approval, template_id, reject_reason, recipients, created_at, submitted_at, \
    approved_at, published_at, fanout_done_at, cancelled_at";

/// Write an audit entry on the transaction `tx` (either dialect), with the change it records.
macro_rules! insert_audit {
    ($tx:ident, $entry:expr, $now:expr) => {
        sqlx::query("INSERT INTO audit_log (official_id, action, subject, reached, at) VALUES ($1, $2, $3, 0, $4)")
            .bind($entry.official_id).bind($entry.action).bind(&$entry.subject).bind($now)
            .execute(&mut *$tx).await?
    };
}

pub(crate) use insert_audit;

macro_rules! notice_queries {
    ($store:ty, $db:ty, $backlog_insert:path, $db_now:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::notices::Notices for $store {
            async fn database_now_ms(&self) -> StoreResult<i64> {
                let (now,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {}", $db_now))).fetch_one(&self.pool).await?;
                Ok(now)
            }

            async fn publish_if_due(&self, id: i64) -> StoreResult<ScheduledPublish> {
                // The comparison and the stamp both use the database's clock, in one statement,
                // so no process's clock can make a notice go early.
                let publish = format!(
                    "UPDATE notices SET state = 'published', published_at = {now}
                     WHERE id = $1 AND state = 'scheduled' AND (send_at IS NULL OR send_at <= {now})
                     RETURNING {columns}",
                    now = $db_now, columns = $crate::store::notices::NOTICE_COLUMNS);
                let row: Option<NoticeRow> = sqlx::query_as(sqlx::AssertSqlSafe(publish)).bind(id).fetch_optional(self.writes()).await?;
                if let Some(row) = row {
                    return Ok(ScheduledPublish::Published(row));
                }
                let left = format!("SELECT send_at - {} FROM notices WHERE id = $1 AND state = 'scheduled'", $db_now);
                let left: Option<(Option<i64>,)> = sqlx::query_as(sqlx::AssertSqlSafe(left)).bind(id).fetch_optional(&self.pool).await?;
                Ok(match left {
                    // Still scheduled: not due yet (or it became due just now; a wait of 0 retries).
                    Some((left,)) => ScheduledPublish::NotYet(left.unwrap_or(0).max(0)),
                    None => ScheduledPublish::NotScheduled,
                })
            }

            async fn create_notice(&self, n: &NewNotice, now: i64) -> StoreResult<i64> {
                let mut tx = self.begin_write().await?;
                let inserted: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO notices (kind, msg_type, status, severity, references_id, root_id, spec, state, lane, send_at,
                                          expires_at, author_id, template_id, idempotency_key, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', $8, $9, $10, $11, $12, $13, $14)
                     ON CONFLICT (author_id, idempotency_key) DO NOTHING RETURNING id",
                )
                .bind(&n.kind).bind(&n.msg_type).bind(&n.status).bind(&n.severity).bind(n.references_id).bind(n.root_id)
                .bind(&n.spec).bind(&n.lane).bind(n.send_at).bind(n.expires_at).bind(n.author_id).bind(n.template_id)
                .bind(&n.idempotency_key).bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let id = match inserted {
                    Some((id,)) => {
                        let entry = AuditEntry { official_id: n.author_id, action: "notices.create", subject: format!("notice {id}") };
                        $crate::store::notices::insert_audit!(tx, entry, now);
                        id
                    }
                    None => {
                        let (id,): (i64,) = sqlx::query_as("SELECT id FROM notices WHERE author_id = $1 AND idempotency_key = $2")
                            .bind(n.author_id).bind(&n.idempotency_key)
                            .fetch_one(&mut *tx).await?;
                        id
                    }
                };
                tx.commit().await?;
                Ok(id)
            }

            async fn notice(&self, id: i64) -> StoreResult<Option<NoticeRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::notices::NOTICE_COLUMNS).push(" FROM notices WHERE id = ").push_bind(id);
                Ok(b.build_query_as().fetch_optional(&self.pool).await?)
            }

            async fn notices(&self, limit: i64) -> StoreResult<Vec<NoticeRow>> {
                let mut b = sqlx::QueryBuilder::<$db>::new("SELECT ");
                b.push($crate::store::notices::NOTICE_COLUMNS).push(" FROM notices ORDER BY id DESC LIMIT ").push_bind(limit);
                Ok(b.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn transition(&self, id: i64, t: &Transition, now: i64) -> StoreResult<Option<NoticeRow>> {
                let mut tx = self.begin_write().await?;
                let mut b = sqlx::QueryBuilder::<$db>::new("UPDATE notices SET state = ");
                b.push_bind(t.to);
                for column in t.stamps {
                    b.push(", ").push(*column).push(" = ").push_bind(now);
                }
                if let Some(a) = t.approver_id {
                    b.push(", approver_id = ").push_bind(a);
                }
                if let Some(a) = &t.approval {
                    b.push(", approval = ").push_bind(a.clone());
                }
                if let Some(r) = &t.reject_reason {
                    b.push(", reject_reason = ").push_bind(r.clone());
                }
                b.push(" WHERE id = ").push_bind(id).push(" AND state IN ");
                b.push_tuples(t.from.iter(), |mut s, state| { s.push_bind(*state); });
                b.push(" RETURNING ").push($crate::store::notices::NOTICE_COLUMNS);
                let row: Option<NoticeRow> = b.build_query_as().fetch_optional(&mut *tx).await?;
                if row.is_none() {
                    return Ok(None);
                }
                if t.cancel_deliveries {
                    sqlx::query("UPDATE deliveries SET status = 'cancelled', error = 'notice cancelled', updated_at = $1
                                 WHERE notice_id = $2 AND (status = 'queued' OR (status = 'sending' AND lease_until < $3))")
                        .bind(now).bind(id).bind(now)
                        .execute(&mut *tx).await?;
                }
                if let Some(entry) = &t.audit {
                    $crate::store::notices::insert_audit!(tx, entry, now);
                }
                if !t.jobs.is_empty() {
                    $backlog_insert(&mut *tx, &t.jobs).await.map_err($crate::store::common::backlog_error)?;
                }
                tx.commit().await?;
                Ok(row)
            }

            async fn fan_out_channel(&self, plan: &FanoutPlan, now: i64) -> StoreResult<Option<InsertedRange>> {
                let mut tx = self.begin_write().await?;
                // Read in the chunk's own transaction (on PostgreSQL under a share lock, which the
                // cancel's update of the notice waits for): no row lands after a cancel has closed
                // the notice's queued deliveries, and a cancelled fan-out stops at its next chunk.
                let lock = if <$db as sqlx::Database>::NAME == "PostgreSQL" { " FOR SHARE" } else { "" };
                let state: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT state FROM notices WHERE id = $1{lock}")))
                    .bind(plan.notice_id)
                    .fetch_optional(&mut *tx).await?;
                if state.as_deref() == Some("cancelled") {
                    return Ok(None);
                }
                let (from, to) = plan.subscribers;
                // A chunk commits whole, so rows already in its range mean an earlier run of this
                // fan-out got that far. Only then does the insert check each row for a conflict:
                // on PostgreSQL that check (a speculative insertion) doubles the insert's cost.
                // Two runs racing over a fresh chunk: the later fails on the unique key and retries.
                let earlier: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM deliveries WHERE notice_id = $1 AND subscriber_id BETWEEN $2 AND $3 AND channel = $4 LIMIT 1")
                    .bind(plan.notice_id).bind(from).bind(to).bind(&plan.channel)
                    .fetch_optional(&mut *tx).await?;
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO deliveries (notice_id, subscriber_id, contact_id, channel, language, status, updated_at) SELECT ");
                b.push_bind(plan.notice_id).push(", s.id, c.id, c.channel, s.language, 'queued', ").push_bind(now);
                match plan.follows {
                    // Whoever received the original on this channel, if still subscribed.
                    Some(original) => {
                        b.push(" FROM deliveries o JOIN subscribers s ON s.id = o.subscriber_id
                                 JOIN contacts c ON c.id = o.contact_id AND c.status = 'verified'
                                 WHERE o.notice_id = ").push_bind(original)
                            .push(" AND o.channel = ").push_bind(plan.channel.clone())
                            .push(" AND o.status IN ('sending', 'sent', 'delivered') AND s.erased_at IS NULL");
                    }
                    None => {
                        b.push(" FROM subscribers s JOIN contacts c ON c.subscriber_id = s.id AND c.channel = ")
                            .push_bind(plan.channel.clone())
                            .push(" AND c.status = 'verified' WHERE s.erased_at IS NULL AND s.district_mask & ")
                            .push_bind(plan.district_any).push(" <> 0");
                        if plan.interest_any != 0 {
                            b.push(" AND s.interest_mask & ").push_bind(plan.interest_any).push(" <> 0");
                        }
                        if plan.testers_only {
                            b.push(" AND s.tester");
                        }
                    }
                }
                // The same range on the joined table's key too: PostgreSQL does not carry a range
                // across a join, and without it read all of `contacts` for every chunk.
                let joined = if plan.follows.is_some() { "o" } else { "c" };
                b.push(" AND s.id BETWEEN ").push_bind(from).push(" AND ").push_bind(to);
                b.push(format_args!(" AND {joined}.subscriber_id BETWEEN ")).push_bind(from).push(" AND ").push_bind(to);
                b.push(" ORDER BY s.id");
                if earlier.is_some() {
                    b.push(" ON CONFLICT DO NOTHING");
                }
                b.build().execute(&mut *tx).await?;
                let (first, last, count): (Option<i64>, Option<i64>, i64) =
                    sqlx::query_as("SELECT min(id), max(id), count(*) FROM deliveries
                                    WHERE notice_id = $1 AND subscriber_id BETWEEN $2 AND $3 AND channel = $4")
                        .bind(plan.notice_id).bind(from).bind(to).bind(&plan.channel)
                        .fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(InsertedRange { first: first.unwrap_or(0), last: last.unwrap_or(-1), count }))
            }

            async fn subscriber_id_span(&self) -> StoreResult<(i64, i64)> {
                let (low, high): (Option<i64>, Option<i64>) = sqlx::query_as($crate::store::notices::SUBSCRIBER_ID_SPAN)
                    .fetch_one(&self.pool).await?;
                Ok((low.unwrap_or(1), high.unwrap_or(0)))
            }

            async fn quiet_hours_in_use(&self) -> StoreResult<Vec<(String, String)>> {
                Ok(sqlx::query_as("SELECT DISTINCT quiet_from, quiet_to FROM subscribers
                                   WHERE quiet_from IS NOT NULL AND quiet_to IS NOT NULL AND erased_at IS NULL")
                    .fetch_all(&self.pool).await?)
            }

            async fn hold_for_quiet_hours(&self, notice_id: i64, quiet: &(String, String), not_before: i64) -> StoreResult<u64> {
                let done = sqlx::query(
                    "UPDATE deliveries SET not_before = $1 WHERE notice_id = $2 AND status = 'queued' AND subscriber_id IN
                     (SELECT id FROM subscribers WHERE quiet_from = $3 AND quiet_to = $4)")
                    .bind(not_before).bind(notice_id).bind(&quiet.0).bind(&quiet.1)
                    .execute(self.writes()).await?;
                Ok(done.rows_affected())
            }

            async fn finish_fan_out(&self, notice_id: i64, recipients: i64, now: i64) -> StoreResult<()> {
                sqlx::query("UPDATE notices SET recipients = $1, fanout_done_at = $2 WHERE id = $3")
                    .bind(recipients).bind(now).bind(notice_id)
                    .execute(self.writes()).await?;
                Ok(())
            }

            // `+notice_id` in the range queries keeps the planner on the id (primary key) range:
            // by the unique key's `notice_id` SQLite walked every delivery of the notice, so each
            // claim of a 1M campaign read a million index entries (the drain ran at 300/s).
            async fn claim_deliveries(&self, r: DeliveryRange<'_>, now: i64, lease_until: i64) -> StoreResult<Vec<ClaimedDelivery>> {
                Ok(sqlx::query_as(
                    "UPDATE deliveries SET status = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2
                     WHERE +notice_id = $3 AND channel = $4 AND id BETWEEN $5 AND $6
                       AND (status = 'queued' OR (status = 'sending' AND lease_until <= $2))
                       AND (not_before IS NULL OR not_before <= $2)
                     RETURNING id, subscriber_id, contact_id, language, attempts")
                    .bind(lease_until).bind(now).bind(r.notice_id).bind(r.channel).bind(r.first).bind(r.last)
                    .fetch_all(self.writes()).await?)
            }

            async fn release_claims(&self, claims: &[(i64, i32)], now: i64) -> StoreResult<u64> {
                if claims.is_empty() {
                    return Ok(0);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE deliveries SET status = 'queued', lease_until = NULL, attempts = deliveries.attempts - 1, updated_at = ");
                b.push_bind(now).push(" FROM (");
                b.push_values(claims, |mut row, (id, attempt)| {
                    row.push_bind(*id).push_bind(*attempt);
                });
                b.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.attempts = v.column2 AND deliveries.status = 'sending'");
                Ok(b.build().execute(self.writes()).await?.rows_affected())
            }

            async fn delivery_targets(&self, contact_ids: &[i64]) -> StoreResult<Vec<DeliveryTarget>> {
                if contact_ids.is_empty() {
                    return Ok(vec![]);
                }
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "SELECT c.id AS contact_id, s.public_id, c.address, c.push_p256dh, c.push_auth, c.status
                     FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id WHERE s.erased_at IS NULL AND c.id IN ");
                b.push_tuples(contact_ids, |mut t, id| { t.push_bind(*id); });
                Ok(b.build_query_as().fetch_all(&self.pool).await?)
            }

            async fn record_attempts(&self, attempts: &[Attempt], worker_id: &str, now: i64) -> StoreResult<()> {
                if attempts.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                // A receipt may already have moved a delivery past `sending`; then only the
                // provider id is kept, and the receipt's status and error stand (a failed
                // report's reason was wiped by the send's empty error, found by the fault suite).
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE deliveries SET status = CASE WHEN deliveries.status = 'sending' THEN v.column2 ELSE deliveries.status END,
                        provider_id = COALESCE(deliveries.provider_id, v.column3),
                        error = CASE WHEN deliveries.status = 'sending' THEN v.column4 ELSE deliveries.error END,
                        lease_until = CASE WHEN deliveries.status = 'sending' THEN v.column5 ELSE deliveries.lease_until END, updated_at = ");
                b.push_bind(now).push(" FROM (");
                b.push_values(attempts, |mut row, a| {
                    let (status, provider, error, lease) = $crate::store::notices::outcome_columns(&a.outcome);
                    row.push_bind(a.delivery_id).push_bind(status).push_bind(provider).push_bind(error).push_bind(lease);
                });
                b.push(") AS v WHERE deliveries.id = v.column1");
                b.build().execute(&mut *tx).await?;
                // One event per provider try: the failed-over ones first, then the outcome.
                let mut events: Vec<(i64, i32, &str, Option<String>, Option<&str>, bool)> = Vec::with_capacity(attempts.len());
                for a in attempts {
                    for t in &a.failed_over {
                        events.push((a.delivery_id, a.attempt, "failover", Some(t.error.clone()), Some(&t.provider), t.maybe_sent));
                    }
                    let (status, provider, error, _) = $crate::store::notices::outcome_columns(&a.outcome);
                    let outcome = if matches!(a.outcome, AttemptOutcome::Retry { .. }) { "retry" } else { status };
                    events.push((a.delivery_id, a.attempt, outcome, provider.or(error), a.provider.as_deref(), a.maybe_sent));
                }
                let mut e = sqlx::QueryBuilder::<$db>::new("INSERT INTO delivery_events (delivery_id, attempt, outcome, detail, worker_id, at, provider, maybe_sent) ");
                e.push_values(events, |mut row, (delivery_id, attempt, outcome, detail, provider, maybe_sent)| {
                    row.push_bind(delivery_id).push_bind(attempt).push_bind(outcome.to_owned()).push_bind(detail)
                        .push_bind(worker_id.to_owned()).push_bind(now).push_bind(provider.map(str::to_owned)).push_bind(maybe_sent);
                });
                e.build().execute(&mut *tx).await?;
                let gone: Vec<i64> = attempts.iter().filter_map(|a| match a.outcome { AttemptOutcome::Gone { contact_id, .. } => Some(contact_id), _ => None }).collect();
                if !gone.is_empty() {
                    let mut g = sqlx::QueryBuilder::<$db>::new("UPDATE contacts SET status = 'gone' WHERE id IN ");
                    g.push_tuples(&gone, |mut t, id| { t.push_bind(*id); });
                    g.build().execute(&mut *tx).await?;
                    let mut m = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE subscribers SET verified_mask = verified_mask & ~4 WHERE id IN (SELECT subscriber_id FROM contacts WHERE id IN ");
                    m.push_tuples(&gone, |mut t, id| { t.push_bind(*id); });
                    m.push(")");
                    m.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn close_range(&self, r: DeliveryRange<'_>, status: &str, reason: &str, now: i64) -> StoreResult<u64> {
                let done = sqlx::query(
                    "UPDATE deliveries SET status = $1, error = $2, updated_at = $3
                     WHERE +notice_id = $4 AND channel = $5 AND id BETWEEN $6 AND $7
                       AND (status = 'queued' OR (status = 'sending' AND lease_until <= $3))")
                    .bind(status).bind(reason).bind(now).bind(r.notice_id).bind(r.channel).bind(r.first).bind(r.last)
                    .execute(self.writes()).await?;
                Ok(done.rows_affected())
            }

            async fn range_busy_until(&self, r: DeliveryRange<'_>) -> StoreResult<Option<i64>> {
                let (until,): (Option<i64>,) = sqlx::query_as(
                    "SELECT min(lease_until) FROM deliveries WHERE +notice_id = $1 AND channel = $2 AND id BETWEEN $3 AND $4
                       AND status = 'sending'")
                    .bind(r.notice_id).bind(r.channel).bind(r.first).bind(r.last)
                    .fetch_one(&self.pool).await?;
                Ok(until)
            }

            async fn stale_ranges(&self, lane: &str, stale_before: i64, now: i64, batch: i64) -> StoreResult<Vec<(i64, String, i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT d.notice_id, d.channel, min(d.id), max(d.id) FROM deliveries d JOIN notices n ON n.id = d.notice_id
                     WHERE n.state = 'published' AND n.lane = $1 AND n.fanout_done_at IS NOT NULL
                       AND ((d.status = 'queued' AND d.updated_at < $2 AND (d.not_before IS NULL OR d.not_before <= $3))
                         OR (d.status = 'sending' AND d.lease_until < $2))
                     GROUP BY d.notice_id, d.channel, d.id / $4 LIMIT 1000")
                    .bind(lane).bind(stale_before).bind(now).bind(batch)
                    .fetch_all(&self.pool).await?)
            }

            async fn unfinished_fan_outs(&self, before: i64) -> StoreResult<Vec<(i64, String)>> {
                Ok(sqlx::query_as("SELECT id, lane FROM notices WHERE state = 'published' AND fanout_done_at IS NULL AND published_at < $1")
                    .bind(before).fetch_all(&self.pool).await?)
            }

            async fn apply_receipt(&self, delivery_id: Option<i64>, provider_id: Option<&str>, status: &str, detail: Option<&str>, now: i64) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let found: Option<(i64, i32)> = match (delivery_id, provider_id) {
                    (Some(id), _) => sqlx::query_as("SELECT id, attempts FROM deliveries WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?,
                    (None, Some(p)) => sqlx::query_as("SELECT id, attempts FROM deliveries WHERE provider_id = $1").bind(p).fetch_optional(&mut *tx).await?,
                    (None, None) => None,
                };
                let Some((id, attempt)) = found else { return Ok(false) };
                // Forward only: a late or repeated receipt changes nothing that is final.
                let done = sqlx::query("UPDATE deliveries SET status = $1, error = $2, updated_at = $3, lease_until = NULL
                                        WHERE id = $4 AND status IN ('queued', 'sending', 'sent')")
                    .bind(status).bind(detail).bind(now).bind(id)
                    .execute(&mut *tx).await?;
                sqlx::query("INSERT INTO delivery_events (delivery_id, attempt, outcome, detail, worker_id, at) VALUES ($1, $2, $3, $4, NULL, $5)")
                    .bind(id).bind(attempt).bind(format!("receipt:{status}")).bind(detail).bind(now)
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn notice_progress(&self, notice_id: i64) -> StoreResult<Vec<(String, String, i64)>> {
                Ok(sqlx::query_as("SELECT channel, status, count(*) FROM deliveries WHERE notice_id = $1 GROUP BY channel, status")
                    .bind(notice_id).fetch_all(&self.pool).await?)
            }

            async fn delivery_events(&self, delivery_id: i64) -> StoreResult<Vec<DeliveryEvent>> {
                Ok(sqlx::query_as("SELECT attempt, outcome, detail, worker_id, at, provider, maybe_sent FROM delivery_events WHERE delivery_id = $1 ORDER BY id")
                    .bind(delivery_id).fetch_all(&self.pool).await?)
            }

            async fn delivery_of(&self, notice_id: i64, channel: &str, address: &str) -> StoreResult<Option<(i64, String, Option<String>)>> {
                Ok(sqlx::query_as(
                    "SELECT d.id, d.status, d.provider_id FROM deliveries d JOIN contacts c ON c.id = d.contact_id
                     WHERE d.notice_id = $1 AND d.channel = $2 AND c.address = $3")
                    .bind(notice_id).bind(channel).bind(address)
                    .fetch_optional(&self.pool).await?)
            }

            async fn idempotency_begin(&self, official_id: i64, key: &str, route: &str, now: i64) -> StoreResult<Option<IdempotentAnswer>> {
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (official_id, key, route, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                    .bind(official_id).bind(key).bind(route).bind(now)
                    .execute(&self.pool).await?;
                if inserted.rows_affected() == 1 {
                    return Ok(None);
                }
                let (status, body): (Option<i32>, Option<String>) =
                    sqlx::query_as("SELECT status, body FROM idempotency_keys WHERE official_id = $1 AND key = $2 AND route = $3")
                        .bind(official_id).bind(key).bind(route)
                        .fetch_one(&self.pool).await?;
                Ok(Some(IdempotentAnswer { status, body }))
            }

            async fn idempotency_finish(&self, official_id: i64, key: &str, route: &str, status: i32, body: &str) -> StoreResult<()> {
                sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE official_id = $3 AND key = $4 AND route = $5")
                    .bind(status).bind(body).bind(official_id).bind(key).bind(route)
                    .execute(&self.pool).await?;
                Ok(())
            }

            async fn idempotency_abandon(&self, official_id: i64, key: &str, route: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM idempotency_keys WHERE official_id = $1 AND key = $2 AND route = $3 AND status IS NULL")
                    .bind(official_id).bind(key).bind(route)
                    .execute(&self.pool).await?;
                Ok(())
            }

            async fn create_template(&self, name: &str, spec: &str, author_id: i64, now: i64) -> StoreResult<i64> {
                let (id,): (i64,) = sqlx::query_as("INSERT INTO notice_templates (name, spec, author_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
                    .bind(name).bind(spec).bind(author_id).bind(now)
                    .fetch_one(&self.pool).await?;
                Ok(id)
            }

            async fn approve_template(&self, id: i64, approver_id: i64, now: i64) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE notice_templates SET approver_id = $1, approved_at = $2
                                        WHERE id = $3 AND approver_id IS NULL AND author_id <> $1")
                    .bind(approver_id).bind(now).bind(id)
                    .execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn template(&self, id: i64) -> StoreResult<Option<TemplateRow>> {
                Ok(sqlx::query_as("SELECT id, name, spec, author_id, approver_id, created_at, approved_at FROM notice_templates WHERE id = $1")
                    .bind(id).fetch_optional(&self.pool).await?)
            }

            async fn templates(&self) -> StoreResult<Vec<TemplateRow>> {
                Ok(sqlx::query_as("SELECT id, name, spec, author_id, approver_id, created_at, approved_at FROM notice_templates ORDER BY id")
                    .fetch_all(&self.pool).await?)
            }

            async fn set_tester(&self, channel: &str, address: &str, tester: bool) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE subscribers SET tester = $1 WHERE id IN (SELECT subscriber_id FROM contacts WHERE channel = $2 AND address = $3)")
                    .bind(tester).bind(channel).bind(address)
                    .execute(&self.pool).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use notice_queries;

/// The columns an outcome writes: (status, provider id, error, lease until).
pub(crate) fn outcome_columns(o: &AttemptOutcome) -> (&'static str, Option<String>, Option<String>, Option<i64>) {
    match o {
        AttemptOutcome::Sent { provider_id } => ("sent", Some(provider_id.clone()), None, None),
        AttemptOutcome::Retry { at, reason } => ("sending", None, Some(reason.clone()), Some(*at)),
        AttemptOutcome::Failed { reason } | AttemptOutcome::Gone { reason, .. } => ("failed", None, Some(reason.clone()), None),
        AttemptOutcome::Cancelled { reason } => ("cancelled", None, Some(reason.clone()), None),
        AttemptOutcome::Expired => ("expired", None, Some("expired before it could be sent".into()), None),
    }
}
