//! Lanes keep emergencies apart from routine work: each lane has its own broker queue,
//! its own workers and its own share of the broker bound.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    Emergency,
    Routine,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Emergency, Lane::Routine];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Emergency => "emergency",
            Lane::Routine => "routine",
        }
    }

    pub fn parse(s: &str) -> Option<Lane> {
        match s {
            "emergency" => Some(Lane::Emergency),
            "routine" => Some(Lane::Routine),
            _ => None,
        }
    }

    /// The broker queue of this lane, inside the installation's namespace.
    pub fn queue_name(self, prefix: &str) -> String {
        format!("{prefix}:{}", self.as_str())
    }

    /// A fixed key for PostgreSQL's advisory lock that serialises releases of one lane.
    pub(crate) fn lock_key(self) -> i64 {
        match self {
            Lane::Emergency => 0x6865_6a6e_616c_0001,
            Lane::Routine => 0x6865_6a6e_616c_0002,
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
