//! The service under measure, `hejnal serve`, in a process of its own: its peak RSS is then
//! the service's alone, not the sinks' and the bench's (which share only the machine with it).
//! It inherits the bench's environment, so any `HEJNAL_*` setting given to the bench applies.

use std::{process::Stdio, time::Duration};

use anyhow::Context;
use tokio::process::{Child, Command};

use crate::config::Config;

/// How long a fresh service may take to migrate and answer /readyz.
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long it may take to stop after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);

pub(super) struct Served {
    child: Child,
    pub(super) base_url: String,
}

/// The settings the bench chose, as the environment variables the service reads.
fn environment(config: &Config, port: u16) -> Vec<(&'static str, String)> {
    let c = &config.channels;
    let mut env = vec![
        ("HEJNAL_LISTEN", format!("127.0.0.1:{port}")),
        ("HEJNAL_PUBLIC_URL", format!("http://127.0.0.1:{port}/")),
        ("DATABASE_URL", config.database_url.clone()),
        ("HEJNAL_QUEUE_URL", config.queue.url.clone()),
        ("HEJNAL_QUEUE_PREFIX", config.queue.prefix.clone()),
        ("HEJNAL_MIGRATE_ON_START", "true".into()),
        ("HEJNAL_PUSH_ALLOW_LOCAL", c.push_allow_local.to_string()),
    ];
    let optional = [
        ("HEJNAL_SMS_PROVIDER", &c.sms_provider),
        ("HEJNAL_SMS_URL", &c.sms_url),
        ("HEJNAL_SMS_SENDER", &c.sms_sender),
        ("HEJNAL_SMTP_URL", &c.smtp_url),
        ("HEJNAL_EMAIL_FROM", &c.email_from),
        ("HEJNAL_VAPID_PRIVATE_KEY", &c.vapid_private_key),
        ("HEJNAL_VAPID_SUBJECT", &c.vapid_subject),
    ];
    env.extend(optional.into_iter().filter_map(|(name, value)| value.clone().map(|v| (name, v))));
    env
}

impl Served {
    /// Start this executable as `hejnal serve` with the bench's settings; returns once /readyz
    /// answers 200.
    pub(super) async fn start(config: &Config) -> anyhow::Result<Served> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = std::process::Command::new(std::env::current_exe().context("the bench's own executable")?);
        command.arg("serve").envs(environment(config, port)).stdin(Stdio::null());
        die_with_parent(&mut command);
        let child = Command::from(command).kill_on_drop(true).spawn().context("cannot start `hejnal serve`")?;
        let mut served = Served { child, base_url: format!("http://127.0.0.1:{port}") };
        served.ready().await?;
        Ok(served)
    }

    async fn ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.base_url);
        let started = std::time::Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < START_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("`hejnal serve` exited at start ({status}); its log is above");
            }
            match client.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("`hejnal serve` was not ready within {} s: {last}", START_LIMIT.as_secs())
    }

    /// The service's peak resident memory so far, in MB (10⁶ bytes).
    pub(super) fn peak_rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        super::super::rss::field_mb(&status, "VmHWM:")
    }

    /// SIGTERM, as an operator stops it; killed if it has not stopped in time.
    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a pid we spawned and have not yet reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(STOP_LIMIT, self.child.wait()).await {
            Ok(status) => anyhow::ensure!(status?.success(), "`hejnal serve` stopped with a failure"),
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("`hejnal serve` did not stop within {} s of SIGTERM", STOP_LIMIT.as_secs());
            }
        }
        Ok(())
    }
}

/// The child gets SIGTERM when the thread that started it ends, so a bench that is killed
/// (SIGKILL, where `kill_on_drop` never runs) does not leave a service behind holding its port
/// and database. The bench starts it from a runtime worker thread, which lives as long as the
/// bench does.
fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let bench = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec this calls only prctl(2) and getppid(2), both
    // async-signal-safe, and allocates nothing (an OS error code needs no allocation).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The bench may have died before prctl: then nobody would send the signal.
            if libc::getppid() != bench {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    /// The spawning thread stands in for the bench: when it ends, the child is signalled.
    #[test]
    fn the_service_is_terminated_when_its_starter_ends() {
        let mut child = std::thread::spawn(|| {
            let mut command = std::process::Command::new("sleep");
            command.arg("60");
            super::die_with_parent(&mut command);
            command.spawn().unwrap()
        })
        .join()
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "sleep 60 ended by {status:?}");
    }
}
