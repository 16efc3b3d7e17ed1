//! Resident queries, written once in SQL both SQLite and PostgreSQL accept (`$N` placeholders,
//! first used in increasing order, since SQLite numbers named parameters by appearance) and
//! generated for each store by `resident_queries!`. Times are milliseconds since the epoch.

use async_trait::async_trait;

use super::{StoreResult, residents_types::*};

#[async_trait]
pub trait Residents: Send + Sync {
    /// The districts and interests among these that do not exist.
    async fn unknown_slugs(&self, districts: &[String], interests: &[String]) -> StoreResult<(Vec<String>, Vec<String>)>;
    /// Record a sign-up. Known addresses are left as they are (an anonymous sign-up may not
    /// change someone's choices); new ones join a new subscriber with the requested choices.
    async fn signup(&self, signup: &Signup, public_id: &str, now: i64) -> StoreResult<Vec<SignupContact>>;
    async fn contact_target(&self, contact_id: i64) -> StoreResult<Option<ContactTarget>>;
    /// Store the digest of a new link token or code; tries start again.
    async fn set_verify_secret(&self, contact_id: i64, hash: &str, expires_at: i64) -> StoreResult<()>;
    /// Check the limits and record the send in one step, so concurrent jobs cannot all pass
    /// a check that only one may pass. `None` when within limits (and now recorded);
    /// otherwise which limit was hit.
    async fn reserve_verification_send(&self, channel: &str, address_hash: &str, now: i64, limits: &SendLimits) -> StoreResult<Option<&'static str>>;
    /// Verify the email contact holding this link digest. Returns the subscriber's public id and language.
    async fn verify_email(&self, hash: &str, now: i64, consent_version: &str) -> StoreResult<Option<(String, String)>>;
    async fn verify_sms(&self, phone: &str, hash: &str, now: i64, consent_version: &str) -> StoreResult<CodeCheck>;
    async fn verify_push(&self, contact_id: i64, now: i64, consent_version: &str) -> StoreResult<()>;
    async fn mark_contact_gone(&self, contact_id: i64) -> StoreResult<()>;
    async fn preferences(&self, public_id: &str) -> StoreResult<SubscriberState>;
    async fn update_preferences(&self, public_id: &str, update: &PreferencesUpdate, now: i64, consent_version: &str) -> StoreResult<SubscriberState>;
    /// Unsubscribe one channel, or all when `channel` is `None`; consent withdrawals are kept,
    /// recorded with `method` (how the resident asked: `preferences_link`, `one_click`).
    async fn unsubscribe(&self, public_id: &str, channel: Option<&str>, method: &str, now: i64, consent_version: &str) -> StoreResult<SubscriberState>;
    /// Delete contacts and choices; the subscriber row stays as a tombstone. False if unknown or erased.
    async fn erase(&self, public_id: &str, now: i64) -> StoreResult<bool>;
    async fn consent_history(&self, public_id: &str) -> StoreResult<Vec<(String, String, String, String, i64)>>;
    /// Forget sign-ups never verified since `before`.
    async fn purge_unverified(&self, before: i64) -> StoreResult<u64>;
    /// The value of a server secret, created from `candidate` when absent.
    async fn secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
    async fn audit(&self, official_id: i64, action: &str, subject: &str, reached: i64, now: i64) -> StoreResult<()>;
    /// A reply keyword from a phone: STOP (`stop = true`) unsubscribes the number from SMS,
    /// START resubscribes a number that was verified and then stopped. False if nothing changed.
    async fn sms_keyword(&self, phone: &str, stop: bool, now: i64, consent_version: &str) -> StoreResult<bool>;
    /// Import residents whose consent the city already holds, all in one transaction: their
    /// contacts start verified, with consent recorded as `import`. Known addresses are skipped.
    /// Returns (imported subscribers, skipped contacts).
    async fn import(&self, rows: &[ImportRow], now: i64) -> StoreResult<(i64, i64)>;
    /// The latest audit entries, newest first: (official id, action, subject, reached).
    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<(Option<i64>, String, String, i64)>>;
    /// Count what an audience reaches (verified contacts only).
    async fn estimate(&self, q: &AudienceQuery) -> StoreResult<AudienceCounts>;
    /// The id of this contact if it awaits verification.
    async fn pending_contact(&self, channel: &str, address: &str) -> StoreResult<Option<i64>>;
    /// The public id of the subscriber holding this contact.
    async fn subscriber_by_contact(&self, channel: &str, address: &str) -> StoreResult<Option<String>>;
}

