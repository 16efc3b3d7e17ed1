//! A consultation's public pages, plain HTML without JavaScript, in Polish, English and
//! Ukrainian: `/c/{slug}` (the document, the period, a link to the questions, the approved
//! comments and a comment form while the period runs) and `/c/{slug}/report` (once officials
//! published it). The comment form carries a token bound to this browser's cookie, as the
//! open survey form does; comments are also limited per address (`HEJNAL_COMMENT_RATE_PER_HOUR`).

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    AppState,
    pages::page,
    survey_pages::{LangQuery, browser_token, fields, language, language_links, refusal, set_cookie},
    surveys::ClientIp,
};
use crate::{
    domain::{Language, warsaw_offset},
    residents::secrets,
    store::{SurveyRow, now_ms},
    surveys::{
        consultation::{self, COMMENTS_SHOWN, CommentBody},
        service,
        spec::{LocalText, SurveySpec, local},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/c/{slug}", get(show))
        .route("/c/{slug}/comments", post(comment))
        .route("/c/{slug}/report", get(report))
}

const COOKIE_PATH: &str = "/c/";

#[derive(Deserialize)]
struct ShowQuery {
    lang: Option<String>,
    sent: Option<String>,
}

/// A moment as residents read it: Kraków time.
fn local_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.with_timezone(&warsaw_offset(t)).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// Paragraphs of a plain text: blank lines separate them.
fn paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n").split("\n\n").map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// "From … to …", "opens …" or "ended …", in `lang`.
fn period(t: &Value, row: &SurveyRow, now: i64) -> String {
    let from = local_time(row.opens_at.unwrap_or(row.created_at));
    let to = local_time(row.closed_at.or(row.closes_at).unwrap_or(now));
    let key = if row.opens_at.is_some_and(|o| o > now) {
        "consultation_not_started"
    } else if consultation::ended(row, now) {
        "consultation_ended"
    } else {
        "consultation_period"
    };
    t[key].as_str().unwrap_or("").replace("{from}", &from).replace("{to}", &to)
}

/// What the comment form shows again: the resident's text and the errors beside the fields.
#[derive(Default)]
struct Sent {
    body: CommentBody,
    name_error: Option<String>,
    text_error: Option<String>,
}

async fn render(state: &AppState, slug: &str, lang: Language, sent: Option<&Sent>, thanked: bool, cookie: Option<String>) -> Response {
    let (row, spec) = match consultation::public(&state.store, slug).await {
        Ok(found) => found,
        Err(e) => return refusal(state, &e, lang),
    };
    let now = now_ms();
    let open = service::accepting(&row, now).is_ok();
    let comments = match state.store.comments(row.id, Some("approved"), COMMENTS_SHOWN).await {
        Ok(c) => c,
        Err(e) => return super::error::ApiError::from(e).into_response(),
    };
    let has_report = matches!(state.store.report(row.id).await, Ok(Some(_)));
    let t = state.pages.strings(lang);
    let l = lang.as_str();
    let doc = spec.document.clone().unwrap_or_else(|| consultation_without_document(&spec));
    let (token, fresh) = match cookie {
        Some(c) => (c, false),
        None => (secrets::random_token(16), true),
    };
    let empty = Sent::default();
    let sent = sent.unwrap_or(&empty);
    let form = open.then(|| json!({
        "action": format!("/c/{slug}/comments?lang={l}"),
        "csrf": state.residents.links.keyed("csrf", &token),
        "name": sent.body.name.clone().unwrap_or_default(),
        "text": sent.body.text,
        "name_error": sent.name_error,
        "text_error": sent.text_error,
    }));
    let errors: Vec<Value> = [("comment-name", &sent.name_error), ("comment-text", &sent.text_error)]
        .iter()
        .filter_map(|(anchor, e)| e.as_ref().map(|m| json!({"anchor": anchor, "message": m})))
        .collect();
    let data = json!({
        "languages": language_links(&format!("/c/{slug}"), lang),
        "title": local(&spec.title, l),
        "period": period(&t, &row, now),
        "sent": thanked,
        "summary": local(&doc.summary, l),
        "paragraphs": paragraphs(local(&doc.body, l)),
        "attachments": doc.attachments.iter().map(|a| json!({"title": local(&a.title, l), "url": a.url})).collect::<Vec<_>>(),
        "questions_url": open.then(|| format!("/s/open/{slug}?lang={l}")),
        "report_url": has_report.then(|| format!("/c/{slug}/report?lang={l}")),
        "comments": comments.iter().map(|c| json!({
            "name": c.name.clone().unwrap_or_else(|| t["consultation_anonymous"].as_str().unwrap_or("").to_owned()),
            "date": local_time(c.created_at),
            "datetime": DateTime::<Utc>::from_timestamp_millis(c.created_at).map(|d| d.to_rfc3339()),
            "text": c.body,
        })).collect::<Vec<_>>(),
        "form": form,
        "errors": errors,
    });
    let status = if sent.name_error.is_some() || sent.text_error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let mut response = page(state, "consultation", lang, status, data);
    if fresh && open {
        response.headers_mut().insert(header::SET_COOKIE, set_cookie(state, &token, COOKIE_PATH));
    }
    response
}

/// A consultation stored before its document was required shows its description instead.
fn consultation_without_document(spec: &SurveySpec) -> crate::surveys::spec::Document {
    crate::surveys::spec::Document { summary: spec.description.clone(), body: LocalText::new(), attachments: vec![] }
}

async fn show(State(state): State<AppState>, Path(slug): Path<String>, Query(q): Query<ShowQuery>, headers: HeaderMap) -> Response {
    let lang = language(&LangQuery { lang: q.lang.clone() }, None, &headers);
    render(&state, &slug, lang, None, q.sent.is_some(), browser_token(&headers)).await
}

async fn comment(State(state): State<AppState>, Path(slug): Path<String>, Query(q): Query<LangQuery>, ClientIp(ip): ClientIp, headers: HeaderMap, body: Bytes) -> Response {
    let lang = language(&q, None, &headers);
    let (row, _) = match consultation::public(&state.store, &slug).await {
        Ok(found) => found,
        Err(e) => return refusal(&state, &e, lang),
    };
    let form = fields(&body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let token = browser_token(&headers).filter(|t| field("csrf").is_some_and(|c| secrets::same_digest(&state.residents.links.keyed("csrf", t), &c)));
    let Some(token) = token else {
        // No cookie (refused by the browser) or a form from elsewhere: nothing is kept.
        let t = state.pages.strings(lang);
        return page(&state, "survey_cookie", lang, StatusCode::FORBIDDEN, json!({"detail": t["survey_cookie"], "back": format!("/c/{slug}")}));
    };
    if let Err(e) = state.comment_limiter.check(ip) {
        return e.into_response();
    }
    let sent = CommentBody { name: field("name"), text: field("text").unwrap_or_default(), language: Some(lang.as_str().to_owned()) };
    if let Err(errors) = consultation::check_comment(&sent) {
        let t = state.pages.strings(lang);
        let say = |key: &str| t[key].as_str().map(str::to_owned);
        let mut shown = Sent { body: sent, ..Sent::default() };
        for e in errors {
            match e.field.as_str() {
                "name" => shown.name_error = say("consultation_name_long"),
                _ if shown.body.text.trim().is_empty() => shown.text_error = say("consultation_comment_empty"),
                _ => shown.text_error = say("consultation_comment_long"),
            }
        }
        return render(&state, &slug, lang, Some(&shown), false, Some(token)).await;
    }
    let ip_digest = ip.map(|ip| state.residents.links.keyed("ip", &format!("{}:{ip}", row.id)));
    match consultation::comment(&state.store, &row, &sent, lang.as_str(), Some(secrets::digest(&token)), ip_digest).await {
        Ok(_) => Redirect::to(&format!("/c/{slug}?lang={}&sent=1#comments", lang.as_str())).into_response(),
        Err(e) => refusal(&state, &e, lang),
    }
}

async fn report(State(state): State<AppState>, Path(slug): Path<String>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = language(&q, None, &headers);
    let found = consultation::public(&state.store, &slug).await;
    let (row, spec) = match found {
        Ok(found) => found,
        Err(e) => return refusal(&state, &e, lang),
    };
    let report = match state.store.report(row.id).await {
        Ok(Some(r)) => r,
        Ok(None) => return refusal(&state, &super::error::ApiError::not_found("report"), lang),
        Err(e) => return super::error::ApiError::from(e).into_response(),
    };
    let t = state.pages.strings(lang);
    let l = lang.as_str();
    let summary: LocalText = serde_json::from_str(&report.summary).unwrap_or_default();
    let results: Value = serde_json::from_str(&report.results).unwrap_or_default();
    let responses = results["responses"]["invitation"].as_i64().unwrap_or(0) + results["responses"]["open"].as_i64().unwrap_or(0);
    let counts = t["consultation_report_counts"].as_str().unwrap_or("").replace("{responses}", &responses.to_string()).replace("{comments}", &report.comments.to_string());
    let questions: Vec<Value> = spec.questions.iter().enumerate().map(|(i, q)| question_result(&t, l, q, &results["questions"][i], i + 1)).collect();
    let data = json!({
        "languages": language_links(&format!("/c/{slug}/report"), lang),
        "title": local(&spec.title, l),
        "published": t["consultation_report_published"].as_str().unwrap_or("").replace("{at}", &local_time(report.published_at)),
        "summary": paragraphs(local(&summary, l)),
        "counts": counts,
        "questions": questions,
        "back": format!("/c/{slug}?lang={l}"),
    });
    page(&state, "consultation_report", lang, StatusCode::OK, data)
}

/// One question of the report: a row per option or scale value (count and share of those
/// who answered it), the mean of a scale, the mean place in a ranking, or only how many
/// answered a text question (texts are read by analysts, not published).
fn question_result(t: &Value, lang: &str, q: &crate::surveys::spec::Question, r: &Value, number: usize) -> Value {
    let answered = r["answered"]["total"].as_i64().unwrap_or(0);
    let share = |n: i64| if answered > 0 { format!("{:.0}%", 100.0 * n as f64 / answered as f64) } else { "–".into() };
    let decimal = |x: f64| if lang == "en" { format!("{x:.2}") } else { format!("{x:.2}").replace('.', ",") };
    let label = |v: &Value| match v {
        Value::Number(n) if q.kind.has_options() => n.as_u64().and_then(|n| q.options.get((n as usize).wrapping_sub(1))).map(|o| local(o, lang).to_owned()).unwrap_or_default(),
        Value::String(s) if s == "yes" => t["survey_yes"].as_str().unwrap_or("").to_owned(),
        Value::String(s) if s == "no" => t["survey_no"].as_str().unwrap_or("").to_owned(),
        other => other.to_string(),
    };
    let mut rows: Vec<Value> = r["options"].as_array().into_iter().chain(r["distribution"].as_array()).flatten()
        .map(|c| {
            let n = c["total"].as_i64().unwrap_or(0);
            json!({"label": label(&c["value"]), "count": n, "percent": share(n)})
        })
        .collect();
    for rank in r["ranking"].as_array().into_iter().flatten() {
        let mean = rank["mean_position"]["total"].as_f64().map(decimal).unwrap_or_else(|| "–".into());
        rows.push(json!({"label": label(&rank["option"]), "count": mean, "percent": ""}));
    }
    let mean = r["mean"]["total"].as_f64().map(|m| t["consultation_report_mean"].as_str().unwrap_or("").replace("{mean}", &decimal(m)));
    json!({
        "number": number,
        "text": local(&q.text, lang),
        "answered": format!("{answered} {}", t["consultation_report_answers"].as_str().unwrap_or("")),
        "only_answered": rows.is_empty(),
        "rows": rows,
        "mean": mean,
    })
}
