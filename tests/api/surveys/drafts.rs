//! Writing surveys: every question type, errors that name the field, drafts that change,
//! published surveys that do not.

use serde_json::json;

use super::{Hold, create, every_type, refuse_audit};
use crate::{both_backends, notices::Desk, residents::Kit};

both_backends! {
    async fn a_survey_with_every_question_type_is_created_edited_as_a_draft_and_frozen_once_published(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        // The minimal body of the issue.
        let minimal = json!({"title": {"pl": "Szybka sonda"}, "questions": [{"type": "single_choice", "required": true,
            "text": {"pl": "Które?"}, "options": [{"pl": "A"}, {"pl": "B"}]}]});
        let (status, created) = desk.post(&desk.author, "/api/v1/surveys", &minimal).await;
        assert_eq!(status, 201, "{created}");
        assert!(created["id"].as_i64().is_some_and(|id| id > 0));
        assert_eq!((created["state"].as_str(), created["kind"].as_str()), (Some("draft"), Some("survey")));
        assert_eq!(created["questions"][0]["id"], "q1");

        let id = create(&desk, &every_type(Some("park-jordana"))).await;
        let (_, survey) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}"), None).await;
        let types: Vec<&str> = survey["questions"].as_array().unwrap().iter().map(|q| q["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["yes_no", "single_choice", "scale", "multiple_choice", "ranking", "short_text", "long_text"]);
        let ids: Vec<&str> = survey["questions"].as_array().unwrap().iter().map(|q| q["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]);
        assert_eq!(survey["questions"][2]["show_if"], json!({"question": "q1", "equals": true}));
        assert_eq!((survey["questions"][3]["min"].as_i64(), survey["questions"][3]["max"].as_i64()), (Some(1), Some(2)));
        assert_eq!(survey["questions"][2]["scale"], "1-5");
        assert_eq!(survey["open_url"].as_str().map(|u| u.ends_with("/s/open/park-jordana")), Some(true));
        assert_eq!(survey["accepting_answers"], false, "a draft takes no answers");

        // Errors name each field at fault.
        let mut bad = every_type(None);
        bad["questions"][2]["options"] = json!([{"pl": "x"}]);
        bad["questions"][3]["max"] = json!(5);
        bad["questions"][4]["show_if"] = json!({"question": "q7", "equals": 1});
        let (status, refused) = desk.post(&desk.author, "/api/v1/surveys", &bad).await;
        assert_eq!(status, 422, "{refused}");
        let fields: Vec<&str> = refused["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["questions[2].options", "questions[3].max", "questions[4].show_if.question"]);
        let (status, refused) = desk.post(&desk.author, "/api/v1/surveys", &json!({"title": {"pl": "x"}, "questions": [{"type": "dropdown", "text": {"pl": "?"}}]})).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("questions[0].type")), "{refused}");

        // A draft changes: PATCH merges, PUT replaces.
        let (status, patched) = desk.call(&desk.author, reqwest::Method::PATCH, &format!("/api/v1/surveys/{id}"), Some(&json!({"title": {"en": null, "uk": "Парк Йордана"}}))).await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["title"], json!({"pl": "Park Jordana", "uk": "Парк Йордана"}));
        assert_eq!(patched["questions"].as_array().unwrap().len(), 7);
        let (status, replaced) = desk.call(&desk.author, reqwest::Method::PUT, &format!("/api/v1/surveys/{id}"), Some(&every_type(Some("park-jordana-2")))).await;
        assert_eq!((status, replaced["slug"].as_str()), (200, Some("park-jordana-2")), "{replaced}");

        // An unknown district is refused by name; then publishing freezes the questions.
        let (status, refused) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({"audience": {"districts": ["atlantyda"], "channels": ["sms"]}})).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("audience.districts")), "{refused}");
        let (status, published) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({"audience": {"districts": ["podgorze"], "channels": ["email"]}})).await;
        assert_eq!((status, published["state"].as_str(), published["accepting_answers"].as_bool()), (200, Some("published"), Some(true)), "{published}");
        assert!(published["opens_at"].is_string(), "the opening defaults to the moment of publishing: {published}");
        assert!(published["invitation_notice_id"].as_i64().is_some());
        for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
            let body = if method == reqwest::Method::PUT { every_type(None) } else { json!({"title": {"pl": "Nowy"}}) };
            let (status, refused) = desk.call(&desk.author, method, &format!("/api/v1/surveys/{id}"), Some(&body)).await;
            assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("survey_published")), "{refused}");
            assert!(refused["error"]["message"].as_str().unwrap().contains("create a new survey"), "{refused}");
        }
        // Publishing twice changes nothing; an analyst reads but may not write.
        let (status, again) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &json!({"audience": {"districts": ["podgorze"], "channels": ["email"]}})).await;
        assert_eq!((status, again["invitation_notice_id"].clone()), (200, published["invitation_notice_id"].clone()));
        let (status, listed) = desk.call(&desk.approver, reqwest::Method::GET, "/api/v1/surveys", None).await;
        assert_eq!((status, listed.as_array().map(|l| l.len())), (200, Some(2)));
        let (status, _) = desk.post(&desk.approver, "/api/v1/surveys", &minimal).await;
        assert_eq!(status, 403);
        let spec = desk.kit.app.get("/api/v1/openapi.json").await.json::<serde_json::Value>().await.unwrap();
        for path in ["/api/v1/surveys", "/api/v1/surveys/{id}/publish", "/api/v1/surveys/{id}/responses", "/api/v1/surveys/{id}/results.csv"] {
            assert!(spec["paths"][path].is_object(), "{path} in the OpenAPI description");
        }
    }
}

