//! Invitations through the broadcast pipeline to the real sinks, answers by token through the
//! API and through the page's form, replacing not adding, a burst on one token, erasure.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{Value, json};

use super::{browser, create, every_type, publish, respond, results, token_in, unlimited};
use crate::{both_backends, notices::Desk, residents::Kit};

/// A complete, valid answer to `every_type`.
fn full_answer() -> Value {
    json!({"q1": true, "q2": 2, "q3": 4, "q4": [1, 2], "q5": [2, 1, 3], "q6": "zielono", "q7": "Więcej ławek."})
}

both_backends! {
    async fn publishing_sends_each_resident_a_personal_link_and_one_token_keeps_one_answer(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = desk.residents(3, None).await;
        let id = create(&desk, &every_type(None)).await;
        let published = publish(&desk, id, json!({"districts": ["podgorze"], "interests": ["water"], "channels": ["sms", "email", "push"]})).await;
        let notice_id = published["invitation_notice_id"].as_i64().unwrap();
        let notice = desk.settled(notice_id, Duration::from_secs(60)).await;
        assert_eq!(notice["fanout"]["recipients"], 9, "{notice}");
        assert_eq!(notice["kind"], "survey");

        // Every channel, in Polish, carries the resident's own link: one token per resident.
        let sms = desk.kit.sms.requests();
        assert_eq!(sms.len(), 3);
        let mut tokens = Vec::new();
        for p in &people {
            let text = sms.iter().map(|r| r.json()).find(|j| j["to"] == p.phone).expect("an SMS")["text"].as_str().unwrap().to_owned();
            assert!(text.starts_with("Park Jordana. Odpowiedz na ankietę: http"), "{text}");
            let token = token_in(&text);
            let i = desk.kit.smtp.received().iter().position(|m| m.rcpt_to == [p.email.clone()]).expect("an email");
            let email = desk.kit.email_text(i).await;
            assert!(email.contains("Jak zmienić park?") && email.contains("Odpowiedz na ankietę: "), "{email}");
            assert_eq!(token_in(&email), token, "the email carries the same invitation");
            let push_index: usize = p.push.endpoint.rsplit('/').next().unwrap().parse().unwrap();
            let push = desk.kit.push.received().into_iter().find(|x| x.subscription == push_index).expect("a push").json();
            assert_eq!(push["title"], "Park Jordana");
            assert!(push["url"].as_str().unwrap().ends_with(&format!("/s/{token}")), "{push}");
            tokens.push(token);
        }
        assert_eq!(tokens.iter().collect::<BTreeSet<_>>().len(), 3, "three residents, three tokens");

        // An answer through the API; the second through the same token replaces it.
        let (status, first) = respond(&desk, id, &json!({"token": tokens[0], "answers": full_answer()})).await;
        assert_eq!((status, first["revision"].as_i64(), first["source"].as_str()), (201, Some(1), Some("invitation")), "{first}");
        let mut changed = full_answer();
        changed["q2"] = json!(1);
        let (status, second) = respond(&desk, id, &json!({"token": tokens[0], "answers": changed})).await;
        assert_eq!((status, second["revision"].as_i64(), second["response_id"].clone()), (200, Some(2), first["response_id"].clone()), "{second}");
        let r = results(&desk, id).await;
        assert_eq!(r["responses"]["invitation"], 1);
        assert_eq!(r["questions"][1]["options"][0]["invitation"], 1, "the later answer counts: {r}");
        assert_eq!(r["questions"][1]["options"][1]["invitation"], 0);

        // A forged token, and a token of this survey sent to another survey, are refused.
        let (status, _) = respond(&desk, id, &json!({"token": format!("{}x", tokens[1]), "answers": full_answer()})).await;
        assert_eq!(status, 404);
        let other = create(&desk, &json!({"title": {"pl": "Inna"}, "slug": "inna", "questions": [{"type": "yes_no", "text": {"pl": "?"}}]})).await;
        let (status, refused) = respond(&desk, other, &json!({"token": tokens[1], "answers": {"q1": true}})).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("token")), "{refused}");

        // The page: a form in the resident's language; posting it as a browser would.
        let page = desk.kit.app.get(&format!("/s/{}", tokens[1])).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("<html lang=\"pl\">") && html.contains("<legend>1. Czy bywasz w parku?"), "{html}");
        assert!(html.len() < 100 * 1024, "page of {} bytes", html.len());
        let form = [("q.q1", "yes"), ("q.q2", "3"), ("q.q3", "5"), ("q.q4", "2"), ("q.q4", "3"), ("q.q5.1", "3"), ("q.q5.2", "1"), ("q.q5.3", "2"), ("q.q6", "cisza"), ("q.q7", "")];
        let client = browser();
        let posted = client.post(format!("{}/s/{}", desk.kit.app.address, tokens[1])).form(&form).send().await.unwrap();
        assert_eq!(posted.status(), 303);
        let thanks_url = posted.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(thanks_url, format!("/s/{}/thanks", tokens[1]));
        let thanks = desk.kit.app.get(&thanks_url).await.text().await.unwrap();
        assert!(thanks.contains("Dziękujemy!") && thanks.contains(&format!("href=\"/s/{}\"", tokens[1])), "change my answer: {thanks}");
        // Change my answer: the form comes back filled in.
        let again = desk.kit.app.get(&format!("/s/{}", tokens[1])).await.text().await.unwrap();
        assert!(again.contains("value=\"3\" checked> &#x3D;HYPERLINK(&quot;http://zly.example&quot;)"), "the earlier choice is checked, escaped: {again}");
        assert!(again.contains("Twoja odpowiedź jest zapisana"), "{again}");
        let r = results(&desk, id).await;
        assert_eq!(r["responses"]["invitation"], 2);
        assert_eq!(r["questions"][4]["ranking"][1]["first"]["invitation"], 2, "Zieleń ranked first by the API and by the form: {r}");
        assert_eq!(r["questions"][4]["ranking"][2]["mean_position"]["invitation"], 2.5, "Plac zabaw 3rd by the API, 2nd by the form");
        assert_eq!(r["invitations"]["invited"], 3);
        assert_eq!(r["invitations"]["by_channel"].as_array().unwrap().len(), 3);
    }
}

