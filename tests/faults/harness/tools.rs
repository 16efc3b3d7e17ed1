//! The server binaries the suite starts. A missing one fails the test loudly: the suite never
//! skips (`scripts/services.sh` installs both packages when it can).

use std::path::{Path, PathBuf};

/// `redis-server`, from PATH.
pub fn redis_server() -> PathBuf {
    on_path("redis-server").unwrap_or_else(|| missing("redis-server", "redis-server"))
}

/// The newest PostgreSQL server folder (Debian keeps `initdb` and `pg_ctl` off PATH, under
/// /usr/lib/postgresql/<version>/bin), else PATH.
pub fn postgres_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|d| d.join("initdb").is_file()).collect())
        .unwrap_or_default();
    dirs.sort_by_key(|d| version_of(d));
    dirs.pop()
        .or_else(|| on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf)))
        .unwrap_or_else(|| missing("initdb and pg_ctl", "postgresql"))
}

fn version_of(bin: &Path) -> u32 {
    bin.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

fn missing(what: &str, package: &str) -> ! {
    panic!("the fault suite needs {what}, which is not installed: `apt-get install {package}` (scripts/services.sh does it when run as root). It never skips.")
}

/// Whether this process runs as root (then PostgreSQL's tools run as the `postgres` user,
/// because `initdb` refuses root).
pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A port nobody listens on just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
