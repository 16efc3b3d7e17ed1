//! Whether the tests run under CI (`CI=true`, as CI services set it), where a missing service
//! or tool fails a test instead of skipping it. Shared by the `api` and `schemathesis` test
//! binaries, which each include this file with `#[path]`.

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}
