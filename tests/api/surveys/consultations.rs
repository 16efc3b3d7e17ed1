//! Consultations: the document's page, comments shown only after moderation (and the
//! moderation recorded), comments limited per address, and the report page once the period
//! has ended.

use std::time::Duration;

use serde_json::{Value, json};

use super::{browser, create, publish_open, refuse_audit, respond};
use crate::{both_backends, helpers::eventually, notices::Desk, residents::Kit};

fn consultation(slug: &str, closes_in: Duration) -> Value {
    let closes_at = chrono::Utc::now() + closes_in;
    json!({
        "kind": "consultation", "slug": slug, "closes_at": closes_at.to_rfc3339(),
        "title": {"pl": "Plan dla Rynku Podgórskiego", "en": "A plan for Podgórze Market Square"},
        "document": {
            "summary": {"pl": "Miasto proponuje nowy układ placu.", "en": "The city proposes a new layout of the square."},
            "body": {"pl": "Pierwszy akapit planu.\n\nDrugi akapit & <uwagi>.", "en": "The plan's first paragraph.\n\nIts second."},
            "attachments": [{"title": {"pl": "Mapa (PDF)", "en": "Map (PDF)"}, "url": "https://www.krakow.pl/plan/mapa.pdf"}]
        },
        "questions": [
            {"type": "single_choice", "required": true, "text": {"pl": "Który wariant?", "en": "Which option?"},
             "options": [{"pl": "Zieleń", "en": "Greenery"}, {"pl": "Parking", "en": "Parking"}, {"pl": "Targ", "en": "Market"}]},
            {"type": "yes_no", "text": {"pl": "Czy bywasz na placu?", "en": "Do you visit the square?"}},
            {"type": "long_text", "text": {"pl": "Uwagi", "en": "Remarks"}}
        ]
    })
}

/// The consultation's page as a browser gets it: (status, cookie it set, form token, html).
async fn page(desk: &Desk, path: &str, cookie: Option<&str>) -> (u16, Option<String>, Option<String>, String) {
    let mut req = browser().get(format!("{}{path}", desk.kit.app.address));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let set = res.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let html = res.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).map(|s| s.split('"').next().unwrap().to_owned());
    (status, set, csrf, html)
}

async fn comment_form(desk: &Desk, slug: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    browser().post(format!("{}/c/{slug}/comments?lang=pl", desk.kit.app.address)).header("cookie", cookie).form(form).send().await.unwrap()
}

async fn moderate(desk: &Desk, id: i64, comment: i64, body: Value) -> (u16, Value) {
    desk.post(&desk.approver, &format!("/api/v1/surveys/{id}/comments/{comment}/moderation"), &body).await
}

