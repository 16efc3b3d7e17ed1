//! The table `hejnal bench survey` prints, Markdown, one column per backend.

use super::{SurveyArgs, SurveyResult, p50_p99, percentile};

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
        format!("{p99:.2} ms {}", mark(p99 <= 10.0))
    }));
    // One stall of the database (a slow WAL flush on PostgreSQL) holds every answer behind it,
    // and is often what a missed p99 is made of: the longest wait tells.
    println!("| at the fixed rate: longest wait | | {} |", cells(&|r| format!("{:.1} ms", percentile(&r.measured.fixed.latencies_ms, 1.0))));
    println!("| answers per commit, maximum / fixed rate | | {} |", cells(&|r| format!("{} / {}", batch(r.measured.batch_max), batch(r.measured.batch_fixed))));
    // Whether the longest waits were the database's: commits over 10 ms in the same phase.
    println!("| at the fixed rate: commits over 10 ms | | {} |", cells(&|r| r.measured.slow_commits_fixed.map_or("n/a".into(), |(slow, all)| format!("{slow} of {all}"))));
    // Whether the rest of a long wait was the app's: its own time for each answer, from routing
    // to response. What is left of the load generator's p99 is the sockets, the HTTP parsing and
    // the generator's own sends, which share the two cores and the runtime with the app.
    println!("| at the fixed rate: answers over 10 ms in the app | | {} |", cells(&|r| r.measured.slow_in_app_fixed.map_or("n/a".into(), |(slow, all)| format!("{slow} of {all}"))));
    println!("| at the fixed rate: answers over 10 ms at the load generator | | {} |", cells(&|r| {
        let slow = r.measured.fixed.latencies_ms.iter().filter(|&&ms| ms > 10.0).count();
        format!("{slow} of {}", r.measured.fixed.latencies_ms.len())
    }));
    println!("| refused (not 2xx) | 0 | {} |", cells(&|r| format!("{} {}", r.measured.max.failed + r.measured.fixed.failed, mark(r.measured.max.failed + r.measured.fixed.failed == 0))));
    println!("| acknowledged invitations all stored | all | {} |", cells(&|r| {
        format!("{} acknowledged, {} rows {}", r.acknowledged, r.stored, mark(r.stored as usize == r.acknowledged))
    }));
    println!("| load average before → after (1, 5, 15 min) | | {} |", cells(&|r| format!("{} → {}", r.load_before, r.load_after)));
}
