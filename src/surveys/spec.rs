//! What an official writes: a survey's texts per language and its ordered questions, parsed
//! and checked into a [`SurveySpec`]. Every refusal names its field (`questions[2].options`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::error::{ApiError, FieldError};

/// A text per language (`pl`, `en`, `uk`); Polish is required, the fallback for everyone.
pub type LocalText = BTreeMap<String, String>;

pub const LANGUAGES: [&str; 3] = ["pl", "en", "uk"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    #[default]
    Survey,
    /// One single-choice question (at most 9 options, so an SMS reply is one digit).
    Poll,
    /// A public consultation: questions here; its document and comments build on this.
    Consultation,
}

impl SurveyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Survey => "survey",
            SurveyKind::Poll => "poll",
            SurveyKind::Consultation => "consultation",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    SingleChoice,
    MultipleChoice,
    Scale,
    ShortText,
    LongText,
    Ranking,
    YesNo,
}

impl QuestionType {
    pub fn has_options(self) -> bool {
        matches!(self, QuestionType::SingleChoice | QuestionType::MultipleChoice | QuestionType::Ranking)
    }

    pub fn is_text(self) -> bool {
        matches!(self, QuestionType::ShortText | QuestionType::LongText)
    }
}

/// The range of a scale question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Scale {
    #[default]
    #[serde(rename = "1-5")]
    OneToFive,
    #[serde(rename = "0-10")]
    ZeroToTen,
}

impl Scale {
    pub fn bounds(self) -> (i64, i64) {
        match self {
            Scale::OneToFive => (1, 5),
            Scale::ZeroToTen => (0, 10),
        }
    }
}

/// Show a question only when an earlier one was answered so: a choice's option number, a
/// scale's value, or true/false for yes/no. For a multiple choice: when that option is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub question: String,
    #[schema(value_type = Object)]
    pub equals: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable within the survey; `q1`, `q2`, … by position when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: QuestionType,
    #[serde(default)]
    pub required: bool,
    pub text: LocalText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<LocalText>,
    /// Choices and rankings: the options, numbered from 1 in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<LocalText>,
    /// Multiple choice: how many options at least and at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Scale questions: `1-5` (the default) or `0-10`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    /// Text questions: the longest answer in characters (200 short, 5000 long by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
}

impl Question {
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or("")
    }

    pub fn max_length(&self) -> usize {
        let default = if self.kind == QuestionType::LongText { 5000 } else { 200 };
        self.max_length.map_or(default, |m| m as usize)
    }

    pub fn scale_bounds(&self) -> (i64, i64) {
        self.scale.unwrap_or_default().bounds()
    }
}

/// The request body of `POST /api/v1/surveys` (and of edits while it is a draft).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveySpec {
    #[serde(default)]
    pub kind: SurveyKind,
    pub title: LocalText,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub description: LocalText,
    /// Answers are taken from then; the moment of publishing when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<DateTime<Utc>>,
    /// Without it, the survey stays open until an official closes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<DateTime<Utc>>,
    /// Anyone may answer at `/s/open/{slug}` (3 to 64 of `a-z`, `0-9`, `-`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    pub questions: Vec<Question>,
}

const TITLE_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 10_000;
const QUESTION_TEXT_MAX: usize = 1000;
const OPTION_MAX: usize = 200;
const MAX_QUESTIONS: usize = 100;
const MAX_OPTIONS: usize = 50;
const POLL_MAX_OPTIONS: usize = 9;

impl SurveySpec {
    /// Give every question without an id its position's (`q3`).
    pub fn normalise(&mut self) {
        for (i, q) in self.questions.iter_mut().enumerate() {
            if q.id.as_deref().is_none_or(|id| id.trim().is_empty()) {
                q.id = Some(format!("q{}", i + 1));
            }
        }
    }

