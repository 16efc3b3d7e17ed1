//! Residents: sign-up, verification of each contact, self-service by signed link, consent.

pub mod import;
pub mod secrets;
pub mod signup;
pub mod verify;

use std::sync::Arc;

use hejnal_jobs::{Job, Lane, NewJob, Queue};

use crate::{
    channels::Channels,
    messages::Messages,
    store::{DynStore, SignupContact, StoreResult},
};

/// The consent text residents agree to when they confirm a contact. A new text gets a new
/// version; each consent record names the version it was given under.
pub const CONSENT_VERSION: &str = "2026-11-v1";

/// Unverified sign-ups are forgotten after this long.
pub const UNVERIFIED_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// What resident work needs, shared by HTTP handlers and jobs.
pub struct ResidentsCtx {
    pub store: DynStore,
    pub channels: Channels,
    pub messages: Messages,
    pub links: secrets::LinkSigner,
    pub public_url: url::Url,
    pub sms_daily_budget: u32,
    /// Every answer to a survey is stored through this group commit.
    pub answers: crate::surveys::batcher::AnswerBatcher,
    /// Published surveys, as the answering API reads them.
    pub surveys: crate::surveys::cache::SurveyCache,
}

impl ResidentsCtx {
    /// An absolute URL under the public base.
    pub fn public_url(&self, path: &str) -> String {
        absolute_url(&self.public_url, path)
    }

    /// The page a resident opens from any message to change or leave.
    pub fn preferences_url(&self, public_id: &str) -> String {
        self.public_url(&format!("preferences/{}", self.links.sign(public_id)))
    }

    /// Queue the verification message of every contact that still needs one. Known verified
    /// contacts get nothing: an anonymous sign-up may not message them.
    pub async fn queue_verifications(&self, queue: &Queue, contacts: &[SignupContact]) -> anyhow::Result<()> {
        let jobs: Vec<NewJob> = contacts
            .iter()
            .filter(|c| c.status == "pending")
            .map(|c| NewJob::now(Lane::Routine, Job::VerifyContactV1 { contact_id: c.contact_id }))
            .collect();
        queue.push(&jobs).await?;
        Ok(())
    }
}

/// `path` under the public base URL, which may have a path of its own.
pub fn absolute_url(public_url: &url::Url, path: &str) -> String {
    let base = public_url.as_str().trim_end_matches('/');
    format!("{base}/{path}")
}

/// The URL of an email's `List-Unsubscribe` header: a POST there (RFC 8058 one-click, which
/// our `List-Unsubscribe-Post` header announces) unsubscribes the resident of preferences link
/// `token` from email; a browser opening it is sent to the preferences page.
pub fn one_click_url(public_url: &url::Url, token: &str) -> String {
    absolute_url(public_url, &format!("api/v1/preferences/{token}/one-click?channel=email"))
}

/// The key of preferences links: `HEJNAL_SECRET_KEY` when set, otherwise one generated on first
/// start and kept in the database, so every process and every restart agrees.
pub async fn link_key(store: &DynStore, configured: Option<&str>) -> StoreResult<Vec<u8>> {
    match configured {
        Some(key) => Ok(key.as_bytes().to_vec()),
        None => Ok(store.secret("link_key", &secrets::random_token(32)).await?.into_bytes()),
    }
}

pub type SharedResidents = Arc<ResidentsCtx>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_click_url_is_under_the_public_base() {
        let token = "AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB";
        let expected = |base: &str| format!("{base}/api/v1/preferences/{token}/one-click?channel=email");
        for base in ["https://hejnal.krakow.pl", "https://hejnal.krakow.pl/", "http://127.0.0.1:8080"] {
            let url = url::Url::parse(base).unwrap();
            assert_eq!(one_click_url(&url, token), expected(base.trim_end_matches('/')));
        }
        let behind_a_prefix = url::Url::parse("https://krakow.pl/alerty/").unwrap();
        assert_eq!(one_click_url(&behind_a_prefix, token), expected("https://krakow.pl/alerty"));
    }
}
