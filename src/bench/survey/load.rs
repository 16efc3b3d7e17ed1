//! The load generator: keep-alive HTTP/1.1 connections of its own, each sending pre-built
//! requests and reading the answers, so that as little CPU as possible goes to the client
//! (it shares the machine with the server). Two ways to drive them: as fast as the server
//! answers (the maximum), and at a fixed rate, where each request has its moment on a
//! schedule and its latency counts from that moment, so a server falling behind shows in
//! the latencies instead of slowing the load (no coordinated omission). The fixed rate's sends
//! are timed to the microsecond (`src/precise_sleep.rs`), on a grid of 250 µs: tokio's timer sent each
//! about a millisecond late, and that millisecond counted as the app's.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::precise_sleep::PreciseSleep;

/// What one phase measured.
#[derive(Default)]
pub(super) struct Phase {
    pub sent: usize,
    pub ok: usize,
    pub failed: usize,
    pub secs: f64,
    /// Milliseconds per answered request (from its scheduled moment at a fixed rate).
    pub latencies_ms: Vec<f64>,
    /// When each answer over [`LATE_MS`] was due, in seconds from the phase's start: whether
    /// the late ones came in a few stalls or spread through the phase (and how many there were).
    pub late_due_s: Vec<f64>,
    /// For each answer over [`LATE_MS`], the milliseconds from sending it to its answer (the
    /// app and the network); the rest of its latency it waited to be sent (no free connection).
    pub late_after_send_ms: Vec<f64>,
    /// The requests (by index into the list) answered 2xx.
    pub acknowledged: Vec<usize>,
    /// The CPU the load generator's threads used, in seconds.
    pub generator_cpu_s: Option<f64>,
    /// At a fixed rate, how late (ms) the generator itself sent each request whose connection
    /// was free at its moment: the part of its latency that was the generator's, not the app's.
    pub send_late_ms: Vec<f64>,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

/// At a fixed rate, requests go out on this grid (see [`on_grid`]): on a grid of 100 µs the
/// generator's extra wake-ups cost it a tenth more CPU per answer, and on none at all (a wake-up
/// per request) three quarters more, CPU the app then lacked.
const SEND_GRID: Duration = Duration::from_micros(250);

/// An answer slower than this, in ms, is late: the target's p99.
pub(super) const LATE_MS: f64 = 10.0;

/// How the requests are paced.
#[derive(Clone, Copy)]
pub(super) enum Pace {
    /// Each connection sends its next request as soon as the last is answered.
    AsFastAsPossible,
    /// Request `i` is due at start + i / rate.
    Fixed { per_second: f64 },
}

/// [`drive`] on a runtime of its own (two worker threads), as a client on another machine
/// would be: sharing the app's runtime, each send and read waited in the app's run queues
/// behind its tasks, and those waits counted as the app's latency. (One thread instead of two,
/// tried in session 12, met the p99 in no larger share of runs: `docs/performance.md`.)
pub(super) async fn drive_apart(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>, first: usize, connections: usize, seconds: f64, pace: Pace) -> anyhow::Result<Phase> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(GENERATOR_THREAD.into()).spawn(move || {
        let outcome = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(CLIENT_THREADS)
            .thread_name(GENERATOR_THREAD)
            .enable_all()
            .build()
            .context("cannot start the load generator's runtime")
            .and_then(|runtime| {
                let mut phase = runtime.block_on(drive(addr, requests, first, connections, seconds, pace))?;
                // Read while its threads (new with this runtime) are alive: what they used is this phase's.
                phase.generator_cpu_s = super::others::threads_cpu_seconds(GENERATOR_THREAD);
                Ok(phase)
            });
        let _ = done.send(outcome);
    })?;
    result.await.context("the load generator's thread ended without a result")?
}

/// The load generator's worker threads, and their name.
const CLIENT_THREADS: usize = 2;
const GENERATOR_THREAD: &str = "bench-load";

