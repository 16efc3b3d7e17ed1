//! The group commit in front of `save_responses`: concurrent answers all stored, a
//! respondent's last answer winning, and no answer acknowledged before its commit: while the
//! database holds the commit back nobody hears "thank you", and a commit that fails answers
//! 503 to each answer in it and stores none of them.

use std::collections::BTreeMap;

use hejnal::{residents::secrets::digest, store::Respondent};
use serde_json::{Value, json};

use super::{Hold, create, publish_open, respond, results, unlimited};
use crate::{both_backends, helpers::{Backend, TestEnv}, notices::Desk};

fn survey(slug: &str) -> Value {
    json!({
        "title": {"pl": "Tramwaje"}, "slug": slug,
        "questions": [
            {"type": "yes_no", "required": true, "text": {"pl": "Czy jeździsz tramwajem?"}},
            {"type": "short_text", "text": {"pl": "Uwagi"}}
        ]
    })
}

/// A desk without the public rate limit and the tram survey published open under `slug`.
async fn open_tram_survey(env: &TestEnv, slug: &str) -> (Desk, i64) {
    let desk = unlimited(env).await;
    let id = create(&desk, &survey(slug)).await;
    publish_open(&desk, id).await;
    (desk, id)
}

/// A browser token of the test's own: `n` padded to the 16 characters a token needs.
fn browser(n: usize) -> String {
    format!("przegladarka{n:06}")
}

async fn stored(desk: &Desk, id: i64, browser: &str) -> Option<String> {
    desk.store.response_of(id, &Respondent::Browser(digest(browser))).await.unwrap().map(|r| r.answers)
}

both_backends! {
    async fn concurrent_answers_are_all_stored_and_the_last_answer_of_a_respondent_wins(env) {
        let (desk, id) = open_tram_survey(&env, "tramwaje").await;
        // 200 residents answer at once; one of them, 50 times.
        let sends = (0..250).map(|i| {
            let who = if i < 200 { browser(i) } else { browser(0) };
            let body = json!({"browser_token": who, "answers": {"q1": true, "q2": format!("odpowiedź {i}")}});
            let desk = &desk;
            async move { (i, respond(desk, id, &body).await) }
        });
        let outcomes = futures::future::join_all(sends).await;
        let mut of_zero: BTreeMap<i64, usize> = BTreeMap::new();
        for (i, (status, body)) in &outcomes {
            assert!(*status == 201 || *status == 200, "{i}: {status} {body}");
            if *i == 0 || *i >= 200 {
                of_zero.insert(body["revision"].as_i64().unwrap(), *i);
            }
        }
        assert_eq!(results(&desk, id).await["responses"]["open"], 200, "one row per browser");
        assert_eq!(of_zero.keys().copied().collect::<Vec<_>>(), (1..=51).collect::<Vec<i64>>(), "each answer of browser 0 counted once");
        let last = of_zero[&51];
        assert_eq!(stored(&desk, id, &browser(0)).await.unwrap(), json!({"q1": true, "q2": format!("odpowiedź {last}")}).to_string(),
            "the answer acknowledged last is the one stored");
        for i in [1, 77, 199] {
            assert_eq!(stored(&desk, id, &browser(i)).await.unwrap(), json!({"q1": true, "q2": format!("odpowiedź {i}")}).to_string());
        }
        // Operators see how long the group commits take (the recorder is the test process's, so
        // other tests' commits count too: at least these 250 answers' are in).
        let metrics = desk.kit.app.get("/metrics").await.text().await.unwrap();
        let value = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or_else(|| panic!("no {name} in:\n{metrics}"));
        assert!(value("hejnal_survey_answer_commit_seconds_count") >= 1.0);
        assert!(value("hejnal_survey_answer_commit_seconds_sum") > 0.0);
        assert!(value("hejnal_survey_answer_batch_size_sum") >= 250.0);
    }
}

