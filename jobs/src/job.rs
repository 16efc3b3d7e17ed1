//! Job types. Each variant's tag carries its version (`probe.v1`), so a worker of an older
//! release can still drain a queue written by a newer one during a rolling upgrade, and a
//! changed shape gets a new tag instead of breaking old payloads.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Job {
    /// Records that it ran, optionally after a pause. Used by readiness checks, the queue's
    /// tests and `hejnal bench`; it touches nothing a resident sees.
    #[serde(rename = "probe.v1")]
    ProbeV1 { probe_id: Uuid, sleep_ms: u64 },
    /// Send a contact its verification message (email link, SMS code or push welcome).
    #[serde(rename = "verify_contact.v1")]
    VerifyContactV1 { contact_id: i64 },
    /// Forget sign-ups never verified within the retention period.
    #[serde(rename = "purge_unverified.v1")]
    PurgeUnverifiedV1,
    /// Publish a notice: resolve its audience into delivery rows, then queue their batches.
    #[serde(rename = "fan_out.v1")]
    FanOutV1 { notice_id: i64 },
    /// Send the deliveries of one notice and channel with ids in `first_id..=last_id`.
    #[serde(rename = "deliver.v1")]
    DeliverV1 { notice_id: i64, channel: String, first_id: i64, last_id: i64 },
}

impl Job {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::ProbeV1 { .. } => "probe",
            Job::VerifyContactV1 { .. } => "verify_contact",
            Job::PurgeUnverifiedV1 => "purge_unverified",
            Job::FanOutV1 { .. } => "fan_out",
            Job::DeliverV1 { .. } => "deliver",
        }
    }
}

/// What travels through the broker: the backlog row it came from and the job itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub backlog_id: i64,
    pub job: Job,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_serialises_with_its_versioned_tag() {
        let id = Uuid::nil();
        let json = serde_json::to_value(Job::ProbeV1 { probe_id: id, sleep_ms: 5 }).unwrap();
        assert_eq!(json["type"], "probe.v1");
        assert_eq!(json["sleep_ms"], 5);
    }

    #[test]
    fn an_unknown_version_is_refused_not_misread() {
        let err = serde_json::from_str::<Job>(r#"{"type":"probe.v9","probe_id":"00000000-0000-0000-0000-000000000000","sleep_ms":1}"#);
        assert!(err.unwrap_err().to_string().contains("probe.v9"));
    }
}