    /// Checks that need no database: every problem found, each named by its field.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let mut fail = |field: String, message: &str| errors.push(FieldError { field, message: message.into() });
        check_local(&self.title, "title", TITLE_MAX, true, true, &mut fail);
        check_local(&self.description, "description", DESCRIPTION_MAX, false, false, &mut fail);
        if let Some(closes) = self.closes_at {
            if closes <= now {
                fail("closes_at".into(), "must be in the future");
            }
            if self.opens_at.is_some_and(|o| o >= closes) {
                fail("closes_at".into(), "must be after opens_at");
            }
        }
        if let Some(slug) = &self.slug {
            let ok = (3..=64).contains(&slug.len()) && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                fail("slug".into(), "must be 3 to 64 characters of a-z, 0-9 and -");
            }
        }
        if self.questions.is_empty() {
            fail("questions".into(), "ask at least one question");
        } else if self.questions.len() > MAX_QUESTIONS {
            fail("questions".into(), "at most 100 questions");
        }
        for (i, q) in self.questions.iter().enumerate() {
            check_question(i, q, &self.questions[..i], &mut fail);
        }
        if self.kind == SurveyKind::Poll {
            let one_choice = self.questions.len() == 1 && self.questions[0].kind == QuestionType::SingleChoice;
            if !one_choice {
                fail("questions".into(), "a poll asks exactly one single_choice question");
            } else if self.questions[0].options.len() > POLL_MAX_OPTIONS {
                fail("questions[0].options".into(), "a poll has at most 9 options, so that a reply is one digit");
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::from_fields(errors)) }
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id() == id)
    }
}

/// The text in `lang`, or in Polish.
pub fn local<'a>(text: &'a LocalText, lang: &str) -> &'a str {
    text.get(lang).or_else(|| text.get("pl")).map(String::as_str).unwrap_or("")
}

fn check_local(text: &LocalText, field: &str, max: usize, required: bool, one_line: bool, fail: &mut impl FnMut(String, &str)) {
    if required && text.get("pl").is_none_or(|t| t.trim().is_empty()) {
        fail(format!("{field}.pl"), "a Polish text is required: it is the fallback for every resident");
    }
    for (lang, t) in text {
        let f = format!("{field}.{lang}");
        if !LANGUAGES.contains(&lang.as_str()) {
            fail(f, "languages are pl, en and uk");
        } else if t.trim().is_empty() {
            fail(f, "must not be empty");
        } else if t.chars().count() > max {
            fail(f, &format!("must be at most {max} characters"));
        } else if one_line && t.contains(['\r', '\n']) {
            fail(f, "must be one line");
        }
    }
}

fn check_question(i: usize, q: &Question, earlier: &[Question], fail: &mut impl FnMut(String, &str)) {
    let f = |name: &str| format!("questions[{i}].{name}");
    let id = q.id();
    let id_ok = (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        fail(f("id"), "must be 1 to 32 characters of letters, digits, _ and -");
    } else if earlier.iter().any(|e| e.id() == id) {
        fail(f("id"), "is already the id of an earlier question");
    }
    check_local(&q.text, &f("text"), QUESTION_TEXT_MAX, true, false, fail);
    if let Some(help) = &q.help {
        check_local(help, &f("help"), QUESTION_TEXT_MAX, false, false, fail);
    }
    if q.kind.has_options() {
        if !(2..=MAX_OPTIONS).contains(&q.options.len()) {
            fail(f("options"), "give 2 to 50 options");
        }
        for (n, o) in q.options.iter().enumerate() {
            check_local(o, &f(&format!("options[{n}]")), OPTION_MAX, true, true, fail);
        }
    } else if !q.options.is_empty() {
        fail(f("options"), "only single_choice, multiple_choice and ranking questions have options");
    }
    if q.kind == QuestionType::MultipleChoice {
        let (min, max) = (q.min.unwrap_or(0) as usize, q.max.map_or(q.options.len(), |m| m as usize));
        if max == 0 || max > q.options.len().max(1) {
            fail(f("max"), "must be between 1 and the number of options");
        } else if min > max {
            fail(f("min"), "must not exceed max");
        }
    } else if q.min.is_some() || q.max.is_some() {
        fail(f(if q.min.is_some() { "min" } else { "max" }), "only multiple_choice questions have min and max");
    }
    if q.scale.is_some() && q.kind != QuestionType::Scale {
        fail(f("scale"), "only scale questions have a scale");
    }
    match q.max_length {
        Some(_) if !q.kind.is_text() => fail(f("max_length"), "only short_text and long_text questions have max_length"),
        Some(m) if !(1..=10_000).contains(&m) => fail(f("max_length"), "must be 1 to 10000"),
        _ => {}
    }
    if let Some(c) = &q.show_if {
        check_condition(c, earlier, &f("show_if"), fail);
    }
}

