//! The sign-up request: its wire shape and its parsing into a `Signup`, with every wrong
//! field reported at once.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::{
    domain::{EmailAddress, Language, PhoneNumber, QuietHours, QuietHoursJson},
    http::error::FieldError,
    store::{NewContact, Signup},
};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// District slugs (see /api/v1/districts); at least one.
    #[serde(default)]
    #[schema(required = true, min_items = 1)]
    pub districts: Vec<String>,
    /// Interest slugs (see /api/v1/interests).
    #[serde(default)]
    pub interests: Vec<String>,
    /// `pl` (default), `en` or `uk`.
    #[schema(pattern = "^(pl|en|uk)$")]
    pub language: Option<String>,
    pub email: Option<String>,
    /// A mobile number; Polish numbers may omit +48.
    pub phone: Option<String>,
    /// The browser's PushSubscription, as `JSON.stringify` gives it.
    pub push: Option<PushJson>,
    /// Europe/Warsaw time, e.g. `{"from": "22:00", "to": "07:00"}`.
    pub quiet_hours: Option<QuietHoursJson>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct PushJson {
    pub endpoint: String,
    pub keys: PushKeys,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// What parsing needs from the configuration.
pub struct SignupRules<'a> {
    pub sms_countries: &'a [String],
    pub push_allow_local: bool,
}

pub fn parse(req: &SubscribeRequest, rules: &SignupRules<'_>) -> Result<Signup, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut wrong = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });
    if req.districts.is_empty() {
        wrong("districts", "choose at least one district".into());
    }
    let language = match req.language.as_deref() {
        None => Language::Pl,
        Some(l) => Language::parse(l).unwrap_or_else(|e| {
            wrong("language", e);
            Language::Pl
        }),
    };
    let quiet_hours = req.quiet_hours.as_ref().and_then(|q| QuietHours::parse(q).map_err(|(f, m)| wrong(f, m)).ok());
    let mut contacts = Vec::new();
    if let Some(email) = &req.email {
        match EmailAddress::parse(email) {
            Ok(e) => contacts.push(NewContact { channel: "email", address: e.as_str().into(), p256dh: None, auth: None }),
            Err(m) => wrong("email", m),
        }
    }
    if let Some(phone) = &req.phone {
        match PhoneNumber::parse(phone, rules.sms_countries) {
            Ok(p) => contacts.push(NewContact { channel: "sms", address: p.as_str().into(), p256dh: None, auth: None }),
            Err(m) => wrong("phone", m),
        }
    }
    if let Some(push) = &req.push {
        match parse_push(push, rules.push_allow_local) {
            Ok(c) => contacts.push(c),
            Err((f, m)) => wrong(f, m),
        }
    }
    if req.email.is_none() && req.phone.is_none() && req.push.is_none() {
        wrong("email", "give at least one contact: email, phone or push".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Signup { language, quiet_hours, districts: dedup(&req.districts), interests: dedup(&req.interests), contacts })
}

fn parse_push(push: &PushJson, allow_local: bool) -> Result<NewContact, (&'static str, String)> {
    crate::channels::check_push_endpoint(&push.endpoint, allow_local).map_err(|m| ("push.endpoint", m))?;
    let key = URL_SAFE_NO_PAD.decode(push.keys.p256dh.trim_end_matches('='));
    if !matches!(&key, Ok(k) if k.len() == 65 && k[0] == 4) {
        return Err(("push.keys.p256dh", "must be a base64url P-256 public key (65 bytes)".into()));
    }
    let auth = URL_SAFE_NO_PAD.decode(push.keys.auth.trim_end_matches('='));
    if !matches!(&auth, Ok(a) if a.len() == 16) {
        return Err(("push.keys.auth", "must be a base64url 16-byte secret".into()));
    }
    Ok(NewContact {
        channel: "push",
        address: push.endpoint.clone(),
        p256dh: Some(push.keys.p256dh.clone()),
        auth: Some(push.keys.auth.clone()),
    })
}

fn dedup(slugs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in slugs {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}
