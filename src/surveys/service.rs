//! A survey's life: draft (edited freely) → publish (to an audience, at once, or after a
//! second official when `HEJNAL_APPROVAL_FOR_SURVEYS` asks) → published → closed. Each step
//! is one conditional update, so a double click changes a survey once, and writes its audit
//! entry in the same transaction. Publishing writes the invitation notice and its fan-out job
//! in that transaction too. Answering checks the
//! answers, then stores them with `store.save_responses`, the one place answers are written.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{answers::{self, AnswerError}, invite, spec::SurveySpec, view::Warning};
use crate::{
    http::error::ApiError,
    notices::{DeliverySettings, spec::{Audience, check_audience}},
    residents::{ResidentsCtx, secrets},
    store::{DynStore, InvitationNotice, InvitationRow, NewNotice, NewResponse, Official, Respondent, SavedResponse, SurveyAudit, SurveyDraft, SurveyPublish, SurveyRow, now_ms},
};

/// Check and store a new draft.
pub async fn create(store: &DynStore, official: &Official, mut spec: SurveySpec) -> Result<SurveyRow, ApiError> {
    spec.normalise();
    spec.check(Utc::now())?;
    let now = now_ms();
    let id = store.create_survey(&draft(&spec)?, audit(official, "surveys.create"), now).await?;
    load(store, id).await
}

/// Replace a draft (PUT).
pub async fn replace_draft(store: &DynStore, official: &Official, id: i64, mut spec: SurveySpec) -> Result<SurveyRow, ApiError> {
    let row = load(store, id).await?;
    unpublished(&row)?;
    spec.normalise();
    spec.check(Utc::now())?;
    let now = now_ms();
    match store.update_draft(id, &draft(&spec)?, audit(official, "surveys.edit"), now).await? {
        Some(row) => Ok(row),
        None => unpublished(&load(store, id).await?).map(|_| row),
    }
}

/// Change some fields of a draft (PATCH, a JSON merge patch, RFC 7396, on its request).
pub async fn patch_draft(store: &DynStore, official: &Official, id: i64, patch: &Value) -> Result<SurveyRow, ApiError> {
    let row = load(store, id).await?;
    unpublished(&row)?;
    let mut current: Value = serde_json::from_str(&row.spec).map_err(ApiError::internal)?;
    merge_patch(&mut current, patch);
    let spec: SurveySpec = serde_path_to_error::deserialize(current).map_err(|e| ApiError::field(&e.path().to_string(), e.into_inner().to_string()))?;
    replace_draft(store, official, id, spec).await
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn draft(spec: &SurveySpec) -> Result<SurveyDraft, ApiError> {
    Ok(SurveyDraft {
        kind: spec.kind.as_str().to_owned(),
        slug: spec.slug.clone(),
        spec: serde_json::to_string(spec).map_err(ApiError::internal)?,
        opens_at: spec.opens_at.map(|t| t.timestamp_millis()),
        closes_at: spec.closes_at.map(|t| t.timestamp_millis()),
    })
}

/// A published survey's questions never change: a new version is a new survey.
fn unpublished(row: &SurveyRow) -> Result<(), ApiError> {
    if row.state == "draft" {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::CONFLICT, "survey_published", format!(
            "survey {} is {}: its questions can no longer change; create a new survey for a new version", row.id, row.state)))
    }
}

/// Publish a draft to `audience` (and to anyone at `/s/open/{slug}` when it has a slug).
pub async fn publish(store: &DynStore, settings: &DeliverySettings, official: &Official, id: i64, audience: Option<Audience>) -> Result<SurveyRow, ApiError> {
    let row = load(store, id).await?;
    if row.state != "draft" {
        return settled(store, id, &["pending", "published"]).await;
    }
    let spec = parse(&row)?;
    spec.check(Utc::now())?;
    match &audience {
        Some(a) => check_known_audience(store, a).await?,
        None if spec.slug.is_none() => {
            return Err(ApiError::field("audience", "give an audience to invite, or a slug so that anyone may answer at /s/open/{slug}"));
        }
        None => {}
    }
    let audience_json = audience.as_ref().map(serde_json::to_string).transpose().map_err(ApiError::internal)?;
    let now = now_ms();
    let publish = if settings.approval_for_surveys {
        SurveyPublish { from: &["draft"], to: "pending", audience: audience_json, opens_at: opens_at(&spec, now), approver_id: None, notice: None }
    } else {
        going_out(&spec, official.id, audience.as_ref(), audience_json, None, &["draft"], now)?
    };
    let action = if publish.to == "pending" { "surveys.submit" } else { "surveys.publish" };
    match store.publish_survey(id, &publish, audit(official, action), now).await? {
        Some(row) => Ok(row),
        None => settled(store, id, &["pending", "published"]).await,
    }
}

