//! Building the email: multipart text + HTML, RFC 8058 unsubscribe headers, a Message-ID from
//! the delivery's reference, and no CR or LF in any header value (a subject with a newline must
//! not become a second header).

use lettre::message::{
    Mailbox, MultiPart,
    header::{ContentType, HeaderName, HeaderValue, MessageId},
};

use crate::channels::{Message, SendError};

/// A header value on one line: every control character (CR, LF, TAB, NUL…) becomes a space.
pub(crate) fn header_text(value: &str) -> String {
    value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

/// `<{reference}@{domain}>`. The reference keeps only what RFC 5322 allows left of the `@`
/// (letters, digits, `.-_+=`); a delivery id (UUID) passes unchanged.
pub(crate) fn message_id(reference: &str, domain: &str) -> String {
    let left: String =
        reference.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '=')).collect();
    let left = left.trim_matches('.');
    let left = if left.is_empty() { "hejnal" } else { left };
    format!("<{left}@{domain}>")
}

/// The `List-Unsubscribe` value. The URL is parsed and written back, so `<`, `>`, spaces and
/// line breaks cannot survive into the header.
pub(crate) fn unsubscribe_value(url: &str) -> Result<String, SendError> {
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| SendError::Permanent(format!("unsubscribe URL {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http" | "mailto") {
        return Err(SendError::Permanent(format!("unsubscribe URL {url:?} must be https, http or mailto")));
    }
    // `url` leaves `<`, `>` and spaces alone in a mailto: address; they would end the
    // bracket early (found by a property test).
    let mut inside = String::new();
    for c in parsed.as_str().chars() {
        if c == '<' || c == '>' || c.is_whitespace() || c.is_control() {
            let mut bytes = [0; 4];
            inside.extend(c.encode_utf8(&mut bytes).bytes().map(|b| format!("%{b:02X}")));
        } else {
            inside.push(c);
        }
    }
    Ok(format!("<{inside}>"))
}

/// The email for one recipient; `domain` is the From address's domain, for the Message-ID.
pub(crate) fn build(from: &Mailbox, domain: &str, to: &str, msg: &Message) -> Result<lettre::Message, SendError> {
    let to: Mailbox = to
        .parse()
        .map_err(|e| SendError::Permanent(format!("{to:?} is not an email address: {e}")))?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(header_text(&msg.subject))
        .header(MessageId::from(message_id(&msg.reference, domain)))
        // RFC 3834: tells auto-responders (holiday replies) not to answer.
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()));
    if let Some(url) = &msg.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), unsubscribe_value(url)?))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    let built = match &msg.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(msg.text.clone(), html.clone())),
        None => builder.header(ContentType::TEXT_PLAIN).body(msg.text.clone()),
    };
    built.map_err(|e| SendError::Permanent(format!("email could not be built: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(email: &lettre::Message) -> String {
        let raw = String::from_utf8(email.formatted()).unwrap();
        raw.split("\r\n\r\n").next().unwrap().to_owned()
    }

    #[test]
    fn header_text_never_holds_a_line_break() {
        assert_eq!(header_text("Alert\r\nBcc: evil@example.com"), "Alert  Bcc: evil@example.com");
        assert_eq!(header_text("tab\there\u{0}"), "tab here");
        assert_eq!(header_text("Zamknięcie ulicy"), "Zamknięcie ulicy");
    }

    #[test]
    fn the_message_id_carries_the_reference() {
        assert_eq!(message_id("0190a6b2-7c1e-7d3a-9f00-1234567890ab", "krakow.pl"), "<0190a6b2-7c1e-7d3a-9f00-1234567890ab@krakow.pl>");
        assert_eq!(message_id("a b>\r\nX: y", "krakow.pl"), "<abXy@krakow.pl>");
        assert_eq!(message_id("", "krakow.pl"), "<hejnal@krakow.pl>");
    }

    #[test]
    fn unsubscribe_urls_cannot_break_out_of_their_brackets() {
        assert_eq!(unsubscribe_value("https://hejnal.example/u/abc").unwrap(), "<https://hejnal.example/u/abc>");
        assert_eq!(unsubscribe_value("https://h.example/u/a>b c").unwrap(), "<https://h.example/u/a%3Eb%20c>");
        assert!(unsubscribe_value("javascript:alert(1)").is_err());
        assert_eq!(unsubscribe_value("mailto:a<b>@x.pl?subject=un sub").unwrap(), "<mailto:a%3Cb%3E@x.pl?subject=un%20sub>");
    }

    #[test]
    fn a_subject_with_a_newline_stays_one_header() {
        let from: Mailbox = "Hejnał <noreply@krakow.pl>".parse().unwrap();
        let mut msg = Message::new("ref-1", "Alert\r\nBcc: evil@example.com", "text");
        msg.unsubscribe_url = Some("https://hejnal.example/u/1".into());
        let email = build(&from, "krakow.pl", "jan@example.com", &msg).unwrap();
        let headers = headers_of(&email);
        assert!(!headers.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{headers}");
        assert_eq!(email.envelope().to().len(), 1);
        assert!(headers.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{headers}");
    }

    /// The header block with folded lines joined, as a reader of headers sees it.
    fn unfolded_headers(email: &lettre::Message) -> Vec<String> {
        headers_of(email).replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n").map(str::to_owned).collect()
    }

    proptest::proptest! {
        #[test]
        fn header_text_is_one_line_whatever_it_is_given(value in proptest::prelude::any::<String>()) {
            let line = header_text(&value);
            proptest::prop_assert!(!line.chars().any(char::is_control), "{:?}", line);
        }

        #[test]
        fn a_message_id_is_one_token_whatever_the_reference(reference in proptest::prelude::any::<String>()) {
            let id = message_id(&reference, "krakow.pl");
            let left = id.strip_prefix('<').and_then(|r| r.strip_suffix("@krakow.pl>")).unwrap();
            proptest::prop_assert!(!left.is_empty() && left.chars().all(|c| c.is_ascii_alphanumeric() || ".-_+=".contains(c)), "{}", id);
        }

        #[test]
        fn an_unsubscribe_value_stays_inside_its_brackets(url in "(https?://|mailto:)?[ -~\r\n\t<>]{0,40}") {
            if let Ok(value) = unsubscribe_value(&url) {
                let inner = value.strip_prefix('<').and_then(|v| v.strip_suffix('>')).unwrap();
                proptest::prop_assert!(!inner.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>'), "{:?}", value);
            }
        }

        /// No subject, body or unsubscribe link adds a header or breaks a line: the message
        /// has exactly the headers we set, each once.
        #[test]
        fn no_text_adds_a_header(
            subject in proptest::prelude::any::<String>(),
            text in proptest::prelude::any::<String>(),
            html in proptest::option::of(proptest::prelude::any::<String>()),
            url in "https://h\\.example/u/[ -~\r\n]{0,30}",
        ) {
            let from: Mailbox = "Hejnał <noreply@krakow.pl>".parse().unwrap();
            let mut msg = Message::new("ref-1", &subject, &text);
            msg.unsubscribe_url = Some(url);
            msg.html = html;
            let email = build(&from, "krakow.pl", "jan@example.com", &msg).unwrap();
            let raw = String::from_utf8(email.formatted()).unwrap();
            proptest::prop_assert!(!raw.replace("\r\n", "").contains(['\r', '\n']), "a bare CR or LF");
            let names: Vec<String> = unfolded_headers(&email).iter().map(|l| l.split(':').next().unwrap().to_ascii_lowercase()).collect();
            let ours = ["auto-submitted", "content-transfer-encoding", "content-type", "date", "from", "list-unsubscribe", "list-unsubscribe-post", "message-id", "mime-version", "subject", "to"];
            for name in &names {
                proptest::prop_assert!(ours.contains(&name.as_str()), "a header we did not set: {:?} in {:?}", name, names);
                proptest::prop_assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{} twice", name);
            }
            for name in ["from", "to", "subject", "message-id", "list-unsubscribe", "list-unsubscribe-post"] {
                proptest::prop_assert!(names.iter().any(|n| n == name), "{} missing", name);
            }
            proptest::prop_assert_eq!(email.envelope().to().len(), 1);
        }
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let from: Mailbox = "noreply@krakow.pl".parse().unwrap();
        let msg = Message::new("ref-1", "s", "t");
        for to in ["not an address", "jan@example.com\r\nBcc: x@y.z"] {
            assert!(matches!(build(&from, "krakow.pl", to, &msg), Err(SendError::Permanent(_))), "{to}");
        }
    }
}