both_backends! {
    async fn comments_are_shown_only_once_approved_and_the_moderation_is_recorded(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let id = create(&desk, &consultation("plan-rynku", Duration::from_secs(86_400))).await;
        let (status, published) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({})).await;
        assert_eq!((status, published["state"].as_str()), (200, Some("published")), "{published}");

        // The page: the document, the period, the questions' link, no comments yet, a form.
        let (status, cookie, csrf, html) = page(&desk, "/c/plan-rynku?lang=pl", None).await;
        assert_eq!(status, 200);
        for part in ["<html lang=\"pl\">", "<h1>Plan dla Rynku Podgórskiego</h1>", "Miasto proponuje nowy układ placu.", "<p>Pierwszy akapit planu.</p>",
                     "<p>Drugi akapit &amp; &lt;uwagi&gt;.</p>", "<a href=\"https://www.krakow.pl/plan/mapa.pdf\">Mapa (PDF)</a>",
                     "href=\"/s/open/plan-rynku?lang&#x3D;pl\"", "Konsultacje trwają od ", "Nie ma jeszcze opublikowanych komentarzy.", "<label for=\"comment-text\""] {
            assert!(html.contains(part), "{part} in {html}");
        }
        assert!(html.len() < 100 * 1024);
        let (cookie, csrf) = (cookie.expect("a cookie"), csrf.expect("a form token"));

        // A resident comments through the form; another through the API.
        let sent = comment_form(&desk, "plan-rynku", &cookie, &[("csrf", &csrf), ("name", "Anna"), ("text", "Więcej zieleni <b>proszę</b>.")]).await;
        assert_eq!(sent.status(), 303);
        let thanks_url = sent.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(thanks_url, "/c/plan-rynku?lang=pl&sent=1#comments");
        let (_, _, _, after) = page(&desk, &thanks_url, Some(&cookie)).await;
        assert!(after.contains("Komentarz pojawi się po zatwierdzeniu"), "{after}");
        assert!(!after.contains("Więcej zieleni"), "not shown before approval: {after}");
        let res = desk.kit.post("/api/v1/consultations/plan-rynku/comments", &json!({"text": "Kup pan cegłę!"})).await;
        assert_eq!(res.status(), 202);
        let spam: Value = res.json().await.unwrap();
        assert_eq!(spam["state"], "pending");

        // Errors sit beside the field; a form from elsewhere keeps nothing.
        let empty = comment_form(&desk, "plan-rynku", &cookie, &[("csrf", &csrf), ("name", "Anna"), ("text", "  ")]).await;
        assert_eq!(empty.status(), 422);
        let html = empty.text().await.unwrap();
        assert!(html.contains("<p id=\"comment-text-error\" class=\"error\"><strong>Napisz komentarz.</strong></p>") && html.contains("aria-invalid=\"true\""), "{html}");
        assert!(html.contains("value=\"Anna\""), "what was sent comes back: {html}");
        assert_eq!(comment_form(&desk, "plan-rynku", &cookie, &[("csrf", "forged"), ("text", "x")]).await.status(), 403);

        // Officials see both, pending; the approver decides.
        let (status, pending) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/comments?state=pending"), None).await;
        assert_eq!(status, 200);
        let pending = pending.as_array().unwrap().clone();
        assert_eq!(pending.len(), 2, "{pending:?}");
        assert_eq!((pending[0]["name"].as_str(), pending[0]["text"].as_str(), pending[0]["moderation"].clone()), (Some("Anna"), Some("Więcej zieleni <b>proszę</b>."), Value::Null));
        let (anna, spam) = (pending[0]["id"].as_i64().unwrap(), spam["comment_id"].as_i64().unwrap());
        let (status, approved) = moderate(&desk, id, anna, json!({"decision": "approve"})).await;
        assert_eq!((status, approved["state"].as_str(), approved["moderation"]["decision"].as_str()), (200, Some("approved"), Some("approved")), "{approved}");
        assert!(approved["moderation"]["at"].is_string() && approved["moderation"]["moderator_id"].is_i64(), "{approved}");
        let (status, refused) = moderate(&desk, id, spam, json!({"decision": "reject"})).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("reason")), "a rejection says why: {refused}");
        let (status, rejected) = moderate(&desk, id, spam, json!({"decision": "reject", "reason": "reklama"})).await;
        assert_eq!((status, rejected["moderation"]["reason"].as_str()), (200, Some("reklama")));
        // A double click is fine; changing one's mind is not.
        assert_eq!(moderate(&desk, id, anna, json!({"decision": "approve"})).await.0, 200);
        assert_eq!(moderate(&desk, id, spam, json!({"decision": "approve"})).await.0, 409);
        assert_eq!(desk.post(&desk.author, &format!("/api/v1/surveys/{id}/comments/{spam}/moderation"), &json!({"decision": "approve"})).await.0, 409);

        // The page now shows the approved comment, escaped, and not the rejected one.
        let (_, _, _, html) = page(&desk, "/c/plan-rynku?lang=pl", Some(&cookie)).await;
        assert!(html.contains("Więcej zieleni &lt;b&gt;proszę&lt;&#x2F;b&gt;.") || html.contains("Więcej zieleni &lt;b&gt;proszę&lt;/b&gt;."), "{html}");
        assert!(html.contains("<p class=\"hint\">Anna, <time"), "{html}");
        assert!(!html.contains("cegłę"), "{html}");
        // The moderation is recorded: on the comment, and in the audit log.
        let (_, all) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/comments"), None).await;
        let states: Vec<(&str, &str)> = all.as_array().unwrap().iter().map(|c| (c["state"].as_str().unwrap(), c["moderation"]["decision"].as_str().unwrap())).collect();
        assert_eq!(states, [("approved", "approved"), ("rejected", "rejected")]);
        let audit = desk.store.recent_audit(20).await.unwrap();
        let moderations: Vec<(Option<i64>, &str)> = audit.iter().filter(|a| a.1.starts_with("consultations.comment.")).map(|a| (a.0, a.1.as_str())).collect();
        assert_eq!(moderations, [(rejected["moderation"]["moderator_id"].as_i64(), "consultations.comment.rejected"), (approved["moderation"]["moderator_id"].as_i64(), "consultations.comment.approved")]);
    }
}

