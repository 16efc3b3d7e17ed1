//! Quick polls answered by replying to the invitation SMS: the reply's digit is the option
//! number. The number is matched to its resident's latest SMS invitation to a published poll,
//! and the answer goes through `service::answer` like any other, so it is stored against the
//! invitation (one row per invitation: a repeat reply replaces the first, never adds).

use serde_json::{Map, Value};

use super::service;
use crate::{http::error::ApiError, residents::ResidentsCtx, store::Respondent};

/// What became of a reply (for metrics; the provider is told nothing of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Counted,
    /// Matched, but the poll did not take it (closed, no such option, erased).
    Refused,
    /// No poll invitation went to this number by SMS.
    Unmatched,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Counted => "counted",
            Outcome::Refused => "refused",
            Outcome::Unmatched => "unmatched",
        }
    }
}

/// The option a reply chooses: one digit 1-9, spaces and a trailing full stop allowed.
pub fn chosen_option(text: &str) -> Option<u8> {
    let t = text.trim().trim_end_matches('.').trim();
    match t.as_bytes() {
        [d @ b'1'..=b'9'] => Some(d - b'0'),
        _ => None,
    }
}

/// Count `option` for the resident with this (normalised, E.164) number.
/// A failure of the database is an error, so that the provider delivers the reply again.
pub async fn take(residents: &ResidentsCtx, phone: &str, option: u8) -> Result<Outcome, ApiError> {
    let Some(inv) = residents.store.poll_invitation_by_phone(phone).await? else { return Ok(Outcome::Unmatched) };
    if inv.erased_at.is_some() {
        return Ok(Outcome::Refused);
    }
    let Some(survey) = residents.store.survey(inv.survey_id).await? else { return Ok(Outcome::Unmatched) };
    let Ok(spec) = service::parse(&survey) else { return Ok(Outcome::Refused) };
    let Some(question) = spec.questions.first() else { return Ok(Outcome::Refused) };
    let mut given = Map::new();
    given.insert(question.id().to_owned(), Value::from(option));
    match service::answer(residents, &survey, &spec, Respondent::Invitation(inv.id), &given, None).await {
        Ok(_) => Ok(Outcome::Counted),
        Err(service::Refused::Other(e)) if e.status().is_server_error() => Err(e),
        Err(_) => Ok(Outcome::Refused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_one_digit_from_one_to_nine() {
        assert_eq!(chosen_option(" 2 "), Some(2));
        assert_eq!(chosen_option("3."), Some(3));
        assert_eq!(chosen_option("9"), Some(9));
        for no in ["0", "10", "2 3", "tak", "", "２"] {
            assert_eq!(chosen_option(no), None, "{no:?}");
        }
    }
}
