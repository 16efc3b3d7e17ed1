//! How fast the machine's cores ran during a phase: every 100 ms a thread of its own runs the
//! same two fixed pieces of work, one computing and one reading memory, and notes the CPU time
//! each took. On a virtual machine a core can run
//! slower for a while without stopping (another machine busy on the same physical core, its
//! caches or memory), and nothing else inside the machine shows it. The fixed rate is a share
//! of the maximum measured in the phase before it: if the cores ran a third slower meanwhile,
//! 70% of that maximum asks for all of them.
//!
//! The time is the thread's CPU time, not the clock's, so waiting for a core does not count:
//! only how long the work took once it ran. Both pieces together cost about 0.8 ms of CPU each
//! time.

use std::{hint::black_box, time::Duration};

use super::{
    others::WINDOW,
    percentile,
    sampler::{Sampler, going_on},
};

/// The fixed work's size: its buffer, and how many passes over it.
const WORDS: usize = 8 * 1024;
const PASSES: usize = 12;
/// The memory part: a walk in random order over a buffer larger than a core's own caches,
/// as the app's pages and connection buffers are; each step waits for the last.
const CHASE_WORDS: usize = 1 << 20;
const CHASE_STEPS: usize = 4096;

/// A probe running on a thread of its own until [`SpeedProbe::stop`].
pub(super) struct SpeedProbe(Sampler<Took>);

/// The CPU time of each run of the two fixed pieces of work.
#[derive(Default)]
pub(super) struct Took {
    pub compute: Vec<Duration>,
    pub memory: Vec<Duration>,
}

impl SpeedProbe {
    /// The probe's buffers are built before it starts, so that a phase started after it has its
    /// first run at once. The probe runs once whatever happens, then every 100 ms until
    /// stopped: a short phase on a busy machine still gets a run (building the walk's buffer
    /// inside the phase once left a half-second phase of the CLI test with none).
    pub fn start() -> SpeedProbe {
        let mut buffer: Vec<u64> = (0..WORDS as u64).collect();
        let cycle = random_cycle(CHASE_WORDS);
        SpeedProbe(Sampler::spawn(move |flag| {
            let mut took = Took::default();
            loop {
                if let Some(cpu) = cpu_time_of(|| fixed_work(&mut buffer)) {
                    took.compute.push(cpu);
                }
                if let Some(cpu) = cpu_time_of(|| chase(&cycle)) {
                    took.memory.push(cpu);
                }
                std::thread::sleep(WINDOW);
                if !going_on(flag) {
                    break took;
                }
            }
        }))
    }

    /// The CPU time each run of the fixed work took; empty where the thread's CPU clock
    /// cannot be read.
    pub fn stop(self) -> Took {
        self.0.stop().unwrap_or_default()
    }
}

/// Mixing passes over a buffer that fits a core's own cache, each word depending on the one
/// before, so the compiler can neither skip nor spread the work.
fn fixed_work(buffer: &mut [u64]) {
    let mut carry = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..PASSES {
        for word in buffer.iter_mut() {
            carry = (carry ^ *word).wrapping_mul(0xBF58_476D_1CE4_E5B9).rotate_left(27);
            *word = carry;
        }
    }
    black_box(carry);
}

/// A single cycle through `len` slots in random order: `next[i]` is the slot after `i`.
fn random_cycle(len: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..len as u32).collect();
    // A fixed seed: every phase walks the same path.
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for i in (1..len).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let mut next = vec![0u32; len];
    for pair in order.windows(2) {
        next[pair[0] as usize] = pair[1];
    }
    next[order[len - 1] as usize] = order[0];
    next
}

fn chase(next: &[u32]) {
    let mut at = 0u32;
    for _ in 0..CHASE_STEPS {
        at = next[at as usize];
    }
    black_box(at);
}

/// The CPU time this thread spent in `work`.
fn cpu_time_of(work: impl FnOnce()) -> Option<Duration> {
    let before = thread_cpu_time()?;
    work();
    thread_cpu_time()?.checked_sub(before)
}

fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    (read == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// The median of a phase's runs, in µs; None without runs.
pub(super) fn median_us(took: &[Duration]) -> Option<f64> {
    let us: Vec<f64> = took.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    (!us.is_empty()).then(|| percentile(&us, 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_work_takes_cpu_time_and_the_probe_samples_it() {
        let probe = SpeedProbe::start();
        // Two runs need only 100 ms and a run's time; the rest is room for a machine busy with
        // the other tests (250 ms once saw a single run).
        std::thread::sleep(Duration::from_secs(2));
        let took = probe.stop();
        for runs in [&took.compute, &took.memory] {
            assert!(runs.len() >= 2, "a run at the start and every 100 ms: {runs:?}");
            assert!(runs.iter().all(|d| !d.is_zero()), "each run took some CPU: {runs:?}");
        }
    }

    #[test]
    fn a_probe_stopped_at_once_has_still_run_once() {
        let took = SpeedProbe::start().stop();
        assert!(!took.compute.is_empty() && !took.memory.is_empty(), "a run of each piece: {} and {}", took.compute.len(), took.memory.len());
    }

    #[test]
    fn the_walk_visits_every_slot_once_before_it_returns() {
        let next = random_cycle(1000);
        let (mut at, mut steps) = (0u32, 0);
        loop {
            at = next[at as usize];
            steps += 1;
            if at == 0 {
                break;
            }
        }
        assert_eq!(steps, 1000);
    }

    #[test]
    fn the_median_is_the_middle_run() {
        let took = [300, 100, 200].map(Duration::from_micros);
        assert_eq!(median_us(&took), Some(200.0));
        assert_eq!(median_us(&[]), None);
    }
}