both_backends! {
    async fn a_hundred_concurrent_answers_with_one_token_store_one_row(env) {
        let desk = unlimited(&env).await;
        let people = crate::surveys::residents(&desk, 1, "podgorze", hejnal::domain::Language::Pl, false).await;
        let id = create(&desk, &every_type(None)).await;
        publish(&desk, id, json!({"districts": ["podgorze"], "channels": ["email"]})).await;
        let tokens = crate::surveys::email_tokens(&desk.kit, 1).await;
        assert_eq!(tokens[0].0, people[0].0);
        let token = tokens[0].1.clone();
        let answers = (0..100).map(|i| {
            let mut a = full_answer();
            a["q6"] = json!(format!("odpowiedź {i}"));
            let (desk, token) = (&desk, token.clone());
            async move { respond(desk, id, &json!({"token": token, "answers": a})).await }
        });
        let outcomes = futures::future::join_all(answers).await;
        let statuses: Vec<u16> = outcomes.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "one first answer: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 99, "{statuses:?}");
        let revisions: BTreeSet<i64> = outcomes.iter().map(|(_, b)| b["revision"].as_i64().unwrap()).collect();
        assert_eq!(revisions, (1..=100).collect::<BTreeSet<_>>(), "each replaced the one before");
        let r = results(&desk, id).await;
        assert_eq!((r["responses"]["invitation"].as_i64(), r["invitations"]["answered"].as_i64()), (Some(1), Some(1)), "{r}");
        let (_, texts) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/answers?question=q6"), None).await;
        assert_eq!(texts.as_array().unwrap().len(), 1, "{texts}");
    }
}

both_backends! {
    async fn erasing_a_resident_keeps_their_answer_in_the_results_tied_to_nobody(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let people = crate::surveys::residents(&desk, 2, "podgorze", hejnal::domain::Language::En, false).await;
        let id = create(&desk, &every_type(None)).await;
        publish(&desk, id, json!({"districts": ["podgorze"], "channels": ["email"]})).await;
        let tokens = crate::surveys::email_tokens(&desk.kit, 2).await;
        let english = desk.kit.email_text(0).await;
        assert!(english.contains("Answer the survey: ") && english.contains("How should the park change?"), "{english}");
        let (status, _) = respond(&desk, id, &json!({"token": tokens[0].1, "answers": full_answer()})).await;
        assert_eq!(status, 201);

        // The resident erases themselves through the preferences link of that email.
        let unsubscribe = desk.kit.smtp.received()[0].header("List-Unsubscribe").expect("List-Unsubscribe");
        let preferences = crate::residents::link_after(&unsubscribe, "/preferences/");
        let preferences = preferences.split("/one-click").next().unwrap();
        // First, their data export holds their answer.
        let export: Value = desk.kit.app.get(&format!("/api/v1{preferences}/export")).await.json().await.unwrap();
        assert_eq!(export["survey_answers"].as_array().map(|a| a.len()), Some(1), "{export}");
        assert_eq!((export["survey_answers"][0]["survey_id"].as_i64(), export["survey_answers"][0]["answers"]["q6"].as_str()), (Some(id), Some("zielono")));
        let erase = desk.kit.app.client.post(format!("{}/api/v1{preferences}/erase", desk.kit.app.address)).send().await.unwrap();
        assert_eq!(erase.status(), 204);

        let r = results(&desk, id).await;
        assert_eq!((r["responses"]["invitation"].as_i64(), r["invitations"]["answered"].as_i64()), (Some(1), Some(1)), "{r}");
        assert_eq!(r["questions"][0]["options"][0]["invitation"], 1);
        // Nothing leads from the invitation to the person any more; the link is dead.
        let (linked, erased) = invitation_links(&env, id).await;
        assert_eq!((linked, erased), (1, 1), "one invitation still names its resident, the erased one names no one");
        let (status, gone) = respond(&desk, id, &json!({"token": tokens[0].1, "answers": full_answer()})).await;
        assert_eq!((status, gone["error"]["code"].as_str()), (410, Some("gone")));
        assert_eq!(desk.kit.app.get(&format!("/s/{}", tokens[0].1)).await.status(), 410);
        let _ = people;
    }
}

