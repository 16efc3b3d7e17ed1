//! Throwaway servers on free ports, owned by one scenario: a fault that stops, pauses or
//! flushes a server must never touch the shared 5432/6379 that other tests and CI use.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tempfile::TempDir;

use super::tools;

/// `redis-server` without persistence, as a child of the test.
pub struct Redis {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> Redis {
        let mut redis = Redis { port: tools::free_port(), dir: tempfile::tempdir().expect("temp dir"), child: None };
        redis.spawn().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start the server (again) on its port, empty, and wait until it answers.
    pub async fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let child = Command::new(tools::redis_server())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.query(&["PING"]).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer within 20 s", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One command on a fresh connection.
    pub async fn query(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await
    }

    /// `SHUTDOWN NOSAVE`: everything in memory is gone; waits for the process to end.
    pub async fn shutdown_nosave(&mut self) {
        // The server closes the connection instead of answering.
        let _ = self.query(&["SHUTDOWN", "NOSAVE"]).await;
        let mut child = self.child.take().expect("redis is running");
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("try_wait").is_none() {
            assert!(Instant::now() < deadline, "redis-server did not stop after SHUTDOWN NOSAVE");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn flushall(&self) {
        self.query(&["FLUSHALL"]).await.expect("FLUSHALL");
    }

    /// `CLIENT PAUSE ms`: every client's commands wait that long.
    pub async fn pause(&self, ms: u64) {
        self.query(&["CLIENT", "PAUSE", &ms.to_string()]).await.expect("CLIENT PAUSE");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A PostgreSQL cluster of its own (`initdb` + `pg_ctl`, as the `postgres` user when we are
/// root), without durability, stopped when dropped.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = tools::postgres_bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = tools::free_port();
        if tools::is_root() {
            run(Command::new("chown").arg("postgres:").arg(dir.path()), "chown the PostgreSQL folder");
        }
        let data = dir.path().join("data");
        run(
            as_postgres(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]),
            "initdb",
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n",
            dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        let log = dir.path().join("postgres.log");
        run(as_postgres(&bin.join("pg_ctl")).arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "-t", "60", "start"]), "pg_ctl start");
        Postgres { port, bin, dir }
    }

    /// A database of its own; returns its URL, tagged with `application_name`.
    pub async fn create_database(&self, name: &str, application: &str) -> String {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres", "faults-admin")).await.expect("connect to the throwaway PostgreSQL");
        // The name is ours, not input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await.expect("CREATE DATABASE");
        self.url(name, application)
    }

    pub fn url(&self, database: &str, application: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}?application_name={application}", self.port)
    }

    /// `pg_terminate_backend` on every connection whose application name starts with `prefix`;
    /// returns how many it cut.
    pub async fn terminate(&self, prefix: &str) -> usize {
        use sqlx::Connection;
        let Ok(mut conn) = sqlx::PgConnection::connect(&self.url("postgres", "faults-admin")).await else { return 0 };
        let cut: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()",
        )
        .bind(format!("{prefix}%"))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        cut.iter().filter(|(done,)| *done).count()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(&self.bin.join("pg_ctl")).arg("-D").arg(&data).args(["-m", "immediate", "stop"]).stdout(Stdio::null()).status();
    }
}

/// The command, run as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if tools::is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(out.status.success(), "{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("open postgresql.conf");
    file.write_all(text.as_bytes()).expect("write postgresql.conf");
}
