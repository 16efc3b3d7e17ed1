//! Which other process used the most CPU in a window: the table's busiest windows of other
//! processes' CPU then say who it was, so that a miss under a burst elsewhere explains itself
//! (on session 27's machine, RabbitMQ's Erlang VM, `beam.smp`, which it starts every minute to
//! check its epmd: `docs/performance.md`).

use std::collections::HashMap;

use super::others::{process_busy, thread_name};

/// Every process's name and busy ticks at one moment, this process left out.
pub(super) struct ProcessTicks(HashMap<u32, (String, u64)>);

impl ProcessTicks {
    /// Read `/proc`; processes that end meanwhile, or cannot be read, are left out.
    pub fn now() -> ProcessTicks {
        let me = std::process::id();
        let Ok(dir) = std::fs::read_dir("/proc") else { return ProcessTicks(HashMap::new()) };
        let read = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((thread_name(&stat)?.to_owned(), process_busy(&stat)?))
        };
        let pids = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()).filter(|&pid| pid != me);
        ProcessTicks(pids.filter_map(|pid| Some((pid, read(pid)?))).collect())
    }

    /// The process that used the most ticks since `before`, with those ticks; None if none
    /// used any. A process not there before counts all its ticks: it started in between.
    pub fn busiest_since(&self, before: &ProcessTicks) -> Option<(String, u64)> {
        self.0
            .iter()
            .map(|(pid, (name, ticks))| (name, ticks.saturating_sub(before.0.get(pid).map_or(0, |(_, then)| *then))))
            .filter(|&(_, used)| used > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(name, used)| (name.clone(), used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks(list: &[(u32, &str, u64)]) -> ProcessTicks {
        ProcessTicks(list.iter().map(|&(pid, name, t)| (pid, (name.to_owned(), t))).collect())
    }

    #[test]
    fn the_busiest_is_the_largest_rise_and_a_new_process_counts_all_its_ticks() {
        let before = ticks(&[(1, "init", 500), (20, "redis-server", 40), (30, "postgres", 10)]);
        let after = ticks(&[(1, "init", 501), (20, "redis-server", 43), (30, "postgres", 12)]);
        assert_eq!(after.busiest_since(&before), Some(("redis-server".into(), 3)));
        let erlang_started = ticks(&[(1, "init", 501), (20, "redis-server", 43), (31, "beam.smp", 9)]);
        assert_eq!(erlang_started.busiest_since(&after), Some(("beam.smp".into(), 9)), "a process that ended drops out; a new one counts whole");
        assert_eq!(after.busiest_since(&after), None, "nothing ran");
    }

    #[test]
    fn this_process_is_left_out_and_others_are_read() {
        let here = ProcessTicks::now();
        assert!(!here.0.contains_key(&std::process::id()));
        assert!(here.0.contains_key(&1), "the machine's first process is read: {:?}", here.0.keys().take(5).collect::<Vec<_>>());
    }
}
