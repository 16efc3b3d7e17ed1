//! Worker identity. Every process start gets a new id, never reused: apalis-redis refuses to
//! register a name that heartbeated recently, and orphan recovery must tell a restarted
//! process from the one that died.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// `host-pid-uuidv7`: readable in logs, unique across hosts and restarts.
    pub fn generate() -> Self {
        let host = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "host".into());
        let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect();
        WorkerId(format!("{host}-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_generated_ids_differ_even_in_one_process() {
        assert_ne!(WorkerId::generate(), WorkerId::generate());
    }
}
