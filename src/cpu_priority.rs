//! A larger share of the CPU for the processes that answer HTTP. The answers' p99 at 70% of
//! the maximum was lost when another process took a core for a few hundred milliseconds
//! (RabbitMQ's check, once a minute, on the bench machine): the backlog that builds then takes
//! longer to clear than the p99 allows. Asking the scheduler for a larger share keeps most of
//! the cores for the answers while such a burst runs (`docs/performance.md`, session 29). On
//! SQLite that was enough; on PostgreSQL the answers also wait on the server's processes, whose
//! share is the operator's to set.
//!
//! The scheduler weighs niceness within a group of processes, and the groups against each
//! other. Under systemd each unit is a control group, weighed by its `CPUWeight=` (the shipped
//! units set it). Outside control groups, with `sched_autogroup_enabled`, each session is a
//! group, weighed by the nice written to `/proc/self/autogroup`. So both are raised: every
//! thread's niceness, which new threads inherit, and the session's group, shared with the
//! session's other processes. Lowering niceness needs `CAP_SYS_NICE` (or `LimitNICE=`); a
//! process without it says so once and runs as it was started. A priority already higher
//! than the one asked for is left alone.

use std::{fs, io, path::Path, sync::OnceLock};

const AUTOGROUP: &str = "/proc/self/autogroup";

/// What [`raise`] changed.
#[derive(Default)]
struct Raised {
    threads: usize,
    group: bool,
}

/// Raise this process's CPU priority to `nice` (negative: a larger share), once per process,
/// logging what was done or why it could not be.
pub fn raise_once(nice: i32) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| match raise(nice) {
        Ok(r) => tracing::info!(nice, threads = r.threads, session_group = r.group, "CPU priority raised"),
        Err(e) => tracing::info!(nice, error = %e, "cannot raise the CPU priority; another process's burst may delay answers (README, Operations)"),
    });
}

/// This thread's niceness and its session group's, as the kernel has them now: what a report
/// of a run should say it ran at.
pub fn describe() -> String {
    let thread = thread_nice(0).map_or_else(|e| format!("unknown ({e})"), |n| n.to_string());
    let group = match fs::read_to_string(AUTOGROUP) {
        Ok(line) => group_nice(&line).map_or("unknown".into(), |n| format!("session group nice {n}")),
        Err(_) => "no session groups".into(),
    };
    format!("nice {thread}; {group}")
}

fn group_nice(line: &str) -> Option<i32> {
    line.split_whitespace().last().and_then(|v| v.parse().ok())
}

/// Every thread of this process, then the session's autogroup where the kernel has one.
fn raise(nice: i32) -> io::Result<Raised> {
    let mut raised = Raised::default();
    for entry in fs::read_dir("/proc/self/task")? {
        let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse::<libc::id_t>().ok()) else { continue };
        match raise_thread(tid, nice) {
            Ok(changed) => raised.threads += usize::from(changed),
            // A thread that ended since the listing.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    raised.group = raise_group(Path::new(AUTOGROUP), nice)?;
    Ok(raised)
}

/// Set thread `tid` to `nice` unless it already has that priority or a higher one. Whether it
/// changed.
fn raise_thread(tid: libc::id_t, nice: i32) -> io::Result<bool> {
    if thread_nice(tid)? <= nice {
        return Ok(false);
    }
    // SAFETY: plain system call on integers; on Linux PRIO_PROCESS with a thread id sets that
    // one thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

/// `tid` 0: the calling thread.
fn thread_nice(tid: libc::id_t) -> io::Result<i32> {
    // getpriority may return -1 as a value: only errno tells an error.
    // SAFETY: errno is this thread's; getpriority is a plain system call.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        let error = io::Error::last_os_error();
        if nice == -1 && error.raw_os_error() != Some(0) { Err(error) } else { Ok(nice) }
    }
}

/// Write `nice` to the autogroup file (`/autogroup-<n> nice <v>` when read) unless the group
/// has that priority or a higher one already. Whether it changed; a kernel without autogroups
/// (no file) changes nothing.
fn raise_group(file: &Path, nice: i32) -> io::Result<bool> {
    let now = match fs::read_to_string(file) {
        Ok(now) => now,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if group_nice(&now).is_some_and(|c| c <= nice) {
        return Ok(false);
    }
    fs::write(file, nice.to_string())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privileged() -> bool {
        // SAFETY: plain system call.
        unsafe { libc::geteuid() == 0 }
    }

    fn own_tid() -> libc::id_t {
        // SAFETY: plain system call.
        unsafe { libc::gettid() as libc::id_t }
    }

    /// On a thread of its own, so that the test's other threads keep their priority.
    #[test]
    fn a_thread_is_raised_when_allowed_and_one_already_higher_is_left_alone() {
        std::thread::spawn(|| {
            let tid = own_tid();
            let before = thread_nice(tid).unwrap();
            let outcome = raise_thread(tid, before - 1);
            if privileged() {
                assert!(outcome.unwrap(), "raised");
                assert_eq!(thread_nice(tid).unwrap(), before - 1);
                assert!(!raise_thread(tid, before).unwrap(), "a lower priority is not taken");
                assert_eq!(thread_nice(tid).unwrap(), before - 1, "and the higher one stays");
            } else {
                assert_eq!(outcome.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
                assert_eq!(thread_nice(tid).unwrap(), before);
            }
        })
        .join()
        .unwrap();
    }

    /// Against a file standing in for `/proc/self/autogroup`, read as the kernel writes it.
    #[test]
    fn the_session_group_is_raised_unless_already_higher() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("autogroup");
        fs::write(&file, "/autogroup-85 nice 0\n").unwrap();
        assert!(raise_group(&file, -10).unwrap());
        assert_eq!(fs::read_to_string(&file).unwrap(), "-10");

        fs::write(&file, "/autogroup-85 nice -15\n").unwrap();
        assert!(!raise_group(&file, -10).unwrap());
        assert_eq!(fs::read_to_string(&file).unwrap(), "/autogroup-85 nice -15\n", "left as it was");
    }

    #[test]
    fn a_kernel_without_autogroups_is_not_an_error() {
        let missing = Path::new("/nonexistent/autogroup");
        assert!(!raise_group(missing, -10).unwrap(), "nothing to raise, and no error");
    }
}
