//! The store's conformance suite: the same checks on SQLite and PostgreSQL.

use hejnal::store::StoreError;

use crate::both_backends;

both_backends! {
    async fn migrations_are_idempotent_and_seed_the_city(env) {
        let store = env.store().await;
        store.migrate().await.expect("a second migration is a no-op");
        let districts = store.districts().await.unwrap();
        assert_eq!(districts.len(), 18);
        let numbers: Vec<&str> = districts.iter().map(|d| d.number.as_str()).collect();
        assert_eq!(numbers[..4], ["I", "II", "III", "IV"]);
        assert!(districts.iter().all(|d| !d.name_uk.is_empty() && !d.name_en.is_empty()));
        let interests = store.interests().await.unwrap();
        assert_eq!(interests.len(), 11);
        assert_eq!(interests[0].slug, "safety");
    }
}

both_backends! {
    async fn an_official_email_is_unique(env) {
        let store = env.store().await;
        store.add_official("anna@um.krakow.pl", "author", "$argon2id$x").await.unwrap();
        let again = store.add_official("anna@um.krakow.pl", "approver", "$argon2id$y").await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    }
}

both_backends! {
    async fn tokens_belong_to_known_officials_and_revoke_once(env) {
        let store = env.store().await;
        let unknown = store.add_token("nobody@um.krakow.pl", "digest-0", 30).await;
        assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
        store.add_official("jan@um.krakow.pl", "admin", "$argon2id$x").await.unwrap();
        store.add_token("jan@um.krakow.pl", "digest-1", 30).await.unwrap();
        assert!(store.revoke_token("digest-1").await.unwrap());
        assert!(!store.revoke_token("digest-1").await.unwrap(), "a revoked token cannot be revoked again");
        assert!(!store.revoke_token("digest-unknown").await.unwrap());
    }
}

both_backends! {
    async fn probe_runs_record_start_and_finish(env) {
        let store = env.store().await;
        let run = store.probe_started("p-1", "worker-a", "routine").await.unwrap();
        let runs = store.probe_runs("p-1").await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].finished_at, None);
        store.probe_finished(run).await.unwrap();
        let runs = store.probe_runs("p-1").await.unwrap();
        assert!(runs[0].finished_at.unwrap() >= runs[0].started_at);
        let counts = store.probe_counts().await.unwrap();
        assert_eq!((counts.runs, counts.finished, counts.distinct), (1, 1, 1));
        assert_eq!(store.probe_started_after("routine", runs[0].started_at - 1).await.unwrap(), 1);
        assert_eq!(store.probe_started_after("emergency", 0).await.unwrap(), 0);
    }
}

both_backends! {
    async fn unverified_sign_ups_are_purged_after_the_retention_and_verified_ones_stay(env) {
        use hejnal::{domain::Language, store::{NewContact, Signup, SubscriberState}};
        let store = env.store().await;
        let day = 24 * 3600 * 1000;
        let now = 100 * day;
        let signup = |email: &str| Signup {
            language: Language::Pl, quiet_hours: None, districts: vec!["podgorze".into()], interests: vec![],
            contacts: vec![NewContact { channel: "email", address: email.into(), p256dh: None, auth: None }],
        };
        store.signup(&signup("old@example.com"), "AAAAAAAAAAAAAAAAAAAAAA", now - 8 * day).await.unwrap();
        store.signup(&signup("new@example.com"), "BBBBBBBBBBBBBBBBBBBBBB", now - day).await.unwrap();
        let kept = store.signup(&signup("kept@example.com"), "CCCCCCCCCCCCCCCCCCCCCC", now - 8 * day).await.unwrap();
        store.set_verify_secret(kept[0].contact_id, "h", i64::MAX / 2).await.unwrap();
        assert!(store.verify_email("h", now - 8 * day + 1, "v").await.unwrap().is_some());

        assert_eq!(store.purge_unverified(now - 7 * day).await.unwrap(), 1);
        assert_eq!(store.preferences("AAAAAAAAAAAAAAAAAAAAAA").await.unwrap(), SubscriberState::Missing);
        assert!(matches!(store.preferences("BBBBBBBBBBBBBBBBBBBBBB").await.unwrap(), SubscriberState::Active(_)));
        assert!(matches!(store.preferences("CCCCCCCCCCCCCCCCCCCCCC").await.unwrap(), SubscriberState::Active(_)));
        assert!(store.subscriber_by_contact("email", "old@example.com").await.unwrap().is_none());
    }
}
