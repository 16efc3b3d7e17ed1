//! The `verify_contact.v1` job: send a pending contact its verification message, within the
//! per-contact limits and the daily SMS budget. Limits are applied here, in the worker, so
//! the sign-up answer is the same whether a message goes out or not.

use std::time::Duration;

use serde_json::json;

use hejnal_jobs::HandlerError;

use super::{ResidentsCtx, one_click_url, secrets};
use crate::{
    channels::{Address, Message, PushTarget, SendError},
    domain::Language,
    store::{ContactTarget, SendLimits, now_ms},
};

/// How long an email link and an SMS code stay valid.
pub const EMAIL_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const SMS_CODE_TTL: Duration = Duration::from_secs(10 * 60);
const MIN_GAP: Duration = Duration::from_secs(60);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// `attempt` is the job's run: a retry after a failed send already holds its reservation.
pub async fn run(ctx: &ResidentsCtx, contact_id: i64, attempt: i32) -> Result<(), HandlerError> {
    let store = &ctx.store;
    let Some(target) = store.contact_target(contact_id).await.map_err(retry)? else { return Ok(()) };
    if target.status != "pending" {
        return Ok(());
    }
    let now = now_ms();
    let address_hash = secrets::digest(&format!("{}:{}", target.channel, target.address));
    if attempt <= 1 && !within_limits(ctx, &target, &address_hash, now).await? {
        return Ok(());
    }
    let lang = Language::parse(&target.language).unwrap_or_default();
    let preferences_url = ctx.preferences_url(&target.public_id);
    let (address, message, secret) = match target.channel.as_str() {
        "email" => email_message(ctx, &target, lang, &preferences_url)?,
        "sms" => sms_message(ctx, &target, lang, &preferences_url)?,
        _ => push_message(ctx, &target, lang, &preferences_url)?,
    };
    if let Some((hash, expires_at)) = secret {
        store.set_verify_secret(contact_id, &hash, expires_at).await.map_err(retry)?;
    }
    let channel = ctx.channels.get(address.kind());
    match channel.send(&address, &message).await {
        Ok(_) => {
            metrics::counter!("hejnal_verifications_sent_total", "channel" => target.channel.clone()).increment(1);
            if target.channel == "push" {
                // The push service accepted the welcome: the subscription works.
                store.verify_push(contact_id, now_ms(), super::CONSENT_VERSION).await.map_err(retry)?;
            }
            Ok(())
        }
        Err(SendError::Gone(reason)) => {
            tracing::info!(contact_id, %reason, "contact gone");
            store.mark_contact_gone(contact_id).await.map_err(retry)
        }
        Err(SendError::Permanent(reason)) => Err(HandlerError::Fatal(reason)),
        Err(SendError::RateLimited { retry_after }) => Err(HandlerError::Retry { after: retry_after, reason: "provider rate limit".into() }),
        Err(SendError::Transient(reason) | SendError::Unknown(reason)) => Err(HandlerError::Retry { after: Duration::from_secs(30), reason }),
    }
}

/// One message per minute and five a day per address; for SMS also the city's daily budget.
/// Going over is silent: the resident sees the same answer, and no message goes out.
async fn within_limits(ctx: &ResidentsCtx, target: &ContactTarget, address_hash: &str, now: i64) -> Result<bool, HandlerError> {
    let limits = SendLimits {
        min_gap_ms: MIN_GAP.as_millis() as i64,
        per_address: 5,
        window_ms: DAY_MS,
        channel_budget: (target.channel == "sms").then_some(ctx.sms_daily_budget as i64),
    };
    match ctx.store.reserve_verification_send(&target.channel, address_hash, now, &limits).await.map_err(retry)? {
        None => Ok(true),
        Some(reason) => {
            metrics::counter!("hejnal_verifications_skipped_total", "reason" => reason).increment(1);
            Ok(false)
        }
    }
}

type Prepared = (Address, Message, Option<(String, i64)>);

fn email_message(ctx: &ResidentsCtx, t: &ContactTarget, lang: Language, preferences_url: &str) -> Result<Prepared, HandlerError> {
    let token = secrets::random_token(32);
    let confirm_url = ctx.public_url(&format!("v/{token}"));
    let data = json!({"confirm_url": confirm_url, "preferences_url": preferences_url});
    let mut message = Message::new(
        format!("verify-{}-{}", t.contact_id, secrets::random_token(6)),
        render(ctx, "email/verify.subject", lang, &data)?,
        render(ctx, "email/verify.text", lang, &data)?,
    );
    message.html = Some(render(ctx, "email/verify.html", lang, &data)?);
    // The header's URL must unsubscribe on a one-click POST; the preferences page would not.
    message.unsubscribe_url = Some(one_click_url(&ctx.public_url, &ctx.links.sign(&t.public_id)));
    let expires = now_ms() + EMAIL_LINK_TTL.as_millis() as i64;
    Ok((Address::Email(t.address.clone()), message, Some((secrets::digest(&token), expires))))
}

fn sms_message(ctx: &ResidentsCtx, t: &ContactTarget, lang: Language, preferences_url: &str) -> Result<Prepared, HandlerError> {
    let code = secrets::sms_code();
    // Every message carries the preferences link, the SMS too (it costs a second segment).
    let text = render(ctx, "sms/verify", lang, &json!({"code": code, "preferences_url": preferences_url}))?;
    let message = Message::new(format!("verify-{}-{}", t.contact_id, secrets::random_token(6)), "", text);
    let expires = now_ms() + SMS_CODE_TTL.as_millis() as i64;
    Ok((Address::Phone(t.address.clone()), message, Some((sms_code_digest(&t.address, &code), expires))))
}

fn push_message(ctx: &ResidentsCtx, t: &ContactTarget, lang: Language, preferences_url: &str) -> Result<Prepared, HandlerError> {
    let target = PushTarget {
        endpoint: t.address.clone(),
        p256dh: t.push_p256dh.clone().unwrap_or_default(),
        auth: t.push_auth.clone().unwrap_or_default(),
    };
    let mut message = Message::new(
        format!("verify-{}", t.contact_id),
        render(ctx, "push/welcome.title", lang, &json!({}))?,
        render(ctx, "push/welcome.body", lang, &json!({}))?,
    );
    message.link = Some(preferences_url.to_owned());
    Ok((Address::Push(target), message, None))
}

/// Codes are stored as digests bound to the number, so a code is useless for another number.
pub fn sms_code_digest(phone: &str, code: &str) -> String {
    secrets::digest(&format!("{phone}:{code}"))
}

fn render(ctx: &ResidentsCtx, name: &str, lang: Language, data: &serde_json::Value) -> Result<String, HandlerError> {
    ctx.messages.render(name, lang, data).map_err(|e| HandlerError::Fatal(format!("template {name}: {e}")))
}

fn retry(e: crate::store::StoreError) -> HandlerError {
    HandlerError::Retry { after: Duration::from_secs(5), reason: e.to_string() }
}