both_backends! {
    async fn comments_are_limited_per_address(env) {
        let desk = Desk::open(Kit::start_with(&env, |s| s.comment_rate_per_hour = 2).await).await;
        let id = create(&desk, &consultation("limit", Duration::from_secs(86_400))).await;
        publish_open(&desk, id).await;
        let mut statuses = Vec::new();
        for i in 0..4 {
            statuses.push(desk.kit.post("/api/v1/consultations/limit/comments", &json!({"text": format!("uwaga {i}")})).await.status().as_u16());
        }
        assert_eq!(statuses, [202, 202, 429, 429]);
        let (_, all) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/comments"), None).await;
        assert_eq!(all.as_array().unwrap().len(), 2);
    }
}

both_backends! {
    async fn after_the_period_officials_publish_a_report_page_with_the_results(env) {
        let desk = crate::surveys::unlimited(&env).await;
        let id = create(&desk, &consultation("raport", Duration::from_secs(4))).await;
        publish_open(&desk, id).await;
        for (q1, q2) in [(1, true), (1, false), (3, true)] {
            let (status, body) = respond(&desk, id, &json!({"answers": {"q1": q1, "q2": q2, "q3": "uwaga"}})).await;
            assert_eq!(status, 201, "{body}");
        }
        let res = desk.kit.post("/api/v1/consultations/raport/comments", &json!({"text": "Dobry plan."})).await;
        let comment: Value = res.json().await.unwrap();
        assert_eq!(moderate(&desk, id, comment["comment_id"].as_i64().unwrap(), json!({"decision": "approve"})).await.0, 200);
        let summary = json!({"summary": {"pl": "Większość wybrała zieleń.\n\nDziękujemy.", "en": "Most chose greenery."}});
        let (status, early) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/report"), &summary).await;
        assert_eq!((status, early["error"]["code"].as_str()), (409, Some("consultation_open")), "{early}");
        assert_eq!(desk.kit.app.get("/c/raport/report").await.status(), 404);

        // Once the period is over (closes_at passes), the report is published, once.
        let report = eventually(Duration::from_secs(30), "the end of the period", || async {
            let (status, body) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/report"), &summary).await;
            (status == 201).then_some(body)
        }).await;
        assert_eq!(report["comments"], 1);
        assert_eq!(report["results"]["questions"][0]["options"][0]["total"], 2, "{report}");
        assert!(report["url"].as_str().unwrap().ends_with("/c/raport/report"), "{report}");
        let (status, again) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/report"), &summary).await;
        assert_eq!((status, again["error"]["code"].as_str()), (409, Some("report_published")));
        let (status, _) = respond(&desk, id, &json!({"answers": {"q1": 2}})).await;
        assert_eq!(status, 409, "the period is over");

        // The report page, in English: the summary, the counts, each option with its share.
        let html = desk.kit.app.get("/c/raport/report?lang=en").await.text().await.unwrap();
        for part in ["<html lang=\"en\">", "Consultation report: A plan for Podgórze Market Square", "<p>Most chose greenery.</p>",
                     "Answers: 3. Published comments: 1.", "<h3>1. Which option?</h3>", "<th scope=\"row\">Greenery</th><td>2</td><td>67%</td>",
                     "<th scope=\"row\">Parking</th><td>0</td><td>0%</td>", "<th scope=\"row\">Market</th><td>1</td><td>33%</td>",
                     "<th scope=\"row\">Yes</th><td>2</td>", "<h3>3. Remarks</h3>", "3 answers"] {
            assert!(html.contains(part), "{part} in {html}");
        }
        assert!(!html.contains("uwaga"), "free texts are for analysts, not the public page");
        let pl = desk.kit.app.get("/c/raport?lang=pl").await.text().await.unwrap();
        assert!(pl.contains("Konsultacje zakończyły się") && pl.contains("href=\"/c/raport/report?lang&#x3D;pl\"") && pl.contains("Dobry plan."), "{pl}");
        assert!(!pl.contains("<form"), "no comments after the period: {pl}");
    }
}

