//! Email through the SMTP pool to a real SMTP server.

use std::time::{Duration, Instant};

use hejnal::channels::{ChannelSettings, Message, SendError};

use super::{channels, email_settings, email_to};
use hejnal::testkit::{
    Keep,
    smtp::{Act, SmtpOptions, SmtpSink, Stage},
};

async fn sink(offer_pipelining: bool) -> SmtpSink {
    SmtpSink::bind(SmtpOptions { keep: Keep::default(), offer_pipelining }).await.unwrap()
}


#[tokio::test]
async fn an_email_arrives_multipart_with_both_parts_one_click_unsubscribe_and_the_reference() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    let mut msg = Message::new("0190a6b2-7c1e-7d3a-9f00-1234567890ab", "Water returns at 18:00", "Water is back in Podgorze at 18:00.");
    msg.html = Some("<p>Water is back in <b>Podgorze</b> at 18:00.</p>".into());
    msg.unsubscribe_url = Some("https://hejnal.example/u/tok-1".into());

    let sent = email.send(&email_to("jan@example.com"), &msg).await.unwrap();

    let mail = sink.received().pop().expect("one email");
    assert_eq!((mail.mail_from.as_str(), mail.rcpt_to.as_slice()), ("noreply@krakow.pl", &["jan@example.com".to_owned()][..]));
    assert!(mail.header("Content-Type").unwrap().starts_with("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("Content-Type: text/plain") && mail.data.contains("Water is back in Podgorze at 18:00."));
    assert!(mail.data.contains("Content-Type: text/html") && mail.data.contains("<b>Podgorze</b>"));
    assert_eq!(mail.header("List-Unsubscribe").as_deref(), Some("<https://hejnal.example/u/tok-1>"));
    assert_eq!(mail.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert_eq!(mail.header("Message-ID").as_deref(), Some("<0190a6b2-7c1e-7d3a-9f00-1234567890ab@krakow.pl>"));
    assert_eq!(sent.provider_id, "0190a6b2-7c1e-7d3a-9f00-1234567890ab@krakow.pl");
}

#[tokio::test]
async fn an_email_without_html_or_unsubscribe_link_is_plain_text_without_those_headers() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    email.send(&email_to("jan@example.com"), &Message::new("ref-plain", "Hello", "Just text.")).await.unwrap();
    let mail = sink.received().pop().unwrap();
    assert!(mail.header("Content-Type").unwrap().starts_with("text/plain"), "{}", mail.data);
    assert_eq!(mail.header("List-Unsubscribe"), None);
    assert_eq!(mail.header("List-Unsubscribe-Post"), None);
}

#[tokio::test]
async fn a_subject_with_cr_lf_does_not_inject_a_header() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    let msg = Message::new("ref-inject", "Alert\r\nBcc: evil@example.com\r\nX-Evil: 1", "text");
    email.send(&email_to("jan@example.com"), &msg).await.unwrap();
    let mail = sink.received().pop().unwrap();
    assert_eq!(mail.rcpt_to, vec!["jan@example.com".to_owned()]);
    assert_eq!(mail.header("Bcc"), None, "{}", mail.data);
    assert_eq!(mail.header("X-Evil"), None, "{}", mail.data);
    assert!(mail.header("Subject").unwrap().starts_with("Alert"), "{}", mail.data);
}

#[tokio::test]
async fn smtp_451_is_transient_and_550_is_permanent_pipelined_or_not() {
    for pipelining in [true, false] {
        let sink = sink(pipelining).await;
        let email = channels(email_settings(&sink)).email;
        let to = email_to("jan@example.com");
        let msg = Message::new("ref-smtp", "s", "t");

        sink.script(Stage::Mail, Act::Reply(451));
        let refused = email.send(&to, &msg).await;
        assert!(matches!(&refused, Err(SendError::Transient(e)) if e.contains("451")), "pipelining {pipelining}: {refused:?}");
        email.send(&to, &msg).await.expect("the next attempt goes through");

        // The first refusal is the one reported, not the DATA refused behind it.
        sink.script(Stage::Rcpt, Act::Reply(550));
        let refused = email.send(&to, &msg).await;
        assert!(matches!(&refused, Err(SendError::Permanent(e)) if e.contains("550")), "pipelining {pipelining}: {refused:?}");
        sink.script(Stage::Data, Act::Reply(554));
        assert!(matches!(email.send(&to, &msg).await, Err(SendError::Permanent(_))));
        sink.script(Stage::EndOfData, Act::Reply(554));
        assert!(matches!(email.send(&to, &msg).await, Err(SendError::Permanent(_))));
        sink.script(Stage::EndOfData, Act::Reply(452));
        assert!(matches!(email.send(&to, &msg).await, Err(SendError::Transient(_))));
        email.send(&to, &msg).await.expect("a refusal leaves no half transaction behind");
        assert_eq!(sink.received().len(), 2, "pipelining {pipelining}");
    }
}

