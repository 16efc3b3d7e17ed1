//! DKIM signing (RFC 6376), relaxed/relaxed, with `ring`: RSA-SHA256 (the one every receiver
//! checks) or Ed25519-SHA256 (RFC 8463). The key comes from a PEM file (`HEJNAL_DKIM_KEY_FILE`:
//! PKCS#8, or PKCS#1 for RSA) and the selector from `HEJNAL_DKIM_SELECTOR`. lettre can sign too,
//! but its signer brings the `rsa` crate, whose private-key operations are not constant-time
//! (RUSTSEC-2023-0071); `ring`'s are, and it is already here for TLS and web push.
//!
//! The signature is computed over the message exactly as lettre formats it and is put in front
//! of it; nothing after signing touches the headers or the body.

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use sha2::{Digest, Sha256};

/// Headers signed when the message has them. `from` twice: a second From added in transit
/// then breaks the signature (RFC 6376 §8.15).
const SIGNED: [&str; 11] =
    ["from", "from", "to", "subject", "date", "message-id", "mime-version", "content-type", "list-unsubscribe", "list-unsubscribe-post", "auto-submitted"];

enum Key {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Signs every outgoing email for one domain and selector.
pub(crate) struct DkimSigner {
    domain: String,
    selector: String,
    key: Key,
}

impl std::fmt::Debug for DkimSigner {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner").field("domain", &self.domain).field("selector", &self.selector).field("algorithm", &self.algorithm()).finish()
    }
}

impl DkimSigner {
    /// From the PEM text of the private key. An error names the setting at fault and says
    /// what is wrong, never the key.
    pub(crate) fn new(domain: &str, selector: &str, pem: &str) -> Result<DkimSigner, (&'static str, String)> {
        check_label_chain(selector).map_err(|e| ("HEJNAL_DKIM_SELECTOR", format!("{selector:?} {e}")))?;
        check_label_chain(domain).map_err(|e| ("HEJNAL_DKIM_DOMAIN", format!("{domain:?} {e}")))?;
        let key = private_key(pem).map_err(|e| ("HEJNAL_DKIM_KEY_FILE", e))?;
        Ok(DkimSigner { domain: domain.to_ascii_lowercase(), selector: selector.to_owned(), key })
    }

    fn algorithm(&self) -> &'static str {
        match self.key {
            Key::Rsa(_) => "rsa-sha256",
            Key::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// Where the public key must be published, and the TXT record to publish there.
    pub(crate) fn dns_record(&self) -> (String, String) {
        let (kind, public) = match &self.key {
            Key::Rsa(key) => ("rsa", rsa_subject_public_key_info(key.public_key().as_ref())),
            Key::Ed25519(key) => ("ed25519", key.public_key().as_ref().to_vec()),
        };
        (format!("{}._domainkey.{}", self.selector, self.domain), format!("v=DKIM1; k={kind}; p={}", STANDARD.encode(public)))
    }

    /// `message` (CRLF lines, as lettre formats it) with a `DKIM-Signature` header in front.
    /// `now`: seconds since 1970, the signature's `t=`.
    pub(crate) fn sign(&self, message: &[u8], now: u64) -> Result<Vec<u8>, String> {
        let (head, body) = split_message(message);
        let fields = header_fields(head);
        let body_hash = STANDARD.encode(Sha256::digest(relaxed_body(body)));
        let mut signed_names = Vec::new();
        let mut hashed = Vec::new();
        // Each name takes the next instance from the bottom up (RFC 6376 §5.4.2); a name listed
        // more often than it occurs is signed as absent.
        for (i, name) in SIGNED.iter().enumerate() {
            let mut instances = fields.iter().rev().filter(|(n, _)| n.eq_ignore_ascii_case(name)).peekable();
            if instances.peek().is_none() {
                continue;
            }
            signed_names.push(*name);
            let listed_before = SIGNED[..i].iter().filter(|earlier| *earlier == name).count();
            if let Some((n, v)) = instances.nth(listed_before) {
                hashed.extend_from_slice(relaxed_header(n, v).as_bytes());
                hashed.extend_from_slice(b"\r\n");
            }
        }
        let unsigned = format!(
            "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={}; s={}; t={now};\r\n\th={}; bh={body_hash};\r\n\tb=",
            self.algorithm(),
            self.domain,
            self.selector,
            signed_names.join(":")
        );
        let (name, value) = unsigned.split_once(':').expect("the header has a colon");
        hashed.extend_from_slice(relaxed_header(name, value).as_bytes());
        let signature = STANDARD.encode(self.signature_of(&hashed)?);
        let mut out = Vec::with_capacity(unsigned.len() + signature.len() + 2 + message.len());
        out.extend_from_slice(unsigned.as_bytes());
        out.extend_from_slice(signature.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(message);
        Ok(out)
    }

    fn signature_of(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        match &self.key {
            Key::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), data, &mut signature).map_err(|_| "RSA signing failed".to_owned())?;
                Ok(signature)
            }
            // RFC 8463: Ed25519 signs the SHA-256 of the data.
            Key::Ed25519(key) => Ok(key.sign(&Sha256::digest(data)).as_ref().to_vec()),
        }
    }
}