/// A sender that can receive replies: a phone number or short code (digits, a leading `+`),
/// not an alphanumeric name.
pub fn sender_takes_replies(sender: &str) -> bool {
    let digits = sender.strip_prefix('+').unwrap_or(sender);
    (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// What to tell the official publishing `row` with these SMS senders (one per SMS provider:
/// with failover, any of them may carry the invitation).
pub fn publish_warnings(row: &SurveyRow, sms_senders: &[&str]) -> Vec<Warning> {
    let audience: Option<Audience> = row.audience.as_deref().and_then(|a| serde_json::from_str(a).ok());
    let by_sms = audience.is_some_and(|a| a.channels.iter().any(|c| c == "sms"));
    let names: Vec<String> = sms_senders.iter().filter(|s| !sender_takes_replies(s)).map(|s| format!("{s:?}")).collect();
    if row.kind != "poll" || !by_sms || names.is_empty() {
        return vec![];
    }
    vec![Warning {
        code: "sms_sender_not_a_number",
        message: format!(
            "the SMS sender {} (HEJNAL_SMS_SENDER, or an SMS provider's sender) is a name, not a number: residents cannot reply \
             to it, so this poll can only be answered through the link in the SMS",
            names.join(", ")),
    }]
}

/// The second official's approval, when `HEJNAL_APPROVAL_FOR_SURVEYS` asks for one.
pub async fn approve(store: &DynStore, official: &Official, id: i64) -> Result<SurveyRow, ApiError> {
    let row = load(store, id).await?;
    if row.author_id == official.id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "self_approval", "a survey must be approved by someone other than its author"));
    }
    if row.state != "pending" {
        return settled(store, id, &["published"]).await;
    }
    let spec = parse(&row)?;
    let audience: Option<Audience> = row.audience.as_deref().map(serde_json::from_str).transpose().map_err(ApiError::internal)?;
    let now = now_ms();
    let publish = going_out(&spec, row.author_id, audience.as_ref(), row.audience.clone(), Some(official.id), &["pending"], now)?;
    match store.publish_survey(id, &publish, audit(official, "surveys.approve"), now).await? {
        Some(row) => Ok(row),
        None => settled(store, id, &["published"]).await,
    }
}

fn opens_at(spec: &SurveySpec, now: i64) -> i64 {
    spec.opens_at.map_or(now, |t| t.timestamp_millis())
}

/// The survey published now, with its invitation notice (scheduled for `opens_at` when that
/// is still ahead).
fn going_out(spec: &SurveySpec, author_id: i64, audience: Option<&Audience>, audience_json: Option<String>, approver: Option<i64>, from: &'static [&'static str], now: i64) -> Result<SurveyPublish, ApiError> {
    let opens = opens_at(spec, now);
    let later = (opens > now).then(|| DateTime::<Utc>::from_timestamp_millis(opens)).flatten();
    let notice = match audience {
        Some(a) => {
            let n = invite::notice_spec(spec, a, later);
            Some(InvitationNotice {
                notice: NewNotice {
                    kind: "survey".into(),
                    msg_type: "Alert".into(),
                    status: "Actual".into(),
                    severity: "Minor".into(),
                    references_id: None,
                    root_id: None,
                    spec: serde_json::to_string(&n).map_err(ApiError::internal)?,
                    lane: hejnal_jobs::Lane::Routine.as_str().to_owned(),
                    send_at: later.map(|_| opens),
                    expires_at: spec.closes_at.map(|t| t.timestamp_millis()),
                    author_id,
                    template_id: None,
                    idempotency_key: None,
                },
                state: if later.is_some() { "scheduled" } else { "published" },
                lane: hejnal_jobs::Lane::Routine,
                delay_ms: opens - now,
            })
        }
        None => None,
    };
    Ok(SurveyPublish { from, to: "published", audience: audience_json, opens_at: opens, approver_id: approver, notice })
}

