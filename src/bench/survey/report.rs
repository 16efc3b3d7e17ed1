//! The table `hejnal bench survey` prints, Markdown, one column per backend.

use super::{SurveyArgs, SurveyResult, load::LATE_MS, machine, others, p50_p99, percentile, speed};

/// A CPU time per answer, in whole µs.
fn us(cpu: Option<f64>) -> String {
    cpu.map_or("n/a".into(), |c| format!("{c:.0} µs"))
}

fn mark(met: bool) -> &'static str {
    if met { "✓" } else { "✗" }
}

pub(super) fn print(args: &SurveyArgs, results: &[SurveyResult]) {
    let cells = |f: &dyn Fn(&SurveyResult) -> String| results.iter().map(f).collect::<Vec<_>>().join(" | ");
    let batch = |b: Option<f64>| b.map_or("n/a".into(), |b| format!("{b:.1}"));
    println!();
    println!(
        "survey bench: {} invitations, {} connections, {} s per phase, fixed rate at {}% of the maximum; load generator in this process, on a runtime of its own",
        args.invitations, args.connections, args.seconds, args.share
    );
    let names: Vec<&str> = results.iter().map(|r| r.backend.name()).collect();
    println!("| measure | target | {} |", names.join(" | "));
    println!("|{}", " --- |".repeat(names.len() + 2));
    println!("| maximum, durable answers/s | ≥ 20,000/s | {} |", cells(&|r| format!("{:.0} {}", r.measured.max.rate(), mark(r.measured.max.rate() >= 20_000.0))));
    println!("| at the maximum: p50 / p99 | | {} |", cells(&|r| {
        let (p50, p99) = p50_p99(&r.measured.max);
        format!("{p50:.1} / {p99:.1} ms")
    }));
    println!("| fixed rate offered → answered/s | | {} |", cells(&|r| format!("{:.0} → {:.0}", r.measured.offered, r.measured.fixed.rate())));
    println!("| at the fixed rate: p50 | | {} |", cells(&|r| format!("{:.2} ms", p50_p99(&r.measured.fixed).0)));
    println!("| at the fixed rate: p99 | ≤ 10 ms | {} |", cells(&|r| {
        let p99 = p50_p99(&r.measured.fixed).1;
        format!("{p99:.2} ms {}", mark(p99 <= LATE_MS))
    }));
    // What of that latency was the load generator's own: how late it sent the requests whose
    // connection was free at their moment (it shares the two cores with the app).
    println!("| at the fixed rate: the generator's own lateness, p50 / p99 | | {} |", cells(&|r| {
        let late = &r.measured.fixed.send_late_ms;
        format!("{:.2} / {:.2} ms", percentile(late, 0.50), percentile(late, 0.99))
    }));
    // One stall of the database (a slow WAL flush on PostgreSQL) holds every answer behind it,
    // and is often what a missed p99 is made of: the longest wait tells.
    println!("| at the fixed rate: longest wait | | {} |", cells(&|r| format!("{:.1} ms", percentile(&r.measured.fixed.latencies_ms, 1.0))));
    println!("| answers per commit, maximum / fixed rate | | {} |", cells(&|r| format!("{} / {}", batch(r.measured.batch_max), batch(r.measured.batch_fixed))));
    // An answer's CPU at each rate: the share of each commit and wake-up grows as batches shrink.
    println!("| CPU per answer, maximum / fixed rate: the app | | {} |", cells(&|r| format!("{} / {}", us(r.measured.cpu_per_answer_max.app), us(r.measured.cpu_per_answer_fixed.app))));
    println!("| CPU per answer, maximum / fixed rate: the load generator | | {} |", cells(&|r| {
        format!("{} / {}", us(r.measured.cpu_per_answer_max.generator), us(r.measured.cpu_per_answer_fixed.generator))
    }));
    // Whether the longest waits were the database's: commits over 10 ms in the same phase.
    println!("| at the fixed rate: commits over 10 ms | | {} |", cells(&|r| r.measured.slow_commits_fixed.map_or("n/a".into(), |(slow, all)| format!("{slow} of {all}"))));
    // Whether the rest of a long wait was the app's: its own time for each answer, from routing
    // to response. What is left of the load generator's p99 is the sockets, the HTTP parsing and
    // the generator's own sends, which share the two cores and the runtime with the app.
    println!("| at the fixed rate: answers over 10 ms in the app | | {} |", cells(&|r| r.measured.slow_in_app_fixed.map_or("n/a".into(), |(slow, all)| format!("{slow} of {all}"))));
    println!("| at the fixed rate: answers over 10 ms at the load generator | | {} |", cells(&|r| {
        format!("{} of {}", r.measured.fixed.late_due_s.len(), r.measured.fixed.latencies_ms.len())
    }));
    println!("| at the fixed rate: of the answers over 10 ms, the time from sending to the answer, p50 / max | | {} |", cells(&|r| after_send(&r.measured.fixed.late_after_send_ms)));
    // A few stalls (the late answers in a few windows) point at one event, a checkpoint or a
    // thread that lost its core; late answers spread through the phase point at steady queueing.
    println!("| at the fixed rate: when the answers over 10 ms were due | | {} |", cells(&|r| late_windows(&r.measured.fixed.late_due_s, args.seconds)));
    println!("| at the fixed rate: other processes' CPU (PostgreSQL's server among them on PostgreSQL) | | {} |", cells(&|r| others_per_window(&r.measured.others_fixed)));
    // A virtual machine's cores can be taken by the host for other machines: time the app
    // waited that no process here used.
    println!("| at the fixed rate: CPU stolen by the host (steal) | | {} |", cells(&|r| cores_per_window(&r.measured.others_fixed.steal, |_| String::new())));
    // The fixed rate is a share of the maximum measured before it: if the cores ran slower
    // meanwhile, that share asked more of them.
    println!("| the machine's speed, computing: a fixed piece of work's CPU time, median at the maximum / at the fixed rate | | {} |", cells(&|r| {
        speed_change(speed::median_us(&r.measured.speed_max.compute), speed::median_us(&r.measured.speed_fixed.compute), args.share)
    }));
    println!("| the machine's speed, reading memory: a fixed walk's CPU time, median at the maximum / at the fixed rate | | {} |", cells(&|r| {
        speed_change(speed::median_us(&r.measured.speed_max.memory), speed::median_us(&r.measured.speed_fixed.memory), args.share)
    }));
    if args.bursts > 0 {
        println!("| at the fixed rate: another process's bursts, on purpose (`--bursts`): a busy loop in a session of its own | | {} |", cells(&|r| bursts(r.measured.bursts_fixed.as_ref())));
    }
    // A core that did not run at all (the host took it, or the kernel held it) stalls every
    // thread on it; a real-time probe wakes late only then.
    if args.stall_probe {
        println!("| at the fixed rate: a core not running (a real-time probe's lateness) | | {} |", cells(&|r| stalls(r.measured.stalls_fixed.as_ref())));
    }
    println!("| the machine's cores going to sleep, per answer, maximum / fixed rate | | {} |", cells(&|r| {
        let per_answer = |b: machine::Counts, sent: usize| b.sleeps.filter(|_| sent > 0).map_or("n/a".into(), |n| format!("{:.2}", n as f64 / sent as f64));
        format!("{} / {}; {}", per_answer(r.measured.machine_max, r.measured.max.sent), per_answer(r.measured.machine_fixed, r.measured.fixed.sent), halt_polling(machine::guest_halt_poll_ns()))
    }));
    println!("| at the fixed rate: read from disk by this process | | {} |", cells(&|r| r.measured.machine_fixed.read_bytes.map_or("n/a".into(), |b| format!("{} KiB", b / 1024))));
    println!("| refused (not 2xx) | 0 | {} |", cells(&|r| format!("{} {}", r.measured.max.failed + r.measured.fixed.failed, mark(r.measured.max.failed + r.measured.fixed.failed == 0))));
    println!("| acknowledged invitations all stored | all | {} |", cells(&|r| {
        format!("{} acknowledged, {} rows {}", r.acknowledged, r.stored, mark(r.stored as usize == r.acknowledged))
    }));
    println!("| this process's CPU priority (HEJNAL_NICE) | | {} |", cells(&|_| crate::cpu_priority::describe()));
    println!("| load average before → after (1, 5, 15 min) | | {} |", cells(&|r| format!("{} → {}", r.load_before, r.load_after)));
}

