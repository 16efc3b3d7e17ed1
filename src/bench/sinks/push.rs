//! The push receiver's ceiling: one reqwest client, 64 requests in flight, bodies encrypted once
//! per subscription beforehand, and one VAPID header signed once: what is left is the receiver.

use std::sync::Arc;

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use axum::body::Bytes;
use tokio_util::sync::CancellationToken;

use super::in_flight;
use crate::channels::{
    PushTarget,
    push::vapid::{Vapid, decode_b64url},
};

pub(super) const CLIENT: &str = "reqwest, 64 in flight, pre-encrypted, cached VAPID";
const IN_FLIGHT: usize = 64;
const PAYLOAD: &str = r#"{"title":"Awaria wodociagu","body":"Podgorze, ul. Kalwaryjska 1-40: woda wroci ok. 18:00.","url":"https://hejnal.example/n/42","reference":"ceiling"}"#;

/// One subscription's endpoint and a body encrypted for it.
struct Prepared {
    endpoint: String,
    body: Bytes,
}

pub(super) async fn blast(targets: Vec<PushTarget>, stop: CancellationToken) -> anyhow::Result<()> {
    let first = targets.first().context("no push subscriptions")?;
    let origin = url::Url::parse(&first.endpoint)?.origin().ascii_serialization();
    let signer = Vapid::new(&URL_SAFE_NO_PAD.encode(p256::SecretKey::random(&mut rand::rngs::OsRng).to_bytes()), "mailto:bench@krakow.pl")
        .map_err(|(key, why)| anyhow::anyhow!("{key} {why}"))?;
    let authorization: Arc<str> = signer.authorization(&origin).into();
    let prepared: Arc<Vec<Prepared>> = Arc::new(targets.iter().map(prepare).collect::<anyhow::Result<_>>()?);
    let client = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(IN_FLIGHT).build()?;
    in_flight(IN_FLIGHT, stop, move |n| {
        let (client, authorization, prepared) = (client.clone(), Arc::clone(&authorization), Arc::clone(&prepared));
        async move {
            let target = &prepared[n as usize % prepared.len()];
            let response = client
                .post(format!("{}/{n}", target.endpoint))
                .header("authorization", &*authorization)
                .header("ttl", "86400")
                .header("urgency", "normal")
                .header("content-encoding", "aes128gcm")
                .header("content-type", "application/octet-stream")
                .body(target.body.clone())
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "the push receiver answered {}", response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}

fn prepare(target: &PushTarget) -> anyhow::Result<Prepared> {
    let ua_public = decode_b64url(&target.p256dh).context("p256dh")?;
    let auth: [u8; 16] = decode_b64url(&target.auth).and_then(|b| b.try_into().ok()).context("auth")?;
    let body = crate::channels::push::encrypt(PAYLOAD.as_bytes(), &ua_public, &auth).map_err(|e| anyhow::anyhow!("encrypt: {e}"))?;
    Ok(Prepared { endpoint: target.endpoint.clone(), body: body.into() })
}
