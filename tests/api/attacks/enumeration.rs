//! Whether a contact is known must not show in any answer: 1,000 requests about known
//! contacts and 1,000 about unknown ones, per public endpoint that takes a contact, give one
//! and the same status, body and headers (all but `date` and `x-request-id`, which differ on
//! every request), and none of the residents' endpoints answers before its floor
//! (`HEJNAL_CONTACT_ANSWER_FLOOR_MS`), so that quick work for a known contact cannot show in
//! the time either. The limiter is set high, so neither side meets it.

use std::{collections::BTreeSet, time::{Duration, Instant}};

use futures::{StreamExt, stream};
use serde_json::{Value, json};

use crate::{both_backends, residents::{Kit, link_after}};

const REQUESTS: usize = 1_000;
const IN_FLIGHT: usize = 32;
const FLOOR_MS: u64 = 100;

/// An answer without what differs on every request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("<binary>").to_owned()))
        .collect();
    Answer { status, headers, body: res.text().await.unwrap() }
}

/// Every distinct answer to `bodies` POSTed to `path`, and the median and shortest time one took.
async fn answers(kit: &Kit, path: &str, bearer: Option<&str>, bodies: Vec<Value>) -> (BTreeSet<Answer>, Duration, Duration) {
    let url = format!("{}{path}", kit.app.address);
    let results: Vec<(Answer, Duration)> = stream::iter(bodies)
        .map(|body| {
            let mut request = kit.app.client.post(&url).json(&body);
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            async move {
                let started = Instant::now();
                let res = request.send().await.unwrap();
                (answer(res).await, started.elapsed())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut times: Vec<Duration> = results.iter().map(|(_, t)| *t).collect();
    times.sort();
    (results.into_iter().map(|(a, _)| a).collect(), times[times.len() / 2], times[0])
}

/// Known and unknown give the same single answer; print the medians (a figure, not a check).
/// Returns the answer and the shortest time any of them took.
async fn indistinguishable(kit: &Kit, what: &str, path: &str, bearer: Option<&str>, known: Vec<Value>, unknown: Vec<Value>) -> (Answer, Duration) {
    let (known, known_median, known_fastest) = answers(kit, path, bearer, known).await;
    let (unknown, unknown_median, unknown_fastest) = answers(kit, path, bearer, unknown).await;
    assert_eq!(known.len(), 1, "{what}: known contacts got different answers: {known:#?}");
    assert_eq!(known, unknown, "{what}: known and unknown contacts are told apart");
    println!("{what}: {REQUESTS} known and {REQUESTS} unknown, one answer; median {known_median:?} known, {unknown_median:?} unknown");
    (known.into_iter().next().unwrap(), known_fastest.min(unknown_fastest))
}

/// Known and unknown give the same single answer, and none comes before the floor.
async fn indistinguishable_in_time(kit: &Kit, what: &str, path: &str, known: Vec<Value>, unknown: Vec<Value>) -> Answer {
    let (answer, fastest) = indistinguishable(kit, what, path, None, known, unknown).await;
    let floor = Duration::from_millis(FLOOR_MS);
    assert!(fastest >= floor, "{what}: an answer came {fastest:?} after its request, before the floor of {floor:?}");
    answer
}

fn repeat(body: Value) -> Vec<Value> {
    vec![body; REQUESTS]
}

fn fresh(make: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..REQUESTS).map(make).collect()
}

/// A mobile number nobody signed up with: +48 609 0xx xxx.
fn unknown_phone(i: usize) -> String {
    format!("+48609{:06}", i)
}

both_backends! {
    async fn known_and_unknown_contacts_get_identical_answers_a_thousand_times_over(env) {
        let kit = Kit::start_with(&env, |s| {
            s.public_rate_per_minute = 1_000_000;
            s.public_rate_burst = 1_000_000;
            // Thousands of unknown numbers would spend the city's daily SMS budget; that the
            // answers stay the same then is `abuse::the_daily_sms_budget_stops_...`'s concern.
            s.sms_daily_budget = 100_000;
            s.contact_answer_floor_ms = FLOOR_MS;
        })
        .await;
        // Known: one verified email, one pending phone.
        let signup = json!({"districts": ["podgorze"], "email": "known@example.com", "phone": "+48 608 000 111"});
        assert_eq!(kit.post("/api/v1/subscriptions", &signup).await.status(), 202);
        let confirm = link_after(&kit.email_text(0).await, "http://127.0.0.1");
        assert_eq!(kit.app.client.get(&confirm).send().await.unwrap().status(), 200, "the known email is verified");
        kit.sms_text(0).await;

        let accepted = indistinguishable_in_time(&kit, "sign-up by email", "/api/v1/subscriptions",
            repeat(json!({"districts": ["podgorze"], "email": "known@example.com"})),
            fresh(|i| json!({"districts": ["podgorze"], "email": format!("stranger{i}@example.com")}))).await;
        assert_eq!(accepted.status, 202);
        indistinguishable_in_time(&kit, "sign-up by phone", "/api/v1/subscriptions",
            repeat(json!({"districts": ["podgorze"], "phone": "608 000 111"})),
            fresh(|i| json!({"districts": ["podgorze"], "phone": unknown_phone(i)}))).await;
        let resend = indistinguishable_in_time(&kit, "resend by email", "/api/v1/subscriptions/resend",
            repeat(json!({"email": "known@example.com"})),
            fresh(|i| json!({"email": format!("nobody{i}@example.com")}))).await;
        assert_eq!(resend.status, 202);
        indistinguishable_in_time(&kit, "resend by phone", "/api/v1/subscriptions/resend",
            repeat(json!({"phone": "+48608000111"})),
            fresh(|i| json!({"phone": format!("+48607{:06}", i)}))).await;
        let verify = indistinguishable_in_time(&kit, "SMS code", "/api/v1/subscriptions/verify",
            repeat(json!({"phone": "+48608000111", "code": "000000"})),
            fresh(|i| json!({"phone": format!("+48606{:06}", i), "code": "000000"}))).await;
        assert_eq!(verify.status, 422);
        // The provider's webhook is not public: it needs the shared secret, and has no floor.
        indistinguishable(&kit, "STOP from the provider", "/api/v1/sms/inbound", Some("inbound-secret"),
            repeat(json!({"from": "48608000111", "text": "STOP"})),
            fresh(|i| json!({"from": format!("48605{:06}", i), "text": "STOP"}))).await;
        kit.app.shutdown().await.unwrap();
    }
}