async fn check_known_audience(store: &DynStore, a: &Audience) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    check_audience(a, &mut |field: &str, message: &str| {
        errors.push(crate::http::error::FieldError { field: field.into(), message: message.into() })
    });
    errors.extend(crate::notices::service::unknown_audience(store, a).await?);
    if errors.is_empty() { Ok(()) } else { Err(ApiError::from_fields(errors)) }
}

/// Close a published survey: no more answers; invitations not yet sent are cancelled.
pub async fn close(store: &DynStore, official: &Official, id: i64) -> Result<SurveyRow, ApiError> {
    load(store, id).await?;
    let now = now_ms();
    match store.close_survey(id, audit(official, "surveys.close"), now).await? {
        Some(row) => Ok(row),
        None => settled(store, id, &["closed"]).await,
    }
}

/// The audit entry the store writes with `official`'s change.
fn audit(official: &Official, action: &'static str) -> SurveyAudit {
    SurveyAudit { official_id: official.id, action }
}

/// After a step that did not apply: fine if the survey already got there (a double click).
async fn settled(store: &DynStore, id: i64, fine: &[&str]) -> Result<SurveyRow, ApiError> {
    let row = load(store, id).await?;
    if fine.contains(&row.state.as_str()) {
        Ok(row)
    } else {
        Err(ApiError::new(StatusCode::CONFLICT, "wrong_state", format!("survey {id} is {}; that cannot be done now", row.state)))
    }
}

pub async fn load(store: &DynStore, id: i64) -> Result<SurveyRow, ApiError> {
    store.survey(id).await?.ok_or_else(|| ApiError::not_found("survey"))
}

pub fn parse(row: &SurveyRow) -> Result<SurveySpec, ApiError> {
    serde_json::from_str(&row.spec).map_err(ApiError::internal)
}

/// Why a survey takes no answers now, or Ok.
pub fn accepting(row: &SurveyRow, now: i64) -> Result<(), ApiError> {
    let when = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.to_rfc3339()).unwrap_or_default();
    let closed = |at: i64| ApiError::new(StatusCode::CONFLICT, "survey_closed", format!("this survey closed at {}; answers are no longer accepted", when(at)));
    match row.state.as_str() {
        "published" => {}
        "closed" => return Err(closed(row.closed_at.unwrap_or(now))),
        _ => return Err(ApiError::not_found("survey")),
    }
    if let Some(opens) = row.opens_at.filter(|o| *o > now) {
        return Err(ApiError::new(StatusCode::CONFLICT, "survey_not_open", format!("this survey opens at {}; answers are accepted from then", when(opens))));
    }
    match row.closes_at.filter(|c| *c <= now) {
        Some(at) => Err(closed(at)),
        None => Ok(()),
    }
}

/// An invitation link's invitation and survey. A forged or unknown link: 404; a resident
/// who erased their data: 410.
pub async fn invitation(residents: &ResidentsCtx, token: &str) -> Result<(InvitationRow, SurveyRow), ApiError> {
    let id = residents.links.open_invitation(token).ok_or_else(|| ApiError::not_found("this link"))?;
    let inv = residents.store.invitation(id).await?.ok_or_else(|| ApiError::not_found("this link"))?;
    if inv.erased_at.is_some() {
        return Err(ApiError::gone("this resident's data was erased"));
    }
    let survey = load(&residents.store, inv.survey_id).await?;
    Ok((inv, survey))
}

/// A survey as the answering API reads it: a published or closed one may come from the
/// cache (see `cache.rs`).
pub async fn load_for_answer(residents: &ResidentsCtx, id: i64) -> Result<super::cache::Answerable, ApiError> {
    residents.surveys.get(&residents.store, id).await?.ok_or_else(|| ApiError::not_found("survey"))
}

/// An open survey by its slug; drafts are not public.
pub async fn open_survey(store: &DynStore, slug: &str) -> Result<SurveyRow, ApiError> {
    match store.survey_by_slug(slug).await? {
        Some(row) if row.state == "published" || row.state == "closed" => Ok(row),
        _ => Err(ApiError::not_found("survey")),
    }
}

