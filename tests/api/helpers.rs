//! Test helpers: a fresh database and queue prefix per test, the app on port 0, and the
//! real `hejnal` binary as child processes. PostgreSQL and Redis come from
//! `scripts/services.sh` (HEJNAL_TEST_POSTGRES_URL, HEJNAL_TEST_REDIS_URL) or the local
//! defaults; with CI=true a missing service fails the test instead of skipping it.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use hejnal::{
    app::{Application, Role},
    config::{Config, Settings},
    store::{self, DynStore},
};
use hejnal_jobs::Queue;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store and SQLite queue, in a temporary folder.
    Embedded,
    /// PostgreSQL store (a fresh database) and Redis queue (a fresh prefix).
    Scaled,
}

#[path = "../support/ci.rs"]
mod ci;
pub use ci::in_ci;

/// Skip (outside CI) or fail (in CI) when a service is missing.
fn missing(what: &str, url: &str, why: impl std::fmt::Display) -> Option<TestEnv> {
    if in_ci() {
        panic!("{what} at {url} is unreachable ({why}); under CI=true these tests must run, not skip");
    }
    eprintln!("SKIPPED: {what} at {url} is unreachable ({why}); run ./scripts/test.sh to start one");
    None
}

pub fn postgres_admin_url() -> String {
    std::env::var("HEJNAL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("HEJNAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Where one test keeps its data; dropped, it removes the database and the queue keys.
pub struct TestEnv {
    pub backend: Backend,
    pub database_url: String,
    pub queue_url: String,
    pub prefix: String,
    _dir: tempfile::TempDir,
    pg_database: Option<String>,
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Option<TestEnv> {
        let dir = tempfile::tempdir().expect("temp dir");
        let prefix = format!("hejnal-test-{}", Uuid::new_v4().simple());
        match backend {
            Backend::Embedded => {
                let database_url = format!("sqlite://{}/hejnal.db", dir.path().display());
                let queue_url = format!("sqlite://{}/queue.db", dir.path().display());
                Some(TestEnv { backend, database_url, queue_url, prefix, _dir: dir, pg_database: None })
            }
            Backend::Scaled => {
                let admin = postgres_admin_url();
                let name = format!("hejnal_test_{}", Uuid::new_v4().simple());
                if let Err(e) = create_database(&admin, &name).await {
                    return missing("PostgreSQL", &admin, e);
                }
                let redis = redis_url();
                if let Err(e) = ping_redis(&redis).await {
                    drop_database(&admin, &name);
                    return missing("Redis", &redis, e);
                }
                let database_url = replace_database(&admin, &name);
                Some(TestEnv { backend, database_url, queue_url: redis, prefix, _dir: dir, pg_database: Some(name) })
            }
        }
    }

    /// Settings for this test: its own data, port 0, short heartbeats so recovery is quick.
    pub fn settings(&self) -> Settings {
        Settings {
            listen: "127.0.0.1:0".into(),
            database_url: self.database_url.clone(),
            database_max_connections: 5,
            queue_url: self.queue_url.clone(),
            queue_prefix: self.prefix.clone(),
            queue_heartbeat_secs: 1,
            queue_orphan_after_secs: 3,
            queue_poll_ms: 5,
            shutdown_timeout_secs: 10,
            log_level: "warn".into(),
            // The tests share one process: its priority is not theirs to change.
            nice: 0,
            ..Settings::default()
        }
    }

    pub fn config(&self) -> Config {
        Config::from_settings(self.settings()).expect("test settings are valid")
    }

    /// The same settings as environment variables, for child processes.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let s = self.settings();
        vec![
            ("DATABASE_URL".into(), s.database_url),
            ("HEJNAL_QUEUE_URL".into(), s.queue_url),
            ("HEJNAL_QUEUE_PREFIX".into(), s.queue_prefix),
            ("HEJNAL_QUEUE_HEARTBEAT_SECS".into(), s.queue_heartbeat_secs.to_string()),
            ("HEJNAL_QUEUE_ORPHAN_AFTER_SECS".into(), s.queue_orphan_after_secs.to_string()),
            ("HEJNAL_QUEUE_POLL_MS".into(), s.queue_poll_ms.to_string()),
            ("HEJNAL_DATABASE_MAX_CONNECTIONS".into(), "5".into()),
            ("HEJNAL_LOG_LEVEL".into(), "info".into()),
        ]
    }

    /// Run SQL of the test's own (triggers, functions) on its database, over a connection of
    /// its own.
    pub async fn execute_sql(&self, sql: String) {
        match self.backend {
            Backend::Embedded => {
                let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::Scaled => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    pub async fn store(&self) -> DynStore {
        let store = store::connect(&self.database_url, 5).await.expect("store");
        store.migrate().await.expect("migrate");
        store
    }

    /// A queue handle for pushing from the test itself (no workers, no pump).
    pub async fn queue(&self, store: &DynStore) -> Queue {
        Queue::connect(self.config().queue, store.backlog()).await.expect("queue")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(name) = self.pg_database.take() {
            drop_database(&postgres_admin_url(), &name);
        }
        if self.backend == Backend::Scaled {
            let (url, prefix) = (self.queue_url.clone(), self.prefix.clone());
            let _ = std::thread::spawn(move || delete_redis_keys(&url, &prefix)).join();
        }
    }
}

async fn create_database(admin: &str, name: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(admin))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    // The name is ours (hex), not user input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn drop_database(admin: &str, name: &str) {
    let (admin, name) = (admin.to_owned(), name.to_owned());
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
            }
        });
    })
    .join();
}

