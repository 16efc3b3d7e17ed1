//! The SMS gateway's ceiling: one shared reqwest client, 64 webhook requests in flight.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::in_flight;

pub(super) const CLIENT: &str = "reqwest, 64 requests in flight";
const IN_FLIGHT: usize = 64;
/// About one SMS segment of Polish text.
const TEXT: &str = "Hejnal: awaria wodociagu, Podgorze, ul. Kalwaryjska 1-40. Woda wroci ok. 18:00. Beczkowozy: pl. Lasoty. Wiecej: hejnal.example/n/42 STOP: 8080";

pub(super) async fn blast(base_url: String, stop: CancellationToken) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(IN_FLIGHT).build()?;
    let url: Arc<str> = format!("{base_url}/sms").into();
    in_flight(IN_FLIGHT, stop, move |n| {
        let (client, url) = (client.clone(), Arc::clone(&url));
        async move {
            let body = serde_json::json!({"to": "+48601000000", "text": TEXT, "reference": format!("ceiling-{n}"), "sender": "KRAKOW"});
            let response = client.post(&*url).json(&body).send().await?;
            anyhow::ensure!(response.status().is_success(), "the SMS gateway answered {}", response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}
