//! The invitation notice of a survey: the survey's title and description in each language,
//! with a placeholder (`render::SURVEY_LINK`) where each recipient's own link goes, so that
//! the notice templates, fan-out and delivery serve invitations unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::spec::{SurveyKind, SurveySpec, local};
use crate::notices::{
    render::SURVEY_LINK,
    spec::{Audience, Certainty, Kind, MsgType, NoticeSpec, NoticeText, Severity, Status, Urgency},
};

/// "Answer the survey" in a language.
fn call_to_answer(lang: &str) -> &'static str {
    match lang {
        "en" => "Answer the survey",
        "uk" => "Пройдіть опитування",
        _ => "Odpowiedz na ankietę",
    }
}

/// "Reply 1, 2 or 3" for a poll of `n` options, then where else to answer, in a language.
fn reply_with_digit(lang: &str, n: usize) -> String {
    let digits: Vec<String> = (1..=n).map(|d| d.to_string()).collect();
    let (head, last) = digits.split_at(n.saturating_sub(1));
    let list = |or: &str| if head.is_empty() { last.join("") } else { format!("{} {or} {}", head.join(", "), last.join("")) };
    match lang {
        "en" => format!("Reply {} by SMS, or answer at", list("or")),
        "uk" => format!("Дайте відповідь SMS: {}, або тут", list("або")),
        _ => format!("Odpowiedz SMS-em: {}, albo tutaj", list("lub")),
    }
}

/// A poll's SMS: its question, numbered options and how to reply, then the link.
fn poll_sms(survey: &SurveySpec, lang: &str, title: &str) -> Option<String> {
    let q = survey.questions.first().filter(|_| survey.kind == SurveyKind::Poll)?;
    let options: Vec<String> = q.options.iter().enumerate().map(|(i, o)| format!("{} = {}", i + 1, local(o, lang))).collect();
    let reply = reply_with_digit(lang, q.options.len());
    Some(format!("{title}. {} {}. {reply}: {SURVEY_LINK}", local(&q.text, lang), options.join(", ")))
}

/// The notice that carries a survey's invitations to `audience`. Routine and Minor: it waits
/// for quiet hours like any planned notice, and it expires when the survey closes.
pub fn notice_spec(survey: &SurveySpec, audience: &Audience, opens_at: Option<DateTime<Utc>>) -> NoticeSpec {
    let texts: BTreeMap<String, NoticeText> = survey.title.keys().map(|lang| (lang.clone(), text(survey, lang))).collect();
    NoticeSpec {
        kind: Kind::Survey,
        msg_type: MsgType::Alert,
        status: Status::Actual,
        severity: Severity::Minor,
        urgency: Urgency::Expected,
        certainty: Certainty::Unknown,
        effective: None,
        expires: survey.closes_at,
        period: None,
        references: None,
        texts,
        audience: Some(audience.clone()),
        send_at: opens_at,
        transliterate: None,
    }
}

fn text(survey: &SurveySpec, lang: &str) -> NoticeText {
    let title = local(&survey.title, lang).to_owned();
    let description = local(&survey.description, lang);
    let call = call_to_answer(lang);
    let body = if description.is_empty() { format!("{call}: {SURVEY_LINK}") } else { format!("{description}\n\n{call}: {SURVEY_LINK}") };
    let escaped = handlebars::html_escape(description);
    let email_html = format!(
        "<p style=\"white-space: pre-line\">{escaped}</p>\n<p><a href=\"{SURVEY_LINK}\" style=\"font-weight: bold\">{call}</a></p>"
    );
    NoticeText {
        sms: Some(poll_sms(survey, lang, &title).unwrap_or_else(|| format!("{title}. {call}: {SURVEY_LINK}"))),
        push_title: None,
        push_body: Some(if description.is_empty() { call.to_owned() } else { description.chars().take(200).collect() }),
        email_subject: None,
        email_html: Some(email_html),
        title,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{channels::ChannelKind, domain::Language, messages::Messages, notices::render::render};

    #[test]
    fn every_channel_carries_the_personal_link_and_escapes_the_description_in_html() {
        let survey: SurveySpec = serde_json::from_value(serde_json::json!({
            "title": {"pl": "Park Jordana", "en": "Jordan Park"},
            "description": {"pl": "Co <naprawić> & jak?", "en": "What to fix?"},
            "questions": [{"type": "yes_no", "text": {"pl": "Czy?"}}]
        })).unwrap();
        let audience = Audience { districts: vec!["podgorze".into()], interests: vec![], channels: vec!["sms".into()] };
        let spec = notice_spec(&survey, &audience, None);
        let m = Messages::new();
        for channel in ChannelKind::ALL {
            let r = render(&m, &spec, channel, Language::En, false).unwrap().for_invitee("https://x/p/t", "https://x/s/1.abc");
            let all = format!("{} {} {}", r.subject, r.text, r.html.clone().unwrap_or_default());
            assert!(!all.contains('\u{1}'), "{channel}: {all}");
            if channel != ChannelKind::Push {
                assert!(r.text.contains("Answer the survey: https://x/s/1.abc"), "{channel}: {}", r.text);
            }
        }
        let email = render(&m, &spec, ChannelKind::Email, Language::Pl, false).unwrap().for_invitee("https://x/p/t", "https://x/s/1.abc");
        let html = email.html.unwrap();
        assert!(html.contains("Co &lt;naprawić&gt; &amp; jak?") && html.contains("href=\"https://x/s/1.abc\""), "{html}");
    }

    #[test]
    fn a_poll_sms_numbers_the_options_and_asks_for_a_digit() {
        let poll: SurveySpec = serde_json::from_value(serde_json::json!({
            "kind": "poll", "title": {"pl": "Sonda", "en": "Poll"},
            "questions": [{"type": "single_choice", "text": {"pl": "Czy woda wróciła?", "en": "Is the water back?"},
                           "options": [{"pl": "Tak", "en": "Yes"}, {"pl": "Nie", "en": "No"}, {"pl": "Częściowo", "en": "Partly"}]}]
        })).unwrap();
        let audience = Audience { districts: vec!["podgorze".into()], interests: vec![], channels: vec!["sms".into()] };
        let spec = notice_spec(&poll, &audience, None);
        let m = Messages::new();
        let sms = |lang| render(&m, &spec, ChannelKind::Sms, lang, false).unwrap().for_invitee("https://x/p/t", "https://x/s/1.abc").text;
        assert!(sms(Language::Pl).starts_with("Sonda. Czy woda wróciła? 1 = Tak, 2 = Nie, 3 = Częściowo. Odpowiedz SMS-em: 1, 2 lub 3, albo tutaj: https://x/s/1.abc"), "{}", sms(Language::Pl));
        assert!(sms(Language::En).starts_with("Poll. Is the water back? 1 = Yes, 2 = No, 3 = Partly. Reply 1, 2 or 3 by SMS, or answer at: https://x/s/1.abc"), "{}", sms(Language::En));
        assert_eq!(reply_with_digit("en", 2), "Reply 1 or 2 by SMS, or answer at");
    }
}
