//! The fault suite's harness, for every scenario: throwaway servers (`servers`), the service
//! as processes against them with the SMS gateway fake (`cluster`), and the promises checked
//! over the database and the gateway's log (`ledger`).

pub mod cluster;
pub mod ledger;
#[path = "../../support/process.rs"]
pub mod process;
pub mod providers;
pub mod servers;
pub mod tools;

use std::sync::{Mutex, MutexGuard};

pub use cluster::{Cluster, RECEIPTS_SECRET};
pub use ledger::{Ledger, SinkLog};
use serde_json::{Value, json};

/// Deliveries every scenario drives at least.
pub const RESIDENTS: i64 = 10_000;

/// Scenarios take turns: on two cores, two of them at once would slow each other past their
/// deadlines. Hold the guard for the whole scenario.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    // A failed scenario poisons the lock; the next one may still run.
    TURN.lock().unwrap_or_else(|p| p.into_inner())
}

/// A Severe alert by SMS to everyone in `districts` (all of them: [`Cluster::districts`]): it needs a second official and travels in the emergency lane.
pub fn emergency_sms(marker: &str, districts: &[String]) -> Value {
    json!({
        "kind": "alert", "msg_type": "Alert", "status": "Actual", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed",
        "texts": {"pl": {"title": format!("{marker} Awaria wodociagu"), "body": "Brak wody do 18:00. Beczkowozy przy szkolach."}},
        "audience": {"districts": districts, "interests": [], "channels": ["sms"]}
    })
}

/// A planned notice by SMS to everyone, in the routine lane.
pub fn routine_sms(marker: &str, districts: &[String]) -> Value {
    json!({
        "kind": "planned", "msg_type": "Alert", "status": "Actual", "severity": "Minor",
        "urgency": "Expected", "certainty": "Likely",
        "texts": {"pl": {"title": format!("{marker} Remont ulicy"), "body": "W sobote 8:00-16:00 objazd. Autobusy jada inna trasa."}},
        "audience": {"districts": districts, "interests": [], "channels": ["sms"]}
    })
}

/// An exercise: it needs no approval and reaches only the test audience (nobody here), so
/// it exercises the API's write path and the queue's outbox without sending anything.
pub fn exercise(district: &str) -> Value {
    json!({
        "kind": "info", "msg_type": "Alert", "status": "Exercise", "severity": "Minor",
        "urgency": "Future", "certainty": "Possible",
        "texts": {"pl": {"title": "Ćwiczenie", "body": "Próba systemu."}},
        "audience": {"districts": [district], "interests": [], "channels": ["sms"]}
    })
}

/// Write, submit and approve a notice (one that needs a second official); returns its id.
pub async fn publish(desk: &hejnal::bench::Desk, body: &Value) -> i64 {
    let id = desk.draft_and_submit(body).await.expect("draft and submit");
    desk.approve(id).await.expect("approve");
    id
}

/// Print a figure for docs/reliability.md (run with `--nocapture` to see them).
pub fn report(scenario: &str, line: impl std::fmt::Display) {
    eprintln!("faults: {scenario}: {line}");
}
