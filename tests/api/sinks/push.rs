//! A web push receiver (axum on port 0) that checks what a push service would, and more:
//! the VAPID header (RFC 8292: ES256 valid for `k`, `aud` = this receiver's origin with its
//! port, `exp` in the future and at most 24 h away, `sub` present) and the body, which it
//! decrypts (RFC 8291 aes128gcm) with the subscription's own private key and auth secret.
//! Decryption is written out here from the RFC, independently of the crate that encrypts.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use aes_gcm::{Aes128Gcm, KeyInit, Nonce, aead::Aead};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hejnal::channels::PushTarget;
use hkdf::Hkdf;
use p256::{
    PublicKey, SecretKey,
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    elliptic_curve::sec1::ToEncodedPoint,
};
use sha2::Sha256;
use tokio::task::JoinHandle;

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

struct Receiver {
    origin: String,
    subscriptions: Vec<(SecretKey, [u8; 16])>,
    received: Vec<Push>,
    refused: Vec<String>,
    script: VecDeque<(u16, Option<String>)>,
}

pub struct PushReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<Receiver>>,
    task: JoinHandle<()>,
}

impl PushReceiver {
    pub async fn start() -> PushReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(Receiver {
            origin: format!("http://{addr}"),
            subscriptions: vec![],
            received: vec![],
            refused: vec![],
            script: VecDeque::new(),
        }));
        let app = Router::new().route("/push/{id}", post(handle)).with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        PushReceiver { addr, state, task }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new subscription, as a browser would make it: a fresh P-256 key pair and auth secret.
    pub fn subscribe(&self) -> PushTarget {
        let secret = SecretKey::random(&mut rand::rngs::OsRng);
        let auth: [u8; 16] = rand::random();
        let p256dh = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        let mut state = self.state.lock().unwrap();
        state.subscriptions.push((secret, auth));
        let endpoint = format!("{}/push/{}", self.origin(), state.subscriptions.len() - 1);
        PushTarget { endpoint, p256dh, auth: URL_SAFE_NO_PAD.encode(auth) }
    }

    /// Answer the next valid push with this status (and `Retry-After`).
    pub fn then(&self, status: u16, retry_after: Option<&str>) {
        self.state.lock().unwrap().script.push_back((status, retry_after.map(Into::into)));
    }

    pub fn received(&self) -> Vec<Push> {
        self.state.lock().unwrap().received.clone()
    }

    /// Why pushes were refused (bad VAPID, undecryptable body); empty when all were fine.
    pub fn refused(&self) -> Vec<String> {
        self.state.lock().unwrap().refused.clone()
    }
}

impl Drop for PushReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(state): State<Arc<Mutex<Receiver>>>, Path(id): Path<usize>, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().unwrap();
    let checked = check(&state, id, &headers, &body);
    let push = match checked {
        Ok(push) => push,
        Err((status, why)) => {
            state.refused.push(why.clone());
            return (status, why).into_response();
        }
    };
    state.received.push(push);
    let n = state.received.len();
    match state.script.pop_front() {
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

fn check(state: &Receiver, id: usize, headers: &HeaderMap, body: &[u8]) -> Result<Push, (StatusCode, String)> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (secret, auth) = state.subscriptions.get(id).ok_or((StatusCode::NOT_FOUND, "no such subscription".into()))?;
    let authorization = get("authorization").ok_or((StatusCode::UNAUTHORIZED, "no Authorization".to_string()))?;
    let (token, claims) = verify_vapid(&authorization, &state.origin).map_err(|e| (StatusCode::UNAUTHORIZED, e))?;
    if get("content-encoding").as_deref() != Some("aes128gcm") {
        return Err((StatusCode::BAD_REQUEST, "Content-Encoding must be aes128gcm".into()));
    }
    let plaintext = decrypt(secret, auth, body).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    Ok(Push { subscription: id, plaintext, ttl: get("ttl"), urgency: get("urgency"), topic: get("topic"), token, claims })
}

/// `vapid t=<jwt>, k=<key>`: the signature, and the claims a push service checks.
fn verify_vapid(authorization: &str, origin: &str) -> Result<(String, serde_json::Value), String> {
    let rest = authorization.strip_prefix("vapid ").ok_or("not a vapid Authorization")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => token = Some(v.to_owned()),
            Some(("k", v)) => key = Some(v.to_owned()),
            _ => return Err(format!("unexpected part {part:?}")),
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    let key = URL_SAFE_NO_PAD.decode(&key).map_err(|e| format!("k: {e}"))?;
    let key = VerifyingKey::from_sec1_bytes(&key).map_err(|e| format!("k: {e}"))?;
    let (input, signature) = token.rsplit_once('.').ok_or("t is not a JWT")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| format!("signature: {e}"))?;
    let signature = Signature::from_slice(&signature).map_err(|e| format!("signature: {e}"))?;
    key.verify(input.as_bytes(), &signature).map_err(|_| "the signature does not verify with k")?;
    let (header, claims) = input.split_once('.').ok_or("t is not a JWT")?;
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}", header["alg"]));
    }
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if claims["aud"] != origin {
        return Err(format!("aud is {}, not this receiver's origin {origin}", claims["aud"]));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within the next 24 hours"));
    }
    if claims["sub"].as_str().is_none_or(str::is_empty) {
        return Err("no sub".into());
    }
    Ok((token, claims))
}

/// RFC 8291 §3.4 and RFC 8188 §2, for a body of one record.
fn decrypt(secret: &SecretKey, auth: &[u8; 16], body: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body shorter than the aes128gcm header".into());
    }
    let (salt, id_len) = (&body[..16], body[20] as usize);
    let sender = body.get(21..21 + id_len).ok_or("keyid runs past the body")?;
    let ciphertext = &body[21 + id_len..];
    let sender = PublicKey::from_sec1_bytes(sender).map_err(|_| "keyid is not the sender's P-256 key")?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), sender.as_affine());
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(secret.public_key().to_encoded_point(false).as_bytes());
    info.extend_from_slice(sender.to_encoded_point(false).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes()).expand(&info, &mut ikm).unwrap();
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
    let cipher = Aes128Gcm::new_from_slice(&cek).unwrap();
    let mut padded = cipher.decrypt(&Nonce::from(nonce), ciphertext).map_err(|_| "AES-GCM authentication failed")?;
    // The last record ends with the delimiter 0x02, then any zero padding.
    let end = padded.iter().rposition(|&b| b != 0).ok_or("no padding delimiter")?;
    if padded[end] != 2 {
        return Err(format!("padding delimiter is {}, not 2", padded[end]));
    }
    padded.truncate(end);
    Ok(padded)
}
