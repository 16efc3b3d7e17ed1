//! Surveys end to end, on both backends: drafts and their checks, invitations through the
//! real SMTP server, SMS gateway and push receiver, answers by API and by the page's form,
//! display conditions, closing, open answers, results and CSV, erasure.

mod answering;
mod batching;
mod consultations;
mod drafts;
mod invitations;
mod polls;
mod results;

use std::time::Duration;

use hejnal::{
    domain::Language,
    residents::secrets::random_token,
    store::{ImportRow, NewContact, Signup},
};
use serde_json::{Value, json};

use crate::{helpers::{Backend, TestEnv, eventually}, notices::Desk, residents::Kit};

/// A survey asking one question of every type; q3 (the scale) only of those who said yes.
pub fn every_type(slug: Option<&str>) -> Value {
    json!({
        "title": {"pl": "Park Jordana", "en": "Jordan Park"},
        "description": {"pl": "Jak zmienić park?", "en": "How should the park change?"},
        "slug": slug,
        "questions": [
            {"type": "yes_no", "required": true, "text": {"pl": "Czy bywasz w parku?", "en": "Do you visit the park?"}},
            {"type": "single_choice", "required": true, "text": {"pl": "Jak często?"},
             "options": [{"pl": "Codziennie"}, {"pl": "Co tydzień"}, {"pl": "=HYPERLINK(\"http://zly.example\")"}]},
            {"type": "scale", "required": true, "text": {"pl": "Jak oceniasz park?"}, "scale": "1-5",
             "show_if": {"question": "q1", "equals": true}},
            {"type": "multiple_choice", "text": {"pl": "Co dodać?"}, "options": [{"pl": "Ławki"}, {"pl": "Drzewa"}, {"pl": "Toalety"}], "min": 1, "max": 2},
            {"type": "ranking", "text": {"pl": "Co najważniejsze?"}, "options": [{"pl": "Cisza"}, {"pl": "Zieleń"}, {"pl": "Plac zabaw"}]},
            {"type": "short_text", "text": {"pl": "Jedno słowo o parku"}, "max_length": 40},
            {"type": "long_text", "text": {"pl": "Uwagi"}}
        ]
    })
}

/// Residents imported with verified contacts on `channels`, in `district`, speaking `lang`.
/// Returns their email addresses (every one has an email; `sms` adds a phone).
pub async fn residents(desk: &Desk, n: usize, district: &str, lang: Language, sms: bool) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut out = Vec::new();
    for i in 0..n {
        let email = format!("ankieta{i}.{}@example.com", random_token(4).to_lowercase());
        let phone = format!("+48602{:06}", rand::random::<u32>() % 1_000_000);
        let mut contacts = vec![NewContact { channel: "email", address: email.clone(), p256dh: None, auth: None }];
        if sms {
            contacts.push(NewContact { channel: "sms", address: phone.clone(), p256dh: None, auth: None });
        }
        let signup = Signup { language: lang, quiet_hours: None, districts: vec![district.into()], interests: vec!["water".into()], contacts };
        rows.push(ImportRow { signup, public_id: random_token(16), consent_version: "import:test".into(), consented_at: 1 });
        out.push((email, if sms { phone } else { String::new() }));
    }
    desk.store.import(&rows, hejnal::store::now_ms()).await.unwrap();
    out
}

/// Create a survey as the author; returns its id.
pub async fn create(desk: &Desk, body: &Value) -> i64 {
    let (status, created) = desk.post(&desk.author, "/api/v1/surveys", body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_i64().unwrap()
}

pub async fn publish(desk: &Desk, id: i64, audience: Value) -> Value {
    let (status, published) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({"audience": audience})).await;
    assert_eq!(status, 200, "{published}");
    published
}

/// Publish `id` with no audience: open to anyone, no invitations sent.
pub async fn publish_open(desk: &Desk, id: i64) {
    let (status, published) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({})).await;
    assert_eq!(status, 200, "{published}");
}

/// The invitation token in a text: what follows `/s/`.
pub fn token_in(text: &str) -> String {
    let link = crate::residents::link_after(text, "/s/");
    link.trim_start_matches("/s/").trim_end_matches(['.', ',', ')']).to_owned()
}

/// Each invited email address with the token its email carried, once `n` emails arrived.
pub async fn email_tokens(kit: &Kit, n: usize) -> Vec<(String, String)> {
    let smtp = &kit.smtp;
    eventually(Duration::from_secs(60), "the invitation emails", || async move { (smtp.received().len() >= n).then_some(()) }).await;
    let mut out = Vec::new();
    for (i, mail) in kit.smtp.received().iter().enumerate() {
        out.push((mail.rcpt_to[0].clone(), token_in(&kit.email_text(i).await)));
    }
    out
}

pub async fn respond(desk: &Desk, id: i64, body: &Value) -> (u16, Value) {
    let res = desk.kit.app.client.post(format!("{}/api/v1/surveys/{id}/responses", desk.kit.app.address)).json(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn results(desk: &Desk, id: i64) -> Value {
    let (status, r) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/results"), None).await;
    assert_eq!(status, 200, "{r}");
    r
}

/// A client that shows redirects instead of following them, as a test of a form wants.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Kit with the public rate limit out of the way (for bursts from one test address).
pub async fn unlimited(env: &crate::helpers::TestEnv) -> Desk {
    Desk::open(Kit::start_with(env, |s| {
        s.public_rate_per_minute = 1_000_000;
        s.public_rate_burst = 100_000;
    }).await).await
}

/// Another connection that keeps `table` from being written until released: on SQLite, whose
/// writers take turns, a write transaction (every table); on PostgreSQL, a lock on `table`
/// that lets reads through.
pub enum Hold {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Hold {
    pub async fn take(env: &TestEnv, table: &'static str) -> Hold {
        use sqlx::Connection;
        match env.backend {
            Backend::Embedded => {
                let mut c = sqlx::SqliteConnection::connect(&env.database_url).await.unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut c).await.unwrap();
                Hold::Sqlite(c)
            }
            Backend::Scaled => {
                let mut c = sqlx::PgConnection::connect(&env.database_url).await.unwrap();
                // `table` is one of the tests' own names.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN; LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))).execute(&mut c).await.unwrap();
                Hold::Postgres(c)
            }
        }
    }

    pub async fn release(self) {
        match self {
            Hold::Sqlite(mut c) => { sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap(); }
            Hold::Postgres(mut c) => { sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap(); }
        }
    }
}

/// A trigger that makes the database refuse audit entries of `action` (`on`), or its removal.
pub async fn refuse_audit(env: &TestEnv, action: &str, on: bool) {
    let sql = match (env.backend, on) {
        (Backend::Embedded, true) => format!("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action = '{action}' \
                                               BEGIN SELECT RAISE(ABORT, 'audit refused'); END"),
        (Backend::Embedded, false) => "DROP TRIGGER refuse_audit".to_owned(),
        (Backend::Scaled, true) => format!("CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                                              IF NEW.action = '{action}' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END $$; \
                                            CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit();"),
        (Backend::Scaled, false) => "DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit()".to_owned(),
    };
    env.execute_sql(sql).await;
}
