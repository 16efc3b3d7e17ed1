//! What the push receiver checks, written out from the RFCs, independently of the crate that
//! encrypts and of our VAPID signer: the VAPID header (RFC 8292) and the aes128gcm body
//! (RFC 8291 §3.4, RFC 8188 §2).

use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::{Aes128Gcm, KeyInit, Nonce, aead::Aead};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use p256::{
    PublicKey, SecretKey,
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    elliptic_curve::sec1::ToEncodedPoint,
};
use sha2::Sha256;

/// A VAPID token whose signature verified, with its claims.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedToken {
    pub(crate) token: String,
    pub(crate) claims: serde_json::Value,
}

/// `vapid t=<jwt>, k=<key>`: ES256 valid for `k`, `aud` = `origin`, `sub` present, and
/// `exp` in the next 24 hours.
pub(crate) fn verify_vapid(authorization: &str, origin: &str) -> Result<VerifiedToken, String> {
    let (token, key) = token_and_key(authorization)?;
    let key = URL_SAFE_NO_PAD.decode(&key).map_err(|e| format!("k: {e}"))?;
    let key = VerifyingKey::from_sec1_bytes(&key).map_err(|e| format!("k: {e}"))?;
    let (input, signature) = token.rsplit_once('.').ok_or("t is not a JWT")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| format!("signature: {e}"))?;
    let signature = Signature::from_slice(&signature).map_err(|e| format!("signature: {e}"))?;
    key.verify(input.as_bytes(), &signature).map_err(|_| "the signature does not verify with k")?;
    let (header, claims) = input.split_once('.').ok_or("t is not a JWT")?;
    let header = decode_json(header)?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}", header["alg"]));
    }
    let claims = decode_json(claims)?;
    if claims["aud"] != origin {
        return Err(format!("aud is {}, not this receiver's origin {origin}", claims["aud"]));
    }
    check_expiry(&claims)?;
    if claims["sub"].as_str().is_none_or(str::is_empty) {
        return Err("no sub".into());
    }
    Ok(VerifiedToken { token, claims })
}

/// `exp` is in the future and at most 24 hours away. Checked on every push, cached token or not.
pub(crate) fn check_expiry(claims: &serde_json::Value) -> Result<(), String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within the next 24 hours"));
    }
    Ok(())
}

fn token_and_key(authorization: &str) -> Result<(String, String), String> {
    let rest = authorization.strip_prefix("vapid ").ok_or("not a vapid Authorization")?;
    let (mut token, mut key) = (None, None);
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => token = Some(v.to_owned()),
            Some(("k", v)) => key = Some(v.to_owned()),
            _ => return Err(format!("unexpected part {part:?}")),
        }
    }
    Ok((token.ok_or("no t=")?, key.ok_or("no k=")?))
}

fn decode_json(part: &str) -> Result<serde_json::Value, String> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// A browser's side of a subscription: its P-256 key pair and auth secret.
pub(crate) struct UaKeys {
    secret: SecretKey,
    /// The public key as sent in `p256dh` (65 bytes), computed once: decryption needs it.
    public: Vec<u8>,
    auth: [u8; 16],
}

impl UaKeys {
    pub(crate) fn generate() -> UaKeys {
        let secret = SecretKey::random(&mut rand::rngs::OsRng);
        let public = secret.public_key().to_encoded_point(false).as_bytes().to_vec();
        UaKeys { secret, public, auth: rand::random() }
    }

    pub(crate) fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public)
    }

    pub(crate) fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// The plaintext of a body of one aes128gcm record.
    pub(crate) fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        if body.len() < 21 {
            return Err("body shorter than the aes128gcm header".into());
        }
        let (salt, id_len) = (&body[..16], body[20] as usize);
        let sender = body.get(21..21 + id_len).ok_or("keyid runs past the body")?;
        let ciphertext = &body[21 + id_len..];
        let sender_key = PublicKey::from_sec1_bytes(sender).map_err(|_| "keyid is not the sender's P-256 key")?;
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender_key.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public);
        info.extend_from_slice(sender_key.to_encoded_point(false).as_bytes());
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes()).expand(&info, &mut ikm).unwrap();
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
}
