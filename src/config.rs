//! Configuration: embedded defaults, then an optional TOML file (`HEJNAL_CONFIG`, or
//! `hejnal.toml` when present), then `HEJNAL_*` environment variables (and `DATABASE_URL`).
//! Keys are flat so that each has exactly one environment name. A wrong setting stops the
//! process at start with one line naming the key.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

use hejnal_jobs::{QueueConfig, broker::redact};

use crate::channels::ChannelSettings;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub public_url: Option<String>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub queue_url: String,
    pub queue_prefix: String,
    pub queue_max_ready: u32,
    pub queue_heartbeat_secs: u64,
    pub queue_orphan_after_secs: u64,
    pub queue_redeliver_after_secs: u64,
    pub queue_poll_ms: u64,
    pub queue_idle_poll_ms: u64,
    pub emergency_concurrency: usize,
    pub routine_concurrency: usize,
    pub shutdown_timeout_secs: u64,
    pub migrate_on_start: bool,
    pub log_format: String,
    pub log_level: String,
    // Channels (see `crate::channels::ChannelSettings`).
    pub environment: String,
    pub sms_provider: Option<String>,
    pub sms_url: Option<String>,
    pub sms_token: Option<String>,
    pub sms_sender: Option<String>,
    pub sms_name: Option<String>,
    pub sms_weight: u32,
    pub sms_timeout_ms: Option<u64>,
    /// More SMS providers (`[[sms_providers]]` in the file); `HEJNAL_SMS_*` is the first.
    pub sms_providers: Vec<crate::channels::settings::SmsProviderEntry>,
    pub sms_failover_restore_secs: u64,
    pub smtp_url: Option<String>,
    pub email_from: Option<String>,
    pub dkim_selector: Option<String>,
    pub dkim_key_file: Option<String>,
    pub dkim_domain: Option<String>,
    pub vapid_private_key: Option<String>,
    pub vapid_subject: Option<String>,
    pub push_allow_local: bool,
    pub provider_timeout_ms: u64,
    pub email_timeout_ms: Option<u64>,
    pub push_timeout_ms: Option<u64>,
    pub sms_rate: Option<u32>,
    pub sms_concurrency: usize,
    pub email_rate: Option<u32>,
    pub email_concurrency: usize,
    pub push_rate: Option<u32>,
    pub push_concurrency: usize,
    pub emergency_reserve_percent: u8,
    // Residents.
    /// ISO codes of the countries whose phone numbers are accepted, comma-separated.
    pub sms_countries: String,
    /// Verification SMS the city pays for in 24 hours, across all numbers (anti-pumping).
    pub sms_daily_budget: u32,
    pub public_rate_per_minute: u32,
    pub public_rate_burst: u32,
    /// Consultation comments per hour per client address (also the burst).
    pub comment_rate_per_hour: u32,
    /// Milliseconds at least before a public endpoint that takes a contact answers (0: none).
    pub contact_answer_floor_ms: u64,
    /// Survey answer commits running at once (group commit); 0: 1 on SQLite, 2 on PostgreSQL.
    pub answer_commits: u32,
    /// Microseconds at least between the starts of two answer commits; 0: each starts at once.
    pub answer_commit_period_us: u64,
    /// Keep idle cores from sleeping while HTTP requests come in a burst (`cores_awake`).
    pub keep_cores_awake: bool,
    /// Niceness the HTTP processes ask for, -20..=0: below 0, a larger share of the CPU
    /// (`cpu_priority`); 0 leaves the priority the process was started with.
    pub nice: i32,
    /// Key of residents' preferences links; generated and kept in the database when unset.
    pub secret_key: Option<String>,
    /// Shared secret the SMS provider sends (`Authorization: Bearer …`) with inbound replies.
    pub sms_inbound_secret: Option<String>,
    /// Days an officials' API token lives unless `tokens create --days` says otherwise.
    pub token_ttl_days: u32,
    // Notices and deliveries (see `crate::notices::DeliverySettings`).
    /// Planned and info notices also need a second official (Actual alerts always do).
    pub approval_for_routine: bool,
    /// Publishing a survey also needs a second official.
    pub approval_for_surveys: bool,
    /// How long a worker holds a delivery it is sending before another may take it up.
    pub delivery_lease_secs: u64,
    /// Deliveries left pending this long are queued again by the sweeper.
    pub delivery_grace_emergency_secs: u64,
    pub delivery_grace_routine_secs: u64,
    /// How often each worker process's sweeper looks for deliveries past their grace period.
    pub delivery_sweep_ms: u64,
    /// Deliveries per job.
    pub delivery_batch: u32,
    /// Write Polish letters in SMS as plain ASCII (GSM-7: 160 characters a segment, not 70).
    pub sms_transliterate: bool,
    /// Tests only: shift the scheduler's clock of this process (refused in production).
    pub clock_offset_ms: i64,
}

