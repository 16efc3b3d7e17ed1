//! The `hejnal` command as operators and scripts use it.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::helpers::{Backend, TestEnv};

fn hejnal() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hejnal"));
    cmd.env_remove("DATABASE_URL");
    // Its session's CPU priority is the test run's, not its to raise.
    cmd.env("HEJNAL_NICE", "0");
    cmd
}

#[test]
fn help_lists_every_subcommand() {
    let out = hejnal().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for sub in ["serve", "api", "worker", "migrate", "vapid-keygen", "officials", "tokens", "bench"] {
        assert!(help.contains(sub), "{sub} missing from --help:\n{help}");
    }
    let out = hejnal().args(["officials", "add", "--help"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("--role"));
}

#[test]
fn vapid_keygen_prints_two_lines_of_valid_keys() {
    let out = hejnal().arg("vapid-keygen").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let private = lines[0].strip_prefix("HEJNAL_VAPID_PRIVATE_KEY=").expect("private line");
    let public = lines[1].strip_prefix("HEJNAL_VAPID_PUBLIC_KEY=").expect("public line");
    assert_eq!(URL_SAFE_NO_PAD.decode(private).unwrap().len(), 32);
    let public = URL_SAFE_NO_PAD.decode(public).unwrap();
    assert_eq!((public.len(), public[0]), (65, 0x04));
}

#[test]
fn a_wrong_setting_stops_the_process_with_one_line_naming_it() {
    for (key, value, named) in [
        ("HEJNAL_LISTEN", "not-an-address", "HEJNAL_LISTEN"),
        ("DATABASE_URL", "mysql://db/x", "DATABASE_URL"),
        ("HEJNAL_QUEUE_URL", "amqp://mq", "HEJNAL_QUEUE_URL"),
        ("HEJNAL_QUEUE_MAX_READY", "lots", "HEJNAL_QUEUE_MAX_READY"),
        ("HEJNAL_LISTN", "127.0.0.1:1", "HEJNAL_LISTN"),
    ] {
        let out = hejnal().arg("serve").env(key, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line for {key}: {err}");
        assert!(err.contains(named), "{key}={value} gave: {err}");
    }
}

#[tokio::test]
async fn officials_and_tokens_from_the_command_line() {
    let Some(env) = TestEnv::new(Backend::Embedded).await else { return };
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = hejnal();
        cmd.args(args).env("DATABASE_URL", &env.database_url).env("HEJNAL_QUEUE_URL", &env.queue_url);
        // The test suite's own variables are not settings of the service.
        cmd.env("HEJNAL_TEST_POSTGRES_URL", "postgres://ignored");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let added = run(&["officials", "add", "--email", "Anna@UM.Krakow.pl", "--role", "approver"], Some("a long enough password\n"));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(added.stdout.is_empty(), "a piped password is never echoed");

    let bad_role = run(&["officials", "add", "--email", "jan@um.krakow.pl", "--role", "mayor"], Some("a long enough password\n"));
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("--role"));

    let twice = run(&["officials", "add", "--email", "anna@um.krakow.pl", "--role", "author"], Some("a long enough password\n"));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));

    let token = run(&["tokens", "create", "--official", "anna@um.krakow.pl"], None);
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap();
    let token = token.strip_suffix('\n').expect("one line");
    assert!(token.starts_with("hj_") && !token.contains(char::is_whitespace), "the token alone: {token:?}");

    let store = env.store().await;
    assert!(!store.revoke_token(token).await.unwrap(), "only the digest is stored, never the token");
    let revoked = run(&["tokens", "revoke", token], None);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let again = run(&["tokens", "revoke", token], None);
    assert!(!again.status.success());

    let nobody = run(&["tokens", "create", "--official", "nobody@um.krakow.pl"], None);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("--official"));
}

/// Start `hejnal serve` with the log format given and return its "HTTP listening" line, read
/// through a pipe as a log collector reads it, and the port it listens on.
async fn listening_log_line(format: &str) -> Option<(String, u16)> {
    let env = TestEnv::new(Backend::Embedded).await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = hejnal()
        .arg("serve")
        .env("DATABASE_URL", &env.database_url)
        .env("HEJNAL_QUEUE_URL", &env.queue_url)
        .env("HEJNAL_LISTEN", format!("127.0.0.1:{port}"))
        .env("HEJNAL_LOG_FORMAT", format)
        .env("HEJNAL_LOG_LEVEL", "info")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("HTTP listening"))
    });
    let line = reader.join().unwrap().expect("a log line saying the server listens");
    let _ = child.kill();
    let _ = child.wait();
    Some((line, port))
}

#[tokio::test]
async fn json_logs_are_one_json_object_per_line() {
    let Some((line, port)) = listening_log_line("json").await else { return };
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["message"], "HTTP listening");
    assert!(entry["fields"]["addr"].as_str().unwrap().ends_with(&port.to_string()));
}

/// Logs written to a pipe or a file carry no terminal colour codes (a journal or a log file
/// would show them as `[2m…[0m`).
#[tokio::test]
async fn text_logs_to_a_pipe_are_plain_text() {
    let Some((line, port)) = listening_log_line("text").await else { return };
    assert!(!line.contains('\u{1b}'), "escape codes in {line:?}");
    assert!(line.contains(" INFO ") && line.contains(&format!("addr=127.0.0.1:{port}")), "{line:?}");
}

