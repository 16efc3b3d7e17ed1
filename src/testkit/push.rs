//! A web push receiver (axum on port 0) that checks what a push service would, and more: the
//! VAPID header (ES256 valid for `k`, `aud` = this receiver's origin with its port, `exp` in the
//! future and at most 24 h away, `sub` present) and the body, which it decrypts with the
//! subscription's own private key and auth secret (see `push_check.rs`).
//!
//! Decrypting costs an ECDH per push, more than sending one, so the bench asks for a sample:
//! one push in N is decrypted, the others pass the same VAPID check and are counted. A token
//! that verified once is remembered by its exact header value; its expiry is checked on every
//! push all the same.

use std::{
    collections::{HashMap, VecDeque},
    io,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use tokio::task::JoinHandle;

use super::{
    Keep, Watch,
    push_check::{UaKeys, VerifiedToken, check_expiry, verify_vapid},
    tally::Tally,
};
use crate::channels::PushTarget;

/// One push that arrived, verified and decrypted.
#[derive(Debug, Clone)]
pub struct Push {
    pub subscription: usize,
    pub plaintext: Vec<u8>,
    pub ttl: Option<String>,
    pub urgency: Option<String>,
    pub topic: Option<String>,
    /// The VAPID JWT (`t=`) and its claims.
    pub token: String,
    pub claims: serde_json::Value,
}

impl Push {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.plaintext).expect("a JSON payload")
    }
}

/// What the receiver keeps and how much it decrypts.
#[derive(Debug, Clone, Copy)]
pub struct PushOptions {
    /// Which decrypted pushes to keep for [`PushReceiver::received`].
    pub keep: Keep,
    /// Decrypt one push in this many; 1 decrypts every push (tests).
    pub decrypt_one_in: u64,
    /// Decrypt every push sent with `Urgency: high` too, whatever the sample, so that watches
    /// see every alert.
    pub decrypt_urgent: bool,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions { keep: Keep::All, decrypt_one_in: 1, decrypt_urgent: false }
    }
}

/// Verified tokens remembered; one sender uses one per origin, so a few suffice.
const MAX_TOKENS: usize = 64;

struct Receiver {
    origin: String,
    options: PushOptions,
    subscriptions: RwLock<Vec<Arc<UaKeys>>>,
    received: Tally<Push>,
    decrypted: AtomicU64,
    refused: Tally<String>,
    script: Mutex<VecDeque<(u16, Option<String>)>>,
    tokens: Mutex<HashMap<String, Arc<VerifiedToken>>>,
}

pub struct PushReceiver {
    state: Arc<Receiver>,
    task: JoinHandle<()>,
}

impl PushReceiver {
    /// A receiver that decrypts and keeps every push, for tests. Panics if it cannot bind a port.
    pub async fn start() -> PushReceiver {
        PushReceiver::bind(PushOptions::default()).await.expect("the push receiver binds a local port")
    }

    pub async fn bind(options: PushOptions) -> io::Result<PushReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Receiver {
            origin: format!("http://{addr}"),
            options: PushOptions { decrypt_one_in: options.decrypt_one_in.max(1), ..options },
            subscriptions: RwLock::new(Vec::new()),
            received: Tally::new(options.keep),
            decrypted: AtomicU64::new(0),
            // Refusals are few and say what went wrong: keep the latest even when counting.
            refused: Tally::new(if options.keep == Keep::All { Keep::All } else { Keep::Last(8) }),
            script: Mutex::new(VecDeque::new()),
            tokens: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/push/{id}", post(handle))
            .route("/push/{id}/{resident}", post(handle_below))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(PushReceiver { state, task })
    }

    pub fn origin(&self) -> String {
        self.state.origin.clone()
    }

    /// A new subscription, as a browser would make it: a fresh P-256 key pair and auth secret.
    /// Any path below its endpoint reaches it too, so that many residents can share a few key
    /// pairs and still have endpoints of their own.
    pub fn subscribe(&self) -> PushTarget {
        let keys = UaKeys::generate();
        let (p256dh, auth) = (keys.p256dh(), keys.auth());
        let mut subscriptions = self.state.subscriptions.write().unwrap();
        subscriptions.push(Arc::new(keys));
        let endpoint = format!("{}/push/{}", self.state.origin, subscriptions.len() - 1);
        PushTarget { endpoint, p256dh, auth }
    }

    /// Answer the next valid push with this status (and `Retry-After`).
    pub fn then(&self, status: u16, retry_after: Option<&str>) {
        self.state.script.lock().unwrap().push_back((status, retry_after.map(Into::into)));
    }

    /// The decrypted pushes kept (every push, with the default options).
    pub fn received(&self) -> Vec<Push> {
        self.state.received.kept()
    }

