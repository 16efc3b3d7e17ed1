//! VAPID (RFC 8292): `Authorization: vapid t=<JWT>, k=<our public key>`. The JWT is ES256 over
//! `{aud, exp, sub}`, where `aud` is the push service's origin, port included when it is not the
//! scheme's default (the crates we looked at drop it, which a push service on a non-default port
//! rejects). Signing costs about 0.23 ms, so one token per origin is signed and reused until an
//! hour before it expires.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::{Signature, SigningKey, signature::Signer};

/// Push services accept at most 24 hours.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// A token with less than this left is replaced, so none expires in flight or under clock skew.
const REFRESH_BEFORE: Duration = Duration::from_secs(60 * 60);
/// Origins are a handful of push services; a flood of made-up ones must not grow memory.
const MAX_ORIGINS: usize = 256;

struct Token {
    header: String,
    refresh_at: Instant,
}

pub(crate) struct Vapid {
    key: SigningKey,
    public_key: String,
    subject: String,
    tokens: Mutex<HashMap<String, Token>>,
}

/// base64url, with or without padding, as keys come from browsers and tools.
pub(crate) fn decode_b64url(value: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(value.trim().trim_end_matches('=')).ok()
}

impl Vapid {
    /// `private_key`: base64url of the 32-byte scalar. Errors never repeat the key.
    pub(crate) fn new(private_key: &str, subject: &str) -> Result<Vapid, (&'static str, String)> {
        let bytes = decode_b64url(private_key)
            .filter(|b| b.len() == 32)
            .ok_or(("HEJNAL_VAPID_PRIVATE_KEY", "must be the base64url of 32 bytes, as `hejnal vapid-keygen` prints".to_owned()))?;
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| ("HEJNAL_VAPID_PRIVATE_KEY", "is not a valid P-256 private key".to_owned()))?;
        check_subject(subject).map_err(|reason| ("HEJNAL_VAPID_SUBJECT", reason))?;
        let public_key = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        Ok(Vapid { key, public_key, subject: subject.to_owned(), tokens: Mutex::new(HashMap::new()) })
    }

    /// The `Authorization` value for a push service origin (`scheme://host[:port]`).
    pub(crate) fn authorization(&self, origin: &str) -> String {
        let now = Instant::now();
        let mut tokens = self.lock();
        if let Some(token) = tokens.get(origin).filter(|t| t.refresh_at > now) {
            return token.header.clone();
        }
        if tokens.len() >= MAX_ORIGINS {
            tokens.retain(|_, t| t.refresh_at > now);
            if tokens.len() >= MAX_ORIGINS {
                tokens.clear();
            }
        }
        let header = format!("vapid t={}, k={}", self.sign(origin, unix_now() + LIFETIME.as_secs()), self.public_key);
        tokens.insert(origin.to_owned(), Token { header: header.clone(), refresh_at: now + LIFETIME - REFRESH_BEFORE });
        header
    }

    /// Drop the token of an origin that refused it (401/403), so the next send signs afresh.
    pub(crate) fn forget(&self, origin: &str) {
        self.lock().remove(origin);
    }

    fn sign(&self, audience: &str, expires: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": expires, "sub": self.subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Token>> {
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Push services contact the sender through `sub`: a `mailto:` address or an `https:` URL.
fn check_subject(subject: &str) -> Result<(), String> {
    let ok = match subject.split_once(':') {
        Some(("mailto", address)) => address.contains('@') && !address.contains(char::is_whitespace),
        Some(("https", _)) => url::Url::parse(subject).is_ok_and(|u| u.host().is_some()),
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("{subject:?} must be mailto:someone@example.org or an https:// URL")) }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::{VerifyingKey, signature::Verifier};

    use super::*;

    fn vapid() -> Vapid {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        Vapid::new(&URL_SAFE_NO_PAD.encode(key.to_bytes()), "mailto:ops@krakow.pl").unwrap()
    }

    fn claims(header: &str) -> serde_json::Value {
        let jwt = header.strip_prefix("vapid t=").unwrap().split(", k=").next().unwrap();
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn the_token_is_a_valid_es256_jwt_for_the_origin_with_its_port() {
        let v = vapid();
        let header = v.authorization("http://127.0.0.1:4567");
        let (t, k) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        let key = VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
        let (input, sig) = t.rsplit_once('.').unwrap();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
        key.verify(input.as_bytes(), &sig).unwrap();
        let c = claims(&header);
        assert_eq!(c["aud"], "http://127.0.0.1:4567");
        assert_eq!(c["sub"], "mailto:ops@krakow.pl");
        let exp = c["exp"].as_u64().unwrap();
        assert!(exp > unix_now() + 11 * 3600 && exp <= unix_now() + 12 * 3600 + 5);
    }

    #[test]
    fn one_token_per_origin_until_forgotten() {
        let v = vapid();
        let a = v.authorization("https://fcm.googleapis.com");
        assert_eq!(a, v.authorization("https://fcm.googleapis.com"));
        assert_ne!(a, v.authorization("https://updates.push.services.mozilla.com"));
        v.forget("https://fcm.googleapis.com");
        assert!(!v.lock().contains_key("https://fcm.googleapis.com"));
        assert_eq!(v.lock().len(), 1);
    }

    #[test]
    fn bad_keys_and_subjects_are_named() {
        assert_eq!(Vapid::new("c2hvcnQ", "mailto:a@b.c").err().unwrap().0, "HEJNAL_VAPID_PRIVATE_KEY");
        let key = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(Vapid::new(&key, "mailto:a@b.c").is_ok());
        for subject in ["ops@krakow.pl", "mailto:", "http://krakow.pl", "https://"] {
            assert_eq!(Vapid::new(&key, subject).err().unwrap().0, "HEJNAL_VAPID_SUBJECT", "{subject}");
        }
    }
}