/// Windows of this many seconds, the other processes' sampler's.
const WINDOW_S: f64 = super::others::WINDOW.as_secs_f64();

/// How long an idle core polls before it sleeps, where the guest's idle driver says.
fn halt_polling(ns: Option<u64>) -> String {
    match ns {
        Some(0) => "an idle core sleeps at once (guest_halt_poll_ns 0)".into(),
        Some(ns) => format!("an idle core polls up to {} µs first", ns / 1000),
        None => "no guest halt polling here".into(),
    }
}

/// How many bursts, how long each, and when each began.
fn bursts(done: Option<&super::bursts::Done>) -> String {
    match done.map(|d| (d.length, &d.began)) {
        None => "n/a".into(),
        Some((_, Err(e))) => format!("not run: {e}"),
        Some((length, Ok(began))) => {
            let at = began.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", ");
            format!("{} × {} ms, begun at {at} s", began.len(), length.as_millis())
        }
    }
}

/// Of the late answers, how long the app and the network took once each was sent, and how many
/// of them that alone made late; the rest of their latency they waited for a free connection.
fn after_send(ms: &[f64]) -> String {
    if ms.is_empty() {
        return "none late".into();
    }
    let over = ms.iter().filter(|&&m| m > LATE_MS).count();
    format!("{:.1} / {:.1} ms; over 10 ms after sending: {over} of {}", percentile(ms, 0.5), percentile(ms, 1.0), ms.len())
}

