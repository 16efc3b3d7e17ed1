//! A `hejnal` child process, killed when dropped. Shared by the `api` and `faults` test
//! binaries, which each include this file with `#[path]`.

use std::{
    ffi::OsStr,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

pub struct Process {
    pub child: Child,
}

impl Process {
    /// Start `hejnal <args>` with these variables added to its environment; its standard
    /// error goes to `stderr`, its standard output nowhere.
    pub fn spawn<K, V>(args: &[&str], vars: impl IntoIterator<Item = (K, V)>, stderr: Stdio) -> Process
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hejnal"));
        // Its session's CPU priority is the test run's, not its to raise.
        cmd.args(args).env("HEJNAL_NICE", "0").envs(vars).stdout(Stdio::null()).stderr(stderr);
        Process { child: cmd.spawn().expect("start hejnal") }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Wait for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