/// A browser's token (from its cookie or the API), checked; what is stored is its digest.
pub fn browser_respondent(token: &str) -> Result<Respondent, ApiError> {
    let ok = (16..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(Respondent::Browser(secrets::digest(token))) } else { Err(ApiError::field("browser_token", "must be 16 to 64 characters of A-Z, a-z, 0-9, - and _")) }
}

/// Why an answer was not stored.
#[derive(Debug)]
pub enum Refused {
    /// The answers do not fit the questions: one error per question.
    Invalid(Vec<AnswerError>),
    Other(ApiError),
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::Other(e)
    }
}

impl From<crate::store::StoreError> for Refused {
    fn from(e: crate::store::StoreError) -> Self {
        Refused::Other(e.into())
    }
}

impl Refused {
    /// As the API answers: 422 naming `answers.{question}` for each problem.
    pub fn into_api(self) -> ApiError {
        match self {
            Refused::Other(e) => e,
            Refused::Invalid(errors) => ApiError::from_fields(
                errors.iter().map(|e| crate::http::error::FieldError { field: format!("answers.{}", e.question), message: e.message() }).collect(),
            ),
        }
    }
}

/// Check `given` against the survey and store it for `respondent`, replacing an earlier
/// answer. Stored (durably, committed, by the group commit of `batcher.rs`) before this
/// returns. An invitation need not have been read: the commit checks that it is to this
/// survey and not erased.
/// `spec` is the survey's parsed questions (the caller has them: cache or form).
pub async fn answer(residents: &ResidentsCtx, survey: &SurveyRow, spec: &SurveySpec, respondent: Respondent, given: &Map<String, Value>, client: Option<std::net::IpAddr>) -> Result<(SavedResponse, Map<String, Value>), Refused> {
    let now = now_ms();
    accepting(survey, now)?;
    let clean = answers::check(spec, given).map_err(Refused::Invalid)?;
    // Only open answers need the address, to flag several from one place.
    let ip_digest = match (&respondent, client) {
        (Respondent::Browser(_), Some(ip)) => Some(residents.links.keyed("ip", &format!("{}:{ip}", survey.id))),
        _ => None,
    };
    let response = NewResponse { survey_id: survey.id, respondent: respondent.clone(), answers: serde_json::to_string(&clean).expect("a map of JSON values always serialises"), ip_digest, at: now };
    // Stored by the next group commit; this returns after it.
    match residents.answers.save(response).await? {
        Some(saved) => Ok((saved, clean)),
        None => Err(why_not_stored(residents, survey.id, &respondent).await.into()),
    }
}

/// Why `save_responses` dropped an answer, from fresh reads: the survey closed meanwhile, or
/// the invitation was erased or belongs to another survey.
async fn why_not_stored(residents: &ResidentsCtx, survey_id: i64, respondent: &Respondent) -> ApiError {
    let survey = match load(&residents.store, survey_id).await {
        Ok(row) => row,
        Err(e) => return e,
    };
    if let Err(e) = accepting(&survey, now_ms()) {
        return e;
    }
    if let Respondent::Invitation(id) = respondent {
        match residents.store.invitation(*id).await {
            Ok(Some(inv)) if inv.erased_at.is_some() => return ApiError::gone("this resident's data was erased"),
            Ok(Some(inv)) if inv.survey_id != survey_id => return ApiError::field("token", "this invitation is for another survey"),
            Ok(None) => return ApiError::not_found("this link"),
            Err(e) => return e.into(),
            Ok(Some(_)) => {}
        }
    }
    ApiError::internal("an answer was not stored")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_number_or_short_code_takes_replies() {
        for yes in ["+48600100200", "48600100200", "8080", "+4712"] {
            assert!(sender_takes_replies(yes), "{yes}");
        }
        for no in ["KRAKOW", "UM Krakow", "+48 600", "", "12", "+", "1234567890123456"] {
            assert!(!sender_takes_replies(no), "{no}");
        }
    }

    #[test]
    fn a_merge_patch_replaces_removes_and_merges() {
        let mut v = json!({"title": {"pl": "A", "en": "B"}, "slug": "x", "questions": [1]});
        merge_patch(&mut v, &json!({"title": {"en": null, "uk": "C"}, "slug": null, "questions": [2]}));
        assert_eq!(v, json!({"title": {"pl": "A", "uk": "C"}, "questions": [2]}));
    }
}