/// The key of the first PEM block: Ed25519 or RSA in PKCS#8, or RSA in PKCS#1.
fn private_key(pem: &str) -> Result<Key, String> {
    let (label, der) = pem_block(pem)?;
    match label.as_str() {
        "RSA PRIVATE KEY" => Ok(Key::Rsa(RsaKeyPair::from_der(&der).map_err(|e| rsa_error(&e))?)),
        "PRIVATE KEY" => match Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            Ok(key) => Ok(Key::Ed25519(key)),
            Err(_) => Ok(Key::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|e| rsa_error(&e))?)),
        },
        other => Err(format!("holds a {other:?} block; expected PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY (PKCS#1)")),
    }
}

fn rsa_error(e: &ring::error::KeyRejected) -> String {
    format!("is not a usable RSA key ({e}); DKIM keys must be RSA of 2048 bits or more, or Ed25519")
}

/// Selectors and domains are dot-separated DNS labels.
fn check_label_chain(text: &str) -> Result<(), &'static str> {
    let labels_ok = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    if labels_ok { Ok(()) } else { Err("is not a DNS name (letters, digits, '-', '_', separated by dots)") }
}

/// The first PEM block: its label and its DER bytes.
fn pem_block(pem: &str) -> Result<(String, Vec<u8>), String> {
    let start = pem.find("-----BEGIN ").ok_or("holds no PEM block (-----BEGIN …-----)")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or("has a broken BEGIN line")?;
    let end = rest.find(&format!("-----END {label}-----")).ok_or_else(|| format!("has no END line for its {label} block"))?;
    let text: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(text).map_err(|_| format!("has a {label} block that is not base64"))?;
    Ok((label.to_owned(), der))
}

/// Headers and body; the body starts after the first empty line.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, &[]),
    }
}

/// Each header field: its name and its raw value (folded lines kept, CRLFs included).
fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.to_owned(), value.to_owned()));
        }
    }
    fields
}

/// `name:value` in relaxed form (RFC 6376 §3.4.2): the name in lower case, the value unfolded,
/// runs of white space as one space, none at the ends.
fn relaxed_header(name: &str, value: &str) -> String {
    let unfolded = value.replace("\r\n", "");
    let squeezed = squeeze_spaces(unfolded.as_bytes());
    format!("{}:{}", name.trim().to_ascii_lowercase(), String::from_utf8_lossy(&squeezed).trim())
}

/// Each run of spaces and tabs as one space (kept at the end too: the callers trim).
fn squeeze_spaces(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for &b in text {
        let space = b == b' ' || b == b'\t';
        if !(space && out.last() == Some(&b' ')) {
            out.push(if space { b' ' } else { b });
        }
    }
    out
}

