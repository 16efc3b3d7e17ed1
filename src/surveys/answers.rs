//! Answers checked against the questions: per question type, with display conditions applied
//! on the server (a hidden question is not required and its answer is dropped), so the pages
//! need no JavaScript. Each problem is an [`AnswerError`] with a code the pages translate.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::spec::{Question, QuestionType, SurveySpec};

/// What is wrong with one question's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerError {
    pub question: String,
    /// `required`, `wrong_type`, `not_an_option`, `too_few`, `too_many`, `out_of_range`,
    /// `too_long`, `not_a_ranking`, `unknown_question`.
    pub code: &'static str,
    /// The limit the message names, if any (`too_few`: the minimum).
    pub limit: Option<i64>,
}

impl AnswerError {
    fn new(q: &Question, code: &'static str, limit: Option<i64>) -> Self {
        AnswerError { question: q.id().to_owned(), code, limit }
    }

    /// The message for the API, in English.
    pub fn message(&self) -> String {
        let n = self.limit.unwrap_or_default();
        match self.code {
            "required" => "this question needs an answer".into(),
            "wrong_type" => "this answer has the wrong type for the question".into(),
            "not_an_option" => "choose among the question's option numbers".into(),
            "too_few" => format!("choose at least {n}"),
            "too_many" => format!("choose at most {n}"),
            "out_of_range" => "the value is outside the scale".into(),
            "too_long" => format!("at most {n} characters"),
            "not_a_ranking" => "rank every option once, from 1".into(),
            "unknown_question" => "the survey has no such question".into(),
            _ => self.code.into(),
        }
    }
}

/// Check `given` (question id → answer) against the survey: the cleaned answers to keep, or
/// every problem. Unanswered optional and hidden questions are left out of the result.
pub fn check(spec: &SurveySpec, given: &Map<String, Value>) -> Result<Map<String, Value>, Vec<AnswerError>> {
    let mut clean = Map::new();
    let mut errors = Vec::new();
    for id in given.keys() {
        if spec.question(id).is_none() {
            errors.push(AnswerError { question: id.clone(), code: "unknown_question", limit: None });
        }
    }
    for q in &spec.questions {
        if !visible(q, &clean) {
            continue;
        }
        match given.get(q.id()).filter(|v| !is_empty(v)) {
            None if q.required => errors.push(AnswerError::new(q, "required", None)),
            None => {}
            Some(v) => match check_one(q, v) {
                Ok(v) => {
                    clean.insert(q.id().to_owned(), v);
                }
                Err(e) => errors.push(e),
            },
        }
    }
    if errors.is_empty() { Ok(clean) } else { Err(errors) }
}

