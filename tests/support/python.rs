//! Python tools from PyPI that tests use as independent peers (schemathesis, dkimpy), each
//! installed once, pinned, into a virtualenv outside the clone (`$HEJNAL_TEST_TOOLS_DIR`,
//! default `/var/cache/hejnal-ci/tools`), so a warm machine skips the install. Included by test
//! binaries with `#[path]`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn tools_dir() -> PathBuf {
    std::env::var_os("HEJNAL_TEST_TOOLS_DIR").map_or_else(|| PathBuf::from("/var/cache/hejnal-ci/tools"), PathBuf::from)
}

/// The virtualenv `name` with `packages` (pinned: `name==version`) installed, installing it
/// on first use. Errors say which step failed; callers fail under `CI=true` and skip elsewhere.
pub fn venv_with(name: &str, packages: &[&str]) -> Result<PathBuf, String> {
    let venv = tools_dir().join(name);
    // Written last: a venv without it is a half-finished install, started again.
    let done = venv.join(".installed");
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&done).is_ok_and(|had| had == wanted) {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(tools_dir()).map_err(|e| format!("cannot create {}: {e}", tools_dir().display()))?;
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(packages))?;
    std::fs::write(&done, wanted).map_err(|e| e.to_string())?;
    Ok(venv)
}

/// The venv's Python. (Not every binary that includes this file runs Python itself.)
#[allow(dead_code)]
pub fn python(venv: &Path) -> PathBuf {
    venv.join("bin/python")
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(())
}
