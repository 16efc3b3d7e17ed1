//! What an official writes: a notice shaped after CAP 1.2, parsed and checked into a
//! [`NoticeSpec`]. Every refusal names its field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, FieldError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Alert,
    Planned,
    Info,
    /// The invitations of a survey; made only by publishing one (`crate::surveys`).
    Survey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MsgType {
    Alert,
    Update,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Status {
    Actual,
    Exercise,
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Severity {
    Extreme,
    Severe,
    Moderate,
    Minor,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Urgency {
    Immediate,
    Expected,
    Future,
    Past,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Certainty {
    Observed,
    Likely,
    Possible,
    Unlikely,
    Unknown,
}

impl Severity {
    /// Extreme and Severe reach the whole district whatever the interests, override quiet
    /// hours and travel in the emergency lane.
    pub fn is_urgent(self) -> bool {
        matches!(self, Severity::Extreme | Severity::Severe)
    }
}

/// One language's text, with optional overrides per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeText {
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    /// Shown as HTML in the email; scripts, event handlers and `javascript:` links are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    pub districts: Vec<String>,
    #[serde(default)]
    pub interests: Vec<String>,
    pub channels: Vec<String>,
}

/// The period of a planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The request body of `POST /api/v1/notices` and of notice templates; kept whole with the notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeSpec {
    pub kind: Kind,
    pub msg_type: MsgType,
    pub status: Status,
    pub severity: Severity,
    pub urgency: Urgency,
    pub certainty: Certainty,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<DateTime<Utc>>,
    /// Nothing is sent after this; undelivered messages are marked expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// The notice an Update or Cancel changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<i64>,
    /// Per language (`pl`, `en`, `uk`); Polish is required, the fallback for everyone.
    pub texts: BTreeMap<String, NoticeText>,
    /// Required for an Alert; an Update or Cancel goes to whoever received the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
    /// SMS: write Polish letters as ASCII (default from `HEJNAL_SMS_TRANSLITERATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transliterate: Option<bool>,
}

const SMS_MAX_CHARS: usize = 1000;
const TITLE_MAX_CHARS: usize = 200;
const BODY_MAX_CHARS: usize = 10_000;

impl NoticeSpec {
    /// Checks that need no database: every problem found, each named by its field.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: &str| errors.push(FieldError { field: field.into(), message: message.into() });
        if self.kind == Kind::Survey {
            fail("kind", "survey invitations are sent by publishing the survey: POST /api/v1/surveys/{id}/publish");
        }
        match (self.msg_type, self.references) {
            (MsgType::Alert, Some(_)) => fail("references", "an Alert references nothing; use msg_type Update or Cancel"),
            (MsgType::Update | MsgType::Cancel, None) => fail("references", "an Update or Cancel must name the notice it changes"),
            _ => {}
        }
        match (&self.audience, self.msg_type) {
            (None, MsgType::Alert) => fail("audience", "an Alert needs an audience"),
            (Some(a), _) => check_audience(a, &mut fail),
            _ => {}
        }
        if !self.texts.contains_key("pl") {
            fail("texts.pl", "a Polish text is required: it is the fallback for every resident");
        }
        for (lang, text) in &self.texts {
            if !["pl", "en", "uk"].contains(&lang.as_str()) {
                fail(&format!("texts.{lang}"), "languages are pl, en and uk");
            }
            check_text(lang, text, &mut fail);
        }
        if let Some(expires) = self.expires {
            if expires <= now {
                fail("expires", "must be in the future");
            }
            if self.effective.is_some_and(|e| e >= expires) {
                fail("expires", "must be after effective");
            }
            if self.send_at.is_some_and(|s| s >= expires) {
                fail("send_at", "must be before expires");
            }
        }
        if let Some(p) = &self.period
            && p.to <= p.from
        {
            fail("period.to", "must be after period.from");
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::from_fields(errors)) }
    }

    /// The lane its work travels in by its own severity (a correction also inherits the
    /// emergency lane of what it corrects; see `service`).
    pub fn lane(&self) -> hejnal_jobs::Lane {
        if self.severity.is_urgent() {
            hejnal_jobs::Lane::Emergency
        } else {
            hejnal_jobs::Lane::Routine
        }
    }

    /// The text for a language, falling back to Polish.
    pub fn text(&self, lang: &str) -> &NoticeText {
        self.texts.get(lang).or_else(|| self.texts.get("pl")).expect("checked: a Polish text exists")
    }
}

