//! A stopped app ends its database sessions itself. Before, each pooled PostgreSQL connection
//! was dropped with the process, and the server logged "could not receive data from client:
//! Connection reset by peer" for every one of them at every restart.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    helpers::{Backend, TestEnv},
    surveys::{create, publish_open, respond, unlimited},
};

/// PostgreSQL's Terminate message: 'X' and its length, 4.
const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];

/// A TCP relay in front of PostgreSQL that notes, for each client connection, whether the
/// client's last bytes before closing were a Terminate message.
struct SessionEnds {
    url: String,
    /// One entry per connection: None while open, then whether it ended with a Terminate.
    ends: Arc<Mutex<Vec<Option<bool>>>>,
}

impl SessionEnds {
    async fn start(database_url: &str) -> SessionEnds {
        let mut upstream = reqwest::Url::parse(database_url).unwrap();
        let server = format!("{}:{}", upstream.host_str().unwrap(), upstream.port().unwrap_or(5432));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        upstream.set_port(Some(listener.local_addr().unwrap().port())).unwrap();
        // Plain text, so that the relay can read the messages.
        upstream.query_pairs_mut().append_pair("sslmode", "disable");
        let ends = Arc::new(Mutex::new(Vec::new()));
        let noted = ends.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let index = { let mut ends = noted.lock().unwrap(); ends.push(None); ends.len() - 1 };
                let (server, noted) = (TcpStream::connect(&server).await.unwrap(), noted.clone());
                tokio::spawn(async move {
                    let ended_with_terminate = relay(client, server).await;
                    noted.lock().unwrap()[index] = Some(ended_with_terminate);
                });
            }
        });
        SessionEnds { url: upstream.to_string(), ends }
    }

    /// How each connection ended, once all have (or after 10 s: None for those still open).
    async fn all_ended(&self) -> Vec<Option<bool>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ends = self.ends.lock().unwrap().clone();
            if ends.iter().all(Option::is_some) || Instant::now() > deadline {
                return ends;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Relay both ways until the client closes; whether its last five bytes were a Terminate.
async fn relay(client: TcpStream, server: TcpStream) -> bool {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
    let (mut buf, mut last) = (vec![0u8; 64 * 1024], Vec::new());
    loop {
        match from_client.read(&mut buf).await {
            Ok(0) => return last.ends_with(&TERMINATE),
            Ok(n) => {
                last.extend_from_slice(&buf[..n]);
                last.drain(..last.len().saturating_sub(TERMINATE.len()));
                if to_server.write_all(&buf[..n]).await.is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
}

mod a_stopped_app_ends_every_database_session_with_a_terminate {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres_and_redis() {
        let Some(mut env) = TestEnv::new(Backend::Scaled).await else { return };
        let sessions = SessionEnds::start(&env.database_url).await;
        env.database_url = sessions.url.clone();
        let desk = unlimited(&env).await;
        // Work that opens the pool's connections and an answer commit's own one.
        let id = create(&desk, &json!({"title": {"pl": "Koniec"}, "slug": "koniec",
            "questions": [{"type": "yes_no", "required": true, "text": {"pl": "Czy?"}}]})).await;
        publish_open(&desk, id).await;
        let (status, body) = respond(&desk, id, &json!({"browser_token": "przegladarka-koniec", "answers": {"q1": true}})).await;
        assert_eq!(status, 201, "{body}");

        let crate::notices::Desk { kit, store, .. } = desk;
        drop(store);
        kit.app.shutdown().await.unwrap();
        let ends = sessions.all_ended().await;
        assert!(ends.len() >= 2, "the app's sessions went through the relay: {ends:?}");
        assert!(ends.iter().all(|e| *e == Some(true)), "every session ended with a Terminate, none was dropped or left open: {ends:?}");
    }
}