both_backends! {
    async fn with_approval_for_surveys_a_second_official_releases_the_invitations(env) {
        let desk = Desk::open(Kit::start_with(&env, |s| s.approval_for_surveys = true).await).await;
        desk.residents(1, None).await;
        let id = create(&desk, &every_type(None)).await;
        let audience = json!({"audience": {"districts": ["podgorze"], "channels": ["sms"]}});
        let (status, pending) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &audience).await;
        assert_eq!((status, pending["state"].as_str(), pending["invitation_notice_id"].as_i64()), (200, Some("pending"), None), "{pending}");
        let (status, _) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/approve"), &json!({})).await;
        assert_eq!(status, 403, "an author may not approve");
        let (status, approved) = desk.post(&desk.approver, &format!("/api/v1/surveys/{id}/approve"), &json!({})).await;
        assert_eq!((status, approved["state"].as_str()), (200, Some("published")), "{approved}");
        let notice = desk.settled(approved["invitation_notice_id"].as_i64().unwrap(), std::time::Duration::from_secs(60)).await;
        assert_eq!(notice["approval"], "second_official");
        assert_eq!(desk.kit.sms.requests().len(), 1);
        assert!(desk.kit.sms.requests()[0].json()["text"].as_str().unwrap().contains("/s/"));
    }
}

both_backends! {
    async fn a_survey_change_whose_audit_entry_cannot_be_written_does_not_happen(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let id = create(&desk, &every_type(None)).await;
        let author = desk.store.survey(id).await.unwrap().unwrap().author_id;
        let subject = format!("survey {id}");
        let entries = |audit: Vec<(Option<i64>, String, String, i64)>| -> Vec<(Option<i64>, String)> {
            audit.into_iter().filter(|a| a.2 == subject).map(|a| (a.0, a.1)).collect()
        };
        assert_eq!(entries(desk.store.recent_audit(20).await.unwrap()), [(Some(author), "surveys.create".to_owned())]);

        // The database refuses the publish's audit entry: the survey stays a draft, with no
        // invitation notice, and the official is told it failed.
        refuse_audit(&env, "surveys.publish", true).await;
        let audience = json!({"audience": {"districts": ["podgorze"], "channels": ["email"]}});
        let (status, refused) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &audience).await;
        assert_eq!(status, 500, "{refused}");
        let (_, survey) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}"), None).await;
        assert_eq!((survey["state"].as_str(), survey["invitation_notice_id"].as_i64()), (Some("draft"), None), "{survey}");

        // Once the entry can be written, the same request publishes, and says so in the log.
        refuse_audit(&env, "surveys.publish", false).await;
        let (status, published) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/publish"), &audience).await;
        assert_eq!((status, published["state"].as_str()), (200, Some("published")), "{published}");
        let logged = entries(desk.store.recent_audit(20).await.unwrap());
        assert_eq!(logged, [(Some(author), "surveys.publish".to_owned()), (Some(author), "surveys.create".to_owned())]);
    }
}


both_backends! {
    /// Another session holding the table (an operator's open transaction, a lock taken by hand)
    /// makes an official's save wait at most the lock limit, then answer 503 with nothing
    /// written, instead of hanging with a connection taken; once the lock goes, saves work.
    async fn a_draft_saved_while_another_session_locks_the_table_is_refused_after_the_lock_limit(env) {
        use hejnal::store::LOCK_WAIT_LIMIT;
        let desk = Desk::open(Kit::start(&env).await).await;
        let draft = json!({"title": {"pl": "Zablokowana"}, "questions": [{"type": "yes_no", "text": {"pl": "Tak?"}}]});
        let hold = Hold::take(&env, "surveys").await;
        let started = std::time::Instant::now();
        let saved = tokio::time::timeout(LOCK_WAIT_LIMIT * 3, desk.post(&desk.author, "/api/v1/surveys", &draft)).await;
        let waited = started.elapsed();
        hold.release().await;
        let (status, refused) = saved.unwrap_or_else(|_| panic!("no answer after {waited:?} while the table was locked"));
        assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("unavailable")), "{refused}");
        assert!(waited >= LOCK_WAIT_LIMIT - std::time::Duration::from_secs(1), "refused after {waited:?}, before the lock wait ran out");
        let (_, listed) = desk.call(&desk.author, reqwest::Method::GET, "/api/v1/surveys", None).await;
        assert_eq!(listed.as_array().map(Vec::len), Some(0), "nothing of the refused save was written: {listed}");

        let id = create(&desk, &draft).await;
        let (_, listed) = desk.call(&desk.author, reqwest::Method::GET, "/api/v1/surveys", None).await;
        assert_eq!(listed[0]["id"].as_i64(), Some(id), "once the lock is gone, the draft is saved: {listed}");
    }
}
