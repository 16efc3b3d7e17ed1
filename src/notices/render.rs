//! A notice rendered once per (channel, language) from `templates/messages/*/notice.*`, with
//! a placeholder where each recipient's own preferences link goes: per recipient only that
//! substitution is left, never a template run.

use serde::Serialize;

use super::spec::{NoticeSpec, Status};
use crate::{
    channels::{ChannelKind, sms::text::transliterate_polish},
    domain::Language,
    messages::Messages,
};

/// Stands in for the recipient's preferences link until `for_recipient`.
const LINK: &str = "\u{1}LINK\u{1}";

/// Stands in for the recipient's own survey link (`/s/{token}`) in a survey invitation's
/// texts until `for_invitee`.
pub const SURVEY_LINK: &str = "\u{1}SURVEY\u{1}";

/// One channel's text in one language, the link still to fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Email subject, push title; empty for SMS.
    pub subject: String,
    /// SMS text, email text part, push body.
    pub text: String,
    pub html: Option<String>,
}

/// The same, for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Rendered {
    pub fn for_recipient(&self, preferences_url: &str) -> Personal {
        Personal {
            subject: self.subject.clone(),
            text: self.text.replace(LINK, preferences_url),
            html: self.html.as_ref().map(|h| h.replace(LINK, preferences_url)),
        }
    }

    /// A survey invitation: the preferences link and the recipient's survey link.
    pub fn for_invitee(&self, preferences_url: &str, survey_url: &str) -> Personal {
        let mut p = self.for_recipient(preferences_url);
        p.text = p.text.replace(SURVEY_LINK, survey_url);
        p.html = p.html.map(|h| h.replace(SURVEY_LINK, survey_url));
        p
    }
}

#[derive(Serialize)]
struct Context<'a> {
    /// `[ĆWICZENIA] ` and the like for Exercise and Test notices; empty for real ones.
    marker: &'a str,
    title: &'a str,
    body: &'a str,
    /// The official's own SMS text, or empty.
    sms: &'a str,
    push_title: &'a str,
    push_body: &'a str,
    email_subject: &'a str,
    /// The official's own HTML (checked on the way in), or empty.
    email_html: &'a str,
    preferences_url: &'a str,
}

/// Render `spec` for `channel` in `lang` (Polish when the notice has no such text). With
/// `transliterate`, SMS text loses its Polish letters and with them the UCS-2 encoding.
pub fn render(messages: &Messages, spec: &NoticeSpec, channel: ChannelKind, lang: Language, transliterate: bool) -> Result<Rendered, handlebars::RenderError> {
    let text = spec.text(lang.as_str());
    // The marker speaks the language of the text actually used.
    let text_lang = if spec.texts.contains_key(lang.as_str()) { lang } else { Language::Pl };
    let marker = marker(spec.status, text_lang);
    let ctx = Context {
        marker,
        title: &text.title,
        body: &text.body,
        sms: text.sms.as_deref().unwrap_or(""),
        push_title: text.push_title.as_deref().unwrap_or(&text.title),
        push_body: text.push_body.as_deref().unwrap_or(&text.body),
        email_subject: text.email_subject.as_deref().unwrap_or(&text.title),
        email_html: text.email_html.as_deref().unwrap_or(""),
        preferences_url: LINK,
    };
    let one = |name: &str| messages.render(name, text_lang, &ctx);
    Ok(match channel {
        ChannelKind::Sms => {
            let text = one("sms/notice")?;
            let text = if transliterate { transliterate_polish(&text) } else { text };
            Rendered { subject: String::new(), text: text.trim_end().to_owned(), html: None }
        }
        ChannelKind::Email => Rendered {
            subject: one("email/notice.subject")?.trim().to_owned(),
            text: one("email/notice.text")?,
            html: Some(one("email/notice.html")?),
        },
        ChannelKind::Push => Rendered { subject: one("push/notice.title")?.trim().to_owned(), text: one("push/notice.body")?.trim().to_owned(), html: None },
    })
}