/// Is `q` shown, given the (cleaned) answers to the questions before it?
pub fn visible(q: &Question, answers: &Map<String, Value>) -> bool {
    let Some(c) = &q.show_if else { return true };
    match answers.get(&c.question) {
        Some(Value::Array(chosen)) => chosen.contains(&c.equals),
        Some(v) => *v == c.equals,
        None => false,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn check_one(q: &Question, v: &Value) -> Result<Value, AnswerError> {
    let err = |code, limit| AnswerError::new(q, code, limit);
    let option = |v: &Value| v.as_i64().filter(|n| *n >= 1 && *n as usize <= q.options.len());
    match q.kind {
        QuestionType::SingleChoice => {
            if !v.is_i64() {
                return Err(err("wrong_type", None));
            }
            option(v).map(|n| json!(n)).ok_or_else(|| err("not_an_option", None))
        }
        QuestionType::MultipleChoice => {
            let items = v.as_array().ok_or_else(|| err("wrong_type", None))?;
            let mut chosen = BTreeSet::new();
            for item in items {
                chosen.insert(option(item).ok_or_else(|| err("not_an_option", None))?);
            }
            let (min, max) = (q.min.unwrap_or(0) as usize, q.max.map_or(q.options.len(), |m| m as usize));
            if chosen.len() < min {
                return Err(err("too_few", Some(min as i64)));
            }
            if chosen.len() > max {
                return Err(err("too_many", Some(max as i64)));
            }
            Ok(json!(chosen.into_iter().collect::<Vec<_>>()))
        }
        QuestionType::Scale => {
            let n = v.as_i64().ok_or_else(|| err("wrong_type", None))?;
            let (lo, hi) = q.scale_bounds();
            if (lo..=hi).contains(&n) { Ok(json!(n)) } else { Err(err("out_of_range", None)) }
        }
        QuestionType::ShortText | QuestionType::LongText => {
            let text = v.as_str().ok_or_else(|| err("wrong_type", None))?.trim();
            let max = q.max_length();
            if text.chars().count() > max { Err(err("too_long", Some(max as i64))) } else { Ok(json!(text)) }
        }
        QuestionType::Ranking => {
            let items = v.as_array().ok_or_else(|| err("not_a_ranking", None))?;
            let order: Vec<i64> = items.iter().map(|i| option(i).unwrap_or(0)).collect();
            let distinct: BTreeSet<i64> = order.iter().copied().collect();
            if order.len() != q.options.len() || distinct.len() != order.len() || distinct.contains(&0) {
                return Err(err("not_a_ranking", None));
            }
            Ok(json!(order))
        }
        QuestionType::YesNo => v.as_bool().map(|b| json!(b)).ok_or_else(|| err("wrong_type", None)),
    }
}

/// An HTML form's fields (`q.{id}`, repeated for checkboxes; `q.{id}.{option}` = position for
/// rankings) as the answers the API takes, so both go through [`check`].
pub fn from_form(spec: &SurveySpec, fields: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    let values = |name: &str| values_of(fields, name);
    for q in &spec.questions {
        let name = format!("q.{}", q.id());
        let first = values(&name).into_iter().find(|v| !v.is_empty());
        let number = |s: &str| s.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(s));
        let answer = match q.kind {
            QuestionType::SingleChoice | QuestionType::Scale => first.map(number),
            QuestionType::ShortText | QuestionType::LongText => first.map(|s| json!(s)),
            QuestionType::YesNo => first.map(|s| match s {
                "yes" => json!(true),
                "no" => json!(false),
                other => json!(other),
            }),
            QuestionType::MultipleChoice => {
                let chosen: Vec<Value> = values(&name).into_iter().filter(|v| !v.is_empty()).map(number).collect();
                (!chosen.is_empty()).then_some(Value::Array(chosen))
            }
            QuestionType::Ranking => ranking_from_form(q, &name, fields),
        };
        if let Some(a) = answer {
            out.insert(q.id().to_owned(), a);
        }
    }
    out
}

/// Positions given per option become the options in rank order; positions that are not
/// 1..n each once become an answer [`check`] refuses as `not_a_ranking`.
fn ranking_from_form(q: &Question, name: &str, fields: &[(String, String)]) -> Option<Value> {
    let given: Vec<Option<&str>> = (1..=q.options.len())
        .map(|n| values_of(fields, &format!("{name}.{n}")).into_iter().find(|v| !v.is_empty()))
        .collect();
    if given.iter().all(Option::is_none) {
        return None;
    }
    let positions: Vec<Option<usize>> = given.iter().map(|v| v.and_then(|v| v.parse().ok())).collect();
    let mut order = vec![0i64; q.options.len()];
    for (option, position) in positions.iter().enumerate() {
        match position {
            Some(p) if (1..=order.len()).contains(p) && order[p - 1] == 0 => order[p - 1] = option as i64 + 1,
            _ => return Some(json!("not a ranking")),
        }
    }
    Some(json!(order))
}

/// The trimmed values of every field named `name`.
fn values_of<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SurveySpec {
        let mut s: SurveySpec = serde_json::from_value(json!({
            "title": {"pl": "Ankieta"},
            "questions": [
                {"type": "yes_no", "required": true, "text": {"pl": "Czy korzystasz z parku?"}},
                {"type": "scale", "required": true, "text": {"pl": "Jak oceniasz park?"}, "show_if": {"question": "q1", "equals": true}},
                {"type": "multiple_choice", "text": {"pl": "Co lubisz?"}, "options": [{"pl": "Ławki"}, {"pl": "Drzewa"}, {"pl": "Staw"}], "min": 1, "max": 2},
                {"type": "ranking", "text": {"pl": "Uszereguj"}, "options": [{"pl": "A"}, {"pl": "B"}, {"pl": "C"}]},
                {"type": "short_text", "text": {"pl": "Uwagi"}, "max_length": 5}
            ]
        })).unwrap();
        s.normalise();
        s
    }

    fn codes(r: Result<Map<String, Value>, Vec<AnswerError>>) -> Vec<(String, &'static str)> {
        r.unwrap_err().into_iter().map(|e| (e.question, e.code)).collect()
    }

    #[test]
    fn a_hidden_question_is_not_required_and_its_answer_is_dropped() {
        let given = json!({"q1": false, "q2": 4}).as_object().unwrap().clone();
        let clean = check(&spec(), &given).unwrap();
        assert_eq!(Value::Object(clean), json!({"q1": false}));
        let shown = json!({"q1": true}).as_object().unwrap().clone();
        assert_eq!(codes(check(&spec(), &shown)), [("q2".to_string(), "required")]);
    }

    #[test]
    fn every_type_is_checked_and_each_error_names_its_question() {
        let given = json!({"q1": "tak", "q3": [1, 2, 3], "q4": [1, 1, 2], "q5": "za długi tekst", "q9": 1}).as_object().unwrap().clone();
        assert_eq!(codes(check(&spec(), &given)), [
            ("q9".to_string(), "unknown_question"), ("q1".to_string(), "wrong_type"), ("q3".to_string(), "too_many"),
            ("q4".to_string(), "not_a_ranking"), ("q5".to_string(), "too_long"),
        ]);
    }

    #[test]
    fn a_form_becomes_the_same_answers_as_json() {
        let fields: Vec<(String, String)> = [("q.q1", "yes"), ("q.q2", "5"), ("q.q3", "3"), ("q.q3", "1"), ("q.q4.1", "2"), ("q.q4.2", "3"), ("q.q4.3", "1"), ("q.q5", " ok ")]
            .iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let clean = check(&spec(), &from_form(&spec(), &fields)).unwrap();
        assert_eq!(Value::Object(clean), json!({"q1": true, "q2": 5, "q3": [1, 3], "q4": [3, 1, 2], "q5": "ok"}));
        let twice: Vec<(String, String)> = [("q.q1", "no"), ("q.q4.1", "1"), ("q.q4.2", "1"), ("q.q4.3", "2")]
            .iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(codes(check(&spec(), &from_form(&spec(), &twice))), [("q4".to_string(), "not_a_ranking")]);
    }
}
