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
