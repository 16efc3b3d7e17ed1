//! The officials' side: an author and an approver with API tokens, and the notices API as
//! they call it over HTTP.

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::{
    residents::secrets::{digest, random_token},
    store::DynStore,
};

pub struct Desk {
    client: reqwest::Client,
    base: String,
    author: String,
    approver: String,
}

impl Desk {
    /// Two officials straight into the store (they never log in with a password here).
    pub async fn open(store: &DynStore, base: String) -> anyhow::Result<Desk> {
        let author = official(store, "autorka@bench.krakow.pl", "author").await?;
        let approver = official(store, "zatwierdzajacy@bench.krakow.pl", "approver").await?;
        Ok(Desk { client: reqwest::Client::new(), base, author, approver })
    }

    /// Write and submit a notice; it then waits for approval. Returns its id.
    pub async fn draft_and_submit(&self, body: &Value) -> anyhow::Result<i64> {
        let created = self.call(&self.author, reqwest::Method::POST, "/api/v1/notices", Some(body), 201).await?;
        let id = created["id"].as_i64().context("the created notice has no id")?;
        let submitted = self.call(&self.author, reqwest::Method::POST, &format!("/api/v1/notices/{id}/submit"), Some(&json!({})), 200).await?;
        ensure!(submitted["state"] == "pending", "notice {id} is {} after submit, not pending", submitted["state"]);
        Ok(id)
    }

    /// The second official's approval, which publishes it.
    pub async fn approve(&self, id: i64) -> anyhow::Result<Value> {
        self.call(&self.approver, reqwest::Method::POST, &format!("/api/v1/notices/{id}/approve"), Some(&json!({})), 200).await
    }

    pub async fn cancel(&self, id: i64) -> anyhow::Result<Value> {
        self.call(&self.approver, reqwest::Method::POST, &format!("/api/v1/notices/{id}/cancel"), Some(&json!({})), 200).await
    }

    pub async fn notice(&self, id: i64) -> anyhow::Result<Value> {
        self.call(&self.author, reqwest::Method::GET, &format!("/api/v1/notices/{id}"), None, 200).await
    }

    async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>, expect: u16) -> anyhow::Result<Value> {
        let (status, answer) = self.send(token, method, path, body, None).await.with_context(|| format!("{path}: no answer"))?;
        ensure!(status == expect, "{path}: expected {expect}, got {status}: {answer}");
        Ok(answer)
    }

    /// One request as `token` (see [`Desk::author`], [`Desk::approver`]), with an optional
    /// `Idempotency-Key`: the status and the JSON body (null when there is none).
    pub async fn send(&self, token: &str, method: reqwest::Method, path: &str, body: Option<&Value>, key: Option<&str>) -> reqwest::Result<(u16, Value)> {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub fn author(&self) -> &str {
        &self.author
    }

    pub fn approver(&self) -> &str {
        &self.approver
    }
}

async fn official(store: &DynStore, email: &str, role: &str) -> anyhow::Result<String> {
    store.add_official(email, role, "$argon2id$bench-no-password").await?;
    let token = format!("hj_bench_{}", random_token(24));
    store.add_token(email, &digest(&token), 1).await?;
    Ok(token)
}

/// Deliveries still queued or sending, over every channel of a notice.
pub fn waiting(notice: &Value) -> i64 {
    let Some(progress) = notice["progress"].as_object() else { return 0 };
    progress.values().map(|c| c["queued"].as_i64().unwrap_or(0) + c["sending"].as_i64().unwrap_or(0)).sum()
}

/// A count from a notice's progress.
pub(super) fn count(notice: &Value, channel: &str, status: &str) -> i64 {
    notice["progress"][channel][status].as_i64().unwrap_or(0)
}

/// Milliseconds between two of a notice's timestamps (server clock), when both are set.
pub(super) fn between_ms(notice: &Value, from: &str, to: &str) -> Option<f64> {
    let at = |v: &Value| v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    Some((at(to_value(notice, to))? - at(to_value(notice, from))?).num_microseconds()? as f64 / 1000.0)
}

fn to_value<'a>(notice: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(notice, |v, key| &v[key])
}
