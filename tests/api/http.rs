//! What an operator and an integrator check first: health, readiness, metrics, the API
//! description, the reference data and the error shape.

use hejnal::app::Role;
use serde_json::Value;

use crate::{both_backends, helpers::{Backend, TestApp}};

both_backends! {
    async fn health_readiness_and_reference_data_answer(env) {
        let app = TestApp::spawn(&env, Role::Serve).await;

        let health = app.get("/healthz").await;
        assert_eq!(health.status(), 200);
        let id = health.headers().get("x-request-id").expect("every answer carries a request id");
        let id: uuid::Uuid = id.to_str().unwrap().parse().expect("the request id is a UUID");
        assert_eq!(id.get_version_num(), 4, "a random UUID");

        let ready = app.get("/readyz").await;
        assert_eq!(ready.status(), 200);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["database"], "ok");
        assert_eq!(ready["queue"], "ok");

        let districts: Vec<Value> = app.get("/api/v1/districts").await.json().await.unwrap();
        assert_eq!(districts.len(), 18);
        assert_eq!(districts[0]["slug"], "stare-miasto");
        assert_eq!(districts[0]["number"], "I");
        let podgorze = districts.iter().find(|d| d["slug"] == "podgorze").expect("podgorze");
        assert_eq!(podgorze["name_pl"], "Podgórze");
        assert_eq!(podgorze["name_uk"], "Подгуже");
        assert_eq!(districts[17]["slug"], "nowa-huta");

        let interests: Vec<Value> = app.get("/api/v1/interests").await.json().await.unwrap();
        let water = interests.iter().find(|i| i["slug"] == "water").expect("water interest");
        assert_eq!(water["name_pl"], "Woda i kanalizacja");
        assert_eq!(water["name_en"], "Water supply");
        assert_eq!(water["name_uk"], "Водопостачання");

        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn metrics_count_requests_by_route_and_show_queue_depth(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        for _ in 0..3 {
            assert_eq!(app.get("/api/v1/districts").await.status(), 200);
        }
        let body = app.get("/metrics").await.text().await.unwrap();
        let line = body
            .lines()
            .find(|l| l.starts_with("hejnal_http_requests_total") && l.contains("route=\"/api/v1/districts\"") && l.contains("status=\"200\""))
            .unwrap_or_else(|| panic!("no request counter for /api/v1/districts in:\n{body}"));
        let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count >= 3.0, "{line}");
        assert!(body.contains("hejnal_queue_depth{lane=\"emergency\",state=\"queued\"}"), "{body}");
        assert!(body.contains("hejnal_queue_depth{lane=\"routine\",state=\"released\"}"), "{body}");
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn metrics_show_the_memory_the_process_holds(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let body = app.get("/metrics").await.text().await.unwrap();
        let gauge = |name: &str| -> f64 {
            let line = body.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in:\n{body}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let resident = gauge("hejnal_process_resident_bytes");
        // A test process holds its code and runtime: far more than a megabyte, far less than 10 GB.
        assert!((1e6..1e10).contains(&resident), "resident {resident}");
        let in_use = gauge("hejnal_heap_bytes{state=\"in_use\"}");
        assert!(in_use > 100_000.0 && in_use < resident * 4.0, "heap in use {in_use}, resident {resident}");
        gauge("hejnal_heap_bytes{state=\"free\"}");
        if matches!(env.backend, Backend::Embedded) {
            // This app's own SQLite connections are open, so SQLite holds their schemas at least.
            assert!(gauge("hejnal_sqlite_memory_bytes") > 10_000.0, "{body}");
        }
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn the_openapi_document_describes_the_routes(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let spec: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
        assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
        for path in ["/api/v1/districts", "/api/v1/interests", "/healthz", "/readyz"] {
            assert!(spec["paths"][path]["get"].is_object(), "{path} missing from the spec");
        }
        assert!(spec["components"]["schemas"]["District"].is_object());
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn an_unknown_route_answers_in_the_error_shape(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let res = app.get("/api/v1/no-such-thing").await;
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "no_such_route");
        assert!(body["error"]["message"].as_str().unwrap().contains("openapi"));
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn a_path_or_query_that_cannot_be_read_answers_400_in_the_error_shape(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        // Found by schemathesis: axum answered these in plain text.
        let author = crate::helpers::token_for(&app.store, "author@um.krakow.pl", "author").await;
        let too_big = app.client.post(format!("{}/api/v1/notices/9223372036854775808/submit", app.address)).bearer_auth(&author).send().await.unwrap();
        assert_eq!(too_big.status(), 400);
        let body: Value = too_big.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_path", "{body}");
        let twice = app.client.delete(format!("{}/api/v1/preferences/t?channel=sms&channel=email", app.address)).send().await.unwrap();
        assert_eq!(twice.status(), 400);
        let body: Value = twice.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query", "{body}");
        app.shutdown().await.unwrap();
    }
}

both_backends! {
    async fn the_openapi_document_names_every_error_answer(env) {
        let app = TestApp::spawn(&env, Role::Api).await;
        let spec: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
        let error = "#/components/schemas/ErrorEnvelope";
        let subscribe = &spec["paths"]["/api/v1/subscriptions"]["post"]["responses"];
        for status in ["400", "415", "422", "429", "503"] {
            assert_eq!(subscribe[status]["content"]["application/json"]["schema"]["$ref"], error, "subscribe {status}");
        }
        assert!(subscribe["429"]["headers"]["Retry-After"].is_object());
        let notice = &spec["paths"]["/api/v1/notices/{id}"]["get"];
        assert_eq!(notice["responses"]["401"]["content"]["application/json"]["schema"]["$ref"], error);
        assert!(notice["responses"]["429"].is_null(), "officials' routes are not behind the public limit");
        assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert!(spec["paths"]["/api/v1/sms/inbound"]["post"]["security"][0]["provider"].is_array());
        app.shutdown().await.unwrap();
    }
}
