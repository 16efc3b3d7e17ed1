//! Answering rules: display conditions (API and form, no JavaScript), errors beside their
//! questions, a closed or not yet open survey refusing clearly, open answers with a browser
//! token, duplicate flags and the per-address rate limit.

use serde_json::{Value, json};

use super::{browser, create, publish, publish_open, respond, results};
use crate::{both_backends, notices::Desk, residents::Kit};

fn conditional(slug: &str) -> Value {
    json!({
        "title": {"pl": "Rowery", "en": "Bikes"},
        "slug": slug,
        "questions": [
            {"type": "yes_no", "required": true, "text": {"pl": "Czy jeździsz rowerem?"}},
            {"type": "scale", "scale": "0-10", "required": true, "text": {"pl": "Jak oceniasz drogi rowerowe?"}, "show_if": {"question": "q1", "equals": true}},
            {"type": "short_text", "text": {"pl": "Uwagi"}, "max_length": 10}
        ]
    })
}

/// An open survey's page as a browser sees it: (cookie, form token, html).
async fn open_page(desk: &Desk, path: &str, cookie: Option<&str>) -> (String, String, String) {
    let mut req = browser().get(format!("{}{path}", desk.kit.app.address));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let set = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let html = res.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).expect("a form token").split('"').next().unwrap().to_owned();
    (set.or(cookie.map(str::to_owned)).expect("a cookie"), csrf, html)
}

async fn post_form(desk: &Desk, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    browser().post(format!("{}{path}", desk.kit.app.address)).header("cookie", cookie).form(form).send().await.unwrap()
}

both_backends! {
    async fn a_display_condition_hides_a_question_on_the_server_and_errors_sit_beside_their_questions(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let id = create(&desk, &conditional("rowery")).await;
        let (status, published) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({})).await;
        assert_eq!((status, published["state"].as_str()), (200, Some("published")), "an open survey needs no audience: {published}");

        // By API: "no" hides q2, so it is not required and an answer to it is dropped.
        let (status, answered) = respond(&desk, id, &json!({"answers": {"q1": false, "q2": 7}})).await;
        assert_eq!(status, 201, "{answered}");
        assert_eq!(answered["answers"], json!({"q1": false}));
        let browser_token = answered["browser_token"].as_str().unwrap().to_owned();
        // "yes" shows it, and then it is required; each error names its question.
        let (status, refused) = respond(&desk, id, &json!({"browser_token": browser_token, "answers": {"q1": true, "q3": "za długa uwaga"}})).await;
        assert_eq!(status, 422, "{refused}");
        let details: Vec<(&str, &str)> = refused["error"]["details"].as_array().unwrap().iter().map(|d| (d["field"].as_str().unwrap(), d["message"].as_str().unwrap())).collect();
        assert_eq!(details, [("answers.q2", "this question needs an answer"), ("answers.q3", "at most 10 characters")]);
        let (status, changed) = respond(&desk, id, &json!({"browser_token": browser_token, "answers": {"q1": true, "q2": 9}})).await;
        assert_eq!((status, changed["revision"].as_i64()), (200, Some(2)), "the same browser replaces its answer");

        // By the page's form, without JavaScript: the condition is stated beside q2.
        let (cookie, csrf, html) = open_page(&desk, "/s/open/rowery?lang=pl", None).await;
        assert!(cookie.starts_with("hejnal_survey="), "{cookie}");
        assert!(html.contains("Odpowiedz tylko, jeśli w pytaniu 1 wybrano: Tak."), "{html}");
        assert!(html.contains("aria-describedby=\"question-q2-cond question-q2-hint\""), "{html}");
        let refused = post_form(&desk, "/s/open/rowery", &cookie, &[("csrf", &csrf), ("q.q1", "yes"), ("q.q3", "za długa uwaga")]).await;
        assert_eq!(refused.status(), 422);
        let html = refused.text().await.unwrap();
        assert!(html.contains("<p id=\"question-q2-error\" class=\"error\"><strong>To pytanie wymaga odpowiedzi.</strong></p>"), "{html}");
        assert!(html.contains("aria-describedby=\"question-q2-cond question-q2-hint question-q2-error\" aria-invalid=\"true\""), "{html}");
        assert!(html.contains("Odpowiedź może mieć najwyżej 10 znaków."), "{html}");
        assert!(html.contains("<a href=\"#question-q2\">2. To pytanie wymaga odpowiedzi.</a>"), "the summary links to the question: {html}");
        assert!(html.contains("value=\"yes\" checked"), "what was sent comes back: {html}");
        let saved = post_form(&desk, "/s/open/rowery", &cookie, &[("csrf", &csrf), ("q.q1", "no"), ("q.q2", "3")]).await;
        assert_eq!(saved.status(), 303);
        assert_eq!(saved.headers()["location"], "/s/open/rowery/thanks");

        // A form without the cookie's token is refused and stores nothing.
        let forged = post_form(&desk, "/s/open/rowery", &cookie, &[("csrf", "forged"), ("q.q1", "no")]).await;
        assert_eq!(forged.status(), 403);
        let r = results(&desk, id).await;
        assert_eq!(r["responses"], json!({"invitation": 0, "open": 2, "open_flagged": 2}), "two browsers from one address: {r}");
        assert_eq!(r["questions"][1]["answered"]["open"], 1, "the form's q2 was dropped: {r}");
        assert_eq!(r["questions"][1]["mean"]["open"], 9.0);
        assert_eq!(r["questions"][0]["options"], json!([
            {"value": "yes", "label": "yes", "invitation": 0, "open": 1, "total": 1},
            {"value": "no", "label": "no", "invitation": 0, "open": 1, "total": 1}]));
    }
}