/// Send `requests[first..]` (round and round) over `connections` connections for `seconds`, paced by `pace`.
async fn drive(addr: SocketAddr, requests: Arc<Vec<Vec<u8>>>, first: usize, connections: usize, seconds: f64, pace: Pace) -> anyhow::Result<Phase> {
    // Every connection is open before the clock starts: opening 256 of them takes longer than
    // 10 ms on a loaded machine, and the first requests' moments would pass meanwhile.
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = TcpStream::connect(addr).await.context("cannot connect to the app")?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let (requests, next) = (requests.clone(), next.clone());
            tokio::spawn(async move { one_connection(stream, &requests, first, &next, start, until, pace).await })
        })
        .collect();
    let mut phase = Phase::default();
    for t in tasks {
        let mine = t.await??;
        phase.sent += mine.sent;
        phase.ok += mine.ok;
        phase.failed += mine.failed;
        phase.latencies_ms.extend(mine.latencies_ms);
        phase.late_due_s.extend(mine.late_due_s);
        phase.late_after_send_ms.extend(mine.late_after_send_ms);
        phase.acknowledged.extend(mine.acknowledged);
        phase.send_late_ms.extend(mine.send_late_ms);
    }
    phase.secs = start.elapsed().as_secs_f64();
    Ok(phase)
}

async fn one_connection(mut stream: TcpStream, requests: &[Vec<u8>], first: usize, next: &AtomicUsize, start: Instant, until: Instant, pace: Pace) -> anyhow::Result<Phase> {
    let mut mine = Phase::default();
    let mut buf = vec![0u8; 16 * 1024];
    let timer = PreciseSleep::new()?;
    let mut free_since = Instant::now();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let due = match pace {
            Pace::AsFastAsPossible => Instant::now(),
            Pace::Fixed { per_second } => start + Duration::from_secs_f64(i as f64 / per_second),
        };
        if due >= until {
            return Ok(mine);
        }
        let which = (first + i) % requests.len();
        timer.until(on_grid(start, due, SEND_GRID)).await?;
        if matches!(pace, Pace::Fixed { .. }) && free_since <= due {
            mine.send_late_ms.push(due.elapsed().as_secs_f64() * 1000.0);
        }
        let sent_at = Instant::now();
        stream.write_all(&requests[which]).await?;
        mine.sent += 1;
        let status = read_response(&mut stream, &mut buf).await?;
        free_since = Instant::now();
        let latency_ms = due.elapsed().as_secs_f64() * 1000.0;
        mine.latencies_ms.push(latency_ms);
        if latency_ms > LATE_MS {
            mine.late_due_s.push((due - start).as_secs_f64());
            mine.late_after_send_ms.push(sent_at.elapsed().as_secs_f64() * 1000.0);
        }
        if (200..300).contains(&status) {
            mine.ok += 1;
            mine.acknowledged.push(which);
        } else {
            mine.failed += 1;
        }
    }
}

/// `due`, rounded up to the next multiple of `grid` from `start`: the requests due within one
/// step go out together, at one wake-up of the generator, instead of one wake-up each.
fn on_grid(start: Instant, due: Instant, grid: Duration) -> Instant {
    let since = due.duration_since(start).as_nanos();
    let step = grid.as_nanos().max(1);
    start + Duration::from_nanos(since.div_ceil(step).saturating_mul(step) as u64)
}

/// Read one response; returns its status. Bodies are small: the headers and body fit `buf`.
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> anyhow::Result<u16> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        anyhow::ensure!(n > 0, "the app closed the connection");
        filled += n;
        let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            anyhow::ensure!(filled < buf.len(), "response headers too long");
            continue;
        };
        let head = std::str::from_utf8(&buf[..end])?;
        let status: u16 = head.get(9..12).context("a status line")?.parse()?;
        let length: usize = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim()))
            .unwrap_or("0")
            .parse()?;
        let total = end + 4 + length;
        anyhow::ensure!(total <= buf.len(), "response too long");
        while filled < total {
            let n = stream.read(&mut buf[filled..]).await?;
            anyhow::ensure!(n > 0, "the app closed the connection");
            filled += n;
        }
        return Ok(status);
    }
}

/// A POST with a JSON body, as bytes on the wire.
pub(super) fn post(path: &str, body: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moment_is_rounded_up_to_the_next_step_of_the_grid_from_the_start() {
        let start = Instant::now();
        let grid = Duration::from_micros(250);
        let at = |us: u64| start + Duration::from_micros(us);
        assert_eq!(on_grid(start, at(0), grid), at(0));
        assert_eq!(on_grid(start, at(1), grid), at(250));
        assert_eq!(on_grid(start, at(250), grid), at(250), "a moment on the grid stays");
        assert_eq!(on_grid(start, at(1_001), grid), at(1_250));
    }
}
