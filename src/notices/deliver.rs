//! The delivery job: claim the due deliveries of one range (queued, or held by a worker whose
//! lease lapsed), send each through its channel under the provider's limits, and record the
//! outcomes in bulk every `FLUSH_EVERY` sends, so a killed worker repeats at most that many.
//! Transient failures keep the delivery `sending` with a lease until their retry time; the
//! job then runs again at the earliest of those times and takes them up.

use std::{
    collections::HashMap,
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use futures::StreamExt;
use hejnal_jobs::HandlerError;

use super::{NoticesCtx, render::{self, Rendered}, spec::NoticeSpec};
use crate::{
    channels::{Address, ChannelKind, Message, PushTarget, SendError, Sent},
    domain::Language,
    store::{Attempt, AttemptOutcome, ClaimedDelivery, DeliveryRange, DeliveryTarget, NoticeRow, ProviderTry, now_ms},
};

/// Outcomes are written after this many sends.
const FLUSH_EVERY: usize = 100;

pub async fn run(ctx: &NoticesCtx, range: DeliveryRange<'_>, worker_id: &str) -> Result<(), HandlerError> {
    let store = &ctx.residents.store;
    tracing::debug!(notice_id = range.notice_id, channel = range.channel, first = range.first, "delivery job started");
    let Some(notice) = store.notice(range.notice_id).await.map_err(retry)? else {
        return Err(HandlerError::Fatal(format!("notice {} does not exist", range.notice_id)));
    };
    let now = now_ms();
    if notice.state == "cancelled" {
        store.close_range(range, "cancelled", "notice cancelled", now).await.map_err(retry)?;
        return Ok(());
    }
    if notice.expires_at.is_some_and(|e| e <= now) {
        store.close_range(range, "expired", "the notice expired before it could be sent", now).await.map_err(retry)?;
        return Ok(());
    }
    let kind = ChannelKind::from_str(range.channel).map_err(HandlerError::Fatal)?;
    let spec: NoticeSpec = serde_json::from_str(&notice.spec).map_err(|e| HandlerError::Fatal(e.to_string()))?;
    let emergency = super::fanout::lane_of(&notice) == hejnal_jobs::Lane::Emergency;
    let _urgent = emergency.then(|| ctx.preempt.urgent());
    if !emergency {
        ctx.preempt.yield_to_urgent().await;
    }
    // Rounds: a claim's lease covers only what can be sent before it lapses (a slow provider
    // may take longer than the lease for a whole batch); what was not started is handed back
    // and claimed again, with a fresh lease.
    loop {
        let now = now_ms();
        let lease_until = now + ctx.settings.lease.as_millis() as i64;
        let claimed = store.claim_deliveries(range, now, lease_until).await.map_err(retry)?;
        tracing::debug!(notice_id = range.notice_id, channel = range.channel, first = range.first, claimed = claimed.len(), emergency, "claimed");
        let took_some = !claimed.is_empty();
        if took_some {
            let batch = Batch::prepare(ctx, &notice, &spec, kind, &claimed, emergency).await?;
            if batch.send_all(ctx, claimed, worker_id, lease_until).await? > 0 {
                continue;
            }
        }
        // What is still held (our transient failures, or another worker's sends) decides whether
        // this job must come back, and when. A retry may have fallen due while the batch was
        // still sending: at 1M, 24 such deliveries were left `sending` with nobody to take them
        // up (`hejnal bench broadcast`), when only leases still running were looked at here.
        match store.range_busy_until(range).await.map_err(retry)? {
            None => return Ok(()),
            Some(until) if until <= now_ms() && took_some => continue,
            Some(until) => {
                return Err(HandlerError::Retry {
                    after: Duration::from_millis((until - now_ms()).max(0) as u64 + 50),
                    reason: "deliveries wait for a retry".into(),
                });
            }
        }
    }
}

/// Everything the sends of one claimed batch share.
struct Batch {
    kind: ChannelKind,
    targets: HashMap<i64, DeliveryTarget>,
    rendered: HashMap<String, Rendered>,
    expires_at: Option<i64>,
    urgent: bool,
    /// In the emergency lane: never pauses for other emergencies.
    emergency: bool,
    /// A routine batch pauses for emergencies only until then, well inside its lease, so that
    /// nobody else takes up (and sends again) what it claimed.
    pause_until: tokio::time::Instant,
    ttl: Duration,
    topic: String,
    /// A survey invitation: each recipient's invitation id, by subscriber.
    invitations: Option<HashMap<i64, i64>>,
}

impl Batch {
    async fn prepare(ctx: &NoticesCtx, notice: &NoticeRow, spec: &NoticeSpec, kind: ChannelKind, claimed: &[ClaimedDelivery], emergency: bool) -> Result<Batch, HandlerError> {
        let contact_ids: Vec<i64> = claimed.iter().filter_map(|d| d.contact_id).collect();
        let targets = ctx.residents.store.delivery_targets(&contact_ids).await.map_err(retry)?;
        let mut rendered = HashMap::new();
        for d in claimed {
            if !rendered.contains_key(&d.language) {
                let lang = Language::parse(&d.language).unwrap_or(Language::Pl);
                let transliterate = spec.transliterate.unwrap_or(ctx.settings.sms_transliterate);
                let r = render::render(&ctx.residents.messages, spec, kind, lang, transliterate).map_err(|e| HandlerError::Fatal(format!("template: {e}")))?;
                rendered.insert(d.language.clone(), r);
            }
        }
        let invitations = if notice.kind == "survey" { Some(invitations(ctx, notice.id, claimed).await?) } else { None };
        let ttl = notice.expires_at.map(|e| Duration::from_millis((e - now_ms()).max(60_000) as u64)).unwrap_or(Duration::from_secs(24 * 3600));
        Ok(Batch {
            kind,
            targets: targets.into_iter().map(|t| (t.contact_id, t)).collect(),
            rendered,
            expires_at: notice.expires_at,
            urgent: spec.severity.is_urgent(),
            emergency,
            pause_until: tokio::time::Instant::now() + ctx.settings.lease / 2,
            ttl,
            // One topic per chain, so an Update or Cancel replaces what the browser shows.
            topic: format!("notice-{}", notice.root_id.unwrap_or(notice.id)),
            invitations,
        })
    }

    /// Send the claimed deliveries and record their outcomes; returns how many it handed back
    /// unsent because their lease was running out.
    async fn send_all(&self, ctx: &NoticesCtx, claimed: Vec<ClaimedDelivery>, worker_id: &str, lease_until: i64) -> Result<usize, HandlerError> {
        let channel = ctx.residents.channels.get(self.kind).clone();
        let throttle = ctx.residents.channels.throttle(self.kind);
        // A send starts only while it can end (the provider's timeout) before the lease lapses:
        // once it lapses, another worker may take the delivery and send it too. Batches that
        // waited on a slow provider's throttle past their lease repeated 2,000 of 10,000
        // messages in the fault suite's connection-cut scenario.
        let last_start = lease_until - ctx.settings.send_margin.as_millis() as i64;
        // Once outcomes cannot be written, no new send starts; the ones under way finish, so
        // that none is dropped half done (a dropped send may have reached the provider).
        let stop = AtomicBool::new(false);
        let may_start = || now_ms() <= last_start && !stop.load(Ordering::Relaxed);
        let mut outcomes = futures::stream::iter(claimed)
            .map(|d| {
                let channel = channel.clone();
                let may_start = &may_start;
                async move {
                    self.yield_to_urgent(ctx).await;
                    if !may_start() {
                        return Err((d.id, d.attempts));
                    }
                    let _permit = throttle.acquire(self.urgent).await;
                    if !may_start() {
                        return Err((d.id, d.attempts));
                    }
                    Ok(self.send_one(ctx, &*channel, &d).await)
                }
            })
            .buffer_unordered(throttle.concurrency());
        let mut pending = Vec::with_capacity(FLUSH_EVERY);
        let mut unsent = Vec::new();
        while let Some(sent) = outcomes.next().await {
            match sent {
                Ok(attempt) => {
                    count(self.kind, &attempt.outcome);
                    pending.push(attempt);
                }
                Err(claim) => unsent.push(claim),
            }
            if pending.len() >= FLUSH_EVERY && !stop.load(Ordering::Relaxed) {
                self.yield_to_urgent(ctx).await;
                match record(ctx, &pending, worker_id, lease_until).await {
                    Ok(()) => pending.clear(),
                    // Kept in `pending` for one more try once the sends under way are done.
                    Err(_) => stop.store(true, Ordering::Relaxed),
                }
            }
        }
        drop(outcomes);
        record(ctx, &pending, worker_id, lease_until).await?;
        if !unsent.is_empty() {
            ctx.residents.store.release_claims(&unsent, now_ms()).await.map_err(retry)?;
        }
        Ok(unsent.len())
    }

    async fn yield_to_urgent(&self, ctx: &NoticesCtx) {
        if !self.emergency && ctx.preempt.is_urgent_running() {
            let _ = tokio::time::timeout_at(self.pause_until, ctx.preempt.yield_to_urgent()).await;
        }
    }

    async fn send_one(&self, ctx: &NoticesCtx, channel: &dyn crate::channels::Channel, d: &ClaimedDelivery) -> Attempt {
        let unsent = |outcome| Attempt { delivery_id: d.id, attempt: d.attempts, outcome, provider: None, maybe_sent: false, failed_over: vec![] };
        let Some(target) = d.contact_id.and_then(|id| self.targets.get(&id)) else {
            return unsent(AttemptOutcome::Cancelled { reason: "the resident erased their data".into() });
        };
        if target.status != "verified" {
            return unsent(AttemptOutcome::Cancelled { reason: format!("the contact is {}", target.status) });
        }
        if self.expires_at.is_some_and(|e| e <= now_ms()) {
            return unsent(AttemptOutcome::Expired);
        }
        let invitation = match &self.invitations {
            Some(by_subscriber) => match by_subscriber.get(&d.subscriber_id) {
                Some(id) => Some(*id),
                None => return unsent(AttemptOutcome::Cancelled { reason: "no invitation for this resident".into() }),
            },
            None => None,
        };
        if d.attempts > crate::channels::backoff::MAX_ATTEMPTS as i32 {
            return unsent(AttemptOutcome::Failed { reason: format!("gave up after {} attempts", d.attempts - 1) });
        }
        let message = self.message(ctx, d, target, invitation);
        let traced = channel.send_traced(&address(self.kind, target), &message).await;
        let maybe_sent = traced.result.as_ref().err().is_some_and(SendError::may_have_been_sent);
        let outcome = match traced.result {
            Ok(Sent { provider_id }) => AttemptOutcome::Sent { provider_id },
            Err(SendError::Gone(reason)) => AttemptOutcome::Gone { reason, contact_id: target.contact_id },
            Err(e) => match crate::channels::backoff::retry_delay(d.attempts as u32, &e) {
                Some(delay) if (d.attempts as u32) < crate::channels::backoff::MAX_ATTEMPTS => {
                    AttemptOutcome::Retry { at: now_ms() + delay.as_millis() as i64, reason: e.to_string() }
                }
                _ => AttemptOutcome::Failed { reason: e.to_string() },
            },
        };
        let failed_over = traced
            .failed_over
            .into_iter()
            .map(|(provider, e)| ProviderTry { provider, maybe_sent: e.may_have_been_sent(), error: e.to_string() })
            .collect();
        Attempt { delivery_id: d.id, attempt: d.attempts, outcome, provider: Some(traced.provider), maybe_sent, failed_over }
    }

    fn message(&self, ctx: &NoticesCtx, d: &ClaimedDelivery, target: &DeliveryTarget, invitation: Option<i64>) -> Message {
        let token = ctx.residents.links.sign(&target.public_id);
        let preferences = ctx.residents.public_url(&format!("preferences/{token}"));
        let rendered = &self.rendered[&d.language];
        let (personal, link) = match invitation {
            Some(id) => {
                let survey = crate::surveys::invitation_url(&ctx.residents, id);
                (rendered.for_invitee(&preferences, &survey), survey)
            }
            None => (rendered.for_recipient(&preferences), preferences),
        };
        let mut m = Message::new(d.id.to_string(), personal.subject, personal.text);
        m.html = personal.html;
        m.urgent = self.urgent;
        m.ttl = self.ttl;
        m.topic = Some(self.topic.clone());
        m.link = Some(link);
        if self.kind == ChannelKind::Email {
            m.unsubscribe_url = Some(crate::residents::one_click_url(&ctx.residents.public_url, &token));
        }
        m
    }
}

/// The invitation of each claimed recipient of a survey's invitation notice.
async fn invitations(ctx: &NoticesCtx, notice_id: i64, claimed: &[ClaimedDelivery]) -> Result<HashMap<i64, i64>, HandlerError> {
    let store = &ctx.residents.store;
    let Some(survey_id) = store.survey_of_notice(notice_id).await.map_err(retry)? else {
        return Err(HandlerError::Fatal(format!("notice {notice_id} invites to no survey")));
    };
    let subscribers: Vec<i64> = claimed.iter().map(|d| d.subscriber_id).collect();
    Ok(store.invitations_of(survey_id, &subscribers).await.map_err(retry)?.into_iter().collect())
}


/// Write outcomes of sends that happened. While the database is out of reach, try again until
/// shortly before the lease lapses: an outcome given up is a message another worker sends again
/// once the lease is over (the fault suite's connection-cut scenario repeated 2,020 of 10,000
/// messages that way). Past the lease the rows may be someone else's, so the job gives up.
async fn record(ctx: &NoticesCtx, attempts: &[Attempt], worker_id: &str, lease_until: i64) -> Result<(), HandlerError> {
    let give_up_at = lease_until - RECORD_MARGIN_MS;
    let mut pause = Duration::from_millis(50);
    loop {
        match ctx.residents.store.record_attempts(attempts, worker_id, now_ms()).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_unavailable() && now_ms() + (pause.as_millis() as i64) < give_up_at => {
                tracing::warn!(error = %e, outcomes = attempts.len(), "cannot write outcomes yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::error!(error = %e, outcomes = attempts.len(), "outcomes of sent messages could not be written; they may be sent again");
                return Err(retry(e));
            }
        }
    }
}

/// Outcomes are not written later than this before the lease lapses.
const RECORD_MARGIN_MS: i64 = 1_000;

fn address(kind: ChannelKind, t: &DeliveryTarget) -> Address {
    match kind {
        ChannelKind::Sms => Address::Phone(t.address.clone()),
        ChannelKind::Email => Address::Email(t.address.clone()),
        ChannelKind::Push => Address::Push(PushTarget {
            endpoint: t.address.clone(),
            p256dh: t.push_p256dh.clone().unwrap_or_default(),
            auth: t.push_auth.clone().unwrap_or_default(),
        }),
    }
}

fn count(kind: ChannelKind, outcome: &AttemptOutcome) {
    let label = match outcome {
        AttemptOutcome::Sent { .. } => "sent",
        AttemptOutcome::Retry { .. } => "retry",
        AttemptOutcome::Failed { .. } => "failed",
        AttemptOutcome::Gone { .. } => "gone",
        AttemptOutcome::Cancelled { .. } => "cancelled",
        AttemptOutcome::Expired => "expired",
    };
    metrics::counter!("hejnal_delivery_attempts_total", "channel" => kind.as_str(), "outcome" => label).increment(1);
}

fn retry(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Retry { after: Duration::from_secs(2), reason: e.to_string() }
}
