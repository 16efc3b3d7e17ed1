//! The answering pages: `/s/{token}` (an invitation) and `/s/open/{slug}` (anyone), plain
//! HTML forms without JavaScript, in the resident's language. A POST that fails shows the
//! form again with each error next to its question; one that succeeds redirects (303) to the
//! thank-you page, which offers "change my answer" while the survey is open.
//!
//! Forgery: an invitation page's URL holds an unguessable token, as the preferences page's
//! does, so another site cannot post to it. An open page's URL is public, so its form carries
//! a token bound (HMAC) to this browser's cookie, which is `SameSite=Lax`.

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{AppState, error::ApiError, pages::page, surveys::ClientIp};
use crate::{
    domain::Language,
    residents::secrets,
    store::{Respondent, SurveyRow},
    surveys::{answers::{self, AnswerError}, page as form_page, service::{self, Refused}},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/s/{token}", get(show_invited).post(answer_invited))
        .route("/s/{token}/thanks", get(thanks_invited))
        .route("/s/open/{slug}", get(show_open).post(answer_open))
        .route("/s/open/{slug}/thanks", get(thanks_open))
}

const COOKIE: &str = "hejnal_survey";

#[derive(Deserialize)]
pub(super) struct LangQuery {
    pub lang: Option<String>,
}

/// `?lang=` first, then the invitation's language (or the browser's for open pages).
pub(super) fn language(q: &LangQuery, fallback: Option<&str>, headers: &HeaderMap) -> Language {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let from_browser = accept.split(',').map(|p| p.split(';').next().unwrap_or("").trim()).find_map(|tag| Language::parse(tag.get(..2).unwrap_or("")).ok());
    q.lang.as_deref().and_then(|l| Language::parse(l).ok())
        .or_else(|| fallback.and_then(|l| Language::parse(l).ok()))
        .or(from_browser)
        .unwrap_or_default()
}

/// A page for a refusal: closed, not open yet, unknown link, erased.
pub(super) fn refusal(state: &AppState, e: &ApiError, lang: Language) -> Response {
    let code = e.body().code.as_str();
    let (name, status) = match code {
        "survey_closed" => ("survey_closed", StatusCode::CONFLICT),
        "survey_not_open" => ("survey_not_open", StatusCode::CONFLICT),
        "gone" => ("erased", StatusCode::GONE),
        _ if e.status() == StatusCode::NOT_FOUND => ("link_invalid", StatusCode::NOT_FOUND),
        _ => return ApiError::new(e.status(), code, e.body().message.clone()).into_response(),
    };
    page(state, name, lang, status, json!({"detail": e.body().message}))
}

/// The form, filled with `answers`, with `errors` beside their questions.
fn form(state: &AppState, survey: &SurveyRow, lang: Language, action: String, extra: Value, answers: &Map<String, Value>, errors: &[AnswerError], status: StatusCode) -> Response {
    let spec = match service::parse(survey) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let t = state.pages.strings(lang);
    let mut data = form_page::form(&spec, lang.as_str(), &t, answers, errors);
    data["action"] = json!(action);
    data["notice"] = extra["notice"].clone();
    data["csrf"] = extra["csrf"].clone();
    data["languages"] = extra["languages"].clone();
    page(state, "survey", lang, status, data)
}

pub(super) fn fields(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

async fn stored_answers(state: &AppState, survey_id: i64, who: &Respondent) -> Result<Option<Map<String, Value>>, ApiError> {
    Ok(state.store.response_of(survey_id, who).await?.and_then(|r| serde_json::from_str(&r.answers).ok()))
}

async fn show_invited(State(state): State<AppState>, Path(token): Path<String>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let (inv, survey) = match service::invitation(&state.residents, &token).await {
        Ok(found) => found,
        Err(e) => return refusal(&state, &e, language(&q, None, &headers)),
    };
    let lang = language(&q, Some(&inv.language), &headers);
    if let Err(e) = service::accepting(&survey, crate::store::now_ms()) {
        return refusal(&state, &e, lang);
    }
    let earlier = match stored_answers(&state, survey.id, &Respondent::Invitation(inv.id)).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let notice = earlier.as_ref().map(|_| state.pages.strings(lang)["survey_answered"].clone());
    form(&state, &survey, lang, format!("/s/{token}"), json!({"notice": notice}), &earlier.unwrap_or_default(), &[], StatusCode::OK)
}

async fn answer_invited(State(state): State<AppState>, Path(token): Path<String>, Query(q): Query<LangQuery>, headers: HeaderMap, body: Bytes) -> Response {
    let (inv, survey) = match service::invitation(&state.residents, &token).await {
        Ok(found) => found,
        Err(e) => return refusal(&state, &e, language(&q, None, &headers)),
    };
    let lang = language(&q, Some(&inv.language), &headers);
    submit(&state, &survey, Respondent::Invitation(inv.id), &body, None, lang, format!("/s/{token}"), json!({}), &q).await
}

/// Check and store a form; errors show the form again, success goes to the thank-you page.
#[allow(clippy::too_many_arguments)]
async fn submit(state: &AppState, survey: &SurveyRow, who: Respondent, body: &Bytes, ip: Option<std::net::IpAddr>, lang: Language, action: String, extra: Value, q: &LangQuery) -> Response {
    let spec = match service::parse(survey) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let given = answers::from_form(&spec, &fields(body));
    match service::answer(&state.residents, survey, &spec, who, &given, ip).await {
        Ok(_) => {
            let lang_param = q.lang.as_deref().map(|l| format!("?lang={}", url::form_urlencoded::byte_serialize(l.as_bytes()).collect::<String>())).unwrap_or_default();
            Redirect::to(&format!("{action}/thanks{lang_param}")).into_response()
        }
        Err(Refused::Invalid(errors)) => form(state, survey, lang, action, extra, &given, &errors, StatusCode::UNPROCESSABLE_ENTITY),
        Err(Refused::Other(e)) => refusal(state, &e, lang),
    }
}

async fn thanks_invited(State(state): State<AppState>, Path(token): Path<String>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    match service::invitation(&state.residents, &token).await {
        Ok((inv, survey)) => thanks(&state, &survey, language(&q, Some(&inv.language), &headers), format!("/s/{token}")),
        Err(e) => refusal(&state, &e, language(&q, None, &headers)),
    }
}

fn thanks(state: &AppState, survey: &SurveyRow, lang: Language, back: String) -> Response {
    let title = service::parse(survey).map(|s| crate::surveys::spec::local(&s.title, lang.as_str()).to_owned()).unwrap_or_default();
    let open = service::accepting(survey, crate::store::now_ms()).is_ok();
    page(state, "survey_thanks", lang, StatusCode::OK, json!({"title": title, "change_url": open.then_some(back)}))
}

/// This browser's token from its cookie.
pub(super) fn browser_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE && service::browser_respondent(value).is_ok()).then(|| value.to_owned())
    })
}