fn check_condition(c: &Condition, earlier: &[Question], field: &str, fail: &mut impl FnMut(String, &str)) {
    let Some(target) = earlier.iter().find(|e| e.id() == c.question) else {
        fail(format!("{field}.question"), "must be the id of an earlier question");
        return;
    };
    let fits = match target.kind {
        QuestionType::YesNo => c.equals.is_boolean(),
        QuestionType::SingleChoice | QuestionType::MultipleChoice => {
            c.equals.as_i64().is_some_and(|n| n >= 1 && n as usize <= target.options.len())
        }
        QuestionType::Scale => {
            let (lo, hi) = target.scale_bounds();
            c.equals.as_i64().is_some_and(|n| (lo..=hi).contains(&n))
        }
        _ => {
            fail(format!("{field}.question"), "a condition can only test a choice, scale or yes/no question");
            return;
        }
    };
    if !fits {
        fail(format!("{field}.equals"), "must be an option number, a value of the scale, or true/false, as the question asks");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(spec: &SurveySpec) -> Vec<String> {
        let e = spec.check(Utc::now()).unwrap_err();
        let body = serde_json::to_value(e.body()).unwrap();
        match body["details"].as_array() {
            Some(d) => d.iter().map(|d| d["field"].as_str().unwrap().to_owned()).collect(),
            None => vec![body["field"].as_str().unwrap().to_owned()],
        }
    }

    #[test]
    fn the_minimal_body_of_the_issue_is_accepted_and_numbered() {
        let mut spec: SurveySpec = serde_json::from_value(json!({
            "title": {"pl": "Ankieta"},
            "questions": [{"type": "single_choice", "required": true, "text": {"pl": "Które?"}, "options": [{"pl": "A"}, {"pl": "B"}]}]
        })).unwrap();
        spec.normalise();
        spec.check(Utc::now()).unwrap();
        assert_eq!(spec.questions[0].id(), "q1");
        assert_eq!(spec.kind, SurveyKind::Survey);
    }

    #[test]
    fn each_wrong_question_is_named_by_its_place() {
        let mut spec: SurveySpec = serde_json::from_value(json!({
            "title": {"en": "Survey"},
            "questions": [
                {"type": "yes_no", "text": {"pl": "Czy?"}},
                {"type": "single_choice", "text": {"pl": "Które?"}, "options": [{"pl": "A"}]},
                {"type": "multiple_choice", "text": {"pl": "Które?"}, "options": [{"pl": "A"}, {"pl": "B"}], "min": 2, "max": 1},
                {"type": "short_text", "text": {"pl": "Co?"}, "show_if": {"question": "q1", "equals": 3}},
                {"type": "long_text", "text": {"pl": "Co?"}, "show_if": {"question": "q9", "equals": true}}
            ]
        })).unwrap();
        spec.normalise();
        assert_eq!(fields(&spec), ["title.pl", "questions[1].options", "questions[2].min", "questions[3].show_if.equals", "questions[4].show_if.question"]);
    }

    #[test]
    fn a_poll_is_one_single_choice_of_at_most_nine_options() {
        let options: Vec<Value> = (1..=10).map(|n| json!({"pl": n.to_string()})).collect();
        let mut spec: SurveySpec = serde_json::from_value(json!({
            "kind": "poll", "title": {"pl": "Sonda"},
            "questions": [{"type": "single_choice", "text": {"pl": "Które?"}, "options": options}]
        })).unwrap();
        spec.normalise();
        assert_eq!(fields(&spec), ["questions[0].options"]);
    }
}