fn replace_database(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin).expect("admin url");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn ping_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let _: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| e.to_string())?;
    Ok(())
}

fn delete_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut conn) = client.get_connection() else { return };
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query(&mut conn).unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut conn);
    }
}

/// The app running in this test process, on port 0.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub stop: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The app's own store, for setting up and checking state.
    pub store: DynStore,
    /// The app's own queue, for what its workers did.
    pub queue: hejnal_jobs::Queue,
}

impl TestApp {
    pub async fn spawn(env: &TestEnv, role: Role) -> TestApp {
        TestApp::spawn_with(env.config(), role).await
    }

    pub async fn spawn_with(config: Config, role: Role) -> TestApp {
        // Warnings and errors of in-process apps show in the test output (and in CI's log).
        hejnal::telemetry::init_logs("warn", false);
        let app = Application::build(config, role).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port().unwrap_or(0));
        let stop = app.stop_token();
        let store = app.state().store.clone();
        let queue = app.state().queue.clone();
        let handle = tokio::spawn(app.run_until_stopped());
        TestApp { address, client: reqwest::Client::new(), stop, handle, store, queue }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("request")
    }

    /// Stop gracefully and wait for it.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.handle.await.expect("app task")
    }
}

#[path = "../support/process.rs"]
mod process;
pub use process::Process;

impl Process {
    /// `hejnal <args>` on this test's data, with `extra` variables; its log in the test output.
    pub fn start(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Process {
        let vars = env.env_vars().into_iter().chain(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Process::spawn(args, vars, Stdio::inherit())
    }
}

/// Poll `check` until it gives a value or `limit` passes. The limit is a deadline with a
/// wide margin, never a speed target.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run an async test body once per backend; the name says which one failed.
#[macro_export]
macro_rules! both_backends {
    ($(#[$meta:meta])* async fn $name:ident($env:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn body($env: $crate::helpers::TestEnv) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                if let Some(env) = $crate::helpers::TestEnv::new($crate::helpers::Backend::Embedded).await {
                    body(env).await
                }
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres_and_redis() {
                if let Some(env) = $crate::helpers::TestEnv::new($crate::helpers::Backend::Scaled).await {
                    body(env).await
                }
            }
        }
    };
}

/// The first run of a probe, once one has started (within `limit`).
pub async fn probe_started(store: &DynStore, id: Uuid, limit: Duration, what: &str) -> hejnal::store::ProbeRun {
    eventually(limit, what, || async move { store.probe_runs(&id.to_string()).await.unwrap().into_iter().next() }).await
}

/// A finished run of a probe, once there is one (within `limit`).
pub async fn probe_finished(store: &DynStore, id: Uuid, limit: Duration, what: &str) -> hejnal::store::ProbeRun {
    eventually(limit, what, || async move {
        store.probe_runs(&id.to_string()).await.unwrap().into_iter().find(|r| r.finished_at.is_some())
    })
    .await
}

/// An official of `role` with a fresh API token, written straight into the store.
pub async fn token_for(store: &DynStore, email: &str, role: &str) -> String {
    store.add_official(email, role, "$argon2id$placeholder").await.unwrap();
    let token = format!("hj_test_{role}_{}", hejnal::residents::secrets::random_token(8));
    store.add_token(email, &hejnal::residents::secrets::digest(&token), 30).await.unwrap();
    token
}