/// The broadcast bench, small: sinks, seeding, `hejnal serve` in its own process, a campaign, an
/// alert and the table. Its figures are not checked here (speed is the bench's business); that it
/// runs, delivers everything and reports the service's memory is.
#[test]
fn the_broadcast_bench_runs_the_service_in_its_own_process_and_prints_its_table() {
    let stdout = bench(&["broadcast", "--subscribers", "300", "--alerts", "1", "--channels", "sms", "--backend", "embedded", "--ceiling-seconds", "1"]);
    let cell = |measure: &str| table_cell(&stdout, measure);
    // The value, not the whole row: the target column ("≤ 100 s (1M)") holds " s (" too.
    assert!(cell("sms campaign drained").contains(" s ("), "{stdout}");
    assert!(!cell("sms campaign drained").contains("not sent"), "{stdout}");
    let mb = leading_number(&cell("peak RSS of the service"));
    assert!(mb > 1.0, "the service's own peak RSS: {mb} MB\n{stdout}");
    assert!(cell("alerts sent").contains("of 1"), "{stdout}");
}

/// Run `hejnal bench <args>` quietly; its table (standard output), once it has succeeded.
fn bench(args: &[&str]) -> String {
    let out = hejnal().arg("bench").args(args).env("HEJNAL_LOG_LEVEL", "warn").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// The value column (the third) of the row of a bench's Markdown table that starts with `measure`.
fn table_cell(table: &str, measure: &str) -> String {
    let row = table.lines().find(|l| l.starts_with(&format!("| {measure}"))).unwrap_or_else(|| panic!("no {measure:?} row:\n{table}"));
    row.split('|').nth(3).unwrap_or_else(|| panic!("no value in {row:?}")).trim().to_owned()
}

/// The number a cell starts with ("53.2 MB (27.4 MB)" → 53.2).
fn leading_number(cell: &str) -> f64 {
    cell.split(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no number at the start of {cell:?}"))
}

/// The survey bench, small: seeding, invitations, the two phases and the table. Its speed is
/// not checked here (that is what the bench is for); that every acknowledged answer is stored
/// and none is refused is.
#[test]
fn the_survey_bench_stores_every_acknowledged_answer_and_prints_its_table() {
    let stdout = bench(&["survey", "--backend", "embedded", "--invitations", "300", "--seconds", "0.5", "--connections", "8", "--stall-probe", "--bursts", "1", "--burst-ms", "50"]);
    let cell = |measure: &str| table_cell(&stdout, measure);
    assert_eq!(cell("refused (not 2xx)"), "0 ✓", "{stdout}");
    let stored = cell("acknowledged invitations all stored");
    let (acknowledged, rows) = stored.split_once(" acknowledged, ").unwrap_or_else(|| panic!("{stored}"));
    assert_eq!(rows, format!("{acknowledged} rows ✓"), "{stdout}");
    assert!(acknowledged.parse::<usize>().unwrap() > 0, "{stdout}");
    assert!(leading_number(&cell("maximum, durable answers/s")) > 0.0, "{stdout}");
    // Whether the machine held its speed between the phases, and whether a core stopped.
    for speed in ["the machine's speed, computing", "the machine's speed, reading memory"] {
        let measured = cell(speed);
        assert!(leading_number(&measured) > 0.0 && measured.contains("the fixed rate asked"), "{stdout}");
    }
    let stalls = cell("at the fixed rate: a core not running");
    assert!(stalls.starts_with("over 1 ms in ") || stalls.starts_with("not measured: "), "{stdout}");
    // How often the cores slept per answer (a number, or n/a off cpuidle), and what the
    // process read from disk.
    let sleeps = cell("the machine's cores going to sleep, per answer");
    let (per_phase, polling) = sleeps.split_once("; ").unwrap_or_else(|| panic!("{sleeps}"));
    assert!(per_phase.split(" / ").all(|n| n == "n/a" || n.parse::<f64>().is_ok()), "{stdout}");
    assert!(polling.contains("idle core") || polling.contains("no guest halt polling"), "{stdout}");
    assert!(cell("at the fixed rate: read from disk by this process").ends_with(" KiB"), "{stdout}");
    let late = cell("at the fixed rate: of the answers over 10 ms, the time from sending to the answer");
    assert!(late == "none late" || late.contains("over 10 ms after sending: "), "{stdout}");
    // The burst asked for ran in the fixed rate's 0.5 s, and the priority is stated.
    let bursts = cell("at the fixed rate: another process's bursts, on purpose");
    let began = bursts.strip_prefix("1 × 50 ms, begun at ").and_then(|b| b.strip_suffix(" s")).unwrap_or_else(|| panic!("{stdout}"));
    assert!((0.2..0.5).contains(&began.parse::<f64>().unwrap()), "{stdout}");
    assert!(cell("this process's CPU priority (HEJNAL_NICE)").starts_with("nice 0; "), "HEJNAL_NICE=0 leaves it: {stdout}");
}
