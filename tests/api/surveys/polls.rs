//! Quick polls answered by replying to the invitation SMS through the real inbound webhook,
//! counted once per invitation; the warning when the SMS sender is a name residents cannot
//! reply to.

use std::time::Duration;

use serde_json::{Value, json};

use super::{create, publish, results};
use crate::{both_backends, notices::Desk, residents::Kit};

fn poll(channels_note: &str) -> Value {
    json!({
        "kind": "poll",
        "title": {"pl": "Woda w Podgórzu", "en": "Water in Podgórze"},
        "description": {"pl": channels_note},
        "questions": [{"type": "single_choice", "required": true, "text": {"pl": "Czy woda wróciła?"},
                       "options": [{"pl": "Tak"}, {"pl": "Nie"}, {"pl": "Częściowo"}]}]
    })
}

/// A reply as the SMS provider delivers it: (status, body as text).
async fn reply(desk: &Desk, from: &str, text: &str) -> (u16, String) {
    let res = desk.kit.app.client.post(format!("{}/api/v1/sms/inbound", desk.kit.app.address))
        .bearer_auth("inbound-secret").json(&json!({"from": from, "text": text})).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// (invitation answers, counts per option) of a poll's results.
async fn counts(desk: &Desk, id: i64) -> (i64, Vec<i64>) {
    let r = results(desk, id).await;
    let options = r["questions"][0]["options"].as_array().unwrap().iter().map(|o| o["invitation"].as_i64().unwrap()).collect();
    (r["responses"]["invitation"].as_i64().unwrap(), options)
}

both_backends! {
    async fn an_sms_reply_answers_the_poll_once_and_a_repeat_replaces_it(env) {
        let desk = Desk::open(Kit::start_with(&env, |s| s.sms_sender = Some("+48600700800".into())).await).await;
        let people = desk.residents(2, None).await;
        let id = create(&desk, &poll("Awaria z wtorku")).await;
        let published = publish(&desk, id, json!({"districts": ["podgorze"], "channels": ["sms"]})).await;
        assert!(published.get("warnings").is_none(), "a number takes replies: {published}");
        desk.settled(published["invitation_notice_id"].as_i64().unwrap(), Duration::from_secs(60)).await;
        let sms = desk.kit.sms.requests();
        assert_eq!(sms.len(), 2);
        let text = sms[0].json()["text"].as_str().unwrap().to_owned();
        assert!(text.starts_with("Woda w Podgórzu. Czy woda wróciła? 1 = Tak, 2 = Nie, 3 = Częściowo. Odpowiedz SMS-em: 1, 2 lub 3, albo tutaj: http"), "{text}");

        // Replies come in the provider's format, without the plus.
        let from = |i: usize| people[i].phone.trim_start_matches('+').to_owned();
        let (status, counted) = reply(&desk, &from(0), "2").await;
        assert_eq!(status, 200);
        assert_eq!(counts(&desk, id).await, (1, vec![0, 1, 0]));
        // The same resident changes their mind, then sends it again: still one answer.
        assert_eq!(reply(&desk, &from(0), " 3. ").await.0, 200);
        assert_eq!(reply(&desk, &from(0), "3").await.0, 200);
        assert_eq!(counts(&desk, id).await, (1, vec![0, 0, 1]), "a repeat replaces, never adds");
        assert_eq!(reply(&desk, &format!("+{}", from(1)), "1").await.0, 200);
        assert_eq!(counts(&desk, id).await, (2, vec![1, 0, 1]));

        // Replies that match nothing, or no option, change nothing and get the same answer.
        for (who, text) in [("48699000111".to_owned(), "2"), (from(1), "7"), (from(1), "tak proszę")] {
            assert_eq!(reply(&desk, &who, text).await, (200, counted.clone()), "{who} {text}");
        }
        assert_eq!(counts(&desk, id).await, (2, vec![1, 0, 1]));

        // A closed poll takes no more replies.
        let (status, _) = desk.post(&desk.author, &format!("/api/v1/surveys/{id}/close"), &json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(reply(&desk, &from(1), "2").await, (200, counted));
        assert_eq!(counts(&desk, id).await, (2, vec![1, 0, 1]));
    }
}

both_backends! {
    async fn publishing_a_poll_by_sms_under_a_sender_name_warns_that_replies_cannot_come(env) {
        let desk = Desk::open(Kit::start(&env).await).await; // HEJNAL_SMS_SENDER=KRAKOW
        desk.residents(1, None).await;
        let id = create(&desk, &poll("SMS")).await;
        let published = publish(&desk, id, json!({"districts": ["podgorze"], "channels": ["sms", "email"]})).await;
        assert_eq!(published["state"], "published");
        assert_eq!(published["warnings"][0]["code"], "sms_sender_not_a_number", "{published}");
        assert!(published["warnings"][0]["message"].as_str().unwrap().contains("\"KRAKOW\""), "{published}");

        // By email only, or a survey that is not a poll: nothing to warn about.
        let by_email = create(&desk, &poll("e-mail")).await;
        assert!(publish(&desk, by_email, json!({"districts": ["podgorze"], "channels": ["email"]})).await.get("warnings").is_none());
        let survey = create(&desk, &json!({"title": {"pl": "Ankieta"}, "questions": [{"type": "yes_no", "text": {"pl": "Czy?"}}]})).await;
        assert!(publish(&desk, survey, json!({"districts": ["podgorze"], "channels": ["sms"]})).await.get("warnings").is_none());
        // The survey as read later carries no warning: it belongs to the publish answer.
        let (_, read) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}"), None).await;
        assert!(read.get("warnings").is_none(), "{read}");
    }
}
