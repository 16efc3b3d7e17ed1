//! Results and CSV, checked value by value: counts per option, scale distribution and mean,
//! ranking, response rates per district and channel, invitation answers apart from open ones.

use serde_json::json;

use super::{create, email_tokens, every_type, publish, respond, residents, results};
use crate::{both_backends, helpers::eventually, notices::Desk, residents::Kit};

both_backends! {
    async fn results_and_csv_count_every_answer_where_it_came_from(env) {
        let desk = Desk::open(Kit::start(&env).await).await;
        let podgorze = residents(&desk, 2, "podgorze", hejnal::domain::Language::Pl, true).await;
        let debniki = residents(&desk, 1, "debniki", hejnal::domain::Language::Pl, false).await;
        let id = create(&desk, &every_type(Some("park"))).await;
        publish(&desk, id, json!({"districts": ["podgorze", "debniki"], "channels": ["email", "sms"]})).await;
        let tokens = email_tokens(&desk.kit, 3).await;
        let token_of = |email: &str| tokens.iter().find(|(e, _)| e == email).unwrap().1.clone();
        let sms = &desk.kit.sms;
        eventually(std::time::Duration::from_secs(60), "two SMS invitations", || async move { (sms.requests().len() == 2).then_some(()) }).await;

        // Two invited residents answer (one of Podgórze, the one of Dębniki), two browsers openly.
        let answers = [
            (json!({"token": token_of(&podgorze[0].0)}), json!({"q1": true, "q2": 1, "q3": 5, "q4": [1, 2], "q5": [2, 1, 3], "q6": "=cmd|' /C calc'!A0"})),
            (json!({"token": token_of(&debniki[0].0)}), json!({"q1": true, "q2": 3, "q3": 4, "q4": [2], "q5": [2, 3, 1], "q7": "Więcej cienia"})),
            (json!({}), json!({"q1": false, "q2": 3, "q4": [3], "q5": [1, 2, 3]})),
            (json!({}), json!({"q1": true, "q2": 2, "q3": 2, "q4": [2, 3], "q5": [3, 1, 2]})),
        ];
        for (who, a) in answers {
            let mut body = who.clone();
            body["answers"] = a;
            let (status, answered) = respond(&desk, id, &body).await;
            assert_eq!(status, 201, "{answered}");
        }

        let r = results(&desk, id).await;
        assert_eq!(r["responses"], json!({"invitation": 2, "open": 2, "open_flagged": 2}));
        let inv = &r["invitations"];
        assert_eq!((inv["invited"].as_i64(), inv["answered"].as_i64(), inv["rate"].as_f64()), (Some(3), Some(2), Some(0.6667)), "{inv}");
        assert_eq!(inv["by_district"], json!([
            {"key": "debniki", "label": "Dębniki", "invited": 1, "answered": 1, "rate": 1.0},
            {"key": "podgorze", "label": "Podgórze", "invited": 2, "answered": 1, "rate": 0.5}]), "in the districts' order");
        assert_eq!(inv["by_channel"], json!([
            {"key": "email", "label": "email", "invited": 3, "answered": 2, "rate": 0.6667},
            {"key": "sms", "label": "sms", "invited": 2, "answered": 1, "rate": 0.5}]));
        let q = &r["questions"];
        let counts = |i: usize, key: &str| -> Vec<(i64, i64)> {
            q[i][key].as_array().unwrap().iter().map(|c| (c["invitation"].as_i64().unwrap(), c["open"].as_i64().unwrap())).collect()
        };
        assert_eq!(counts(0, "options"), [(2, 1), (0, 1)], "yes/no");
        assert_eq!(counts(1, "options"), [(1, 0), (0, 1), (1, 1)], "single choice");
        assert_eq!(q[1]["options"][2]["label"], "=HYPERLINK(\"http://zly.example\")");
        assert_eq!(counts(2, "distribution"), [(0, 0), (0, 1), (0, 0), (1, 0), (1, 0)], "scale 1..5; the 'no' browser never saw it");
        assert_eq!(q[2]["mean"], json!({"invitation": 4.5, "open": 2.0, "total": 3.67}));
        assert_eq!(counts(3, "options"), [(1, 0), (2, 1), (0, 2)], "multiple choice");
        let ranking: Vec<(f64, f64, i64)> = q[4]["ranking"].as_array().unwrap().iter()
            .map(|k| (k["mean_position"]["invitation"].as_f64().unwrap(), k["mean_position"]["open"].as_f64().unwrap(), k["first"]["total"].as_i64().unwrap())).collect();
        assert_eq!(ranking, [(2.5, 1.5, 1), (1.0, 2.5, 2), (2.5, 2.0, 1)]);
        assert_eq!(q[5]["answered"], json!({"invitation": 1, "open": 0, "total": 1}));

        // Free-text answers, without anything that names who wrote them.
        let (_, texts) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/answers"), None).await;
        let texts: Vec<(&str, &str, &str)> = texts.as_array().unwrap().iter().map(|t| (t["question"].as_str().unwrap(), t["source"].as_str().unwrap(), t["text"].as_str().unwrap())).collect();
        assert_eq!(texts, [("q6", "invitation", "=cmd|' /C calc'!A0"), ("q7", "invitation", "Więcej cienia")]);

        // CSV with ';' for Polish spreadsheets: BOM, decimal commas, formulas defused.
        let res = desk.kit.app.client.get(format!("{}/api/v1/surveys/{id}/results.csv?sep=;", desk.kit.app.address)).bearer_auth(&desk.author).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        let body = res.text().await.unwrap();
        assert!(body.starts_with('\u{feff}'), "a BOM first");
        let mut reader = csv::ReaderBuilder::new().delimiter(b';').has_headers(false).from_reader(body.trim_start_matches('\u{feff}').as_bytes());
        let rows: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
        let row = |cells: &[&str]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert_eq!(rows[0], row(&["section", "question_id", "question", "item", "invited", "invitation", "open", "total", "rate"]));
        for expected in [
            row(&["responses", "", "", "all", "", "2", "2", "4", ""]),
            row(&["responses", "", "", "open_flagged", "", "", "2", "", ""]),
            row(&["invitations", "", "", "all", "3", "2", "", "", "0,6667"]),
            row(&["district", "", "", "Podgórze", "2", "1", "", "", "0,5"]),
            row(&["district", "", "", "Dębniki", "1", "1", "", "", "1"]),
            row(&["channel", "", "", "sms", "2", "1", "", "", "0,5"]),
            row(&["option", "q2", "Jak często?", "'=HYPERLINK(\"http://zly.example\")", "", "1", "1", "2", ""]),
            row(&["scale", "q3", "Jak oceniasz park?", "5", "", "1", "0", "1", ""]),
            row(&["mean", "q3", "Jak oceniasz park?", "", "", "4,5", "2", "3,67", ""]),
            row(&["mean_position", "q5", "Co najważniejsze?", "Zieleń", "", "1", "2,5", "1,75", ""]),
        ] {
            assert!(rows.contains(&expected), "{expected:?} in\n{body}");
        }
        let plain = desk.kit.app.client.get(format!("{}/api/v1/surveys/{id}/results.csv", desk.kit.app.address)).bearer_auth(&desk.author).send().await.unwrap().text().await.unwrap();
        assert!(plain.lines().any(|l| l == "mean,q3,Jak oceniasz park?,,,4.5,2,3.67,"), "{plain}");
        let (status, refused) = desk.call(&desk.author, reqwest::Method::GET, &format!("/api/v1/surveys/{id}/results.csv?sep=tab"), None).await;
        assert_eq!((status, refused["error"]["field"].as_str()), (422, Some("sep")));
    }
}