impl Default for Settings {
    fn default() -> Self {
        let queue = QueueConfig::default();
        let channels = ChannelSettings::default();
        Settings {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            database_url: "sqlite://data/hejnal.db".into(),
            database_max_connections: 10,
            queue_url: queue.url,
            queue_prefix: queue.prefix,
            queue_max_ready: queue.max_ready,
            queue_heartbeat_secs: queue.heartbeat.as_secs(),
            queue_orphan_after_secs: queue.orphan_after.as_secs(),
            queue_redeliver_after_secs: queue.redeliver_after.as_secs(),
            queue_poll_ms: queue.poll_interval.as_millis() as u64,
            queue_idle_poll_ms: queue.idle_poll_interval.as_millis() as u64,
            emergency_concurrency: queue.emergency_concurrency,
            // 0: by store, see `routine_jobs_at_once`.
            routine_concurrency: 0,
            shutdown_timeout_secs: queue.shutdown_timeout.as_secs(),
            migrate_on_start: true,
            log_format: "text".into(),
            log_level: "info".into(),
            environment: "development".into(),
            sms_provider: None,
            sms_url: None,
            sms_token: None,
            sms_sender: None,
            sms_name: None,
            sms_weight: channels.sms_weight,
            sms_timeout_ms: None,
            sms_providers: Vec::new(),
            sms_failover_restore_secs: channels.sms_failover_restore_secs,
            smtp_url: None,
            email_from: None,
            dkim_selector: None,
            dkim_key_file: None,
            dkim_domain: None,
            vapid_private_key: None,
            vapid_subject: None,
            push_allow_local: false,
            provider_timeout_ms: channels.provider_timeout_ms,
            email_timeout_ms: None,
            push_timeout_ms: None,
            sms_rate: channels.sms_rate,
            sms_concurrency: channels.sms_concurrency,
            email_rate: channels.email_rate,
            email_concurrency: channels.email_concurrency,
            push_rate: channels.push_rate,
            push_concurrency: channels.push_concurrency,
            emergency_reserve_percent: channels.emergency_reserve_percent,
            sms_countries: "PL".into(),
            sms_daily_budget: 1000,
            public_rate_per_minute: 60,
            public_rate_burst: 20,
            comment_rate_per_hour: 10,
            contact_answer_floor_ms: 100,
            answer_commits: 0,
            answer_commit_period_us: 1000,
            keep_cores_awake: true,
            nice: -10,
            secret_key: None,
            sms_inbound_secret: None,
            token_ttl_days: 90,
            approval_for_routine: true,
            approval_for_surveys: false,
            delivery_lease_secs: 30,
            delivery_grace_emergency_secs: 120,
            delivery_grace_routine_secs: 3600,
            delivery_sweep_ms: 5000,
            delivery_batch: 500,
            sms_transliterate: false,
            clock_offset_ms: 0,
        }
    }
}

/// Checked configuration, ready to use.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: url::Url,
    pub database_url: String,
    pub database_max_connections: u32,
    pub queue: QueueConfig,
    pub migrate_on_start: bool,
    pub log_json: bool,
    pub log_level: String,
    pub channels: ChannelSettings,
    pub sms_countries: Vec<String>,
    pub sms_daily_budget: u32,
    pub public_rate_per_minute: u32,
    pub public_rate_burst: u32,
    /// Consultation comments per hour per client address (also the burst).
    pub comment_rate_per_hour: u32,
    /// Sign-up, resend and SMS code answers come no sooner than this after the request
    /// (`http::even_time`), so their timing does not tell whether a contact is known.
    pub contact_answer_floor: Duration,
    /// Survey answer commits running at once (group commit); 0: 1 on SQLite, 2 on PostgreSQL.
    pub answer_commits: u32,
    /// Answer commits start at least this far apart (`surveys::batcher::Pacing`).
    pub answer_commit_period: Duration,
    /// Keep idle cores from sleeping while HTTP requests come in a burst (`cores_awake`).
    pub keep_cores_awake: bool,
    /// Niceness the HTTP processes ask for (`cpu_priority`); 0: as started.
    pub nice: i32,
    pub secret_key: Option<String>,
    pub sms_inbound_secret: Option<String>,
    pub token_ttl_days: u32,
    pub delivery: crate::notices::DeliverySettings,
}