both_backends! {
    async fn no_answer_is_acknowledged_before_its_commit_and_a_failed_commit_stores_none_of_its_answers(env) {
        let (desk, id) = open_tram_survey(&env, "po-zatwierdzeniu").await;
        poison_answers_containing("trucizna", &env).await;

        // A commit the database refuses: 503, and nothing stored.
        let (status, refused) = respond(&desk, id, &json!({"browser_token": browser(1), "answers": {"q1": true, "q2": "trucizna"}})).await;
        assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("unavailable")), "{refused}");
        assert_eq!(stored(&desk, id, &browser(1)).await, None);
        assert_eq!(respond(&desk, id, &json!({"browser_token": browser(1), "answers": {"q1": false}})).await.0, 201, "the next commit works");

        // The database holds every write back: nobody is answered meanwhile.
        let hold = Hold::take(&env, "survey_responses").await;
        let sends: Vec<_> = (10..40).map(|i| {
            let text = if i == 25 { "trucizna".to_owned() } else { format!("uwaga {i}") };
            let body = json!({"browser_token": browser(i), "answers": {"q1": true, "q2": text}});
            let (client, url) = (desk.kit.app.client.clone(), format!("{}/api/v1/surveys/{id}/responses", desk.kit.app.address));
            tokio::spawn(async move { (i, client.post(url).json(&body).send().await.unwrap().status().as_u16()) })
        }).collect();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(sends.iter().all(|s| !s.is_finished()), "an answer was acknowledged while its commit could not happen");
        hold.release().await;
        let mut refused = Vec::new();
        for send in sends {
            let (i, status) = send.await.unwrap();
            let kept = stored(&desk, id, &browser(i)).await;
            match status {
                201 => assert!(kept.is_some(), "{i} was acknowledged but not stored"),
                503 => {
                    assert_eq!(kept, None, "{i} was refused but stored");
                    refused.push(i);
                }
                other => panic!("{i}: {other}"),
            }
        }
        assert!(refused.contains(&25), "the poisoned answer's commit failed: {refused:?}");
        assert_eq!(results(&desk, id).await["responses"]["open"].as_i64(), Some(1 + 30 - refused.len() as i64));
    }
}

/// PostgreSQL only: its answer commits run with a statement timeout. (On SQLite a write waits
/// its busy timeout once it has the writer connection, so one queued behind other writes
/// waits for theirs first.)
mod an_answer_whose_commit_waits_on_a_lock_past_the_limit_is_refused_and_not_stored {
    use hejnal::store::LOCK_WAIT_LIMIT;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_postgres_and_redis() {
        let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
        let (desk, id) = open_tram_survey(&env, "zablokowana").await;

        // Another session keeps the table locked for longer than the limit: the resident hears
        // 503 after the limit, not never.
        let hold = Hold::take(&env, "survey_responses").await;
        let started = std::time::Instant::now();
        let answered = tokio::time::timeout(LOCK_WAIT_LIMIT * 3, respond(&desk, id, &json!({"browser_token": browser(1), "answers": {"q1": true}}))).await;
        let waited = started.elapsed();
        hold.release().await;
        let (status, refused) = answered.unwrap_or_else(|_| panic!("no answer after {waited:?} while the lock was held"));
        assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("unavailable")), "{refused}");
        assert!(waited >= LOCK_WAIT_LIMIT - std::time::Duration::from_secs(1), "refused after {waited:?}, before the lock wait ran out");
        assert_eq!(stored(&desk, id, &browser(1)).await, None, "a refused answer is not stored");

        assert_eq!(respond(&desk, id, &json!({"browser_token": browser(2), "answers": {"q1": false}})).await.0, 201, "once the lock is gone, answers are stored");
        assert!(stored(&desk, id, &browser(2)).await.is_some());
    }
}

/// PostgreSQL only: the answer commits keep connections of their own, outside the pool.
mod an_answer_after_the_database_ended_every_connection_is_stored {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_postgres_and_redis() {
        let Some(env) = TestEnv::new(Backend::Scaled).await else { return };
        let (desk, id) = open_tram_survey(&env, "po-restarcie").await;
        assert_eq!(respond(&desk, id, &json!({"browser_token": browser(1), "answers": {"q1": true}})).await.0, 201);