#[tokio::test]
async fn emails_go_pipelined_when_the_server_offers_it_and_in_turn_when_not() {
    for pipelining in [true, false] {
        let sink = sink(pipelining).await;
        let email = channels(email_settings(&sink)).email;
        for i in 0..3 {
            email.send(&email_to("jan@example.com"), &Message::new(format!("ref-{i}"), "s", "t")).await.unwrap();
        }
        let received = sink.received();
        assert_eq!(received.len(), 3);
        assert!(received.iter().all(|m| m.rcpt_to == ["jan@example.com"] && m.data.ends_with("t")), "{received:?}");
        // Pipelined: each message's MAIL, RCPT and DATA answered together, one group each.
        let groups = if pipelining { 3 } else { 0 };
        assert_eq!(sink.pipelined_groups(), groups, "pipelining {pipelining}");
        assert_eq!(sink.connections(), 1);
    }
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced_and_the_message_sent_once() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    let to = email_to("jan@example.com");
    email.send(&to, &Message::new("ref-1", "s", "t")).await.unwrap();
    // The server drops the idle connection; the next message finds out at MAIL.
    sink.script(Stage::Mail, Act::Close);
    email.send(&to, &Message::new("ref-2", "s", "t")).await.expect("sent on a new connection");
    let ids: Vec<String> = sink.received().iter().filter_map(|m| m.header("Message-ID")).collect();
    assert_eq!(ids, ["<ref-1@krakow.pl>", "<ref-2@krakow.pl>"]);
    assert_eq!(sink.connections(), 2);

    // A new connection closed before MAIL is answered: not sent, and worth another try.
    let fresh = channels(email_settings(&sink)).email;
    sink.script(Stage::Mail, Act::Close);
    let result = fresh.send(&to, &Message::new("ref-3", "s", "t")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn a_stalled_smtp_server_is_an_unknown_outcome_within_the_timeout() {
    let sink = SmtpSink::start().await;
    let email = channels(ChannelSettings { provider_timeout_ms: 400, ..email_settings(&sink) }).email;
    sink.script(Stage::EndOfData, Act::Stall(Duration::from_secs(5)));
    let started = Instant::now();
    let result = email.send(&email_to("jan@example.com"), &Message::new("ref-stall", "s", "t")).await;
    // The server may have taken the message before stalling on its last reply: retried, and
    // counted as a possible duplicate.
    assert!(matches!(result, Err(SendError::Unknown(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let settings = ChannelSettings {
        smtp_url: Some(format!("smtp://{closed}")),
        email_from: Some("noreply@krakow.pl".into()),
        ..ChannelSettings::default()
    };
    let result = channels(settings).email.send(&email_to("jan@example.com"), &Message::new("r", "s", "t")).await;
    assert!(matches!(result, Err(SendError::Transient(_))), "{result:?}");
}

#[tokio::test]
async fn tls_that_cannot_be_had_is_transient_and_nothing_goes_out_in_clear() {
    let sink = SmtpSink::start().await;
    let port = sink.url().rsplit(':').next().unwrap().to_owned();
    for url in [format!("smtps://127.0.0.1:{port}"), format!("smtp://127.0.0.1:{port}?tls=required")] {
        let settings = ChannelSettings { smtp_url: Some(url.clone()), ..email_settings(&sink) };
        let result = channels(settings).email.send(&email_to("jan@example.com"), &Message::new("r", "s", "t")).await;
        assert!(matches!(result, Err(SendError::Transient(_))), "{url}: {result:?}");
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn emails_sent_one_after_another_reuse_one_pooled_connection() {
    let sink = SmtpSink::start().await;
    let email = channels(email_settings(&sink)).email;
    for i in 0..5 {
        email.send(&email_to("jan@example.com"), &Message::new(format!("ref-{i}"), "s", "t")).await.unwrap();
    }
    assert_eq!(sink.received().len(), 5);
    assert_eq!(sink.connections(), 1);
}

#[path = "../../support/python.rs"]
mod python;

/// dkimpy (PyPI, pinned) verifies what arrived, with the TXT record given to it as DNS would.
const DKIM_VERIFY: &str = r#"
import sys, dkim
asked = []
def dns(name, timeout=5):
    asked.append(name.decode().rstrip("."))
    return sys.argv[2].encode()
ok = dkim.verify(open(sys.argv[1], "rb").read(), dnsfunc=dns)
print(("pass" if ok else "fail") + " " + ",".join(asked))
"#;

fn dkim_verify(venv: &std::path::Path, message: &str, record: &str) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let out = std::process::Command::new(python::python(venv)).arg("-c").arg(DKIM_VERIFY).arg(file.path()).arg(record).output().unwrap();
    assert!(out.status.success(), "dkimpy: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The records an operator would publish, made without our code: openssl for RSA, the raw
/// public key for Ed25519 (RFC 8463).
fn dkim_keys(dir: &std::path::Path) -> Vec<(&'static str, String, String)> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let rsa = format!("{}/tests/data/dkim-test-rsa.pem", env!("CARGO_MANIFEST_DIR"));
    let der = std::process::Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in", &rsa]).output().expect("openssl");
    assert!(der.status.success(), "openssl: {}", String::from_utf8_lossy(&der.stderr));
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap().public_key().as_ref().to_vec();
    let ed25519 = dir.join("ed25519.pem");
    std::fs::write(&ed25519, format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", STANDARD.encode(pkcs8.as_ref()))).unwrap();
    vec![
        ("rsa", rsa, format!("v=DKIM1; k=rsa; p={}", STANDARD.encode(der.stdout))),
        ("ed25519", ed25519.display().to_string(), format!("v=DKIM1; k=ed25519; p={}", STANDARD.encode(public))),
    ]
}

#[tokio::test]
async fn dkim_signed_email_passes_an_independent_verifier_and_fails_it_once_changed() {
    let venv = match python::venv_with("dkimpy-1.1.8", &["dkimpy==1.1.8", "dnspython==2.7.0", "pynacl==1.5.0"]) {
        Ok(venv) => venv,
        Err(e) if crate::helpers::in_ci() => panic!("cannot install dkimpy (under CI=true this test must run): {e}"),
        Err(e) => return eprintln!("SKIPPED: cannot install dkimpy: {e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    for (algorithm, key_file, record) in dkim_keys(dir.path()) {
        let sink = SmtpSink::start().await;
        let settings = ChannelSettings { dkim_selector: Some("hejnal2026".into()), dkim_key_file: Some(key_file), ..email_settings(&sink) };
        let email = channels(settings).email;
        let mut msg = Message::new("ref-dkim", "Ostrzeżenie: brak wody   w Podgórzu", "Woda wróci o 18:00.\n\n..a line with a leading dot\n");
        msg.html = Some("<p>Woda wróci o <b>18:00</b>.</p>".into());
        msg.unsubscribe_url = Some("https://hejnal.example/u/tok-1".into());
        email.send(&email_to("jan@example.com"), &msg).await.unwrap();

        let mail = sink.received().pop().expect("one email");
        let signature = mail.header("DKIM-Signature").unwrap_or_else(|| panic!("{algorithm}: no signature in {}", mail.data));
        assert!(signature.contains(&format!("a={algorithm}-sha256;")) && signature.contains("d=krakow.pl;"), "{signature}");
        let sent = format!("{}\r\n", mail.data);
        assert_eq!(dkim_verify(&venv, &sent, &record), "pass hejnal2026._domainkey.krakow.pl", "{algorithm}: {sent}");
        let changed = sent.replacen("18:00", "19:00", 1);
        assert_ne!(changed, sent);
        assert!(dkim_verify(&venv, &changed, &record).starts_with("fail"), "{algorithm}: a changed body must not verify");
    }
}

#[tokio::test]
async fn dkim_settings_are_checked_at_start_naming_the_setting() {
    let sink = SmtpSink::start().await;
    let refused = |settings: ChannelSettings| match hejnal::channels::Channels::from_config(&settings) {
        Ok(_) => panic!("accepted"),
        Err(e) => (e.key, e.reason),
    };
    let only_selector = ChannelSettings { dkim_selector: Some("s".into()), ..email_settings(&sink) };
    assert_eq!(refused(only_selector).0, "HEJNAL_DKIM_KEY_FILE");
    let missing = ChannelSettings { dkim_selector: Some("s".into()), dkim_key_file: Some("/nonexistent/dkim.pem".into()), ..email_settings(&sink) };
    let (key, reason) = refused(missing);
    assert_eq!(key, "HEJNAL_DKIM_KEY_FILE");
    assert!(reason.starts_with("cannot read /nonexistent/dkim.pem"), "{reason}");
    let rsa = format!("{}/tests/data/dkim-test-rsa.pem", env!("CARGO_MANIFEST_DIR"));
    let bad_selector = ChannelSettings { dkim_selector: Some("a b".into()), dkim_key_file: Some(rsa), ..email_settings(&sink) };
    assert_eq!(refused(bad_selector).0, "HEJNAL_DKIM_SELECTOR");
}
