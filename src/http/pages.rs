//! Server-rendered pages residents open from a message: the email confirmation and the
//! preferences form. Plain HTML forms, no JavaScript, in the resident's language.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde_json::{Value, json};

use super::{AppState, preferences::{PreferencesPut, active, open_link, parse_update}};
use crate::{
    domain::Language,
    residents::{CONSENT_VERSION, secrets},
    store::{SubscriberState, now_ms},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v/{token}", get(confirm_email))
        .route("/preferences/{token}", get(show).post(save))
        .route("/preferences/{token}/unsubscribe", post(unsubscribe_all))
        .route("/preferences/{token}/erase", post(erase))
}

async fn confirm_email(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let verified = state.store.verify_email(&secrets::digest(&token), now_ms(), CONSENT_VERSION).await;
    match verified {
        Ok(Some((public_id, lang))) => {
            let lang = Language::parse(&lang).unwrap_or_default();
            let url = state.residents.preferences_url(&public_id);
            page(&state, "confirmed", lang, StatusCode::OK, json!({"preferences_url": url}))
        }
        Ok(None) => page(&state, "link_invalid", Language::Pl, StatusCode::NOT_FOUND, json!({})),
        Err(e) => super::error::ApiError::from(e).into_response(),
    }
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    render_form(&state, &token, None).await
}

/// The form posts here (HTML forms cannot PUT); it applies the same update as the API.
async fn save(State(state): State<AppState>, Path(token): Path<String>, body: Bytes) -> Response {
    let mut put = PreferencesPut::default();
    let (mut districts, mut interests, mut channels) = (vec![], vec![], vec![]);
    for (k, v) in url::form_urlencoded::parse(&body) {
        match &*k {
            "district" => districts.push(v.into_owned()),
            "interest" => interests.push(v.into_owned()),
            "channel" => channels.push(v.into_owned()),
            "language" => put.language = Some(v.into_owned()),
            _ => {}
        }
    }
    put.districts = Some(districts);
    put.interests = Some(interests);
    put.channels = Some(channels);
    let Ok(id) = open_link(&state, &token) else { return not_found(&state) };
    match parse_update(&state, &put).await {
        Ok(update) => match state.store.update_preferences(&id, &update, now_ms(), CONSENT_VERSION).await {
            Ok(_) => render_form(&state, &token, Some("saved")).await,
            Err(e) => super::error::ApiError::from(e).into_response(),
        },
        Err(e) => {
            tracing::debug!(error = ?e, "preferences form refused");
            render_form(&state, &token, Some("invalid")).await
        }
    }
}

async fn unsubscribe_all(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Ok(id) = open_link(&state, &token) else { return not_found(&state) };
    if let Err(e) = state.store.unsubscribe(&id, None, "preferences_link", now_ms(), CONSENT_VERSION).await {
        return super::error::ApiError::from(e).into_response();
    }
    render_form(&state, &token, Some("unsubscribed")).await
}

async fn erase(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Ok(id) = open_link(&state, &token) else { return not_found(&state) };
    let lang = match state.store.preferences(&id).await {
        Ok(SubscriberState::Active(p)) => p.language,
        _ => Language::Pl,
    };
    match state.store.erase(&id, now_ms()).await {
        Ok(_) => page(&state, "erased", lang, StatusCode::OK, json!({})),
        Err(e) => super::error::ApiError::from(e).into_response(),
    }
}

async fn render_form(state: &AppState, token: &str, notice: Option<&str>) -> Response {
    let Ok(id) = open_link(state, token) else { return not_found(state) };
    let prefs = match state.store.preferences(&id).await.map_err(super::error::ApiError::from).and_then(active) {
        Ok(p) => p,
        Err(e) if e.status() == StatusCode::GONE => return page(state, "erased", Language::Pl, StatusCode::GONE, json!({})),
        Err(e) => return e.into_response(),
    };
    let (Ok(districts), Ok(interests)) = (state.store.districts().await, state.store.interests().await) else {
        return super::error::ApiError::unavailable("the database").into_response();
    };
    let lang = prefs.language;
    let name = |pl: &str, en: &str, uk: &str| match lang { Language::Pl => pl.to_owned(), Language::En => en.to_owned(), Language::Uk => uk.to_owned() };
    let districts: Vec<Value> = districts
        .iter()
        .map(|d| json!({"slug": d.slug, "name": name(&d.name_pl, &d.name_en, &d.name_uk), "checked": prefs.districts.contains(&d.slug)}))
        .collect();
    let interests: Vec<Value> = interests
        .iter()
        .map(|i| json!({"slug": i.slug, "name": name(&i.name_pl, &i.name_en, &i.name_uk), "checked": prefs.interests.contains(&i.slug)}))
        .collect();
    let contacts: Vec<Value> = prefs
        .contacts
        .iter()
        .map(|c| json!({"channel": c.channel, "address": c.address, "status": c.status, "checked": c.status == "verified" || c.status == "pending"}))
        .collect();
    let data = json!({
        "token": token,
        "notice": notice,
        "districts": districts,
        "interests": interests,
        "contacts": contacts,
        "languages": [
            {"code": "pl", "name": "Polski", "checked": lang == Language::Pl},
            {"code": "en", "name": "English", "checked": lang == Language::En},
            {"code": "uk", "name": "Українська", "checked": lang == Language::Uk},
        ],
    });
    page(state, "preferences", lang, StatusCode::OK, data)
}

fn not_found(state: &AppState) -> Response {
    page(state, "link_invalid", Language::Pl, StatusCode::NOT_FOUND, json!({}))
}

pub(super) fn page(state: &AppState, name: &str, lang: Language, status: StatusCode, mut data: Value) -> Response {
    data["t"] = state.pages.strings(lang);
    data["lang"] = json!(lang.as_str());
    match state.pages.render(name, &data) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => super::error::ApiError::internal(e).into_response(),
    }
}