both_backends! {
    /// The moderation and the report are recorded in the audit log in the same transaction: if
    /// the entry cannot be written, the comment stays hidden and the report unpublished, and the
    /// official hears that it failed; once it can, the same request goes through.
    async fn a_moderation_or_report_whose_audit_entry_cannot_be_written_does_not_happen(env) {
        let desk = crate::surveys::unlimited(&env).await;
        let id = create(&desk, &consultation("bez-sladu", Duration::from_secs(4))).await;
        publish_open(&desk, id).await;
        let res = desk.kit.post("/api/v1/consultations/bez-sladu/comments", &json!({"text": "Ławki przy fontannie."})).await;
        let comment: Value = res.json().await.unwrap();
        let comment = comment["comment_id"].as_i64().unwrap();

        refuse_audit(&env, "consultations.comment.approved", true).await;
        let (status, failed) = moderate(&desk, id, comment, json!({"decision": "approve"})).await;
        assert_eq!(status, 500, "{failed}");
        let (_, pending) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/comments?state=pending"), None).await;
        assert_eq!(pending.as_array().map(|p| p.iter().map(|c| c["id"].as_i64()).collect::<Vec<_>>()), Some(vec![Some(comment)]), "still pending: {pending}");
        let html = desk.kit.app.get("/c/bez-sladu?lang=pl").await.text().await.unwrap();
        assert!(!html.contains("Ławki przy fontannie."), "not shown: {html}");
        refuse_audit(&env, "consultations.comment.approved", false).await;
        let (status, approved) = moderate(&desk, id, comment, json!({"decision": "approve"})).await;
        assert_eq!((status, approved["state"].as_str()), (200, Some("approved")), "{approved}");

        let summary = json!({"summary": {"pl": "Dziękujemy."}});
        refuse_audit(&env, "consultations.report", true).await;
        let failed = eventually(Duration::from_secs(30), "the end of the period", || async {
            let (status, body) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/report"), &summary).await;
            (status != 409).then_some((status, body))
        }).await;
        assert_eq!(failed.0, 500, "{}", failed.1);
        assert_eq!(desk.kit.app.get("/c/bez-sladu/report").await.status(), 404, "no report page");
        refuse_audit(&env, "consultations.report", false).await;
        let (status, report) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/report"), &summary).await;
        assert_eq!((status, report["comments"].as_i64()), (201, Some(1)), "{report}");
        assert_eq!(desk.kit.app.get("/c/bez-sladu/report").await.status(), 200);
        let actions: Vec<String> = desk.store.recent_audit(20).await.unwrap().into_iter().map(|a| a.1).filter(|a| a.starts_with("consultations.")).collect();
        assert_eq!(actions, ["consultations.report", "consultations.comment.approved"], "each recorded once, when it happened");
    }
}