/// The browser's token as a cookie sent back only to pages under `path`.
pub(super) fn set_cookie(state: &AppState, token: &str, path: &str) -> HeaderValue {
    let secure = if state.residents.public_url.scheme() == "https" { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; Path={path}; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Links to the page at `path` in each language (open pages, where no invitation says which).
pub(super) fn language_links(path: &str, lang: Language) -> Value {
    let links: Vec<Value> = [("pl", "Polski"), ("en", "English"), ("uk", "Українська")]
        .iter()
        .map(|(code, name)| json!({"code": code, "name": name, "url": format!("{path}?lang={code}"), "current": *code == lang.as_str()}))
        .collect();
    json!(links)
}

async fn show_open(State(state): State<AppState>, Path(slug): Path<String>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = language(&q, None, &headers);
    let survey = match service::open_survey(&state.store, &slug).await.and_then(|s| service::accepting(&s, crate::store::now_ms()).map(|_| s)) {
        Ok(s) => s,
        Err(e) => return refusal(&state, &e, lang),
    };
    let (token, fresh) = match browser_token(&headers) {
        Some(t) => (t, false),
        None => (secrets::random_token(16), true),
    };
    let earlier = match service::browser_respondent(&token) {
        Ok(who) => stored_answers(&state, survey.id, &who).await.ok().flatten(),
        Err(_) => None,
    };
    let notice = earlier.as_ref().map(|_| state.pages.strings(lang)["survey_answered"].clone());
    let extra = json!({"notice": notice, "csrf": state.residents.links.keyed("csrf", &token), "languages": language_links(&format!("/s/open/{slug}"), lang)});
    let mut response = form(&state, &survey, lang, format!("/s/open/{slug}"), extra, &earlier.unwrap_or_default(), &[], StatusCode::OK);
    if fresh {
        response.headers_mut().insert(header::SET_COOKIE, set_cookie(&state, &token, "/s/open/"));
    }
    response
}

async fn answer_open(State(state): State<AppState>, Path(slug): Path<String>, Query(q): Query<LangQuery>, ClientIp(ip): ClientIp, headers: HeaderMap, body: Bytes) -> Response {
    let lang = language(&q, None, &headers);
    let survey = match service::open_survey(&state.store, &slug).await {
        Ok(s) => s,
        Err(e) => return refusal(&state, &e, lang),
    };
    let sent_csrf = fields(&body).into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
    let token = browser_token(&headers).filter(|t| sent_csrf.is_some_and(|c| secrets::same_digest(&state.residents.links.keyed("csrf", t), &c)));
    let Some(token) = token else {
        // No cookie (refused by the browser) or a form from elsewhere: nothing is stored.
        let t = state.pages.strings(lang);
        return page(&state, "survey_cookie", lang, StatusCode::FORBIDDEN, json!({"detail": t["survey_cookie"], "back": format!("/s/open/{slug}")}));
    };
    let who = match service::browser_respondent(&token) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    let extra = json!({"notice": null, "csrf": state.residents.links.keyed("csrf", &token), "languages": language_links(&format!("/s/open/{slug}"), lang)});
    submit(&state, &survey, who, &body, ip, lang, format!("/s/open/{slug}"), extra, &q).await
}

async fn thanks_open(State(state): State<AppState>, Path(slug): Path<String>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = language(&q, None, &headers);
    match service::open_survey(&state.store, &slug).await {
        Ok(survey) => thanks(&state, &survey, lang, format!("/s/open/{slug}")),
        Err(e) => refusal(&state, &e, lang),
    }
}