/// A setting that is wrong: its environment name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The environment name of a key, which is what operators see and set.
pub fn env_name(key: &str) -> String {
    match key {
        "database_url" => "DATABASE_URL".into(),
        other => format!("HEJNAL_{}", other.to_ascii_uppercase()),
    }
}

/// The longest floor a contact's answer may be held to (5 s): past it a resident waits too long.
const MAX_CONTACT_ANSWER_FLOOR_MS: u64 = 5_000;

/// An answer may wait this long for its commit to start, at most (0.1 s).
const MAX_ANSWER_COMMIT_PERIOD_US: u64 = 100_000;

fn wrong(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: env_name(key), reason: reason.into() }
}

impl Config {
    /// Read defaults, the file and the environment of this process.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var_os("HEJNAL_CONFIG").map(PathBuf::from);
        if let Some(path) = &file
            && !path.exists()
        {
            return Err(ConfigError { key: "HEJNAL_CONFIG".into(), reason: format!("file {} does not exist", path.display()) });
        }
        let file = file.unwrap_or_else(|| PathBuf::from("hejnal.toml"));
        let figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(
                // HEJNAL_TEST_* belong to the test suite, not to the service.
                Env::prefixed("HEJNAL_").filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    k != "config" && !k.starts_with("test_")
                }),
            )
            .merge(Env::raw().only(&["DATABASE_URL"]));
        let settings: Settings = figment.extract().map_err(|e| {
            let key = e.path.first().cloned().unwrap_or_else(|| "config".into());
            let reason = match &e.kind {
                figment::error::Kind::UnknownField(field, _) => format!("{} is not a setting", env_name(field)),
                kind => kind.to_string(),
            };
            match &e.kind {
                figment::error::Kind::UnknownField(..) => ConfigError { key: "HEJNAL_*".into(), reason },
                _ => wrong(&key, reason),
            }
        })?;
        Config::from_settings(settings)
    }

    /// Check every setting; the first wrong one is reported.
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let listen: SocketAddr = s
            .listen
            .parse()
            .map_err(|_| wrong("listen", format!("{:?} is not an address like 127.0.0.1:8080", s.listen)))?;
        let public_url = match &s.public_url {
            Some(raw) => parse_public_url(raw)?,
            None => parse_public_url(&format!("http://{listen}"))?,
        };
        check_scheme("database_url", &s.database_url, &["sqlite:", "postgres:", "postgresql:"])?;
        check_scheme("queue_url", &s.queue_url, &["sqlite:", "redis:", "rediss:"])?;
        if s.queue_prefix.is_empty()
            || !s.queue_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        {
            return Err(wrong("queue_prefix", "must be letters, digits, '-', '_', ':' or '.', and not empty"));
        }
        positive("database_max_connections", s.database_max_connections as u64)?;
        positive("queue_max_ready", s.queue_max_ready as u64)?;
        if s.queue_max_ready > 5000 {
            return Err(wrong("queue_max_ready", "must be at most 5000: apalis-redis fails near 8,000 due tasks"));
        }
        positive("queue_heartbeat_secs", s.queue_heartbeat_secs)?;
        if s.queue_orphan_after_secs < 2 * s.queue_heartbeat_secs {
            return Err(wrong("queue_orphan_after_secs", "must be at least twice HEJNAL_QUEUE_HEARTBEAT_SECS"));
        }
        positive("queue_redeliver_after_secs", s.queue_redeliver_after_secs)?;
        positive("queue_poll_ms", s.queue_poll_ms)?;
        if s.queue_idle_poll_ms < s.queue_poll_ms {
            return Err(wrong("queue_idle_poll_ms", "must be at least HEJNAL_QUEUE_POLL_MS: an idle worker asks less often than a busy one, never more"));
        }
        positive("emergency_concurrency", s.emergency_concurrency as u64)?;
        let log_json = match s.log_format.as_str() {
            "text" => false,
            "json" => true,
            other => return Err(wrong("log_format", format!("{other:?} is not one of text, json"))),
        };
        if s.clock_offset_ms != 0 && s.environment == "production" {
            return Err(wrong("clock_offset_ms", "is for tests only and must be 0 in production"));
        }
        let channels = channel_settings(&s)?;
        let sms_countries: Vec<String> = s.sms_countries.split(',').map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty()).collect();
        if sms_countries.is_empty() || sms_countries.iter().any(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic())) {
            return Err(wrong("sms_countries", "must be two-letter country codes separated by commas, e.g. PL,UA"));
        }
        positive("sms_daily_budget", s.sms_daily_budget as u64)?;
        positive("token_ttl_days", s.token_ttl_days as u64)?;
        positive("public_rate_per_minute", s.public_rate_per_minute as u64)?;
        positive("public_rate_burst", s.public_rate_burst as u64)?;
        positive("comment_rate_per_hour", s.comment_rate_per_hour as u64)?;
        // The bound dates from when PostgreSQL's answer commits took the pool's connections; they
        // now keep their own (`store/postgres_answer_connections.rs`), so it is kept for SQLite
        // only, where every commit queues for the one writer connection whatever the setting.
        if s.database_url.starts_with("sqlite:") && s.answer_commits >= s.database_max_connections {
            return Err(wrong("answer_commits", "must be below HEJNAL_DATABASE_MAX_CONNECTIONS on SQLite"));
        }
        if s.contact_answer_floor_ms > MAX_CONTACT_ANSWER_FLOOR_MS {
            return Err(wrong("contact_answer_floor_ms", format!("must be at most {MAX_CONTACT_ANSWER_FLOOR_MS} (5 s): every sign-up waits this long for its answer")));
        }
        if s.answer_commit_period_us > MAX_ANSWER_COMMIT_PERIOD_US {
            return Err(wrong("answer_commit_period_us", format!("must be at most {MAX_ANSWER_COMMIT_PERIOD_US} (0.1 s): an answer may wait this long for its commit to start")));
        }
        if !(-20..=0).contains(&s.nice) {
            return Err(wrong("nice", "must be between -20 and 0: below 0 asks for a larger share of the CPU, 0 keeps the priority the process started with"));
        }
        let secret_key = s.secret_key.clone().filter(|k| !k.is_empty());
        if let Some(k) = &secret_key {
            if k.len() < 32 {
                return Err(wrong("secret_key", "must be at least 32 characters"));
            }
        } else if channels.environment == crate::channels::Environment::Production {
            return Err(wrong("secret_key", "must be set in production (at least 32 random characters)"));
        }
        let delivery = delivery_settings(&s)?;
        let delivery = with_send_margin(delivery, &channels)?;
        let queue = QueueConfig {
            url: s.queue_url,
            prefix: s.queue_prefix,
            max_ready: s.queue_max_ready,
            heartbeat: Duration::from_secs(s.queue_heartbeat_secs),
            orphan_after: Duration::from_secs(s.queue_orphan_after_secs),
            redeliver_after: Duration::from_secs(s.queue_redeliver_after_secs),
            poll_interval: Duration::from_millis(s.queue_poll_ms),
            idle_poll_interval: Duration::from_millis(s.queue_idle_poll_ms),
            emergency_concurrency: s.emergency_concurrency,
            routine_concurrency: routine_jobs_at_once(s.routine_concurrency, &s.database_url),
            shutdown_timeout: Duration::from_secs(s.shutdown_timeout_secs),
        };
        Ok(Config {
            listen,
            public_url,
            database_url: s.database_url,
            database_max_connections: s.database_max_connections,
            queue,
            migrate_on_start: s.migrate_on_start,
            log_json,
            log_level: s.log_level,
            channels,
            sms_countries,
            sms_daily_budget: s.sms_daily_budget,
            public_rate_per_minute: s.public_rate_per_minute,
            public_rate_burst: s.public_rate_burst,
            comment_rate_per_hour: s.comment_rate_per_hour,
            contact_answer_floor: Duration::from_millis(s.contact_answer_floor_ms),
            answer_commits: s.answer_commits,
            answer_commit_period: Duration::from_micros(s.answer_commit_period_us),
            keep_cores_awake: s.keep_cores_awake,
            nice: s.nice,
            secret_key,
            sms_inbound_secret: s.sms_inbound_secret.clone().filter(|k| !k.is_empty()),
            token_ttl_days: s.token_ttl_days,
            delivery,
        })
    }
}

