//! Domain types whose only constructor parses: once a value exists, it is valid, and the rest
//! of the code never checks it again.

mod email;
mod language;
mod phone;
mod quiet_hours;

pub use email::EmailAddress;
pub use language::Language;
pub use phone::PhoneNumber;
pub use quiet_hours::{QuietHours, QuietHoursJson, warsaw_offset};
