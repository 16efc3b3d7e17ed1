//! Real peers for the channel adapters, each on a free local port in the calling process: an
//! SMTP server, an HTTP SMS gateway and a web push receiver that verifies VAPID and decrypts
//! RFC 8291 itself. The integration tests script their answers and read back every message;
//! `hejnal bench` binds them to keep only counts (`Keep::Last`), so that they can take a
//! million messages, and follows alerts through them with a [`Watch`].

pub mod push;
pub(crate) mod push_check;
pub mod sms;
pub mod smtp;
mod tally;

pub use tally::{Keep, Watch};
