//! Notices end to end, on both backends, through a real SMTP server, an HTTP SMS gateway and a
//! web push receiver that verifies VAPID and decrypts: approval, fan-out, delivery, receipts,
//! corrections, cancellation, and the failures providers throw at us.

mod control;
mod e2e;
mod failover;
mod failures;
mod misbehaving;
mod schedule;

use std::time::Duration;

use hejnal::{
    channels::PushTarget,
    domain::Language,
    residents::secrets::random_token,
    store::{DynStore, ImportRow, NewContact, Signup},
};
use serde_json::{Value, json};

use crate::{helpers::eventually, residents::Kit};
pub(crate) use crate::helpers::token_for;

/// The kit with three officials: two who write and one who approves.
pub struct Desk {
    pub kit: Kit,
    pub store: DynStore,
    pub author: String,
    pub other_author: String,
    pub approver: String,
}

/// A resident's contacts, as the sinks will see them.
pub struct Resident {
    pub email: String,
    pub phone: String,
    pub push: PushTarget,
}

impl Desk {
    pub async fn open(kit: Kit) -> Desk {
        let store = kit.app.store.clone();
        let author = token_for(&store, "autorka@krakow.pl", "author").await;
        let other_author = token_for(&store, "autor@krakow.pl", "author").await;
        let approver = token_for(&store, "zatwierdzajacy@krakow.pl", "approver").await;
        Desk { kit, store, author, other_author, approver }
    }

    /// `n` residents of Podgórze who follow water news, each with verified email, SMS and push.
    pub async fn residents(&self, n: usize, quiet_hours: Option<(&str, &str)>) -> Vec<Resident> {
        let mut rows = Vec::new();
        let mut out = Vec::new();
        for i in 0..n {
            let r = Resident {
                email: format!("mieszkaniec{i}.{}@example.com", random_token(3).to_lowercase()),
                phone: format!("+48601{:06}", rand::random::<u32>() % 1_000_000),
                push: self.kit.push.subscribe(),
            };
            let contacts = vec![
                NewContact { channel: "email", address: r.email.clone(), p256dh: None, auth: None },
                NewContact { channel: "sms", address: r.phone.clone(), p256dh: None, auth: None },
                NewContact { channel: "push", address: r.push.endpoint.clone(), p256dh: Some(r.push.p256dh.clone()), auth: Some(r.push.auth.clone()) },
            ];
            let quiet_hours = quiet_hours.map(|(from, to)| {
                hejnal::domain::QuietHours::parse(&hejnal::domain::QuietHoursJson { from: from.into(), to: to.into() }).unwrap()
            });
            let signup = Signup { language: Language::Pl, quiet_hours, districts: vec!["podgorze".into()], interests: vec!["water".into()], contacts };
            rows.push(ImportRow { signup, public_id: random_token(16), consent_version: "import:test".into(), consented_at: 1 });
            out.push(r);
        }
        self.store.import(&rows, hejnal::store::now_ms()).await.unwrap();
        out
    }

    pub async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = self.kit.app.client.request(method, format!("{}{path}", self.kit.app.address)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call(token, reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn notice(&self, id: i64) -> Value {
        self.call(&self.author, reqwest::Method::GET, &format!("/api/v1/notices/{id}"), None).await.1
    }

    /// Write, submit and approve a notice; returns its id.
    pub async fn publish(&self, body: &Value) -> i64 {
        let (status, created) = self.post(&self.author, "/api/v1/notices", body).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        let (status, submitted) = self.post(&self.author, &format!("/api/v1/notices/{id}/submit"), &json!({})).await;
        assert_eq!(status, 200, "{submitted}");
        if submitted["state"] == "pending" {
            let (status, approved) = self.post(&self.approver, &format!("/api/v1/notices/{id}/approve"), &json!({})).await;
            assert_eq!(status, 200, "{approved}");
        }
        id
    }

    /// Wait until no delivery of the notice is queued or sending; returns the notice.
    pub async fn settled(&self, id: i64, limit: Duration) -> Value {
        eventually(limit, "every delivery settled", || async move {
            let n = self.notice(id).await;
            let waiting: i64 = n["progress"].as_object()?.values().map(|c| c["queued"].as_i64().unwrap_or(0) + c["sending"].as_i64().unwrap_or(0)).sum();
            (n["fanout"]["done_at"].is_string() && waiting == 0).then_some(n)
        })
        .await
    }
}


/// A Severe water alert for Podgórze over the given channels.
pub fn alert(channels: &[&str]) -> Value {
    json!({
        "kind": "alert", "msg_type": "Alert", "status": "Actual", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed",
        "texts": {"pl": {"title": "Awaria wodociągu", "body": "Brak wody w Podgórzu do 18:00."}},
        "audience": {"districts": ["podgorze"], "interests": ["water"], "channels": channels}
    })
}

/// The count of a status on a channel in a notice's progress.
pub fn count(notice: &Value, channel: &str, status: &str) -> i64 {
    notice["progress"][channel][status].as_i64().unwrap_or(0)
}
