//! The CPU that other processes on the machine use while a phase runs, in windows of 100 ms.
//! The bench shares two cores with whatever else the machine runs; a short burst elsewhere
//! (RabbitMQ, for one, starts a whole Erlang VM every minute to check its epmd) delays every
//! answer behind it, and the table says when that happened beside when the late answers were.
//! Beside it, the time the hypervisor gave this machine's cores to other machines (`steal`),
//! which nothing inside the machine shows otherwise.

use std::time::Duration;

use super::{
    processes::ProcessTicks,
    sampler::{Sampler, going_on},
};

/// Kernel clock ticks per second in `/proc` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The sampling period.
pub(super) const WINDOW: Duration = Duration::from_millis(100);

/// A sampler running on a thread of its own until [`OthersCpu::stop`].
pub(super) struct OthersCpu(Sampler<Windows>);

/// Per window of [`WINDOW`], in cores: what other processes used, the one of them that used
/// most (None if none ran), and what was stolen.
#[derive(Default)]
pub(super) struct Windows {
    pub others: Vec<f64>,
    pub busiest: Vec<Option<(String, f64)>>,
    pub steal: Vec<f64>,
}

impl OthersCpu {
    pub fn start() -> OthersCpu {
        OthersCpu(Sampler::spawn(|flag| {
            let mut windows = Windows::default();
            let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / WINDOW.as_secs_f64();
            let (mut last, mut last_processes) = (ticks(), ProcessTicks::now());
            while going_on(flag) {
                std::thread::sleep(WINDOW);
                let (now, processes) = (ticks(), ProcessTicks::now());
                if let (Some(then), Some(now)) = (last, now) {
                    let others = (now.machine.busy - then.machine.busy).saturating_sub(now.mine - then.mine);
                    windows.others.push(cores(others));
                    windows.busiest.push(processes.busiest_since(&last_processes).map(|(name, used)| (name, cores(used))));
                    windows.steal.push(cores(now.machine.steal.saturating_sub(then.machine.steal)));
                }
                (last, last_processes) = (now, processes);
            }
            windows
        }))
    }

    /// The cores other processes used, and those stolen, in each window since the start;
    /// empty where `/proc` is not readable.
    pub fn stop(self) -> Windows {
        self.0.stop().unwrap_or_default()
    }
}

/// The CPU this process (the app, the load generator and the bench's own bookkeeping) has
/// used so far, in seconds.
pub(super) fn own_cpu_seconds() -> Option<f64> {
    Some(own_ticks()? as f64 / TICKS_PER_SECOND)
}

/// The CPU this process has used since `before` (from [`own_cpu_seconds`]), in seconds.
pub(super) fn cpu_since(before: Option<f64>) -> Option<f64> {
    own_cpu_seconds().zip(before).map(|(now, then)| now - then)
}

/// The CPU the threads of this process whose name is `name` have used so far, in seconds
/// (threads that ended are not counted). None if no thread has that name: a zero would put
/// all of their CPU on the app.
pub(super) fn threads_cpu_seconds(name: &str) -> Option<f64> {
    let (mut ticks, mut found) = (0, false);
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        if thread_name(&stat) == Some(name) {
            ticks += process_busy(&stat)?;
            found = true;
        }
    }
    found.then(|| ticks as f64 / TICKS_PER_SECOND)
}

/// The name in parentheses of a `stat` line.
pub(super) fn thread_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// Ticks of the whole machine and of this process, at one moment.
#[derive(Clone, Copy)]
struct Ticks {
    machine: MachineTicks,
    mine: u64,
}

fn ticks() -> Option<Ticks> {
    Some(Ticks { machine: machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?, mine: own_ticks()? })
}

/// Busy ticks of this process, its ended threads included.
fn own_ticks() -> Option<u64> {
    process_busy(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Of the `cpu` line: `busy` is user + nice + system + irq + softirq (idle, iowait and steal
/// left out); `steal` is the time another machine ran while this one had work.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MachineTicks {
    busy: u64,
    steal: u64,
}

fn machine_ticks(stat: &str) -> Option<MachineTicks> {
    let fields: Vec<u64> = stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().map(|f| f.parse().ok()).collect::<Option<_>>()?;
    Some(MachineTicks { busy: [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum(), steal: fields.get(7).copied().unwrap_or(0) })
}

/// utime + stime of a `stat` line of a process or thread (fields 14 and 15; the name in parentheses may hold spaces).
pub(super) fn process_busy(stat: &str) -> Option<u64> {
    let after_name = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ticks_are_read_from_the_machine_and_process_lines() {
        let machine = machine_ticks("cpu  10 1 20 500 7 3 4 2 0 0\ncpu0 5 0 10 250 3 1 2 1 0 0\n");
        assert_eq!(machine, Some(MachineTicks { busy: 10 + 1 + 20 + 3 + 4, steal: 2 }));
        let mine = "4242 (hejnal bench) S 1 2 3 0 -1 4194560 900 0 0 0 123 45 0 0 20 0 9 0 1000 100000 2000";
        assert_eq!(process_busy(mine), Some(123 + 45));
        assert_eq!(thread_name(mine), Some("hejnal bench"));
        assert_eq!(machine_ticks("intr 1 2 3"), None);
    }

    #[test]
    fn threads_are_found_by_name_and_a_name_no_thread_has_is_none() {
        let (ready, wait) = std::sync::mpsc::channel();
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let probe = std::thread::Builder::new().name("cpu-probe".into()).spawn(move || {
            ready.send(()).unwrap();
            finish.recv().ok();
        }).unwrap();
        wait.recv().unwrap();
        assert!(threads_cpu_seconds("cpu-probe").is_some(), "the probe thread is alive and named");
        assert_eq!(threads_cpu_seconds("no-such-thread"), None);
        done.send(()).unwrap();
        probe.join().unwrap();
    }
}