both_backends! {
    async fn a_closed_or_not_yet_open_survey_refuses_answers_clearly(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let id = create(&desk, &conditional("zamknieta")).await;
        publish_open(&desk, id).await;
        let (status, _) = respond(&desk, id, &json!({"answers": {"q1": false}})).await;
        assert_eq!(status, 201);
        let (cookie, csrf, _) = open_page(&desk, "/s/open/zamknieta", None).await;
        let (status, closed) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/close"), &json!({})).await;
        assert_eq!((status, closed["state"].as_str(), closed["accepting_answers"].as_bool()), (200, Some("closed"), Some(false)));

        let (status, refused) = respond(&desk, id, &json!({"answers": {"q1": false}})).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("survey_closed")), "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().starts_with("this survey closed at "), "{refused}");
        let page = desk.kit.app.get("/s/open/zamknieta?lang=en").await;
        assert_eq!(page.status(), 409);
        assert!(page.text().await.unwrap().contains("<h1>This survey is closed</h1>"));
        let posted = post_form(&desk, "/s/open/zamknieta", &cookie, &[("csrf", &csrf), ("q.q1", "no")]).await;
        assert_eq!(posted.status(), 409);
        assert!(posted.text().await.unwrap().contains("<h1>Ankieta jest zamknięta</h1>"));
        assert_eq!(results(&desk, id).await["responses"]["open"], 1, "nothing was added after closing");

        // One that opens tomorrow takes nothing yet.
        let mut later = conditional("jutro");
        later["opens_at"] = json!((chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339());
        let id = create(&desk, &later).await;
        let published = publish(&desk, id, json!({"districts": ["podgorze"], "channels": ["email"]})).await;
        assert_eq!(published["accepting_answers"], false);
        let (status, refused) = respond(&desk, id, &json!({"answers": {"q1": false}})).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("survey_not_open")), "{refused}");
        let notice = desk.notice(published["invitation_notice_id"].as_i64().unwrap()).await;
        assert_eq!(notice["state"], "scheduled", "invitations wait for the opening: {notice}");
    }
}

both_backends! {
    async fn open_answers_are_rate_limited_per_address(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let id = create(&desk, &conditional("limit")).await;
        publish_open(&desk, id).await;
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(respond(&desk, id, &json!({"answers": {"q1": false}})).await.0);
        }
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert!(limited >= 5, "a burst of 20 is allowed, the rest of 30 is refused: {statuses:?}");
        let stored = results(&desk, id).await["responses"]["open"].as_i64().unwrap();
        assert_eq!(stored as usize, 30 - limited);
    }
}

both_backends! {
    async fn a_batch_of_answers_is_one_write_where_the_last_answer_of_a_respondent_wins_and_a_closed_survey_takes_none(env) {
        use hejnal::store::{NewResponse, Respondent};
        let desk = Desk::open(Kit::start(&env).await).await;
        let open = create(&desk, &conditional("partia")).await;
        desk.post(&desk.author, &format!("/api/v1/surveys/{open}/publish"), &json!({})).await;
        let closed = create(&desk, &conditional("po-terminie")).await;
        desk.post(&desk.author, &format!("/api/v1/surveys/{closed}/publish"), &json!({})).await;
        desk.post(&desk.author, &format!("/api/v1/surveys/{closed}/close"), &json!({})).await;
        let now = hejnal::store::now_ms();
        let answer = |survey_id: i64, who: &str, q1: bool| NewResponse {
            survey_id, respondent: Respondent::Browser(who.into()), answers: json!({"q1": q1}).to_string(), ip_digest: None, at: now,
        };
        let batch = [answer(open, "a", true), answer(open, "b", true), answer(open, "a", false), answer(closed, "c", true)];
        let saved = desk.store.save_responses(&batch).await.unwrap();
        let stored: Vec<(i64, String, i64)> = saved.iter().map(|s| match &s.respondent {
            Respondent::Browser(b) => (s.survey_id, b.clone(), s.revision),
            other => panic!("{other:?}"),
        }).collect();
        assert_eq!(stored, [(open, "a".to_string(), 2), (open, "b".to_string(), 1)], "one row per respondent (its revision counts both answers), none for the closed survey");
        let a = desk.store.response_of(open, &Respondent::Browser("a".into())).await.unwrap().unwrap();
        assert_eq!(a.answers, json!({"q1": false}).to_string(), "the later answer in the batch");
        let again = desk.store.save_responses(&[answer(open, "a", true)]).await.unwrap();
        assert_eq!((again[0].id, again[0].revision), (a.id, 3));
        assert_eq!(desk.store.response_of(closed, &Respondent::Browser("c".into())).await.unwrap(), None);
    }
}