/// Exercise and Test notices look different everywhere, so no one takes them for real.
pub fn marker(status: Status, lang: Language) -> &'static str {
    match (status, lang) {
        (Status::Actual, _) => "",
        (Status::Exercise, Language::Pl) => "[ĆWICZENIA] ",
        (Status::Exercise, Language::En) => "[EXERCISE] ",
        (Status::Exercise, Language::Uk) => "[НАВЧАННЯ] ",
        (Status::Test, _) => "[TEST] ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(status: &str) -> NoticeSpec {
        serde_json::from_value(serde_json::json!({
            "kind": "alert", "msg_type": "Alert", "status": status, "severity": "Severe",
            "urgency": "Immediate", "certainty": "Observed",
            "texts": {"pl": {"title": "Awaria <wody>", "body": "Brak wody & prądu"},
                      "en": {"title": "Water outage", "body": "No water", "sms": "No water in Podgorze"}},
            "audience": {"districts": ["podgorze"], "channels": ["sms", "email", "push"]}
        }))
        .unwrap()
    }

    #[test]
    fn html_escapes_the_official_text_and_sms_does_not() {
        let m = Messages::new();
        let email = render(&m, &spec("Actual"), ChannelKind::Email, Language::Pl, false).unwrap();
        let html = email.html.as_deref().unwrap();
        assert!(html.contains("Awaria &lt;wody&gt;") && html.contains("Brak wody &amp; prądu"), "{html}");
        let sms = render(&m, &spec("Actual"), ChannelKind::Sms, Language::Pl, false).unwrap();
        assert!(sms.text.contains("Awaria <wody>") && sms.text.contains("Brak wody & prądu"), "{}", sms.text);
    }

    #[test]
    fn each_recipient_gets_their_own_link_and_language_falls_back_to_polish() {
        let m = Messages::new();
        let uk = render(&m, &spec("Actual"), ChannelKind::Sms, Language::Uk, false).unwrap().for_recipient("https://x/p/abc");
        assert!(uk.text.contains("Awaria") && uk.text.contains("https://x/p/abc") && !uk.text.contains('\u{1}'), "{}", uk.text);
        let en = render(&m, &spec("Actual"), ChannelKind::Sms, Language::En, false).unwrap().for_recipient("https://x/p/def");
        assert!(en.text.starts_with("No water in Podgorze"), "{}", en.text);
    }

    #[test]
    fn an_exercise_is_marked_in_every_channel() {
        let m = Messages::new();
        for channel in ChannelKind::ALL {
            let r = render(&m, &spec("Exercise"), channel, Language::En, false).unwrap();
            assert!(r.text.contains("[EXERCISE]") || r.subject.contains("[EXERCISE]"), "{channel}: {r:?}");
        }
        let push = render(&m, &spec("Exercise"), ChannelKind::Push, Language::Pl, false).unwrap();
        assert!(push.subject.starts_with("[ĆWICZENIA]"), "{push:?}");
    }

    /// An official's text, fenced with « » (which no template writes and no escaping changes)
    /// so that a test can find exactly where it landed.
    fn fenced() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::prelude::any::<String>()
            .prop_filter("no fence, no link placeholder", |s| !s.contains(['«', '»', '\u{1}']))
            .prop_map(|s| format!("«{s}»"))
    }

    fn spec_with(title: &str, body: &str) -> NoticeSpec {
        let mut spec = spec("Actual");
        let pl = spec.texts.get_mut("pl").unwrap();
        pl.title = title.to_owned();
        pl.body = body.to_owned();
        spec
    }

    proptest::proptest! {
        /// Whatever an official writes, the HTML email carries it escaped, and the SMS, the
        /// email's text part and its subject carry it exactly as written.
        #[test]
        fn only_html_is_escaped(title in fenced(), body in fenced()) {
            let m = Messages::new();
            let spec = spec_with(&title, &body);
            let email = render(&m, &spec, ChannelKind::Email, Language::Pl, false).unwrap().for_recipient("https://x/p/t");
            let html = email.html.unwrap();
            for text in [&title, &body] {
                proptest::prop_assert!(html.contains(&handlebars::html_escape(text)), "{:?} not escaped in {}", text, html);
                proptest::prop_assert!(email.text.contains(text.as_str()), "{:?} changed in the text part", text);
            }
            proptest::prop_assert!(email.subject.contains(title.trim()), "{:?} changed in the subject {:?}", title, email.subject);
            let sms = render(&m, &spec, ChannelKind::Sms, Language::Pl, false).unwrap().for_recipient("https://x/p/t");
            proptest::prop_assert!(sms.text.contains(&format!("{title}: {body}")), "{:?}", sms.text);
        }
    }

    #[test]
    fn transliteration_makes_a_polish_sms_plain_ascii() {
        let m = Messages::new();
        let sms = render(&m, &spec("Actual"), ChannelKind::Sms, Language::Pl, true).unwrap();
        assert!(sms.text.contains("Brak wody & pradu"), "{}", sms.text);
        assert!(sms.text.replace(LINK, "").is_ascii(), "{}", sms.text);
    }
}