fn delivery_settings(s: &Settings) -> Result<crate::notices::DeliverySettings, ConfigError> {
    positive("delivery_lease_secs", s.delivery_lease_secs)?;
    positive("delivery_grace_emergency_secs", s.delivery_grace_emergency_secs)?;
    positive("delivery_grace_routine_secs", s.delivery_grace_routine_secs)?;
    // Set from the channels' timeouts, once they are read (`with_send_margin`).
    let send_margin = Duration::ZERO;
    if !(100..=3_600_000).contains(&s.delivery_sweep_ms) {
        return Err(wrong("delivery_sweep_ms", "must be between 100 and 3600000"));
    }
    if !(10..=5000).contains(&s.delivery_batch) {
        return Err(wrong("delivery_batch", "must be between 10 and 5000"));
    }
    Ok(crate::notices::DeliverySettings {
        approval_for_routine: s.approval_for_routine,
        approval_for_surveys: s.approval_for_surveys,
        lease: Duration::from_secs(s.delivery_lease_secs),
        send_margin,
        grace_emergency: Duration::from_secs(s.delivery_grace_emergency_secs),
        grace_routine: Duration::from_secs(s.delivery_grace_routine_secs),
        sweep_every: Duration::from_millis(s.delivery_sweep_ms),
        batch: s.delivery_batch,
        sms_transliterate: s.sms_transliterate,
        clock_offset_ms: s.clock_offset_ms,
    })
}