/// (invitations naming a resident, invitations erased) of a survey, read from the database.
async fn invitation_links(env: &crate::helpers::TestEnv, survey_id: i64) -> (i64, i64) {
    let sql = "SELECT count(subscriber_id), count(erased_at) FROM survey_invitations WHERE survey_id = $1";
    match env.backend {
        crate::helpers::Backend::Embedded => {
            let pool = sqlx::SqlitePool::connect(&env.database_url).await.unwrap();
            sqlx::query_as(sql).bind(survey_id).fetch_one(&pool).await.unwrap()
        }
        crate::helpers::Backend::Scaled => {
            let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
            sqlx::query_as(sql).bind(survey_id).fetch_one(&pool).await.unwrap()
        }
    }
}

both_backends! {
    async fn one_batch_stores_invited_and_open_answers_together_and_drops_invitations_that_do_not_fit(env) {
        use hejnal::store::{NewResponse, Respondent};
        let desk = Desk::open(Kit::start(&env).await).await;
        crate::surveys::residents(&desk, 2, "podgorze", hejnal::domain::Language::Pl, false).await;
        let invited = create(&desk, &every_type(None)).await;
        publish(&desk, invited, json!({"districts": ["podgorze"], "channels": ["email"]})).await;
        let ids: Vec<i64> = crate::surveys::email_tokens(&desk.kit, 2).await.iter()
            .map(|(_, token)| token.split('.').next().unwrap().parse().unwrap()).collect();
        let other = create(&desk, &every_type(Some("inna-ankieta"))).await;
        desk.post(&desk.author, &format!("/api/v1/surveys/{other}/publish"), &json!({})).await;
        let now = hejnal::store::now_ms();
        let answer = |survey_id: i64, respondent: Respondent, text: &str| NewResponse {
            survey_id, respondent, answers: json!({"q6": text}).to_string(), ip_digest: None, at: now,
        };
        let batch = [
            answer(invited, Respondent::Invitation(ids[0]), "pierwsza"),
            answer(other, Respondent::Invitation(ids[1]), "zaproszenie do innej ankiety"),
            answer(invited, Respondent::Browser("x".into()), "otwarta"),
            answer(invited, Respondent::Invitation(ids[0]), "poprawiona"),
            answer(invited, Respondent::Invitation(ids[1] + 1_000), "nieistniejące zaproszenie"),
            answer(other, Respondent::Browser("y".into()), "druga otwarta"),
        ];
        let saved = desk.store.save_responses(&batch).await.unwrap();
        let mut got: Vec<(i64, Respondent, i64)> = saved.into_iter().map(|s| (s.survey_id, s.respondent, s.revision)).collect();
        got.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        assert_eq!(got, [
            (invited, Respondent::Invitation(ids[0]), 2),
            (invited, Respondent::Browser("x".into()), 1),
            (other, Respondent::Browser("y".into()), 1),
        ], "the invitation to another survey and the one that does not exist are dropped");
        let first = desk.store.response_of(invited, &Respondent::Invitation(ids[0])).await.unwrap().unwrap();
        assert_eq!(first.answers, json!({"q6": "poprawiona"}).to_string(), "the later answer of the batch");
        assert_eq!(desk.store.response_of(other, &Respondent::Invitation(ids[1])).await.unwrap(), None);
        assert_eq!(desk.store.response_of(invited, &Respondent::Invitation(ids[1])).await.unwrap(), None);
        let (on_invited, on_other) = (desk.store.responses(invited, 0, 100).await.unwrap(), desk.store.responses(other, 0, 100).await.unwrap());
        assert_eq!((on_invited.len(), on_other.len()), (2, 1));
    }
}
