//! The invitation notice of a survey: the survey's title and description in each language,
//! with a placeholder (`render::SURVEY_LINK`) where each recipient's own link goes, so that
//! the notice templates, fan-out and delivery serve invitations unchanged.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::spec::{SurveySpec, local};
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
        sms: Some(format!("{title}. {call}: {SURVEY_LINK}")),
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
}