/// How the late answers (their due moments, in seconds) fall into windows of 100 ms: how many
/// windows hold any, and the three that hold most, with their start and count.
fn late_windows(late_due_s: &[f64], seconds: f64) -> String {
    if late_due_s.is_empty() {
        return "none".into();
    }
    let mut per_window = std::collections::BTreeMap::<u64, usize>::new();
    for due in late_due_s {
        *per_window.entry((due / WINDOW_S) as u64).or_default() += 1;
    }
    let counts = per_window.iter().map(|(&w, &n)| (w as usize, n as f64)).collect();
    let windows = (seconds / WINDOW_S).ceil() as u64;
    format!("in {} of {windows} windows of 100 ms; most: {}", per_window.len(), three_fullest(counts, |_, n| format!("{n:.0}")))
}

/// The two medians, and what the fixed rate's share was of the cores at their speed then.
fn speed_change(max_us: Option<f64>, fixed_us: Option<f64>, share: f64) -> String {
    let (Some(max_us), Some(fixed_us)) = (max_us, fixed_us) else { return "n/a".into() };
    let slower = fixed_us / max_us;
    format!("{max_us:.0} / {fixed_us:.0} µs: the fixed rate asked {:.0}% of the maximum at the machine's speed then", share * slower)
}

/// The longest stall, how many windows of 100 ms held one over 1 ms, and the three worst.
fn stalls(probe: Option<&Result<Vec<f64>, String>>) -> String {
    match probe {
        None => "n/a".into(),
        Some(Err(why)) => format!("not measured: {why}"),
        Some(Ok(late_ms)) => {
            let over = late_ms.iter().filter(|&&ms| ms > 1.0).count();
            let most = three_fullest(late_ms.iter().copied().enumerate().collect(), |_, ms| format!("{ms:.1} ms"));
            format!("over 1 ms in {over} of {} windows of 100 ms; longest: {most}", late_ms.len())
        }
    }
}

/// The mean cores of a series of 100 ms windows (used by other processes, or stolen), and the
/// three windows with most, each followed by what `about` says of that window.
fn cores_per_window(cores: &[f64], about: impl Fn(usize) -> String) -> String {
    if cores.is_empty() {
        return "n/a".into();
    }
    let mean = cores.iter().sum::<f64>() / cores.len() as f64;
    let most = three_fullest(cores.iter().copied().enumerate().collect(), |w, c| format!("{c:.1}{}", about(w)));
    format!("mean {mean:.2} cores; most in 100 ms: {most}")
}

/// Other processes' cores per window, each of the busiest windows naming the process that used
/// most in it: a miss under a full core of other CPU is then explained by name.
fn others_per_window(windows: &others::Windows) -> String {
    cores_per_window(&windows.others, |w| match windows.busiest.get(w) {
        Some(Some((name, cores))) => format!(" ({name} {cores:.1})"),
        _ => String::new(),
    })
}

/// The three windows (index, value) with the largest values, the earlier first among equals,
/// as "value at start s", the value shown by `show` (given the window and its value).
fn three_fullest(mut windows: Vec<(usize, f64)>, show: impl Fn(usize, f64) -> String) -> String {
    windows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<String> = windows.iter().take(3).map(|&(w, v)| format!("{} at {:.1} s", show(w, v), w as f64 * WINDOW_S)).collect();
    top.join(", ")
}

