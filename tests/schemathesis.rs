//! API fuzzing: schemathesis (from PyPI, pinned) against `/api/v1/openapi.json` of a real
//! `hejnal serve` process, in its coverage and fuzzing phases, with every check, twice: as an
//! anonymous caller (random ids and tokens), and as an admin official and the SMS provider
//! (ids and a preferences link that exist, so the handlers' logic runs, not only their 404).
//! It must find no 5xx and no answer the document does not describe.
//!
//! Schemathesis is installed once into a virtualenv outside the clone
//! (`$HEJNAL_TEST_TOOLS_DIR`, default `/var/cache/hejnal-ci/tools`). Under `CI=true` a failed
//! install fails the test; elsewhere it is skipped with a message.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

const SCHEMATHESIS: &str = "4.32.5";
/// Test cases per operation and phase: enough to find what the document gets wrong, small
/// enough for CI (about a minute a run on two cores).
const MAX_EXAMPLES: &str = "40";
const PROVIDER_SECRET: &str = "fuzz-provider-secret";

#[path = "support/ci.rs"]
mod ci;
use ci::in_ci;

#[path = "support/python.rs"]
mod python;

/// The `st` executable of a pinned schemathesis, installing it on first use.
fn schemathesis() -> Result<PathBuf, String> {
    let venv = python::venv_with(&format!("schemathesis-{SCHEMATHESIS}"), &[&format!("schemathesis=={SCHEMATHESIS}")])?;
    Ok(venv.join("bin/st"))
}

