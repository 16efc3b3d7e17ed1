//! Tokens, codes and digests for residents' links.
//!
//! The preferences link is `{public_id}.{mac}`: a random 128-bit id and the first 128 bits of
//! its HMAC-SHA256 under the server's link key. A forged link is refused without touching the
//! database, and a stolen table gives no working link.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};

/// `bytes` random bytes, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A 6-digit code, uniformly drawn.
pub fn sms_code() -> String {
    format!("{:06}", OsRng.gen_range(0..1_000_000))
}

/// SHA-256, hex. Stored instead of tokens, codes and addresses wherever equality is enough.
pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Compare digests in constant time.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs and opens preferences links.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    pub fn new(key: &[u8]) -> Self {
        LinkSigner { key: key.to_vec() }
    }

    fn mac(&self, public_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(public_id.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    pub fn sign(&self, public_id: &str) -> String {
        format!("{public_id}.{}", self.mac(public_id))
    }

    /// The public id inside a genuine link, or `None`.
    pub fn open(&self, token: &str) -> Option<String> {
        let (public_id, mac) = token.split_once('.')?;
        (public_id.len() == 22 && same_digest(&self.mac(public_id), mac)).then(|| public_id.to_owned())
    }

    /// A keyed digest of `value` under a purpose `tag` (`csrf`, `ip`): equal inputs give equal
    /// digests, and without the key nothing leads back to the input (an IPv4 address could
    /// be found from a plain SHA-256 by trying them all). Tags contain `:`, which no
    /// preferences id does, so no digest is ever a preferences link's MAC.
    pub fn keyed(&self, tag: &str, value: &str) -> String {
        self.mac(&format!("{tag}:{value}"))
    }

    /// A survey invitation's link token: `{invitation id}.{MAC}`. Nothing secret is stored;
    /// a forged token is refused before any database read.
    pub fn sign_invitation(&self, invitation_id: i64) -> String {
        format!("{invitation_id}.{}", self.keyed("invitation", &invitation_id.to_string()))
    }

    /// The invitation id inside a genuine invitation token, or `None`.
    pub fn open_invitation(&self, token: &str) -> Option<i64> {
        let (id, mac) = token.split_once('.')?;
        let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
        same_digest(&self.keyed("invitation", &id.to_string()), mac).then_some(id)
    }
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_link_opens_and_a_tampered_one_does_not() {
        let signer = LinkSigner::new(b"k");
        let id = random_token(16);
        let link = signer.sign(&id);
        assert_eq!(signer.open(&link).as_deref(), Some(id.as_str()));
        let mut forged = link.clone();
        forged.replace_range(0..1, if link.starts_with('A') { "B" } else { "A" });
        assert_eq!(signer.open(&forged), None);
        assert_eq!(LinkSigner::new(b"other").open(&link), None);
        assert_eq!(signer.open("nonsense"), None);
    }

    #[test]
    fn an_invitation_token_opens_only_untampered_and_only_as_an_invitation() {
        let signer = LinkSigner::new(b"k");
        let token = signer.sign_invitation(42);
        assert_eq!(signer.open_invitation(&token), Some(42));
        let (_, mac) = token.split_once('.').unwrap();
        assert_eq!(signer.open_invitation(&format!("43.{mac}")), None);
        assert_eq!(LinkSigner::new(b"other").open_invitation(&token), None);
        assert_eq!(signer.open(&token), None, "not a preferences link");
    }

    #[test]
    fn codes_have_six_digits() {
        for _ in 0..100 {
            let code = sms_code();
            assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{code}");
        }
    }
}
