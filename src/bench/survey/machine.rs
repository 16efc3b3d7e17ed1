//! Two things the machine does around a phase that the app cannot see, counted before and after
//! it:
//!
//! - **How often its cores went to sleep** (cpuidle's entries into a sleeping state, all cores).
//!   On a virtual machine a core that sleeps leaves the guest (`HLT`), and waking it again costs
//!   the host a round trip. At the fixed rate the threads go idle between answers, so the cores
//!   slept about four times as often per answer as at the maximum (`docs/performance.md`,
//!   session 25). A guest may poll a while before it sleeps (`haltpoll`'s
//!   `guest_halt_poll_ns`), and the table says how long this one does.
//! - **What this process read from disk** (`read_bytes` of `/proc/self/io`): pages of the
//!   database that were no longer in the page cache. Each such read holds up the commit that
//!   needs the page.

/// The counts so far, or between two moments ([`Counts::since`]); `None` where the machine does
/// not give them.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub(super) struct Counts {
    pub sleeps: Option<u64>,
    pub read_bytes: Option<u64>,
}

impl Counts {
    pub fn now() -> Counts {
        Counts { sleeps: core_sleeps(), read_bytes: disk_read_bytes() }
    }

    pub fn since(self, before: Counts) -> Counts {
        let diff = |now: Option<u64>, then: Option<u64>| Some(now?.saturating_sub(then?));
        Counts { sleeps: diff(self.sleeps, before.sleeps), read_bytes: diff(self.read_bytes, before.read_bytes) }
    }
}

/// How long an idle core of this guest polls before it sleeps, in ns; `None` where the
/// `haltpoll` idle driver is not loaded.
pub(super) fn guest_halt_poll_ns() -> Option<u64> {
    std::fs::read_to_string("/sys/module/haltpoll/parameters/guest_halt_poll_ns").ok()?.trim().parse().ok()
}

/// Entries into a sleeping idle state, all cores together. The `POLL` state spins and does not
/// leave the core, so it is not counted.
fn core_sleeps() -> Option<u64> {
    let mut total = None;
    for cpu in std::fs::read_dir("/sys/devices/system/cpu").ok()?.flatten() {
        let Ok(states) = std::fs::read_dir(cpu.path().join("cpuidle")) else { continue };
        for state in states.flatten() {
            let read = |name: &str| std::fs::read_to_string(state.path().join(name)).ok();
            if read("name").is_some_and(|n| n.trim() == "POLL") {
                continue;
            }
            if let Some(n) = read("usage").and_then(|u| u.trim().parse::<u64>().ok()) {
                total = Some(total.unwrap_or(0) + n);
            }
        }
    }
    total
}

/// Bytes this process has had read from storage so far.
fn disk_read_bytes() -> Option<u64> {
    io_field(&std::fs::read_to_string("/proc/self/io").ok()?, "read_bytes:")
}

/// A field of a `/proc/<pid>/io` text.
fn io_field(io: &str, field: &str) -> Option<u64> {
    io.lines().find_map(|l| l.strip_prefix(field))?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_of_proc_io_is_read_by_its_name() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 3\nread_bytes: 40960\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(io_field(io, "read_bytes:"), Some(40960));
        assert_eq!(io_field(io, "write_bytes:"), Some(8192));
        assert_eq!(io_field(io, "missing:"), None);
    }

    #[test]
    fn what_happened_between_two_moments_is_their_difference_and_unknown_stays_unknown() {
        let before = Counts { sleeps: Some(100), read_bytes: None };
        let after = Counts { sleeps: Some(250), read_bytes: Some(4096) };
        assert_eq!(after.since(before), Counts { sleeps: Some(150), read_bytes: None });
    }

    /// On Linux this process reads its own I/O counts, which only grow.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_its_own_disk_counts() {
        let before = Counts::now();
        let after = Counts::now();
        let (Some(then), Some(now)) = (before.read_bytes, after.read_bytes) else { panic!("/proc/self/io gives no read_bytes") };
        assert!(now >= then, "read_bytes fell from {then} to {now}");
    }
}
