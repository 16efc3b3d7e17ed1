//! One scenario's installation: a throwaway PostgreSQL and Redis, N seeded residents (the
//! bench's seeding), the SMS gateway fake in this process, and `hejnal api` / `hejnal worker`
//! as child processes pointed at all of it. The service's connections carry the application
//! name `hejnal-<role>`, so a fault can cut exactly those.

use std::{
    fs::File,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use hejnal::{
    bench::{
        Desk,
        seed::{SeedPlan, seed},
    },
    testkit::sms::{SmsGateway, Style},
};
use tempfile::TempDir;

use super::{
    Ledger,
    process::Process,
    servers::{Postgres, Redis},
    tools,
};

/// The Bearer token the gateway fake sends with delivery reports.
pub const RECEIPTS_SECRET: &str = "faults-receipts-secret";

/// Settings every scenario starts from: the defaults, except what makes a fault show sooner.
/// A scenario overrides any of them (`Cluster::start`'s `settings`).
const BASE_SETTINGS: &[(&str, &str)] = &[
    ("HEJNAL_QUEUE_PREFIX", "faults"),
    ("HEJNAL_QUEUE_POLL_MS", "10"),
    ("HEJNAL_MIGRATE_ON_START", "false"),
    ("HEJNAL_LOG_LEVEL", "warn"),
    ("HEJNAL_SMS_PROVIDER", "webhook"),
    ("HEJNAL_SMS_SENDER", "KRAKOW"),
    ("HEJNAL_SMS_INBOUND_SECRET", RECEIPTS_SECRET),
    ("HEJNAL_SECRET_KEY", "faults-suite-link-key-0123456789abcdef"),
    ("HEJNAL_PROVIDER_TIMEOUT_MS", "2000"),
    ("HEJNAL_DATABASE_MAX_CONNECTIONS", "10"),
];

pub struct Cluster {
    pub postgres: Postgres,
    pub redis: Redis,
    pub sms: SmsGateway,
    /// Every district, so that a notice can reach every seeded resident.
    pub districts: Vec<String>,
    pub api_base: String,
    api_listen: String,
    settings: Vec<(String, String)>,
    logs: TempDir,
    started: usize,
}

impl Cluster {
    /// Start the servers and the sink, migrate, and seed `residents` residents, each with a
    /// verified phone (and email); `settings` override [`BASE_SETTINGS`].
    pub async fn start(residents: i64, settings: &[(&str, &str)]) -> Cluster {
        let postgres = Postgres::start();
        let redis = Redis::start().await;
        let setup_url = postgres.create_database("hejnal", "faults-setup").await;
        let sms = SmsGateway::start(Style::Webhook).await;
        let api_listen = format!("127.0.0.1:{}", tools::free_port());
        let mut all: Vec<(String, String)> = BASE_SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        all.push(("HEJNAL_QUEUE_URL".into(), redis.url()));
        all.push(("HEJNAL_SMS_URL".into(), format!("{}/sms", sms.base_url())));
        all.push(("HEJNAL_PUBLIC_URL".into(), format!("http://{api_listen}/")));
        for (k, v) in settings {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        let mut cluster = Cluster {
            postgres,
            redis,
            sms,
            districts: vec![],
            api_base: format!("http://{api_listen}"),
            api_listen,
            settings: all,
            logs: tempfile::tempdir().expect("temp dir"),
            started: 0,
        };
        let mut migrate = cluster.spawn("migrate", &["migrate"], &[]);
        let status = migrate.process.wait_exit(Duration::from_secs(120)).expect("hejnal migrate ends");
        assert!(status.success(), "hejnal migrate failed; see {}", migrate.log.display());
        let plan = SeedPlan { subscribers: residents, phone_every: 1, push: &[] };
        seed(&setup_url, &plan).await.expect("seed residents");
        cluster.districts = cluster.ledger().await.strings("SELECT slug FROM districts ORDER BY position").await;
        cluster
    }

    /// `hejnal api` on the cluster's port, once `/readyz` answers 200.
    pub async fn api(&mut self) -> Service {
        self.api_with(&[]).await
    }

    /// The API with settings of its own.
    pub async fn api_with(&mut self, extra: &[(&str, &str)]) -> Service {
        let listen = self.api_listen.clone();
        let mut vars = vec![("HEJNAL_LISTEN", listen.as_str())];
        vars.extend_from_slice(extra);
        let api = self.spawn("api", &["api"], &vars);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(res) = client.get(format!("{}/readyz", self.api_base)).send().await
                && res.status() == 200
            {
                return api;
            }
            assert!(Instant::now() < deadline, "the API was not ready within 60 s; see {}", api.log.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `hejnal worker`. Its start is not awaited: work waits in the database meanwhile.
    pub fn worker(&mut self) -> Service {
        self.spawn("worker", &["worker"], &[])
    }

    /// `hejnal worker` with settings of its own (say, a skewed clock).
    pub fn worker_with(&mut self, extra: &[(&str, &str)]) -> Service {
        self.spawn("worker", &["worker"], extra)
    }

    /// Wait until the gateway has received `n` SMS in all, up to `limit`; returns the wait.
    pub async fn sms_reach(&self, n: u64, limit: Duration) -> Duration {
        let started = Instant::now();
        while self.sms.count() < n {
            assert!(started.elapsed() < limit, "the gateway got {} SMS, not {n}, within {limit:?}", self.sms.count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }

    /// The officials' desk against the API: an author and an approver with tokens.
    pub async fn desk(&self) -> Desk {
        let store = hejnal::store::connect(&self.postgres.url("hejnal", "faults-setup"), 2).await.expect("store");
        Desk::open(&store, self.api_base.clone()).await.expect("officials")
    }

    /// SQL over the deliveries, on connections no fault cuts.
    pub async fn ledger(&self) -> Ledger {
        Ledger::connect(&self.postgres.url("hejnal", "faults-ledger")).await
    }

    fn spawn(&mut self, role: &str, args: &[&str], extra: &[(&str, &str)]) -> Service {
        self.started += 1;
        let name = format!("{role}-{}", self.started);
        let log = self.logs.path().join(format!("{name}.log"));
        let stderr = File::create(&log).expect("log file");
        let database = ("DATABASE_URL".to_string(), self.postgres.url("hejnal", &format!("hejnal-{role}")));
        let vars = self.settings.iter().cloned().chain([database]).chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let process = Process::spawn(args, vars, Stdio::from(stderr));
        Service { name, process, log }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::env::var_os("HEJNAL_TEST_KEEP_LOGS").is_some() {
            let kept = std::mem::replace(&mut self.logs, tempfile::tempdir().expect("temp dir")).keep();
            eprintln!("faults: process logs kept in {}", kept.display());
            return;
        }
        if !std::thread::panicking() {
            return;
        }
        // Show what the processes said, and keep their logs.
        for entry in std::fs::read_dir(self.logs.path()).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("---- {} (last {} lines)", entry.path().display(), tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let kept = std::mem::replace(&mut self.logs, tempfile::tempdir().expect("temp dir")).keep();
        eprintln!("faults: process logs kept in {}", kept.display());
    }
}

/// A `hejnal` process of the cluster, with its log file.
pub struct Service {
    pub name: String,
    pub process: Process,
    pub log: PathBuf,
}

impl Service {
    /// The sum of the numbers after `field` (e.g. `outcomes=`) on the log lines that say `what`.
    pub fn logged_counts(&self, what: &str, field: &str) -> u64 {
        let log = without_colours(&std::fs::read_to_string(&self.log).unwrap_or_default());
        log.lines()
            .filter(|line| line.contains(what))
            .filter_map(|line| line.split(field).nth(1))
            .filter_map(|rest| rest.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().ok())
            .sum()
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        self.process.signal("KILL");
        self.process.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("{} survived SIGKILL", self.name));
    }
}

/// The text of a log without its ANSI colour sequences (`ESC [ … m`).
fn without_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}
