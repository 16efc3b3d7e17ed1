//! Logs through tracing (text or JSON) and metrics in Prometheus text.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Start logging. `RUST_LOG` wins over the configured level. A second call is a no-op, so
/// tests can build several applications in one process.
pub fn init_logs(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry.with(fmt::layer().json().with_current_span(true).with_writer(std::io::stderr)).try_init()
    } else {
        // Colours only on a terminal: a journal or a log file would keep the escape codes.
        let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
        registry.with(fmt::layer().with_ansi(colours).with_writer(std::io::stderr)).try_init()
    };
}

/// The process's metrics recorder, installed on first use, its histograms drained from then on.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; then ours stays unused.
            let _ = metrics::set_global_recorder(recorder);
            drain_histograms_periodically(handle.clone(), DRAIN_EVERY);
            handle
        })
        .clone()
}

fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        .expect("static buckets are valid")
        .build_recorder()
}

/// How often the histograms' recorded samples are folded into their buckets.
const DRAIN_EVERY: Duration = Duration::from_secs(1);

/// Fold every histogram's recorded samples into its buckets every `every`, on a thread of its
/// own. The recorder keeps each sample in a list until something folds it in, and only a scrape
/// of `/metrics` did: a service nobody scraped (an install without Prometheus) kept about
/// 8 bytes per answer, request and commit for as long as it ran. Folding them every second
/// also keeps a scrape after a long quiet from doing all that work at once.
fn drain_histograms_periodically(handle: PrometheusHandle, every: Duration) {
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            handle.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the thread that drains the metrics' histograms; they grow until /metrics is scraped");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// What an operator without Prometheus would see: the samples of a busy spell go back to the
    /// heap without any scrape, and a later scrape still counts every one of them.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn samples_nobody_scrapes_are_folded_in_and_their_memory_freed() {
        const SAMPLES: u64 = 6_000_000;
        const MB: i64 = 1_000_000;
        let recorder = recorder();
        let handle = recorder.handle();
        let in_use = || crate::memory::heap_bytes().expect("glibc").in_use as i64;
        let record = |n: u64| {
            metrics::with_local_recorder(&recorder, || {
                let histogram = metrics::histogram!("hejnal_test_answer_seconds");
                for _ in 0..n {
                    histogram.record(0.002);
                }
            })
        };
        let before = in_use();
        record(SAMPLES);
        // About 8.4 bytes a sample (lists of 64): some 50 MB. Other tests share the heap, so
        // the checks leave room for what they allocate meanwhile.
        let waiting = in_use() - before;
        assert!(waiting > 25 * MB, "{SAMPLES} samples waiting held only {waiting} bytes of heap");

        drain_histograms_periodically(handle.clone(), Duration::from_millis(50));
        // A folded list is freed once every thread has moved on from it (crossbeam's epochs),
        // which recording itself moves along: the service goes on answering meanwhile.
        let mut recorded = SAMPLES;
        let deadline = Instant::now() + Duration::from_secs(30);
        while in_use() - before > waiting / 2 {
            assert!(Instant::now() < deadline, "30 s after draining began the samples still held {} bytes", in_use() - before);
            record(1_000);
            recorded += 1_000;
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = handle.render();
        assert!(text.contains(&format!("hejnal_test_answer_seconds_count {recorded}\n")), "every sample is counted:\n{text}");
    }
}
