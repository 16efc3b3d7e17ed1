//! RFC 8291 message encryption (aes128gcm, RFC 8188) with `ring`, the crypto library the TLS
//! stack already carries. Its P-256 is assembly; the pure-Rust curve this replaced made the key
//! agreement the largest cost of a push (see docs/performance.md, Broadcasts).
//!
//! One record: `salt (16) | rs (4) | idlen (1) | keyid = our ephemeral public key (65)`, then the
//! plaintext with the last-record delimiter 0x02, sealed with AES-128-GCM. Every message gets a
//! fresh key pair and salt (RFC 8291 §3.1, §4).

use ring::{
    aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey},
    agreement::{ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey, agree_ephemeral},
    hkdf::{HKDF_SHA256, KeyType, Salt},
    rand::{SecureRandom, SystemRandom},
};

/// The record size we declare. One record holds any payload a push service must accept.
const RECORD_SIZE: u32 = 4096;
const PUBLIC_KEY_LEN: usize = 65;
const TAG_LEN: usize = 16;

/// Why a message could not be encrypted. Only `BadKey` is the subscription's fault.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EncryptError {
    /// `p256dh` is not an uncompressed point on P-256.
    BadKey,
    /// The plaintext does not fit one record.
    TooLong(usize),
    /// The system's random source failed.
    Random,
}

impl std::fmt::Display for EncryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncryptError::BadKey => f.write_str("the subscription's p256dh is not a P-256 public key"),
            EncryptError::TooLong(n) => write!(f, "a push payload of {n} bytes does not fit one {RECORD_SIZE}-byte record"),
            EncryptError::Random => f.write_str("the system's random source failed"),
        }
    }
}

/// HKDF output lengths are given to `ring` as a key type.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &ring::hkdf::Prk, info: &[&[u8]], out: &mut [u8]) {
    // Only fails when the length exceeds 255 hash lengths; ours are 12 to 32 bytes.
    prk.expand(info, Len(out.len())).and_then(|okm| okm.fill(out)).expect("HKDF output of at most 32 bytes");
}

/// The aes128gcm body of `plaintext` for the subscription keys `ua_public` (65 bytes, as
/// decoded from `p256dh`) and `auth` (16 bytes).
pub(crate) fn encrypt(plaintext: &[u8], ua_public: &[u8], auth: &[u8; 16]) -> Result<Vec<u8>, EncryptError> {
    if plaintext.len() + 1 + TAG_LEN > RECORD_SIZE as usize {
        return Err(EncryptError::TooLong(plaintext.len()));
    }
    if ua_public.len() != PUBLIC_KEY_LEN {
        return Err(EncryptError::BadKey);
    }
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(|_| EncryptError::Random)?;
    let ours = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| EncryptError::Random)?;
    let our_public = ours.compute_public_key().map_err(|_| EncryptError::Random)?;
    let our_public = our_public.as_ref();

    // IKM = HKDF(auth, ecdh, "WebPush: info" 0 ua_public as_public, 32)  (RFC 8291 §3.3)
    let mut ikm = [0u8; 32];
    agree_ephemeral(ours, &UnparsedPublicKey::new(&ECDH_P256, ua_public), |shared| {
        let prk = Salt::new(HKDF_SHA256, auth).extract(shared);
        expand(&prk, &[b"WebPush: info\0", ua_public, our_public], &mut ikm);
    })
    .map_err(|_| EncryptError::BadKey)?;

    // CEK and nonce from the salt (RFC 8188 §2.2, §2.3).
    let prk = Salt::new(HKDF_SHA256, &salt).extract(&ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    expand(&prk, &[b"Content-Encoding: aes128gcm\0"], &mut cek);
    expand(&prk, &[b"Content-Encoding: nonce\0"], &mut nonce);

    let mut body = Vec::with_capacity(21 + PUBLIC_KEY_LEN + plaintext.len() + 1 + TAG_LEN);
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(PUBLIC_KEY_LEN as u8);
    body.extend_from_slice(our_public);
    let header_len = body.len();
    body.extend_from_slice(plaintext);
    body.push(2); // the last record's delimiter, no padding
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &cek).expect("16-byte key"));
    let mut record = body.split_off(header_len);
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut record)
        .expect("a record under 4 KiB seals");
    body.append(&mut record);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::push_check::UaKeys;

    fn ua() -> (UaKeys, Vec<u8>, [u8; 16]) {
        let keys = UaKeys::generate();
        let public = crate::channels::push::vapid::decode_b64url(&keys.p256dh()).unwrap();
        let auth: [u8; 16] = crate::channels::push::vapid::decode_b64url(&keys.auth()).unwrap().try_into().unwrap();
        (keys, public, auth)
    }

    #[test]
    fn the_receiver_decrypts_what_we_encrypt() {
        let (keys, public, auth) = ua();
        let body = encrypt("Ostrzeżenie: woda".as_bytes(), &public, &auth).unwrap();
        assert_eq!(&body[16..20], &4096u32.to_be_bytes(), "record size");
        assert_eq!(body[20], 65, "keyid length");
        assert_eq!(keys.decrypt(&body).unwrap(), "Ostrzeżenie: woda".as_bytes());
    }

    #[test]
    fn every_message_has_its_own_key_and_salt() {
        let (keys, public, auth) = ua();
        let (a, b) = (encrypt(b"x", &public, &auth).unwrap(), encrypt(b"x", &public, &auth).unwrap());
        assert_ne!(a[..16], b[..16], "salt");
        assert_ne!(a[21..86], b[21..86], "ephemeral public key");
        assert_eq!(keys.decrypt(&b).unwrap(), b"x");
    }

    #[test]
    fn a_key_off_the_curve_or_the_wrong_length_is_refused() {
        let (_, mut public, auth) = ua();
        assert_eq!(encrypt(b"x", &public[..33], &auth), Err(EncryptError::BadKey));
        public[64] ^= 1;
        assert_eq!(encrypt(b"x", &public, &auth), Err(EncryptError::BadKey));
    }

    #[test]
    fn the_largest_payload_fits_and_one_byte_more_does_not() {
        let (keys, public, auth) = ua();
        let largest = vec![b'a'; 4096 - 1 - TAG_LEN];
        assert_eq!(keys.decrypt(&encrypt(&largest, &public, &auth).unwrap()).unwrap(), largest);
        assert_eq!(encrypt(&[b'a'; 4096 - TAG_LEN], &public, &auth), Err(EncryptError::TooLong(4096 - TAG_LEN)));
    }
}
