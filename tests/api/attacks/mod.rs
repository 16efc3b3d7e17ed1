//! Attacks on the public endpoints: enumeration of residents' contacts, and floods against the
//! rate limit. (API fuzzing is its own target, `tests/schemathesis.rs`.)

mod enumeration;
mod load;
