//! Surveys, polls and consultations: an official writes a draft (`spec`), publishes it to an
//! audience (`service`), and each resident gets a personal link `/s/{token}` through the
//! broadcast pipeline: the invitations are a notice of kind `survey` (`invite`), whose
//! fan-out also creates one invitation per resident reached, and whose deliveries put each
//! resident's own link in the message. Answers (`answers`, checked per question type) are
//! stored against the invitation, or against a browser for open surveys, never against
//! contact details. `results` counts them, live.

pub mod answers;
pub mod invite;
pub mod page;
pub mod results;
pub mod service;
pub mod spec;
pub mod view;

use crate::residents::ResidentsCtx;

/// The personal link of an invitation.
pub fn invitation_url(residents: &ResidentsCtx, invitation_id: i64) -> String {
    residents.public_url(&format!("s/{}", residents.links.sign_invitation(invitation_id)))
}

/// The page of an open survey.
pub fn open_url(residents: &ResidentsCtx, slug: &str) -> String {
    residents.public_url(&format!("s/open/{slug}"))
}
