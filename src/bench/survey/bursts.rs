//! Another process's burst, on purpose (`--bursts`): during the fixed rate, a busy shell loop
//! in a session of its own runs for `--burst-ms` at evenly spaced moments. It stands in for
//! what the bench machine's other services do now and then (RabbitMQ's check takes a core for
//! 0.2-0.4 s every minute), so that two builds or settings can be compared under the same
//! interference instead of waiting for it. A session of its own matters: where the kernel
//! groups processes by session, the loop then competes with the bench as a separate group, as
//! another service does.

use std::{
    io,
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// The bursts of one phase, on a thread of their own.
pub(super) struct Bursts(JoinHandle<Result<Vec<f64>, String>>);

/// What the table says: how many, how long, and when each began (s into the phase).
pub(super) struct Done {
    pub length: Duration,
    pub began: Result<Vec<f64>, String>,
}

impl Bursts {
    /// `count` bursts of `length` spread over a phase of `phase`, the first a
    /// `count + 1`-th of the way in.
    pub fn start(count: u32, length: Duration, phase: Duration) -> Bursts {
        let start = Instant::now();
        Bursts(std::thread::spawn(move || {
            let mut began = Vec::new();
            for due in due_times(count, phase) {
                std::thread::sleep(due.saturating_sub(start.elapsed()));
                began.push(start.elapsed().as_secs_f64());
                burst(length).map_err(|e| format!("cannot start a busy loop: {e}"))?;
            }
            Ok(began)
        }))
    }

    pub fn stop(self, length: Duration) -> Done {
        let began = self.0.join().unwrap_or_else(|_| Err("the bursts' thread panicked".into()));
        Done { length, began }
    }
}

fn due_times(count: u32, phase: Duration) -> Vec<Duration> {
    (1..=count).map(|k| phase * k / (count + 1)).collect()
}

/// One busy loop for `length`, then killed.
fn burst(length: Duration) -> io::Result<()> {
    let mut child = busy_process()?;
    std::thread::sleep(length);
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Started by util-linux's `setsid`, which makes the session and execs the loop in place.
/// Not by `setsid()` in a `pre_exec` hook: with one, the standard library forks, and forking
/// the bench, which holds the app and its hundreds of MB, stopped every answer for up to 0.2 s
/// (seen: all of two windows late while the loop had 0.4 of a core). Without one it spawns
/// with `posix_spawn`, which shares the memory until the exec.
fn busy_process() -> io::Result<Child> {
    Command::new("setsid").args(["sh", "-c", "while :; do :; done"]).stdin(Stdio::null()).stdout(Stdio::null()).spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_spread_evenly_over_the_phase() {
        assert_eq!(due_times(3, Duration::from_secs(10)), [2.5, 5.0, 7.5].map(Duration::from_secs_f64));
        assert!(due_times(0, Duration::from_secs(10)).is_empty());
    }

    /// Kills the loop however the test ends: a loop left behind would spin for good.
    struct KillOnDrop(Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// The loop leads a session of its own and uses a core until it is killed.
    #[test]
    fn a_busy_loop_runs_in_a_session_of_its_own_until_killed() {
        let mut child = KillOnDrop(busy_process().unwrap());
        let pid = child.0.id();
        // Fields after the command's closing parenthesis: state, ppid, pgrp, session, …, utime
        // and stime (12th and 13th). `setsid` may not have made the session yet when it is
        // first read.
        let fields = || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.rsplit_once(") ").unwrap().1.split_whitespace().map(String::from).collect::<Vec<_>>()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let f = fields();
            let cpu_ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
            if f[3] == pid.to_string() && cpu_ticks >= 20 {
                break;
            }
            assert!(Instant::now() < deadline, "10 s and the loop's session is {} (want {pid}) with {cpu_ticks} ticks of CPU", f[3]);
            std::thread::sleep(Duration::from_millis(50));
        }
        child.0.kill().unwrap();
        assert!(!child.0.wait().unwrap().success(), "killed, not ended on its own");
    }
}