#[cfg(test)]
mod tests {
    use super::{after_send, bursts, cores_per_window, halt_polling, late_windows, others::Windows, others_per_window, speed_change, stalls};
    use crate::bench::survey::bursts::Done;

    #[test]
    fn bursts_say_how_many_how_long_and_when_or_why_not() {
        let length = std::time::Duration::from_millis(400);
        assert_eq!(bursts(Some(&Done { length, began: Ok(vec![2.51, 5.0, 7.52]) })), "3 × 400 ms, begun at 2.5, 5.0, 7.5 s");
        assert_eq!(bursts(Some(&Done { length, began: Err("cannot start a busy loop: not found".into()) })), "not run: cannot start a busy loop: not found");
        assert_eq!(bursts(None), "n/a");
    }

    #[test]
    fn a_slower_machine_at_the_fixed_rate_raises_the_share_it_asked() {
        assert_eq!(speed_change(Some(200.0), Some(260.0), 70.0), "200 / 260 µs: the fixed rate asked 91% of the maximum at the machine's speed then");
        assert_eq!(speed_change(Some(200.0), Some(180.0), 70.0), "200 / 180 µs: the fixed rate asked 63% of the maximum at the machine's speed then");
        assert_eq!(speed_change(None, Some(180.0), 70.0), "n/a");
    }

    #[test]
    fn stalls_say_how_many_windows_held_one_and_the_longest() {
        let probe = Ok(vec![0.1, 4.5, 0.2, 1.2, 0.0]);
        assert_eq!(stalls(Some(&probe)), "over 1 ms in 2 of 5 windows of 100 ms; longest: 4.5 ms at 0.1 s, 1.2 ms at 0.3 s, 0.2 ms at 0.2 s");
        assert_eq!(stalls(Some(&Err("no real-time priority: EPERM".into()))), "not measured: no real-time priority: EPERM");
        assert_eq!(stalls(None), "n/a");
    }

    #[test]
    fn cores_per_window_gives_the_mean_and_the_busiest_windows() {
        assert_eq!(cores_per_window(&[0.0, 0.1, 0.9, 0.0, 0.6, 0.2], |_| String::new()), "mean 0.30 cores; most in 100 ms: 0.9 at 0.2 s, 0.6 at 0.4 s, 0.2 at 0.5 s");
        assert_eq!(cores_per_window(&[], |_| String::new()), "n/a");
    }

    #[test]
    fn the_busiest_windows_of_other_processes_name_the_process_that_used_most() {
        let windows = Windows {
            others: vec![0.1, 1.0, 0.0, 0.3],
            busiest: vec![Some(("redis-server".into(), 0.1)), Some(("beam.smp".into(), 0.9)), None, Some(("postgres".into(), 0.2))],
            steal: vec![],
        };
        assert_eq!(others_per_window(&windows), "mean 0.35 cores; most in 100 ms: 1.0 (beam.smp 0.9) at 0.1 s, 0.3 (postgres 0.2) at 0.3 s, 0.1 (redis-server 0.1) at 0.0 s");
    }

    #[test]
    fn late_answers_are_counted_per_100_ms_window_the_fullest_first() {
        let due = [0.05, 0.07, 2.31, 2.35, 2.36, 9.99];
        assert_eq!(late_windows(&due, 10.0), "in 3 of 100 windows of 100 ms; most: 3 at 2.3 s, 2 at 0.0 s, 1 at 9.9 s");
        assert_eq!(late_windows(&[], 10.0), "none");
    }

    #[test]
    fn the_late_answers_say_how_long_they_took_once_sent() {
        assert_eq!(after_send(&[2.0, 12.5, 30.0]), "12.5 / 30.0 ms; over 10 ms after sending: 2 of 3");
        assert_eq!(after_send(&[]), "none late");
    }

    #[test]
    fn the_guest_halt_polling_is_said_in_words() {
        assert_eq!(halt_polling(Some(0)), "an idle core sleeps at once (guest_halt_poll_ns 0)");
        assert_eq!(halt_polling(Some(200_000)), "an idle core polls up to 200 µs first");
        assert_eq!(halt_polling(None), "no guest halt polling here");
    }
}