        // What a restart of the database does to the app: every connection ends.
        let admin = sqlx::PgPool::connect(&env.database_url).await.unwrap();
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()")
            .fetch_one(&admin).await.unwrap();
        assert!(ended >= 1, "no connection of the app's was found to end");
        // Longer than a connection may sit idle before it is checked again (1 s).
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

        let (status, body) = respond(&desk, id, &json!({"browser_token": browser(2), "answers": {"q1": false}})).await;
        assert_eq!(status, 201, "the first answer after the connections ended: {body}");
        assert_eq!(stored(&desk, id, &browser(2)).await, Some(json!({"q1": false}).to_string()));
        assert_eq!(results(&desk, id).await["responses"]["open"], 2);
    }
}

/// A trigger that makes the database refuse any answer containing `word`.
async fn poison_answers_containing(word: &str, env: &TestEnv) {
    let sql = match env.backend {
        Backend::Embedded => format!("CREATE TRIGGER poison BEFORE INSERT ON survey_responses WHEN NEW.answers LIKE '%{word}%' \
                                      BEGIN SELECT RAISE(ABORT, 'poisoned answer'); END"),
        Backend::Scaled => format!("CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                                      IF NEW.answers LIKE '%{word}%' THEN RAISE EXCEPTION 'poisoned answer'; END IF; RETURN NEW; END $$; \
                                    CREATE TRIGGER poison BEFORE INSERT ON survey_responses FOR EACH ROW EXECUTE FUNCTION poison();"),
    };
    env.execute_sql(sql).await;
}

both_backends! {
    async fn a_close_waits_for_a_batch_being_written_and_no_answer_lands_after_it(env) {
        use hejnal::store::NewResponse;
        let (desk, id) = open_tram_survey(&env, "do-zamkniecia").await;
        let desk = std::sync::Arc::new(desk);
        let answer = |n: usize, text: &str| NewResponse {
            survey_id: id, respondent: Respondent::Browser(digest(&browser(n))), answers: json!({"q1": true, "q2": text}).to_string(),
            ip_digest: None, at: hejnal::store::now_ms(),
        };
        // A batch whose write takes a second: it has read the survey as open when the close comes.
        let hold = slow_down_answers_containing("powoli", &env).await;
        let batch = [answer(1, "powoli"), answer(2, "zaraz")];
        let writing = { let desk = desk.clone(); tokio::spawn(async move { desk.store.save_responses(&batch).await.unwrap() }) };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let closing = { let desk = desk.clone(); tokio::spawn(async move { desk.post(&desk.author, &format!("/api/v1/surveys/{id}/close"), &json!({})).await }) };
        tokio::time::sleep(std::time::Duration::from_millis(800)).await;
        if let Some(hold) = hold {
            hold.release().await;
        }
        let (status, closed) = closing.await.unwrap();
        assert_eq!(status, 200, "{closed}");
        assert!(stored(&desk, id, &browser(1)).await.is_some() && stored(&desk, id, &browser(2)).await.is_some(),
            "the batch under way when the close came was stored before the close returned");
        assert_eq!(writing.await.unwrap().len(), 2);
        assert_eq!(desk.store.save_responses(&[answer(3, "po zamknięciu")]).await.unwrap(), [], "after the close nothing is taken");
        assert_eq!(results(&desk, id).await["responses"]["open"], 2);
    }
}

/// Makes a write of an answer containing `word` take a second after the batch read its survey:
/// on PostgreSQL a trigger that sleeps; on SQLite, whose writers take turns, a write
/// transaction of another connection that the caller releases.
async fn slow_down_answers_containing(word: &str, env: &TestEnv) -> Option<Hold> {
    match env.backend {
        Backend::Embedded => Some(Hold::take(env, "survey_responses").await),
        Backend::Scaled => {
            let sql = format!("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                                 IF NEW.answers LIKE '%{word}%' THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$; \
                               CREATE TRIGGER slow BEFORE INSERT ON survey_responses FOR EACH ROW EXECUTE FUNCTION slow();");
            env.execute_sql(sql).await;
            None
        }
    }
}
