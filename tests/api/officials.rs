//! Officials' endpoints: who may call them, the audience estimate, and audited erasure.

use hejnal::{
    app::Role,
    domain::Language,
    residents::{secrets::digest, verify::sms_code_digest},
    store::{DynStore, NewContact, Signup},
};
use serde_json::{Value, json};

use crate::{both_backends, helpers::{TestApp, token_for}};

/// A resident with verified email (and phone, when given).
async fn resident(store: &DynStore, district: &str, interest: &str, lang: Language, email: &str, phone: Option<&str>) {
    let mut contacts = vec![NewContact { channel: "email", address: email.into(), p256dh: None, auth: None }];
    if let Some(p) = phone {
        contacts.push(NewContact { channel: "sms", address: p.into(), p256dh: None, auth: None });
    }
    let signup = Signup { language: lang, quiet_hours: None, districts: vec![district.into()], interests: vec![interest.into()], contacts };
    let made = store.signup(&signup, &hejnal::residents::secrets::random_token(16), 1).await.unwrap();
    let far = i64::MAX / 2;
    for c in made {
        let t = store.contact_target(c.contact_id).await.unwrap().unwrap();
        if c.channel == "email" {
            store.set_verify_secret(c.contact_id, &digest(&format!("t{}", c.contact_id)), far).await.unwrap();
            assert!(store.verify_email(&digest(&format!("t{}", c.contact_id)), 2, "v").await.unwrap().is_some());
        } else {
            store.set_verify_secret(c.contact_id, &sms_code_digest(&t.address, "123456"), far).await.unwrap();
            store.verify_sms(&t.address, &sms_code_digest(&t.address, "123456"), 2, "v").await.unwrap();
        }
    }
}