pub fn check_audience(a: &Audience, fail: &mut impl FnMut(&str, &str)) {
    if a.districts.is_empty() {
        fail("audience.districts", "name at least one district");
    }
    if a.channels.is_empty() {
        fail("audience.channels", "name at least one of sms, email, push");
    }
    for (i, c) in a.channels.iter().enumerate() {
        if !["sms", "email", "push"].contains(&c.as_str()) {
            fail(&format!("audience.channels[{i}]"), "must be sms, email or push");
        }
    }
}

fn check_text(lang: &str, t: &NoticeText, fail: &mut impl FnMut(&str, &str)) {
    let field = |name: &str| format!("texts.{lang}.{name}");
    let too_long = |s: &str, max: usize| s.chars().count() > max;
    if t.title.trim().is_empty() {
        fail(&field("title"), "must not be empty");
    } else if too_long(&t.title, TITLE_MAX_CHARS) {
        fail(&field("title"), "must be at most 200 characters");
    }
    if t.body.trim().is_empty() {
        fail(&field("body"), "must not be empty");
    } else if too_long(&t.body, BODY_MAX_CHARS) {
        fail(&field("body"), "must be at most 10000 characters");
    }
    if t.sms.as_deref().is_some_and(|s| s.trim().is_empty() || too_long(s, SMS_MAX_CHARS)) {
        fail(&field("sms"), "must be 1 to 1000 characters");
    }
    for (name, v) in [("push_title", &t.push_title), ("email_subject", &t.email_subject)] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty() || too_long(s, TITLE_MAX_CHARS)) {
            fail(&field(name), "must be 1 to 200 characters");
        }
    }
    // Header values must be one line: a CR or LF would let text inject headers.
    for (name, v) in [("title", Some(&t.title)), ("email_subject", t.email_subject.as_ref()), ("push_title", t.push_title.as_ref())] {
        if v.is_some_and(|s| s.contains(['\r', '\n'])) {
            fail(&field(name), "must be one line");
        }
    }
    if let Some(html) = &t.email_html {
        let lower = html.to_ascii_lowercase();
        if lower.contains("<script") || lower.contains("javascript:") || has_event_handler(&lower) {
            fail(&field("email_html"), "must not contain scripts, event handlers or javascript: links");
        }
    }
}

/// ` onclick=`, ` onload =` and the like inside a tag.
fn has_event_handler(lower: &str) -> bool {
    lower.match_indices(" on").any(|(i, _)| {
        let rest = &lower[i + 3..];
        let name_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        name_len > 0 && rest[name_len..].trim_start().starts_with('=')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> NoticeSpec {
        serde_json::from_value(serde_json::json!({
            "kind": "alert", "msg_type": "Alert", "status": "Actual", "severity": "Severe",
            "urgency": "Immediate", "certainty": "Observed",
            "texts": {"pl": {"title": "Awaria", "body": "Brak wody"}},
            "audience": {"districts": ["podgorze"], "interests": ["water"], "channels": ["sms", "email", "push"]}
        }))
        .unwrap()
    }

    #[test]
    fn the_minimal_body_of_the_issue_is_accepted() {
        let spec = minimal();
        spec.check(Utc::now()).unwrap();
        assert_eq!(spec.lane(), hejnal_jobs::Lane::Emergency);
    }

    #[test]
    fn an_update_without_references_and_a_past_expiry_are_both_named() {
        let mut spec = minimal();
        spec.msg_type = MsgType::Update;
        spec.expires = Some(Utc::now() - chrono::Duration::minutes(1));
        let body = serde_json::to_value(spec.check(Utc::now()).unwrap_err().body().clone()).unwrap();
        let fields: Vec<&str> = body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["references", "expires"]);
    }

    #[test]
    fn polish_is_required_and_html_may_not_script() {
        let mut spec = minimal();
        let mut en = spec.texts.remove("pl").unwrap();
        en.email_html = Some("<p onclick = \"x()\">hi</p>".into());
        spec.texts.insert("en".into(), en);
        let body = serde_json::to_value(spec.check(Utc::now()).unwrap_err().body().clone()).unwrap();
        let fields: Vec<&str> = body["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["texts.pl", "texts.en.email_html"]);
    }

    #[test]
    fn a_minor_planned_notice_is_routine() {
        let mut spec = minimal();
        spec.kind = Kind::Planned;
        spec.severity = Severity::Minor;
        assert_eq!(spec.lane(), hejnal_jobs::Lane::Routine);
    }
}
