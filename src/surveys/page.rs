//! What the answering page shows: every question with its inputs, filled with `answers` (an
//! earlier answer, or what was just sent back with errors), each error next to its question
//! and linked to the inputs with `aria-describedby`. Strings come from `strings.json`.

use serde_json::{Map, Value, json};

use super::{
    answers::AnswerError,
    spec::{Question, QuestionType, SurveySpec, local},
};

/// The page's data for `templates/pages/survey.hbs` (without the layout's `t` and `lang`).
pub fn form(spec: &SurveySpec, lang: &str, t: &Value, answers: &Map<String, Value>, errors: &[AnswerError]) -> Value {
    let s = |key: &str| t[key].as_str().unwrap_or_default().to_owned();
    let questions: Vec<Value> = spec
        .questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let error = errors.iter().find(|e| e.question == q.id()).map(|e| error_text(e, t));
            question(spec, i, q, lang, &s, answers.get(q.id()), error)
        })
        .collect();
    let summary: Vec<Value> = errors
        .iter()
        .filter_map(|e| {
            let i = spec.questions.iter().position(|q| q.id() == e.question)?;
            Some(json!({"anchor": anchor(&spec.questions[i]), "number": i + 1, "message": error_text(e, t)}))
        })
        .collect();
    json!({
        "title": local(&spec.title, lang),
        "description": local(&spec.description, lang),
        "questions": questions,
        "errors": summary,
    })
}

/// An error in the page's language, with its limit filled in.
pub fn error_text(e: &AnswerError, t: &Value) -> String {
    let template = t[format!("err_{}", e.code)].as_str().unwrap_or(e.code);
    template.replace("{n}", &e.limit.unwrap_or_default().to_string())
}

fn anchor(q: &Question) -> String {
    format!("question-{}", q.id())
}

fn question(spec: &SurveySpec, i: usize, q: &Question, lang: &str, s: &impl Fn(&str) -> String, given: Option<&Value>, error: Option<String>) -> Value {
    let anchor = anchor(q);
    let help = q.help.as_ref().map(|h| local(h, lang).to_owned()).filter(|h| !h.is_empty());
    let condition = q.show_if.as_ref().and_then(|c| condition_text(spec, c, lang, s));
    let field = format!("q.{}", q.id());
    let chosen = |value: &Value| match given {
        Some(Value::Array(items)) => items.contains(value),
        Some(v) => v == value,
        None => false,
    };
    let choice = |value: Value, label: String| json!({"checked": chosen(&value), "value": value_text(&value), "label": label});
    let (input, choices): (&str, Vec<Value>) = match q.kind {
        QuestionType::SingleChoice | QuestionType::MultipleChoice => {
            let input = if q.kind == QuestionType::SingleChoice { "radio" } else { "checkbox" };
            (input, q.options.iter().enumerate().map(|(n, o)| choice(json!(n + 1), local(o, lang).to_owned())).collect())
        }
        QuestionType::YesNo => ("radio", vec![choice(json!(true), s("survey_yes")), choice(json!(false), s("survey_no"))]),
        QuestionType::Scale => {
            let (lo, hi) = q.scale_bounds();
            ("radio", (lo..=hi).map(|v| choice(json!(v), v.to_string())).collect())
        }
        _ => ("", vec![]),
    };
    let ranks: Vec<Value> = if q.kind == QuestionType::Ranking { ranks(q, lang, &field, given, s) } else { vec![] };
    let hint = match q.kind {
        QuestionType::MultipleChoice => Some(s("survey_choose").replace("{min}", &q.min.unwrap_or(0).to_string())
            .replace("{max}", &q.max.map_or(q.options.len(), |m| m as usize).to_string())),
        QuestionType::Ranking => Some(s("survey_rank_hint")),
        QuestionType::Scale => {
            let (lo, hi) = q.scale_bounds();
            Some(s("survey_scale_hint").replace("{min}", &lo.to_string()).replace("{max}", &hi.to_string()))
        }
        _ => None,
    };
    let mut described = Vec::new();
    for (present, suffix) in [(help.is_some(), "help"), (condition.is_some(), "cond"), (hint.is_some(), "hint"), (error.is_some(), "error")] {
        if present {
            described.push(format!("{anchor}-{suffix}"));
        }
    }
    json!({
        "anchor": anchor,
        "number": i + 1,
        "text": local(&q.text, lang),
        "required": q.required.then(|| s("survey_required")),
        "help": help,
        "hint": hint,
        "condition": condition,
        "error": error,
        "described_by": described.join(" "),
        "field": field,
        "group": q.kind != QuestionType::ShortText && q.kind != QuestionType::LongText,
        "input": input,
        "choices": choices,
        "ranks": ranks,
        "short_text": q.kind == QuestionType::ShortText,
        "long_text": q.kind == QuestionType::LongText,
        "value": given.and_then(Value::as_str).unwrap_or_default(),
        "max_length": q.max_length(),
    })
}

/// What a form field carries for an answer value.
fn value_text(v: &Value) -> String {
    match v {
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        other => other.to_string(),
    }
}

/// One select per option, its place (1..n) chosen when `given` ranks it.
fn ranks(q: &Question, lang: &str, field: &str, given: Option<&Value>, s: &impl Fn(&str) -> String) -> Vec<Value> {
    let order: Vec<i64> = given.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_i64).collect()).unwrap_or_default();
    (1..=q.options.len())
        .map(|n| {
            let place = order.iter().position(|o| *o == n as i64).map(|p| p + 1);
            let mut positions = vec![json!({"value": "", "text": s("survey_position_none"), "selected": place.is_none()})];
            positions.extend((1..=q.options.len()).map(|p| json!({"value": p, "text": p, "selected": place == Some(p)})));
            json!({"name": format!("{field}.{n}"), "id": format!("{field}.{n}").replace('.', "-"), "label": local(&q.options[n - 1], lang), "positions": positions})
        })
        .collect()
}

/// "Answer only if question 2 was answered: Yes."
fn condition_text(spec: &SurveySpec, c: &super::spec::Condition, lang: &str, s: &impl Fn(&str) -> String) -> Option<String> {
    let i = spec.questions.iter().position(|q| q.id() == c.question)?;
    let target = &spec.questions[i];
    let answer = match (&c.equals, target.kind) {
        (Value::Bool(true), _) => s("survey_yes"),
        (Value::Bool(false), _) => s("survey_no"),
        (v, QuestionType::SingleChoice | QuestionType::MultipleChoice) => {
            let n = v.as_u64().unwrap_or(0) as usize;
            target.options.get(n.wrapping_sub(1)).map(|o| local(o, lang).to_owned()).unwrap_or_default()
        }
        (v, _) => v.to_string(),
    };
    Some(s("survey_condition").replace("{n}", &(i + 1).to_string()).replace("{answer}", &answer))
}