macro_rules! resident_queries {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::residents::Residents for $store {
            async fn unknown_slugs(&self, districts: &[String], interests: &[String]) -> StoreResult<(Vec<String>, Vec<String>)> {
                let known_d: Vec<(String,)> = sqlx::query_as("SELECT slug FROM districts").fetch_all(&self.pool).await?;
                let known_i: Vec<(String,)> = sqlx::query_as("SELECT slug FROM interests").fetch_all(&self.pool).await?;
                let missing = |asked: &[String], known: &[(String,)]| {
                    asked.iter().filter(|a| !known.iter().any(|(k,)| k == *a)).cloned().collect::<Vec<_>>()
                };
                Ok((missing(districts, &known_d), missing(interests, &known_i)))
            }

            async fn signup(&self, signup: &Signup, public_id: &str, now: i64) -> StoreResult<Vec<SignupContact>> {
                let mut tx = self.begin_write().await?;
                let mut out = Vec::new();
                let mut subscriber: Option<i64> = None;
                for c in &signup.contacts {
                    let known: Option<(i64, String)> = sqlx::query_as("SELECT id, status FROM contacts WHERE channel = $1 AND address = $2")
                        .bind(c.channel).bind(&c.address).fetch_optional(&mut *tx).await?;
                    if let Some((contact_id, status)) = known {
                        out.push(SignupContact { contact_id, channel: c.channel.into(), status, new: false });
                        continue;
                    }
                    let sid = match subscriber {
                        Some(id) => id,
                        None => {
                            let id = insert_subscriber(&mut tx, signup, public_id, now).await?;
                            subscriber = Some(id);
                            id
                        }
                    };
                    let (contact_id,): (i64,) = sqlx::query_as(
                        "INSERT INTO contacts (subscriber_id, channel, address, push_p256dh, push_auth, status, created_at)
                         VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id")
                        .bind(sid).bind(c.channel).bind(&c.address).bind(&c.p256dh).bind(&c.auth).bind(now)
                        .fetch_one(&mut *tx).await?;
                    out.push(SignupContact { contact_id, channel: c.channel.into(), status: "pending".into(), new: true });
                }
                tx.commit().await?;
                Ok(out)
            }

            async fn contact_target(&self, contact_id: i64) -> StoreResult<Option<ContactTarget>> {
                Ok(sqlx::query_as(
                    "SELECT c.id AS contact_id, s.id AS subscriber_id, s.public_id, c.channel, c.address, c.push_p256dh, c.push_auth, s.language, c.status
                     FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id WHERE c.id = $1")
                    .bind(contact_id).fetch_optional(&self.pool).await?)
            }

            async fn set_verify_secret(&self, contact_id: i64, hash: &str, expires_at: i64) -> StoreResult<()> {
                sqlx::query("UPDATE contacts SET verify_hash = $1, verify_expires_at = $2, verify_attempts = 0 WHERE id = $3")
                    .bind(hash).bind(expires_at).bind(contact_id).execute(&self.pool).await?;
                Ok(())
            }

            async fn reserve_verification_send(&self, channel: &str, address_hash: &str, now: i64, limits: &SendLimits) -> StoreResult<Option<&'static str>> {
                let mut tx = self.begin_write().await?;
                self.serialise_verification_sends(&mut tx).await?;
                let (recent,): (i64,) = sqlx::query_as("SELECT count(*) FROM verification_sends WHERE address_hash = $1 AND sent_at >= $2")
                    .bind(address_hash).bind(now - limits.min_gap_ms).fetch_one(&mut *tx).await?;
                let (today,): (i64,) = sqlx::query_as("SELECT count(*) FROM verification_sends WHERE address_hash = $1 AND sent_at >= $2")
                    .bind(address_hash).bind(now - limits.window_ms).fetch_one(&mut *tx).await?;
                if recent > 0 || today >= limits.per_address {
                    return Ok(Some("per_contact_limit"));
                }
                if let Some(budget) = limits.channel_budget {
                    let (used,): (i64,) = sqlx::query_as("SELECT count(*) FROM verification_sends WHERE channel = $1 AND sent_at >= $2")
                        .bind(channel).bind(now - limits.window_ms).fetch_one(&mut *tx).await?;
                    metrics::gauge!("hejnal_sms_verification_budget_used_ratio").set(used as f64 / budget.max(1) as f64);
                    if used * 10 >= budget * 9 {
                        tracing::warn!(used, budget, "daily SMS verification budget is nearly spent");
                    }
                    if used >= budget {
                        return Ok(Some("sms_daily_budget"));
                    }
                }
                sqlx::query("INSERT INTO verification_sends (channel, address_hash, sent_at) VALUES ($1, $2, $3)")
                    .bind(channel).bind(address_hash).bind(now).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(None)
            }

            async fn verify_email(&self, hash: &str, now: i64, consent_version: &str) -> StoreResult<Option<(String, String)>> {
                let mut tx = self.begin_write().await?;
                let row: Option<(i64, i64)> = sqlx::query_as(
                    "UPDATE contacts SET status = 'verified', verified_at = $1, verify_hash = NULL
                     WHERE verify_hash = $2 AND channel = 'email' AND status = 'pending' AND verify_expires_at > $1
                     RETURNING id, subscriber_id")
                    .bind(now).bind(hash).fetch_optional(&mut *tx).await?;
                let Some((_, sid)) = row else { return Ok(None) };
                record_consent(&mut tx, sid, "email", consent_version, "granted", "email_link", now).await?;
                let who: (String, String) = sqlx::query_as("SELECT public_id, language FROM subscribers WHERE id = $1")
                    .bind(sid).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(who))
            }

            async fn verify_sms(&self, phone: &str, hash: &str, now: i64, consent_version: &str) -> StoreResult<CodeCheck> {
                let mut tx = self.begin_write().await?;
                // Count the try first (a write, so SQLite takes its lock before reading).
                let row: Option<(i64, i64, Option<String>)> = sqlx::query_as(
                    "UPDATE contacts SET verify_attempts = verify_attempts + 1
                     WHERE channel = 'sms' AND address = $1 AND status = 'pending' AND verify_hash IS NOT NULL
                       AND verify_expires_at > $2 AND verify_attempts < 5
                     RETURNING id, subscriber_id, verify_hash")
                    .bind(phone).bind(now).fetch_optional(&mut *tx).await?;
                let Some((id, sid, Some(stored))) = row else {
                    tx.commit().await?;
                    return Ok(CodeCheck::NoLiveCode);
                };
                if !crate::residents::secrets::same_digest(&stored, hash) {
                    tx.commit().await?;
                    return Ok(CodeCheck::Wrong);
                }
                sqlx::query("UPDATE contacts SET status = 'verified', verified_at = $1, verify_hash = NULL WHERE id = $2")
                    .bind(now).bind(id).execute(&mut *tx).await?;
                record_consent(&mut tx, sid, "sms", consent_version, "granted", "sms_code", now).await?;
                let (public_id, language): (String, String) = sqlx::query_as("SELECT public_id, language FROM subscribers WHERE id = $1")
                    .bind(sid).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(CodeCheck::Verified { public_id, language })
            }

            async fn verify_push(&self, contact_id: i64, now: i64, consent_version: &str) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let row: Option<(i64,)> = sqlx::query_as(
                    "UPDATE contacts SET status = 'verified', verified_at = $1 WHERE id = $2 AND status = 'pending' RETURNING subscriber_id")
                    .bind(now).bind(contact_id).fetch_optional(&mut *tx).await?;
                if let Some((sid,)) = row {
                    record_consent(&mut tx, sid, "push", consent_version, "granted", "push_welcome", now).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn mark_contact_gone(&self, contact_id: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let row: Option<(i64,)> = sqlx::query_as("UPDATE contacts SET status = 'gone' WHERE id = $1 RETURNING subscriber_id")
                    .bind(contact_id).fetch_optional(&mut *tx).await?;
                if let Some((sid,)) = row {
                    refresh_verified_mask(&mut tx, sid).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn preferences(&self, public_id: &str) -> StoreResult<SubscriberState> {
                load_preferences(&self.pool, public_id).await
            }

            async fn update_preferences(&self, public_id: &str, u: &PreferencesUpdate, now: i64, consent_version: &str) -> StoreResult<SubscriberState> {
                let mut tx = self.begin_write().await?;
                let Some(sid) = live_subscriber(&mut tx, public_id, now).await? else {
                    drop(tx);
                    return load_preferences(&self.pool, public_id).await;
                };
                if let Some(lang) = u.language {
                    sqlx::query("UPDATE subscribers SET language = $1 WHERE id = $2").bind(lang.as_str()).bind(sid).execute(&mut *tx).await?;
                }
                if let Some(quiet) = u.quiet_hours {
                    let (from, to) = quiet_strings(quiet);
                    sqlx::query("UPDATE subscribers SET quiet_from = $1, quiet_to = $2 WHERE id = $3")
                        .bind(from).bind(to).bind(sid).execute(&mut *tx).await?;
                }
                replace_choices(&mut tx, sid, u.districts.as_deref(), u.interests.as_deref()).await?;
                if let Some(keep) = &u.channels {
                    for channel in ["email", "sms", "push"] {
                        if !keep.iter().any(|k| k == channel) {
                            withdraw(&mut tx, sid, Some(channel), "preferences_link", now, consent_version).await?;
                        }
                    }
                }
                tx.commit().await?;
                load_preferences(&self.pool, public_id).await
            }

            async fn unsubscribe(&self, public_id: &str, channel: Option<&str>, method: &str, now: i64, consent_version: &str) -> StoreResult<SubscriberState> {
                let mut tx = self.begin_write().await?;
                if let Some(sid) = live_subscriber(&mut tx, public_id, now).await? {
                    withdraw(&mut tx, sid, channel, method, now, consent_version).await?;
                    tx.commit().await?;
                } else {
                    drop(tx);
                }
                load_preferences(&self.pool, public_id).await
            }

            async fn erase(&self, public_id: &str, now: i64) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let Some(sid) = live_subscriber(&mut tx, public_id, now).await? else { return Ok(false) };
                sqlx::query("DELETE FROM contacts WHERE subscriber_id = $1").bind(sid).execute(&mut *tx).await?;
                // Delivery logs stay for the city's counts, but no longer lead to a person.
                sqlx::query("UPDATE deliveries SET contact_id = NULL, provider_id = NULL WHERE subscriber_id = $1").bind(sid).execute(&mut *tx).await?;
                // Survey answers stay in the results, tied to an invitation that no longer names anyone.
                sqlx::query("UPDATE survey_invitations SET subscriber_id = NULL, erased_at = $1 WHERE subscriber_id = $2").bind(now).bind(sid).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM subscriber_districts WHERE subscriber_id = $1").bind(sid).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM subscriber_interests WHERE subscriber_id = $1").bind(sid).execute(&mut *tx).await?;
                sqlx::query("UPDATE subscribers SET erased_at = $1, quiet_from = NULL, quiet_to = NULL, district_mask = 0, interest_mask = 0, verified_mask = 0 WHERE id = $2")
                    .bind(now).bind(sid).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn consent_history(&self, public_id: &str) -> StoreResult<Vec<(String, String, String, String, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT c.channel, c.consent_version, c.action, c.method, c.at FROM consents c
                     JOIN subscribers s ON s.id = c.subscriber_id WHERE s.public_id = $1 ORDER BY c.id")
                    .bind(public_id).fetch_all(&self.pool).await?)
            }

            async fn purge_unverified(&self, before: i64) -> StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                let gone = sqlx::query("DELETE FROM contacts WHERE status = 'pending' AND created_at < $1")
                    .bind(before).execute(&mut *tx).await?.rows_affected();
                // Subscribers left with no contact and no consent history were never anyone.
                sqlx::query(
                    "DELETE FROM subscribers WHERE created_at < $1 AND erased_at IS NULL
                       AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.subscriber_id = subscribers.id)
                       AND NOT EXISTS (SELECT 1 FROM consents k WHERE k.subscriber_id = subscribers.id)")
                    .bind(before).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(gone)
            }

            async fn secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
                sqlx::query("INSERT INTO app_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                    .bind(name).bind(candidate).execute(&self.pool).await?;
                let (value,): (String,) = sqlx::query_as("SELECT value FROM app_secrets WHERE name = $1")
                    .bind(name).fetch_one(&self.pool).await?;
                Ok(value)
            }

            async fn import(&self, rows: &[ImportRow], now: i64) -> StoreResult<(i64, i64)> {
                let mut tx = self.begin_write().await?;
                let (mut imported, mut skipped) = (0, 0);
                for row in rows {
                    let mut fresh = Vec::new();
                    for c in &row.signup.contacts {
                        let known: Option<(i64,)> = sqlx::query_as("SELECT id FROM contacts WHERE channel = $1 AND address = $2")
                            .bind(c.channel).bind(&c.address).fetch_optional(&mut *tx).await?;
                        if known.is_some() { skipped += 1 } else { fresh.push(c) }
                    }
                    if fresh.is_empty() {
                        continue;
                    }
                    let sid = insert_subscriber(&mut tx, &row.signup, &row.public_id, now).await?;
                    for c in fresh {
                        sqlx::query(
                            "INSERT INTO contacts (subscriber_id, channel, address, push_p256dh, push_auth, status, verified_at, created_at)
                             VALUES ($1, $2, $3, $4, $5, 'verified', $6, $6)")
                            .bind(sid).bind(c.channel).bind(&c.address).bind(&c.p256dh).bind(&c.auth).bind(now).execute(&mut *tx).await?;
                        record_consent(&mut tx, sid, c.channel, &row.consent_version, "granted", "import", row.consented_at).await?;
                    }
                    imported += 1;
                }
                tx.commit().await?;
                Ok((imported, skipped))
            }

            async fn sms_keyword(&self, phone: &str, stop: bool, now: i64, consent_version: &str) -> StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let (from, to, action, method) = if stop {
                    ("verified", "unsubscribed", "withdrawn", "sms_stop")
                } else {
                    ("unsubscribed", "verified", "granted", "sms_start")
                };
                // START only revives a number that was verified before: verified_at is set.
                let row: Option<(i64,)> = sqlx::query_as(
                    "UPDATE contacts SET status = $1 WHERE channel = 'sms' AND address = $2 AND status = $3 AND verified_at IS NOT NULL
                     RETURNING subscriber_id")
                    .bind(to).bind(phone).bind(from).fetch_optional(&mut *tx).await?;
                let Some((sid,)) = row else { return Ok(false) };
                record_consent(&mut tx, sid, "sms", consent_version, action, method, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<(Option<i64>, String, String, i64)>> {
                Ok(sqlx::query_as("SELECT official_id, action, subject, reached FROM audit_log ORDER BY id DESC LIMIT $1")
                    .bind(limit).fetch_all(&self.pool).await?)
            }

            async fn estimate(&self, q: &AudienceQuery) -> StoreResult<AudienceCounts> {
                use crate::store::audience::{Masks, fold};
                let all_d: Vec<String> = crate::store::CommonQueries::districts(self).await?.into_iter().map(|d| d.slug).collect();
                let all_i: Vec<String> = crate::store::CommonQueries::interests(self).await?.into_iter().map(|i| i.slug).collect();
                let masks = Masks::new(q, &all_d, &all_i);
                // Group by the masks: a few hundred groups for a million residents, expanded
                // into per-channel and per-district counts by `fold`.
                let mut b = sqlx::QueryBuilder::<$db>::new(
                    "SELECT language, district_mask, verified_mask, count(*) FROM subscribers WHERE erased_at IS NULL AND district_mask & ");
                b.push_bind(masks.district_any).push(" <> 0 AND verified_mask & ").push_bind(masks.channel_any).push(" <> 0");
                if masks.interest_any != 0 {
                    b.push(" AND interest_mask & ").push_bind(masks.interest_any).push(" <> 0");
                }
                b.push(" AND language IN ");
                b.push_tuples(&q.languages, |mut t, l| { t.push_bind(l.clone()); });
                b.push(" GROUP BY language, district_mask, verified_mask");
                let groups: Vec<(String, i64, i64, i64)> = b.build_query_as().fetch_all(&self.pool).await?;
                Ok(fold(groups, &masks))
            }

            async fn pending_contact(&self, channel: &str, address: &str) -> StoreResult<Option<i64>> {
                let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM contacts WHERE channel = $1 AND address = $2 AND status = 'pending'")
                    .bind(channel).bind(address).fetch_optional(&self.pool).await?;
                Ok(row.map(|(id,)| id))
            }

            async fn subscriber_by_contact(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT s.public_id FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id WHERE c.channel = $1 AND c.address = $2")
                    .bind(channel).bind(address).fetch_optional(&self.pool).await?;
                Ok(row.map(|(id,)| id))
            }

            async fn audit(&self, official_id: i64, action: &str, subject: &str, reached: i64, now: i64) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_log (official_id, action, subject, reached, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(official_id).bind(action).bind(subject).bind(reached).bind(now).execute(&self.pool).await?;
                Ok(())
            }
        }

        async fn insert_subscriber(tx: &mut sqlx::Transaction<'_, $db>, s: &Signup, public_id: &str, now: i64) -> StoreResult<i64> {
            let (from, to) = quiet_strings(s.quiet_hours);
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO subscribers (public_id, language, quiet_from, quiet_to, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING id")
                .bind(public_id).bind(s.language.as_str()).bind(from).bind(to).bind(now)
                .fetch_one(&mut **tx).await?;
            replace_choices(tx, id, Some(&s.districts), Some(&s.interests)).await?;
            Ok(id)
        }

        fn quiet_strings(q: Option<crate::domain::QuietHours>) -> (Option<String>, Option<String>) {
            match q {
                Some(q) => { let j = q.to_json(); (Some(j.from), Some(j.to)) }
                None => (None, None),
            }
        }

        async fn replace_choices(tx: &mut sqlx::Transaction<'_, $db>, sid: i64, districts: Option<&[String]>, interests: Option<&[String]>) -> StoreResult<()> {
            if let Some(districts) = districts {
                sqlx::query("DELETE FROM subscriber_districts WHERE subscriber_id = $1").bind(sid).execute(&mut **tx).await?;
                for d in districts {
                    sqlx::query("INSERT INTO subscriber_districts (subscriber_id, district) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(sid).bind(d).execute(&mut **tx).await?;
                }
            }
            if let Some(interests) = interests {
                sqlx::query("DELETE FROM subscriber_interests WHERE subscriber_id = $1").bind(sid).execute(&mut **tx).await?;
                for i in interests {
                    sqlx::query("INSERT INTO subscriber_interests (subscriber_id, interest) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(sid).bind(i).execute(&mut **tx).await?;
                }
            }
            if districts.is_some() || interests.is_some() {
                // SUM of distinct powers of two is their bitwise OR, in both dialects.
                sqlx::query(
                    "UPDATE subscribers SET
                       district_mask = (SELECT COALESCE(SUM(DISTINCT CAST(1 AS BIGINT) << (d.position - 1)), 0)
                                        FROM subscriber_districts sd JOIN districts d ON d.slug = sd.district WHERE sd.subscriber_id = $1),
                       interest_mask = (SELECT COALESCE(SUM(DISTINCT CAST(1 AS BIGINT) << (i.position - 1)), 0)
                                        FROM subscriber_interests si JOIN interests i ON i.slug = si.interest WHERE si.subscriber_id = $1)
                     WHERE id = $1")
                    .bind(sid).execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// Recompute which channels of a subscriber are verified (after any status change).
        async fn refresh_verified_mask(tx: &mut sqlx::Transaction<'_, $db>, sid: i64) -> StoreResult<()> {
            sqlx::query(
                "UPDATE subscribers SET verified_mask = (SELECT COALESCE(SUM(DISTINCT CASE channel WHEN 'email' THEN 1 WHEN 'sms' THEN 2 ELSE 4 END), 0)
                                                         FROM contacts WHERE subscriber_id = $1 AND status = 'verified')
                 WHERE id = $1")
                .bind(sid).execute(&mut **tx).await?;
            Ok(())
        }

        /// The id of a subscriber that is not erased, touching `updated_at` (a write first, so
        /// SQLite takes its lock before the transaction reads).
        async fn live_subscriber(tx: &mut sqlx::Transaction<'_, $db>, public_id: &str, now: i64) -> StoreResult<Option<i64>> {
            let row: Option<(i64,)> = sqlx::query_as("UPDATE subscribers SET updated_at = $1 WHERE public_id = $2 AND erased_at IS NULL RETURNING id")
                .bind(now).bind(public_id).fetch_optional(&mut **tx).await?;
            Ok(row.map(|(id,)| id))
        }

        async fn withdraw(tx: &mut sqlx::Transaction<'_, $db>, sid: i64, channel: Option<&str>, method: &str, now: i64, version: &str) -> StoreResult<()> {
            let channels: Vec<(String,)> = sqlx::query_as(
                "UPDATE contacts SET status = 'unsubscribed' WHERE subscriber_id = $1 AND status IN ('verified', 'pending')
                   AND ($2 IS NULL OR channel = $2) RETURNING channel")
                .bind(sid).bind(channel).fetch_all(&mut **tx).await?;
            for (ch,) in channels {
                record_consent(tx, sid, &ch, version, "withdrawn", method, now).await?;
            }
            Ok(())
        }

        async fn record_consent(tx: &mut sqlx::Transaction<'_, $db>, sid: i64, channel: &str, version: &str, action: &str, method: &str, now: i64) -> StoreResult<()> {
            sqlx::query("INSERT INTO consents (subscriber_id, channel, consent_version, action, method, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(sid).bind(channel).bind(version).bind(action).bind(method).bind(now).execute(&mut **tx).await?;
            // Every consent change goes with a contact status change: keep the mask in step.
            refresh_verified_mask(tx, sid).await
        }

        async fn load_preferences(pool: &sqlx::Pool<$db>, public_id: &str) -> StoreResult<SubscriberState> {
            let row: Option<(i64, String, Option<String>, Option<String>, Option<i64>)> = sqlx::query_as(
                "SELECT id, language, quiet_from, quiet_to, erased_at FROM subscribers WHERE public_id = $1")
                .bind(public_id).fetch_optional(pool).await?;
            let Some((sid, language, from, to, erased)) = row else { return Ok(SubscriberState::Missing) };
            if erased.is_some() {
                return Ok(SubscriberState::Erased);
            }
            let districts: Vec<(String,)> = sqlx::query_as(
                "SELECT d.slug FROM subscriber_districts sd JOIN districts d ON d.slug = sd.district WHERE sd.subscriber_id = $1 ORDER BY d.position")
                .bind(sid).fetch_all(pool).await?;
            let interests: Vec<(String,)> = sqlx::query_as(
                "SELECT i.slug FROM subscriber_interests si JOIN interests i ON i.slug = si.interest WHERE si.subscriber_id = $1 ORDER BY i.position")
                .bind(sid).fetch_all(pool).await?;
            let contacts: Vec<ContactView> = sqlx::query_as(
                "SELECT channel, address, status FROM contacts WHERE subscriber_id = $1 ORDER BY id")
                .bind(sid).fetch_all(pool).await?;
            Ok(SubscriberState::Active(Preferences {
                language: crate::domain::Language::parse(&language).unwrap_or_default(),
                quiet_hours: from.zip(to).map(|(from, to)| crate::domain::QuietHoursJson { from, to }),
                districts: districts.into_iter().map(|(d,)| d).collect(),
                interests: interests.into_iter().map(|(i,)| i).collect(),
                contacts,
            }))
        }
    };
}

pub(crate) use resident_queries;