    /// Every valid push that arrived, decrypted or not.
    pub fn count(&self) -> u64 {
        self.state.received.count()
    }

    /// Valid pushes that were decrypted.
    pub fn decrypted(&self) -> u64 {
        self.state.decrypted.load(Ordering::Relaxed)
    }

    /// Why pushes were refused (bad VAPID, undecryptable body); empty when all were fine.
    /// A counting receiver keeps the last eight.
    pub fn refused(&self) -> Vec<String> {
        self.state.refused.kept()
    }

    pub fn refused_count(&self) -> u64 {
        self.state.refused.count()
    }

    /// Count the pushes that carry the watch's marker: in the Topic header, seen as
    /// `topic:<value>\n` (every push), or in the plaintext (decrypted pushes only).
    pub fn add_watch(&self, watch: &Arc<Watch>) {
        self.state.received.add_watch(watch);
    }
}

impl Drop for PushReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle_below(state: State<Arc<Receiver>>, Path((id, _resident)): Path<(usize, String)>, headers: HeaderMap, body: Bytes) -> Response {
    handle(state, Path(id), headers, body).await
}

async fn handle(State(state): State<Arc<Receiver>>, Path(id): Path<usize>, headers: HeaderMap, body: Bytes) -> Response {
    let n = match accept(&state, id, &headers, &body) {
        Ok(n) => n,
        Err((status, why)) => {
            state.refused.record(why.as_bytes(), || why.clone());
            return (status, why).into_response();
        }
    };
    let scripted = state.script.lock().unwrap().pop_front();
    match scripted {
        Some((status, retry_after)) => {
            let mut response = StatusCode::from_u16(status).unwrap().into_response();
            if let Some(value) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, value.parse().unwrap());
            }
            response
        }
        None => (StatusCode::CREATED, [(header::LOCATION, format!("{}/message/{n}", state.origin))]).into_response(),
    }
}

type Refusal = (StatusCode, String);

/// Check one push, decrypt it if it is in the sample, and record it; its number, from 1.
fn accept(state: &Receiver, id: usize, headers: &HeaderMap, body: &[u8]) -> Result<u64, Refusal> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let keys = state.subscriptions.read().unwrap().get(id).cloned().ok_or((StatusCode::NOT_FOUND, "no such subscription".into()))?;
    let authorization = get("authorization").ok_or((StatusCode::UNAUTHORIZED, "no Authorization".to_string()))?;
    let verified = verified_token(state, &authorization).map_err(|e| (StatusCode::UNAUTHORIZED, e))?;
    if get("content-encoding").as_deref() != Some("aes128gcm") {
        return Err((StatusCode::BAD_REQUEST, "Content-Encoding must be aes128gcm".into()));
    }
    let (urgency, topic) = (get("urgency"), get("topic"));
    let topic_line = topic.as_deref().map(|t| format!("topic:{t}\n")).unwrap_or_default();
    if !in_sample(state, urgency.as_deref()) {
        return Ok(state.received.record_unkept(topic_line.as_bytes()));
    }
    // Counted only as decrypted if it decrypts; otherwise it is refused.
    let plaintext = keys.decrypt(body).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    state.decrypted.fetch_add(1, Ordering::Relaxed);
    let push = || Push {
        subscription: id,
        plaintext: plaintext.clone(),
        ttl: get("ttl"),
        urgency: urgency.clone(),
        topic: topic.clone(),
        token: verified.token.clone(),
        claims: verified.claims.clone(),
    };
    let haystack = [topic_line.as_bytes(), &plaintext].concat();
    Ok(state.received.record(&haystack, push))
}

/// Whether this push is decrypted: one in `decrypt_one_in`, and every urgent one if asked.
fn in_sample(state: &Receiver, urgency: Option<&str>) -> bool {
    if state.options.decrypt_urgent && urgency == Some("high") {
        return true;
    }
    let arrived = state.received.count();
    arrived.is_multiple_of(state.options.decrypt_one_in)
}

/// The token of a VAPID header: verified now, or remembered from an earlier push with exactly
/// this header (a signature check costs more than the rest of a push), its expiry checked again.
fn verified_token(state: &Receiver, authorization: &str) -> Result<Arc<VerifiedToken>, String> {
    let remembered = state.tokens.lock().unwrap().get(authorization).cloned();
    if let Some(token) = remembered {
        check_expiry(&token.claims)?;
        return Ok(token);
    }
    let token = Arc::new(verify_vapid(authorization, &state.origin)?);
    let mut tokens = state.tokens.lock().unwrap();
    if tokens.len() >= MAX_TOKENS {
        tokens.clear();
    }
    tokens.insert(authorization.to_owned(), Arc::clone(&token));
    Ok(token)
}
