//! A notice's life: draft → submit → (pending → approve | reject) → published or scheduled,
//! and cancel at any point. Every change is one conditional update (`Transition`), so a double
//! click or a race between two officials changes a notice once; publishing writes the fan-out
//! job in the same transaction.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use hejnal_jobs::{Job, NewJob};

use super::{
    DeliverySettings, fanout::lane_of, ms,
    spec::{MsgType, NoticeSpec, Status},
};
use crate::{
    http::error::ApiError,
    store::{AuditEntry, DynStore, NewNotice, NoticeRow, Official, TemplateRow, Transition, now_ms},
};

/// How a notice was cleared to go, as shown to officials and kept in the audit log.
pub mod approval {
    pub const SECOND_OFFICIAL: &str = "second_official";
    pub const NOT_REQUIRED: &str = "not_required";
    pub const CORRECTION: &str = "correction";
    pub const BREAK_GLASS: &str = "break_glass";
}

/// The audience's first unknown district and first unknown interest, as field errors.
pub async fn unknown_audience(store: &DynStore, a: &super::spec::Audience) -> Result<Vec<crate::http::error::FieldError>, ApiError> {
    let (districts, interests) = store.unknown_slugs(&a.districts, &a.interests).await?;
    let mut errors = Vec::new();
    if let Some(d) = districts.first() {
        errors.push(crate::http::error::FieldError { field: "audience.districts".into(), message: format!("{d:?} is not a district; see /api/v1/districts") });
    }
    if let Some(i) = interests.first() {
        errors.push(crate::http::error::FieldError { field: "audience.interests".into(), message: format!("{i:?} is not an interest; see /api/v1/interests") });
    }
    Ok(errors)
}

/// Write a draft. With the author's `idempotency_key`, a repeat (even one whose first answer
/// was lost) returns the notice written first.
pub async fn create(store: &DynStore, official: &Official, spec: &NoticeSpec, template_id: Option<i64>, idempotency_key: Option<&str>) -> Result<NoticeRow, ApiError> {
    spec.check(Utc::now())?;
    if let Some(a) = &spec.audience
        && let Some(first) = unknown_audience(store, a).await?.into_iter().next()
    {
        return Err(ApiError::field(&first.field, first.message));
    }
    let mut lane = spec.lane();
    let mut root_id = None;
    if let Some(original_id) = spec.references {
        let original = store.notice(original_id).await?.ok_or_else(|| ApiError::field("references", format!("notice {original_id} does not exist")))?;
        if original.state != "published" && original.state != "cancelled" {
            return Err(ApiError::field("references", format!("notice {original_id} was never sent ({}); edit or cancel it instead", original.state)));
        }
        // A correction must never wait behind routine work when the original did not.
        if original.lane == "emergency" {
            lane = hejnal_jobs::Lane::Emergency;
        }
        root_id = Some(original.root_id.unwrap_or(original.id));
    }
    let new = NewNotice {
        kind: serde_plain(&spec.kind),
        msg_type: serde_plain(&spec.msg_type),
        status: serde_plain(&spec.status),
        severity: serde_plain(&spec.severity),
        references_id: spec.references,
        root_id,
        spec: serde_json::to_string(spec).map_err(ApiError::internal)?,
        lane: lane.as_str().to_owned(),
        send_at: ms(spec.send_at),
        expires_at: ms(spec.expires),
        author_id: official.id,
        template_id,
        idempotency_key: idempotency_key.map(str::to_owned),
    };
    let id = store.create_notice(&new, now_ms()).await?;
    store.notice(id).await?.ok_or_else(|| ApiError::internal("a notice vanished after its insert"))
}

/// Does this notice need a second official before it goes?
pub fn needs_approval(spec: &NoticeSpec, settings: &DeliverySettings) -> Option<&'static str> {
    if spec.msg_type != MsgType::Alert {
        // An all-clear or a correction must never wait (the 2018 Hawaii false alarm).
        return None;
    }
    if spec.status != Status::Actual {
        return None;
    }
    if spec.kind == super::spec::Kind::Alert || settings.approval_for_routine { Some(approval::SECOND_OFFICIAL) } else { None }
}

/// Submit a draft: it waits for approval, or goes at once when none is needed.
pub async fn submit(store: &DynStore, settings: &DeliverySettings, official: &Official, id: i64) -> Result<NoticeRow, ApiError> {
    let notice = load(store, id).await?;
    if notice.author_id != official.id && official.role != "admin" {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_author", "only the notice's author (or an admin) may submit it"));
    }
    let spec = parse(&notice)?;
    let now = now_ms();
    let outcome = if needs_approval(&spec, settings).is_some() {
        let audit = entry(official, "notices.submit", format!("notice {id} (awaiting approval)"));
        let t = Transition { from: &["draft"], to: "pending", stamps: &["submitted_at"], approver_id: None, approval: None, reject_reason: None, jobs: vec![], cancel_deliveries: false, audit: Some(audit) };
        store.transition(id, &t, now).await?
    } else {
        let how = if spec.msg_type == MsgType::Alert { approval::NOT_REQUIRED } else { approval::CORRECTION };
        let audit = entry(official, "notices.publish", format!("notice {id} ({how})"));
        publish(store, &notice, &["draft"], None, how, now, audit).await?
    };
    match outcome {
        Some(row) => Ok(row),
        // A double submit: the first one did it; answer with where the notice is now.
        None => settled(store, id, &["pending", "scheduled", "published"]).await,
    }
}

