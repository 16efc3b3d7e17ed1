//! VAPID keys (RFC 8292): a P-256 key pair. The private key is the 32-byte scalar, the public
//! key the 65-byte uncompressed point, both base64url without padding, as browsers expect.

use std::process::ExitCode;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint};

pub fn keygen() -> ExitCode {
    let (private, public) = generate();
    println!("HEJNAL_VAPID_PRIVATE_KEY={private}");
    println!("HEJNAL_VAPID_PUBLIC_KEY={public}");
    ExitCode::SUCCESS
}

fn generate() -> (String, String) {
    let secret = SecretKey::random(&mut rand::rngs::OsRng);
    let public = secret.public_key().to_encoded_point(false);
    (URL_SAFE_NO_PAD.encode(secret.to_bytes()), URL_SAFE_NO_PAD.encode(public.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_belongs_to_the_private_key() {
        let (private, public) = generate();
        let private = URL_SAFE_NO_PAD.decode(private).unwrap();
        let public = URL_SAFE_NO_PAD.decode(public).unwrap();
        assert_eq!(private.len(), 32);
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 0x04, "uncompressed point");
        let secret = SecretKey::from_slice(&private).unwrap();
        assert_eq!(secret.public_key().to_encoded_point(false).as_bytes(), &public[..]);
    }
}