async fn post(app: &TestApp, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = app.client.post(format!("{}{path}", app.address)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

both_backends! {
    async fn the_estimate_counts_verified_contacts_and_only_officials_may_ask(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let store = env.store().await;
        resident(&store, "podgorze", "water", Language::Pl, "r1@example.com", Some("+48601000001")).await;
        resident(&store, "podgorze", "roads", Language::En, "r2@example.com", None).await;
        // Signed up but never verified: reaches no one.
        let pending = Signup { language: Language::Uk, quiet_hours: None, districts: vec!["debniki".into()], interests: vec!["water".into()],
            contacts: vec![NewContact { channel: "email", address: "r3@example.com".into(), p256dh: None, auth: None }] };
        store.signup(&pending, &hejnal::residents::secrets::random_token(16), 1).await.unwrap();
        let author = token_for(&store, "author@um.krakow.pl", "author").await;
        let analyst = token_for(&store, "analyst@um.krakow.pl", "analyst").await;

        let body = json!({"districts": ["podgorze", "debniki"], "interests": ["water"]});
        let anon = post(&app, "/api/v1/audiences/estimate", None, &body).await;
        assert_eq!(anon.status(), 401);
        assert_eq!(anon.headers()["www-authenticate"], "Bearer");
        assert_eq!(post(&app, "/api/v1/audiences/estimate", Some("hj_forged"), &body).await.status(), 401);
        assert_eq!(post(&app, "/api/v1/audiences/estimate", Some(&analyst), &body).await.status(), 403);

        let res = post(&app, "/api/v1/audiences/estimate", Some(&author), &body).await;
        assert_eq!(res.status(), 200);
        let e: Value = res.json().await.unwrap();
        assert_eq!(e["subscribers"], 1, "{e}");
        assert_eq!(e["recipients"], 2);
        assert_eq!(e["by_channel"], json!({"email": 1, "sms": 1}));
        assert_eq!(e["by_language"], json!({"pl": 2}));
        assert_eq!(e["by_district"], json!({"podgorze": 2}));

        // Severe alerts reach every resident of the district, whatever their interests.
        let severe = post(&app, "/api/v1/audiences/estimate", Some(&author), &json!({"districts": ["podgorze"], "interests": ["water"], "severity": "Severe"})).await;
        let e: Value = severe.json().await.unwrap();
        assert_eq!((e["subscribers"].clone(), e["recipients"].clone()), (json!(2), json!(3)), "{e}");
        assert_eq!(e["by_language"], json!({"pl": 2, "en": 1}));

        let sms_only = post(&app, "/api/v1/audiences/estimate", Some(&author), &json!({"districts": ["podgorze"], "channels": ["sms"]})).await;
        assert_eq!(sms_only.json::<Value>().await.unwrap()["recipients"], 1);

        let bad = post(&app, "/api/v1/audiences/estimate", Some(&author), &json!({"districts": ["atlantis"], "channels": ["fax"]})).await;
        assert_eq!(bad.status(), 422);
        assert_eq!(bad.json::<Value>().await.unwrap()["error"]["details"].as_array().unwrap().len(), 2);
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn an_admin_erases_a_resident_and_the_erasure_is_audited(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let store = env.store().await;
        resident(&store, "krowodrza", "waste", Language::Pl, "gone@example.com", Some("+48601000002")).await;
        let admin = token_for(&store, "admin@um.krakow.pl", "admin").await;
        let author = token_for(&store, "author2@um.krakow.pl", "author").await;
        let body = json!({"phone": "601 000 002"});
        assert_eq!(post(&app, "/api/v1/residents/erasures", Some(&author), &body).await.status(), 403);
        assert_eq!(post(&app, "/api/v1/residents/erasures", Some(&admin), &body).await.status(), 204);
        assert!(store.subscriber_by_contact("sms", "+48601000002").await.unwrap().is_none(), "the contact is gone");
        assert!(store.subscriber_by_contact("email", "gone@example.com").await.unwrap().is_none());
        assert_eq!(post(&app, "/api/v1/residents/erasures", Some(&admin), &body).await.status(), 404);
        let audit = store.recent_audit(5).await.unwrap();
        assert_eq!(audit.len(), 1);
        let (who, action, subject, reached) = &audit[0];
        assert!(who.is_some());
        assert_eq!((action.as_str(), *reached), ("resident.erase", 1));
        assert!(subject.starts_with("sms:") && !subject.contains("601"), "the audit keeps no number: {subject}");
        app.shutdown().await.unwrap();
    }
}

async fn post_csv(app: &TestApp, token: &str, csv: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/imports", app.address))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap()
}

both_backends! {
    async fn a_csv_import_commits_whole_or_not_at_all_with_a_report_of_bad_lines(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let store = env.store().await;
        let author = token_for(&store, "importer@um.krakow.pl", "author").await;
        let analyst = token_for(&store, "reader@um.krakow.pl", "analyst").await;
        let header = "email,phone,districts,interests,language,consent_source,consented_at\n";
        let bad = format!("{header}\
            ewa@example.com,601 100 200,podgorze;debniki,water,pl,KCK phone line 2025,2025-03-01\n\
            broken-address,,podgorze,,,KCK,2025-03-01\n\
            ,12 616 12 00,podgorze,,,KCK,2025-03-01\n\
            adam@example.com,,atlantis,,,KCK,2025-03-01\n\
            olga@example.com,,nowa-huta,,uk,,2025-03-01\n\
            ewa@example.com,,podgorze,,,KCK,2025-03-01\n\
            piotr@example.com,,bronowice,,en,KCK,yesterday\n");
        assert_eq!(post_csv(&app, &analyst, &bad).await.status(), 403);
        let res = post_csv(&app, &author, &bad).await;
        assert_eq!(res.status(), 422);
        let report: Value = res.json().await.unwrap();
        let rejected: Vec<(u64, String)> = report["rejected"].as_array().unwrap().iter()
            .map(|r| (r["line"].as_u64().unwrap(), r["field"].as_str().unwrap().to_owned())).collect();
        assert_eq!(rejected, vec![
            (3, "email".into()), (4, "phone".into()), (5, "districts".into()),
            (6, "consent_source".into()), (7, "email".into()), (8, "consented_at".into()),
        ]);
        assert_eq!(report["imported"], 0);
        assert!(store.subscriber_by_contact("email", "ewa@example.com").await.unwrap().is_none(), "nothing from a refused file is kept");

        let good = format!("{header}\
            ewa@example.com,601 100 200,podgorze;debniki,water,pl,KCK phone line 2025,2025-03-01\n\
            olga@example.com,,nowa-huta,,uk,KCK desk,2025-04-02T10:00:00+02:00\n");
        let res = post_csv(&app, &author, &good).await;
        assert_eq!(res.status(), 201);
        let report: Value = res.json().await.unwrap();
        assert_eq!((report["imported"].clone(), report["skipped_known"].clone()), (json!(2), json!(0)));
        // Imported contacts are verified, with their consent evidence recorded.
        let id = store.subscriber_by_contact("sms", "+48601100200").await.unwrap().unwrap();
        let history = store.consent_history(&id).await.unwrap();
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|(_, version, action, method, _)| version == "import:KCK phone line 2025" && action == "granted" && method == "import"));
        let estimate = post(&app, "/api/v1/audiences/estimate", Some(&author), &json!({"districts": ["podgorze"]})).await;
        assert_eq!(estimate.json::<Value>().await.unwrap()["recipients"], 2);

        // The same file again changes nothing and says so.
        let again: Value = post_csv(&app, &author, &good).await.json().await.unwrap();
        assert_eq!((again["imported"].clone(), again["skipped_known"].clone()), (json!(0), json!(3)));
        let audit = store.recent_audit(5).await.unwrap();
        assert_eq!(audit.iter().filter(|(_, a, _, _)| a == "residents.import").count(), 2);
        assert_eq!(audit[1].3, 2, "the first import reached 2 residents");
        app.shutdown().await.unwrap();
    }
}
