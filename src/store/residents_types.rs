//! What the resident queries take and give.

use serde::Serialize;

use crate::domain::{Language, QuietHours};

/// A contact as a sign-up gives it, already parsed.
#[derive(Debug, Clone)]
pub struct NewContact {
    /// `email`, `sms` or `push`.
    pub channel: &'static str,
    /// Email, E.164 phone, or push endpoint.
    pub address: String,
    pub p256dh: Option<String>,
    pub auth: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Signup {
    pub language: Language,
    pub quiet_hours: Option<QuietHours>,
    pub districts: Vec<String>,
    pub interests: Vec<String>,
    pub contacts: Vec<NewContact>,
}

/// What happened to one contact of a sign-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupContact {
    pub contact_id: i64,
    pub channel: String,
    /// `pending`, `verified`, `unsubscribed` or `gone`.
    pub status: String,
    /// False when the address was known before this sign-up.
    pub new: bool,
}

/// Everything needed to send a contact its verification message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactTarget {
    pub contact_id: i64,
    pub subscriber_id: i64,
    pub public_id: String,
    pub channel: String,
    pub address: String,
    pub push_p256dh: Option<String>,
    pub push_auth: Option<String>,
    pub language: String,
    pub status: String,
}

/// The answer to an SMS code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    Verified { public_id: String, language: String },
    Wrong,
    /// No live code: never sent, expired, used, or out of tries.
    NoLiveCode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ContactView {
    pub channel: String,
    pub address: String,
    pub status: String,
}

/// A resident's choices, as the preferences page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Preferences {
    pub language: Language,
    pub quiet_hours: Option<crate::domain::QuietHoursJson>,
    pub districts: Vec<String>,
    pub interests: Vec<String>,
    pub contacts: Vec<ContactView>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriberState {
    Active(Preferences),
    Erased,
    Missing,
}

/// A change of preferences; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PreferencesUpdate {
    pub language: Option<Language>,
    pub quiet_hours: Option<Option<QuietHours>>,
    pub districts: Option<Vec<String>>,
    pub interests: Option<Vec<String>>,
    /// Channels to keep; verified contacts on other channels are unsubscribed.
    pub channels: Option<Vec<String>>,
}

/// An official, as a valid API token identifies them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Official {
    pub id: i64,
    pub email: String,
    pub role: String,
}

/// Who an audience reaches: residents of these districts (all of them when `all_interests`,
/// as Extreme and Severe alerts do; otherwise those following one of `interests`, or all when
/// none are named), on these channels, in these languages.
#[derive(Debug, Clone)]
pub struct AudienceQuery {
    pub districts: Vec<String>,
    pub interests: Vec<String>,
    pub all_interests: bool,
    pub channels: Vec<String>,
    pub languages: Vec<String>,
}

/// Verified contacts an audience reaches, by channel and language, and by district.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceCounts {
    pub by_channel_language: Vec<(String, String, i64)>,
    pub by_district: Vec<(String, i64)>,
    pub subscribers: i64,
}

/// One resident from a bulk import, with the evidence of their earlier consent.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub signup: Signup,
    pub public_id: String,
    /// Where and under which text they agreed, e.g. `import:KCK-phone-line-2025`.
    pub consent_version: String,
    /// When they agreed, ms since the epoch.
    pub consented_at: i64,
}

/// Limits on verification messages.
#[derive(Debug, Clone)]
pub struct SendLimits {
    /// No second message to an address within this many ms.
    pub min_gap_ms: i64,
    /// At most `per_address` messages to an address within `window_ms`.
    pub per_address: i64,
    pub window_ms: i64,
    /// For SMS: at most this many in `window_ms` across all numbers.
    pub channel_budget: Option<i64>,
}
