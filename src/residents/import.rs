//! Bulk import of residents from the city's existing information lines, as CSV with a header:
//!
//! `email,phone,districts,interests,language,consent_source,consented_at`
//!
//! Lists are separated by `;`. `consent_source` names where and under which text the resident
//! agreed; `consented_at` is a date (`2025-03-01`) or an RFC 3339 time. Every line is checked;
//! one bad line rejects the whole file, and the report lists every bad line with its reason.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate};
use serde::Serialize;

use super::{secrets, signup::SignupRules};
use crate::{
    domain::{EmailAddress, Language, PhoneNumber},
    store::{ImportRow, NewContact, Signup},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedLine {
    /// 1 is the header.
    pub line: u64,
    pub field: String,
    pub message: String,
}

const COLUMNS: [&str; 7] = ["email", "phone", "districts", "interests", "language", "consent_source", "consented_at"];

/// Parse the file. Slugs are checked against `districts` and `interests`.
pub fn parse(body: &[u8], rules: &SignupRules<'_>, districts: &[String], interests: &[String]) -> Result<Vec<ImportRow>, Vec<RejectedLine>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(body);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_lowercase()).collect(),
        Err(e) => return Err(vec![reject(1, "header", format!("cannot read the header: {e}"))]),
    };
    let index: HashMap<&str, usize> = COLUMNS.iter().filter_map(|c| header.iter().position(|h| h == c).map(|i| (*c, i))).collect();
    let missing: Vec<&str> = COLUMNS.iter().filter(|c| !index.contains_key(*c)).copied().collect();
    if !missing.is_empty() {
        return Err(vec![reject(1, "header", format!("missing columns: {}", missing.join(", ")))]);
    }
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (n, record) in reader.records().enumerate() {
        let line = n as u64 + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                rejected.push(reject(line, "line", format!("not a CSV line with {} columns: {e}", COLUMNS.len())));
                continue;
            }
        };
        let get = |c: &str| record.get(index[c]).unwrap_or("").to_owned();
        match parse_line(&get, rules, districts, interests) {
            Ok(row) => {
                let mut duplicate = false;
                for c in &row.signup.contacts {
                    if let Some(first) = seen.insert(format!("{}:{}", c.channel, c.address), line) {
                        rejected.push(reject(line, c.channel, format!("the same address is on line {first}")));
                        duplicate = true;
                    }
                }
                if !duplicate {
                    rows.push(row);
                }
            }
            Err((field, message)) => rejected.push(reject(line, field, message)),
        }
    }
    if rows.is_empty() && rejected.is_empty() {
        rejected.push(reject(1, "file", "the file has no lines after the header".into()));
    }
    if rejected.is_empty() { Ok(rows) } else { Err(rejected) }
}

fn parse_line(
    get: &dyn Fn(&str) -> String,
    rules: &SignupRules<'_>,
    known_districts: &[String],
    known_interests: &[String],
) -> Result<ImportRow, (&'static str, String)> {
    let mut contacts = Vec::new();
    let (email, phone) = (get("email"), get("phone"));
    if !email.is_empty() {
        let e = EmailAddress::parse(&email).map_err(|m| ("email", m))?;
        contacts.push(NewContact { channel: "email", address: e.as_str().into(), p256dh: None, auth: None });
    }
    if !phone.is_empty() {
        let p = PhoneNumber::parse(&phone, rules.sms_countries).map_err(|m| ("phone", m))?;
        contacts.push(NewContact { channel: "sms", address: p.as_str().into(), p256dh: None, auth: None });
    }
    if contacts.is_empty() {
        return Err(("email", "give an email or a phone".into()));
    }
    let districts = list(&get("districts"));
    if districts.is_empty() {
        return Err(("districts", "at least one district".into()));
    }
    if let Some(d) = districts.iter().find(|d| !known_districts.contains(d)) {
        return Err(("districts", format!("{d:?} is not a district")));
    }
    let interests = list(&get("interests"));
    if let Some(i) = interests.iter().find(|i| !known_interests.contains(i)) {
        return Err(("interests", format!("{i:?} is not an interest")));
    }
    let language = match get("language").as_str() {
        "" => Language::Pl,
        l => Language::parse(l).map_err(|m| ("language", m))?,
    };
    let source = get("consent_source");
    if source.is_empty() {
        return Err(("consent_source", "say where the resident agreed (evidence of consent)".into()));
    }
    let consented_at = parse_time(&get("consented_at")).ok_or(("consented_at", "must be a date like 2025-03-01 or an RFC 3339 time".to_string()))?;
    if consented_at > chrono::Utc::now().timestamp_millis() {
        return Err(("consented_at", "is in the future".into()));
    }
    Ok(ImportRow {
        signup: Signup { language, quiet_hours: None, districts, interests, contacts },
        public_id: secrets::random_token(16),
        consent_version: format!("import:{source}"),
        consented_at,
    })
}

fn list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in s.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis())
}

fn reject(line: u64, field: &str, message: String) -> RejectedLine {
    RejectedLine { line, field: field.into(), message }
}