/// `hejnal serve` on SQLite in a temporary folder, killed when dropped.
struct Service {
    child: Child,
    base: String,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Service {
    fn start() -> Service {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let env: Vec<(String, String)> = [
            ("HEJNAL_LISTEN", format!("127.0.0.1:{port}")),
            ("DATABASE_URL", format!("sqlite://{}/hejnal.db", dir.path().display())),
            ("HEJNAL_QUEUE_URL", format!("sqlite://{}/queue.db", dir.path().display())),
            ("HEJNAL_SMS_INBOUND_SECRET", PROVIDER_SECRET.into()),
            // Fuzzing is not a flood: the limiter is tested on its own (tests/api/attacks).
            ("HEJNAL_PUBLIC_RATE_PER_MINUTE", "1000000".into()),
            ("HEJNAL_PUBLIC_RATE_BURST", "1000000".into()),
            ("HEJNAL_LOG_LEVEL", "error".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut migrate = hejnal(&env, &["migrate"]);
        assert!(migrate.status().unwrap().success(), "hejnal migrate");
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = hejnal(&env, &["serve"]).stdout(Stdio::null()).stderr(log).spawn().expect("start hejnal serve");
        Service { child, base: format!("http://127.0.0.1:{port}"), env, _dir: dir }
    }

    /// An official's token, made with the command line as an operator would.
    fn official_token(&self, email: &str, role: &str) -> String {
        let mut add = hejnal(&self.env, &["officials", "add", "--email", email, "--role", role]);
        let mut child = add.stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"a long fuzzing password\n").unwrap();
        assert!(child.wait().unwrap().success(), "hejnal officials add");
        let out = hejnal(&self.env, &["tokens", "create", "--official", email]).output().unwrap();
        assert!(out.status.success(), "hejnal tokens create");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hejnal(env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hejnal"));
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    // Its session's CPU priority is the test run's, not its to raise.
    cmd.env("HEJNAL_NICE", "0");
    cmd
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await
            && res.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "hejnal serve did not become ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Things that exist, so the official run reaches past "not found": a draft notice, a
/// break-glass template and a resident's preferences link (read from the dev outbox, where
/// the sign-up email is recorded).
struct Seeds {
    notice: i64,
    template: i64,
    preferences_token: String,
}

async fn seed(client: &reqwest::Client, base: &str, token: &str) -> Seeds {
    let notice_body = json!({
        "kind": "alert", "msg_type": "Alert", "status": "Exercise", "severity": "Severe",
        "urgency": "Immediate", "certainty": "Observed",
        "texts": {"pl": {"title": "Ćwiczenie", "body": "To jest ćwiczenie."}},
        "audience": {"districts": ["podgorze"], "channels": ["email"]}
    });
    let notice: Value = post(client, &format!("{base}/api/v1/notices"), token, &notice_body).await;
    let template: Value = post(client, &format!("{base}/api/v1/notice-templates"), token, &json!({"name": "Ćwiczenie", "notice": notice_body})).await;
    let res = client.post(format!("{base}/api/v1/subscriptions")).json(&json!({"districts": ["podgorze"], "email": "fuzz@example.com"})).send().await.unwrap();
    assert_eq!(res.status(), 202, "sign-up for the seed resident");
    let deadline = Instant::now() + Duration::from_secs(60);
    let preferences_token = loop {
        let outbox: Value = client.get(format!("{base}/dev/outbox")).send().await.unwrap().json().await.unwrap();
        let text = outbox["messages"][0]["text"].as_str().unwrap_or("").to_owned();
        if let Some(at) = text.find("/preferences/") {
            break text[at + "/preferences/".len()..].split_whitespace().next().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no sign-up email in the dev outbox: {outbox}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Seeds { notice: notice["id"].as_i64().expect("notice id"), template: template["id"].as_i64().expect("template id"), preferences_token }
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Value {
    let res = client.post(url).bearer_auth(token).json(body).send().await.unwrap();
    assert_eq!(res.status(), 201, "seed {url}");
    res.json().await.unwrap()
}

/// What both runs accept: business rules the schema cannot say (a district that exists, a
/// phone number that is a mobile, a notice that has a Polish text) answer 422 to
/// schema-valid bodies. 400, 415 and 5xx to a schema-valid request still fail.
const CHECKS: &str = r#"
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "410", "422"]
"#;

fn official_config(token: &str, seeds: &Seeds) -> String {
    format!(
        r#"{CHECKS}
[auth.openapi]
bearer = {{ bearer = "{token}" }}
provider = {{ bearer = "{PROVIDER_SECRET}" }}

[[operations]]
include-path-regex = "^/api/v1/notices/\\{{id\\}}"
parameters = {{ id = {notice} }}

[[operations]]
include-path-regex = "^/api/v1/notice-templates/\\{{id\\}}"
parameters = {{ id = {template} }}

[[operations]]
include-path-regex = "^/api/v1/preferences/\\{{token\\}}"
parameters = {{ token = "{preferences}" }}
"#,
        notice = seeds.notice,
        template = seeds.template,
        preferences = seeds.preferences_token,
    )
}

/// Run schemathesis with `config`; return its JSON report.
fn fuzz(st: &Path, base: &str, config: &str, name: &str, seed: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(st)
        // Schemathesis keeps a cache in its working directory: not in the clone.
        .current_dir(dir.path())
        .arg("--config-file")
        .arg(&config_file)
        .args(["run", &format!("{base}/api/v1/openapi.json"), "--phases", "coverage,fuzzing", "--checks", "all"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", seed, "--no-color", "--workers", "2", "--report", "json"])
        .arg("--report-json-path")
        .arg(&report)
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- schemathesis, {name} ---\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis ({name}) found failures; see its output above");
    serde_json::from_str(&std::fs::read_to_string(&report).expect("schemathesis wrote its report")).unwrap()
}

/// The report says every operation was tested, many cases ran, and nothing failed.
fn assert_clean(report: &Value, name: &str) {
    assert_eq!(report["complete"], true, "{name}: {report}");
    assert_eq!(report["exit_code"], 0, "{name}");
    assert_eq!(report["failures"], json!([]), "{name}: failures");
    assert_eq!(report["errors"], json!([]), "{name}: errors");
    let operations = &report["operations"];
    assert!(operations["total"].as_u64().unwrap() >= 30, "{name}: the document lists the API: {operations}");
    assert_eq!(operations["tested"], operations["total"], "{name}: every operation is tested");
    let generated = report["test_cases"]["generated"].as_u64().unwrap();
    assert!(generated >= 1000, "{name}: only {generated} test cases");
    assert_eq!(report["warnings"]["rate_limited"], json!([]), "{name}: the limiter hid the logic");
    println!("{name}: {generated} test cases over {} operations, no failures", operations["tested"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let st = match schemathesis() {
        Ok(st) => st,
        Err(e) if in_ci() => panic!("cannot install schemathesis {SCHEMATHESIS} (under CI=true this test must run): {e}"),
        Err(e) => {
            eprintln!("SKIPPED: cannot install schemathesis {SCHEMATHESIS}: {e}");
            return;
        }
    };
    let service = Service::start();
    let client = reqwest::Client::new();
    wait_ready(&client, &service.base).await;
    let token = service.official_token("fuzz@um.krakow.pl", "admin");
    // Another official writes the seeds, so that the fuzzing admin may approve them.
    let author = service.official_token("author@um.krakow.pl", "author");
    let seeds = seed(&client, &service.base, &author).await;

    let anonymous = tokio::task::block_in_place(|| fuzz(&st, &service.base, CHECKS, "anonymous", "1"));
    assert_clean(&anonymous, "anonymous");
    let official = tokio::task::block_in_place(|| fuzz(&st, &service.base, &official_config(&token, &seeds), "official", "2"));
    assert_clean(&official, "official");
    assert_eq!(official["warnings"]["missing_auth"], json!([]), "the token was accepted");

    // The service is still whole: it answers, and it logged no panic and no internal error.
    assert_eq!(client.get(format!("{}/readyz", service.base)).send().await.unwrap().status(), 200);
    let log = std::fs::read_to_string(service._dir.path().join("serve.log")).unwrap();
    assert!(!log.contains("panicked") && !log.contains("internal error"), "the service logged:\n{log}");
}
