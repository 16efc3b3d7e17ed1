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