/// A send starts only while its longest possible run (through every SMS provider, when it
/// fails over) plus a second is left of its lease, and the lease must be at least twice that, so
/// that a send always ends inside its lease: once the lease lapses, another worker may take the
/// delivery and send it too.
fn with_send_margin(mut delivery: crate::notices::DeliverySettings, channels: &ChannelSettings) -> Result<crate::notices::DeliverySettings, ConfigError> {
    use crate::channels::ChannelKind;
    let longest = [channels.sms_attempt_timeout(), channels.timeout(ChannelKind::Email), channels.timeout(ChannelKind::Push)]
        .into_iter()
        .max()
        .unwrap_or_default();
    delivery.send_margin = longest + Duration::from_secs(1);
    if delivery.lease < delivery.send_margin * 2 {
        return Err(wrong(
            "delivery_lease_secs",
            format!(
                "must be at least twice the longest send plus 2 s ({} ms: the longest provider timeout, or every SMS provider's together when it fails over): a send must end well inside its lease",
                delivery.send_margin.as_millis() * 2
            ),
        ));
    }
    Ok(delivery)
}

/// The channel settings, checked; an empty value counts as unset.
fn channel_settings(s: &Settings) -> Result<ChannelSettings, ConfigError> {
    let set = |v: &Option<String>| v.as_ref().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let channels = ChannelSettings {
        environment: s.environment.parse().map_err(|reason: String| wrong("environment", reason))?,
        sms_provider: set(&s.sms_provider),
        sms_url: set(&s.sms_url),
        sms_token: set(&s.sms_token),
        sms_sender: set(&s.sms_sender),
        sms_name: set(&s.sms_name),
        sms_weight: s.sms_weight,
        sms_timeout_ms: s.sms_timeout_ms,
        sms_providers: s.sms_providers.clone(),
        sms_failover_restore_secs: s.sms_failover_restore_secs,
        smtp_url: set(&s.smtp_url),
        email_from: set(&s.email_from),
        dkim_selector: set(&s.dkim_selector),
        dkim_key_file: set(&s.dkim_key_file),
        dkim_domain: set(&s.dkim_domain),
        vapid_private_key: set(&s.vapid_private_key),
        vapid_subject: set(&s.vapid_subject),
        push_allow_local: s.push_allow_local,
        provider_timeout_ms: s.provider_timeout_ms,
        email_timeout_ms: s.email_timeout_ms,
        push_timeout_ms: s.push_timeout_ms,
        sms_rate: s.sms_rate,
        sms_concurrency: s.sms_concurrency,
        email_rate: s.email_rate,
        email_concurrency: s.email_concurrency,
        push_rate: s.push_rate,
        push_concurrency: s.push_concurrency,
        emergency_reserve_percent: s.emergency_reserve_percent,
    };
    channels.check()?;
    Ok(channels)
}

fn parse_public_url(raw: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw).map_err(|e| wrong("public_url", format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(wrong("public_url", "must start with http:// or https://"));
    }
    Ok(url)
}

fn check_scheme(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    if schemes.iter().any(|s| value.starts_with(s)) {
        Ok(())
    } else {
        let names: Vec<String> = schemes.iter().map(|s| format!("{s}//…")).collect();
        Err(wrong(key, format!("{:?} must start with one of {}", redact(value), names.join(", "))))
    }
}

