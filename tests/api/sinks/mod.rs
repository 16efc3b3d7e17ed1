//! Real peers for the channel adapters, each on port 0 in the test process: an SMTP server, an
//! HTTP SMS gateway and a web push receiver. They record what arrives and answer from a script.

pub mod push;
pub mod sms;
pub mod smtp;
