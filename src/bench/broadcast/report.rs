//! The table the broadcast bench prints: each measure against its target, per backend.

use super::{BackendResult, alerts::MILESTONE, campaign::CampaignResult};
use crate::bench::{queue::percentile, sinks::Ceilings};

/// Targets that name a size are met only at that size or above.
const TARGET_SIZE: u64 = 1_000_000;

struct Row {
    measure: String,
    target: &'static str,
    cells: Vec<String>,
}

pub(super) fn print(subscribers: u64, ceilings: &Ceilings, results: &[BackendResult]) {
    let at_size = subscribers >= TARGET_SIZE;
    let mut rows = Vec::new();
    for channel in ["sms", "email", "push"] {
        let campaigns: Vec<Option<&CampaignResult>> = results.iter().map(|r| r.campaign(channel)).collect();
        if campaigns.iter().all(Option::is_none) {
            continue;
        }
        rows.push(row(format!("fan-out, {channel} campaign"), "≤ 5 s (1M)", &campaigns, |c| {
            let secs = c.fanout_ms / 1000.0;
            format!("{secs:.2} s {}", verdict(at_size, secs <= 5.0))
        }));
        let (target, floor, ceiling) = match channel {
            "sms" => ("≥ 15,000/s", 15_000.0, ceilings.sms),
            "email" => ("≥ 8,000/s", 8_000.0, ceilings.email),
            _ => ("≥ 8,000/s", 8_000.0, ceilings.push),
        };
        rows.push(row(format!("{channel} deliveries/s (share of sink ceiling)"), target, &campaigns, |c| {
            format!("{:.0} ({:.0}%) {}", c.rate, 100.0 * c.rate / ceiling, verdict(true, c.rate >= floor))
        }));
        rows.push(row(format!("{channel} campaign drained"), "≤ 100 s (1M)", &campaigns, |c| {
            let failed = if c.failed > 0 { format!(", {} not sent", c.failed) } else { String::new() };
            let overall = subscribers as f64 / c.drain_secs;
            format!("{:.1} s ({overall:.0}/s overall){failed} {}", c.drain_secs, verdict(at_size, c.drain_secs <= 100.0 && c.failed == 0))
        }));
    }
    rows.push(Row {
        measure: "peak RSS of the service, `hejnal serve` (of the bench and its sinks)".into(),
        target: "≤ 64 MB",
        cells: results.iter().map(rss_cell).collect(),
    });
    rows.extend(alert_rows(results));
    print_table(subscribers, ceilings, results, &rows);
}

fn alert_rows(results: &[BackendResult]) -> Vec<Row> {
    let cells = |f: &dyn Fn(&BackendResult) -> String| results.iter().map(f).collect::<Vec<_>>();
    vec![
        Row {
            measure: "emergency, approval to first message, p50".into(),
            target: "≤ 100 ms",
            cells: cells(&|r| latency(&r.alerts.first_ms, 0.5, 100.0)),
        },
        Row {
            measure: "emergency, approval to first message, p99".into(),
            target: "≤ 250 ms",
            cells: cells(&|r| latency(&r.alerts.first_ms, 0.99, 250.0)),
        },
        Row {
            measure: format!("emergency, approval to the {MILESTONE}th message, median (max)"),
            target: "≤ 2 s",
            cells: cells(&|r| {
                let t = &r.alerts.to_milestone_ms;
                if t.is_empty() {
                    return "n/a (audience too small)".into();
                }
                let max = t.iter().copied().fold(0.0, f64::max);
                format!("{:.2} s ({:.2} s) {}", percentile(t, 0.5) / 1000.0, max / 1000.0, verdict(true, max <= 2000.0))
            }),
        },
        Row {
            measure: "alerts sent while the first campaign drained".into(),
            target: "all",
            cells: cells(&|r| format!("{} of {}", r.alerts.during_routine, r.alerts.first_ms.len())),
        },
    ]
}

fn rss_cell(r: &BackendResult) -> String {
    let Some(peak) = r.peak_rss_mb else { return "n/a".into() };
    let before = r.bench_peak_rss_mb.map_or(String::new(), |b| format!(" ({b:.1} MB)"));
    format!("{peak:.1} MB{before} {}", verdict(true, peak <= 64.0))
}

fn latency(values: &[f64], q: f64, limit: f64) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    let v = percentile(values, q);
    format!("{v:.1} ms {}", verdict(true, v <= limit))
}

fn row(measure: String, target: &'static str, campaigns: &[Option<&CampaignResult>], cell: impl Fn(&CampaignResult) -> String) -> Row {
    Row { measure, target, cells: campaigns.iter().map(|c| c.map_or("—".into(), &cell)).collect() }
}

fn verdict(applies: bool, met: bool) -> &'static str {
    match (applies, met) {
        (false, _) => "(target is at 1M)",
        (true, true) => "✓",
        (true, false) => "✗",
    }
}

fn print_table(subscribers: u64, ceilings: &Ceilings, results: &[BackendResult], rows: &[Row]) {
    println!();
    println!("broadcast bench: {subscribers} residents, each with a verified email, phone and push subscription");
    println!("sink ceilings (bare clients): SMS {:.0}/s, email {:.0}/s, push {:.0}/s", ceilings.sms, ceilings.email, ceilings.push);
    let names: Vec<&str> = results.iter().map(|r| r.backend.name()).collect();
    println!("| measure | target | {} |", names.join(" | "));
    println!("|{}", " --- |".repeat(names.len() + 2));
    for r in rows {
        println!("| {} | {} | {} |", r.measure, r.target, r.cells.join(" | "));
    }
    for r in results {
        println!("{}: seeded in {:.1} s; deliveries each alert created before its cancellation stopped its fan-out: {:?}", r.backend.name(), r.seed_secs, r.alerts.recipients);
    }
}