/// Routine jobs run at once per process: `configured`, or for 0 what suits the store. On SQLite
/// 8, not 32: every job holds its claimed batch and a send future per provider slot while it
/// waits for one, and SQLite's one writer takes the jobs' claims and outcomes in turn anyway.
/// 1M SMS on SQLite (`hejnal bench broadcast --alerts 5 --channels sms --backend embedded`):
/// peak RSS 75.5 MB with 32, 68.4 MB with 8, at the same rate (21,185 and 20,980/s).
pub fn routine_jobs_at_once(configured: usize, database_url: &str) -> usize {
    match configured {
        0 if database_url.starts_with("sqlite:") => 8,
        0 => 32,
        n => n,
    }
}

fn positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 { Err(wrong(key, "must be greater than 0")) } else { Ok(()) }
}

// Secrets (passwords inside URLs) never reach logs or panics through Debug.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url.as_str())
            .field("database_url", &redact(&self.database_url))
            .field("queue_url", &redact(&self.queue.url))
            .field("queue_prefix", &self.queue.prefix)
            .field("queue_max_ready", &self.queue.max_ready)
            .field("log_json", &self.log_json)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database_url", &redact(&self.database_url))
            .field("queue_url", &redact(&self.queue_url))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_deployment() {
        let c = Config::from_settings(Settings::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(c.database_url, "sqlite://data/hejnal.db");
        assert!(c.queue.url.starts_with("sqlite:"));
        assert_eq!(c.queue.prefix, "hejnal");
        assert_eq!((c.queue.routine_concurrency, c.queue.emergency_concurrency), (8, 16));
    }

    #[test]
    fn routine_jobs_at_once_default_by_store_and_a_setting_wins() {
        let on = |url: &str, n: usize| Config::from_settings(Settings { database_url: url.into(), routine_concurrency: n, ..Settings::default() }).unwrap().queue.routine_concurrency;
        assert_eq!(on("sqlite://data/hejnal.db", 0), 8);
        assert_eq!(on("postgres://hejnal@db/hejnal", 0), 32);
        assert_eq!((on("sqlite://data/hejnal.db", 12), on("postgres://hejnal@db/hejnal", 3)), (12, 3));
    }

    #[test]
    fn answer_commits_are_bounded_by_the_pool_only_where_they_share_it() {
        let on = |url: &str| Config::from_settings(Settings { database_url: url.into(), answer_commits: 10, database_max_connections: 10, ..Settings::default() });
        let e = on("sqlite://data/hejnal.db").unwrap_err();
        assert_eq!(e.key, "HEJNAL_ANSWER_COMMITS");
        assert!(e.to_string().contains("below HEJNAL_DATABASE_MAX_CONNECTIONS"), "{e}");
        assert_eq!(on("postgres://hejnal@db/hejnal").unwrap().answer_commits, 10, "PostgreSQL's answer commits have connections of their own");
    }

    #[test]
    fn an_idle_worker_asks_the_broker_every_tenth_of_a_second_at_most_and_never_more_often_than_a_busy_one() {
        let with = |busy: u64, idle: u64| Config::from_settings(Settings { queue_poll_ms: busy, queue_idle_poll_ms: idle, ..Settings::default() });
        let defaults = Config::from_settings(Settings::default()).unwrap().queue;
        assert_eq!((defaults.poll_interval, defaults.idle_poll_interval), (Duration::from_millis(10), Duration::from_millis(100)));
        assert_eq!(with(10, 10).unwrap().queue.idle_poll_interval, Duration::from_millis(10), "equal: no back-off");
        let e = with(50, 20).unwrap_err();
        assert_eq!(e.key, "HEJNAL_QUEUE_IDLE_POLL_MS");
        assert!(e.to_string().contains("at least HEJNAL_QUEUE_POLL_MS"), "{e}");
    }

    #[test]
    fn answer_commits_start_a_millisecond_apart_unless_set_and_never_more_than_a_tenth_of_a_second() {
        let with = |us: u64| Config::from_settings(Settings { answer_commit_period_us: us, ..Settings::default() });
        assert_eq!(Config::from_settings(Settings::default()).unwrap().answer_commit_period, Duration::from_millis(1));
        assert_eq!(with(0).unwrap().answer_commit_period, Duration::ZERO, "0 starts each commit at once");
        assert_eq!(with(100_000).unwrap().answer_commit_period, Duration::from_millis(100));
        let e = with(100_001).unwrap_err();
        assert_eq!(e.key, "HEJNAL_ANSWER_COMMIT_PERIOD_US");
        assert!(e.to_string().contains("at most 100000"), "{e}");
    }

    #[test]
    fn http_processes_ask_for_nice_minus_ten_unless_set_and_never_for_less_than_the_default_share() {
        let with = |nice: i32| Config::from_settings(Settings { nice, ..Settings::default() });
        assert_eq!(Config::from_settings(Settings::default()).unwrap().nice, -10);
        assert_eq!(with(0).unwrap().nice, 0, "0 keeps the priority as started");
        assert_eq!(with(-20).unwrap().nice, -20);
        for wrong in [1, 19, -21] {
            let e = with(wrong).unwrap_err();
            assert_eq!(e.key, "HEJNAL_NICE");
            assert!(e.to_string().contains("between -20 and 0"), "{e}");
        }
    }

    #[test]
    fn contact_answers_wait_a_tenth_of_a_second_unless_set_and_never_more_than_five_seconds() {
        let with = |ms: u64| Config::from_settings(Settings { contact_answer_floor_ms: ms, ..Settings::default() });
        assert_eq!(Config::from_settings(Settings::default()).unwrap().contact_answer_floor, Duration::from_millis(100));
        assert_eq!(with(0).unwrap().contact_answer_floor, Duration::ZERO, "0 answers at once");
        assert_eq!(with(5_000).unwrap().contact_answer_floor, Duration::from_secs(5));
        let e = with(5_001).unwrap_err();
        assert_eq!(e.key, "HEJNAL_CONTACT_ANSWER_FLOOR_MS");
        assert!(e.to_string().contains("at most 5000"), "{e}");
    }

    #[test]
    fn a_bad_listen_address_names_its_environment_variable() {
        let s = Settings { listen: "localhost".into(), ..Settings::default() };
        let e = Config::from_settings(s).unwrap_err();
        assert_eq!(e.key, "HEJNAL_LISTEN");
        assert!(e.to_string().contains("not an address"), "{e}");
    }

    #[test]
    fn an_unknown_database_scheme_is_refused() {
        let s = Settings { database_url: "mysql://root@db/x".into(), ..Settings::default() };
        let e = Config::from_settings(s).unwrap_err();
        assert_eq!(e.key, "DATABASE_URL");
    }

    #[test]
    fn debug_output_hides_passwords() {
        let s = Settings {
            database_url: "postgres://app:hunter2@db/hejnal".into(),
            queue_url: "redis://:sekret@cache:6379".into(),
            ..Settings::default()
        };
        let c = Config::from_settings(s.clone()).unwrap();
        for shown in [format!("{c:?}"), format!("{s:?}")] {
            assert!(!shown.contains("hunter2") && !shown.contains("sekret"), "{shown}");
            assert!(shown.contains("db/hejnal"), "{shown}");
        }
    }

    #[test]
    fn channel_settings_are_checked_and_named_by_their_variable() {
        let s = Settings { environment: "staging".into(), ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap_err().key, "HEJNAL_ENVIRONMENT");
        let s = Settings { sms_provider: Some("pigeon".into()), ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap_err().key, "HEJNAL_SMS_PROVIDER");
        let s = Settings { environment: "production".into(), ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap_err().key, "HEJNAL_SMS_PROVIDER");
        let s = Settings { sms_provider: Some("  ".into()), sms_token: Some("t0ken".into()), ..Settings::default() };
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.channels.sms_provider, None);
        assert!(!format!("{c:?}").contains("t0ken"));
    }

    #[test]
    fn provider_limits_reach_the_channels() {
        let s = Settings { sms_rate: Some(30), push_concurrency: 8, emergency_reserve_percent: 40, ..Settings::default() };
        let c = Config::from_settings(s).unwrap();
        assert_eq!((c.channels.sms_rate, c.channels.push_concurrency, c.channels.emergency_reserve_percent), (Some(30), 8, 40));
        let s = Settings { emergency_reserve_percent: 95, ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap_err().key, "HEJNAL_EMERGENCY_RESERVE_PERCENT");
        let s = Settings { sms_concurrency: 0, ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap_err().key, "HEJNAL_SMS_CONCURRENCY");
    }

    fn from_toml(toml: &str) -> Result<Config, ConfigError> {
        let s: Settings = Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(toml)).extract().expect("valid TOML");
        Config::from_settings(s)
    }

    const TWO_GATEWAYS: &str = r#"
        sms_provider = "webhook"
        sms_url = "http://gw-a.example/send"
        sms_sender = "KRAKOW"
        sms_name = "gw-a"
        sms_weight = 70
        [[sms_providers]]
        name = "zapas"
        provider = "smsapi"
        token = "zapas-secret"
        weight = 30
        timeout_ms = 3000
    "#;

    #[test]
    fn more_sms_providers_come_from_the_file_after_the_first() {
        let c = from_toml(TWO_GATEWAYS).unwrap();
        let entry = &c.channels.sms_providers[0];
        assert_eq!((entry.name.as_str(), entry.weight, entry.timeout_ms), ("zapas", 30, Some(3000)));
        assert!(!format!("{c:?}").contains("zapas-secret"));
        let channels = crate::channels::Channels::from_config(&c.channels).unwrap();
        assert_eq!(channels.sms.name(), "failover");
        // One send may try both: 10 s for the first (the default) and 3 s for the second.
        assert_eq!(c.channels.sms_attempt_timeout(), Duration::from_millis(13_000));
    }

    #[test]
    fn a_wrong_extra_sms_provider_is_named_by_its_place_in_the_file() {
        let e = from_toml(&TWO_GATEWAYS.replace("\"zapas\"", "\"gw-a\"")).unwrap_err();
        assert_eq!(e.key, "sms_providers[0].name");
        let e = from_toml(&TWO_GATEWAYS.replace("provider = \"smsapi\"", "provider = \"webhook\"")).unwrap_err();
        assert_eq!(e.key, "sms_providers[0].url");
        let e = from_toml(&TWO_GATEWAYS.replace("sms_weight = 70", "sms_weight = 0").replace("weight = 30", "weight = 0")).unwrap_err();
        assert_eq!(e.key, "HEJNAL_SMS_WEIGHT");
        let e = from_toml(&TWO_GATEWAYS.replace("sms_provider = \"webhook\"", "")).unwrap_err();
        assert_eq!(e.key, "HEJNAL_SMS_PROVIDER");
    }

    #[test]
    fn a_lease_shorter_than_a_send_through_every_provider_is_refused() {
        // 10 s + 3 s through both gateways, plus 1 s, twice: 28 s.
        let e = from_toml(&format!("delivery_lease_secs = 27\n{TWO_GATEWAYS}")).unwrap_err();
        assert_eq!(e.key, "HEJNAL_DELIVERY_LEASE_SECS");
        assert!(e.reason.contains("28000 ms"), "{e}");
        let c = from_toml(&format!("delivery_lease_secs = 28\n{TWO_GATEWAYS}")).unwrap();
        assert_eq!(c.delivery.send_margin, Duration::from_secs(14));
    }

    #[test]
    fn provider_timeouts_default_to_the_common_one() {
        let c = from_toml("provider_timeout_ms = 4000\nemail_timeout_ms = 60000\ndelivery_lease_secs = 122").unwrap();
        use crate::channels::ChannelKind::*;
        assert_eq!([Sms, Email, Push].map(|k| c.channels.timeout(k).as_millis()), [4000, 60000, 4000]);
        assert_eq!(from_toml("push_timeout_ms = 0").unwrap_err().key, "HEJNAL_PUSH_TIMEOUT_MS");
    }

    #[test]
    fn the_test_clock_offset_is_refused_in_production() {
        let s = Settings { clock_offset_ms: 60_000, ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap().delivery.clock_offset_ms, 60_000);
        let production = Settings { environment: "production".into(), clock_offset_ms: 1, ..Settings::default() };
        assert_eq!(Config::from_settings(production).unwrap_err().key, "HEJNAL_CLOCK_OFFSET_MS");
    }

    #[test]
    fn the_example_file_is_valid_with_its_extra_sms_provider_too() {
        let example = include_str!("../deploy/hejnal.example.toml");
        assert!(from_toml(example).is_ok());
        // Its commented SMS providers, switched on (the first one with them).
        let on = example.replace("# sms_provider = ", "sms_provider = ").replace("# sms_url = ", "sms_url = ").replace("# sms_sender = ", "sms_sender = ");
        let tail = on.split("# [[sms_providers]]").nth(1).unwrap();
        let on = format!("{}[[sms_providers]]{}", on.split("# [[sms_providers]]").next().unwrap(), tail.replace("\n# ", "\n"));
        let c = from_toml(&on).unwrap();
        assert_eq!(c.channels.sms_providers[0].name, "gateway-b");
    }

    #[test]
    fn the_orphan_deadline_must_cover_two_heartbeats() {
        let s = Settings { queue_heartbeat_secs: 10, queue_orphan_after_secs: 15, ..Settings::default() };
        assert_eq!(Config::from_settings(s).unwrap_err().key, "HEJNAL_QUEUE_ORPHAN_AFTER_SECS");
    }
}
