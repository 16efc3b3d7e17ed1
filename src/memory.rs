//! Keeping the heap small. glibc gives each thread that meets contention an arena of its own, up
//! to eight per core, and keeps what each frees for reuse; sqlx runs every SQLite connection on
//! a thread of its own, so a busy embedded install grew arenas it never gave back (peak RSS of
//! a 1M campaign on SQLite: 146 MB with the default, 108 MB with two arenas). Two arenas
//! serve the async workers well; an operator's own `MALLOC_ARENA_MAX` wins.

/// Arenas when the operator sets none.
const ARENAS: i32 = 2;

/// Call before any thread starts. A no-op off glibc.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    }
}

/// How often freed heap pages go back to the system.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Hand freed heap pages back to the system once a second, on a thread of its own. glibc
/// returns memory on its own only from the top of each arena; what a burst frees in the middle
/// (a delivery job's batch, a fan-out's chunk) stays resident until reused. During a 1M SMS
/// campaign on SQLite, mallinfo showed 7-22 MB of the heap free at any time; trimming cut the
/// service's RSS through the campaign from 67-70 MB to 53-66 MB, its peak (the alerts' live
/// heap) from 72.1 to 68.2-70.1 MB (`hejnal bench broadcast`, docs/performance.md).
/// `malloc_trim` takes each arena's lock while it walks it, briefly: a heap of some 45 MB.
/// A no-op off glibc.
pub fn trim_freed_memory_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new().name("malloc-trim".into()).spawn(|| {
            loop {
                std::thread::sleep(TRIM_EVERY);
                // SAFETY: malloc_trim only releases free pages; any thread may call it at any time.
                unsafe {
                    libc::malloc_trim(0);
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the thread that returns freed memory; RSS may stay higher");
        }
    }
}

/// The process's memory as gauges, read when `/metrics` is scraped: resident set (what the
/// issue's 64 MB budget counts), the heap glibc holds in use and free, and SQLite's own
/// allocations (page caches, schemas, prepared statements of every connection).
pub fn report_to_metrics() {
    if let Some(bytes) = resident_bytes() {
        metrics::gauge!("hejnal_process_resident_bytes").set(bytes as f64);
    }
    if let Some(heap) = heap_bytes() {
        metrics::gauge!("hejnal_heap_bytes", "state" => "in_use").set(heap.in_use as f64);
        metrics::gauge!("hejnal_heap_bytes", "state" => "free").set(heap.free as f64);
    }
    metrics::gauge!("hejnal_sqlite_memory_bytes").set(sqlite_memory_used() as f64);
}

/// The heap glibc holds, all arenas together.
pub struct HeapBytes {
    /// Small blocks in the arenas plus the large ones glibc maps on their own.
    pub in_use: u64,
    pub free: u64,
}

/// The heap as glibc counts it; `None` off glibc.
pub fn heap_bytes() -> Option<HeapBytes> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics (taking each arena's lock).
        let info = unsafe { libc::mallinfo2() };
        Some(HeapBytes { in_use: (info.uordblks + info.hblkhd) as u64, free: info.fordblks as u64 })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// VmRSS of this process, from /proc (Linux only).
fn resident_bytes() -> Option<u64> {
    status_field_bytes(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS:")
}

/// A memory field (`VmRSS:`, `VmHWM:`, …) of a `/proc/<pid>/status` text, in bytes.
pub fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    let kib: u64 = status.lines().find_map(|l| l.strip_prefix(field))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Bytes SQLite has allocated in this process, all connections together.
fn sqlite_memory_used() -> i64 {
    // The bundled SQLite that sqlx links; declared here rather than through a direct
    // dependency on libsqlite3-sys, whose version sqlx pins.
    unsafe extern "C" {
        fn sqlite3_memory_used() -> i64;
    }
    // SAFETY: a thread-safe statistics read with no arguments.
    unsafe { sqlite3_memory_used() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_field_is_read_in_bytes_and_a_missing_one_is_none() {
        let status = "Name:\thejnal\nVmHWM:\t   64224 kB\nVmRSS:\t   51504 kB\nThreads:\t18\n";
        assert_eq!(status_field_bytes(status, "VmRSS:"), Some(51_504 * 1024));
        assert_eq!(status_field_bytes(status, "VmHWM:"), Some(64_224 * 1024));
        assert_eq!(status_field_bytes(status, "VmSwap:"), None);
        assert_eq!(status_field_bytes(status, "Threads:"), None, "not a memory field");
    }
}