/// The body in relaxed form (RFC 6376 §3.4.4): runs of white space in a line as one space, none
/// at line ends, no empty lines at the end; empty if nothing is left.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut squeezed = squeeze_spaces(line);
        if squeezed.last() == Some(&b' ') {
            squeezed.pop();
        }
        lines.push(squeezed);
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len());
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// DER `SubjectPublicKeyInfo` for an RSA public key (`RSAPublicKey` DER), the form DKIM's `p=`
/// takes for RSA.
fn rsa_subject_public_key_info(rsa_public_key: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID 1.2.840.113549.1.1.1 (rsaEncryption), NULL }
    const ALGORITHM: [u8; 15] = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut bit_string = vec![0u8]; // no unused bits
    bit_string.extend_from_slice(rsa_public_key);
    let mut inner = ALGORITHM.to_vec();
    inner.extend(der(0x03, &bit_string));
    der(0x30, &inner)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use ring::signature::{ED25519, UnparsedPublicKey};

    use super::*;

    fn ed25519_pem() -> String {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(pkcs8.as_ref()))
    }

    #[test]
    fn canonicalisation_is_the_rfc_example() {
        // RFC 6376 §3.4.5.
        let fields = header_fields(b"A: X\r\nB : Y\t\r\n\tZ  \r\n");
        let relaxed: Vec<String> = fields.iter().map(|(n, v)| relaxed_header(n, v)).collect();
        assert_eq!(relaxed, ["a:X", "b:Y Z"]);
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"", "an empty body stays empty");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
    }

    #[test]
    fn an_ed25519_signature_verifies_over_the_signed_headers_and_body() {
        let signer = DkimSigner::new("Krakow.pl", "hejnal", &ed25519_pem()).unwrap();
        let message = b"From: UM <a@krakow.pl>\r\nTo: b@example.org\r\nSubject: Woda\r\n\tjutro\r\nX-Other: no\r\n\r\nTekst  ostrzezenia \r\n\r\n";
        let signed = signer.sign(message, 1_764_000_000).unwrap();
        assert!(signed.ends_with(message), "the message follows the header unchanged");
        let text = String::from_utf8(signed.clone()).unwrap();
        let header = text.split("\r\nFrom:").next().unwrap();
        assert!(header.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=krakow.pl; s=hejnal; t=1764000000;"));
        assert!(header.contains("h=from:from:to:subject;"), "{header}");
        let body_hash = STANDARD.encode(Sha256::digest(b"Tekst ostrzezenia\r\n"));
        assert!(header.contains(&format!("bh={body_hash};")), "{header}");

        // What a verifier hashes: the signed headers, then this header with b= empty.
        let (before_b, b) = header.rsplit_once("b=").unwrap();
        let mut hashed = b"from:UM <a@krakow.pl>\r\nto:b@example.org\r\nsubject:Woda jutro\r\n".to_vec();
        let (name, value) = format!("{before_b}b=").split_once(':').map(|(n, v)| (n.to_owned(), v.to_owned())).unwrap();
        hashed.extend_from_slice(relaxed_header(&name, &value).as_bytes());
        let (_, record) = signer.dns_record();
        let public = STANDARD.decode(record.split("p=").nth(1).unwrap()).unwrap();
        let signature = STANDARD.decode(b.trim()).unwrap();
        UnparsedPublicKey::new(&ED25519, public).verify(&Sha256::digest(&hashed), &signature).expect("the signature verifies");
    }

    #[test]
    fn the_dns_record_is_named_by_selector_and_domain() {
        let signer = DkimSigner::new("krakow.pl", "s2026", &ed25519_pem()).unwrap();
        let (name, record) = signer.dns_record();
        assert_eq!(name, "s2026._domainkey.krakow.pl");
        assert!(record.starts_with("v=DKIM1; k=ed25519; p="));
        assert_eq!(STANDARD.decode(&record["v=DKIM1; k=ed25519; p=".len()..]).unwrap().len(), 32);
    }

    #[test]
    fn bad_keys_and_names_are_refused_with_the_reason() {
        let pem = ed25519_pem();
        let refused = |domain: &str, selector: &str, pem: &str| DkimSigner::new(domain, selector, pem).unwrap_err();
        let (key, reason) = refused("krakow.pl", "bad selector", &pem);
        assert_eq!(key, "HEJNAL_DKIM_SELECTOR");
        assert!(reason.contains("is not a DNS name"), "{reason}");
        assert_eq!(refused("krakow..pl", "s", &pem).0, "HEJNAL_DKIM_DOMAIN");
        assert_eq!(refused("krakow.pl", "s", "not a key"), ("HEJNAL_DKIM_KEY_FILE", "holds no PEM block (-----BEGIN …-----)".into()));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(refused("krakow.pl", "s", cert).1.contains("CERTIFICATE"));
        let junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(refused("krakow.pl", "s", junk).1.contains("2048 bits"));
        let debug = format!("{:?}", DkimSigner::new("krakow.pl", "s", &pem).unwrap());
        assert!(!debug.contains("PRIVATE") && debug.contains("ed25519-sha256"), "{debug}");
    }

    #[test]
    fn the_rsa_record_carries_the_public_key_as_openssl_writes_it() {
        let signer = DkimSigner::new("krakow.pl", "s", include_str!("../../../tests/data/dkim-test-rsa.pem")).unwrap();
        // `openssl pkey -in tests/data/dkim-test-rsa.pem -pubout -outform DER | base64 -w0`
        let openssl = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnUEqfLlyVwGPoA9ARM5tdMN5PQt19NKDZkmqylzLcFJQ+8794q1nwCcjYC3EFPO0Zv+/QPyu2xbaE5s/9rIeEbtk4+sHOroCRzpVolm+IXha9CrHZrk7G9ykTjzCuPja3AAmtcfg2UEQxvthUxSH0DNo1h7Y9LpGhCb+0ztwzbYab/TcyExwrVE9rKs7oXKhmGmpGYzE+a/hBMd2FpVMZkWqCbTOeUhluKt0qyPfmq+z8fQhxlpbIthP8IYxk4MPrnN/5py4A2S/okhgd2iUuRsDXatzmhWhj5VRdqWR9OyTlV9fRn7j7VnvhBF5dO6VuIo72fkDMG09PlG0MQADXwIDAQAB";
        assert_eq!(signer.dns_record().1, format!("v=DKIM1; k=rsa; p={openssl}"));
    }

    #[test]
    fn der_lengths_use_the_long_form_past_127_bytes() {
        assert_eq!(der(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        assert_eq!(&der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(&der(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