/// The second official's approval publishes the notice (or schedules it for `send_at`).
pub async fn approve(store: &DynStore, official: &Official, id: i64) -> Result<NoticeRow, ApiError> {
    let notice = load(store, id).await?;
    if notice.author_id == official.id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "self_approval", "a notice must be approved by someone other than its author"));
    }
    let now = now_ms();
    let audit = entry(official, "notices.approve", format!("notice {id}"));
    match publish(store, &notice, &["pending"], Some(official.id), approval::SECOND_OFFICIAL, now, audit).await? {
        Some(row) => Ok(row),
        None => settled(store, id, &["scheduled", "published"]).await,
    }
}

pub async fn reject(store: &DynStore, official: &Official, id: i64, reason: &str) -> Result<NoticeRow, ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::field("reason", "say why, so that the author can fix it"));
    }
    let notice = load(store, id).await?;
    if notice.author_id == official.id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "self_approval", "a notice must be reviewed by someone other than its author"));
    }
    let now = now_ms();
    let t = Transition { from: &["pending"], to: "rejected", stamps: &[], approver_id: Some(official.id), approval: None, reject_reason: Some(reason.trim().to_owned()), jobs: vec![], cancel_deliveries: false, audit: Some(entry(official, "notices.reject", format!("notice {id}"))) };
    match store.transition(id, &t, now).await? {
        Some(row) => Ok(row),
        None => settled(store, id, &["rejected"]).await,
    }
}

/// Stop a notice: nothing new is sent, and every delivery still waiting is cancelled.
pub async fn cancel(store: &DynStore, official: &Official, id: i64) -> Result<NoticeRow, ApiError> {
    load(store, id).await?;
    let now = now_ms();
    let t = Transition { from: &["draft", "pending", "scheduled", "published"], to: "cancelled", stamps: &["cancelled_at"], approver_id: None, approval: None, reject_reason: None, jobs: vec![], cancel_deliveries: true, audit: Some(entry(official, "notices.cancel", format!("notice {id}"))) };
    match store.transition(id, &t, now).await? {
        Some(row) => Ok(row),
        None => settled(store, id, &["cancelled"]).await,
    }
}

/// Break glass: one author sends a template two officials approved earlier, when no approver
/// can be reached. Audited and marked as such on the notice.
pub async fn send_template(store: &DynStore, official: &Official, template: &TemplateRow) -> Result<NoticeRow, ApiError> {
    if template.approver_id.is_none() {
        return Err(ApiError::new(StatusCode::CONFLICT, "template_not_approved", "this template has not been approved by a second official"));
    }
    let spec: NoticeSpec = serde_json::from_str(&template.spec).map_err(ApiError::internal)?;
    let draft = create(store, official, &spec, Some(template.id), None).await?;
    let audit = entry(official, "notices.break_glass", format!("notice {} from template {}", draft.id, template.id));
    publish(store, &draft, &["draft"], None, approval::BREAK_GLASS, now_ms(), audit)
        .await?
        .ok_or_else(|| ApiError::internal("a fresh draft could not be published"))
}

/// Publish now, or schedule for `send_at`, with the fan-out job in the same transaction.
/// Whether `send_at` has come is the database's clock's to say, not this host's.
async fn publish(store: &DynStore, notice: &NoticeRow, from: &'static [&'static str], approver: Option<i64>, how: &str, now: i64, audit: AuditEntry) -> Result<Option<NoticeRow>, ApiError> {
    let delay = match notice.send_at {
        Some(at) => Some(at - store.database_now_ms().await?).filter(|d| *d > 0),
        None => None,
    };
    let job = NewJob::after(lane_of(notice), Job::FanOutV1 { notice_id: notice.id }, Duration::from_millis(delay.unwrap_or(0) as u64));
    let (to, stamps): (&'static str, &'static [&'static str]) = match (delay, approver) {
        (Some(_), Some(_)) => ("scheduled", &["approved_at"]),
        (Some(_), None) => ("scheduled", &[]),
        (None, Some(_)) => ("published", &["approved_at", "published_at"]),
        (None, None) => ("published", &["published_at"]),
    };
    let t = Transition { from, to, stamps, approver_id: approver, approval: Some(how.to_owned()), reject_reason: None, jobs: vec![job], cancel_deliveries: false, audit: Some(audit) };
    Ok(store.transition(notice.id, &t, now).await?)
}

/// The audit entry a change by `official` writes with it.
fn entry(official: &Official, action: &'static str, subject: String) -> AuditEntry {
    AuditEntry { official_id: official.id, action, subject }
}

/// After a transition that did not apply: fine if the notice already got where the caller
/// wanted (a double click), a conflict otherwise.
async fn settled(store: &DynStore, id: i64, fine: &[&str]) -> Result<NoticeRow, ApiError> {
    let row = load(store, id).await?;
    if fine.contains(&row.state.as_str()) {
        Ok(row)
    } else {
        Err(ApiError::new(StatusCode::CONFLICT, "wrong_state", format!("notice {id} is {}; that cannot be done now", row.state)))
    }
}

pub async fn load(store: &DynStore, id: i64) -> Result<NoticeRow, ApiError> {
    store.notice(id).await?.ok_or_else(|| ApiError::not_found("notice"))
}

pub fn parse(notice: &NoticeRow) -> Result<NoticeSpec, ApiError> {
    serde_json::from_str(&notice.spec).map_err(ApiError::internal)
}

/// A unit enum variant as its serde name (`Alert`, `planned`).
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
